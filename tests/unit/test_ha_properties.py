"""Property tests of the HA core: the safety invariants hold for any generated observation.

Two kinds of input are generated:
* single observations with arbitrary (even contradictory) peer answers and settings, for the
  per-node rules (lock, nofailover, lag, never raising);
* whole "worlds": a ground truth per member (alive?, data dir, running, role, timeline, WAL
  position, tags), one cluster view built from it as Patroni keys, and every live member deciding
  with its own local state and truthful peer answers, for the cluster-wide rules (one primary).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from ha_builders import LSN, MB, OTHER_SYSID, SYSID, M, cluster, config_value
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from hatui.cluster import Cluster
from hatui.daemon.ha import Decision, LocalPostgres, NodeSettings, Observation, PeerStatus, decide

NOW = datetime(2026, 11, 25, 20, 0, 0, tzinfo=timezone.utc)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KNOWN_KINDS = {"bootstrap", "clone", "reinit", "crash_recovery", "rewind", "start", "stop", "demote", "follow",
               "promote", "acquire_lock", "release_lock", "probe_peers", "set_initialize", "clear_failover",
               "switchover_demote", "fatal"}
# Actions after which PostgreSQL no longer runs as a primary (fatal stops the daemon).
STOPPING = {"demote", "stop", "fatal", "switchover_demote"}
# Positions around the 1 MiB default maximum_lag_on_failover, with many ties.
POSITIONS = [LSN, LSN, LSN + 1, LSN + 4096, LSN + MB, LSN + MB + 1, LSN + 3 * MB]

# Strategies are built once: constructing them inside every draw costs more than deciding.
BOOL = st.booleans()
MOSTLY_TRUE = st.sampled_from([True, True, True, False])
MOSTLY_FALSE = st.sampled_from([False, False, False, True])
DATA_DIR = st.sampled_from(["valid"] * 8 + ["empty", "missing", "invalid"])
RUNNING_WITH_DATA = st.sampled_from([True, True, False])
RUNNING_WITHOUT_DATA = st.sampled_from([False, False, True])
LEADER_KIND = st.sampled_from(["member", "member", "none", "any"])
ROLE = st.sampled_from(["primary", "replica", "replica"])
TIMELINE = st.integers(1, 3)
POSITION = st.one_of(st.none(), st.sampled_from(POSITIONS))
NODE_SYSID = st.sampled_from([SYSID] * 9 + [OTHER_SYSID])
PRIORITY_TAG = st.one_of(st.none(), st.none(), st.integers(-1, 3))
PRIORITY = st.integers(-1, 3)
KEY_STATE = st.sampled_from(["stopped", "running", "crashed", "starting"])
PEER_ROLE = st.sampled_from([None, "primary", "replica", "demoted"])
SYNC_MODE = st.sampled_from([None, None, True, "on", "quorum"])
FAILOVER_KIND = st.sampled_from(["none", "none", "switchover", "failover", "leader-only", "scheduled"])
SCHEDULE = st.integers(-600, 600)
HISTORY = st.sampled_from([None, [], [[1, LSN + 1, "r"]], [[1, LSN, "r"], [2, LSN + MB, "r"]]])
MAX_LAG = st.sampled_from([MB, MB, 0, 10 * MB])
INITIALIZE = st.sampled_from([SYSID, SYSID, SYSID, None, ""])
PAUSE = st.sampled_from([None, False, False, True])
REPLICATEFROM = st.sampled_from([None, None, "pg0", "pg1", "ghost"])
LOCK_KEPT = st.sampled_from([True, True, False])
SIZE = st.integers(1, 5)
VIEW_IS_KNOWN = st.integers(0, 9)  # 0: etcd unreachable


@lru_cache(maxsize=None)
def one_of_names(names: tuple[str, ...], *extra: str | None) -> st.SearchStrategy:
    return st.sampled_from([*extra, *names])


@lru_cache(maxsize=None)
def name_lists(names: tuple[str, ...]) -> st.SearchStrategy:
    return st.lists(st.sampled_from(names), max_size=3, unique=True)


# --- ground truth ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    name: str
    alive: bool  # the daemon runs and answers REST
    data_dir: str
    running: bool
    role: str
    timeline: int
    lsn: int | None
    crashed: bool
    sysid: str
    following: str | None
    nofailover_tag: bool
    priority_tag: int | None
    has_key: bool
    key_state: str

    @property
    def tags(self) -> dict:
        tags: dict[str, Any] = {}
        if self.nofailover_tag:
            tags["nofailover"] = True
        if self.priority_tag is not None:
            tags["failover_priority"] = self.priority_tag
        return tags

    def settings(self, **kw: Any) -> NodeSettings:
        # As node.py derives them from the tags: priority <= 0 means nofailover.
        prio = self.priority_tag
        nofailover = self.nofailover_tag or (prio is not None and prio <= 0)
        return NodeSettings(self.name, nofailover=nofailover,
                            failover_priority=prio if prio is not None else (0 if nofailover else 1), **kw)

    def local(self) -> LocalPostgres:
        if self.data_dir != "valid":
            # A postmaster can outlive its deleted data dir; it still answers with its role.
            return LocalPostgres(data_dir=self.data_dir, running=self.running,
                                 role=self.role if self.running else None)
        return LocalPostgres("valid", self.running, self.role, self.timeline, self.lsn, self.sysid,
                             self.crashed and not self.running, self.following if self.running else None)

    def member_key(self) -> M:
        running = self.alive and self.running and self.data_dir == "valid"
        state = "running" if running else self.key_state
        return M(self.name, role=self.role if self.data_dir == "valid" else "uninitialized", state=state,
                 lsn=self.lsn, timeline=self.timeline, tags=self.tags, replication_state="streaming")

    def answer(self) -> PeerStatus:
        """What GET /patroni tells a racing peer: the truth, or nothing when the daemon is down."""
        s = self.settings()
        if not self.alive:
            return PeerStatus(self.name, False)
        up = self.running and self.data_dir == "valid"
        role = self.role if up else ("demoted" if self.role == "primary" else "replica")
        return PeerStatus(self.name, True, role, self.lsn if up else None, s.failover_priority, s.nofailover)


@st.composite
def nodes(draw: st.DrawFn, name: str, names: list[str]) -> Node:
    alive = draw(MOSTLY_TRUE)
    data_dir = draw(DATA_DIR)
    running = False if data_dir == "invalid" else draw(RUNNING_WITH_DATA if data_dir == "valid"
                                                       else RUNNING_WITHOUT_DATA)
    return Node(
        name=name, alive=alive, data_dir=data_dir, running=running,
        role=draw(ROLE),
        timeline=draw(TIMELINE),
        lsn=draw(POSITION),
        crashed=draw(BOOL),
        sysid=draw(NODE_SYSID),
        following=draw(one_of_names(tuple(names), None)),
        nofailover_tag=draw(MOSTLY_FALSE),
        priority_tag=draw(PRIORITY_TAG),
        has_key=True if alive else draw(BOOL),
        key_state=draw(KEY_STATE),
    )


@dataclass(frozen=True)
class World:
    nodes: tuple[Node, ...]
    view: Cluster

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def peers_for(self, me: str) -> dict[str, PeerStatus]:
        # probe_members asks every other member that has a key (an api_url) in the view.
        return {m.name: self.node(m.name).answer() for m in self.view.members if m.name != me}


@st.composite
def views(draw: st.DrawFn, names: list[str], leader: str | None | bool = True) -> dict:
    """The cluster-level keys. leader=True: any; None: no leader key; a name: that one."""
    if leader is True:
        leader = draw(one_of_names(tuple(names), None, "ghost"))
    sync_mode = draw(SYNC_MODE)
    sync = None
    if sync_mode is not None or draw(BOOL):
        sync = (draw(one_of_names(tuple(names), None)), draw(name_lists(tuple(names))))
    failover = None
    kind = draw(FAILOVER_KIND)
    if kind != "none":
        failover = {}
        if kind in ("switchover", "leader-only", "scheduled"):
            failover["leader"] = draw(one_of_names(tuple(names), "ghost"))
        if kind != "leader-only":
            failover["member"] = draw(one_of_names(tuple(names), "ghost"))
        if kind == "scheduled":
            failover["scheduled_at"] = (NOW + timedelta(seconds=draw(SCHEDULE))).isoformat()
    history = draw(HISTORY)
    cfg = config_value(maximum_lag_on_failover=draw(MAX_LAG))
    if draw(BOOL):
        cfg["check_timeline"] = True
    return dict(leader=leader, initialize=draw(INITIALIZE), config=cfg, pause=draw(PAUSE),
                synchronous_mode=sync_mode, sync=sync, failover=failover, history=history,
                optime=draw(POSITION))


@st.composite
def worlds(draw: st.DrawFn, leader: str | None | bool = True) -> World:
    n = draw(SIZE)
    names = [f"pg{i}" for i in range(n)]
    ns = tuple(draw(nodes(name, names)) for name in names)
    if leader is True:
        kind = draw(LEADER_KIND)  # most interesting: the key names a member, or is gone
        if kind == "member":
            leader = draw(one_of_names(tuple(names)))
        elif kind == "none":
            leader = None
    kw = draw(views(names, leader))
    view = cluster([n.member_key() for n in ns if n.has_key], **kw)
    return World(ns, view)


def node_settings(draw: st.DrawFn, node: Node, arbitrary: bool) -> NodeSettings:
    extra = dict(use_pg_rewind=draw(BOOL),
                 remove_data_directory_on_rewind_failure=draw(BOOL),
                 remove_data_directory_on_diverged_timelines=draw(BOOL),
                 can_bootstrap=draw(BOOL),
                 replicatefrom=draw(REPLICATEFROM))
    if not arbitrary:
        return node.settings(**extra)
    # Settings not derived from the tags: the core must not trust the caller to normalise them.
    return NodeSettings(node.name, nofailover=draw(BOOL), failover_priority=draw(PRIORITY), **extra)


@dataclass(frozen=True)
class Case:
    """One node's observation plus the answers its probe would get (arbitrary, not truthful)."""

    obs: Observation
    answers: dict[str, PeerStatus]

    def first(self) -> Decision:
        return decide(self.obs)

    def final(self) -> Decision:
        """The decision the loop carries out (after the probe, when one is asked for)."""
        return cycle(self.obs, self.answers)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    world = draw(worlds())
    me = draw(st.sampled_from(world.nodes))
    view = world.view if draw(VIEW_IS_KNOWN) else None
    answers = {}
    for m in world.view.members:
        if m.name != me.name:
            answers[m.name] = PeerStatus(m.name, draw(BOOL), draw(PEER_ROLE), draw(POSITION), draw(PRIORITY),
                                         draw(BOOL))
    obs = Observation(node_settings(draw, me, arbitrary=True), me.local(), view,
                      lock_refreshed=draw(BOOL), peers=answers if draw(BOOL) else None,
                      rewind_failed=draw(BOOL), failsafe_confirmed=draw(BOOL), now=NOW)
    return Case(obs, answers)


