"""Defaults and limits of the configuration: the cluster config's defaults (spec §3.1), the namespace, and
the bounds that turn absurd input into an error instead of a crash or an overflow further down."""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_NAMESPACE = "/service"

# Limits that turn absurd input into an error instead of a crash or an overflow further down.
SECONDS_MAX = 2**31 - 1  # every timing value ends up in a 32-bit field somewhere (etcd lease TTL, PG GUCs)
BYTES_MAX = 2**63 - 1
PG_INT_MAX = 2**31 - 1  # PostgreSQL integer GUCs are 32-bit
STRING_MAX = 1024 * 1024  # 1 MB: nothing legitimate in a config is longer
YAML_NODES_MAX = 200_000  # after alias expansion ("billion laughs" stays a message, not an OOM)

DEFAULT_DYNAMIC: dict[str, Any] = {
    "ttl": 30,
    "loop_wait": 10,
    "retry_timeout": 10,
    "maximum_lag_on_failover": 1048576,
    "maximum_lag_on_syncnode": -1,
    "max_timelines_history": 0,
    "primary_start_timeout": 300,
    "primary_stop_timeout": 0,
    "check_timeline": False,
    "synchronous_mode": False,
    "synchronous_mode_strict": False,
    "synchronous_node_count": 1,
    "failsafe_mode": False,
    "member_slots_ttl": 1800,
    "postgresql": {"use_pg_rewind": False, "use_slots": True, "parameters": {}},
}


def default_dynamic() -> dict[str, Any]:
    """A fresh, mutable copy of DEFAULT_DYNAMIC (the constant itself must not be modified)."""
    return copy.deepcopy(DEFAULT_DYNAMIC)
