"""Shared fixtures: real servers on loopback, one fresh set per test.

Each pytest-xdist worker is its own interpreter: it starts its own servers on ports reserved
through servers.free_ports(), which never hands the same port to two workers. Every server is
stopped by PID in the fixture's finalizer, and tests/servers.py kills leftovers at exit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import EtcdCluster, EtcdServer, PgInstance, free_ports, make_tempdir, remove_tree

# Tests read etcd through gRPC too (an independent client: tests/etcd_grpc.py, EtcdServer.client).
# gRPC's fork handlers could kill a child forked while its threads are busy (servers, daemons,
# PostgreSQL tools) before it execs; set before anything loads grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Remember the outcome so a finalizer can print server logs only for failed tests.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"_hatui_rep_{rep.when}", rep)


def _print_logs_if_failed(request: pytest.FixtureRequest, logs: list[Path]) -> None:
    rep = getattr(request.node, "_hatui_rep_call", None)
    if rep is None or not rep.failed:
        return
    for log in logs:
        try:
            lines = log.read_text(errors="replace").splitlines()[-40:]
        except OSError:
            continue
        print(f"----- last lines of {log} -----")
        print("\n".join(lines))


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A fresh temp dir under /tmp, mode 0755 so the postgres OS user can traverse it."""
    d = make_tempdir()
    try:
        yield d
    finally:
        remove_tree(d)


@pytest.fixture
def etcd(request: pytest.FixtureRequest) -> Iterator[EtcdServer]:
    """A fresh single-member etcd, ready (has a leader), on its own free ports."""
    base = make_tempdir("hatui-etcd-")
    server = None
    try:
        client_port, peer_port = free_ports(2)
        server = EtcdServer("etcd0", base / "etcd0", client_port, peer_port)
        server.start().wait_ready()
        yield server
    finally:
        if server is not None:
            _print_logs_if_failed(request, [server.log_path])
            server.stop()
        remove_tree(base)


@pytest.fixture
def etcd_cluster(request: pytest.FixtureRequest) -> Iterator[EtcdCluster]:
    """Three etcd members forming one cluster, all ready."""
    base = make_tempdir("hatui-etcd3-")
    cluster = None
    try:
        cluster = EtcdCluster(base, n=3)
        cluster.start().wait_ready()
        yield cluster
    finally:
        if cluster is not None:
            _print_logs_if_failed(request, [m.log_path for m in cluster.members])
            cluster.stop()
        remove_tree(base)


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> Iterator[PgInstance]:
    """A standalone PostgreSQL, initdb'd and accepting connections (as `postgres` when root)."""
    base = make_tempdir("hatui-pg-")
    instance = None
    try:
        instance = PgInstance(base / "pg")
        instance.start().wait_ready()
        yield instance
    finally:
        if instance is not None:
            _print_logs_if_failed(request, [instance.log_path])
            instance.stop()
        remove_tree(base)
