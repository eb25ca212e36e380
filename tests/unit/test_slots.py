"""Replication slot rules (hatui.daemon.slots), Patroni 4.1's: names, which node keeps which slot, ignore_slots."""

from __future__ import annotations

import json

from hatui.cluster import Cluster, Leader, Member, Status
from hatui.daemon.slots import (
    SlotRow,
    is_ignored,
    permanent_slots,
    slot_name_from_member_name,
    wanted_slots,
)


def member(name: str, **tags) -> Member:
    data = {"conn_url": f"postgres://127.0.0.1:5432/{name}", "role": "replica", "state": "running",
            "xlog_location": 1000}
    if tags:
        data["tags"] = tags
    return Member.from_value(name, json.dumps(data))


def cluster(*members: Member, leader: str = "pg0", slots=None, retain=()) -> Cluster:
    return Cluster("batman", leader=Leader(leader), members=tuple(members),
                   status=Status(5000, slots or {}, tuple(retain)))


def test_slot_name_from_member_name_as_patroni():
    assert slot_name_from_member_name("postgresql0") == "postgresql0"
    assert slot_name_from_member_name("Node-1.example.com") == "node_1_example_com"
    assert slot_name_from_member_name("a b") == "au0032b"
    assert slot_name_from_member_name("x" * 80) == "x" * 63
    assert slot_name_from_member_name("ü") == "u0252"


def test_primary_keeps_a_slot_per_member_but_itself_and_nostream():
    c = cluster(member("pg0"), member("pg1"), member("pg2", nostream=True), slots={"pg1": 900})
    w = wanted_slots(c, "pg0", "primary", False, True, 1800, {})
    assert set(w) == {"pg1"}
    assert w["pg1"].expected_active and w["pg1"].lsn == 900


def test_replicas_keep_slots_for_every_other_member_when_member_slots_ttl_is_on():
    c = cluster(member("pg0"), member("pg1"), member("pg2"), slots={"pg0": 4000, "pg2": 800})
    w = wanted_slots(c, "pg1", "replica", False, True, 1800, {})
    assert set(w) == {"pg0", "pg2"}
    assert not w["pg0"].expected_active and w["pg0"].lsn == 4000


def test_without_member_slots_ttl_replicas_keep_only_cascading_slots():
    c = cluster(member("pg0"), member("pg1"), member("pg2", replicatefrom="pg1"))
    assert set(wanted_slots(c, "pg1", "replica", False, True, 0, {})) == {"pg2"}
    # The leader has no slot for a member cascading from another existing member.
    assert set(wanted_slots(c, "pg0", "primary", False, True, 0, {})) == {"pg1"}
    # ...but a cascading member whose upstream is gone streams from the leader.
    c2 = cluster(member("pg0"), member("pg2", replicatefrom="gone"))
    assert set(wanted_slots(c2, "pg0", "primary", False, True, 0, {})) == {"pg2"}


def test_nofailover_replica_keeps_only_slots_of_members_cascading_from_it():
    c = cluster(member("pg0"), member("pg1"), member("pg2", replicatefrom="pg1"), member("pg3"))
    assert set(wanted_slots(c, "pg1", "replica", True, True, 1800, {})) == {"pg2"}


def test_retained_slots_of_gone_members_are_kept_and_own_name_never():
    c = cluster(member("pg0"), member("pg1"), retain=["pg1", "pg7", "pg0"], slots={"pg7": 700})
    w = wanted_slots(c, "pg0", "primary", False, True, 1800, {})
    assert set(w) == {"pg1", "pg7"} and w["pg7"].lsn == 700 and not w["pg7"].expected_active


def test_use_slots_false_keeps_nothing():
    c = cluster(member("pg0"), member("pg1"))
    assert wanted_slots(c, "pg0", "primary", False, False, 1800, {"perm": None}) == {}


def test_permanent_slots_physical_and_logical():
    slots = {"perm": None, "cdc": {"type": "logical", "database": "app", "plugin": "test_decoding"},
             "bad": {"type": "logical"}, "Bad-Name": None, "pg0": None}
    assert set(permanent_slots(slots)) == {"perm", "cdc", "pg0"}
    c = cluster(member("pg0"), member("pg1"), slots={"cdc": 1234})
    w = wanted_slots(c, "pg0", "primary", False, True, 1800, slots)
    assert set(w) == {"pg1", "perm", "cdc"}  # a permanent slot named after ourselves is skipped
    assert w["cdc"].type == "logical" and w["cdc"].database == "app" and w["cdc"].lsn == 1234
    r = wanted_slots(c, "pg1", "replica", False, True, 1800, slots)
    assert {"cdc", "perm", "pg0"} <= set(r) and not r["cdc"].expected_active
    # a replica that never becomes primary needs no copy of a logical slot
    assert "cdc" not in wanted_slots(c, "pg1", "replica", True, True, 1800, slots)


def test_ignore_slots_matchers():
    row = SlotRow("cdc", "logical", "app", "pgoutput")
    assert is_ignored(row, [{"name": "cdc"}])
    assert is_ignored(row, [{"type": "logical", "database": "app"}])
    assert not is_ignored(row, [{"type": "physical"}, {"name": "cdc", "plugin": "wal2json"}])
    assert not is_ignored(row, [{}, "junk"])


def test_slot_rows_for_list_and_console():
    from hatui.cluster import ClusterConfig
    from hatui.slotview import slot_rows

    c = cluster(member("pg0"), member("pg1"), slots={"pg1": 4000, "cdc": 5000, "pg9": 100}, retain=["pg9"])
    c = Cluster(c.scope, leader=c.leader, members=c.members, status=c.status,
                config=ClusterConfig({"slots": {"cdc": {"type": "logical", "database": "d", "plugin": "p"}}}))
    assert slot_rows(c) == [("cdc", "logical", "permanent", "0/1388", 0),
                            ("pg1", "physical", "member pg1", "0/FA0", 1000),
                            ("pg9", "physical", "gone member (kept for member_slots_ttl)", "0/64", 4900)]


def test_slot_rows_lag_is_never_negative():
    # A /status whose optime was read before a replica confirmed more WAL (seen in a CI run:
    # -16777040 bytes across a WAL switch); the slot is shown as caught up, not ahead.
    from hatui.slotview import slot_rows

    c = cluster(member("pg0"), member("pg1"), slots={"pg1": 5000 + 16_777_040})
    assert slot_rows(c) == [("pg1", "physical", "member pg1", "0/10012D8", 0)]
