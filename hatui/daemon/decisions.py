"""Say why: the daemon's last decision as published data, and the events its cycles produce.

After each HA cycle the loop calls `Narrator.after_cycle`. It

* builds the decision record published in the member key (field `decision`, which Patroni and
  patronictl ignore) and in GET /patroni: what was decided (the log line's words), the actions,
  since when the same decision holds, and the facts it rests on (leader, timeline, lag, sync set,
  lease ttl) plus whether this member could be promoted now and, if not, why
  (eligibility.automatic_eligibility: the words the CLI and the console use too);
* turns what the cycle did into events (leader change with its cause and LSN, demotion, rewind,
  re-clone, config change, pause/resume, pending restart, etcd lost/regained) for the recorder.

The record holds only facts that change when something happens (no clocks ticking), so an idle
member's key is not rewritten: the loop writes the member key only when its JSON changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..cluster import Cluster, format_lsn
from ..eligibility import automatic_eligibility
from ..events import now_iso
from .ha import Decision, Observation
from .member import patroni_status

if TYPE_CHECKING:
    from ..config import DynamicConfig
    from .member import NodeView


class NarratedDaemon(Protocol):
    """What the narrator reads of the daemon (`loop.Daemon` and the REST backend's
    `requests.DaemonPort` both provide it)."""

    name: str
    view: NodeView  # view.decision is the published decision
    cluster: Cluster | None
    dynamic: DynamicConfig
    lease_ttl: int
    lease_refreshed_at: float  # monotonic

log = logging.getLogger("hatui.decisions")

Record = Callable[..., Any]  # record_event(kind, message, **facts)

# Config keys whose change is worth a word beyond "changed" (the rest are listed by name).
_WATCHED_PAUSE = "pause"


def _config_diff(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new), key=str)
    out = []
    for k in keys:
        if k == _WATCHED_PAUSE:
            continue
        if k == "postgresql" and isinstance(old.get(k), dict) and isinstance(new.get(k), dict):
            op, np_ = old[k].get("parameters") or {}, new[k].get("parameters") or {}
            for name in sorted(set(op) | set(np_)):
                if op.get(name) != np_.get(name):
                    out.append(f"postgresql.parameters.{name}: {op.get(name)!r} -> {np_.get(name)!r}")
            rest_o = {x: y for x, y in old[k].items() if x != "parameters"}
            rest_n = {x: y for x, y in new[k].items() if x != "parameters"}
            for name in sorted(set(rest_o) | set(rest_n)):
                if rest_o.get(name) != rest_n.get(name):
                    out.append(f"postgresql.{name} changed")
        elif old.get(k) != new.get(k):
            out.append(f"{k}: {old.get(k)!r} -> {new.get(k)!r}")
    return out


class Narrator:
    def __init__(self, name: str, record: Record) -> None:
        self.name = name
        self.record = record
        self.record_facts: dict[str, Any] | None = None  # the published decision
        self.since: str | None = None
        self.last_leader: str | None = None
        self.last_leader_member: dict | None = None  # the old leader's member JSON, last seen
        self.config_seen: tuple[int, dict] | None = None  # (mod_revision, data) the leader last saw
        self.paused_seen: bool | None = None
        self.pending_restart_seen = False
        self.etcd_lost_at: str | None = None
        self.counters = {"failover": 0, "switchover": 0}
        self._counted_revision: int | None = None

    # ------------------------------------------------------------------ published decision
    def decision_record(self, d: NarratedDaemon, decision: Decision, cluster: Cluster | None) -> dict[str, Any]:
        view = d.view
        rec: dict[str, Any] = {
            "message": decision.message,
            "actions": [a.kind for a in decision.actions if a.kind != "probe_peers"],
        }
        if decision.notes:
            rec["notes"] = list(decision.notes)
        if decision.level != "info":
            rec["level"] = decision.level
        if cluster is None:
            rec["etcd"] = "unreachable"
        else:
            rec["leader"] = cluster.leader_name
            if view.timeline is not None:
                rec["timeline"] = view.timeline
            if cluster.leader_name != self.name:
                lag = cluster.lag_behind(view.xlog_location if view.role != "primary" else None)
                if lag is not None:
                    rec["lag"] = lag
                ok, why = automatic_eligibility(cluster, self.name, patroni_status(view))
                rec["eligible"] = ok
                if not ok:
                    rec["why_not"] = why
            if cluster.config is not None and cluster.config.synchronous_mode != "off":
                rec["sync"] = list(cluster.sync.sync_standby)
            rec["lease_ttl"] = d.dynamic.ttl
            if cluster.is_paused:
                rec["paused"] = True
        # "since" is kept while the decision (words and actions) stays the same.
        key = {k: v for k, v in rec.items() if k not in ("lag",)}
        if self.record_facts is None or {k: v for k, v in self.record_facts.items()
                                         if k not in ("lag", "since")} != key:
            self.since = now_iso()
        rec["since"] = self.since
        self.record_facts = rec
        return rec

    # ------------------------------------------------------------------ events
    def after_cycle(self, d: NarratedDaemon, decision: Decision, obs: Observation, cluster: Cluster | None,
                    completed: bool) -> None:
        d.view.decision = self.decision_record(d, decision, cluster)
        try:
            self._etcd_events(cluster)
            if completed:
                self._action_events(d, decision, cluster)
            if cluster is not None:
                self._leader_events(d, cluster)
                self._count(cluster)
                self._remember_leader(cluster)
            self._pending_restart(d)
        except Exception:
            log.exception("could not derive events from this cycle")

    def _etcd_events(self, cluster: Cluster | None) -> None:
        if cluster is None and self.etcd_lost_at is None:
            self.etcd_lost_at = now_iso()
            self.record("etcd_lost", "lost etcd: cannot read the cluster within retry_timeout")
        elif cluster is not None and self.etcd_lost_at is not None:
            lost, self.etcd_lost_at = self.etcd_lost_at, None
            self.record("etcd_regained", f"etcd is reachable again (lost since {lost})", lost_at=lost)

    def _remember_leader(self, cluster: Cluster) -> None:
        if cluster.leader_name:
            self.last_leader = cluster.leader_name
            m = cluster.member(cluster.leader_name)
            self.last_leader_member = dict(m.data) if m is not None else None

    def _takeover_cause(self, cluster: Cluster) -> tuple[str, str | None]:
        """(kind, why) of our taking the lock, from what we saw before it was free."""
        old = self.last_leader if self.last_leader != self.name else None
        fo = cluster.failover
        if fo is not None and fo.leader:
            return "switchover", f"switchover requested from {fo.leader} to {fo.candidate or 'any member'}"
        if fo is not None and fo.candidate:
            return "failover", f"manual failover to {fo.candidate}"
        if self.last_leader == self.name:
            return "lock_retaken", "my leader lock had lapsed and nobody else took it"
        if old is None:
            return "failover", "there was no leader"
        m = cluster.member(old)
        if m is None:
            return "failover", (f"the leader {old} vanished: its lease ended and took its member key with it "
                                f"(host, network or daemon down)")
        return "failover", f"the leader {old} released the lock (its state: {m.state}, role: {m.role})"

    def _action_events(self, d: NarratedDaemon, decision: Decision, cluster: Cluster | None) -> None:
        view = d.view
        kinds = decision.kinds
        why = "; ".join(decision.notes) if decision.notes else None
        if "bootstrap" in kinds:
            self.record("bootstrap", f"initialized the cluster and took the leader lock ({decision.message})",
                        timeline=view.timeline, lsn=view.xlog_location)
        if "acquire_lock" in kinds and cluster is not None:
            kind, cause = self._takeover_cause(cluster)
            where = ", ".join(([f"timeline {view.timeline}"] if view.timeline else [])
                              + ([f"LSN {format_lsn(view.xlog_location)}"] if view.xlog_location is not None else []))
            self.record(kind, f"{self.name} took the leader lock" + (f" ({where})" if where else "") + f": {cause}",
                        previous=self.last_leader if self.last_leader != self.name else None,
                        cause=cause, decision=decision.message, notes=list(decision.notes) or None,
                        timeline=view.timeline, lsn=view.xlog_location)
        for a in decision.actions:
            if a.kind in ("demote", "switchover_demote"):
                self.record("demote", f"demoted: {decision.message}" + (f" ({why})" if why else ""),
                            mode=a.mode, to=a.target, lsn=view.xlog_location, timeline=view.timeline)
            elif a.kind == "release_lock":
                self.record("lock_released", f"released the leader lock: {decision.message}")
            elif a.kind == "rewind":
                self.record("rewind", f"rewound from {a.target} to follow it", source=a.target,
                            timeline=view.timeline)
            elif a.kind == "reinit":
                self.record("reinit", f"wiped the data directory and cloned from {a.target}: {decision.message}",
                            source=a.target)
            elif a.kind == "clone":
                self.record("clone", f"created a replica from {a.target}", source=a.target)

    def _leader_events(self, d: NarratedDaemon, cluster: Cluster) -> None:
        """Cluster-wide changes, told once: by the leader (the one member always there to see them)."""
        config = cluster.config
        if config is None:
            return
        seen = (config.mod_revision, dict(config.data))
        i_lead = cluster.leader_name == self.name
        if self.config_seen is not None and i_lead and seen[0] != self.config_seen[0]:
            old = self.config_seen[1]
            paused_now = bool(config.is_paused)
            if bool(old.get("pause")) != paused_now:
                if paused_now:
                    self.record("pause", "automatic failover paused: the daemons leave PostgreSQL alone",
                                revision=seen[0])
                else:
                    self.record("resume", "automatic failover resumed", revision=seen[0])
            changes = _config_diff(old, seen[1])
            if changes:
                self.record("config", "dynamic configuration changed: " + "; ".join(changes[:8])
                            + (f" (+{len(changes) - 8} more)" if len(changes) > 8 else ""),
                            changes=changes, revision=seen[0])
        self.config_seen = seen

    def _pending_restart(self, d: NarratedDaemon) -> None:
        now = bool(d.view.pending_restart)
        if now and not self.pending_restart_seen:
            params = sorted((d.view.pending_restart_reason or {}).keys())
            self.record("pending_restart", "needs a restart to apply: " + (", ".join(params) or "changed parameters"),
                        parameters=params or None)
        self.pending_restart_seen = now

    def _count(self, cluster: Cluster) -> None:
        """Failovers and switchovers this daemon saw recorded since it started (for /metrics)."""
        newest = cluster.events[-1].revision if cluster.events else 0
        if self._counted_revision is None:
            self._counted_revision = newest
            return
        for ev in cluster.events:
            if ev.revision > self._counted_revision and ev.kind in self.counters:
                self.counters[ev.kind] += 1
        self._counted_revision = max(self._counted_revision, newest)


def callback_recorder(record: Record) -> Callable[[Any], None]:
    """A CallbackRunner listener (callbacks.py) that puts each finished run in the timeline."""
    def finished(run: Any) -> None:
        if run.returncode is None:
            outcome = "could not start"
        elif run.timed_out:
            outcome = "killed after its timeout"
        elif run.replaced:
            outcome = "replaced by a newer event"
        else:
            outcome = f"exit status {run.returncode}"
        tail = (run.output or "").strip().splitlines()[-1:] or [""]
        record("callback", f"callback {run.kind} ran: {outcome}" + (f" ({tail[0][:200]})" if tail[0] else ""),
               callback=run.kind, returncode=run.returncode, timed_out=run.timed_out or None,
               seconds=round(run.duration, 2))
    return finished


def metrics_lines(scope: str, name: str, counters: dict[str, int]) -> str:
    """Prometheus counters in the patroni_ style (same labels), prefixed hatui_: Patroni has none."""
    labels = f'{{scope="{scope}",name="{name}"}}'
    out = []
    for kind in ("failover", "switchover"):
        metric = f"hatui_{kind}s_total"
        out.append(f"# HELP {metric} {kind.capitalize()}s recorded in the event timeline since this daemon started.")
        out.append(f"# TYPE {metric} counter")
        out.append(f"{metric}{labels} {counters.get(kind, 0)}")
    return "\n".join(out) + "\n"


def lease_time_left(d: NarratedDaemon) -> float | None:
    """Seconds before our leader lease lapses, if we hold the lock (GET /patroni only: live)."""
    if d.cluster is None or d.cluster.leader_name != d.name:
        return None
    return max(0.0, round(d.lease_ttl - (time.monotonic() - d.lease_refreshed_at), 1))

