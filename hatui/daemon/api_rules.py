"""The pure rules behind the REST API: health checks, request validation, /cluster and /metrics bodies.

Nothing here does I/O or reads a clock: `api.py` passes in the node's status dict (the GET /patroni
body), the last valid cluster view and "now", and writes out what comes back. That keeps every
200/503 decision and every 400 message a plain function a unit test can call.

Status codes and reply texts follow Patroni 4.1 (spec/patroni-compat.md section 4), because load
balancers, patronictl and operators' scripts already depend on them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from ..cluster import MEMBER_STATES, Cluster, format_lsn

# --------------------------------------------------------------------------------------------------
# Values with units (?lag=16MB, "timeout": "1min") and booleans the way Patroni accepts them

_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_TIME_UNITS = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}
_NUMBER_UNIT = re.compile(r"\s*(-?[0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", re.ASCII)


def _with_units(value: Any, units: Mapping[str, float], default_unit: str) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    m = _NUMBER_UNIT.fullmatch(value)
    if not m:
        return None
    number, unit = m.groups()
    # Units are case-insensitive here (PostgreSQL's are not): `?lag=1mb` meaning "no limit" would
    # silently disable a load balancer's lag check.
    factor = units.get((unit or default_unit).lower())
    if factor is None:
        return None
    try:
        if "." not in number and factor >= 1:
            return int(number) * int(factor)
        result = float(number) * factor
    except ValueError:  # more digits than int() accepts
        return None
    return round(result) if math.isfinite(result) else None


def parse_size(value: Any) -> int | None:
    """Bytes from 1048576, "1048576", "16kB", "64MB", "1GB", "1.5 TB"; None when not understood."""
    return _with_units(value, _SIZE_UNITS, "b")


def parse_seconds(value: Any) -> int | None:
    """Seconds from 30, "30", "30s", "5min", "1h", "1d", "1500ms"; None when not understood."""
    return _with_units(value, _TIME_UNITS, "s")


def parse_bool(value: Any) -> bool | None:
    """True/False from JSON booleans, 0/1 and on/off/true/false/yes/no; None when not a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("on", "true", "yes", "1"):
            return True
        if v in ("off", "false", "no", "0"):
            return False
    return None


def postgres_version_to_int(text: Any) -> int:
    """"15.2" -> 150002, "9.6.24" -> 90624 (server_version_num form); ValueError with the reply text."""
    message = f"Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: {text}"
    if not isinstance(text, str):
        raise ValueError(message)  # noqa: TRY004 - callers turn every ValueError into a 400 reply
    parts = text.strip().split(".")
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(message)
    nums = [int(p) for p in parts]
    if len(nums) == 2 and nums[0] >= 10:
        nums.insert(1, 0)  # 15.2 is major 15, minor 2: the same three slots as 9.6.24
    elif len(nums) != 3 or nums[0] >= 10:
        raise ValueError(message)
    if nums[0] < 1 or any(n > 99 for n in nums):
        raise ValueError(f"Invalid PostgreSQL version: {text}")
    return nums[0] * 10000 + nums[1] * 100 + nums[2]


# --------------------------------------------------------------------------------------------------
# Health checks

LEADER_PATHS = frozenset({"leader"})
PRIMARY_PATHS = frozenset({"", "primary", "master", "read-write"})
STANDBY_LEADER_PATHS = frozenset({"standby-leader", "standby_leader"})
# Endpoints that answer about the lock: ?tag_* filters do not apply to them.
LOCK_PATHS = LEADER_PATHS | PRIMARY_PATHS | STANDBY_LEADER_PATHS
SYNC_PATHS = frozenset({"sync", "synchronous"})
ASYNC_PATHS = frozenset({"async", "asynchronous"})
READ_ONLY_SYNC_PATHS = frozenset({"read-only-sync", "read-only-synchronous"})
HEALTH_PATHS = LOCK_PATHS | SYNC_PATHS | ASYNC_PATHS | READ_ONLY_SYNC_PATHS | frozenset(
    {"replica", "read-only", "health", "quorum", "read-only-quorum"}
)


@dataclass(frozen=True)
class NodeView:
    """What a health check looks at.

    status: the GET /patroni dict of this node (may carry the internal `latest_end_lsn`).
    cluster: the cluster view, or None when the DCS view is not current (etcd unreachable).
    is_leader: this node holds the leader lock right now (last lock update less than ttl ago).
    """

    status: Mapping[str, Any]
    cluster: Cluster | None
    is_leader: bool


