"""The pure rules behind the REST API: health checks, request validation, /cluster and /metrics bodies.

Nothing here does I/O or reads a clock: `api.py` passes in the node's status dict (the GET /patroni
body), the last valid cluster view and "now", and writes out what comes back. That keeps every
200/503 decision and every 400 message a plain function a unit test can call.

Status codes and reply texts follow Patroni 4.1 (spec/patroni-compat.md section 4), because load
balancers, patronictl and operators' scripts already depend on them.

The rules live in one module per family and are all importable from here:
  api_rules_values  sizes and durations with units, booleans, PostgreSQL version texts
  api_rules_health  the health checks, /liveness, /readiness and the /patroni body
  api_rules_writes  POST /switchover, /failover, /restart, /reinitialize bodies; PATCH /config's merge
  api_rules_views   the GET /cluster and GET /metrics bodies
"""

from __future__ import annotations

from .api_rules_health import (
    ASYNC_PATHS,
    HEALTH_PATHS,
    LEADER_PATHS,
    LOCK_PATHS,
    PRIMARY_PATHS,
    READ_ONLY_SYNC_PATHS,
    STANDBY_LEADER_PATHS,
    SYNC_PATHS,
    NodeView,
    health_code,
    is_standby_cluster,
    liveness_code,
    public_status,
    readiness_failure,
    sync_flags,
    tags_match,
)
from .api_rules_values import parse_bool, parse_seconds, parse_size, postgres_version_to_int
from .api_rules_views import cluster_as_json, failover_priority, metrics_text, padded_version
from .api_rules_writes import (
    RESTART_ROLES,
    UNPARSABLE_SCHEDULE,
    Refusal,
    RestartRequest,
    SwitchoverRequest,
    merge_patch,
    parse_reinitialize,
    parse_schedule,
    validate_restart,
    validate_switchover,
)

__all__ = [
    "ASYNC_PATHS", "HEALTH_PATHS", "LEADER_PATHS", "LOCK_PATHS", "PRIMARY_PATHS", "READ_ONLY_SYNC_PATHS",
    "RESTART_ROLES", "STANDBY_LEADER_PATHS", "SYNC_PATHS", "UNPARSABLE_SCHEDULE", "NodeView", "Refusal",
    "RestartRequest", "SwitchoverRequest", "cluster_as_json", "failover_priority", "health_code",
    "is_standby_cluster", "liveness_code", "merge_patch", "metrics_text", "padded_version", "parse_bool",
    "parse_reinitialize", "parse_schedule", "parse_seconds", "parse_size", "postgres_version_to_int",
    "public_status", "readiness_failure", "sync_flags", "tags_match", "validate_restart",
    "validate_switchover",
]
