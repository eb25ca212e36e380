"""What the console shows about each member, computed from the cluster model (no widgets here).

Positions come from the member keys, unless a fresh `GET /patroni` answer is known: that one is
live (the member keys are refreshed only every loop_wait), so the console prefers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..cluster import Cluster, Member, format_lsn, parse_lsn
from ..eligibility import failover_eligibility
from .health import answered, human_age, lease_renewing

# A /patroni answer older than this is not used for live positions (the poller re-arms every
# ~2 s; two missed polls means the node is not answering and the keys are the better source).
PATRONI_FRESH_SECONDS = 6.0


@dataclass(frozen=True)
class PatroniSample:
    """One `GET /patroni` answer (or the error instead), with when it was fetched (monotonic)."""

    data: Mapping[str, Any] | None
    fetched_at: float
    error: str | None = None
    answered_at: float | None = None  # the last time this member's REST API answered (any round)
    pg_up: bool | None = None  # its PostgreSQL port accepted a connection (None: not probed)
    pg_error: str = ""

    @property
    def last_answer(self) -> float | None:
        return self.fetched_at if self.data is not None else self.answered_at

    def fresh(self, now_mono: float) -> bool:
        return self.data is not None and now_mono - self.fetched_at <= PATRONI_FRESH_SECONDS

    def status_for_eligibility(self, now_mono: float) -> Mapping[str, Any] | None:
        """The answer if fresh; {} ("asked, no answer") after a recent failure; else None."""
        if now_mono - self.fetched_at > PATRONI_FRESH_SECONDS:
            return None
        return self.data if self.data is not None else {}


# Health, worst first where it matters. Each has a text marker so colour is never the only cue.
HEALTH_MARKERS = {
    "leader": "★",
    "streaming": "●",
    "running": "●",
    "lagging": "▲",
    "starting": "◌",
    "stopped": "✗",
    "silent": "⚠",  # its REST API does not answer the console
    "expiring": "⏳",  # a leader whose lease is not being renewed
    "gone": "○",  # its member key expired; kept until removed on purpose
    "unknown": "?",
}
# Row healths that count towards "healthy" (hatui.widgets.health.HEALTHY_DEFINITION).
HEALTHY_ROWS = frozenset({"leader", "streaming"})


@dataclass(frozen=True)
class MemberRow:
    name: str
    host: str
    role: str
    state: str
    health: str  # a HEALTH_MARKERS key
    is_leader: bool
    timeline: int | None
    receive_lsn: int | None
    replay_lsn: int | None
    lag_bytes: int | None
    lag_seconds: float | None
    lagging: bool
    pending_restart: bool
    pending_reason: str
    tags: Mapping[str, Any] = field(default_factory=dict)
    eligible: bool | None = None  # None for the leader: the question does not apply
    eligibility_reason: str = ""
    live: bool = False  # positions come from a fresh /patroni answer
    evidence: str = ""  # what the console saw that overrides the key's state ("REST silent 3s")
    gone: bool = False  # the member key expired: a remembered member, greyed
    last_seen: float | None = None  # seconds since its key was last in etcd (gone members)

    @property
    def marker(self) -> str:
        return HEALTH_MARKERS.get(self.health, "?")

    @property
    def state_text(self) -> str:
        return self.evidence or self.state

    def search_text(self) -> str:
        tags = " ".join(f"{k}={v}" for k, v in self.tags.items())
        return f"{self.name} {self.host} {self.role} {self.state_text} {tags}".lower()


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}"
    return f"{n} B"  # not reached


def human_seconds(s: float | None) -> str:
    if s is None:
        return ""
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def format_tags(tags: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None


def _host_labels(cluster: Cluster) -> dict[str, str]:
    """patronictl's rule: host alone, or host:port if any port is not 5432 or hosts repeat."""
    hosts = [m.host or "" for m in cluster.members]
    with_port = any(m.port != 5432 for m in cluster.members) or len(set(hosts)) != len(hosts)
    return {
        m.name: (f"{m.host}:{m.port}" if with_port and m.host else (m.host or "")) for m in cluster.members
    }


