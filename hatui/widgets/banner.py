"""The connection banner and the cluster summary line.

The banner is the operator's answer to "can I trust what I see?": connected (with the revision
shown), connecting, or lost since a given time, in which case every figure below is stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from ..cluster import Cluster
from ..sync_hint import leaderless_command, leaderless_hint
from .health import human_age
from .palette import DARK, HealthPalette
from .rows import HEALTHY_ROWS, MemberRow, human_bytes


@dataclass(frozen=True)
class ConnStatus:
    state: str = "connecting"  # connecting | ok | lost | recorded
    endpoint: str = ""
    since: datetime | None = None  # when the current state began
    message: str = ""
    revision: int = 0
    data_as_of: datetime | None = None  # when the data on screen was received

    @property
    def stale(self) -> bool:
        return self.state == "lost"


def _clock(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S") if t else "?"


def _ago(now: datetime, t: datetime | None) -> str:
    if t is None:
        return ""
    s = max(0, int((now - t).total_seconds()))
    return f"{s}s" if s < 120 else f"{s // 60}m{s % 60:02d}s"


class ConnectionBanner(Static):
    _last: Text | None = None  # skip identical updates

    DEFAULT_CSS = """
    ConnectionBanner { height: 1; padding: 0 1; background: $boost; }
    ConnectionBanner.-lost { height: 2; background: $error 30%; text-style: bold; }
    ConnectionBanner.-frozen { background: $warning 25%; }
    """

    def show(
        self,
        status: ConnStatus,
        now: datetime,
        frozen: bool = False,
        held: int = 0,
        pal: HealthPalette = DARK,
        etcd: str = "ok",
        silent_for: float | None = None,
        probe_error: str = "",
    ) -> None:
        """`etcd` is the probe's verdict (widgets.health.EtcdEvidence): ok, stalled or unknown."""
        text = Text()
        stalled = status.state == "ok" and etcd == "stalled"
        if stalled:
            # The watch says nothing, the probe gets no answer: the view may be out of date.
            text.append("◐ etcd STALLED", pal.bad)
            text.append(f" {status.endpoint}: no answer for {human_age(silent_for)}")
            if probe_error:
                text.append(f" ({probe_error})")
            text.append(". Data shown is as of ")
            text.append(_clock(status.data_as_of), pal.bad)
            text.append(".")
        elif status.state == "ok":
            text.append("● etcd ", pal.ok if etcd == "ok" else pal.warn)
            text.append(f"{status.endpoint} connected · revision {status.revision}")
            if etcd == "ok" and silent_for is not None:
                text.append(f" · answered {human_age(silent_for)} ago")
            if status.data_as_of:
                text.append(f" · last change {_clock(status.data_as_of)}")
        elif status.state == "recorded":
            text.append("● recorded ", pal.info)
            text.append(f"event stream · revision {status.revision}")
        elif status.state == "connecting":
            text.append("◌ connecting ", pal.warn)
            text.append(f"to etcd {status.endpoint}…")
            if status.message:
                text.append(f" ({status.message})")
        elif status.data_as_of is None:
            text.append("✗ etcd unreachable", pal.bad)
            text.append(
                f" since {_clock(status.since)} ({_ago(now, status.since)}): {status.message}. "
                "No data yet; retrying every second."
            )
        else:
            text.append("✗ etcd LOST", pal.bad)
            text.append(f" since {_clock(status.since)} ({_ago(now, status.since)} ago): {status.message}. ")
            text.append("Data shown is STALE", pal.bad)
            text.append(f" (as of {_clock(status.data_as_of)}); reconnecting by itself.")
        if frozen:
            text.append("   ❚❚ DISPLAY FROZEN", pal.warn)
            text.append(f" (f to follow again; {held} update{'s' if held != 1 else ''} waiting)")
        # Fixed heights (1, or 2 when lost): no layout pass for the per-revision text change.
        bad = status.state == "lost" or stalled
        relayout = self.has_class("-lost") != bad
        self.set_class(bad, "-lost")
        self.set_class(frozen, "-frozen")
        if text != self._last:
            self._last = text
            self.update(text, layout=relayout)


def health_line(
    cluster: Cluster, rows: list[MemberRow] | None, lease_remaining: int | None, pal: HealthPalette
) -> Text:
    """'● healthy: …' only when every row's evidence says so (HEALTHY_DEFINITION); otherwise
    what is wrong or unknown, worst first, in a few words per member."""
    text = Text()
    if rows is None:
        text.append("? health unknown", pal.warn)
        text.append(": no evidence from the members yet")
        return text
    bad = [r for r in rows if r.health not in HEALTHY_ROWS]
    if not bad and lease_remaining is not None:
        n = len(rows)
        text.append("● healthy", pal.ok)
        text.append(f": {n} member{'s' if n != 1 else ''}, leader {cluster.leader_name}, all answering")
        return text
    text.append("▲ not healthy", pal.bad if any(r.health != "gone" for r in bad) else pal.warn)
    parts = [f"{r.name} {r.state_text or r.state}" for r in bad]
    if lease_remaining is None and cluster.leader_name:
        parts.append("leader lease unknown")
    text.append(": " + "; ".join(parts))
    return text


