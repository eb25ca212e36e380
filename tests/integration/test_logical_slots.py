"""Permanent logical slots survive a switchover and a host crash with no change lost (issue 14, item 2).

The consumer reads with pg_logical_slot_get_changes (which confirms what it returns) and keeps
the LSN of the last change it has; on a new primary it resumes from there, as a streaming
consumer does with START_REPLICATION at its confirmed LSN (here: pg_replication_slot_advance to
it, then reading).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from clusterkit import cluster_factory, crash_host, rest, sql

from hatui.daemon.postgres import format_lsn
from hatui.launcher import LocalCluster, LocalNode

pytestmark = pytest.mark.integration

SLOTS = {"cdc": {"type": "logical", "database": "postgres", "plugin": "test_decoding"},
         "archiver": {"type": "physical"}}


@pytest.fixture
def make(request: pytest.FixtureRequest) -> Iterator:
    yield from cluster_factory(request)


class Consumer:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.confirmed = 0  # the position it confirmed last

    def read(self, node: LocalNode) -> list[int]:
        got = []
        if self.confirmed:
            # Resume where we are, as START_REPLICATION <our LSN> does: the slot must not be past it.
            slot_at = slot_lsn(node, "cdc")
            assert slot_at is not None and slot_at <= self.confirmed, (slot_at, self.confirmed)
            sql(node, "SELECT pg_replication_slot_advance('cdc', %s::pg_lsn)", format_lsn(self.confirmed))
        for (data,) in sql(node, "SELECT data FROM pg_logical_slot_get_changes('cdc', NULL, NULL)"):
            m = re.match(r"table public\.t: INSERT: id\[integer\]:(\d+)", data)
            if m:
                got.append(int(m.group(1)))
        # What get_changes confirmed (a streaming consumer confirms the same: the end of what it got).
        self.confirmed = max(self.confirmed, slot_lsn(node, "cdc") or 0)
        self.ids += got
        return got


def slot_lsn(node: LocalNode, name: str) -> int | None:
    try:
        rows = sql(node, "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint FROM pg_replication_slots "
                         "WHERE slot_name = %s", name)
    except Exception:  # noqa: BLE001 - restarting
        return None
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def slot_type(node: LocalNode, name: str) -> str | None:
    try:
        rows = sql(node, "SELECT slot_type FROM pg_replication_slots WHERE slot_name = %s", name)
    except Exception:  # noqa: BLE001
        return None
    return rows[0][0] if rows else None


def insert(node: LocalNode, first: int, last: int) -> None:
    for i in range(first, last + 1, 10):
        sql(node, "INSERT INTO t SELECT g FROM generate_series(%s::int, %s::int) g", i, min(i + 9, last))


def replayed(cluster: LocalCluster, primary: LocalNode, replica: LocalNode) -> None:
    target = sql(primary, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")[0][0]
    cluster.wait_for(lambda: (sql(replica, "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")[0][0]
                              or 0) >= target, 60, f"{replica.name} replayed up to the primary")


def test_logical_slot_continues_after_switchover_and_host_crash(make) -> None:
    cluster = make(2, dcs_extra={"slots": SLOTS}, params={"wal_level": "logical"})
    p0, p1 = cluster.nodes
    cluster.wait_for(lambda: slot_type(p0, "cdc") == "logical" and slot_type(p0, "archiver") == "physical", 30,
                     "permanent slots on the primary")
    cluster.wait_for(lambda: slot_type(p1, "archiver") == "physical", 60, "the replica's copy of the physical slot")
    assert sql(p1, "SHOW hot_standby_feedback") == [("on",)]
    sql(p0, "CREATE TABLE t (id int)")
    consumer = Consumer()
    insert(p0, 1, 50)
    assert consumer.read(p0) == list(range(1, 51))
    # The slot was made before postgresql1 was cloned: it is copied once its consumer has moved
    # it into WAL the replica has (a copy from before would be unusable there).
    cluster.wait_for(lambda: slot_type(p1, "cdc") == "logical", 60, "the replica's copy of the logical slot")
    cluster.wait_for(lambda: "logical replication slot 'cdc' is ready" in p1.log_path.read_text(), 60,
                     "the primary keeping the catalog rows of the copy (hot_standby_feedback)")
    insert(p0, 51, 100)  # written, not consumed
    replayed(cluster, p0, p1)
    # The replica's copy follows what the consumer confirmed on the primary.
    cluster.wait_for(lambda: slot_lsn(p1, "cdc") == slot_lsn(p0, "cdc"), 60, "the replica's cdc slot advanced")

    # Switchover: the consumer continues on postgresql1 with the rows it had not read, once each.
    assert rest(p0, "POST", "/switchover", {"leader": "postgresql0", "candidate": "postgresql1"}) == 200
    cluster.wait_for(lambda: cluster.leader() == "postgresql1" and p1.is_writable(), 60, "postgresql1 leading")
    assert consumer.read(p1) == list(range(51, 101))
    insert(p1, 101, 150)
    assert consumer.read(p1) == list(range(101, 151))
    insert(p1, 151, 200)  # not consumed when the host dies
    cluster.wait_for(lambda: p0.is_streaming(), 90, "postgresql0 streaming from postgresql1")
    replayed(cluster, p1, p0)
    cluster.wait_for(lambda: slot_lsn(p0, "cdc") == slot_lsn(p1, "cdc"), 60, "postgresql0's cdc slot advanced")

    # Host crash of the primary: postgresql0 takes over; the consumer gets 151..200, nothing more.
    crash_host(p1)
    cluster.wait_for(lambda: cluster.leader() == "postgresql0" and p0.is_writable(), 90, "postgresql0 leading")
    assert consumer.read(p0) == list(range(151, 201))
    assert consumer.ids == list(range(1, 201))
    assert "might be unsafe to use after promote" not in p0.log_path.read_text() + p1.log_path.read_text()
