#!/usr/bin/env bash
# Builds the Kubernetes 1.20.2 server binaries from Debian's `kubernetes` source package
# (offline, Go 1.19, GOPATH mode), patched so that no negative oom_score_adj is asked for,
# plus a static pause binary; caches them and imports the pause image into docker.
source "$(dirname "$0")/lib.sh"

KVER=1.20.2
BIN=$CACHE_DIR/kubernetes-$KVER/bin
WORK=$CACHE_DIR/build
BUILD_LOG=$WORK/kube-build.log
PAUSE_IMAGE=k8s.gcr.io/pause:3.2
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

have_all() {
    local c
    for c in "${COMPONENTS[@]}" pause; do [ -x "$BIN/$c" ] || return 1; done
}

ensure_deb_src() {
    local f=/etc/apt/sources.list.d/cowaitlib-deb-src.sources
    if grep -rqsE '^[[:space:]]*(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi
    local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    mirror=$(debian_mirror)
    log "adding a deb-src entry for bookworm ($mirror) in $f"
    {
        echo "Types: deb-src"
        echo "URIs: $mirror"
        echo "Suites: bookworm"
        echo "Components: main"
        [ -f "$keyring" ] && echo "Signed-By: $keyring"
    } >"$f"
    _apt_updated=0
    apt_update
}

build() {
    ensure_deb_src
    apt_install dpkg-dev golang-go gcc libc6-dev make rsync
    [ -n "$(apt-cache showsrc kubernetes 2>/dev/null)" ] || { _apt_updated=0; apt_update; }

    mkdir -p "$WORK"
    cd "$WORK"
    rm -rf "$WORK"/kubernetes-*/
    log "apt-get source kubernetes (in $WORK)"
    apt-get source -qq kubernetes >"$WORK/apt-source.log" 2>&1 \
        || { tail -n 30 "$WORK/apt-source.log" >&2; die "apt-get source kubernetes failed"; }
    local src
    src=$(find "$WORK" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n1)
    [ -n "$src" ] && [ -f "$src/cmd/kubelet/kubelet.go" ] || die "no kubernetes source tree in $WORK"
    grep -q "gitVersion.*v$KVER\|$KVER" "$src/debian/changelog" || die "unexpected kubernetes version in $src"

    # These machines refuse a negative oom_score_adj even to root: pods' sandboxes (-998)
    # and Guaranteed containers (-997) would fail to start in runc.
    log "patching oom_score_adj (sandbox, guaranteed) to 0"
    sed -i -E 's/^([[:space:]]*defaultSandboxOOMAdj[[:space:]]+int[[:space:]]*=[[:space:]]*)-?[0-9]+/\10/' \
        "$src/pkg/kubelet/dockershim/docker_sandbox.go"
    sed -i -E 's/^([[:space:]]*guaranteedOOMScoreAdj[[:space:]]+int[[:space:]]*=[[:space:]]*)-?[0-9]+/\10/' \
        "$src/pkg/kubelet/qos/policy.go"
    grep -qE 'defaultSandboxOOMAdj[[:space:]]+int[[:space:]]*=[[:space:]]*0$' "$src/pkg/kubelet/dockershim/docker_sandbox.go" \
        || die "patch of defaultSandboxOOMAdj did not apply"
    grep -qE 'guaranteedOOMScoreAdj[[:space:]]+int[[:space:]]*=[[:space:]]*0$' "$src/pkg/kubelet/qos/policy.go" \
        || die "patch of guaranteedOOMScoreAdj did not apply"

    log "building ${COMPONENTS[*]} (about 5 min on 2 cores; log: $BUILD_LOG)"
    mkdir -p "$src/.go/src/k8s.io"
    ln -sfn ../../.. "$src/.go/src/k8s.io/kubernetes"
    local whats=() c
    for c in "${COMPONENTS[@]}"; do whats+=("cmd/$c"); done
    (
        cd "$src/.go/src/k8s.io/kubernetes"
        export GOPATH="$src/.go" GO111MODULE=off GOFLAGS='' GOPROXY=off CGO_ENABLED=0
        make WHAT="${whats[*]}"
    ) >"$BUILD_LOG" 2>&1 || { tail -n 40 "$BUILD_LOG" >&2; die "kubernetes build failed (log: $BUILD_LOG)"; }

    log "building the static pause binary"
    local out=$src/_output/pause
    mkdir -p "$out"
    gcc -Os -Wall -Werror -static -DVERSION=v3.2-cowaitlib -o "$out/pause" "$src/build/pause/linux/pause.c" \
        || die "gcc of pause.c failed"

    local tmp=$BIN.tmp.$$
    rm -rf "$tmp"; mkdir -p "$tmp"
    for c in "${COMPONENTS[@]}"; do
        local f
        f=$(find "$src/_output" -type f -name "$c" -perm -u+x | head -n1)
        [ -n "$f" ] || die "build produced no $c (log: $BUILD_LOG)"
        cp "$f" "$tmp/$c"
    done
    cp "$out/pause" "$tmp/pause"
    "$tmp/kube-apiserver" --version | grep -q "v$KVER" || die "built kube-apiserver is not v$KVER"
    rm -rf "$BIN"; mkdir -p "$(dirname "$BIN")"; mv "$tmp" "$BIN"

    log "removing the source tree $src"
    rm -rf "$src"
    log "binaries ready in $BIN"
}

if have_all; then
    log "binaries already cached in $BIN"
else
    build
fi

require_docker
if docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
    log "image $PAUSE_IMAGE already present"
else
    log "importing $PAUSE_IMAGE"
    tmp=$(mktemp -d)
    cp "$BIN/pause" "$tmp/pause"
    tar -C "$tmp" -c . | docker import -c 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
    rm -rf "$tmp"
fi