@st.composite
def takeover_cases(draw: st.DrawFn) -> Case:
    """Cases where taking over is on the table: no leader key, and this node a live replica with
    its data and PostgreSQL running, a known cluster position. Plain `cases()` almost never get
    there (under 2 % take over, fewer still with a known position), so the lag rule went untested."""
    n = draw(SIZE)
    names = [f"pg{i}" for i in range(n)]
    ns = tuple(draw(nodes(name, names)) for name in names)
    # An initialized, unpaused cluster with a known position: otherwise nobody takes over, or no
    # lag applies, by design.
    kw = {**draw(views(names, None)), "initialize": SYSID, "pause": None, "optime": draw(st.sampled_from(POSITIONS))}
    world = World(ns, cluster([x.member_key() for x in ns if x.has_key], **kw))
    # Half the time at the cluster position (a fit candidate), else anywhere around the lag limit.
    me = replace(draw(st.sampled_from(world.nodes)), alive=True, data_dir="valid", running=True, role="replica",
                 sysid=SYSID, lsn=draw(st.one_of(st.just(world.view.last_lsn), POSITION)))
    answers = {m.name: PeerStatus(m.name, draw(BOOL), draw(PEER_ROLE), draw(POSITION), draw(PRIORITY), draw(BOOL))
               for m in world.view.members if m.name != me.name}
    # Mostly allowed to fail over (else nothing happens), sometimes not: both rules get cases.
    settings_ = replace(node_settings(draw, me, arbitrary=True), nofailover=draw(MOSTLY_FALSE),
                        failover_priority=draw(st.sampled_from([1, 1, 2, 3, 0, -1])))
    obs = Observation(settings_, me.local(), world.view,
                      lock_refreshed=False, peers=None, rewind_failed=draw(BOOL), failsafe_confirmed=False, now=NOW)
    return Case(obs, answers)


