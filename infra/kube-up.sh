#!/usr/bin/env bash
# Starts a real single-node Kubernetes 1.20.2 cluster on this machine: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet (docker runtime) and kube-proxy (iptables).
# Needs infra/docker-up.sh and infra/kube-build.sh first. Prints the admin kubeconfig path.
source "$(dirname "$0")/lib.sh"

KVER=1.20.2
BIN=$CACHE_DIR/kubernetes-$KVER/bin
KDIR=/var/lib/cowaitlib-kube
PKI=$KDIR/pki
RUN=$KDIR/run
LOGDIR=/var/log/cowaitlib-kube
KCFG=$KDIR/admin.kubeconfig
NODE=cowaitlib-node
SERVICE_CIDR=10.0.0.0/24
SERVICE_IP=10.0.0.1
PAUSE_IMAGE=k8s.gcr.io/pause:3.2
FEATURES=TTLAfterFinished=true

for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    [ -x "$BIN/$c" ] || die "no $BIN/$c: run infra/kube-build.sh first"
done
require_docker
docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1 || die "no $PAUSE_IMAGE image: run infra/kube-build.sh first"
command -v etcd >/dev/null 2>&1 || apt_install etcd-server
command -v iptables >/dev/null 2>&1 || apt_install iptables
command -v conntrack >/dev/null 2>&1 || apt_install conntrack
command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client

# The API server advertises the docker0 address so that pods (on docker0) reach it.
ADV=$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)
[ -n "$ADV" ] || die "docker0 has no IPv4 address (is dockerd running?)"

mkdir -p "$PKI" "$RUN" "$LOGDIR" "$KDIR/kubelet"
chmod 700 "$PKI"

# The node name must resolve (kubectl logs/exec go API server -> kubelet by hostname).
if ! getent hosts "$NODE" >/dev/null; then
    log "adding $NODE to /etc/hosts"
    echo "127.0.0.1 $NODE" >>/etc/hosts
fi

# ---- certificates, keys, token (generated once, reused) ----
sign_cert() { # NAME SUBJECT EXTENSIONS
    local name=$1 subj=$2 ext=$3
    openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr"
    printf '%s\n' "$ext" >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr"
}
if [ ! -s "$PKI/ca.crt" ]; then
    log "generating the cluster CA in $PKI"
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=cowaitlib-kube-ca" -days 3650 -out "$PKI/ca.crt"
    rm -f "$PKI/apiserver.crt" "$PKI/apiserver-kubelet-client.crt"
fi
if [ ! -s "$PKI/apiserver.crt" ] || ! openssl x509 -in "$PKI/apiserver.crt" -noout -ext subjectAltName | grep -q "IP Address:$ADV\b"; then
    log "generating the API server certificate (SANs 127.0.0.1, $SERVICE_IP, $ADV, kubernetes.default.svc)"
    sign_cert apiserver "/CN=kube-apiserver" \
"basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,IP:$ADV,DNS:localhost,DNS:$NODE,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
fi
if [ ! -s "$PKI/apiserver-kubelet-client.crt" ]; then
    sign_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" \
"basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
fi
if [ ! -s "$PKI/sa.key" ]; then
    log "generating the service-account key pair"
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi
if [ ! -s "$PKI/tokens.csv" ]; then
    log "generating the admin token"
    echo "$(openssl rand -hex 24),admin,admin,\"system:masters\"" >"$PKI/tokens.csv"
fi
TOKEN=$(cut -d, -f1 "$PKI/tokens.csv")
cat >"$KCFG.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: cowaitlib
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: cowaitlib
  context:
    cluster: cowaitlib
    user: admin
    namespace: default
current-context: cowaitlib
KUBECONFIG
chmod 600 "$KCFG.tmp"; mv "$KCFG.tmp" "$KCFG"

k() { kubectl --kubeconfig "$KCFG" --request-timeout=5s "$@"; }

