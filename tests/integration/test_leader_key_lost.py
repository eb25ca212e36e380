"""A running primary whose leader key vanished takes it back; it never demotes to a replica that
only seems ahead of it (against real etcd and PostgreSQL).

The leader key disappears while the primary is alive and writing: an operator deleted it, or it
expired while the leader was cut off from etcd with failsafe mode on (seen in the real-hosts
scenario "leader cut from etcd, failsafe on", tests/hosts). The primary then races for the key
and compares its WAL position with its replicas'. It read its own position at the start of the
cycle and the replicas' a few milliseconds later, over their REST APIs; under a steady write load
a streaming replica had received more by then, so the primary judged a replica "ahead of my wal
position", stopped itself with `immediate`, ran crash recovery, started as a replica, and only
took the key back on a new timeline a cycle later: seconds of refused writes for nothing. A
replica cannot hold WAL its primary has not flushed, so the primary's position must be read
after the replicas' (hatui/daemon/loop.py, `_fresh_primary_position`).
"""

from __future__ import annotations

import threading

import psycopg
import pytest
from servers import keep_if_failed, make_tempdir, reserve_ports

from hatui.etcd.kv import EtcdHttp
from hatui.launcher import LocalCluster

pytestmark = pytest.mark.integration

DCS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 5}
ROUNDS = 6


def test_primary_takes_its_deleted_leader_key_back_without_demoting(request) -> None:
    base = make_tempdir("hatui-key-lost-")
    cluster = reserve_ports(LocalCluster(base, 3, dcs=dict(DCS)))
    stop = threading.Event()
    try:
        cluster.start()
        leader = cluster.node(cluster.wait_for(cluster.leader, 120, "a leader"))
        for node in cluster.nodes:
            if node is not leader:
                cluster.wait_for(node.is_streaming, 120, f"{node.name} streaming")
        with leader.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS load (id bigserial PRIMARY KEY, pad text)")

        commits = [0]

        def write() -> None:
            # A steady stream of small commits, so that the replicas keep receiving WAL.
            with leader.connect() as conn:
                conn.autocommit = True
                while not stop.is_set():
                    try:
                        conn.execute("INSERT INTO load (pad) VALUES (repeat('x', 200))")
                        commits[0] += 1
                    except psycopg.Error:
                        return

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        etcd = EtcdHttp(cluster.etcd_endpoint, timeout=3.0)
        key = f"/service/{cluster.scope}/leader"
        for i in range(ROUNDS):
            before = leader.log_path.read_text().count("acquired session lock as a leader")
            committed = commits[0]
            assert etcd.delete(key), "the leader key was there to delete"
            cluster.wait_for(
                lambda b=before: leader.log_path.read_text().count("acquired session lock as a leader") > b
                or "demot" in leader.log_path.read_text(), 60, f"round {i + 1}: the primary racing for its key")
            log = leader.log_path.read_text()
            assert "demot" not in log, log[-4000:]
            assert cluster.leader() == leader.name
            assert commits[0] > committed, "the writer kept committing through the round"
        # Same timeline all along: nobody was promoted, not even the old primary again.
        assert leader.patroni().get("timeline") == 1
        assert leader.is_writable()
    finally:
        stop.set()
        cluster.stop()
        keep_if_failed(request, base, cluster.nodes)
