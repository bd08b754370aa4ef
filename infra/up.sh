#!/usr/bin/env bash
# Installs and starts all test infrastructure: docker engine, Python base image, local
# registry, Kubernetes binaries, single-node cluster. Idempotent; fast when all is up.
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
start=$SECONDS
for step in docker-up base-image registry-up kube-build kube-up; do
    t=$SECONDS
    "$here/$step.sh"
    log "$step done in $(( SECONDS - t ))s"
done
log "all infrastructure up in $(( SECONDS - start ))s"
log "KUBECONFIG=/var/lib/cowaitlib-kube/admin.kubeconfig registry=127.0.0.1:5000 image=cowaitlib/python-base:3.11"
