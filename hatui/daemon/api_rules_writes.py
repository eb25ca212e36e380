"""The write requests' rules, pure: validating the bodies of POST /switchover, /failover,
/restart and /reinitialize into typed requests or a `Refusal` (status and Patroni's text), and
the deep merge of PATCH /config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .api_rules_values import parse_bool, parse_seconds, postgres_version_to_int

# --------------------------------------------------------------------------------------------------
# Request validation (POST /switchover, /failover, /restart, /reinitialize)


@dataclass(frozen=True)
class Refusal:
    """A request the API answers itself, without calling the backend."""

    status: int
    text: str


@dataclass(frozen=True)
class SwitchoverRequest:
    action: str  # "switchover" | "failover" (a failover naming a leader becomes a switchover)
    leader: str | None
    candidate: str | None
    scheduled_at: datetime | None  # timezone-aware and in the future, or None for "now"


@dataclass(frozen=True)
class RestartRequest:
    schedule: datetime | None = None  # timezone-aware, in the future
    role: str | None = None  # primary | standby_leader | replica
    postgres_version: str | None = None  # validated text such as "15.2" (see postgres_version_to_int)
    restart_pending: bool = False
    timeout: int | None = None  # seconds, > 0

    def as_dict(self) -> dict[str, Any]:
        """The filters as Patroni publishes them in `scheduled_restart` (schedule as ISO text)."""
        out: dict[str, Any] = {}
        if self.schedule is not None:
            out["schedule"] = self.schedule.isoformat()
        if self.role is not None:
            out["role"] = self.role
        if self.postgres_version is not None:
            out["postgres_version"] = self.postgres_version
        if self.restart_pending:
            out["restart_pending"] = True
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out


UNPARSABLE_SCHEDULE = (
    "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"
)


def parse_schedule(value: Any, action: str, now: datetime) -> datetime | Refusal:
    """An ISO 8601 timestamp with a timezone, not in the past."""
    if not isinstance(value, str):
        return Refusal(422, UNPARSABLE_SCHEDULE)
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return Refusal(422, UNPARSABLE_SCHEDULE)
    if when.tzinfo is None or when.utcoffset() is None:
        return Refusal(400, f"Timezone information is mandatory for the scheduled {action}")
    try:
        in_past = when < now
    except OverflowError:  # year 1 or 9999 shifted across the UTC boundary
        return Refusal(422, UNPARSABLE_SCHEDULE)
    if in_past:
        return Refusal(422, f"Cannot schedule {action} in the past")
    return when


def _name(body: Mapping[str, Any], *keys: str) -> str | None | Refusal:
    for key in keys:
        value = body.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            return Refusal(400, f"{key} should be a member name (a string)")
        return value
    return None


def validate_switchover(body: Any, action: str, paused: bool, now: datetime) -> SwitchoverRequest | Refusal:
    """Check a POST /switchover or /failover body; the checks and texts are Patroni's, in its order.

    What this does not check (the backend does, against the live cluster): that the leader and the
    candidate exist and are healthy (412) and that the failover key can be written (503).
    """
    if action not in ("switchover", "failover"):
        raise ValueError(f"unknown action {action!r}")
    if not isinstance(body, dict) or not body:
        return Refusal(400, "Invalid JSON: expected a non-empty object")
    leader = _name(body, "leader")
    if isinstance(leader, Refusal):
        return leader
    candidate = _name(body, "candidate", "member")
    if isinstance(candidate, Refusal):
        return candidate
    raw_schedule = body.get("scheduled_at")

    if action == "failover" and not candidate:
        return Refusal(400, "Failover could be performed only to a specific candidate")
    if action == "switchover" and not leader:
        return Refusal(400, "Switchover could be performed only from a specific leader")
    scheduled_at: datetime | None = None
    if raw_schedule:
        if action == "failover":
            return Refusal(400, "Failover can't be scheduled")
        if paused:
            return Refusal(400, "Can't schedule switchover in the paused state")
        parsed = parse_schedule(raw_schedule, action, now)
        if isinstance(parsed, Refusal):
            return parsed
        scheduled_at = parsed
    if paused and not candidate:
        return Refusal(400, "Switchover is possible only to a specific candidate in a paused state")
    if action == "failover" and leader:
        action = "switchover"  # Patroni treats a failover that names the leader as a switchover
    if leader == candidate:
        return Refusal(400, "Switchover target and source are the same")
    return SwitchoverRequest(action, leader, candidate, scheduled_at)


RESTART_ROLES = ("primary", "standby_leader", "replica")


def validate_restart(body: Any, paused: bool, now: datetime) -> RestartRequest | Refusal:
    """Check a POST /restart body (optional; {} restarts now without conditions)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        return Refusal(400, "Invalid JSON: expected an object")
    if paused and "schedule" in body:
        return Refusal(500, "Can't schedule restart in the paused state")
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if key == "schedule":
            parsed = parse_schedule(value, "restart", now)
            if isinstance(parsed, Refusal):
                return parsed
            fields["schedule"] = parsed
        elif key == "role":
            if value == "master":
                value = "primary"  # what 3.x patronictl sends
            if value not in RESTART_ROLES:
                return Refusal(400, "PostgreSQL role should be either primary, standby_leader, or replica")
            fields["role"] = value
        elif key == "postgres_version":
            try:
                postgres_version_to_int(value)
            except ValueError as exc:
                return Refusal(400, str(exc))
            fields["postgres_version"] = value.strip()
        elif key == "timeout":
            seconds = parse_seconds(value)
            if seconds is None or seconds <= 0:
                return Refusal(400, "Timeout should be a positive number of seconds")
            fields["timeout"] = seconds
        elif key == "restart_pending":
            flag = parse_bool(value)
            if flag is None:
                return Refusal(400, "restart_pending should be a boolean")
            fields["restart_pending"] = flag
        else:
            return Refusal(400, f"Unknown filter for the scheduled restart: {key}")
    return RestartRequest(**fields)


def parse_reinitialize(body: Any) -> tuple[bool, bool]:
    """(force, from_leader) from a POST /reinitialize body; anything not clearly true is False."""
    if not isinstance(body, dict):
        return False, False
    return bool(parse_bool(body.get("force"))), bool(parse_bool(body.get("from_leader")))


# --------------------------------------------------------------------------------------------------
# PATCH /config


def merge_patch(config: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `patch` deep-merged into `config`, a null value deleting the key.

    Nested objects merge key by key; any other value replaces. A null inside a new nested object
    is dropped rather than stored (Patroni would store it).
    """
    out = dict(config)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            base = out.get(key)
            out[key] = merge_patch(base if isinstance(base, dict) else {}, value)
        else:
            out[key] = value
    return out
