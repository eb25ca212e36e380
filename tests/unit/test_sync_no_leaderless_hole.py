"""Synchronous mode: a primary crash never leaves the cluster leaderless while a member provably
holds every acknowledged commit, and never promotes one that may not (issue 16).

A model of the leader's side (sync.manage: next_step, applying the GUC, waiting for PostgreSQL to
report it, writing /sync) runs random orders of sync-set changes; the primary crashes after any
step. At every crash point the real `decide()` runs for each surviving standby, with cluster
views built from etcd-shaped keys (ha_builders):

* safety, at every crash point: for every set of standbys that may have acknowledged the last
  commit under a GUC PostgreSQL may still run with, a member that decides to take the lock is one
  of them (it has every acknowledged commit);
* liveness, at every point between two cycles: if some standby is in every such set (it
  provably holds every acknowledged commit), some survivor decides to take the lock.

PostgreSQL reports a new GUC either promptly (within the cycle's wait, the normal case: a
streaming standby answers in milliseconds) or late (then the report is modelled as arriving
just before the next cycle looks, which the daemon schedules a second later). The model of the
old policy (end the cycle right after setting the GUC, look again a loop_wait later) fails the
liveness check on the issue's scenario; that is the hole this file pins down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

from ha_builders import LSN, cluster, decide_for, peer, peers, pg_replica, replica
from hypothesis import given, settings
from hypothesis import strategies as st

from hatui.daemon.sync import next_step

F = frozenset
STANDBYS = ("pg1", "pg2", "pg3")
Sync = tuple[int, frozenset]


@dataclass
class Model:
    guc: Sync = (0, F())
    dcs: Sync = (0, F())
    in_effect: set = field(default_factory=lambda: {(0, F())})  # GUCs PostgreSQL may still run with
    observed: frozenset = F()  # standbys the leader has seen confirmed for the current GUC
    reported: frozenset = F()  # standbys PostgreSQL has confirmed (reality)

    def report(self) -> None:
        """PostgreSQL reports the current GUC: its standbys caught up, older GUCs are gone."""
        self.in_effect = {self.guc}
        self.reported = self.guc[1]


def ack_sets(in_effect: set) -> list[frozenset]:
    """Every set of standbys that may have acknowledged the last commit."""
    out = []
    for k, s in in_effect:
        out.extend(F(c) for c in combinations(sorted(s), k)) if k else out.append(F())
    return out


def deciders(m: Model, acked: frozenset) -> list[str]:
    """Survivors whose decide() takes the lock after the primary pg0 crashed. Standbys in
    `acked` are at the last acknowledged position, the others one commit behind."""
    q, voters = m.dcs
    pos = {n: LSN if n in acked else LSN - 100 for n in STANDBYS}
    view = cluster([replica(n, lsn=pos[n]) for n in STANDBYS], optime=LSN, synchronous_mode=True,
                   sync=("pg0", sorted(voters)), sync_quorum=q)
    winners = []
    for me in STANDBYS:
        others = peers(*(peer(n, lsn=pos[n]) for n in STANDBYS if n != me), peer("pg0", reachable=False))
        d = decide_for(view, me, pg_replica(lsn=pos[me]), peers=others)
        if "acquire_lock" in d.kinds:
            winners.append(me)
    return winners


def check(m: Model, between_cycles: bool) -> None:
    sets = ack_sets(m.in_effect)
    for acked in sets:
        for winner in deciders(m, acked):
            assert winner in acked, (f"{winner} promoted without every acknowledged commit", m, acked)
    holders = F.intersection(*sets) if sets else F()
    if between_cycles and holders:
        for acked in sets:
            assert deciders(m, acked), (f"{sorted(holders)} hold every acknowledged commit but nobody takes over",
                                        m, acked)


def cycle(m: Model, want: Sync, prompt: bool, old_policy: bool = False) -> None:
    """One sync.manage() cycle, the primary possibly crashing after any step (check())."""
    if m.reported != m.observed:
        m.observed = m.reported  # a report the last cycle did not see is seen now
    for _ in range(4):
        step = next_step(m.guc, m.dcs, want, m.observed)
        if step is None:
            break
        kind, value = step
        if kind == "dcs":
            m.dcs = value
            check(m, between_cycles=False)
            continue
        m.guc = value
        m.in_effect.add(value)
        m.observed = m.reported = F()
        if prompt:
            m.report()  # PostgreSQL confirms within the cycle's wait (it does whether we look or not)
        check(m, between_cycles=False)
        if old_policy or not prompt:
            break  # the old code always ended the cycle here; the new one only when nothing came
        m.observed = m.reported
    check(m, between_cycles=True)
    if not prompt and m.guc[1] and m.reported != m.guc[1]:
        m.report()  # late: reported by the time the next cycle (a second later) looks


wants = st.sets(st.sampled_from(STANDBYS)).flatmap(
    lambda s: st.tuples(st.integers(min(1, len(s)), max(len(s), 0)), st.just(F(s))))


@settings(max_examples=400, deadline=None)
@given(changes=st.lists(st.tuples(wants, st.booleans(), st.integers(1, 3)), min_size=1, max_size=8))
def test_no_leaderless_hole_and_no_unsafe_promotion(changes) -> None:
    """Any order of sync-set changes (each held for a few cycles), the primary crashing at any
    step: nobody without every acknowledged commit promotes, and whenever someone provably has
    them all, someone promotes."""
    m = Model()
    for want, prompt, cycles in changes:
        for _ in range(cycles):
            cycle(m, want, prompt)


def test_the_issue_scenario_is_the_hole_of_the_old_policy() -> None:
    """Two nodes: the standby becomes synchronous; PostgreSQL reports it at once. The old policy
    left /sync naming nobody until the next loop_wait: a crash then left no leader although pg1
    had every acknowledged commit. The new policy writes /sync in the same cycle."""
    old = Model()
    try:
        cycle(old, (1, F({"pg1"})), prompt=True, old_policy=True)
    except AssertionError as exc:
        assert "hold every acknowledged commit but nobody takes over" in str(exc)
    else:
        raise AssertionError("the model of the old policy should show the leaderless hole")
    new = Model()
    cycle(new, (1, F({"pg1"})), prompt=True)
    assert new.dcs == (0, F({"pg1"})) and deciders(new, F({"pg1"})) == ["pg1"]


def test_replacing_the_sync_standby_keeps_a_leader_at_every_step() -> None:
    """pg1 -> pg2 (priority mode, one standby): /sync widens to both with quorum 1, the GUC
    moves, /sync narrows; at each step a crash leaves the member with every commit promotable."""
    m = Model()
    cycle(m, (1, F({"pg1"})), prompt=True)
    steps = []
    while True:
        step = next_step(m.guc, m.dcs, (1, F({"pg2"})), m.observed)
        if step is None:
            break
        kind, value = step
        if kind == "dcs":
            m.dcs = value
        else:
            m.guc = value
            m.in_effect.add(value)
            m.report()
            m.observed = m.reported
        steps.append((kind, value))
        for acked in ack_sets(m.in_effect):
            assert deciders(m, acked), (steps, acked)
            assert set(deciders(m, acked)) <= acked
    assert steps == [("dcs", (1, F({"pg1", "pg2"}))), ("guc", (1, F({"pg2"}))), ("dcs", (0, F({"pg2"})))]
