"""The pure HA core: decide(observation) -> decision.

No I/O happens here. The loop (loop.py) observes etcd and the local PostgreSQL, calls `decide`,
and carries out the returned actions in order. Everything that makes hatui safe or unsafe is in
this file, so every branch is a unit test and the invariants are property tests:

* a node that does not hold the lock never stays primary;
* a node tagged nofailover, or lagging more than maximum_lag_on_failover, never takes the lock;
* for any cluster view at most one node decides to act as leader.

Two kinds of action are *conditional*: `acquire_lock` (a create-if-absent transaction that may
lose a race) and `probe_peers` (asking the other members over REST, whose answers feed a second
call of `decide`). The loop stops executing a decision at the first failed conditional action.
The log texts follow Patroni's, so an operator who knows one can read the other.

The frozen inputs and outputs (`Observation`, `Decision`, ...) are defined in ha_data.py and
importable from here.
"""

from __future__ import annotations

from ..cluster import Cluster, Member
from .ha_data import Action, Decision, LocalPostgres, NodeSettings, Observation, PeerStatus
from .pg_wal import needs_rewind as _diverged

__all__ = ["Action", "Decision", "LocalPostgres", "NodeSettings", "Observation", "PeerStatus", "decide",
           "needs_rewind", "wal_lag"]


def _act(kind: str, target: str | None = None, mode: str | None = None, fail: str | None = None) -> Action:
    return Action(kind, target, mode, fail)


# --- helpers ------------------------------------------------------------------------------


def needs_rewind(local_tl: int | None, local_lsn: int | None, cluster: Cluster) -> bool:
    """True when our WAL is not a prefix of the leader's (the rule is `postgres.needs_rewind`).

    This adapts the cluster model to that one rule: the leader's timeline is the cluster's, its
    history the `history` key. A timeline AHEAD of the leader's counts as diverged, as in Patroni
    (it rewinds then too: a node that promoted itself on a branch the leader never had cannot
    follow). Unknown positions on an older timeline count as diverged: pg_rewind itself answers
    "no rewind required" cheaply, while following a diverged leader never works.
    """
    leader_tl = cluster.timeline
    if not local_tl or not leader_tl or local_tl == leader_tl:
        return False
    if local_tl < leader_tl and (local_lsn is None or cluster.history is None):
        return True
    entries = [(e.timeline, e.lsn) for e in cluster.history.entries] if cluster.history is not None else []
    return _diverged(local_tl, local_lsn or 0, entries, leader_tl)


def wal_lag(obs: Observation) -> int | None:
    return obs.cluster.lag_behind(obs.pg.wal_position) if obs.cluster is not None else None


def _nofailover(settings: NodeSettings) -> bool:
    """Patroni treats failover_priority <= 0 exactly like the nofailover tag."""
    return settings.nofailover or settings.failover_priority <= 0


def _max_lag(cluster: Cluster) -> int:
    return cluster.config.maximum_lag_on_failover if cluster.config else 1048576


def _clone_source(cluster: Cluster, me: str) -> Member | None:
    """A running member tagged clonefrom (not the leader, not us), else the leader."""
    for m in cluster.members:
        if m.name not in (me, cluster.leader_name) and m.clonefrom and m.is_running:
            return m
    return cluster.leader_member


def _upstream(obs: Observation, cluster: Cluster) -> str | None:
    """Whom a replica streams from: replicatefrom if it is a running member, else the leader."""
    wanted = obs.settings.replicatefrom
    if wanted and wanted != obs.name:
        m = cluster.member(wanted)
        if m is not None and m.is_running:
            return wanted
    return cluster.leader_name


def _pause_prefix(cluster: Cluster | None, message: str) -> str:
    return f"PAUSE: {message}" if cluster is not None and cluster.is_paused else message


# --- decide -------------------------------------------------------------------------------


def decide(obs: Observation) -> Decision:
    d = _decide(obs)
    if obs.cluster is not None and obs.cluster.is_paused and not d.message.startswith("PAUSE: "):
        return Decision(_pause_prefix(obs.cluster, d.message), d.actions, d.level, d.notes)
    return d


