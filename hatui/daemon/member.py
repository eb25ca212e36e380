"""The JSON a node publishes in its `members/<name>` key and answers on GET /patroni.

Both follow Patroni 4.1's shapes exactly (key order included), so that real patronictl and
Patroni-aware tools read a hatui node as they read a Patroni one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import PATRONI_COMPAT_VERSION


@dataclass
class NodeView:
    """The daemon's current picture of its own node, updated by the loop every cycle."""

    name: str
    scope: str
    conn_url: str
    api_url: str
    state: str = "stopped"
    role: str = "uninitialized"  # primary | replica | demoted | uninitialized | promoted
    timeline: int | None = None
    xlog_location: int | None = None
    receive_lsn: int | None = None
    replay_lsn: int | None = None
    replication_state: str | None = None
    replayed_timestamp: str | None = None
    replay_paused: bool = False
    tags: dict = field(default_factory=dict)
    pending_restart: bool = False
    pending_restart_reason: dict = field(default_factory=dict)
    scheduled_restart: dict | None = None
    checkpoint_after_promote: bool | None = None  # False right after promote, until CHECKPOINT
    paused: bool = False
    server_version: int | None = None
    postmaster_start_time: str | None = None
    sysid: str | None = None
    replication: list = field(default_factory=list)
    dcs_last_seen: int = 0
    failsafe_active: bool = False
    # The last HA decision and its facts (daemon/decisions.py); a field Patroni tools ignore.
    decision: dict | None = None


def member_data(v: NodeView) -> dict[str, Any]:
    data: dict[str, Any] = {
        "conn_url": v.conn_url,
        "api_url": v.api_url,
        "state": v.state,
        "role": v.role,
        "version": PATRONI_COMPAT_VERSION,
    }
    if v.checkpoint_after_promote is False:
        data["checkpoint_after_promote"] = False
    if v.tags:
        data["tags"] = dict(v.tags)
    if v.pending_restart:
        data["pending_restart"] = True
        if v.pending_restart_reason:
            data["pending_restart_reason"] = v.pending_restart_reason
    if v.scheduled_restart:
        data["scheduled_restart"] = v.scheduled_restart
    if v.paused:
        data["pause"] = True
    if v.state in ("running", "restarting", "starting") and v.xlog_location is not None:
        data["xlog_location"] = v.xlog_location
        if v.role != "primary":
            if v.replay_lsn is not None:
                data["replay_lsn"] = v.replay_lsn
            if v.receive_lsn is not None:
                data["receive_lsn"] = v.receive_lsn
            if v.replication_state:
                data["replication_state"] = v.replication_state
        if v.timeline is not None:
            data["timeline"] = v.timeline
    if v.decision:
        data["decision"] = v.decision
    return data


def patroni_status(v: NodeView) -> dict[str, Any]:
    """GET /patroni."""
    out: dict[str, Any] = {"state": v.state}
    if v.postmaster_start_time:
        out["postmaster_start_time"] = v.postmaster_start_time
    out["role"] = v.role
    if v.server_version:
        out["server_version"] = v.server_version
    if v.state == "running":
        if v.role == "primary":
            out["xlog"] = {"location": v.xlog_location}
        else:
            out["xlog"] = {
                "received_location": v.receive_lsn if v.receive_lsn is not None else v.xlog_location,
                "replayed_location": v.replay_lsn if v.replay_lsn is not None else v.xlog_location,
                "replayed_timestamp": v.replayed_timestamp,
                "paused": v.replay_paused,
            }
        if v.timeline is not None:
            out["timeline"] = v.timeline
        if v.role == "primary" and v.replication:
            out["replication"] = v.replication
        if v.role != "primary" and v.replication_state:
            out["replication_state"] = v.replication_state
    if v.paused:
        out["pause"] = True
    if v.pending_restart:
        out["pending_restart"] = True
        if v.pending_restart_reason:
            out["pending_restart_reason"] = v.pending_restart_reason
    if v.scheduled_restart:
        out["scheduled_restart"] = v.scheduled_restart
    if v.tags:
        out["tags"] = dict(v.tags)
    if v.failsafe_active:
        out["failsafe_mode_is_active"] = True
    out["dcs_last_seen"] = v.dcs_last_seen
    if v.sysid:
        out["database_system_identifier"] = v.sysid
    out["patroni"] = {"version": PATRONI_COMPAT_VERSION, "scope": v.scope, "name": v.name}
    if v.decision:
        out["decision"] = v.decision
    return out
