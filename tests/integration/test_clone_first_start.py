"""A fresh clone whose first start fails starts again as a replica, never as a crashed primary.

Real etcd and PostgreSQL. Seen once on the shared test machine: another process took the new
replica's port, so its first start after pg_basebackup failed. The data dir then holds a base
backup whose pg_control says "in production" (copied from the primary) and a backup_label; the
daemon read that as a crashed primary and ran single-user crash recovery, which ended the
backup's recovery with a checkpoint ahead of the leader: the replica could never stream again.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hatui.launcher import LocalCluster
from servers import keep_if_failed, make_tempdir

pytestmark = pytest.mark.integration

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


def test_a_clone_whose_first_start_failed_becomes_a_streaming_replica(request: pytest.FixtureRequest) -> None:
    base = make_tempdir("hatui-clone-start-")
    cluster = LocalCluster(base, 2, dcs=dict(FAST))
    try:
        cluster.write_configs()
        cluster.start_etcd()
        cluster.start_node(0)
        leader = cluster.node(cluster.wait_for(cluster.leader, 120, "a leader"))
        replica = next(n for n in cluster.nodes if n is not leader)
        # Hold the replica's PostgreSQL port, as the other process did, while it clones.
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            blocker.bind(("127.0.0.1", replica.pg_port))
            blocker.listen(1)
            cluster.start_node(cluster.nodes.index(replica))
            cluster.wait_for(lambda: "replica has been created" in replica.log_path.read_text(), 120,
                             f"{replica.name} cloned")
            cluster.wait_for(lambda: "Address already in use" in replica.log_path.read_text() + _server_log(cluster, replica),
                             60, f"{replica.name}'s first start to fail on its port")
        finally:
            blocker.close()
        cluster.wait_for(replica.is_streaming, 120, f"{replica.name} streaming once its port is free")
        log = replica.log_path.read_text()
        assert "crash recovery in a single user mode" not in log, log[-3000:]
        with leader.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS clone_start (x int)")
            conn.execute("INSERT INTO clone_start VALUES (1)")
            lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        cluster.wait_for(lambda: _replayed_past(replica, lsn), 60, f"{replica.name} replaying the leader's WAL")
    finally:
        cluster.stop()
        keep_if_failed(request, base, cluster.nodes)


def _server_log(cluster: LocalCluster, node) -> str:
    logs = sorted((Path(cluster.base_dir) / "data" / f"{node.name}-log").glob("*"))
    return "".join(p.read_text(errors="replace") for p in logs if p.is_file())


def _replayed_past(node, lsn: str) -> bool:
    with node.connect() as conn:
        return bool(conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0])
