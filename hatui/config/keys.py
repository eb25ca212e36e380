"""Which settings exist and where they belong: the keys of the cluster config (with their bounds and
old names), of the node file, the postgresql.* keys that are node-only or shared, and the words some settings
accept (synchronous_mode, watchdog mode, log levels, callbacks, boolean tags). Shared by the validators and
the typed models, so a key is named once."""

from __future__ import annotations

from typing import Any

from .defaults import BYTES_MAX, SECONDS_MAX
from .gucs import _words

_DYNAMIC_INT = {
    # key: (minimum, maximum)
    "ttl": (20, SECONDS_MAX),
    "loop_wait": (1, SECONDS_MAX),
    "retry_timeout": (3, SECONDS_MAX),
    "maximum_lag_on_failover": (None, BYTES_MAX),
    "maximum_lag_on_syncnode": (None, BYTES_MAX),
    "max_timelines_history": (0, SECONDS_MAX),
    "primary_start_timeout": (0, SECONDS_MAX),
    "master_start_timeout": (0, SECONDS_MAX),
    "primary_stop_timeout": (0, SECONDS_MAX),
    "master_stop_timeout": (0, SECONDS_MAX),
    "synchronous_node_count": (1, SECONDS_MAX),
}
_DYNAMIC_BOOL = ("check_timeline", "synchronous_mode_strict", "failsafe_mode", "pause")
_DYNAMIC_OTHER = (
    "synchronous_mode",
    "member_slots_ttl",
    "slots",
    "permanent_slots",
    "permanent_replication_slots",
    "ignore_slots",
    "standby_cluster",
    "postgresql",
    "primary_race_backoff",
)
DYNAMIC_KEYS = frozenset((*_DYNAMIC_INT, *_DYNAMIC_BOOL, *_DYNAMIC_OTHER))
_OLD_NAMES = {"master_start_timeout": "primary_start_timeout", "master_stop_timeout": "primary_stop_timeout"}

NODE_KEYS = _words(
    """
    scope namespace name restapi ctl etcd etcd3 bootstrap postgresql tags watchdog log fencing citus events
    """
)

# postgresql.* keys that only make sense in the node file; Patroni strips them from the DCS config.
_PG_LOCAL_ONLY = _words(
    """
    connect_address proxy_address listen config_dir data_dir pgpass authentication bin_dir bin_name
    database os_user
    """
)
_PG_SHARED = _words(
    """
    use_pg_rewind use_slots parameters pg_hba pg_ident recovery_conf
    remove_data_directory_on_rewind_failure remove_data_directory_on_diverged_timelines pg_ctl_timeout
    callbacks create_replica_methods basebackup use_unix_socket use_unix_socket_repl pre_promote
    before_stop custom_conf
    """
)
_SYNC_MODES = {
    "on": "on",
    "true": "on",
    "yes": "on",
    "off": "off",
    "false": "off",
    "no": "off",
    "quorum": "quorum",
}


def normalize_synchronous_mode(value: Any) -> str:
    """'off' | 'on' | 'quorum' from true/false/'on'/'off'/'quorum' (anything else: 'off')."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return _SYNC_MODES.get(value.strip().lower(), "off")
    return "off"


_CALLBACKS = ("on_start", "on_stop", "on_restart", "on_reload", "on_role_change")
_BOOL_TAGS = ("nofailover", "noloadbalance", "clonefrom", "nosync", "nostream")
_WATCHDOG_MODES = {
    "off": "off",
    "false": "off",
    "no": "off",
    "disable": "off",
    "disabled": "off",
    "automatic": "automatic",
    "auto": "automatic",
    "on": "automatic",
    "true": "automatic",
    "required": "required",
    "require": "required",
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