def cycle(obs: Observation, answers: dict[str, PeerStatus]) -> Decision:
    """What the loop does: decide; if asked to probe, decide again with the answers."""
    d = decide(obs)
    if d.has("probe_peers"):
        d = decide(Observation(obs.settings, obs.pg, obs.cluster, obs.lock_refreshed, answers,
                               obs.rewind_failed, obs.failsafe_confirmed, obs.now))
    return d


def index(d: Decision, kind: str) -> int:
    return d.kinds.index(kind) if d.has(kind) else -1


def ends_primary(pg: LocalPostgres, d: Decision) -> bool:
    """Does carrying out `d` (all conditional actions succeeding) leave this node a primary?"""
    if d.has("promote") or d.has("bootstrap"):
        return True
    if any(a.kind == "start" and a.mode == "primary" for a in d.actions):
        return True
    running_primary = pg.running and pg.role == "primary"
    return running_primary and not any(d.has(k) for k in STOPPING)


def holds_refreshed_lock(obs: Observation) -> bool:
    return obs.cluster is not None and obs.cluster.leader_name == obs.name and obs.lock_refreshed


# --- simulations and pinned examples ----------------------------------------------------------------

@dataclass(frozen=True)
class Sim:
    """One view, and the observation each live member makes of it (truthful peer answers)."""

    world: World
    observations: tuple[Observation, ...]

    def decisions(self) -> dict[str, Decision]:
        return {o.name: cycle(o, self.world.peers_for(o.name)) for o in self.observations}


