#!/usr/bin/env bash
# Installs Debian's docker.io (engine 20.10) if needed and starts dockerd in the background.
source "$(dirname "$0")/lib.sh"

DOCKERD_LOG=/var/log/cowaitlib-dockerd.log

if docker info >/dev/null 2>&1; then
    log "docker engine already answering"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
fi
command -v docker >/dev/null 2>&1 || die "no docker CLI after installing docker.io"

log "starting dockerd (log: $DOCKERD_LOG)"
start_bg /run/cowaitlib-dockerd.pid "$DOCKERD_LOG" dockerd
wait_until 120 "docker info" "$DOCKERD_LOG" docker info
