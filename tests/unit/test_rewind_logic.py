"""Pure helpers of hatui.daemon.postgres: LSNs, timeline history, the divergence check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hatui.daemon.postgres import (
    PostgresError,
    conf_value,
    format_lsn,
    initdb_args,
    make_conninfo,
    mask_conninfo,
    needs_rewind,
    parse_controldata,
    parse_history,
    parse_lsn,
)

# --- LSNs -----------------------------------------------------------------------------------


def test_parse_lsn_examples():
    assert parse_lsn("0/3000060") == 50331744
    assert parse_lsn("0/0") == 0
    assert parse_lsn("1/0") == 1 << 32
    assert parse_lsn(" 16/B374D848 ") == (0x16 << 32) | 0xB374D848


def test_format_lsn_matches_postgres_spelling():
    assert format_lsn(50331744) == "0/3000060"
    assert format_lsn(0) == "0/0"
    assert format_lsn((0x16 << 32) | 0xB374D848) == "16/B374D848"


@pytest.mark.parametrize("bad", ["", "3000060", "0/", "/1", "x/1", "0/zz"])
def test_parse_lsn_rejects_garbage(bad):
    with pytest.raises(ValueError):
        parse_lsn(bad)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_lsn_round_trip(value):
    assert parse_lsn(format_lsn(value)) == value


# --- history files ----------------------------------------------------------------------------

HISTORY_3 = """1\t0/305D840\tno recovery target specified

2\t0/4000000\tno recovery target specified
# a comment
"""


def test_parse_history():
    assert parse_history(HISTORY_3) == [
        (1, 0x305D840, "no recovery target specified"),
        (2, 0x4000000, "no recovery target specified"),
    ]


def test_parse_history_tolerates_missing_reason_and_junk():
    assert parse_history("1\t0/10\nnot a line\n3 zz/1 x\n") == [(1, 0x10, "")]


# --- needs_rewind -----------------------------------------------------------------------------

SWITCH = parse_lsn("0/305D840")
LEADER_TL2 = [(1, SWITCH, "no recovery target specified")]


def test_old_primary_that_wrote_past_the_switch_point_diverged():
    assert needs_rewind(1, SWITCH + 0x100, LEADER_TL2) is True


def test_node_exactly_at_the_switch_point_can_follow():
    # clean switchover: the new leader received our shutdown checkpoint and switched right after it
    assert needs_rewind(1, SWITCH, LEADER_TL2) is False


def test_replica_behind_the_switch_point_can_follow():
    assert needs_rewind(1, SWITCH - 0x1000, LEADER_TL2) is False


def test_same_timeline_never_needs_rewind():
    assert needs_rewind(2, SWITCH + 10**9, LEADER_TL2) is False
    assert needs_rewind(1, 10**9, [], leader_tl=1) is False


def test_local_timeline_ahead_of_leader_diverged():
    assert needs_rewind(3, SWITCH, LEADER_TL2) is True
    assert needs_rewind(2, 0, [], leader_tl=1) is True


def test_leader_tl_defaults_to_one_past_its_history():
    # explicit leader_tl agrees with the default
    assert needs_rewind(2, 0, LEADER_TL2, leader_tl=2) is needs_rewind(2, 0, LEADER_TL2) is False


def test_multi_step_history_uses_the_switch_point_of_our_timeline():
    history = [(1, 0x3000000, ""), (2, 0x5000000, ""), (3, 0x7000000, "")]
    assert needs_rewind(2, 0x5000000, history) is False
    assert needs_rewind(2, 0x5000001, history) is True
    assert needs_rewind(1, 0x4000000, history) is True
    assert needs_rewind(3, 0x6000000, history) is False


def test_timeline_missing_from_leader_lineage_diverged():
    # we were promoted to TL 2 on a branch; the leader went 1 -> 3 elsewhere
    assert needs_rewind(2, 0x3000000, [(1, 0x3000000, ""), (3, 0x4000000, "")], leader_tl=4) is True


def test_history_entries_may_carry_extra_fields():
    # the DCS `history` key stores [tl, lsn, reason, timestamp, new_leader]
    assert needs_rewind(1, SWITCH + 1, [[1, SWITCH, "reason", "2026-11-25T19:45:40+00:00", "pg1"]]) is True


@given(
    switches=st.lists(st.integers(min_value=1, max_value=2**40), min_size=1, max_size=6),
    local_tl_index=st.integers(min_value=0, max_value=5),
    offset=st.integers(min_value=-(2**20), max_value=2**20),
)
def test_needs_rewind_is_exactly_past_the_switch_point(switches, local_tl_index, offset):
    switches = sorted(switches)
    history = [(tl, lsn, "") for tl, lsn in enumerate(switches, start=1)]
    local_tl = min(local_tl_index, len(history) - 1) + 1
    switch = history[local_tl - 1][1]
    local_lsn = max(0, switch + offset)
    assert needs_rewind(local_tl, local_lsn, history) is (local_lsn > switch)


# --- controldata, config and conninfo text ---------------------------------------------------

CONTROLDATA = """pg_control version number:            1300
Database system identifier:           7712193093952314556
Database cluster state:               shut down in recovery
Latest checkpoint location:           0/3000028
Latest checkpoint's TimeLineID:       2
Minimum recovery ending location:     0/30000A0
Min recovery ending loc's timeline:   2
"""


def test_parse_controldata():
    data = parse_controldata(CONTROLDATA)
    assert data["Database system identifier"] == "7712193093952314556"
    assert data["Database cluster state"] == "shut down in recovery"
    assert data["Latest checkpoint's TimeLineID"] == "2"
    assert parse_lsn(data["Minimum recovery ending location"]) == 0x30000A0


def test_conf_value_quotes_and_escapes():
    assert conf_value("128MB") == "'128MB'"
    assert conf_value(True) == "'on'"
    assert conf_value("it's") == "'it''s'"
    assert conf_value("a\\b") == "'a\\\\b'"


def test_conninfo_quoting_and_masking():
    info = make_conninfo(host="127.0.0.1", port=5432, user="rep", password="p w'x", dbname=None)
    assert info == "host=127.0.0.1 port=5432 user=rep password='p w\\'x'"
    assert mask_conninfo(info) == "host=127.0.0.1 port=5432 user=rep password=********"
    assert mask_conninfo("host=h password=secret user=u") == "host=h password=******** user=u"


def test_initdb_args():
    assert initdb_args(["data-checksums", {"encoding": "UTF8", "locale": "C"}]) == [
        "--data-checksums", "--encoding=UTF8", "--locale=C",
    ]
    with pytest.raises(PostgresError, match="pgdata"):
        initdb_args([{"pgdata": "/x"}])
