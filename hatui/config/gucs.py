"""PostgreSQL parameters (GUCs): the value syntax of each kind (memory, time, bool, int, real, enum) with
`check_guc_value` and `parse_duration`, how a value is written into postgresql.conf, and the GUCs owned by the
cluster-wide configuration (`OWNED_GUCS`, spec §3.1), whose local values are ignored."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .defaults import BYTES_MAX, PG_INT_MAX
from .issues import _is_int, _kind, _show


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_MEMORY_RE = re.compile(rf"^\s*({_NUM})\s*(B|kB|MB|GB|TB)?\s*$")
_TIME_RE = re.compile(rf"^\s*({_NUM})\s*(us|ms|s|min|h|d)?\s*$")
_INT_RE = re.compile(r"^\s*[+-]?(?:0[xX][0-9a-fA-F]+|\d+)\s*$")
_REAL_RE = re.compile(rf"^\s*{_NUM}\s*$")
_BOOL_WORDS = {
    "on": True,
    "off": False,
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "1": True,
    "0": False,
}
_MEMORY_FACTORS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_FACTORS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400}

MEMORY_GUCS = _words(
    """
    shared_buffers work_mem maintenance_work_mem autovacuum_work_mem logical_decoding_work_mem
    effective_cache_size temp_buffers wal_buffers wal_keep_size max_wal_size min_wal_size
    max_slot_wal_keep_size temp_file_limit huge_page_size gin_pending_list_limit
    min_parallel_table_scan_size min_parallel_index_scan_size max_stack_depth wal_skip_threshold
    wal_decode_buffer_size log_rotation_size log_temp_files track_activity_query_size backend_flush_after
    bgwriter_flush_after checkpoint_flush_after wal_writer_flush_after min_dynamic_shared_memory
    vacuum_buffer_usage_limit log_parameter_max_length log_parameter_max_length_on_error
    """
)
TIME_GUCS = _words(
    """
    checkpoint_timeout statement_timeout lock_timeout idle_in_transaction_session_timeout
    idle_session_timeout transaction_timeout wal_sender_timeout wal_receiver_timeout
    authentication_timeout deadlock_timeout tcp_user_timeout archive_timeout checkpoint_warning
    autovacuum_naptime bgwriter_delay wal_writer_delay vacuum_cost_delay autovacuum_vacuum_cost_delay
    max_standby_archive_delay max_standby_streaming_delay recovery_min_apply_delay post_auth_delay
    pre_auth_delay wal_receiver_status_interval wal_retrieve_retry_interval log_min_duration_statement
    log_min_duration_sample log_autovacuum_min_duration log_rotation_age tcp_keepalives_idle
    tcp_keepalives_interval client_connection_check_interval log_startup_progress_interval
    old_snapshot_threshold idle_replication_slot_timeout
    """
)
BOOL_GUCS = _words(
    """
    fsync full_page_writes hot_standby hot_standby_feedback wal_log_hints track_commit_timestamp
    log_checkpoints log_disconnections log_lock_waits log_hostname logging_collector
    log_truncate_on_rotation log_replication_commands log_duration log_recovery_conflict_waits
    log_statement_stats log_parser_stats log_planner_stats log_executor_stats ssl
    ssl_prefer_server_ciphers autovacuum track_io_timing track_wal_io_timing track_counts track_activities
    jit wal_init_zero wal_recycle restart_after_crash remove_temp_files_after_crash
    default_transaction_read_only default_transaction_deferrable standard_conforming_strings
    escape_string_warning row_security check_function_bodies quote_all_identifiers synchronize_seqscans
    update_process_title zero_damaged_pages ignore_checksum_failure ignore_invalid_pages
    ignore_system_indexes data_sync_retry summarize_wal sync_replication_slots array_nulls
    transform_null_equals parallel_leader_participation allow_in_place_tablespaces allow_system_table_mods
    event_triggers krb_caseins_users
    """
)
INT_GUCS = _words(
    """
    max_connections max_wal_senders max_replication_slots max_worker_processes max_locks_per_transaction
    max_prepared_transactions wal_keep_segments max_parallel_workers max_parallel_workers_per_gather
    max_parallel_maintenance_workers max_pred_locks_per_transaction max_pred_locks_per_relation
    max_pred_locks_per_page autovacuum_max_workers superuser_reserved_connections reserved_connections
    max_logical_replication_workers max_sync_workers_per_subscription
    max_parallel_apply_workers_per_subscription default_statistics_target effective_io_concurrency
    maintenance_io_concurrency autovacuum_vacuum_threshold autovacuum_analyze_threshold
    autovacuum_vacuum_insert_threshold autovacuum_freeze_max_age autovacuum_multixact_freeze_max_age
    vacuum_freeze_min_age vacuum_freeze_table_age vacuum_multixact_freeze_min_age
    vacuum_multixact_freeze_table_age vacuum_failsafe_age vacuum_multixact_failsafe_age vacuum_cost_limit
    autovacuum_vacuum_cost_limit vacuum_cost_page_hit vacuum_cost_page_miss vacuum_cost_page_dirty
    extra_float_digits geqo_threshold geqo_effort geqo_pool_size geqo_generations from_collapse_limit
    join_collapse_limit commit_delay commit_siblings max_files_per_process tcp_keepalives_count
    bgwriter_lru_maxpages port
    """
)
REAL_GUCS = _words(
    """
    checkpoint_completion_target random_page_cost seq_page_cost cpu_tuple_cost cpu_index_tuple_cost
    cpu_operator_cost parallel_setup_cost parallel_tuple_cost hash_mem_multiplier
    autovacuum_vacuum_scale_factor autovacuum_analyze_scale_factor autovacuum_vacuum_insert_scale_factor
    bgwriter_lru_multiplier log_statement_sample_rate log_transaction_sample_rate jit_above_cost
    jit_inline_above_cost jit_optimize_above_cost geqo_selection_bias geqo_seed cursor_tuple_fraction
    recursive_worktable_factor
    """
)
_BOOLISH = ("on", "off", "true", "false", "yes", "no", "1", "0")
_LEVELS = (
    "debug5",
    "debug4",
    "debug3",
    "debug2",
    "debug1",
    "info",
    "notice",
    "warning",
    "error",
    "log",
    "fatal",
    "panic",
)
ENUM_GUCS: dict[str, tuple[str, ...]] = {
    "wal_level": ("minimal", "replica", "hot_standby", "archive", "logical"),
    "synchronous_commit": ("local", "remote_write", "remote_apply", *_BOOLISH),
    "archive_mode": ("always", *_BOOLISH),
    "huge_pages": ("try", *_BOOLISH),
    "wal_compression": ("pglz", "lz4", "zstd", *_BOOLISH),
    "constraint_exclusion": ("partition", *_BOOLISH),
    "log_statement": ("none", "ddl", "mod", "all"),
    "password_encryption": ("md5", "scram-sha-256"),
    "default_transaction_isolation": (
        "serializable",
        "repeatable read",
        "read committed",
        "read uncommitted",
    ),
    "log_min_messages": _LEVELS,
    "client_min_messages": _LEVELS,
    "log_min_error_statement": _LEVELS,
    "wal_sync_method": ("fsync", "fdatasync", "open_sync", "open_datasync", "fsync_writethrough"),
    "log_error_verbosity": ("terse", "default", "verbose"),
    "bytea_output": ("hex", "escape"),
    "track_functions": ("none", "pl", "all"),
    "recovery_target_action": ("pause", "promote", "shutdown"),
    "session_replication_role": ("origin", "replica", "local"),
    "ssl_min_protocol_version": ("tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3"),
    "ssl_max_protocol_version": ("", "tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3"),
}


def guc_kind(name: str) -> str | None:
    """'memory' | 'time' | 'bool' | 'int' | 'real' | 'enum' | None (not checked: unknown or free text)."""
    n = name.lower()
    if n in MEMORY_GUCS:
        return "memory"
    if n in TIME_GUCS or n.endswith("_timeout"):
        return "time"
    if n in BOOL_GUCS or n.startswith("enable_"):
        return "bool"
    if n in INT_GUCS:
        return "int"
    if n in REAL_GUCS:
        return "real"
    if n in ENUM_GUCS:
        return "enum"
    return None


def _number_too_big(text: str) -> bool:
    try:
        v = float(text)
    except (OverflowError, ValueError):
        return True
    return not math.isfinite(v) or abs(v) > BYTES_MAX


def check_guc_value(name: str, value: Any) -> str | None:
    """None when `value` is acceptable for the GUC `name`, else what is wrong (without the name)."""
    if isinstance(value, (Mapping, list, tuple)):
        return f"must be a single value (a string, number or true/false), not {_kind(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{_show(value)} is not a finite number"
    kind = guc_kind(name)
    if kind is None:
        return None
    if kind == "bool":
        if isinstance(value, bool) or (_is_int(value) and value in (0, 1)):
            return None
        if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
            return None
        return f"{_show(value)} is not a boolean (use on/off, true/false, yes/no or 1/0)"
    if kind == "enum":
        choices = ENUM_GUCS[name.lower()]
        if isinstance(value, bool) and "on" in choices:
            return None
        if isinstance(value, (str, int)) and str(value).strip().lower() in choices:
            return None
        return f"{_show(value)} must be one of: {', '.join(c for c in choices if c)}"
    if isinstance(value, bool):
        return f"{_show(value)} is not a {'number' if kind in ('int', 'real') else kind + ' value'}"
    if kind in ("memory", "time", "int") and _is_int(value):
        if abs(value) > PG_INT_MAX:
            return f"{value} is out of range (PostgreSQL integer settings go up to {PG_INT_MAX})"
        return None
    if isinstance(value, float):
        return None if kind != "int" else f"{_show(value)} must be a whole number"
    if not isinstance(value, str):
        return f"{_show(value)} must be a string or a number, not {_kind(value)}"
    if kind == "memory":
        m = _MEMORY_RE.match(value)
        if not m:
            return (
                f"{_show(value)} is not a valid amount of memory: use an integer with an optional unit "
                "(B, kB, MB, GB, TB), e.g. 8MB"
            )
        return "is too large" if _number_too_big(m.group(1)) else None
    if kind == "time":
        m = _TIME_RE.match(value)
        if not m:
            return (
                f"{_show(value)} is not a valid duration: use a number with an optional unit "
                "(us, ms, s, min, h, d), e.g. 30s"
            )
        return "is too large" if _number_too_big(m.group(1)) else None
    if kind == "int":
        if not _INT_RE.match(value):
            return f"{_show(value)} must be a whole number"
        try:
            number = (
                int(value.strip(), 0)
                if value.strip().lower().startswith(("0x", "-0x", "+0x"))
                else int(value)
            )
        except ValueError:
            return f"{_show(value)} must be a whole number"
        if abs(number) > PG_INT_MAX:
            return f"{_show(value)} is out of range (PostgreSQL integer settings go up to {PG_INT_MAX})"
        return None
    # real
    if not _REAL_RE.match(value):
        return f"{_show(value)} must be a number"
    return "is too large" if _number_too_big(value) else None


def _memory_bytes(value: Any, base_unit: str) -> float | None:
    """Bytes in a memory value; a bare number is in `base_unit` (as PostgreSQL does per GUC)."""
    if _is_int(value) or isinstance(value, float):
        return float(value) * _MEMORY_FACTORS[base_unit]
    if isinstance(value, str):
        m = _MEMORY_RE.match(value)
        if m:
            return float(m.group(1)) * _MEMORY_FACTORS[m.group(2) or base_unit]
    return None


def parse_duration(value: Any, default_unit: str = "s") -> int | None:
    """Seconds in 30, '30', '30s', '30min', '1h' ...; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if _is_int(value):
        return int(value * _TIME_FACTORS[default_unit])
    if isinstance(value, float):
        return int(value * _TIME_FACTORS[default_unit]) if math.isfinite(value) else None
    if isinstance(value, str):
        m = _TIME_RE.match(value)
        if m and not _number_too_big(m.group(1)):
            return int(float(m.group(1)) * _TIME_FACTORS[m.group(2) or default_unit])
    return None