def lease_bar(remaining: int | None, ttl: int, width: int = 10) -> str:
    if remaining is None or ttl <= 0:
        return ""
    filled = max(0, min(width, round(width * remaining / ttl)))
    return "█" * filled + "░" * (width - filled)


class ClusterSummary(Static):
    """The cluster and its leader's lease, its health in words, then the timings: one line each,
    never wrapped (a narrow terminal cuts the end of a line, never a whole line). `compact`
    (a short terminal) leaves out the timings line."""

    _last: Text | None = None

    DEFAULT_CSS = """
    ClusterSummary { height: 3; padding: 0 1; }
    """

    def show(
        self,
        cluster: Cluster | None,
        lease_remaining: int | None,
        pal: HealthPalette = DARK,
        stale: bool = False,
        rows: list[MemberRow] | None = None,
        compact: bool = False,
        narrow: bool = False,
    ) -> None:
        """`rows` (the members' rows, with the console's evidence) decide "healthy"; without them
        the summary never says healthy."""
        if cluster is None:
            self.update(Text("No cluster selected yet: waiting for data from etcd.", style="dim"))
            return
        cfg = cluster.config
        ttl = cfg.ttl if cfg else 30
        line1 = Text()
        line1.append(cluster.scope, "bold")
        sysid = cluster.initialize
        line1.append(f" ({'uninitialized' if sysid is None else (sysid or 'initializing')})")
        line1.append(f" · TL {cluster.timeline}")
        if cluster.leader_name:
            line1.append(" · leader ")
            line1.append(f"★ {cluster.leader_name}", pal.leader)
            if stale:
                line1.append(" · lease ? (etcd lost)", pal.bad)
            elif lease_remaining is None:
                line1.append(" · lease ?")
            elif lease_remaining < 0:
                line1.append(" · lease expired", pal.bad)
            else:
                style = pal.bad if lease_remaining <= max(1, ttl // 3) else ""
                line1.append(f" · lease {lease_remaining:>2}s of {ttl}s ", style)
                if not narrow:
                    line1.append(lease_bar(lease_remaining, ttl), style or pal.ok)
        timings = Text(style="dim")
        if cfg:
            timings.append(
                f"ttl {cfg.ttl} · loop_wait {cfg.loop_wait} · retry_timeout {cfg.retry_timeout}"
                f" · maximum_lag_on_failover {human_bytes(cfg.maximum_lag_on_failover)}"
                f" · synchronous_mode {cfg.synchronous_mode}"
            )

        else:
            timings.append("no config key (defaults apply)")
        line2 = Text()
        if stale:
            line2.append("✗ STALE ", pal.bad)
        if not cluster.leader_name:
            line2.append("✗ NO LEADER", pal.bad)
            line2.append(": no member holds the leader lock; writes are not possible until one is elected. ")
            if leaderless_hint(cluster):
                # Synchronous mode keeps it so on purpose: say the way out (hatui/sync_hint.py).
                command = leaderless_command(cluster)
                line2.append("synchronous mode: no member known to hold every commit is running"
                             + (f"; to promote one anyway: {command}" if command else "") + ". ", pal.warn)
        if cluster.is_paused:
            line2.append("❚❚ PAUSED", pal.warn)
            line2.append(": maintenance mode, no automatic failover (u resumes). ")
        if cluster.failover and (cluster.failover.leader or cluster.failover.candidate):
            f = cluster.failover
            when = f" at {f.scheduled_at.isoformat()}" if f.scheduled_at else ""
            line2.append(
                f"⇄ switchover requested{when}: {f.leader or '?'} → {f.candidate or 'any'} ", pal.info
            )
        pending = [m.name for m in cluster.members if m.pending_restart]
        if pending:
            line2.append(f"⟳ pending restart: {', '.join(pending)} ", pal.warn)
        if not line2.plain.strip():
            line2.append_text(health_line(cluster, rows, lease_remaining, pal))
        sync = cluster.sync
        if cfg and cfg.synchronous_mode != "off" and sync.leader:
            # Who may be promoted without losing an acknowledged commit (hatui/daemon/sync.py).
            names = ", ".join(sync.sync_standby) or "none, only the leader may be promoted"
            line2.append(f" · ⇉ sync: {names}", pal.info)
            if sync.quorum and sync.sync_standby:
                line2.append(f" (promotion needs {sync.quorum + 1} of them)", pal.info)
        lines = [line1, line2] if compact else [line1, line2, timings]
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        text = Text("\n").join(lines)
        text.no_wrap = True
        text.overflow = "ellipsis"
        if self.styles.height is None or self.styles.height.value != len(lines):
            self.styles.height = len(lines)
        if text != self._last:
            self._last = text
            self.update(text, layout=False)