def sim_of(world: World, lock_kept: bool = True, **settings_kw: Any) -> Sim:
    """Build a simulation directly (for pinned examples)."""
    holder = world.view.leader_name
    return Sim(world, tuple(Observation(n.settings(**settings_kw), n.local(), world.view,
                                        lock_refreshed=lock_kept and n.name == holder, now=NOW)
                            for n in world.nodes if n.alive))


@st.composite
def simulations(draw: st.DrawFn, leader: str | None | bool = True) -> Sim:
    world = draw(worlds(leader))
    observations = []
    for node in world.nodes:
        if not node.alive:
            continue
        holder = world.view.leader_name == node.name
        observations.append(Observation(node_settings(draw, node, arbitrary=False), node.local(), world.view,
                                        lock_refreshed=holder and draw(LOCK_KEPT),
                                        rewind_failed=draw(BOOL), now=NOW))
    return Sim(world, tuple(observations))


def up(name: str, role: str = "replica", lsn: int | None = LSN, **kw: Any) -> Node:
    """A live node with valid data and PostgreSQL running (for pinned examples)."""
    values: dict[str, Any] = dict(alive=True, data_dir="valid", running=True, role=role, timeline=1, lsn=lsn,
                                  crashed=False, sysid=SYSID, following=None, nofailover_tag=False,
                                  priority_tag=None, has_key=True, key_state="running")
    values.update(kw)
    return Node(name, **values)


