"""Member replication slots against real etcd and PostgreSQL (issue 14, item 1).

A small max_wal_size and wal_keep_size 16MB (the least allowed) make PostgreSQL recycle WAL as soon as nothing holds it:
only the member slot keeps what a stopped replica still needs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from clusterkit import SMALL_WAL, cluster_factory, rest, slots_on, sql

pytestmark = pytest.mark.integration


@pytest.fixture
def make(request: pytest.FixtureRequest) -> Iterator:
    yield from cluster_factory(request)


def test_member_slots_keep_wal_for_a_stopped_replica_and_follow_a_switchover(make) -> None:
    cluster = make(3, params=SMALL_WAL)
    p0, p1, p2 = cluster.nodes
    # The primary holds an active physical slot per replica, named after the member.
    cluster.wait_for(lambda: {k: v[1] for k, v in slots_on(p0).items()} == {"postgresql1": True,
                                                                            "postgresql2": True},
                     30, "active slots postgresql1 and postgresql2 on the primary")
    assert sql(p1, "SHOW primary_slot_name") == [("postgresql1",)]
    # Each replica keeps a slot for every other member (Patroni 4.1 with member_slots_ttl > 0).
    cluster.wait_for(lambda: set(slots_on(p1)) == {"postgresql0", "postgresql2"}, 30, "member slots on a replica")
    status = json.loads(cluster.etcd_get("/service/batman/status"))
    assert {"postgresql0", "postgresql1", "postgresql2"} <= set(status["slots"])
    assert status["retain_slots"] == ["postgresql0", "postgresql1", "postgresql2"]
    # `hatui list -e` shows them with their lag.
    out = subprocess.run([sys.executable, "-m", "hatui", "--etcd", cluster.etcd_endpoint, "list", "-e"],
                         capture_output=True, text=True, timeout=60, check=False).stdout
    table = out[out.index("Replication slots"):]
    assert re.search(r"\| physical \| postgresql1 +\| member postgresql1 +\| [0-9A-F]+/[0-9A-F]+ +\| +\d+ \|", table), out
    # ...after the member table, with no row that a member-row parser would take for a member.
    assert [line for line in out.splitlines() if line.startswith("| postgresql")][3:] == []
    assert "member postgresql2" in table and "member postgresql0" in table

    # Stop postgresql2 (daemon and PostgreSQL), write far more WAL than the primary keeps on its own.
    marker = p2.data_dir / "hatui-test-marker"
    marker.write_text("not re-cloned")
    p2.daemon.stop(timeout=60)
    cluster.wait_for(lambda: not p2.postmaster_pid(), 30, "postgresql2 stopped")
    stopped_at = sql(p0, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")[0][0]
    sql(p0, "CREATE TABLE big (id int, pad text)")
    for _ in range(4):
        sql(p0, "INSERT INTO big SELECT g, repeat('x', 900) FROM generate_series(1, 40000) g")
        sql(p0, "CHECKPOINT")
    written = sql(p0, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")[0][0] - stopped_at
    assert written > (16 + 3 * 32) * 1024 * 1024, "the test must write more WAL than max_wal_size keeps"
    # The slot of the gone member is still there (member_slots_ttl), holding its WAL.
    slot = slots_on(p0)["postgresql2"]
    assert slot[1] is False and slot[2] <= stopped_at
    log_before = len(p2.log_path.read_text())
    cluster.start_node(2)
    cluster.wait_for(lambda: p2.is_streaming(), 120, "postgresql2 streaming again")
    assert marker.read_text() == "not re-cloned"
    assert "pg_basebackup" not in p2.log_path.read_text()[log_before:]
    # Streaming is not replayed: under load the replica may not have replayed CREATE TABLE yet.
    cluster.wait_for(lambda: sql(p2, "SELECT to_regclass('big') IS NOT NULL") == [(True,)]
                     and sql(p2, "SELECT count(*) FROM big") == [(160000,)], 60, "all rows on postgresql2")

    # Switchover to postgresql1: it already has slots for the others, none for itself.
    assert rest(p0, "POST", "/switchover", {"leader": "postgresql0", "candidate": "postgresql1"}) == 200
    cluster.wait_for(lambda: cluster.leader() == "postgresql1", 60, "postgresql1 leading")
    cluster.wait_for(lambda: {k: v[1] for k, v in slots_on(p1).items()} == {"postgresql0": True,
                                                                            "postgresql2": True},
                     60, "the new primary streaming to both through their slots")
    cluster.wait_for(lambda: p0.is_streaming(), 60, "old primary streaming")
    assert sql(p0, "SHOW primary_slot_name") == [("postgresql0",)]
    # The old primary no longer holds a slot of its own new upstream's name... it keeps copies for
    # the others, not one for itself.
    cluster.wait_for(lambda: set(slots_on(p0)) == {"postgresql1", "postgresql2"}, 30, "slots on the old primary")

    # member_slots_ttl: a member gone longer than that loses its slot.
    assert rest(p1, "PATCH", "/config", {"member_slots_ttl": 3}) == 200
    p2.daemon.stop(timeout=60)
    cluster.wait_for(lambda: "postgresql2" not in slots_on(p1), 60, "the gone member's slot dropped after 3 s")
    assert "for absent cluster member is expired after 3 sec" in p1.log_path.read_text()
