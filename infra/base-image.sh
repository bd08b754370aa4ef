#!/usr/bin/env bash
# Builds the local Python base image cowaitlib/python-base:3.11 (Debian bookworm minbase
# by debootstrap, Python 3.11, a venv at /opt/venv first on PATH). No registry needed.
source "$(dirname "$0")/lib.sh"

IMAGE=cowaitlib/python-base:3.11
ROOTFS_TAR=$CACHE_DIR/python-base-bookworm-v1.tar   # bump v1 when the recipe changes
VENV_PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

require_docker
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE already present"
    exit 0
fi

if [ -s "$ROOTFS_TAR" ]; then
    log "using cached rootfs $ROOTFS_TAR"
else
    apt_install debootstrap
    mirror=$(debian_mirror)
    mkdir -p "$CACHE_DIR"
    rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    dlog=$CACHE_DIR/debootstrap.log
    log "debootstrap bookworm minbase from $mirror (about 1 min; log: $dlog)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
        bookworm "$rootfs" "$mirror" >"$dlog" 2>&1 \
        || { tail -n 30 "$dlog" >&2; die "debootstrap failed (log: $dlog)"; }
    log "creating the venv /opt/venv"
    chroot "$rootfs" /usr/bin/python3 -m venv /opt/venv || die "python3 -m venv failed in the rootfs"
    chroot "$rootfs" /opt/venv/bin/python -m pip --version >/dev/null || die "no pip in /opt/venv"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
    log "writing $ROOTFS_TAR"
    tar --numeric-owner -C "$rootfs" -cf "$ROOTFS_TAR.tmp" .
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$rootfs"
    trap - EXIT
fi

log "docker import $IMAGE"
docker import \
    -c "ENV PATH=$VENV_PATH" -c 'ENV VIRTUAL_ENV=/opt/venv' -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["python3"]' "$ROOTFS_TAR" "$IMAGE" >/dev/null
out=$(docker run --rm "$IMAGE" python3 -c 'import sys; print(sys.prefix, sys.version.split()[0])')
[ "${out%% *}" = /opt/venv ] || die "python3 in $IMAGE is not the /opt/venv one: $out"
log "image $IMAGE ready: $out"