def world_of(nodes_: list[Node], **view_kw: Any) -> World:
    return World(tuple(nodes_), cluster([n.member_key() for n in nodes_ if n.has_key], **view_kw))


# Pinned shapes of bugs found in ha.py (see the report); each failed before the fix.
OLD_LEADER_STILL_PRIMARY = sim_of(world_of([up("pg0", "primary"), up("pg1")],
                                           failover={"leader": "pg0", "member": "pg1"}))
EMPTY_DIR_UNDER_PRIMARY = sim_of(world_of([up("pg0", "primary", data_dir="missing"), up("pg1", "primary")],
                                          leader="pg1"))


def case_of(node: Node, view: Cluster | None, answers: dict[str, PeerStatus] | None = None,
            lock_refreshed: bool = False, **settings_kw: Any) -> Case:
    obs = Observation(NodeSettings(node.name, **settings_kw), node.local(), view, lock_refreshed, None, now=NOW)
    return Case(obs, answers or {})


PRIORITY_ZERO_PRIMARY = case_of(up("pg0", "primary"), cluster([M("pg0", role="primary")]),
                                failover_priority=0)
RESTART_PRIMARY_UNREFRESHED = case_of(up("pg0", "primary", running=False), cluster([M("pg0")], leader="pg0"))
NOFAILOVER_CANDIDATE = case_of(up("pg1"), cluster([M("pg1")], failover={"member": "pg1"}), nofailover=True)
OLD_LEADER_CASE = case_of(up("pg0", "primary"),
                          cluster([M("pg0", role="primary"), M("pg1")], failover={"leader": "pg0", "member": "pg1"}),
                          {"pg1": PeerStatus("pg1", True, "replica", LSN)})
EMPTY_DIR_CASE = case_of(up("pg0", "primary", data_dir="missing"), cluster([M("pg1", role="primary")], leader="pg1"))


# --- per-node properties ------------------------------------------------------------------------------

@PROPS
@given(cases())
def test_decide_never_raises_and_always_explains(case: Case) -> None:
    obs, d = case.obs, case.first()
    assert isinstance(d.message, str) and d.message.strip()
    assert d.level in ("info", "warning", "error")
    assert set(d.kinds) <= KNOWN_KINDS
    assert all(isinstance(n, str) and n for n in d.notes)
    paused = obs.cluster is not None and obs.cluster.is_paused
    assert d.message.startswith("PAUSE: ") == paused and not d.message.startswith("PAUSE: PAUSE: ")
    # The loop probes at most once per cycle: with answers in hand, decide must not ask again.
    if obs.peers is not None:
        assert not d.has("probe_peers")
    if d.has("probe_peers"):
        assert d.kinds[-1] == "probe_peers"


@PROPS
@given(cases())
@example(OLD_LEADER_CASE)
@example(EMPTY_DIR_CASE)
def test_a_node_without_the_lock_never_stays_primary(case: Case) -> None:
    obs, d = case.obs, case.final()
    if not (obs.pg.running and obs.pg.role == "primary") or holds_refreshed_lock(obs):
        return
    if obs.cluster is None:
        if obs.failsafe_confirmed:
            return  # every member confirmed our failsafe heartbeat (spec 2.9)
    elif obs.cluster.is_paused:
        return  # pause: PostgreSQL is never stopped or demoted (spec 2.7)
    if obs.cluster is not None and obs.cluster.leader is None and d.has("acquire_lock"):
        # Re-taking the lock as a running primary: a create-if-absent CAS; if it fails the decision
        # stops there and the next cycle sees the winner's key and demotes.
        return
    assert any(d.has(k) for k in STOPPING), (d, obs)