def _decide(obs: Observation) -> Decision:
    cluster, pg, me = obs.cluster, obs.pg, obs.name

    if cluster is None:
        return _dcs_unreachable(obs)

    holds_lock = cluster.leader_name == me
    paused = cluster.is_paused

    # --- no data ----------------------------------------------------------------------------
    if pg.data_dir in ("empty", "missing"):
        # A postmaster whose data dir vanished must not go on serving (spec 2.2 step 8).
        actions: list[Action] = [_act("stop", mode="immediate")] if pg.running else []
        if holds_lock:
            return Decision("released leader key voluntarily as data dir empty and currently leader",
                            tuple(actions) + (_act("release_lock"),))
        if paused:
            return Decision("running with empty data directory", tuple(actions))
        if cluster.leader is None and cluster.initialize is None:
            if obs.settings.can_bootstrap and not _nofailover(obs.settings):
                # Not bootstrapping after all (the `initialize` race lost to a member starting
                # with us, which the loop logs): not an error, and not "initialized" either.
                skipped = "not initializing a new cluster here; waiting for the leader to clone from it"
                return Decision("initialized a new cluster", tuple(actions) + (_act("bootstrap", fail=skipped),))
        leader = cluster.leader_member
        if leader is not None and cluster.leader is not None:
            source = _clone_source(cluster, me)
            kind = "leader" if source is None or source.name == cluster.leader_name else "replica"
            target = source.name if source else cluster.leader_name
            actions.append(_act("clone", target))
            return Decision(f"bootstrapped from {kind} '{target}'", tuple(actions),
                            notes=(f"trying to bootstrap from {kind} '{target}'",))
        if obs.settings.clone_without_leader and cluster.initialize != "":
            # No one to copy from, but a method restores from backups (Patroni: no_leader).
            return Decision("bootstrapped (without leader)", tuple(actions) + (_act("clone"),),
                            notes=("trying to bootstrap (without leader)",))
        return Decision("waiting for leader to bootstrap", tuple(actions))

    if pg.data_dir == "invalid":
        return Decision("data dir for the cluster is not empty, but system ID is invalid; consider doing reinitialize",
                        level="warning")

    # --- data of another cluster ------------------------------------------------------------
    if cluster.initialize and pg.sysid and cluster.initialize != pg.sysid:
        msg = f"system ID mismatch, node {me} belongs to a different cluster: {pg.sysid} != {cluster.initialize}"
        if paused:
            acts = (_act("release_lock"),) if holds_lock else ()
            return Decision(msg, acts, level="warning")
        return Decision(msg, (_act("fatal"),), level="error")

    pre: list[Action] = []
    if cluster.initialize is None and pg.sysid and cluster.leader is None:
        if pg.running and pg.role == "replica":
            return Decision("No initialize key in DCS and PostgreSQL is running as replica, aborting start",
                            (_act("fatal"),), level="error")
        pre.append(_act("set_initialize"))

    # --- PostgreSQL is down ----------------------------------------------------------------
    if not pg.running:
        d = _recover(obs, holds_lock)
        return Decision(d.message, tuple(pre) + d.actions, d.level, d.notes)

    # --- PostgreSQL is up --------------------------------------------------------------------
    if cluster.leader is None:
        d = _unhealthy_cluster(obs)
    else:
        d = _healthy_cluster(obs, holds_lock)
    return Decision(d.message, tuple(pre) + d.actions, d.level, d.notes)


def _dcs_unreachable(obs: Observation) -> Decision:
    pg = obs.pg
    if pg.running and pg.role == "primary":
        if obs.failsafe_confirmed:
            return Decision("continue to run as a leader because failsafe mode is enabled and all members are accessible")
        if obs.lease_left is not None and obs.lease_left > 0:
            # etcd answers late (or not yet), but our lease provably outlives the next cycle: no
            # other member can take the leader key before it runs out, so writes stay safe.
            return Decision(f"continue to run as a leader: etcd did not answer in time, but my lease is valid; "
                            f"{obs.lease_left:.1f}s left before I must stop", level="warning")
        # The loop only reports etcd as unreachable after retrying for retry_timeout, and the
        # timing rule (loop_wait + 2 * retry_timeout <= ttl) means our lease may still be alive
        # now but will not be by the time a replica can be promoted: stop taking writes.
        return Decision("demoted self because DCS is not accessible and I was a leader",
                        (_act("demote", mode="offline"),), level="warning",
                        notes=("demoting self because DCS is not accessible and I was a leader",))
    if not pg.running and pg.data_dir == "valid":
        return Decision("DCS is not accessible; starting as a secondary", (_act("start", mode="replica"),),
                        level="warning")
    return Decision("DCS is not accessible", level="warning")


