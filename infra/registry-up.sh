#!/usr/bin/env bash
# Installs Debian's docker-registry (distribution 2.8) and runs it on 127.0.0.1:5000 with its
# own config (storage under /var/lib/cowaitlib-registry); checks a push and pull of the base image.
source "$(dirname "$0")/lib.sh"

REG=127.0.0.1:5000
REG_DIR=/var/lib/cowaitlib-registry
REG_CONF=$REG_DIR/config.yml
REG_LOG=/var/log/cowaitlib-registry.log
REG_PID=/run/cowaitlib-registry.pid
BASE_IMAGE=cowaitlib/python-base:3.11

registry_answers() { curl -fsS -m 5 "http://$REG/v2/" >/dev/null 2>&1; }

if registry_answers; then
    log "registry already answering on $REG"
else
    command -v docker-registry >/dev/null 2>&1 || apt_install docker-registry
    mkdir -p "$REG_DIR/data"
    cat >"$REG_CONF.tmp" <<CONF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
  fields:
    service: cowaitlib-registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: $REG
  headers:
    X-Content-Type-Options: [nosniff]
CONF
    mv "$REG_CONF.tmp" "$REG_CONF"
    log "starting docker-registry on $REG (log: $REG_LOG)"
    start_bg "$REG_PID" "$REG_LOG" docker-registry serve "$REG_CONF"
    wait_until 120 "registry /v2/ on $REG" "$REG_LOG" registry_answers
fi

# Push and pull of the base image through the registry (fast when the layers are there).
require_docker
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "no $BASE_IMAGE: run infra/base-image.sh first"
log "push/pull check of $REG/$BASE_IMAGE"
docker tag "$BASE_IMAGE" "$REG/$BASE_IMAGE"
docker push -q "$REG/$BASE_IMAGE" >/tmp/cowaitlib-push.log 2>&1 \
    || { cat /tmp/cowaitlib-push.log >&2; die "docker push $REG/$BASE_IMAGE failed"; }
docker image rm "$REG/$BASE_IMAGE" >/dev/null
docker pull -q "$REG/$BASE_IMAGE" >/tmp/cowaitlib-pull.log 2>&1 \
    || { cat /tmp/cowaitlib-pull.log >&2; die "docker pull $REG/$BASE_IMAGE failed"; }
log "registry ready: $REG (image $REG/$BASE_IMAGE)"
