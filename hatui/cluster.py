"""The cluster model: one immutable view of a cluster, built from its etcd keys.

The daemon, the CLI and the console all read the cluster through this module, so a key written by
real Patroni (3.x with role `master`, 4.0 without receive/replay LSNs, 4.1) or by hatui is parsed
once, the same way everywhere. Nothing here does I/O: `etcd/store.py` hands us (key, value, revision)
triples and we build plain frozen objects. One member's key is parsed in `member.py` (`Member`, the
LSN helpers), whose names are importable from here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime
from typing import Any, Iterable, Mapping

from .config import DynamicConfig, safe_dynamic
from .events import Event, parse_event, sorted_events
from .member import (  # noqa: F401 - MEMBER_STATES, format_lsn, parse_lsn: importable from here
    MEMBER_STATES,
    PRIMARY_ROLES,
    Member,
    _int_or_none,
    _json_object,
    format_lsn,
    parse_lsn,
)


@dataclass(frozen=True)
class Leader:
    name: str
    mod_revision: int = 0
    lease: int = 0


@dataclass(frozen=True)
class HistoryEntry:
    timeline: int
    lsn: int
    reason: str = ""
    timestamp: str = ""
    new_leader: str = ""

    def as_list(self) -> list:
        row: list = [self.timeline, self.lsn, self.reason]
        if self.timestamp or self.new_leader:
            row += [self.timestamp, self.new_leader]
        return row


@dataclass(frozen=True)
class TimelineHistory:
    entries: tuple[HistoryEntry, ...] = ()
    mod_revision: int = 0

    @classmethod
    def from_value(cls, value: str | bytes | None, mod_revision: int = 0) -> "TimelineHistory":
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        try:
            rows = json.loads(value) if value else []
        except (ValueError, TypeError):
            rows = []
        entries = []
        if isinstance(rows, list):
            for row in rows:
                if not isinstance(row, list) or len(row) < 2:
                    continue
                tl, lsn = _int_or_none(row[0]), _int_or_none(row[1])
                if tl is None or lsn is None:
                    continue
                rest = [str(x) if x is not None else "" for x in row[2:5]] + ["", "", ""]
                entries.append(HistoryEntry(tl, lsn, rest[0], rest[1], rest[2]))
        return cls(tuple(entries), mod_revision)

    def to_value(self) -> str:
        return json.dumps([e.as_list() for e in self.entries], separators=(",", ":"))

    @property
    def last_timeline(self) -> int:
        return max((e.timeline for e in self.entries), default=0)


@dataclass(frozen=True)
class ClusterConfig:
    """The dynamic configuration as stored, with the revision a compare-and-swap needs.

    `data` is the key as written (what edit-config shows and compares). Every typed reading
    (ttl, pause, synchronous_mode, ...) goes through `typed`: the one model, built once per read
    of the key by `config.safe_dynamic`, which handles hostile values (wrong types, "false" as a
    string, out-of-range timings) the same way for the HA core, the daemon's shell, the REST API,
    the CLI and the console. The properties below are thin views of it.
    """

    data: Mapping[str, Any] = field(default_factory=dict)
    mod_revision: int = 0
    raw: str = ""

    @classmethod
    def from_value(cls, value: str | bytes | None, mod_revision: int = 0) -> "ClusterConfig":
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return cls(_json_object(value), mod_revision, value or "")

    @cached_property
    def _checked(self) -> tuple[DynamicConfig, list[str]]:
        return safe_dynamic(self.data)

    @property
    def typed(self) -> DynamicConfig:
        """The effective cluster configuration (defaults filled in, hostile values replaced)."""
        return self._checked[0]

    @property
    def warnings(self) -> list[str]:
        """What `typed` had to replace or adjust, one operator-readable line each."""
        return list(self._checked[1])

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def ttl(self) -> int:
        return self.typed.ttl

    @property
    def loop_wait(self) -> int:
        return self.typed.loop_wait

    @property
    def retry_timeout(self) -> int:
        return self.typed.retry_timeout

    @property
    def maximum_lag_on_failover(self) -> int:
        return self.typed.maximum_lag_on_failover

    @property
    def is_paused(self) -> bool:
        return self.typed.pause

    @property
    def synchronous_mode(self) -> str:
        return self.typed.synchronous_mode

    @property
    def synchronous_mode_strict(self) -> bool:
        return self.typed.synchronous_mode_strict

    @property
    def failsafe_mode(self) -> bool:
        return self.typed.failsafe_mode

    @property
    def check_timeline(self) -> bool:
        return self.typed.check_timeline


@dataclass(frozen=True)
class Failover:
    """The `failover` key: a requested switchover (leader set) or failover (no leader)."""

    leader: str | None = None
    candidate: str | None = None
    scheduled_at: datetime | None = None
    mod_revision: int = 0

    @classmethod
    def from_value(cls, value: str | bytes | None, mod_revision: int = 0) -> "Failover | None":
        data = _json_object(value)
        if not data:
            return None
        when = data.get("scheduled_at")
        scheduled = None
        if isinstance(when, str) and when:
            try:
                scheduled = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError:
                scheduled = None
        leader = data.get("leader") or None
        candidate = data.get("member") or data.get("candidate") or None
        if not leader and not candidate:
            return None
        return cls(leader, candidate, scheduled, mod_revision)

    def to_value(self) -> str:
        out: dict = {}
        if self.leader:
            out["leader"] = self.leader
        if self.candidate:
            out["member"] = self.candidate
        if self.scheduled_at:
            out["scheduled_at"] = self.scheduled_at.isoformat()
        return json.dumps(out, separators=(",", ":"))


@dataclass(frozen=True)
class SyncState:
    leader: str | None = None
    sync_standby: tuple[str, ...] = ()
    quorum: int = 0
    mod_revision: int = 0

    @classmethod
    def from_value(cls, value: str | bytes | None, mod_revision: int = 0) -> "SyncState":
        data = _json_object(value)
        raw = data.get("sync_standby")
        names: tuple[str, ...] = ()
        if isinstance(raw, str) and raw:
            names = tuple(n.strip() for n in raw.split(",") if n.strip())
        elif isinstance(raw, list):
            names = tuple(str(n) for n in raw)
        leader = data.get("leader") if isinstance(data.get("leader"), str) else None
        return cls(leader, names, _int_or_none(data.get("quorum")) or 0, mod_revision)

    def to_value(self) -> str:
        return json.dumps(
            {"leader": self.leader, "quorum": self.quorum,
             "sync_standby": ",".join(sorted(self.sync_standby)) if self.sync_standby else None},
            separators=(",", ":"),
        )

    def matches(self, name: str) -> bool:
        return name in self.sync_standby


@dataclass(frozen=True)
class Status:
    optime: int | None = None
    slots: Mapping[str, int] = field(default_factory=dict)
    retain_slots: tuple[str, ...] = ()

    @classmethod
    def from_value(cls, value: str | bytes | None) -> "Status":
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value is None:
            return cls()
        # A bare integer is the legacy optime format.
        legacy = _int_or_none(value.strip()) if isinstance(value, str) else None
        if legacy is not None:
            return cls(legacy)
        data = _json_object(value)
        slots = data.get("slots") if isinstance(data.get("slots"), dict) else {}
        retain = data.get("retain_slots") if isinstance(data.get("retain_slots"), list) else []
        return cls(_int_or_none(data.get("optime")),
                   {str(k): v for k, v in slots.items() if _int_or_none(v) is not None},
                   tuple(str(x) for x in retain))

    def to_value(self) -> str:
        out: dict = {"optime": self.optime}
        if self.slots:
            out["slots"] = dict(self.slots)
        if self.retain_slots:
            out["retain_slots"] = list(self.retain_slots)
        return json.dumps(out, separators=(",", ":"))


@dataclass(frozen=True)
class Cluster:
    """Everything known about one cluster at one etcd revision."""

    scope: str
    initialize: str | None = None  # None: key absent; "": bootstrap in progress; else sysid
    config: ClusterConfig | None = None
    leader: Leader | None = None
    members: tuple[Member, ...] = ()
    history: TimelineHistory | None = None
    failover: Failover | None = None
    failover_revision: int = 0
    sync: SyncState = SyncState()
    status: Status = Status()
    failsafe: Mapping[str, str] | None = None
    revision: int = 0
    events: tuple[Event, ...] = ()  # the event timeline (events.py), oldest first

    # --- building ---------------------------------------------------------------------------
    @classmethod
    def from_kvs(cls, scope: str, kvs: Iterable[tuple[str, bytes | str, int, int]], revision: int = 0) -> "Cluster":
        """Build from (relative key, value, mod_revision, lease) tuples; keys relative to the scope."""
        members: list[Member] = []
        fields: dict[str, Any] = {}
        legacy_optime: int | None = None
        status_value = None
        failover_rev = 0
        events: list[Event] = []
        for key, value, mod_rev, lease in kvs:
            if key.startswith("events/"):  # first, and without decoding: most keys are events
                ev = parse_event(key[7:], value, mod_rev)
                if ev is not None:
                    events.append(ev)
                continue
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if key.startswith("members/"):
                name = key[len("members/"):]
                if name and "/" not in name:
                    members.append(Member.from_value(name, value, mod_rev, lease))
            elif key == "leader":
                if value:
                    fields["leader"] = Leader(value, mod_rev, lease)
            elif key == "initialize":
                fields["initialize"] = value
            elif key == "config":
                fields["config"] = ClusterConfig.from_value(value, mod_rev)
            elif key == "history":
                fields["history"] = TimelineHistory.from_value(value, mod_rev)
            elif key == "failover":
                fields["failover"] = Failover.from_value(value, mod_rev)
                failover_rev = mod_rev
            elif key == "sync":
                fields["sync"] = SyncState.from_value(value, mod_rev)
            elif key == "status":
                status_value = value
            elif key == "optime/leader":
                legacy_optime = _int_or_none(value)
            elif key == "failsafe":
                data = _json_object(value)
                fields["failsafe"] = {str(k): str(v) for k, v in data.items()}
        status = Status.from_value(status_value) if status_value is not None else Status(legacy_optime)
        members.sort(key=lambda m: m.name)
        return cls(scope=scope, members=tuple(members), status=status, revision=revision,
                   failover_revision=failover_rev, events=sorted_events(events), **fields)

    # --- questions --------------------------------------------------------------------------
    @property
    def leader_name(self) -> str | None:
        return self.leader.name if self.leader else None

    @property
    def leader_member(self) -> Member | None:
        return self.member(self.leader_name) if self.leader else None

    @property
    def is_paused(self) -> bool:
        return bool(self.config and self.config.is_paused)

    @property
    def sysid(self) -> str | None:
        return self.initialize or None

    @property
    def is_initialized(self) -> bool:
        return bool(self.initialize)

    def member(self, name: str | None) -> Member | None:
        for m in self.members:
            if m.name == name:
                return m
        return None

    @property
    def member_names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def replicas(self) -> list[Member]:
        return [m for m in self.members if m.name != self.leader_name]

    @property
    def timeline(self) -> int:
        """The cluster's current timeline: the leader's, else the last history line + 1."""
        leader = self.leader_member
        if leader and leader.timeline:
            return leader.timeline
        if self.history and self.history.entries:
            return self.history.last_timeline + 1
        return 0

    @property
    def last_lsn(self) -> int | None:
        """The cluster's newest known WAL position: `status.optime` or the leader's own report."""
        candidates = [self.status.optime]
        leader = self.leader_member
        if leader is not None:
            candidates.append(leader.xlog_location)
        known = [c for c in candidates if c is not None]
        return max(known) if known else None

    def lag_behind(self, position: int | None) -> int | None:
        """Bytes `position` is behind the cluster position, never negative; None when either is
        unknown. The one lag rule: the HA core, the REST API, the CLI and the console use it."""
        last = self.last_lsn
        if position is None or last is None:
            return None
        return max(0, last - position)

    def lag(self, member: Member, which: str = "wal") -> int | None:
        """Bytes behind the cluster position, as patronictl computes it (never negative).

        which: "receive", "replay" or "wal" (the member's best position).
        """
        pos = {"receive": member.receive_lsn, "replay": member.replay_lsn}.get(which, member.wal_position)
        if which in ("receive", "replay") and pos is None:
            # 4.0 and 3.x members publish only xlog_location; use it for both columns.
            pos = member.xlog_location
        return self.lag_behind(pos)

    def display_role(self, member: Member) -> str:
        """Role as patronictl's list shows it: Leader, Standby Leader, Sync Standby, Replica."""
        if member.name == self.leader_name:
            return "Standby Leader" if member.role == "standby_leader" or self._is_standby_cluster() else "Leader"
        if self.sync.leader and member.name in self.sync.sync_standby:
            return "Quorum Standby" if self.config and self.config.synchronous_mode == "quorum" else "Sync Standby"
        return "Replica"

    def display_state(self, member: Member) -> str:
        # Patroni shows the replication state of every member but a primary leader (a standby
        # leader streams too).
        leads_primary = member.name == self.leader_name and member.role != "standby_leader" \
            and not self._is_standby_cluster()
        if not leads_primary and member.state == "running":
            return member.replication_state or "running"
        return member.state

    def _is_standby_cluster(self) -> bool:
        sc = self.config.data.get("standby_cluster") if self.config else None
        return isinstance(sc, dict) and any(sc.get(k) for k in ("host", "port", "restore_command"))