def _recover(obs: Observation, holds_lock: bool) -> Decision:
    cluster, pg = obs.cluster, obs.pg
    assert cluster is not None
    if cluster.is_paused:
        if holds_lock:
            return Decision("removed leader lock because postgres is not running", (_act("release_lock"),))
        return Decision("postgres is not running")

    if holds_lock and obs.start_failed:
        # Holding the lock over a server that will not start leaves the cluster without a
        # writable primary for as long as we keep trying: hand the lock to a replica instead.
        return Decision("removed leader key after trying and failing to start postgres", (_act("release_lock"),),
                        level="warning")

    if holds_lock and obs.lock_refreshed and pg.role == "primary":
        # Our own primary died but we still hold the lock: bring it back as it was. Patroni does
        # this only after update_lock() succeeded; an unrefreshed lease may already be gone.
        return Decision("starting primary after failure", (_act("start", mode="primary"),))

    # Single-user crash recovery ends recovery: on a replica's data dir it writes a checkpoint past
    # the WAL it had received (into a new segment), ahead of the primary, so the replica can never
    # stream again (found by tests/faults). A crashed replica simply starts as one and replays its
    # WAL; only a crashed primary needs a clean shutdown first (for pg_rewind and needs_rewind).
    if pg.crashed and pg.role == "primary":
        return Decision("doing crash recovery in a single user mode", (_act("crash_recovery"),))

    if holds_lock:
        return Decision("starting as readonly because i had the session lock", (_act("start", mode="replica"),))

    if cluster.leader is None:
        return Decision("starting as a secondary", (_act("start", mode="replica"),))

    leader = cluster.leader_name
    assert leader is not None
    upstream = _upstream(obs, cluster)
    if needs_rewind(pg.timeline, pg.wal_position, cluster):
        if obs.rewind_failed:
            if obs.settings.remove_data_directory_on_rewind_failure:
                return Decision("reinitializing after a failed pg_rewind", (_act("reinit", leader),), level="warning")
            return Decision("pg_rewind failed and remove_data_directory_on_rewind_failure is off; starting as a "
                            "secondary anyway (it cannot stream until reinitialized)",
                            (_act("start", upstream, "replica"),), level="warning")
        if obs.settings.use_pg_rewind:
            leader_member = cluster.leader_member
            if leader_member is not None and not leader_member.checkpoint_after_promote:
                return Decision(f"Waiting for checkpoint on {leader} before rewind")
            return Decision("starting as a secondary", (_act("rewind", leader), _act("start", upstream, "replica")),
                            notes=(f"running pg_rewind from {leader}",))
        if obs.settings.remove_data_directory_on_diverged_timelines:
            return Decision("reinitializing due to diverged timelines", (_act("reinit", leader),), level="warning")
        return Decision("timelines diverged from the leader and use_pg_rewind is off; starting as a secondary anyway",
                        (_act("start", upstream, "replica"),), level="warning")
    return Decision("starting as a secondary", (_act("start", upstream, "replica"),))


def _healthy_cluster(obs: Observation, holds_lock: bool) -> Decision:
    cluster, pg, me = obs.cluster, obs.pg, obs.name
    assert cluster is not None and cluster.leader is not None
    leader = cluster.leader.name

    if holds_lock:
        if cluster.is_paused and pg.role != "primary":
            return Decision("removed leader lock because postgres is not running as primary", (_act("release_lock"),))
        if not obs.lock_refreshed:
            if pg.role == "primary":
                if cluster.is_paused:
                    return Decision("continue to run as primary after failing to update leader lock in DCS",
                                    level="warning")
                return Decision("demoted self because failed to update leader lock in DCS",
                                (_act("demote", mode="immediate-nolock"),), level="error",
                                notes=("failed to update leader lock",))
            return Decision("not promoting because failed to update leader lock in DCS", level="error")
        switch = _manual_switchover_from_leader(obs)
        if switch is not None:
            return switch
        if pg.role != "primary":
            return Decision("promoted self to leader because I had the session lock", (_act("promote"),))
        return Decision(f"no action. I am ({me}), the leader with the lock")

    # Someone else holds the lock.
    if pg.role == "primary":
        if cluster.is_paused:
            return Decision(f"no action. I am ({me}), a primary without the lock while paused", level="warning")
        upstream = _upstream(obs, cluster)
        return Decision("demoting self because I do not have the lock and I was a leader",
                        (_act("demote", upstream, "immediate-nolock"),),
                        notes=("Demoting self (immediate-nolock)",))
    upstream = _upstream(obs, cluster)
    actions: list[Action] = []
    if (needs_rewind(pg.timeline, pg.wal_position, cluster) and (pg.timeline or 0) < cluster.timeline
            and not cluster.is_paused and obs.settings.use_pg_rewind):
        # A running replica on an older timeline whose WAL went past the branch point cannot
        # follow: stop it; the next cycle rewinds it. Not when it is AHEAD of the leader's
        # member key: right after a promotion a streaming replica receives the new timeline
        # before the new leader has rewritten its key, and stopping it would be a needless
        # restart; a stopped node on a newer timeline is rewound before it starts (above).
        return Decision(f"stopping to rewind: my timeline {pg.timeline} diverged from the leader's",
                        (_act("stop", mode="fast"),), level="warning")
    if pg.following != upstream:
        actions.append(_act("follow", upstream))
    return Decision(f"no action. I am ({me}), a secondary, and following a leader ({leader})", tuple(actions))


