"""Quorum commit: the leader race (ha.py) and the GUC / `/sync` transitions (sync.py).

The transition test is a model check: PostgreSQL may still run any GUC we set since it last
confirmed one, and after every `/sync` write the key must be safe for all of them. That is the
whole promise of synchronous replication: whoever `/sync` lets promote has every acknowledged
commit.
"""

from __future__ import annotations

from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from ha_builders import LSN, cluster, decide_for, peer, peers, pg_replica, replica
from hatui.daemon.sync import (STRICT_PLACEHOLDER, guc_state, next_step, quorum_is_safe, quorum_needed,
                               standby_names_value)

F = frozenset


def quorum3(**kw):
    """pg0 (the leader) is gone; /sync says ANY 1 of pg1, pg2: either may lack a commit."""
    kw.setdefault("optime", LSN)
    kw.setdefault("synchronous_mode", "quorum")
    kw.setdefault("sync", ("pg0", ["pg1", "pg2"]))
    kw.setdefault("sync_quorum", 1)
    return cluster([replica("pg1"), replica("pg2")], **kw)


# --- the leader race -----------------------------------------------------------------------------

def test_quorum_candidate_promotes_when_the_other_voter_is_at_or_behind() -> None:
    d = decide_for(quorum3(), "pg1", pg_replica(lsn=LSN), peers=peers(peer("pg2", lsn=LSN - 10)))
    assert d.kinds == ["acquire_lock", "promote"]


def test_quorum_candidate_waits_when_a_voter_is_unreachable() -> None:
    # pg2 may be the only standby that acknowledged the last commits: pg1 must not promote.
    d = decide_for(quorum3(), "pg1", pg_replica(), peers=peers(peer("pg2", reachable=False)))
    assert "acquire_lock" not in d.kinds and "promote" not in d.kinds
    assert d.notes == (("Quorum requirement 2 can't be reached: 1 of the voters ['pg1', 'pg2'] seen at or "
                        "behind my wal position; to promote pg1 anyway: hatui failover batman --candidate pg1"),)


def test_quorum_voter_with_unknown_position_is_not_a_vote() -> None:
    d = decide_for(quorum3(), "pg1", pg_replica(), peers=peers(peer("pg2", lsn=None)))
    assert "acquire_lock" not in d.kinds


def test_quorum_voter_ahead_wins_instead() -> None:
    d = decide_for(quorum3(), "pg1", pg_replica(), peers=peers(peer("pg2", lsn=LSN + 5)))
    assert d.actions == () and d.notes == ("Wal position of pg2 is ahead of my wal position",)


def test_quorum_old_leader_seen_behind_is_enough() -> None:
    c = cluster([replica("pg0"), replica("pg1"), replica("pg2")], optime=LSN, synchronous_mode="quorum",
                sync=("pg0", ["pg1", "pg2"]), sync_quorum=1)
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg0", lsn=LSN), peer("pg2", reachable=False)))
    assert d.kinds == ["acquire_lock", "promote"]


def test_quorum_non_voter_never_races_automatically() -> None:
    c = cluster([replica("pg1"), replica("pg2"), replica("pg3")], optime=LSN, synchronous_mode="quorum",
                sync=("pg0", ["pg1", "pg2"]), sync_quorum=1)
    d = decide_for(c, "pg3", pg_replica(), peers=peers(peer("pg1"), peer("pg2")))
    assert d.actions == () and d.notes == (
        ("pg3 is not a synchronous standby and synchronous mode is on: /sync lists pg1, pg2 (leader pg0) as holding "
         "every acknowledged commit, so only they may take over; to promote pg3 anyway: "
         "hatui failover batman --candidate pg3"),)


def test_quorum_explicit_failover_skips_the_vote() -> None:
    # An operator's failover to a named member accepts what the others may have had (spec 2.6).
    c = quorum3(failover={"member": "pg1"})
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg2", reachable=False)))
    assert d.kinds[:1] == ["acquire_lock"] and "promote" in d.kinds


def test_quorum_zero_needs_only_the_candidate() -> None:
    # synchronous_mode on, settled: every listed standby has every commit.
    c = quorum3(synchronous_mode=True, sync=("pg0", ["pg1"]), sync_quorum=0)
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg2", reachable=False)))
    assert d.kinds == ["acquire_lock", "promote"]


