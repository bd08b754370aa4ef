#!/usr/bin/env bash
# Stops the cluster started by infra/kube-up.sh and removes its pods' docker containers.
# Keeps certificates, etcd data and cached binaries, so kube-up.sh starts it again quickly.
source "$(dirname "$0")/lib.sh"

BIN=$CACHE_DIR/kubernetes-1.20.2/bin
KDIR=/var/lib/cowaitlib-kube
RUN=$KDIR/run

stop() { # NAME EXECUTABLE
    local name=$1 exe=$2 pidfile=$RUN/$1.pid pid=""
    if pid_alive "$pidfile" "$exe"; then
        pid=$(cat "$pidfile")
    else
        pid=$(pgrep -f -o "^$exe( |\$)" || true)
    fi
    rm -f "$pidfile"
    [ -n "$pid" ] || { log "$name not running"; return 0; }
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local start=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS - start >= 30 )); then
            log "$name did not stop in 30s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.5
    done
}

stop kube-proxy "$BIN/kube-proxy"
stop kubelet "$BIN/kubelet"
stop kube-scheduler "$BIN/kube-scheduler"
stop kube-controller-manager "$BIN/kube-controller-manager"
stop kube-apiserver "$BIN/kube-apiserver"
stop etcd "$(command -v etcd || echo /usr/bin/etcd)"

if docker info >/dev/null 2>&1; then
    ids=$(docker ps -aq --filter name=^k8s_)
    if [ -n "$ids" ]; then
        log "removing $(echo "$ids" | wc -l) pod containers"
        echo "$ids" | xargs docker rm -f >/dev/null
    fi
fi
# The kubelet bind-mounts its root dir onto itself, plus volumes of pods that were still running.
mounts=$(awk -v d="$KDIR/kubelet" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
[ -z "$mounts" ] || echo "$mounts" | xargs -r umount -l
log "cluster stopped"