def _guc_shown(value: Any) -> str:
    """A GUC value for a log line or an error: as it would be written, shortened (a hostile
    config can carry megabytes in one value, and an operator's log must stay readable)."""
    text = _kind(value) if isinstance(value, (Mapping, list)) else _guc_text(value)
    return text if len(text) <= 60 else f"{text[:57]}... ({len(text)} characters)"


def _short_name(name: str) -> str:
    return name if len(name) <= 60 else f"{name[:57]}..."


def _guc_text(value: Any) -> str:
    """How a value is written into postgresql.conf / on the command line."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value) or abs(value) >= 1e16:
            return repr(value)
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------------------------------------------
# GUCs owned by the cluster-wide configuration (spec §3.1)


@dataclass(frozen=True)
class OwnedGuc:
    """A GUC Patroni sets on the postmaster command line from the DCS config only; local values are ignored."""

    name: str
    default: str | None  # None: not from the config at all (listen_addresses, port, cluster_name)
    kind: str  # "int" | "memory" | "enum" | "bool" | "always_on" | "node"
    minimum: int | None = None
    choices: tuple[str, ...] = ()
    base_unit: str = "MB"  # for kind "memory": the unit of a bare number
    min_version: int = 0  # PostgreSQL server_version_num where it exists
    max_version: int | None = None  # first version where it is gone

    def applies_to(self, server_version: int) -> bool:
        return server_version >= self.min_version and (
            self.max_version is None or server_version < self.max_version
        )

    def check(self, value: Any) -> str | None:
        """None when valid, else what is wrong (without the name)."""
        if self.kind == "int":
            if _is_int(value):
                number = value
            elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
                number = int(value)
            else:
                return f"{_show(value)} must be an integer, not {_kind(value)}"
            if abs(number) > PG_INT_MAX:
                return f"{_show(value)} is out of range (the maximum is {PG_INT_MAX})"
            if self.minimum is not None and number < self.minimum:
                return f"{_show(value)} must be >= {self.minimum}"
            return None
        if self.kind == "memory":
            problem = check_guc_value(self.name, value)
            if problem:
                return problem
            size = _memory_bytes(value, self.base_unit)
            if size is None:
                return f"{_show(value)} is not a valid amount of memory"
            minimum = (self.minimum or 0) * _MEMORY_FACTORS[self.base_unit]
            if size < minimum:
                return f"{_show(value)} must be >= {self.minimum}{self.base_unit}"
            return None
        if self.kind == "enum":
            text = str(value).lower() if isinstance(value, str) else None
            return (
                None if text in self.choices else f"{_show(value)} must be one of: {', '.join(self.choices)}"
            )
        if self.kind in ("bool", "always_on"):
            truth = _bool_word(value)
            if truth is None:
                return f"{_show(value)} is not a boolean (use on/off)"
            if self.kind == "always_on" and not truth:
                return f"{_show(value)} is not allowed: it is always on for replication to work"
            return None
        return None


def _bool_word(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if _is_int(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _BOOL_WORDS.get(value.strip().lower())
    return None


OWNED_GUCS: dict[str, OwnedGuc] = {
    g.name: g
    for g in (
        OwnedGuc("max_connections", "100", "int", minimum=25),
        OwnedGuc("max_locks_per_transaction", "64", "int", minimum=32),
        OwnedGuc("max_worker_processes", "8", "int", minimum=2),
        OwnedGuc("max_prepared_transactions", "0", "int", minimum=0),
        OwnedGuc("wal_level", "replica", "enum", choices=("hot_standby", "replica", "logical")),
        OwnedGuc("track_commit_timestamp", "off", "bool"),
        OwnedGuc("max_wal_senders", "10", "int", minimum=3),
        OwnedGuc("max_replication_slots", "10", "int", minimum=4),
        OwnedGuc("wal_keep_segments", "8", "int", minimum=1, max_version=130000),
        OwnedGuc("wal_keep_size", "128MB", "memory", minimum=16, base_unit="MB", min_version=130000),
        OwnedGuc("wal_log_hints", "on", "always_on"),
        OwnedGuc("hot_standby", "on", "always_on"),
        OwnedGuc("listen_addresses", None, "node"),
        OwnedGuc("port", None, "node"),
        OwnedGuc("cluster_name", None, "node"),
    )
}


def _owned_problem(name: str, value: Any) -> str | None:
    guc = OWNED_GUCS.get(name.lower())
    return guc.check(value) if guc else None