# ---- processes ----
# ensure NAME HEALTHCHECK-FUNCTION CMD... : starts CMD unless it already runs, then waits for health.
ensure() {
    local name=$1 check=$2; shift 2
    local pidfile=$RUN/$name.pid logfile=$LOGDIR/$name.log pid
    if pid_alive "$pidfile" "$1"; then
        log "$name already running (pid $(cat "$pidfile"))"
    elif pid=$(pgrep -f -o "^$1( |\$)"); then
        echo "$pid" >"$pidfile"
        log "$name already running (pid $pid, no pid file)"
    else
        log "starting $name (log: $logfile)"
        start_bg "$pidfile" "$logfile" "$@"
    fi
    wait_until 120 "$name health" "$logfile" "$check"
}

etcd_ok() { curl -fsS -m 3 http://127.0.0.1:2379/health | grep -q '"health":"true"'; }
apiserver_ok() { [ "$(k get --raw=/readyz 2>/dev/null)" = ok ]; }
cm_ok() { curl -fsSk -m 3 https://127.0.0.1:10257/healthz | grep -qx ok; }
sched_ok() { curl -fsSk -m 3 https://127.0.0.1:10259/healthz | grep -qx ok; }
kubelet_ok() { curl -fsS -m 3 http://127.0.0.1:10248/healthz | grep -qx ok; }
proxy_ok() { curl -fsS -m 3 http://127.0.0.1:10256/healthz >/dev/null; }
node_ready() { [ "$(k get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
default_sa_ok() { [ -n "$(k -n default get serviceaccount default -o 'jsonpath={.secrets[0].name}')" ]; }

ensure etcd etcd_ok \
    "$(command -v etcd)" --name=cowaitlib --data-dir="$KDIR/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=cowaitlib=http://127.0.0.1:2380

if apiserver_ok && ! pid_alive "$RUN/kube-apiserver.pid" kube-apiserver && ! pgrep -f -o "^$BIN/kube-apiserver " >/dev/null; then
    log "an API server already answers on 127.0.0.1:6443 (not started by this script): using it"
else
    ensure kube-apiserver apiserver_ok \
        "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
        --secure-port=6443 --bind-address=0.0.0.0 --advertise-address="$ADV" \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=Hostname,InternalIP \
        --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC --allow-privileged=true \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --feature-gates="$FEATURES" --profiling=false
fi

ensure kube-controller-manager cm_ok \
    "$BIN/kube-controller-manager" --kubeconfig="$KCFG" --leader-elect=false \
    --bind-address=127.0.0.1 --port=0 \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --service-cluster-ip-range="$SERVICE_CIDR" --feature-gates="$FEATURES" --profiling=false

ensure kube-scheduler sched_ok \
    "$BIN/kube-scheduler" --kubeconfig="$KCFG" --leader-elect=false \
    --bind-address=127.0.0.1 --port=0 --profiling=false

ensure kubelet kubelet_ok \
    "$BIN/kubelet" --kubeconfig="$KCFG" --hostname-override="$NODE" \
    --container-runtime=docker --pod-infra-container-image="$PAUSE_IMAGE" \
    --fail-swap-on=false --cgroup-driver=cgroupfs --cgroups-per-qos=false --enforce-node-allocatable= \
    --root-dir="$KDIR/kubelet" --cert-dir="$KDIR/kubelet/pki" \
    --volume-plugin-dir="$KDIR/kubelet/volume-plugins" \
    --anonymous-auth=false --client-ca-file="$PKI/ca.crt" --authorization-mode=Webhook \
    --read-only-port=0 --healthz-bind-address=127.0.0.1 \
    --image-gc-high-threshold=100 --image-gc-low-threshold=99 \
    '--eviction-hard=memory.available<100Mi,nodefs.available<1%,imagefs.available<1%'

ensure kube-proxy proxy_ok \
    "$BIN/kube-proxy" --kubeconfig="$KCFG" --hostname-override="$NODE" --proxy-mode=iptables \
    --conntrack-max-per-core=0 --healthz-bind-address=127.0.0.1:10256 \
    --metrics-bind-address=127.0.0.1:10249

wait_until 120 "node $NODE Ready" "$LOGDIR/kubelet.log" node_ready
wait_until 120 "service account default/default with its token" "$LOGDIR/kube-controller-manager.log" default_sa_ok

log "cluster ready; kubeconfig:"
echo "$KCFG"