def _manual_switchover_from_leader(obs: Observation) -> Decision | None:
    cluster, me = obs.cluster, obs.name
    assert cluster is not None
    fo = cluster.failover
    if fo is None:
        return None
    if fo.scheduled_at is not None and obs.now is not None:
        wait = (fo.scheduled_at - obs.now).total_seconds()
        if wait > 0:
            return Decision(f"no action. I am ({me}), the leader with the lock",
                            notes=(f"Awaiting switchover at {fo.scheduled_at.isoformat()} (in {int(wait)} seconds)",))
    action = "switchover" if fo.leader else "manual failover"
    if fo.leader and fo.leader != me:
        return Decision("Cleaning up failover key", (_act("clear_failover"),), level="warning",
                        notes=(f"{action}: leader name does not match: {fo.leader} != {me}",))
    if fo.candidate == me:
        return Decision("Cleaning up failover key", (_act("clear_failover"),), level="warning",
                        notes=(f"{action}: I am already the leader, no need to {action}",))
    if obs.peers is None:
        return Decision(f"{action}: checking candidates", (_act("probe_peers"),))
    candidates = [fo.candidate] if fo.candidate else [m.name for m in cluster.members if m.name != me]
    healthy = [c for c in candidates if _candidate_ok(obs, c, check_lag=True)]
    if not healthy:
        return Decision("Cleaning up failover key", (_act("clear_failover"),), level="warning",
                        notes=(f"{action}: no healthy members found, {action} is not possible",))
    # Without a named candidate, hand over to the member the race will pick: most WAL, then priority.
    best = min(healthy, key=lambda c: (-_peer_position(obs, c), -_peer_priority(obs, c), c))
    return Decision(f"{action}: demoting myself", (_act("switchover_demote", best),),
                    notes=("Demoting self (graceful)",))


def _candidate_ok(obs: Observation, name: str, check_lag: bool) -> bool:
    cluster = obs.cluster
    assert cluster is not None
    member = cluster.member(name)
    peer = (obs.peers or {}).get(name)
    if member is None or member.nofailover or peer is None or not peer.reachable:
        return False
    allowed = _sync_allowed(cluster)
    if allowed is not None and name not in allowed:
        return False
    if check_lag:
        lag = cluster.lag_behind(peer.wal_position if peer.wal_position is not None else member.wal_position)
        if lag is not None and lag > _max_lag(cluster):
            return False
    return True


def _peer_position(obs: Observation, name: str) -> int:
    peer = (obs.peers or {}).get(name)
    member = obs.cluster.member(name) if obs.cluster else None
    pos = peer.wal_position if peer is not None else None
    if pos is None and member is not None:
        pos = member.wal_position
    return pos or 0


def _peer_priority(obs: Observation, name: str) -> int:
    peer = (obs.peers or {}).get(name)
    return peer.failover_priority if peer is not None else 1


def _sync_allowed(cluster: Cluster) -> set[str] | None:
    """Who may become leader under synchronous replication, or None when anyone may.

    Only the `/sync` standbys and the former leader (spec 2.8); a manual failover without a
    leader field may pick an async node, a switchover may not (Patroni's get_failover_candidates).
    """
    if not (cluster.config and cluster.config.synchronous_mode != "off" and cluster.sync.leader):
        return None
    fo = cluster.failover
    if fo is not None and fo.candidate and not fo.leader:
        return None
    return set(cluster.sync.sync_standby) | {cluster.sync.leader}