def test_widened_on_mode_key_is_honoured_too() -> None:
    # Mid-transition /sync in on mode: pg2 is being added (quorum 1), so pg1 alone is not enough.
    c = quorum3(synchronous_mode=True)
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg2", reachable=False)))
    assert "promote" not in d.kinds


# --- GUC spelling ----------------------------------------------------------------------------------

def test_quorum_guc_and_its_state() -> None:
    assert standby_names_value(["a", "b", "c"], 1, strict=False, quorum=True) == 'ANY 1 ("a","b","c")'
    assert standby_names_value(["a"], 2, strict=False, quorum=True) == 'ANY 1 ("a")'
    assert guc_state('ANY 1 ("a","b","c")') == (1, F("abc"))
    assert guc_state('2 ("a","b")') == (2, F("ab"))
    assert guc_state('"a"') == (1, F("a"))
    assert guc_state(f'"{STRICT_PLACEHOLDER}"') == (0, F())
    assert guc_state("") == (0, F()) and guc_state(None) == (0, F())


def test_quorum_needed_examples() -> None:
    assert quorum_needed(1, F("ab"), F("ab")) == 1  # ANY 1 of 2: see both
    assert quorum_needed(2, F("ab"), F("ab")) == 0  # both have everything
    assert quorum_needed(1, F("a"), F("ab")) == 1
    assert quorum_needed(1, F("ac"), F("ab")) == 2  # c acknowledges but is no voter: see every voter
    assert quorum_needed(1, F("cd"), F("ab")) == 2  # no voter need have it: nobody may promote
    assert quorum_needed(0, F(), F("ab")) == 2  # asynchronous: no voter can be enough
    assert quorum_needed(0, F(), F()) == 0


@given(k=st.integers(0, 3), s=st.sets(st.sampled_from("abcd")), q=st.integers(0, 4),
       v=st.sets(st.sampled_from("abcd")))
def test_quorum_is_safe_matches_brute_force(k: int, s: set, q: int, v: set) -> None:
    """Safe means: every set of k standbys that may acknowledge a commit meets every set of q + 1
    voters a candidate could see."""
    k = min(k, len(s))
    acks = [set(c) for c in combinations(sorted(s), k)] if k else [set()]
    views = [set(c) for c in combinations(sorted(v), q + 1)] if q + 1 <= len(v) else []
    brute = all(a & w for a in acks for w in views)
    assert quorum_is_safe(k, F(s), q, F(v)) == brute


# --- transitions -----------------------------------------------------------------------------------

NAMES = "abc"
wants = st.sets(st.sampled_from(NAMES)).flatmap(
    lambda s: st.tuples(st.integers(min(1, len(s)), max(len(s), 0)), st.just(F(s))))


@settings(max_examples=300)
@given(steps=st.lists(st.tuples(wants, st.booleans()), min_size=1, max_size=12))
def test_transitions_never_leave_sync_unsafe(steps) -> None:
    guc, dcs = (0, F()), (0, F())
    in_effect = {guc}  # what PostgreSQL may still run with
    for want, applied in steps:
        confirmed = F()
        if applied:  # PostgreSQL reports the GUC we set last: older ones are gone
            in_effect, confirmed = {guc}, guc[1]
        for _ in range(4):  # one manage() cycle: at most a few steps
            step = next_step(guc, dcs, want, confirmed)
            if step is None:
                break
            kind, value = step
            if kind == "guc":
                guc = value
                in_effect.add(guc)
                break
            dcs = value
            for g in in_effect:
                assert quorum_is_safe(*g, *dcs), (g, dcs, in_effect)


@given(start=wants, want=wants)
def test_transitions_reach_the_settled_state(start, want) -> None:
    guc, dcs = start, (quorum_needed(*start, start[1]), start[1])
    for _ in range(10):
        step = next_step(guc, dcs, want, want[1] if guc == want else F())
        if step is None:
            break
        kind, value = step
        guc, dcs = (value, dcs) if kind == "guc" else (guc, value)
    assert guc == want and dcs == (quorum_needed(*want, want[1]), want[1])

