"""The cluster's event timeline: what happened, when, on which member, and why.

Events live in etcd under the cluster's prefix, one key per event (`events/<id>`, see etcd/store.py for
the layout), written once and never changed, so a key's mod_revision is the order in which etcd
took them and every member, the CLI and the console read the same history. Patroni and patronictl
ignore keys they do not know. The record is bounded: a writer drops the oldest keys past the cap.

This module is the model only (no I/O): building an event value, parsing one back, and the words
shown for it. The daemon writes through daemon/recorder.py; the CLI (`hatui events`) and the
console read `Cluster.events`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Every kind an event may have, with what it means (shown by `hatui events --help`).
KINDS: dict[str, str] = {
    "bootstrap": "a member initialized the cluster and took the leader lock",
    "failover": "a new leader took the lock without a planned switchover (the old one died or left)",
    "switchover": "a new leader took the lock from a leader that stepped down on request",
    "lock_retaken": "a primary took the leader lock again after it had lapsed (nobody else took it)",
    "demote": "a primary stepped down (switchover, lost lock, not the healthiest)",
    "lock_released": "a member gave up the leader lock",
    "fencing": "the fencing guard stopped PostgreSQL or released the lock of a dead daemon",
    "rewind": "pg_rewind ran against the leader",
    "reinit": "a member wiped its data directory and cloned again",
    "clone": "a member created its replica from another member",
    "config": "the dynamic configuration changed",
    "pause": "automatic failover was paused",
    "resume": "automatic failover was resumed",
    "pending_restart": "a member needs a restart for a changed parameter",
    "etcd_lost": "a member lost etcd",
    "etcd_regained": "a member reached etcd again",
    "callback": "a callback script ran",
    "switchover_refused": "a switchover or failover request was refused",
}

# Kinds counted as leader changes (the /metrics counters and the history's causes).
LEADER_CHANGES = ("bootstrap", "failover", "switchover")

DEFAULT_CAP = 200  # events kept per cluster; at ~300 bytes each, 60 kB in every cluster read


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_event_id(member: str | None) -> str:
    """Unique and roughly time ordered; the authoritative order is the key's etcd revision."""
    return f"{time.time_ns():020d}-{secrets.token_hex(3)}" + (f"-{member}" if member else "")


@dataclass(frozen=True)
class Event:
    id: str
    kind: str
    time: str  # ISO 8601 UTC, from the writer's clock
    member: str | None  # who wrote it (who did it, for the member's own actions)
    message: str  # one line in words, as the member logged it
    facts: Mapping[str, Any] = field(default_factory=dict)
    revision: int = 0  # etcd mod_revision: the order

    @classmethod
    def from_value(cls, event_id: str, value: str | bytes | None, revision: int = 0) -> Event | None:
        """None for a value that is not an event object (a hostile or foreign key is skipped)."""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        try:
            data = json.loads(value or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            return None
        facts = data.get("facts") if isinstance(data.get("facts"), dict) else {}
        member = data.get("member") if isinstance(data.get("member"), str) else None
        return cls(event_id, data["kind"], str(data.get("time") or ""), member, str(data.get("message") or ""),
                   facts, revision)

    def to_value(self) -> str:
        return json.dumps({"kind": self.kind, "time": self.time, "member": self.member, "message": self.message,
                           "facts": dict(self.facts)}, separators=(",", ":"), default=str)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "revision": self.revision, "time": self.time, "kind": self.kind,
                "member": self.member, "message": self.message, "facts": dict(self.facts)}

    @property
    def short_time(self) -> str:
        """HH:MM:SS in UTC for tables (the full ISO time is in -f json)."""
        return self.time[11:19] if len(self.time) >= 19 else self.time


_PARSED: dict[tuple[str, int], Event | None] = {}
_PARSED_MAX = 20000


def parse_event(event_id: str, value: str | bytes | None, revision: int) -> Event | None:
    """Event.from_value, remembered by (id, mod_revision): event keys are written once (a rewrite
    would change the revision), and every cluster read (each HA cycle, each console watch batch)
    hands the same keys again. Parsing them anew each time cost the console ~100 ms per change
    with 50 clusters of 100 events (bench/console_probe.py --events)."""
    key = (event_id, revision)
    ev = _PARSED.get(key, False)
    if ev is False:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()  # rare: a long-lived console over many busy clusters
        ev = _PARSED[key] = Event.from_value(event_id, value, revision)
    return ev  # type: ignore[return-value]


def make_event(kind: str, member: str | None, message: str, **facts: Any) -> Event:
    clean = {k: v for k, v in facts.items() if v is not None}
    return Event(new_event_id(member), kind, now_iso(), member, message, clean)


def sorted_events(events: list[Event]) -> tuple[Event, ...]:
    return tuple(sorted(events, key=lambda e: (e.revision, e.id)))


def event_line(ev: Event) -> str:
    """One line for logs, the CLI table and the console pane."""
    who = f"{ev.member}: " if ev.member else ""
    return f"{ev.short_time}  {ev.kind:<14} {who}{ev.message}"


def leader_changes(events: tuple[Event, ...] | list[Event]) -> list[Event]:
    return [e for e in events if e.kind in LEADER_CHANGES]


def cause_of_timeline(events: tuple[Event, ...] | list[Event], timeline: int) -> Event | None:
    """The leader change that started `timeline` (for the history view), if still recorded."""
    for ev in events:
        if ev.kind in ("failover", "switchover") and ev.facts.get("timeline") == timeline:
            return ev
    return None


def since_text(iso: str | None, now: datetime | None = None) -> str:
    """'18:02:11 UTC (5m 3s ago)' from an ISO time; '' when unknown."""
    if not iso:
        return ""
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    secs = max(0, int((now - then).total_seconds()))
    if secs < 60:
        ago = f"{secs}s"
    elif secs < 3600:
        ago = f"{secs // 60}m {secs % 60}s"
    else:
        ago = f"{secs // 3600}h {secs % 3600 // 60}m"
    return f"{then.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC ({ago} ago)"
