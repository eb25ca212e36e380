"""Standby clusters: the HA decisions of a cluster that follows a remote primary.

When the dynamic configuration has a `standby_cluster` section (with `host`, `port` or
`restore_command`), the cluster is a copy of another one. Its lock holder is a *standby leader*:
it holds the leader key like a primary would, but stays in recovery and streams from the remote
primary (or restores from its archive); the other members cascade from it. A failover in the
standby cluster makes another member the standby leader, never a primary. Removing the section
(`promote-cluster`) promotes the standby leader; adding it to a primary cluster
(`demote-cluster`) turns its primary into a standby leader, keeping the leader key.

`decide` is pure, like ha.decide, which it wraps: the generic decision is taken first and then
rewritten where a standby cluster differs (Patroni's enforce_follow_remote_member paths).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from . import ha
from .ha import Action, Decision, Observation

# The `target` of a start/follow/demote action that means "the remote primary", not a member.
REMOTE = "<remote primary>"


def config_of(dynamic: Any) -> dict | None:
    """The standby_cluster section when it makes this a standby cluster (Patroni's rule), else None."""
    sc = getattr(dynamic, "standby_cluster", None)
    if isinstance(sc, Mapping) and any(sc.get(k) for k in ("host", "port", "restore_command")):
        return dict(sc)
    return None


def remote_address(sc: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """host:port of the remote primary (None: the standby leader only restores from the archive)."""
    if not sc or not sc.get("host"):
        return None
    try:
        port = int(sc.get("port") or 5432)
    except (TypeError, ValueError):
        port = 5432
    return str(sc["host"]), port


def describe(sc: Mapping[str, Any] | None) -> str:
    addr = remote_address(sc)
    if addr:
        return f"{addr[0]}:{addr[1]}"
    return "the archive (restore_command)" if sc and sc.get("restore_command") else "nowhere"


def _act(kind: str, target: str | None = None, mode: str | None = None) -> Action:
    return Action(kind, target, mode)


def decide(obs: Observation) -> Decision:
    base = ha.decide(obs)
    if not obs.standby_cluster or obs.cluster is None:
        return base
    return _never_promote(_decide(obs, base))


def _decide(obs: Observation, base: Decision) -> Decision:
    cluster, pg, me = obs.cluster, obs.pg, obs.name
    assert cluster is not None
    holds = cluster.leader_name == me
    pre = tuple(a for a in base.actions if a.kind == "set_initialize")

    if pg.data_dir in ("empty", "missing"):
        if base.has("bootstrap"):
            acts = tuple(replace(a, mode="standby_leader") if a.kind == "bootstrap" else a for a in base.actions)
            return Decision("initialized a new cluster", acts, notes=("trying to bootstrap a new standby leader",))
        if base.message.endswith("waiting for leader to bootstrap"):
            return replace(base, message=base.message.replace("leader to", "standby_leader to"))
        return base
    if pg.data_dir != "valid" or base.has("fatal"):
        return base

    if cluster.is_paused:
        if holds and pg.running and pg.role == "replica":
            return Decision(f"PAUSE: no action. I am ({me}), the standby leader with the lock")
        return base

    if not pg.running:
        if base.has("crash_recovery") or (holds and obs.start_failed):
            return base
        if holds:
            return Decision("starting as a standby leader because i had the session lock",
                            pre + (_act("start", REMOTE, "replica"),))
        if cluster.leader is None:
            return Decision("trying to follow a remote member because standby cluster is unhealthy",
                            pre + (_act("start", REMOTE, "replica"),))
        return base

    following_remote = pg.following == REMOTE
    if holds:
        if not obs.lock_refreshed:
            return base
        if pg.role == "primary":
            return Decision("demoting to a standby cluster", pre + (_act("demote", REMOTE, "demote-cluster"),),
                            notes=("the cluster configuration has a standby_cluster section: this primary becomes its "
                                   + "standby leader",))
        follow = () if following_remote else (_act("follow", REMOTE),)
        return Decision(f"no action. I am ({me}), the standby leader with the lock", pre + follow)

    if cluster.leader is None:
        if base.has("acquire_lock"):
            acts = tuple(a for a in base.actions if a.kind not in ("promote", "demote"))
            if pg.role == "primary":
                acts += (_act("demote", REMOTE, "demote-cluster"),)
            elif not following_remote:
                acts += (_act("follow", REMOTE),)
            return Decision("promoted self to a standby leader by acquiring session lock", acts, notes=base.notes)
        if pg.role == "primary" or base.has("probe_peers"):
            return base
        follow = () if following_remote else (_act("follow", REMOTE),)
        return Decision(base.message, pre + follow, base.level, base.notes)

    leader = cluster.leader_name
    if pg.role == "primary":
        return Decision("cannot be a real primary in a standby cluster",
                        pre + (_act("demote", ha._upstream(obs, cluster), "immediate-nolock"),), level="warning")
    if base.message.startswith(f"no action. I am ({me}), a secondary"):
        return replace(base, message=f"no action. I am ({me}), a secondary, and following a standby leader ({leader})")
    return base


def _never_promote(d: Decision) -> Decision:
    """The invariant of a standby cluster: nothing here ever makes a primary."""
    acts = []
    for a in d.actions:
        if a.kind == "promote":
            continue
        if a.kind == "start" and a.mode == "primary":
            a = _act("start", REMOTE, "replica")
        acts.append(a)
    return d if len(acts) == len(d.actions) and all(x is y for x, y in zip(acts, d.actions)) else \
        replace(d, actions=tuple(acts))
