"""The event timeline: what changed between two cluster revisions the console saw, in words.

Pure functions over the cluster model; the app stamps each event with the time it rendered the
revision, so the timeline says when *this console* saw the change (etcd keeps no history of it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..cluster import Cluster


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    scope: str
    kind: str  # leader | role | state | member | config | pause | timeline | failover | restart
    text: str
    revision: int = 0


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _tags(tags: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items())) or "none"


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 6) -> str:
    a, b = _flatten(old), _flatten(new)
    parts = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, None) != b.get(key, None) or (key in a) != (key in b):
            parts.append(f"{key} {a.get(key, '∅')}→{b.get(key, '∅')}")
    if len(parts) > limit:
        parts = parts[:limit] + [f"+{len(parts) - limit} more"]
    return ", ".join(parts)


def newest_timeline(cluster: Cluster) -> int | None:
    """The newest timeline any member reports (None when none does).

    Not `Cluster.timeline`, which falls back to the history when the leader key is gone: a
    leaderless moment would read as a timeline change that never happened (3 → 2, 0 → 1).
    """
    tls = [m.timeline for m in cluster.members if m.timeline]
    return max(tls) if tls else None


def _leader_gone(old: Cluster, new: Cluster, lease_left: int | None) -> str:
    name = old.leader_name
    if new.member(name or "") is not None:
        # Only the leader key went: a compare-and-delete by its owner (or its fencing guard).
        return f"leader lock released by {name}: no leader"
    # The leader key and its member key went in the same revision: their shared lease ended.
    if lease_left is not None and lease_left > 2:
        return f"leader lease of {name} revoked with {lease_left}s left (its daemon gave it up): no leader"
    return f"leader lease of {name} expired (not renewed for ttl): no leader"


def diff_clusters(
    old: Cluster | None, new: Cluster, at: datetime, lease_left: int | None = None
) -> Iterator[TimelineEvent]:
    """Events between two revisions of one cluster (old None: the first one seen).

    `lease_left` is the leader's lease time left as the console last read it: it tells an
    expired lease from one given up early.
    """
    scope, rev = new.scope, new.revision

    def ev(kind: str, text: str) -> TimelineEvent:
        return TimelineEvent(at, scope, kind, text, rev)

    if old is None:
        leader = new.leader_name or "none"
        yield ev(
            "leader", f"first seen: leader {leader}, {len(new.members)} member(s), timeline {new.timeline}"
        )
        return
    if old.leader_name != new.leader_name:
        if old.leader_name and not new.leader_name:
            yield ev("leader", _leader_gone(old, new, lease_left))
        elif new.leader_name and not old.leader_name:
            yield ev("leader", f"{new.leader_name} took the leader lock")
        else:
            yield ev("leader", f"leader changed: {old.leader_name} → {new.leader_name}")
    old_tl, new_tl = newest_timeline(old), newest_timeline(new)
    if old_tl and new_tl and new_tl > old_tl:  # a member left with its timeline: nothing happened
        yield ev("timeline", f"timeline {old_tl} → {new_tl}")
    old_m = {m.name: m for m in old.members}
    new_m = {m.name: m for m in new.members}
    for name in sorted(set(new_m) - set(old_m)):
        yield ev("member", f"{name} joined ({new_m[name].role}, {new_m[name].state})")
    for name in sorted(set(old_m) - set(new_m)):
        yield ev("member", f"{name} left (member key removed or expired)")
    for name in sorted(set(old_m) & set(new_m)):
        a, b = old_m[name], new_m[name]
        if a.role != b.role:
            yield ev("role", f"{name}: role {a.role} → {b.role}")
        if a.state != b.state:
            yield ev("state", f"{name}: state {a.state} → {b.state}")
        if a.tags != b.tags:
            yield ev("member", f"{name}: tags {_tags(a.tags)} → {_tags(b.tags)}")
        if a.pending_restart != b.pending_restart:
            yield ev("restart", f"{name}: pending restart {'set' if b.pending_restart else 'cleared'}")
    old_cfg = dict(old.config.data) if old.config else {}
    new_cfg = dict(new.config.data) if new.config else {}
    if old.is_paused != new.is_paused:
        yield ev("pause", "cluster paused (maintenance mode)" if new.is_paused else "cluster resumed")
    if old_cfg != new_cfg:
        yield ev("config", f"config changed: {config_changes(old_cfg, new_cfg)}")
    of, nf = old.failover, new.failover
    if nf is not None and (
        of is None or (of.leader, of.candidate, of.scheduled_at) != (nf.leader, nf.candidate, nf.scheduled_at)
    ):
        when = f" at {nf.scheduled_at.isoformat()}" if nf.scheduled_at else ""
        yield ev(
            "failover", f"switchover/failover requested{when}: {nf.leader or 'any'} → {nf.candidate or 'any'}"
        )