def _health(is_leader: bool, state: str, replication_state: str | None, lagging: bool) -> str:
    if is_leader:
        return (
            "leader"
            if state == "running"
            else ("stopped" if state in ("stopped", "crashed") else "starting")
        )
    if state in ("stopped", "crashed", "start failed", "stop failed", "restart failed", "initdb failed"):
        return "stopped"
    if state in ("starting", "restarting", "creating replica", "stopping", "initializing new cluster"):
        return "starting"
    if state != "running":
        return "unknown"
    if lagging:
        return "lagging"
    return "streaming" if replication_state == "streaming" else "running"


def _evidence(
    health: str,
    sample: PatroniSample | None,
    now_mono: float,
    is_leader: bool,
    renewing: bool | None,
    lease_remaining: int | None,
) -> tuple[str, str]:
    """(health, evidence text): the key's verdict, overruled by what the console itself saw."""
    notes: list[str] = []
    if sample is not None and sample.pg_up is False:
        health = "stopped"
        notes.append("PostgreSQL down")
    # The last round got no answer, or no round has answered for a while (a stuck poller): silent.
    if sample is not None and (sample.data is None or not answered(sample.last_answer, now_mono)):
        if health != "stopped":
            health = "silent"
        last = sample.last_answer
        notes.append(f"REST silent {human_age(now_mono - last)}" if last is not None else "REST silent")
    if is_leader and renewing is False:
        if health not in ("stopped",):
            health = "expiring"
        if not notes:
            notes.append("not renewing")
    if is_leader and lease_remaining is not None and (notes or renewing is False):
        notes.append(f"lease {max(0, lease_remaining)}s" if lease_remaining >= 0 else "lease expired")
    return health, " · ".join(notes)


def eligibility(
    cluster: Cluster, name: str, status: Mapping[str, Any] | None, action: str = "switchover"
) -> tuple[bool, str]:
    """The shared answer (hatui.eligibility); status {} means "asked, no answer"."""
    ok, reason = failover_eligibility(cluster, name, status, action=action)
    return bool(ok), ("" if ok else str(reason or ""))


