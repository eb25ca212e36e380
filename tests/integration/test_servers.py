"""The test servers themselves: real etcd and PostgreSQL, started and stopped by PID."""

from __future__ import annotations

import os
import time

import grpc
import psycopg
import pytest
from etcd3.exceptions import Etcd3Exception
from servers import (
    EtcdServer,
    ManagedProcess,
    PgInstance,
    free_ports,
    pids_in_group,
    process_owner_uid,
    process_tree,
)

pytestmark = pytest.mark.integration


def _put_with_retry(client, key: str, value: str, attempts: int = 100) -> None:
    # After a member stops the others may be electing a leader; a put fails until they agree.
    last: Exception | None = None
    for _ in range(attempts):
        try:
            client.put(key, value)
            return
        except (Etcd3Exception, grpc.RpcError) as e:
            last = e
            time.sleep(0.1)
    raise AssertionError(f"put never succeeded: {last!r}")


def test_free_ports_are_distinct() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(1024 < p < 65536 for p in ports)


def test_single_etcd_put_get(etcd: EtcdServer) -> None:
    client = etcd.client()
    try:
        client.put("/hatui-test/key", "value")
        value, meta = client.get("/hatui-test/key")
        assert value == b"value"
        assert meta.key == b"/hatui-test/key"
        status = client.status()
        assert status.leader is not None
    finally:
        client.close()


def test_etcd_cluster_survives_one_member_stopped(etcd_cluster) -> None:
    assert len(etcd_cluster.members) == 3
    assert len(set(etcd_cluster.endpoints)) == 3
    first = etcd_cluster.client(0)
    try:
        _put_with_retry(first, "/hatui-test/before", "1")
        assert len(list(first.members)) == 3
    finally:
        first.close()

    stopped_pid = etcd_cluster.members[0].pid
    etcd_cluster.stop_member(0)
    assert not etcd_cluster.members[0].alive
    assert not os.path.exists(f"/proc/{stopped_pid}")

    survivor = etcd_cluster.client(1)
    try:
        _put_with_retry(survivor, "/hatui-test/after", "2")
        assert survivor.get("/hatui-test/after")[0] == b"2"
        assert survivor.get("/hatui-test/before")[0] == b"1"
    finally:
        survivor.close()

    # The stopped member rejoins from its data dir and catches up on what it missed.
    etcd_cluster.start_member(0)
    rejoined = etcd_cluster.client(0)
    try:
        for _ in range(100):
            try:
                if rejoined.get("/hatui-test/after")[0] == b"2":
                    break
            except (Etcd3Exception, grpc.RpcError):
                pass  # still catching up with the leader
            time.sleep(0.1)
        assert rejoined.get("/hatui-test/after")[0] == b"2"
    finally:
        rejoined.close()


def test_etcd_suspend_and_resume(etcd: EtcdServer) -> None:
    etcd.suspend()
    assert not etcd.healthy()  # a stopped process answers nothing
    assert etcd.alive
    etcd.resume()
    etcd.wait_ready()
    assert etcd.healthy()


def test_pg_accepts_connections(pg: PgInstance) -> None:
    with psycopg.connect(pg.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        port = conn.execute("SHOW port").fetchone()[0]
        sockets = conn.execute("SHOW unix_socket_directories").fetchone()[0]
    assert int(port) == pg.port
    assert sockets == str(pg.socket_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another OS user")
def test_pg_runs_as_unprivileged_user_when_root(pg: PgInstance) -> None:
    import pwd

    uid = process_owner_uid(pg.pid)
    assert uid != 0
    assert pwd.getpwuid(uid).pw_name == "postgres"
    assert os.stat(pg.data_dir).st_uid == uid


def test_pg_stop_leaves_no_process(workdir) -> None:
    instance = PgInstance(workdir / "pg")
    try:
        instance.start().wait_ready()
        pid = instance.pid
        with psycopg.connect(instance.dsn) as conn:
            backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            # The postmaster's children: our backend plus checkpointer, walwriter, ...
            family = process_tree(pid)
            assert family[0] == pid and backend_pid in family and len(family) > 3
        instance.stop()
        assert not instance.alive
        for p in family:
            assert not os.path.exists(f"/proc/{p}")
    finally:
        instance.stop()


def test_pg_backends_do_not_outlive_a_stop_after_suspend(pg: PgInstance) -> None:
    # A suspended postmaster must still be stopped: stop() sends SIGCONT before SIGINT.
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        family = process_tree(pg.pid)
        pg.suspend()
        pg.stop(timeout=10)
    assert not pg.alive
    for p in family:
        assert not os.path.exists(f"/proc/{p}")


def test_etcd_stop_and_kill_leave_no_process(workdir) -> None:
    client_port, peer_port = free_ports(2)
    server = EtcdServer("etcd0", workdir / "etcd0", client_port, peer_port)
    try:
        server.start().wait_ready()
        pid = server.pid
        server.stop()
        assert not os.path.exists(f"/proc/{pid}")
        server.start().wait_ready()  # restarts on its existing data dir
        pid = server.pid
        server.kill()
        assert not os.path.exists(f"/proc/{pid}")
        assert pids_in_group(pid) == []
    finally:
        server.stop()


def test_managed_process_group_is_swept(workdir) -> None:
    # A parent that leaves a child behind in its group: stop() must not leave the child running.
    proc = ManagedProcess(["sh", "-c", "sleep 300 & exec sleep 300"], workdir / "sh.log").start()
    assert proc.alive
    for _ in range(50):
        if len(pids_in_group(proc.pgid)) == 2:
            break
        time.sleep(0.05)
    members = pids_in_group(proc.pgid)
    assert len(members) == 2
    proc.suspend()
    proc.resume()
    proc.stop(timeout=5)
    assert not proc.alive
    assert pids_in_group(proc.pgid) == []