@PROPS
@given(cases())
@example(RESTART_PRIMARY_UNREFRESHED)
def test_promotion_only_under_a_lock(case: Case) -> None:
    obs, d = case.obs, case.final()
    if d.has("promote"):
        # Either we hold the refreshed lock, or acquire_lock (which stops the decision on failure) comes first.
        assert holds_refreshed_lock(obs) or -1 < index(d, "acquire_lock") < index(d, "promote"), d
    for a in d.actions:
        if a.kind == "start" and a.mode == "primary":
            assert holds_refreshed_lock(obs)
    if d.has("bootstrap"):
        assert obs.cluster is not None and obs.cluster.leader is None and obs.cluster.initialize is None
    if d.has("acquire_lock"):
        a = d.actions[index(d, "acquire_lock")]
        assert a.fail_message
        assert obs.cluster is not None and obs.cluster.leader is None
    if d.has("clear_failover") and d.has("acquire_lock"):
        assert index(d, "acquire_lock") < index(d, "clear_failover")


def test_nofailover_or_lagging_nodes_never_take_over() -> None:
    # Which assertions each generated case reached: a property whose assertion no case reaches
    # proves nothing, so the share reaching each one is checked after the run.
    reached: Counter[str] = Counter()

    # Derandomized: the share reaching each rule varies with the draw (7-21 % for the tag rule over
    # a dozen random runs, once 4.3 % under the 5 % floor: a flaky test). A fixed seed makes the
    # share a property of the strategies, which is what the floors are there to watch.
    @settings(PROPS, derandomize=True)
    @given(st.one_of(cases(), takeover_cases()))
    @example(PRIORITY_ZERO_PRIMARY)
    @example(NOFAILOVER_CANDIDATE)
    def check(case: Case) -> None:
        reached["case"] += 1
        obs, d = case.obs, case.final()
        cluster = obs.cluster
        holder = cluster is not None and cluster.leader_name == obs.name
        takes_over = d.has("acquire_lock") or (d.has("promote") and not holder) or d.has("bootstrap")
        if not takes_over:
            return
        s = obs.settings
        assert cluster is not None
        if cluster.is_paused and obs.pg.running and obs.pg.role == "primary" and not d.has("promote"):
            return  # pause: a running primary re-takes a lost lock whatever its tags (spec 2.7), no failover
        # Exception (documented): a lock holder promotes under its own lock whatever its tags (Patroni too).
        event("reached: tags")
        reached["tags"] += 1
        assert not (s.nofailover or s.failover_priority <= 0), (d, obs)
        fo = cluster.failover
        if fo is not None and fo.candidate == obs.name:
            return  # the named manual-failover candidate skips the lag check (Patroni)
        if obs.pg.running and obs.pg.role == "primary" and not d.has("promote"):
            return  # a running primary re-taking the lock is healthy unless its timeline is behind (spec 2.4.4)
        if d.has("bootstrap"):
            return
        limit = cluster.config.maximum_lag_on_failover if cluster.config else MB
        lag = cluster.lag_behind(obs.pg.wal_position)
        if cluster.last_lsn is not None:
            event("reached: lag")
            reached["lag"] += 1
            assert lag is not None and lag <= limit, (d, obs)

    check()
    # Measured over random runs of 302 cases: 7-21 % reach the tag rule, 6-16 % the lag rule (before
    # takeover_cases: the lag rule in none at 300 examples). The floors leave room for the random
    # draw and still fail loudly if a change to the strategies starves a rule again.
    assert reached["tags"] >= 0.05 * reached["case"], reached
    assert reached["lag"] >= 0.02 * reached["case"], reached


# --- whole-cluster properties --------------------------------------------------------------------------

@PROPS
@given(one_of_names(tuple(f"pg{i}" for i in range(5)), "ghost").flatmap(simulations))
@example(EMPTY_DIR_UNDER_PRIMARY)
def test_with_a_leader_key_only_the_holder_is_primary(sim: Sim) -> None:
    world, decisions = sim.world, sim.decisions()
    if world.view.is_paused:
        return  # pause leaves every PostgreSQL as it is (spec 2.7)
    primaries = [name for name, d in decisions.items() if ends_primary(world.node(name).local(), d)]
    assert len(primaries) <= 1, (primaries, decisions, world)
    assert all(p == world.view.leader_name for p in primaries), (primaries, decisions, world)


