#!/usr/bin/env bash
# End-to-end check of the running infra: three Jobs on the cluster (local image with
# imagePullPolicy Never; the same image pulled from the local registry; an in-cluster HTTPS
# call to the API server with the pod's service-account token and CA). Deletes them afterwards.
source "$(dirname "$0")/lib.sh"

KCFG=/var/lib/cowaitlib-kube/admin.kubeconfig
NS=default
k() { kubectl --kubeconfig "$KCFG" --request-timeout=10s -n "$NS" "$@"; }
JOBS=(cowaitlib-smoke-local cowaitlib-smoke-registry cowaitlib-smoke-incluster)

cleanup() {
    k delete job "${JOBS[@]}" --ignore-not-found --cascade=foreground --wait --timeout=60s >/dev/null 2>&1 || true
    # The kubelet removes dead containers of deleted pods within a minute; don't leave them for that.
    docker ps -aq --filter name=_cowaitlib-smoke- | xargs -r docker rm -f >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

job() { # NAME IMAGE PULL-POLICY PYTHON-CODE
    cat <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: $1}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: $2
        imagePullPolicy: $3
        command:
        - python3
        - -c
        - |
$(printf '%s\n' "$4" | sed 's/^/          /')
YAML
}
INCLUSTER='import os, ssl, urllib.request, urllib.error
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
ctx = ssl.create_default_context(cafile=sa + "ca.crt")
url = "https://%s:%s/api" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + open(sa + "token").read()})
try:
    status = urllib.request.urlopen(req, context=ctx, timeout=10).status
except urllib.error.HTTPError as e:
    status = e.code
print("HTTP", status)'

{
    job cowaitlib-smoke-local cowaitlib/python-base:3.11 Never 'print(42)'
    echo ---
    job cowaitlib-smoke-registry 127.0.0.1:5000/cowaitlib/python-base:3.11 Always 'print(43)'
    echo ---
    job cowaitlib-smoke-incluster cowaitlib/python-base:3.11 Never "$INCLUSTER"
} | k apply -f - >/dev/null

check() { # JOB EXPECTED-LOG-REGEX
    local j=$1 want=$2 out
    local start=$SECONDS st
    while :; do
        st=$(k get job "$j" -o 'jsonpath={.status.succeeded}/{.status.failed}')
        [ "$st" = 1/ ] && break
        if [ "${st#*/}" != "" ] || (( SECONDS - start >= 120 )); then
            k logs "job/$j" >&2 || true
            k describe job "$j" >&2 || true
            k describe pods -l "job-name=$j" >&2 || true
            die "job $j did not complete (succeeded/failed: $st)"
        fi
        sleep 1
    done
    out=$(k logs "job/$j")
    echo "$out" | grep -qE "$want" || die "job $j: log '$out' does not match '$want'"
    log "job $j completed, log: $out"
}
check cowaitlib-smoke-local '^42$'
check cowaitlib-smoke-registry '^43$'
check cowaitlib-smoke-incluster '^HTTP (200|401|403)$'
log "all smoke jobs passed"
