"""The bodies of the REST API's cluster views, pure: GET /cluster (Patroni 4.1 shape) and the
Prometheus text of GET /metrics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from ..cluster import MEMBER_STATES, Cluster, format_lsn
from .api_rules_health import _int, _xlog, is_standby_cluster, sync_flags

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