@PROPS
@given(simulations(None))
@example(OLD_LEADER_STILL_PRIMARY)
def test_without_a_leader_key_at_most_one_member_wins_unless_tied(sim: Sim) -> None:
    world, decisions = sim.world, sim.decisions()
    winners = [name for name, d in decisions.items() if d.has("acquire_lock")]
    for name, d in decisions.items():
        if d.has("promote"):
            assert -1 < index(d, "acquire_lock") < index(d, "promote"), (name, d)
    if world.view.is_paused:
        # Only running primaries take the lock in pause, and nobody promotes, except the named
        # candidate of an immediate manual failover (spec 2.6: "In pause: only ... to a named candidate").
        fo = world.view.failover
        named = fo.candidate if fo is not None and fo.scheduled_at is None else None
        assert not any(d.has("promote") for n, d in decisions.items() if n != named)
        assert all(w == named or (world.node(w).running and world.node(w).role == "primary") for w in winners)
        return
    sync = world.view.sync
    if world.view.config is not None and world.view.config.synchronous_mode != "off" and sync.leader in winners:
        # Synchronous mode: a sync standby ignores the former leader being ahead (what it has
        # beyond the standby was never acknowledged, ha.py), so both may race; each holds every
        # acknowledged commit and the create-if-absent transaction lets exactly one through.
        assert all(w == sync.leader or w in sync.sync_standby for w in winners), (winners, decisions, world)
        winners = [w for w in winners if w != sync.leader]
    if len(winners) > 1:
        # Several winners are allowed only when they tie on (position, priority); the
        # create-if-absent transaction of acquire_lock then lets exactly one through.
        keys = {((world.node(w).lsn or 0), world.node(w).settings().failover_priority) for w in winners}
        assert len(keys) == 1, (winners, decisions, world)
    # Whoever stays or becomes primary must do so through a create-if-absent race: acquire_lock,
    # or bootstrap (which races the `initialize` key, then creates the leader key).
    for name, d in decisions.items():
        if ends_primary(world.node(name).local(), d):
            assert d.has("acquire_lock") or d.has("bootstrap"), (name, d, world)


LIVENESS_FAILOVER_KEYS = st.sampled_from([None, {"leader": "pg0", "member": "pg1"}, {"leader": "pg0"},
                                         {"leader": "pg0", "member": "pg9"}, {"member": "pg9"}])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LIVENESS_FAILOVER_KEYS, BOOL, BOOL)
@example({"leader": "pg0", "member": "pg9"}, False, False)  # switchover whose candidate died
@example(None, True, True)  # an async replica ahead of the sync standby
def test_a_fit_replica_races_when_nobody_else_can(fo: dict | None, sync_on: bool, async_ahead: bool) -> None:
    """Liveness: pg1 is an up-to-date replica and every member that could beat it is dead or
    ineligible (the old leader pg0 in a switchover is dead; an async pg3 may be ahead in sync mode).
    With no pause, pg1 must race; otherwise the cluster stays leaderless for good."""
    members = [M("pg1", lsn=LSN)]
    answers = {"pg0": PeerStatus("pg0", False)}
    if sync_on and async_ahead and not (fo and "member" in fo and "leader" not in fo):
        # An async replica is ineligible in sync mode (a failover without leader field excepted).
        members.append(M("pg3", lsn=LSN + 5))
        answers["pg3"] = PeerStatus("pg3", True, "replica", LSN + 5)
    view = cluster(members, optime=LSN, failover=fo, sync=("pg0", ["pg1"]) if sync_on else None,
                   synchronous_mode=True if sync_on else None)
    obs = Observation(NodeSettings("pg1"), LocalPostgres("valid", True, "replica", 1, LSN, SYSID), view, now=NOW)
    d = cycle(obs, answers)
    assert d.kinds[0] == "acquire_lock" and d.has("promote"), d
