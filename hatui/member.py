"""One member of a cluster, as its `members/<name>` key says: address, role, state, WAL positions,
tags. Also the LSN text conversions and the tolerant value decoding every key of the model uses.

Part of the model (see `hatui/cluster.py`, which re-exports these names): nothing here does I/O,
and it imports nothing of hatui.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlparse

# Member `state` strings Patroni uses, in the order of its metrics index.
MEMBER_STATES = (
    "initializing new cluster",
    "initdb failed",
    "running custom bootstrap script",
    "custom bootstrap failed",
    "creating replica",
    "running",
    "starting",
    "starting after custom bootstrap",
    "start failed",
    "restarting",
    "restart failed",
    "stopping",
    "stopped",
    "stop failed",
    "crashed",
)

PRIMARY_ROLES = frozenset({"primary", "master"})


def parse_lsn(text: str | int | None) -> int | None:
    """'0/3000060' -> 50331744; ints pass through; None/garbage -> None."""
    if text is None:
        return None
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text
    try:
        hi, lo = str(text).split("/")
        return (int(hi, 16) << 32) + int(lo, 16)
    except (ValueError, AttributeError):
        try:
            return int(text)
        except (TypeError, ValueError):
            return None


def format_lsn(value: int | None) -> str:
    if value is None:
        return ""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def _json_object(value: str | bytes | None) -> dict:
    """Decode a JSON object value, tolerating garbage the way Patroni readers do (-> {})."""
    if value is None:
        return {}
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        data = json.loads(value)
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class Member:
    """One `members/<name>` key."""

    name: str
    data: Mapping[str, Any] = field(default_factory=dict)
    mod_revision: int = 0
    lease: int = 0

    @classmethod
    def from_value(cls, name: str, value: str | bytes | None, mod_revision: int = 0, lease: int = 0) -> "Member":
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value.startswith("postgres"):
            # Ancient format: the value is the connection URL itself.
            data: dict = {"conn_url": value.split("?", 1)[0]}
        else:
            data = _json_object(value)
        return cls(name, data, mod_revision, lease)

    # --- identity and addresses -------------------------------------------------------------
    @property
    def conn_url(self) -> str | None:
        url = self.data.get("conn_url")
        if isinstance(url, str):
            return url
        kwargs = self.data.get("conn_kwargs")
        if isinstance(kwargs, dict) and kwargs.get("host"):
            return f"postgres://{kwargs['host']}:{kwargs.get('port', 5432)}/{kwargs.get('dbname', 'postgres')}"
        return None

    @property
    def api_url(self) -> str | None:
        url = self.data.get("api_url")
        return url if isinstance(url, str) else None

    @property
    def host(self) -> str | None:
        url = self.conn_url
        if not url:
            return None
        try:
            return urlparse(url).hostname
        except ValueError:
            return None

    @property
    def port(self) -> int:
        url = self.conn_url
        try:
            return (urlparse(url).port if url else None) or 5432
        except ValueError:
            return 5432

    # --- state ------------------------------------------------------------------------------
    @property
    def role(self) -> str:
        """The role as written: primary, master, replica, standby_leader, demoted, uninitialized..."""
        role = self.data.get("role")
        return role if isinstance(role, str) else "unknown"

    @property
    def is_primary(self) -> bool:
        return self.role in PRIMARY_ROLES

    @property
    def state(self) -> str:
        state = self.data.get("state")
        return state if isinstance(state, str) else "unknown"

    @property
    def is_running(self) -> bool:
        return self.state == "running"

    @property
    def version(self) -> str | None:
        v = self.data.get("version")
        return v if isinstance(v, str) else None

    @property
    def timeline(self) -> int | None:
        return _int_or_none(self.data.get("timeline"))

    @property
    def xlog_location(self) -> int | None:
        return _int_or_none(self.data.get("xlog_location"))

    @property
    def receive_lsn(self) -> int | None:
        return _int_or_none(self.data.get("receive_lsn"))

    @property
    def replay_lsn(self) -> int | None:
        return _int_or_none(self.data.get("replay_lsn"))

    @property
    def replication_state(self) -> str | None:
        v = self.data.get("replication_state")
        return v if isinstance(v, str) else None

    @property
    def tags(self) -> dict:
        tags = self.data.get("tags")
        return dict(tags) if isinstance(tags, dict) else {}

    @property
    def nofailover(self) -> bool:
        tags = self.tags
        if "failover_priority" in tags and _int_or_none(tags.get("failover_priority")) is not None:
            if int(tags["failover_priority"]) <= 0:
                return True
        return bool(tags.get("nofailover", False))

    @property
    def failover_priority(self) -> int:
        p = _int_or_none(self.tags.get("failover_priority"))
        if p is not None:
            return p
        return 0 if self.tags.get("nofailover") else 1

    @property
    def nosync(self) -> bool:
        return bool(self.tags.get("nosync", False))

    @property
    def clonefrom(self) -> bool:
        return bool(self.tags.get("clonefrom", False))

    @property
    def replicatefrom(self) -> str | None:
        v = self.tags.get("replicatefrom")
        return v if isinstance(v, str) else None

    @property
    def pending_restart(self) -> bool:
        return bool(self.data.get("pending_restart", False))

    @property
    def pending_restart_reason(self) -> dict:
        v = self.data.get("pending_restart_reason")
        return dict(v) if isinstance(v, dict) else {}

    @property
    def scheduled_restart(self) -> dict:
        v = self.data.get("scheduled_restart")
        return dict(v) if isinstance(v, dict) else {}

    @property
    def paused(self) -> bool:
        return bool(self.data.get("pause", False))

    @property
    def checkpoint_after_promote(self) -> bool:
        """False while a freshly promoted leader has not yet finished its CHECKPOINT."""
        return self.data.get("checkpoint_after_promote") is not False

    @property
    def wal_position(self) -> int | None:
        """Best known WAL position: xlog_location, else max(receive, replay)."""
        candidates = [v for v in (self.xlog_location, self.receive_lsn, self.replay_lsn) if v is not None]
        return max(candidates) if candidates else None