def _xlog(status: Mapping[str, Any]) -> Mapping[str, Any]:
    xlog = status.get("xlog")
    return xlog if isinstance(xlog, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _first(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def is_standby_cluster(cluster: Cluster | None) -> bool:
    """The dynamic config describes a standby cluster (replicating from a remote primary)."""
    data = cluster.config.data if cluster is not None and cluster.config is not None else {}
    sc = data.get("standby_cluster")
    return isinstance(sc, dict) and any(sc.get(k) for k in ("host", "port", "restore_command"))


def sync_flags(status: Mapping[str, Any], cluster: Cluster | None) -> dict[str, bool]:
    """{"sync_standby": True} or {"quorum_standby": True} when this replica is in `/sync`."""
    if status.get("sync_standby") or status.get("quorum_standby"):
        return {k: True for k in ("sync_standby", "quorum_standby") if status.get(k)}
    if cluster is None or cluster.config is None or status.get("role") != "replica":
        return {}
    mode = cluster.config.synchronous_mode
    me = (status.get("patroni") or {}).get("name") if isinstance(status.get("patroni"), dict) else None
    if mode == "off" or not isinstance(me, str) or not cluster.sync.matches(me):
        return {}
    return {"quorum_standby" if mode == "quorum" else "sync_standby": True}


def public_status(status: Mapping[str, Any], cluster: Cluster | None) -> dict[str, Any]:
    """The /patroni body: the backend's status without internal keys, plus fields derived from the view."""
    out = {k: v for k, v in status.items() if k != "latest_end_lsn"}
    out.update(sync_flags(status, cluster))
    if "cluster_unlocked" not in out and (cluster is None or cluster.leader is None):
        out["cluster_unlocked"] = True
    return out


def tags_match(query: Mapping[str, list[str]], tags: Mapping[str, Any]) -> bool:
    """Every `?tag_<key>=<value>` names a tag this node has, with that value.

    Non-string tag values compare as lower-case text (True -> "true", 1 -> "1"), as in Patroni.
    """
    for key, values in query.items():
        if not key.startswith("tag_") or not values:
            continue
        have = tags.get(key[len("tag_"):])
        if have is None:
            return False
        if not isinstance(have, str):
            have = str(have).lower()
        if have != values[0]:
            return False
    return True


def _leader_optime(view: NodeView) -> int:
    cluster_lsn = (view.cluster.last_lsn or 0) if view.cluster is not None else 0
    return max(cluster_lsn, _int(view.status.get("latest_end_lsn")))


def health_code(path: str, view: NodeView, query: Mapping[str, list[str]]) -> int:
    """200 or 503 for GET/HEAD/OPTIONS on a health endpoint (`path` is the first path segment).

    Unknown paths answer 503, like Patroni: a typo in a load balancer check must not mark a node healthy.
    """
    st = view.status
    role, state = st.get("role"), st.get("state")
    tags = st.get("tags") if isinstance(st.get("tags"), dict) else {}
    cluster = view.cluster

    max_lag = parse_size(_first(query, "lag"))
    optime = _leader_optime(view)
    replayed = _int(_xlog(st).get("replayed_location"))
    lagging = max_lag is not None and optime > 0 and optime > replayed + max_lag
    wanted_state = _first(query, "replication_state")
    replica_ok = (
        not parse_bool(tags.get("noloadbalance"))
        and not lagging
        and role == "replica"
        and state == "running"
        and (not wanted_state or st.get("replication_state") == wanted_state)
    )

    if cluster is None and st.get("pause"):
        # Paused and etcd unreachable: nobody will change roles, so the PostgreSQL role is the truth.
        primary_ok = role in ("primary", "master")
        standby_ok = role == "standby_leader"
        leader_ok = primary_ok or standby_ok
    elif view.is_leader:
        leader_ok = True
        if is_standby_cluster(cluster) or role == "standby_leader":
            primary_ok = replica_ok = False
            standby_ok = role in ("replica", "standby_leader")
        else:
            primary_ok, standby_ok = True, False
    else:
        leader_ok = primary_ok = standby_ok = False

    if path in STANDBY_LEADER_PATHS:
        return 200 if standby_ok else 503
    if path in LEADER_PATHS:
        return 200 if leader_ok else 503
    if path in PRIMARY_PATHS:
        return 200 if primary_ok else 503

    if path == "replica":
        ok = replica_ok
    elif path == "read-only":
        ok = primary_ok or standby_ok or replica_ok
    elif path == "health":
        ok = state == "running"
    elif cluster is None:
        ok = False  # sync/async/quorum answers need the DCS view
    else:
        flags = sync_flags(st, cluster)
        is_sync, is_quorum = bool(flags.get("sync_standby")), bool(flags.get("quorum_standby"))
        if path in SYNC_PATHS:
            ok = is_sync and replica_ok
        elif path == "quorum":
            ok = is_quorum and replica_ok
        elif path in ASYNC_PATHS:
            ok = not is_sync and not is_quorum and replica_ok
        elif path in READ_ONLY_SYNC_PATHS:
            ok = primary_ok or standby_ok or (is_sync and replica_ok)
        elif path == "read-only-quorum":
            ok = primary_ok or standby_ok or (is_quorum and replica_ok)
        else:
            ok = False
    return 200 if ok and tags_match(query, tags) else 503


def liveness_code(status: Mapping[str, Any], paused: bool, ttl: int, next_run: float, now: float) -> int:
    """200 while the HA loop keeps its schedule: next cycle due + ttl (2 x ttl off the primary) > now."""
    running_primary = status.get("role") in ("primary", "master") and status.get("state") == "running"
    threshold = ttl if running_primary else 2 * ttl
    return 200 if paused or next_run + threshold > now else 503


def readiness_failure(view: NodeView, query: Mapping[str, list[str]], max_lag_default: int) -> str | None:
    """None when ready to take traffic, else the reason (logged at DEBUG, never sent)."""
    if view.is_leader:
        return None
    st = view.status
    if st.get("state") != "running":
        return "PostgreSQL is not running"
    if st.get("replication_state") != "streaming":
        return "PostgreSQL replication state is not streaming"
    latest_end_lsn = _int(st.get("latest_end_lsn"))
    if view.cluster is None and not latest_end_lsn:
        return None if st.get("failsafe_mode_is_active") else "DCS is not accessible"
    mode = "write" if _first(query, "mode") == "write" else "apply"
    position = _int(_xlog(st).get("received_location" if mode == "write" else "replayed_location"))
    lag = _leader_optime(view) - position
    max_lag = parse_size(_first(query, "lag"))
    if max_lag is None:
        max_lag = max_lag_default
    if lag > max_lag:
        return f"Replication {mode} lag {lag} exceeds maximum allowable {max_lag}"
    return None


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


# --------------------------------------------------------------------------------------------------
# GET /cluster


def cluster_as_json(cluster: Cluster) -> dict[str, Any]:
    """The GET /cluster body (Patroni 4.1 shape): members sorted by name, LSNs formatted, lags in bytes."""
    config = cluster.config
    mode = config.synchronous_mode if config is not None else "off"
    standby = is_standby_cluster(cluster)
    leader = cluster.leader_name
    cluster_lsn = cluster.last_lsn or 0
    members = []
    for m in sorted(cluster.members, key=lambda m: m.name):
        if m.name == leader:
            role = "standby_leader" if standby else "leader"
        elif mode != "off" and cluster.sync.matches(m.name):
            role = "quorum_standby" if mode == "quorum" else "sync_standby"
        else:
            role = "replica"
        state = (m.replication_state if role != "leader" else None) or m.data.get("state", "")
        item: dict[str, Any] = {"name": m.name, "role": role, "state": state, "api_url": m.api_url}
        if m.host:
            item["host"] = m.host
            try:
                port = urlparse(m.conn_url or "").port
            except ValueError:
                port = None
            if port:
                item["port"] = port
        for key in ("timeline", "pending_restart", "pending_restart_reason", "scheduled_restart", "tags"):
            if key in m.data:
                item[key] = m.data[key]
        if m.name != leader:
            positions = (("receive_", m.receive_lsn), ("replay_", m.replay_lsn), ("", m.xlog_location))
            for prefix, lsn in positions:
                if not lsn:
                    item[prefix + "lsn"] = item[prefix + "lag"] = "unknown"
                else:
                    item[prefix + "lsn"] = format_lsn(lsn)
                    item[prefix + "lag"] = max(0, cluster_lsn - lsn)
        members.append(item)
    out: dict[str, Any] = {"members": members, "scope": cluster.scope}
    if cluster.is_paused:
        out["pause"] = True
    fo = cluster.failover
    if fo is not None and fo.scheduled_at is not None:
        sw: dict[str, Any] = {"at": fo.scheduled_at.isoformat()}
        if fo.leader:
            sw["from"] = fo.leader
        if fo.candidate:
            sw["to"] = fo.candidate
        out["scheduled_switchover"] = sw
    return out


# --------------------------------------------------------------------------------------------------
# GET /metrics

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return 0
    if not isinstance(value, datetime):
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH).total_seconds()


def padded_version(version: Any) -> str:
    """"4.1.5" -> "040105", the form Patroni's patroni_version metric uses."""
    parts = [re.sub(r"\D", "", p) for p in str(version or "0").split(".")]
    return "".join(p.zfill(2) for p in parts if p) or "0"


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "0"
    return "0"


def failover_priority(tags: Any) -> int:
    """Patroni 4.1.4's: 0 with nofailover, else the failover_priority tag, 1 when it is not set."""
    tags = tags if isinstance(tags, Mapping) else {}
    if tags.get("nofailover"):
        return 0
    try:
        return int(tags.get("failover_priority", 1))
    except (TypeError, ValueError):
        return 1


def metrics_text(status: Mapping[str, Any], cluster: Cluster | None, dcs_reachable: bool) -> str:
    """Prometheus text exposition of the node's status; names and meanings follow Patroni 4.1."""
    patroni = status.get("patroni") if isinstance(status.get("patroni"), dict) else {}
    labels = f'{{scope="{_label(patroni.get("scope", ""))}",name="{_label(patroni.get("name", ""))}"}}'
    xlog = _xlog(status)
    role = status.get("role")
    state = status.get("state")
    flags = sync_flags(status, cluster)
    unlocked = status.get("cluster_unlocked", cluster is None or cluster.leader is None)
    rows: list[tuple[str, str, str, Any]] = [
        ("patroni_version", "gauge", "Patroni-compatible version without periods.", None),
        ("patroni_postgres_running", "gauge", "1 if PostgreSQL is running.", state == "running"),
        ("patroni_postmaster_start_time", "gauge", "Epoch seconds when PostgreSQL started.",
         _epoch_seconds(status.get("postmaster_start_time"))),
        ("patroni_primary", "gauge", "1 if this node is the primary.", role in ("primary", "master")),
        ("patroni_xlog_location", "counter", "WAL flush position of the primary, 0 elsewhere.",
         _int(xlog.get("location"))),
        ("patroni_standby_leader", "gauge", "1 if this node is the standby leader.",
         role == "standby_leader"),
        ("patroni_replica", "gauge", "1 if this node is a replica.", role == "replica"),
        ("patroni_sync_standby", "gauge", "1 if this node is a synchronous standby.",
         bool(flags.get("sync_standby"))),
        ("patroni_quorum_standby", "gauge", "1 if this node is a quorum standby.",
         bool(flags.get("quorum_standby"))),
        ("patroni_xlog_received_location", "counter", "Received WAL position of a replica, 0 elsewhere.",
         _int(xlog.get("received_location"))),
        ("patroni_xlog_replayed_location", "counter", "Replayed WAL position of a replica, 0 elsewhere.",
         _int(xlog.get("replayed_location"))),
        ("patroni_xlog_replayed_timestamp", "gauge", "Epoch seconds of the last replayed transaction.",
         _epoch_seconds(xlog.get("replayed_timestamp"))),
        ("patroni_xlog_paused", "gauge", "1 if WAL replay is paused.", xlog.get("paused") is True),
    ]
    if _int(status.get("server_version")) >= 90600:
        rows += [
            ("patroni_postgres_streaming", "gauge", "1 if PostgreSQL streams WAL from another node.",
             status.get("replication_state") == "streaming"),
            ("patroni_postgres_in_archive_recovery", "gauge", "1 if PostgreSQL replays WAL from the archive.",
             status.get("replication_state") == "in archive recovery"),
        ]
    rows += [
        ("patroni_postgres_server_version", "gauge", "PostgreSQL version number, 0 if not running.",
         _int(status.get("server_version"))),
        ("patroni_cluster_unlocked", "gauge", "1 if nobody holds the leader lock.", bool(unlocked)),
        ("patroni_failsafe_mode_is_active", "gauge", "1 if failsafe mode is keeping this primary up.",
         bool(status.get("failsafe_mode_is_active"))),
        ("patroni_failsafe_mode_enabled", "gauge", "1 if failsafe_mode is enabled in the cluster configuration.",
         bool(cluster is not None and cluster.config is not None and cluster.config.failsafe_mode)),
        ("patroni_failsafe_member", "gauge", "1 if this node is a member of the failsafe topology.",
         bool(cluster is not None and isinstance(cluster.failsafe, Mapping) and patroni.get("name") in cluster.failsafe)),
        ("patroni_postgres_timeline", "gauge", "PostgreSQL timeline, 0 if not running.",
         _int(status.get("timeline"))),
        ("patroni_dcs_last_seen", "gauge", "Epoch seconds of the last successful etcd request.",
         _int(status.get("dcs_last_seen"))),
        ("patroni_pending_restart", "gauge", "1 if PostgreSQL needs a restart to apply settings.",
         bool(status.get("pending_restart"))),
        ("patroni_is_paused", "gauge", "1 if the cluster is paused (no automatic failover).",
         bool(status.get("pause"))),
        ("patroni_postgres_state", "gauge", "Index of the PostgreSQL state in Patroni's list, -1 if unknown.",
         MEMBER_STATES.index(state) if state in MEMBER_STATES else -1),
        ("patroni_failover_priority", "gauge", "Failover priority of this node (0 with nofailover).",
         failover_priority(status.get("tags"))),
        ("hatui_dcs_reachable", "gauge", "1 if etcd answered within the last ttl.", dcs_reachable),
    ]
    lines: list[str] = []
    for name, kind, help_text, value in rows:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        shown = padded_version(patroni.get("version")) if name == "patroni_version" else _number(value)
        lines.append(f"{name}{labels} {shown}")
    return "\n".join(lines) + "\n"