def _quorum_shortfall(obs: Observation, my_pos: int) -> str | None:
    """Why the `/sync` quorum does not let us promote, or None when it does (sync.py explains q).

    `/sync` (q, V) says: any q + 1 voters include one with every acknowledged commit. We have
    them all if we see q + 1 voters, ourselves included, at or behind our own WAL position (one
    ahead already made us lose), or the old leader there. With q = 0 (synchronous_mode on, the
    settled state) a voter needs nobody else."""
    cluster = obs.cluster
    assert cluster is not None
    sync, me = cluster.sync, obs.name
    if me == sync.leader:
        return None
    voters = set(sync.sync_standby)
    seen = {me} & voters
    for peer in (obs.peers or {}).values():
        if not peer.reachable or peer.role == "primary":
            continue
        if peer.wal_position is None or peer.wal_position > my_pos:
            continue  # unknown, or ahead (then we already lost): not a vote
        if peer.name == sync.leader:
            return None
        if peer.name in voters:
            seen.add(peer.name)
    needed = sync.quorum + 1
    if len(seen) >= needed:
        return None
    return (f"Quorum requirement {needed} can't be reached: {len(seen)} of the voters {sorted(voters)} "
            f"seen at or behind my wal position")


def _others_can_take_over(obs: Observation, allowed: set[str] | None, exclude: set[str]) -> bool:
    """Is some other reachable member fit to win a race (Patroni's is_failover_possible)?

    Mirrors the checks those members apply to themselves below, so that the old leader steps
    aside exactly when somebody else will race.
    """
    cluster = obs.cluster
    assert cluster is not None
    position_known = cluster.last_lsn is not None
    for peer in (obs.peers or {}).values():
        if peer.name in exclude or not peer.reachable or peer.nofailover:
            continue
        if allowed is not None and peer.name not in allowed:
            continue
        lag = cluster.lag_behind(peer.wal_position)
        if position_known and (lag is None or lag > _max_lag(cluster)):
            continue
        return True
    return False


