# Shared helpers for the infra/ scripts. Source it; do not run it.
# shellcheck shell=bash
set -Eeuo pipefail

# shellcheck disable=SC2034  # used by the scripts that source this file
CACHE_DIR=/var/cache/cowaitlib
export DEBIAN_FRONTEND=noninteractive
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH}"

_infra_name=$(basename "${0}" .sh)

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "${_infra_name}" "$*"; }
die() { printf '[%s %s] ERROR: %s\n' "$(date +%H:%M:%S)" "${_infra_name}" "$*" >&2; exit 1; }

# shellcheck disable=SC2154
trap 'rc=$?; printf "[%s] FAILED (exit %s) at line %s: %s\n" "${_infra_name}" "$rc" "${LINENO}" "${BASH_COMMAND}" >&2' ERR

[ "$(id -u)" = 0 ] || die "must run as root"

# wait_until SECONDS DESCRIPTION LOGFILE CMD...
# Runs CMD every second until it succeeds. On timeout prints the tail of LOGFILE
# (use - for none) and exits non-zero.
wait_until() {
    local timeout=$1 desc=$2 logfile=$3; shift 3
    local start=$SECONDS
    until "$@" >/dev/null 2>&1; do
        if (( SECONDS - start >= timeout )); then
            printf '[%s] ERROR: timed out after %ss waiting for %s\n' "${_infra_name}" "$timeout" "$desc" >&2
            if [ "$logfile" != - ] && [ -f "$logfile" ]; then
                printf -- '--- last 40 lines of %s ---\n' "$logfile" >&2
                tail -n 40 "$logfile" >&2
            fi
            exit 1
        fi
        sleep 1
    done
    log "$desc: ok after $(( SECONDS - start ))s"
}

# apt_update: runs 'apt-get update' at most once per script run.
_apt_updated=0
apt_update() {
    if [ "$_apt_updated" = 0 ]; then
        log "apt-get update"
        apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null || die "apt-get update failed"
        _apt_updated=1
    fi
}

# apt_install PKG...: installs the packages that are not installed yet.
# 'apt-get update' runs first only when the package lists don't know a package,
# or when the first install attempt fails (stale lists).
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" = 0 ] && return 0
    for p in "${missing[@]}"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then apt_update; break; fi
    done
    log "apt-get install ${missing[*]}"
    local opts=(-o DPkg::Lock::Timeout=300 -y -qq --no-install-recommends)
    if ! apt-get install "${opts[@]}" "${missing[@]}" >/tmp/cowaitlib-apt.log 2>&1; then
        if [ "$_apt_updated" = 0 ]; then
            apt_update
            apt-get install "${opts[@]}" "${missing[@]}" >/tmp/cowaitlib-apt.log 2>&1 \
                || { tail -n 30 /tmp/cowaitlib-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
        else
            tail -n 30 /tmp/cowaitlib-apt.log >&2; die "apt-get install ${missing[*]} failed"
        fi
    fi
}

# debian_mirror: the Debian mirror that apt uses for bookworm (not the security one).
debian_mirror() {
    local m=""
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        m=$(awk 'BEGIN{RS=""} /Types:[^\n]*deb/ && /Suites:[^\n]*bookworm( |\n|$)/ && !/security/ {
                    if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0,RSTART,RLENGTH); sub(/URIs:[ \t]*/,"",s); print s; exit } }' \
                /etc/apt/sources.list.d/*.sources)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk '$1=="deb" && $0 ~ / bookworm / && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
    fi
    [ -n "$m" ] || die "cannot find the Debian bookworm mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
    echo "${m%/}"
}

# require_docker: fails unless the docker engine answers.
require_docker() {
    docker info >/dev/null 2>&1 || die "docker engine is not answering: run infra/docker-up.sh first"
}

# pid_alive PIDFILE NAME: true if PIDFILE names a live process whose command is NAME.
pid_alive() {
    local pidfile=$1 name=$2 pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | awk '{print $1}' | grep -q "${name}\$"
}

# start_bg PIDFILE LOGFILE CMD...: starts CMD detached (own session), records its pid.
start_bg() {
    local pidfile=$1 logfile=$2; shift 2
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    printf '\n=== %s starting: %s\n' "$(date -Is)" "$*" >>"$logfile"
    setsid nohup "$@" >>"$logfile" 2>&1 </dev/null &
    echo $! >"$pidfile"
}