def build_rows(
    cluster: Cluster,
    patroni: Mapping[str, PatroniSample] | None = None,
    now: datetime | None = None,
    now_mono: float = 0.0,
    lease_remaining: int | None = None,
    departed: Mapping[str, tuple[Member, float]] | None = None,
    key_changed: Mapping[str, float] | None = None,
) -> list[MemberRow]:
    """One MemberRow per member, in the cluster's order (by name), then the departed ones.

    `lease_remaining` is the leader's lease time left as last read from etcd; `departed` maps the
    name of a member whose key expired to (its last member data, monotonic time its key was last
    seen): such a member stays in the table, greyed, with what its own probes still say.
    `key_changed` (monotonic, per member) says when its key last changed: a /patroni answer
    fetched before that does not overrule the key's state.
    """
    patroni = patroni or {}
    departed = {n: v for n, v in (departed or {}).items() if cluster.member(n) is None}
    hosts = _host_labels(cluster)
    limit = cluster.config.maximum_lag_on_failover if cluster.config else 1048576
    cfg = cluster.config
    renewing = lease_renewing(
        lease_remaining, cfg.ttl if cfg else 30, cfg.loop_wait if cfg else 10
    )

    def live(name: str) -> Mapping[str, Any] | None:
        sample = patroni.get(name)
        return sample.data if sample is not None and sample.fresh(now_mono) else None

    leader_pos = cluster.last_lsn
    leader_live = live(cluster.leader_name) if cluster.leader_name else None
    if leader_live:
        loc = parse_lsn((leader_live.get("xlog") or {}).get("location"))
        if loc is not None:
            leader_pos = max(leader_pos or 0, loc)

    rows = []
    members = [(m, None) for m in cluster.members]
    members += [(m, seen) for _, (m, seen) in sorted(departed.items())]
    for m, seen in members:
        gone = seen is not None
        data = live(m.name)
        is_leader = m.name == cluster.leader_name and not gone
        recv, replay = m.receive_lsn, m.replay_lsn
        if recv is None and replay is None and not is_leader:
            recv = replay = m.xlog_location  # 4.0/3.x members publish only xlog_location
        replayed_at = None
        if data and not is_leader:
            xlog = data.get("xlog") or {}
            recv = (
                parse_lsn(xlog.get("received_location"))
                if xlog.get("received_location") is not None
                else recv
            )
            replay = (
                parse_lsn(xlog.get("replayed_location"))
                if xlog.get("replayed_location") is not None
                else replay
            )
            replayed_at = _parse_time(xlog.get("replayed_timestamp"))
        lag = None
        lag_s = None
        if not is_leader:
            pos = replay if replay is not None else recv
            if pos is not None and leader_pos is not None:
                lag = max(0, leader_pos - pos)
            if lag == 0:
                lag_s = 0.0
            elif lag is not None and replayed_at is not None and now is not None:
                # Time since the last replayed commit: the usual "replay delay" estimate; it is
                # only meaningful while the replica is behind, hence the lag == 0 case above.
                try:
                    lag_s = max(0.0, (now - replayed_at).total_seconds())
                except TypeError:  # naive vs aware timestamps
                    lag_s = None
        lagging = lag is not None and lag > limit
        sample = patroni.get(m.name)
        # A fresh REST answer is usually newer than the member key (written once per HA loop).
        newer = data is not None and sample is not None and (
            sample.fetched_at > (key_changed or {}).get(m.name, float("-inf"))
        )
        state = str(data.get("state") or m.state) if newer and data else m.state
        repl = data.get("replication_state", m.replication_state) if newer and data else m.replication_state
        health = _health(is_leader, state, repl, lagging)
        health, evidence = _evidence(health, sample, now_mono, is_leader, renewing, lease_remaining)
        if gone:
            health = "gone"
            known = []
            if sample is not None and answered(sample.last_answer, now_mono):
                known.append(f"REST: {data.get('role', '?')} {state}" if data else "REST answers")
            if sample is not None and sample.pg_up is not None:
                known.append("PG up" if sample.pg_up else "PG down")
            evidence = " · ".join([f"gone, last seen {human_age(now_mono - seen)} ago", *known])
        if is_leader:
            eligible, reason = None, ""
        elif gone:
            eligible, reason = False, "its member key expired"
        else:
            eligible, reason = eligibility(
                cluster, m.name, sample.status_for_eligibility(now_mono) if sample else None
            )
        reason_text = ", ".join(
            f"{k}: {v.get('old_value')}->{v.get('new_value')}" if isinstance(v, dict) else str(k)
            for k, v in m.pending_restart_reason.items()
        )
        rows.append(
            MemberRow(
                name=m.name,
                host=hosts.get(m.name, ""),
                role=(str(data.get("role") or "?") if data else "?") if gone else cluster.display_role(m),
                state=(repl or "running") if (not is_leader and state == "running") else state,
                health=health,
                is_leader=is_leader,
                timeline=(
                    data.get("timeline") if data and isinstance(data.get("timeline"), int) else m.timeline
                ),
                receive_lsn=None if is_leader else recv,
                replay_lsn=None if is_leader else replay,
                lag_bytes=lag,
                lag_seconds=lag_s,
                lagging=lagging,
                pending_restart=m.pending_restart,
                pending_reason=reason_text,
                tags=m.tags,
                eligible=eligible,
                eligibility_reason=reason,
                live=data is not None,
                evidence=evidence,
                gone=gone,
                last_seen=(now_mono - seen) if gone else None,
            )
        )
    return rows


__all__ = [
    "MemberRow",
    "PatroniSample",
    "build_rows",
    "eligibility",
    "format_lsn",
    "format_tags",
    "human_bytes",
    "human_seconds",
]
