#!/usr/bin/env bash
# One entry point for people and CI: ensures the machine has what hatui needs, then runs it.
#
#   ./run.sh demo [ARGS]        hatui demo (private etcd + PostgreSQL nodes on loopback)
#   ./run.sh test [PYTEST ARGS] ruff check, then the whole suite in parallel (pytest-xdist): every test,
#                               the long fault scenarios included, but the minute-long partition runs;
#                               with arguments, pytest with just those (default markers: not slow)
#   ./run.sh test-faults [ARGS] the whole fault suite, long scenarios (marked slow) included
#   ./run.sh test-partitions [ARGS] three hosts in network namespaces: partitions, bad links, a checker
#   ./run.sh bench [ARGS]       bench/run.py
#   ./run.sh shell [ARGS]       a shell with the venv first on PATH
#
# Every subcommand first checks, cheaply, for the Debian packages (etcd-server, postgresql),
# the `postgres` OS user (when root) and the .venv; it installs only what is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$PWD"
VENV="$ROOT/.venv"
STAMP="$VENV/.hatui-installed"

say() { printf '[run.sh] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    AS_ROOT=()
else
    AS_ROOT=(sudo)
fi

as_root() {
    if [ "${#AS_ROOT[@]}" -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
        die "need root for: $*; run as root or install sudo"
    fi
    "${AS_ROOT[@]}" "$@"
}

APT_UPDATED=0
apt_install() {
    # UCF_FORCE_CONFFOLD and --force-confold keep config files we wrote ourselves (createcluster.conf)
    # instead of asking: CI has no stdin to answer a prompt.
    local env=(env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1)
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root "${env[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    # Debian's postinst scripts start services through invoke-rc.d / deb-systemd-invoke, both of
    # which ask /usr/sbin/policy-rc.d first; exit 101 there means "do not start". We want no
    # system etcd on 2379 or PostgreSQL on 5432: the tests and the demo start their own servers.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        OWN_POLICY=1
        trap drop_policy EXIT
    fi
    as_root "${env[@]}" apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
    drop_policy
}

OWN_POLICY=0
drop_policy() {
    # Only remove a policy-rc.d we created (container images often ship their own).
    if [ "$OWN_POLICY" -eq 1 ]; then
        as_root rm -f /usr/sbin/policy-rc.d
        OWN_POLICY=0
    fi
}

pg_server_present() {
    local b
    for b in initdb pg_ctl postgres pg_basebackup pg_rewind pg_controldata; do
        compgen -G "/usr/lib/postgresql/*/bin/$b" >/dev/null || return 1
    done
}

ensure_packages() {
    local missing=()
    [ -x /usr/bin/etcd ] || missing+=(etcd-server)
    pg_server_present || missing+=(postgresql)
    # The fencing guard is a small C program built on first use (hatui/daemon/fence_native.py);
    # without a compiler the daemon falls back to a 13 MB Python guard.
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    [ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
    if [ "${#missing[@]}" -eq 0 ]; then
        say "debian packages: present (etcd-server, postgresql, gcc, libc6-dev), skipped"
        return
    fi
    if [[ " ${missing[*]} " == *" postgresql "* ]] && [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        # Without this, installing the package runs pg_createcluster and starts a 'main' cluster on
        # port 5432 owned by the system service. hatui never uses it, and a stray server on a
        # well-known port would only confuse tests and the demo.
        as_root mkdir -p /etc/postgresql-common
        echo 'create_main_cluster = false' | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    say "debian packages: installing ${missing[*]}"
    apt_install "${missing[@]}"
    [ -x /usr/bin/etcd ] || die "etcd-server installed but /usr/bin/etcd is missing"
    pg_server_present || die "postgresql installed but its server binaries are missing"
}

ensure_netns_tools() {
    # The network-partition fault scenarios cut traffic inside a private network namespace with
    # `ip rule` (iproute2). They need root; as another user they are skipped with the reason, so
    # nothing is installed then (no sudo prompt for a test run).
    if [ "$(id -u)" -eq 0 ] && ! command -v ip >/dev/null; then
        say "debian packages: installing iproute2 (network namespace fault scenarios)"
        apt_install iproute2
    fi
}

ensure_backup_tools() {
    # The backup tests restore replicas and whole clusters with Debian's pgbackrest (a real
    # repository in a temp dir); installed like postgresql, only when missing.
    if ! command -v pgbackrest >/dev/null; then
        say "debian packages: installing pgbackrest (backup, bootstrap and replica-method tests)"
        apt_install pgbackrest
    fi
}

ensure_hosts_tools() {
    # The real-hosts scenarios (tests/hosts) build namespaces joined by veth pairs to a bridge and
    # cut links with nftables; as another user they are skipped with the reason, so nothing is
    # installed then.
    if [ "$(id -u)" -eq 0 ] && ! command -v nft >/dev/null; then
        say "debian packages: installing nftables (real-hosts partition scenarios)"
        apt_install nftables
    fi
}

ensure_server_user() {
    # PostgreSQL refuses to run as root, so as root hatui runs it as `postgres` (hatui/osuser.py).
    # Debian's package creates that user; a machine with PostgreSQL from elsewhere may lack it.
    [ "$(id -u)" -eq 0 ] || return 0
    if id -u postgres >/dev/null 2>&1; then
        return
    fi
    say "os user postgres: creating"
    useradd --system --user-group --home-dir /var/lib/postgresql --create-home \
        --shell /usr/sbin/nologin postgres
}

find_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 \
            && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"
            return
        fi
    done
    die "python >= 3.11 not found (Debian 12: apt-get install python3)"
}

ensure_venv() {
    local want
    # The checkout's path is part of the stamp: an editable install points at it.
    want="$( (cat pyproject.toml; echo "$ROOT") | sha256sum | cut -d' ' -f1)"
    # A .venv copied from another machine can point at a python that is gone: check it runs.
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
        if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
            say "venv: up to date, skipped"
            return
        fi
    else
        local py
        py="$(find_python)"
        if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
            # Debian splits ensurepip out of python3; `python3 -m venv` fails without it.
            say "python3-venv: installing"
            apt_install python3-venv
        fi
        say "venv: creating .venv with $py"
        rm -rf "$VENV"
        "$py" -m venv "$VENV"
    fi
    say "venv: installing hatui[test] (pyproject.toml changed or new venv)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    echo "$want" >"$STAMP"
}

ensure_all() {
    ensure_packages
    ensure_server_user
    ensure_venv
    # Byte-compile hatui even when PYTHONDONTWRITEBYTECODE is set: every daemon, CLI call and
    # test process would otherwise compile the sources again (slower start, ~3 MB more per daemon).
    "$VENV/bin/python" -m compileall -q hatui >/dev/null || true
}

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

cmd="${1:-}"
if [ $# -gt 0 ]; then shift; fi

case "$cmd" in
    demo)
        ensure_all
        exec "$VENV/bin/hatui" demo "$@"
        ;;
    test)
        ensure_all
        ensure_netns_tools
        ensure_backup_tools
        # Lint first (rules in pyproject.toml): a finding fails the run before any server starts.
        "$VENV/bin/ruff" check hatui tests bench || die "ruff check found problems (listed above)"
        # exec: the script's exit code is pytest's (5 = no tests collected counts as a failure).
        if [ $# -eq 0 ]; then
            # The whole suite (what CI runs): the long fault scenarios (slow) included, only the
            # minute-long real-hosts runs and the 10-minute nemesis (partitions_only) left to
            # ./run.sh test-partitions. A later -m on the command line would win, so none is given.
            ensure_hosts_tools
            exec "$VENV/bin/python" -m pytest -m "not partitions_only" -n auto --dist loadgroup
        fi
        exec "$VENV/bin/python" -m pytest -n auto --dist loadgroup "$@"
        ;;
    test-faults)
        ensure_all
        ensure_netns_tools
        # addopts deselects `slow`; a later -m on the command line wins. Every fault scenario, the
        # long ones included, each cluster on its own free ports (safe in parallel).
        # The quicker real-hosts scenarios (tests/hosts) join them; the minute-long ones and the
        # random nemesis (partitions_only) are left to test-partitions.
        ensure_hosts_tools
        exec "$VENV/bin/python" -m pytest -m "not partitions_only" -n auto --dist loadgroup tests/faults tests/hosts "$@"
        ;;
    test-partitions)
        ensure_all
        ensure_netns_tools
        ensure_hosts_tools
        # One scenario at a time: each runs 3 etcd + 3 PostgreSQL + 3 daemons (9 servers) and the
        # figures (failover time, unavailable seconds...) mean more on a machine not also running
        # a second cluster. The table of figures is printed at the end.
        exec "$VENV/bin/python" -m pytest -m "slow or not slow" -p no:xdist tests/hosts "$@"
        ;;
    bench)
        ensure_all
        # Patroni, the peer, gets its own venv from Debian's python3 (the postgres user must be
        # able to run it), which needs python3-venv.
        /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
        # --partitions runs the real-hosts scenarios (tests/hosts) on both systems.
        case " $* " in *" --partitions "*) ensure_netns_tools; ensure_hosts_tools ;; esac
        exec "$VENV/bin/python" bench/run.py "$@"
        ;;
    shell)
        ensure_all
        export VIRTUAL_ENV="$VENV"
        export PATH="$VENV/bin:$PATH"
        shell="${SHELL:-/bin/bash}"
        case "$shell" in */nologin|*/false) shell=/bin/bash ;; esac  # system users
        exec "$shell" "$@"
        ;;
    -h|--help|help)
        usage
        ;;
    *)
        usage >&2
        exit 2
        ;;
esac