def _unhealthy_cluster(obs: Observation) -> Decision:
    """No leader key: decide whether we are the healthiest node and race for the lock."""
    cluster, pg, me = obs.cluster, obs.pg, obs.name
    assert cluster is not None
    is_primary = pg.role == "primary"

    def lose(reason: str) -> Decision:
        if is_primary and not cluster.is_paused:
            return Decision("demoting self because i am not the healthiest node",
                            (_act("demote", mode="immediate"),), notes=(reason,))
        return Decision("following a different leader because i am not the healthiest node", notes=(reason,))

    if cluster.is_paused:
        pfo = cluster.failover
        if pfo is not None and pfo.candidate == me and pfo.scheduled_at is None and not _nofailover(obs.settings):
            # Paused and leaderless: an operator's failover to a named candidate is the one thing
            # that may still move (spec 2.6, Patroni's manual_failover_process_no_leader).
            acquire = _act("acquire_lock", fail="failed to acquire the lock for the manual failover while paused")
            acts = (acquire, _act("clear_failover"))
            if is_primary:
                return Decision("acquired session lock as a leader", acts, notes=(f"manual failover: to {me}",))
            return Decision("promoted self to leader by acquiring session lock", acts + (_act("promote"),),
                            notes=(f"manual failover: to {me}",))
        if is_primary:
            return Decision("acquired session lock as a leader",
                            (_act("acquire_lock", fail="failed to acquire the lock while paused"),))
        return Decision(f"no action. I am ({me})")

    fo = cluster.failover
    manual_candidate = fo.candidate if fo is not None else None
    old_leader = fo.leader if fo is not None else None

    # nofailover comes before the manual-failover logic (spec 2.4 items 5-6): a nofailover
    # node never races, not even when named, which is also what the other members assume.
    if _nofailover(obs.settings):
        if is_primary:
            return Decision("demoting self because I am not allowed to promote", (_act("demote", mode="immediate"),))
        return Decision("following a different leader because I am not allowed to promote")

    # A timeline behind the cluster's means a newer primary existed: never promote such data.
    if is_primary and pg.timeline and cluster.timeline and pg.timeline < cluster.timeline:
        return lose(f"My timeline {pg.timeline} is behind last known cluster timeline {cluster.timeline}")

    # Failsafe (spec 2.9): a primary cut off from etcd may still be running, confirmed by the
    # members listed in /failsafe. One not in that list never heard from it, so it must not lead.
    if cluster.config and cluster.config.failsafe_mode and cluster.failsafe and me not in cluster.failsafe:
        return lose(f"{me} is not in the /failsafe key and failsafe mode is on")

    allowed = _sync_allowed(cluster)
    if allowed is not None and me not in allowed:
        listed = ", ".join(cluster.sync.sync_standby) or "no standby"
        return lose(f"{me} is not a synchronous standby and synchronous mode is on: /sync lists {listed} "
                    f"(leader {cluster.sync.leader}) as holding every acknowledged commit, so only they may "
                    f"take over; to promote {me} anyway: hatui failover {cluster.scope} --candidate {me}")

    if manual_candidate != me and (manual_candidate or old_leader == me):
        if obs.peers is None:
            return Decision("probing members before the leader race", (_act("probe_peers"),))
        if manual_candidate and manual_candidate != me and _candidate_ok(obs, manual_candidate, check_lag=False):
            # lose(), not a plain "follow": an old leader still running as primary must demote.
            return lose(f"manual failover: to {manual_candidate}, i am {me}")
        # The named candidate cannot take over: everyone else races; the old leader only when
        # nobody else can (otherwise a switchover whose candidate died leaves no leader at all).
        if old_leader == me and _others_can_take_over(obs, allowed, {me, manual_candidate or me}):
            return lose(f"manual failover: candidate {manual_candidate} is not healthy and I was the leader"
                        if manual_candidate else "switchover: another member takes over from me")

    check_lag = manual_candidate != me
    if check_lag and not is_primary:
        lag = wal_lag(obs)
        if lag is None and cluster.last_lsn is not None:
            return lose("My wal position is unknown")
        if lag is not None and lag > _max_lag(cluster):
            return lose(f"My wal position exceeds maximum replication lag: {lag} > {_max_lag(cluster)} bytes")

    if cluster.config and cluster.config.check_timeline and pg.timeline and cluster.timeline:
        if pg.timeline < cluster.timeline:
            return lose(f"My timeline {pg.timeline} is behind last known cluster timeline {cluster.timeline}")

    if obs.peers is None:
        return Decision("probing members before the leader race", (_act("probe_peers"),))

    my_pos = pg.wal_position or 0
    notes: list[str] = []
    for peer in sorted(obs.peers.values(), key=lambda p: p.name):
        if peer.name == me or not peer.reachable:
            continue
        if old_leader and peer.name == old_leader:
            continue  # the former leader steps aside in a switchover (spec 2.6); it decides for itself
        if peer.role == "primary":
            # Checked before the nofailover skip: a live primary blocks the race whatever its tags.
            return lose(f"Primary ({peer.name}) is still alive")
        if peer.nofailover or (allowed is not None and peer.name not in allowed):
            continue  # it can never win, so it must not stop us either
        if manual_candidate == me:
            continue
        pos = peer.wal_position or 0
        if pos > my_pos and allowed is not None and peer.name == cluster.sync.leader:
            # Synchronous mode: every acknowledged commit reached a sync standby, so what the former
            # leader has beyond us was never acknowledged. Losing to it would leave no leader for as
            # long as it stays reachable but cut from etcd (seen in tests/hosts; Patroni ignores it too).
            notes.append(f"Ignoring the former leader {peer.name} being ahead of us")
            continue
        if pos > my_pos:
            return lose(f"Wal position of {peer.name} is ahead of my wal position")
        if pos == my_pos and peer.failover_priority > obs.settings.failover_priority:
            return lose(f"{peer.name} has equally tolerable WAL position and priority {peer.failover_priority}, "
                        f"while this node has priority {obs.settings.failover_priority}")

    if allowed is not None:
        short = _quorum_shortfall(obs, my_pos)
        if short is not None:
            return lose(f"{short}; to promote {me} anyway: hatui failover {cluster.scope} --candidate {me}")

    acquire = _act("acquire_lock", fail="following new leader after trying and failing to obtain lock")
    cleanup = (_act("clear_failover"),) if fo is not None else ()
    if is_primary:
        return Decision("acquired session lock as a leader", (acquire,) + cleanup, notes=tuple(notes))
    return Decision("promoted self to leader by acquiring session lock", (acquire,) + cleanup + (_act("promote"),),
                    notes=tuple(notes))
