"""Configuration: the node's YAML file and the cluster-wide (dynamic) configuration.

Two kinds of configuration exist, as in Patroni:

* the **node file** (`postgres0.yml`): who this node is, where etcd is, where PostgreSQL lives. Read once at
  start with `load_node_config`; a Patroni node file is accepted as it is.
* the **dynamic configuration**: one JSON document in the DCS `config` key, shared by every node (ttl,
  loop_wait, retry_timeout, synchronous_mode, postgresql.parameters, ...). Edited with `edit-config`, the
  console's editor or REST PATCH /config.

There is exactly ONE validator (`validate_dynamic`, `validate_node`): the daemon, the CLI and the editor all
call it, so a rule is stated once and every user sees the same sentence. Issues carry the key path, the
value, the rule and (when the data came from YAML) the line and column, so the editor can point at them.

What the daemon applies is a different question from what a person may write: Patroni never refuses a
config that breaks the timing rule, it adjusts it in memory and logs a warning. `safe_dynamic` does the same.

Everything here is pure: no I/O except reading the file given to `load_node_config`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import io
import math
import re
import warnings as _pywarnings
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from hatui.pgparams import is_known

__all__ = [
    "DEFAULT_DYNAMIC",
    "DEFAULT_NAMESPACE",
    "OWNED_GUCS",
    "BootstrapConfig",
    "ConfigError",
    "Credentials",
    "DynamicConfig",
    "EtcdConfig",
    "FencingConfig",
    "Issue",
    "LogConfig",
    "NodeConfig",
    "NodeTags",
    "OwnedGuc",
    "PostgresqlConfig",
    "RestApiConfig",
    "WatchdogConfig",
    "apply_edits",
    "check_guc_value",
    "config_diff",
    "default_dynamic",
    "dump_yaml",
    "effective_parameters",
    "effective_parameters_report",
    "errors",
    "guc_kind",
    "load_node_config",
    "normalize_namespace",
    "normalize_synchronous_mode",
    "parse_duration",
    "parse_node_config",
    "parse_value",
    "parse_yaml_document",
    "safe_dynamic",
    "set_path",
    "split_host_port",
    "validate_dynamic",
    "validate_dynamic_text",
    "validate_node",
    "validate_node_text",
    "warnings_only",
]

DEFAULT_NAMESPACE = "/service"

# Limits that turn absurd input into an error instead of a crash or an overflow further down.
SECONDS_MAX = 2**31 - 1  # every timing value ends up in a 32-bit field somewhere (etcd lease TTL, PG GUCs)
BYTES_MAX = 2**63 - 1
PG_INT_MAX = 2**31 - 1  # PostgreSQL integer GUCs are 32-bit
STRING_MAX = 1024 * 1024  # 1 MB: nothing legitimate in a config is longer
YAML_NODES_MAX = 200_000  # after alias expansion ("billion laughs" stays a message, not an OOM)

# --------------------------------------------------------------------------------------------------------------
# Defaults (spec §3.1)

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


_TIMING_MINIMUMS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


# --------------------------------------------------------------------------------------------------------------
# Issues


@dataclass(frozen=True)
class Issue:
    """One finding of the validator. `message` is the sentence people read ("ttl: 5 must be >= 20")."""

    path: str
    value: Any
    rule: str
    severity: str  # "error" | "warning"
    message: str
    line: int | None = None
    column: int | None = None
    detail: str = field(default="", compare=False)
    # The path as keys: a GUC name may contain dots, so the dotted string alone is ambiguous.
    keys: tuple = field(default=(), compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, source: str | None = None) -> str:
        """`source:line:column: severity: message`, the shape compilers and editors understand."""
        where = source or ""
        if self.line is not None:
            where += f":{self.line}" if where else f"line {self.line}"
            if self.column is not None:
                where += f":{self.column}" if source else f", column {self.column}"
        return f"{where}: {self.severity}: {self.message}" if where else f"{self.severity}: {self.message}"

    def __str__(self) -> str:
        return self.message


def errors(issues: Iterable[Issue]) -> list[Issue]:
    """Only the issues that must stop a write."""
    return [i for i in issues if i.severity == "error"]


def warnings_only(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity != "error"]


class ConfigError(Exception):
    """A node file that cannot be used; `issues` holds every problem found, errors first."""

    def __init__(self, source: str, issues: list[Issue]):
        self.source = source
        self.issues = sorted(issues, key=lambda i: (i.severity != "error", i.line or 0, i.column or 0))
        lines = [i.format(source) for i in self.issues if i.is_error]
        super().__init__("\n".join(lines) or f"{source}: invalid configuration")


def _path_text(keys: Sequence[Any]) -> str:
    return ".".join(str(k) for k in keys)


def _make_issue(keys: Sequence[Any], value: Any, rule: str, detail: str, severity: str) -> Issue:
    path = _path_text(keys)
    message = f"{path}: {detail}" if path else detail
    return Issue(path, value, rule, severity, message, detail=detail, keys=tuple(keys))


def _reprefix(issue: Issue, prefix: Sequence[Any]) -> Issue:
    """The same issue seen from an enclosing document (bootstrap.dcs inside a node file)."""
    fresh = _make_issue(tuple(prefix) + issue.keys, issue.value, issue.rule, issue.detail, issue.severity)
    return dataclasses.replace(fresh, line=issue.line, column=issue.column)


def _show(value: Any) -> str:
    """A value as a person would write it in YAML, shortened."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return "'" + text.replace("'", "''") + "'"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


class _Checker:
    """Collects issues; the helpers below state each kind of rule once."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.known_parameters: frozenset[str] | None = None  # the local server's, when known

    def error(self, keys: Sequence[Any], value: Any, rule: str, detail: str) -> None:
        self.issues.append(_make_issue(keys, value, rule, detail, "error"))

    def warning(self, keys: Sequence[Any], value: Any, rule: str, detail: str) -> None:
        self.issues.append(_make_issue(keys, value, rule, detail, "warning"))

    def extend(self, issues: Iterable[Issue], prefix: Sequence[Any] = ()) -> None:
        self.issues.extend(_reprefix(i, prefix) if prefix else i for i in issues)

    # -- typed checks; each returns True when the value has the right type --
    def integer(
        self, keys: Sequence[Any], value: Any, minimum: int | None = None, maximum: int | None = None
    ) -> bool:
        if not _is_int(value):
            self.error(keys, value, "type", f"{_show(value)} must be an integer, not {_kind(value)}")
            return False
        if maximum is not None and value > maximum:
            self.error(keys, value, "maximum", f"{_show(value)} is too large (the maximum is {maximum})")
            return False
        if minimum is not None and value < minimum:
            self.error(keys, value, "minimum", f"{value} must be >= {minimum}")
            return False
        return True

    def boolean(self, keys: Sequence[Any], value: Any) -> bool:
        if not isinstance(value, bool):
            self.error(keys, value, "type", f"{_show(value)} must be true or false, not {_kind(value)}")
            return False
        return True

    def string(self, keys: Sequence[Any], value: Any) -> bool:
        if not isinstance(value, str):
            self.error(keys, value, "type", f"{_show(value)} must be a string, not {_kind(value)}")
            return False
        return True

    def mapping(self, keys: Sequence[Any], value: Any) -> bool:
        if not isinstance(value, Mapping):
            self.error(keys, value, "type", f"must be a mapping (key: value lines), not {_kind(value)}")
            return False
        return True

    def string_list(self, keys: Sequence[Any], value: Any) -> bool:
        if not isinstance(value, (list, tuple)):
            self.error(keys, value, "type", f"must be a list of strings, not {_kind(value)}")
            return False
        ok = True
        for i, item in enumerate(value):
            ok = self.string((*keys, i), item) and ok
        return ok

    def choice(self, keys: Sequence[Any], value: Any, choices: Sequence[str], case: bool = False) -> bool:
        norm = value if case or not isinstance(value, str) else value.lower()
        if not isinstance(value, str) or norm not in choices:
            self.error(keys, value, "enum", f"{_show(value)} must be one of: {', '.join(choices)}")
            return False
        return True

    def unknown(self, keys: Sequence[Any], value: Any, known: Iterable[str] = ()) -> None:
        close = difflib.get_close_matches(str(keys[-1]), list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        self.warning(keys, value, "unknown_key", f"unknown setting, ignored{hint}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------------------------
# Value syntax of PostgreSQL parameters


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


# --------------------------------------------------------------------------------------------------------------
# YAML


def _yaml_loader() -> YAML:
    y = YAML(typ="rt")  # round-trip: keeps line/column of every key and value
    # Patroni and patronictl read YAML 1.1 (PyYAML): `on`, `yes`, `off` are booleans there, so they are here.
    y.version = (1, 1)
    y.allow_duplicate_keys = False
    return y


@dataclass
class _Document:
    data: Any
    key_pos: dict[tuple, tuple[int, int]]
    value_pos: dict[tuple, tuple[int, int]]
    issues: list[Issue]

    def locate(self, issue: Issue) -> Issue:
        if issue.line is not None or not issue.keys:
            return issue
        keys = issue.keys
        pos = None
        if issue.rule not in ("unknown_key", "misplaced"):
            pos = self.value_pos.get(keys)
        while pos is None and keys:
            pos = self.key_pos.get(keys)
            keys = keys[:-1]
        return dataclasses.replace(issue, line=pos[0], column=pos[1]) if pos else issue


class _YamlTooBig(Exception):
    pass


class _YamlLoop(Exception):
    pass


def _expanded_size(node: Any) -> int:
    """How many values the document has once aliases are expanded (shared nodes counted each time)."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(n: Any) -> int:
        if not isinstance(n, (Mapping, list, tuple)):
            return 1
        ident = id(n)
        if ident in memo:
            return memo[ident]
        if ident in active:
            raise _YamlLoop
        active.add(ident)
        children = (x for kv in n.items() for x in kv) if isinstance(n, Mapping) else iter(n)
        total = 1
        for child in children:
            total += size(child)
            if total > YAML_NODES_MAX:
                raise _YamlTooBig
        active.discard(ident)
        memo[ident] = total
        return total

    return size(node)


def _plain_scalar(value: Any) -> Any:
    """ruamel's round-trip scalar types -> plain Python values that json.dumps accepts."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    from ruamel.yaml.scalarbool import ScalarBoolean

    if isinstance(value, ScalarBoolean):
        return bool(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if hasattr(value, "isoformat"):  # timestamps: keep the text, a date is not JSON
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    tagged = getattr(value, "value", None)  # TaggedScalar (`!custom text`)
    if isinstance(tagged, str):
        return tagged
    return str(value)


def _to_plain(node: Any, keys: tuple, key_pos: dict, value_pos: dict) -> Any:
    if isinstance(node, Mapping):
        lc = getattr(node, "lc", None)
        out: dict[Any, Any] = {}
        for k, v in node.items():
            pk = _plain_scalar(k) if not isinstance(k, (Mapping, list, tuple)) else str(k)
            here = (*keys, pk)
            if lc is not None:
                try:
                    line, col = lc.key(k)
                    key_pos[here] = (line + 1, col + 1)
                    line, col = lc.value(k)
                    value_pos[here] = (line + 1, col + 1)
                except (KeyError, TypeError, IndexError):  # merged (<<) keys have no position of their own
                    pass
            out[pk] = _to_plain(v, here, key_pos, value_pos)
        return out
    if isinstance(node, (list, tuple)):
        lc = getattr(node, "lc", None)
        items = []
        for i, v in enumerate(node):
            here = (*keys, i)
            if lc is not None:
                try:
                    line, col = lc.item(i)
                    key_pos[here] = value_pos[here] = (line + 1, col + 1)
                except (KeyError, TypeError, IndexError):
                    pass
            items.append(_to_plain(v, here, key_pos, value_pos))
        return items
    return _plain_scalar(node)


def _syntax_issue(text: str, exc: Exception) -> Issue:
    line = column = None
    problem = ""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        problem = exc.problem or exc.context or ""
        if problem.startswith("but ") and exc.context:  # "but found another document" needs its first half
            problem = f"{exc.context}, {problem}"
    else:
        position = getattr(exc, "position", None)
        if isinstance(position, int):
            before = text[:position]
            line, column = before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1
        problem = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        if not isinstance(problem, str):
            problem = str(problem)
    problem = problem.strip() or "invalid YAML"
    where = f" at line {line}, column {column}" if line is not None else ""
    return Issue(
        "", None, "yaml_syntax", "error", f"YAML syntax error{where}: {problem}", line, column, detail=problem
    )


def _load(text: str | bytes) -> _Document:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _Document(
                None,
                {},
                {},
                [
                    Issue(
                        "",
                        None,
                        "yaml_syntax",
                        "error",
                        f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    )
                ],
            )
    try:
        with _pywarnings.catch_warnings():
            # ruamel warns (on stderr) about YAML 1.1 floats without a dot such as 1e3; that is noise here
            _pywarnings.simplefilter("ignore")
            tree = _yaml_loader().load(text)
    except YAMLError as exc:
        return _Document(None, {}, {}, [_syntax_issue(text, exc)])
    except RecursionError:
        return _Document(
            None, {}, {}, [Issue("", None, "yaml_syntax", "error", "the document is nested too deeply")]
        )
    try:
        _expanded_size(tree)
    except _YamlTooBig:
        msg = f"the document expands to more than {YAML_NODES_MAX} values through aliases"
        return _Document(None, {}, {}, [Issue("", None, "size", "error", msg)])
    except _YamlLoop:
        return _Document(None, {}, {}, [Issue("", None, "yaml_syntax", "error", "an alias refers to itself")])
    except RecursionError:
        return _Document(
            None, {}, {}, [Issue("", None, "yaml_syntax", "error", "the document is nested too deeply")]
        )
    key_pos: dict[tuple, tuple[int, int]] = {}
    value_pos: dict[tuple, tuple[int, int]] = {}
    try:
        data = _to_plain(tree, (), key_pos, value_pos)
    except RecursionError:
        return _Document(
            None, {}, {}, [Issue("", None, "yaml_syntax", "error", "the document is nested too deeply")]
        )
    if data is None:  # empty file or only comments: an empty configuration
        data = {}
    return _Document(data, key_pos, value_pos, [])


def parse_yaml_document(text: str | bytes) -> tuple[Any, list[Issue]]:
    """Parse YAML into plain dict/list/scalars. On bad YAML: (None, [one error with line and column])."""
    doc = _load(text)
    return doc.data, doc.issues


def parse_value(text: str) -> Any:
    """A value given on a command line (`--set ttl=60`), read as YAML like patronictl does.

    Text that is not valid YAML on its own (`%m [%p] `, a quote left open) is kept as a plain string:
    PostgreSQL values often look like that, and refusing them helps nobody.
    """
    doc = _load(text)
    if doc.issues:
        return text
    if doc.data == {} and text.strip() not in ("{}",) and not text.strip().startswith("{"):
        return None  # empty text or only a comment: YAML null, which removes the key
    return doc.data


# --------------------------------------------------------------------------------------------------------------
# Generic safety walk: sizes, non-finite numbers, foreign types, loops


def _walk_check(c: _Checker, data: Any) -> bool:
    """Checks every value once; False when the structure cannot be validated further (it loops)."""
    stack: list[tuple[tuple, Any]] = [((), data)]
    active: set[int] = set()
    seen = 0
    while stack:
        keys, node = stack.pop()
        seen += 1
        if isinstance(node, (Mapping, list, tuple)):
            if keys and len(keys) > 200:
                c.error(keys, None, "size", "is nested too deeply")
                return False
            ident = id(node)
            if ident in active and any(ident == id(x) for x in _ancestors(data, keys)):
                c.error(keys, None, "loop", "refers to itself")
                return False
            active.add(ident)
            if isinstance(node, Mapping):
                for k, v in node.items():
                    if isinstance(k, str) and len(k) > STRING_MAX:
                        c.error((*keys, k[:40] + "..."), None, "size", "key is longer than 1 MB")
                        continue
                    stack.append(((*keys, k), v))
            else:
                stack.extend(((*keys, i), v) for i, v in enumerate(node))
        elif isinstance(node, str):
            if len(node) > STRING_MAX:
                c.error(
                    keys, node[:40] + "...", "size", f"the value is longer than 1 MB ({len(node)} characters)"
                )
        elif isinstance(node, float):
            if not math.isfinite(node):
                c.error(keys, node, "number", f"{node} is not a finite number")
        elif node is not None and not isinstance(node, (bool, int)):
            c.error(
                keys, node, "type", f"values must be strings, numbers, true/false or null, not {_kind(node)}"
            )
    return True


def _ancestors(data: Any, keys: tuple) -> Iterator[Any]:
    """The containers on the path to `keys` (exclusive), to tell a loop from a shared sub-document."""
    node = data
    for k in keys:
        yield node
        try:
            node = node[k]
        except (KeyError, IndexError, TypeError):
            return


# --------------------------------------------------------------------------------------------------------------
# The validator: dynamic configuration

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
_OTHER_DCS = ("consul", "zookeeper", "exhibitor", "kubernetes", "raft")

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
_SLOT_NAME_RE = re.compile(r"^[a-z0-9_]{1,63}$")


def normalize_synchronous_mode(value: Any) -> str:
    """'off' | 'on' | 'quorum' from true/false/'on'/'off'/'quorum' (anything else: 'off')."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return _SYNC_MODES.get(value.strip().lower(), "off")
    return "off"


def validate_dynamic(d: Any, known_parameters: frozenset[str] | None = None) -> list[Issue]:
    """Every problem in a cluster-wide configuration. Never raises. `known_parameters` (see
    hatui.pgparams): the local server's parameter names; an unknown one is then an error."""
    c = _Checker()
    c.known_parameters = known_parameters
    try:
        _validate_dynamic(c, d)
    except RecursionError:
        c.error((), None, "size", "the configuration is nested too deeply")
    return c.issues


def _validate_dynamic(c: _Checker, d: Any) -> None:
    if not isinstance(d, Mapping):
        c.error(
            (),
            d,
            "type",
            f"the configuration must be a mapping of settings (key: value lines), not {_kind(d)}",
        )
        return
    if not _walk_check(c, d):
        return
    for key, value in d.items():
        k = (key,)
        if not isinstance(key, str):
            c.unknown(k, value, DYNAMIC_KEYS)
            continue
        if key in NODE_KEYS and key != "postgresql":
            c.warning(
                k,
                value,
                "misplaced",
                "is a node setting (it belongs in the node's YAML file); ignored in the cluster configuration",
            )
            continue
        if key not in DYNAMIC_KEYS:
            c.unknown(k, value, DYNAMIC_KEYS)
            continue
        if value is None:
            if key != "pause":  # `pause: null` is how a resume looks after PATCH; nothing to say
                default = DEFAULT_DYNAMIC.get(key)
                simple = key in DEFAULT_DYNAMIC and not isinstance(default, Mapping)
                hint = f"; the default {_show(default)} applies" if simple else ""
                c.warning(k, value, "empty", f"has no value{hint}")
            continue
        if key in _OLD_NAMES:
            c.warning(k, value, "old_name", f"is the old name of {_OLD_NAMES[key]}; it still works")
        if key in _DYNAMIC_INT:
            minimum, maximum = _DYNAMIC_INT[key]
            c.integer(k, value, minimum, maximum)
        elif key in _DYNAMIC_BOOL:
            c.boolean(k, value)
        elif key == "synchronous_mode":
            if not (
                isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in _SYNC_MODES)
            ):
                c.error(k, value, "enum", f"{_show(value)} must be one of: off, on, quorum (or true/false)")
        elif key == "member_slots_ttl":
            seconds = parse_duration(value)
            if seconds is None or isinstance(value, float):
                c.error(
                    k,
                    value,
                    "type",
                    f"{_show(value)} must be a number of seconds or a duration such as 30min",
                )
            elif seconds < 0 or seconds > SECONDS_MAX:
                c.error(k, value, "range", f"{_show(value)} must be between 0 and {SECONDS_MAX} seconds")
        elif key in ("slots", "permanent_slots", "permanent_replication_slots"):
            _check_slots(c, k, value)
        elif key == "ignore_slots":
            _check_ignore_slots(c, k, value)
        elif key == "standby_cluster":
            _check_standby_cluster(c, k, value)
        elif key == "postgresql":
            _check_dynamic_postgresql(c, k, value)
        elif key == "primary_race_backoff":
            c.integer(k, value, 0, SECONDS_MAX)
    _check_timing_rule(c, d)


def _timing_value(d: Mapping, key: str) -> tuple[int, bool] | None:
    """(value, given) of ttl/loop_wait/retry_timeout; None when it is not a usable integer."""
    value = d.get(key)
    if value is None:
        return DEFAULT_DYNAMIC[key], False
    if _is_int(value) and value <= SECONDS_MAX:
        return value, True
    return None


def _check_timing_rule(c: _Checker, d: Mapping) -> None:
    ttl, loop_wait, retry = (_timing_value(d, k) for k in ("ttl", "loop_wait", "retry_timeout"))
    if ttl is None or loop_wait is None or retry is None:
        return  # a type error was reported already; the rule cannot be evaluated
    need = loop_wait[0] + 2 * retry[0]
    if ttl[0] < need:
        shown = f"{ttl[0]}" if ttl[1] else f"{ttl[0]} (the default)"
        c.error(
            ("ttl",),
            ttl[0],
            "timing",
            f"{shown} must be >= loop_wait + 2 * retry_timeout = {loop_wait[0]} + 2 * {retry[0]} = {need}",
        )


def _check_slots(c: _Checker, k: tuple, value: Any) -> None:
    if not c.mapping(k, value):
        return
    for name, slot in value.items():
        sk = (*k, name)
        if not isinstance(name, str) or not _SLOT_NAME_RE.match(name):
            c.error(
                sk,
                name,
                "slot_name",
                "is not a valid replication slot name (lower-case letters, digits and _, at most 63)",
            )
        if slot is None:
            continue  # a bare name is a physical slot
        if not c.mapping(sk, slot):
            continue
        kind = slot.get("type", "physical")
        if kind not in ("physical", "logical"):
            c.error((*sk, "type"), kind, "enum", f"{_show(kind)} must be one of: physical, logical")
        elif kind == "logical":
            for required in ("database", "plugin"):
                if not slot.get(required):
                    c.error((*sk, required), None, "required", "is required for a logical slot")
        for sub, sv in slot.items():
            if sub in ("database", "plugin", "cluster_type") and sv is not None:
                c.string((*sk, sub), sv)
            elif sub not in ("type", "database", "plugin", "cluster_type", "failover"):
                c.unknown((*sk, sub), sv, ("type", "database", "plugin", "cluster_type", "failover"))


def _check_ignore_slots(c: _Checker, k: tuple, value: Any) -> None:
    if not isinstance(value, (list, tuple)):
        c.error(k, value, "type", f"must be a list of slot matchers, not {_kind(value)}")
        return
    allowed = ("name", "type", "database", "plugin")
    for i, item in enumerate(value):
        if c.mapping((*k, i), item):
            for sub, sv in item.items():
                if sub in allowed:
                    c.string((*k, i, sub), sv)
                else:
                    c.unknown((*k, i, sub), sv, allowed)


_STANDBY_KEYS = (
    "host",
    "port",
    "primary_slot_name",
    "create_replica_methods",
    "restore_command",
    "archive_cleanup_command",
    "recovery_min_apply_delay",
    "leader_tag",
)


def _check_standby_cluster(c: _Checker, k: tuple, value: Any) -> None:
    if not c.mapping(k, value):
        return
    for sub, sv in value.items():
        sk = (*k, sub)
        if sv is None:
            continue
        if sub == "port":
            if isinstance(sv, str) and sv.isdigit():
                sv = int(sv)
            c.integer(sk, sv, 1, 65535)
        elif sub == "create_replica_methods":
            c.string_list(sk, sv)
        elif sub == "recovery_min_apply_delay":
            problem = check_guc_value("recovery_min_apply_delay", sv)
            if problem:
                c.error(sk, sv, "syntax", problem)
        elif sub in _STANDBY_KEYS:
            c.string(sk, sv)
        else:
            c.unknown(sk, sv, _STANDBY_KEYS)


def _check_dynamic_postgresql(c: _Checker, k: tuple, value: Any) -> None:
    if not c.mapping(k, value):
        return
    for sub, sv in value.items():
        sk = (*k, sub)
        if sub in _PG_LOCAL_ONLY:
            c.warning(
                sk,
                sv,
                "misplaced",
                "is a node setting (it belongs in the node's YAML file); ignored in the cluster configuration",
            )
        elif sub not in _PG_SHARED:
            c.unknown(sk, sv, _PG_SHARED)
        elif sv is None:
            continue
        elif sub in (
            "use_pg_rewind",
            "use_slots",
            "remove_data_directory_on_rewind_failure",
            "remove_data_directory_on_diverged_timelines",
            "use_unix_socket",
            "use_unix_socket_repl",
        ):
            c.boolean(sk, sv)
        elif sub == "parameters":
            _check_parameters(c, sk, sv, cluster_wide=True)
        elif sub in ("pg_hba", "pg_ident", "create_replica_methods"):
            c.string_list(sk, sv)
        elif sub in ("recovery_conf", "callbacks"):
            c.mapping(sk, sv)
        elif sub == "pg_ctl_timeout":
            c.integer(sk, sv, 0, SECONDS_MAX)


def _check_parameters(c: _Checker, k: tuple, params: Any, cluster_wide: bool) -> None:
    if not c.mapping(k, params):
        return
    for name, value in params.items():
        pk = (*k, name)
        if not isinstance(name, str) or not name.strip():
            c.error(pk, value, "type", "parameter names must be non-empty strings")
            continue
        if value is None:
            c.warning(pk, value, "empty", "has no value; the parameter is not set")
            continue
        owned = OWNED_GUCS.get(name.lower())
        if owned is not None and owned.kind == "node":
            source = "scope" if owned.name == "cluster_name" else "postgresql.listen"
            c.warning(
                pk, value, "misplaced", f"is always set from {source} in the node file; this value is ignored"
            )
            continue
        if owned is not None and not cluster_wide:
            c.warning(
                pk,
                value,
                "misplaced",
                "is owned by the cluster configuration (edit-config); the value in the node file is ignored",
            )
            continue
        known = c.known_parameters
        if cluster_wide and not is_known(name, known):
            close = difflib.get_close_matches(name.lower(), sorted(known or ()), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            c.error(pk, value, "unknown", f"is not a parameter of the local PostgreSQL{hint}")
            continue
        problem = owned.check(value) if owned is not None else None
        if problem is None:
            problem = check_guc_value(name, value)
        if problem:
            rule = "minimum" if " must be >= " in problem else "syntax"
            if owned is not None and owned.kind == "always_on":
                rule = "always_on"
            c.error(pk, value, rule, problem)


# --------------------------------------------------------------------------------------------------------------
# The validator: node file

_RESTAPI_KEYS = (
    "listen",
    "connect_address",
    "authentication",
    "certfile",
    "keyfile",
    "keyfile_password",
    "cafile",
    "ciphers",
    "verify_client",
    "allowlist",
    "allowlist_include_members",
    "auth_get",
    "http_extra_headers",
    "https_extra_headers",
    "request_queue_size",
    "server_tokens",
)
_ETCD_KEYS = (
    "hosts",
    "host",
    "url",
    "proxy",
    "srv",
    "srv_suffix",
    "protocol",
    "username",
    "password",
    "cacert",
    "cert",
    "key",
    "retry_timeout",
)
_BOOTSTRAP_KEYS = ("dcs", "initdb", "users", "pg_hba", "method", "post_bootstrap", "post_init")
_PG_NODE_KEYS = _PG_LOCAL_ONLY | _PG_SHARED | {"replica_method"}
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


def validate_node(d: Any, *, local: bool = True) -> list[Issue]:
    """Every problem in a node file (bootstrap.dcs is checked with validate_dynamic). Never raises.

    With local=False the file only has to say how to reach the cluster (scope + etcd), as a client-only
    config for the CLI or the console does: name, restapi and postgresql are then optional.
    """
    c = _Checker()
    try:
        _validate_node(c, d, local)
    except RecursionError:
        c.error((), None, "size", "the configuration is nested too deeply")
    return c.issues


def _validate_node(c: _Checker, d: Any, local: bool) -> None:
    if not isinstance(d, Mapping):
        c.error(
            (), d, "type", f"the node file must be a mapping of settings (key: value lines), not {_kind(d)}"
        )
        return
    if not _walk_check(c, d):
        return
    for required in ("scope", "name") if local else ("scope",):
        if d.get(required) is None:
            c.error((required,), None, "required", "is required")
    has_etcd = isinstance(d.get("etcd3"), Mapping) or isinstance(d.get("etcd"), Mapping)
    for key, value in d.items():
        k = (key,)
        if key in ("scope", "name"):
            if value is not None and c.string(k, value) and (not value.strip() or "/" in value):
                c.error(k, value, "syntax", f"{_show(value)} must be a non-empty name without '/'")
        elif key == "namespace":
            if value is not None:
                c.string(k, value)
        elif key == "restapi":
            _check_restapi(c, k, value)
        elif key in ("etcd", "etcd3"):
            _check_etcd(c, k, value)
            if key == "etcd" and isinstance(d.get("etcd3"), Mapping):
                c.warning(k, None, "duplicate", "etcd3: is also present and is used; this section is ignored")
        elif key == "bootstrap":
            _check_bootstrap(c, k, value)
        elif key == "postgresql":
            _check_node_postgresql(c, k, value)
        elif key == "tags":
            _check_tags(c, k, value)
        elif key == "watchdog":
            _check_watchdog(c, k, value)
        elif key == "log":
            _check_log(c, k, value)
        elif key == "fencing":
            _check_section(c, k, value, {"enabled": "bool", "safety_margin": (0, SECONDS_MAX)})
        elif key == "events":  # hatui's event timeline (events.py): cap and webhooks per kind
            events = _check_section(c, k, value, {"max": (10, 100000), "webhooks": None})
            hooks = events.get("webhooks") if events else None
            if hooks is not None and c.mapping((*k, "webhooks"), hooks):
                for kind, url in hooks.items():
                    if c.string((*k, "webhooks", kind), url) and not url.startswith(("http://", "https://")):
                        c.error((*k, "webhooks", kind), url, "syntax", "must be an http:// or https:// URL")
        elif key in ("ctl", "citus"):
            if value is not None:
                c.mapping(k, value)
        elif key in _OTHER_DCS:
            c.warning(k, None, "unsupported", "hatui only talks to etcd (etcd3:); this section is ignored")
        elif isinstance(key, str) and key in DYNAMIC_KEYS:
            c.warning(
                k,
                value,
                "misplaced",
                "is a cluster-wide setting: put it under bootstrap.dcs (first start) or use edit-config; "
                "ignored here",
            )
        else:
            c.unknown(k, value, NODE_KEYS)
    if local and "restapi" not in d:
        c.error(("restapi",), None, "required", "is required (at least restapi.listen)")
    if local and "postgresql" not in d:
        c.error(("postgresql",), None, "required", "is required (at least listen and data_dir)")
    if not has_etcd and "etcd" not in d and "etcd3" not in d:
        c.error(
            ("etcd3",),
            None,
            "required",
            "is required: hatui keeps the cluster state in etcd (etcd3: hosts: ...)",
        )


def _check_section(c: _Checker, k: tuple, value: Any, schema: Mapping[str, Any]) -> Mapping | None:
    """A mapping whose keys have simple types: 'bool', 'str', 'strlist', (min, max) for ints."""
    if value is None:
        return None
    if not c.mapping(k, value):
        return None
    for sub, sv in value.items():
        sk = (*k, sub)
        rule = schema.get(sub) if isinstance(sub, str) else None
        if rule is None and sub not in schema:
            c.unknown(sk, sv, schema)
        elif sv is None or rule is None:
            continue
        elif rule == "bool":
            c.boolean(sk, sv)
        elif rule == "str":
            c.string(sk, sv)
        elif rule == "strlist":
            c.string_list(sk, sv)
        elif isinstance(rule, tuple):
            c.integer(sk, sv, *rule)
    return value


def _check_address(c: _Checker, k: tuple, value: Any, default_port: int | None, need_host: bool) -> None:
    if not c.string(k, value):
        return
    try:
        host, _port = split_host_port(value, default_port)
    except ValueError as exc:
        c.error(k, value, "syntax", f"{_show(value)} {exc}")
        return
    if need_host and host in ("", "*", "0.0.0.0", "::"):
        c.error(k, value, "syntax", f"{_show(value)} must name a host other nodes can reach, not a wildcard")


def _check_credentials(c: _Checker, k: tuple, value: Any) -> None:
    libpq = (
        "sslmode",
        "sslkey",
        "sslcert",
        "sslrootcert",
        "sslpassword",
        "sslcrl",
        "sslcrldir",
        "gssencmode",
    )
    schema: dict[str, Any] = {key: "str" for key in (*libpq, "channel_binding")}
    schema.update(username=None, password=None)
    section = _check_section(c, k, value, schema)
    if section is None:
        return
    for key in ("username", "password"):
        v = section.get(key)
        if v is not None and not isinstance(v, str):
            # YAML reads `password: 1234` as a number; say how to fix it rather than only what is wrong
            hint = f" (quote it: '{v}')" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            c.error((*k, key), v, "type", f"{_show(v)} must be a string, not {_kind(v)}{hint}")


def _check_restapi(c: _Checker, k: tuple, value: Any) -> None:
    schema: dict[str, Any] = {key: "str" for key in _RESTAPI_KEYS}
    schema.update(
        {
            "allowlist": "strlist",
            "allowlist_include_members": "bool",
            "auth_get": "bool",
            "authentication": None,
            "http_extra_headers": None,
            "https_extra_headers": None,
            "request_queue_size": (0, 65535),
            "listen": None,
            "connect_address": None,
            "verify_client": None,
        }
    )
    section = _check_section(c, k, value, schema)
    if section is None:
        if value is None:
            c.error(k, value, "required", "is required (at least restapi.listen)")
        return
    if section.get("listen") is None:
        c.error((*k, "listen"), None, "required", "is required, e.g. 127.0.0.1:8008")
    else:
        _check_address(c, (*k, "listen"), section["listen"], 8008, need_host=False)
    if section.get("connect_address") is not None:
        _check_address(c, (*k, "connect_address"), section["connect_address"], 8008, need_host=True)
    else:
        c.warning(
            (*k, "connect_address"),
            None,
            "required",
            "is not set; the api_url published for this node uses the listen address "
            "(with 127.0.0.1 for a wildcard)",
        )
    if section.get("authentication") is not None:
        _check_credentials(c, (*k, "authentication"), section["authentication"])
    if section.get("verify_client") is not None:
        c.choice((*k, "verify_client"), section["verify_client"], ("none", "optional", "required"))
    for extra in ("http_extra_headers", "https_extra_headers"):
        if section.get(extra) is not None:
            c.mapping((*k, extra), section[extra])


def _check_etcd(c: _Checker, k: tuple, value: Any) -> None:
    schema: dict[str, Any] = {key: "str" for key in _ETCD_KEYS}
    schema.update({"hosts": None, "retry_timeout": (1, SECONDS_MAX)})
    section = _check_section(c, k, value, schema)
    if section is None:
        if value is None:
            c.error(k, value, "required", "is empty: give hosts, host or url")
        return
    hosts = section.get("hosts")
    if hosts is not None:
        if isinstance(hosts, str):
            items = [(i, h.strip()) for i, h in enumerate(hosts.split(","))]
            where: Any = None
        elif isinstance(hosts, (list, tuple)):
            items = list(enumerate(hosts))
            where = True
        else:
            c.error(
                (*k, "hosts"),
                hosts,
                "type",
                f"must be a list of host:port or a comma-separated string, not {_kind(hosts)}",
            )
            items = []
            where = None
        for i, h in items:
            hk = (*k, "hosts", i) if where else (*k, "hosts")
            if isinstance(h, str) and not h:
                c.error(hk, hosts, "syntax", "contains an empty host")
            elif c.string(hk, h):
                try:
                    split_host_port(h, 2379)
                except ValueError as exc:
                    c.error(hk, h, "syntax", f"{_show(h)} {exc}")
    for single in ("host", "url", "proxy"):
        if isinstance(section.get(single), str):
            try:
                split_host_port(section[single], 2379)
            except ValueError as exc:
                c.error((*k, single), section[single], "syntax", f"{_show(section[single])} {exc}")
    if section.get("protocol") is not None:
        c.choice((*k, "protocol"), section["protocol"], ("http", "https"))
    if not any(section.get(x) for x in ("hosts", "host", "url", "proxy", "srv")):
        c.error(k, None, "required", "needs hosts, host or url (e.g. hosts: 127.0.0.1:2379)")


def _check_bootstrap(c: _Checker, k: tuple, value: Any) -> None:
    if value is None:
        return
    if not c.mapping(k, value):
        return
    method = value.get("method")
    for sub, sv in value.items():
        sk = (*k, sub)
        if sv is None:
            continue
        if sub == "dcs":
            c.extend(validate_dynamic(sv), prefix=sk)
        elif sub == "initdb":
            _check_initdb(c, sk, sv)
        elif sub == "users":
            if c.mapping(sk, sv):
                for user, spec in sv.items():
                    if spec is not None and c.mapping((*sk, user), spec):
                        if spec.get("password") is not None:
                            c.string((*sk, user, "password"), spec["password"])
                        if spec.get("options") is not None:
                            c.string_list((*sk, user, "options"), spec["options"])
        elif sub == "pg_hba":
            c.string_list(sk, sv)
        elif sub in ("method", "post_bootstrap", "post_init"):
            c.string(sk, sv)
        elif sub == method:
            c.mapping(sk, sv)  # the custom bootstrap method's own settings
        else:
            c.unknown(sk, sv, _BOOTSTRAP_KEYS)


def _check_initdb(c: _Checker, k: tuple, value: Any) -> None:
    if not isinstance(value, (list, tuple)):
        c.error(k, value, "type", f"must be a list of options (strings or key: value), not {_kind(value)}")
        return
    for i, item in enumerate(value):
        ik = (*k, i)
        if isinstance(item, str):
            continue
        if isinstance(item, Mapping) and len(item) == 1:
            ((opt, ov),) = item.items()
            if not isinstance(ov, (str, int, float)) or isinstance(ov, bool):
                c.error((*ik, opt), ov, "type", f"{_show(ov)} must be a string or a number")
            continue
        c.error(
            ik, item, "type", "each initdb option must be a string (data-checksums) or one key: value pair"
        )


def _check_node_postgresql(c: _Checker, k: tuple, value: Any) -> None:
    if not c.mapping(k, value):
        return
    methods = value.get("create_replica_methods")
    replica_methods = (
        set(methods) if isinstance(methods, list) and all(isinstance(m, str) for m in methods) else set()
    )
    for sub, sv in value.items():
        sk = (*k, sub)
        if sub in replica_methods and sub != "basebackup":
            c.mapping(sk, sv)
            continue
        if sub not in _PG_NODE_KEYS:
            c.unknown(sk, sv, _PG_NODE_KEYS)
            continue
        if sv is None:
            continue
        if sub == "listen":
            _check_address(c, sk, sv, 5432, need_host=False)
        elif sub in ("connect_address", "proxy_address"):
            _check_address(c, sk, sv, 5432, need_host=True)
        elif sub in (
            "data_dir",
            "bin_dir",
            "config_dir",
            "pgpass",
            "database",
            "os_user",
            "bin_name",
            "pre_promote",
            "before_stop",
            "replica_method",
            "custom_conf",
        ):
            if sub == "bin_name":
                c.mapping(sk, sv)
            else:
                c.string(sk, sv)
        elif sub == "authentication":
            if c.mapping(sk, sv):
                for role, creds in sv.items():
                    if role not in ("superuser", "replication", "rewind"):
                        c.unknown((*sk, role), creds, ("superuser", "replication", "rewind"))
                    else:
                        _check_credentials(c, (*sk, role), creds)
        elif sub == "parameters":
            _check_parameters(c, sk, sv, cluster_wide=False)
        elif sub in (
            "use_pg_rewind",
            "use_slots",
            "remove_data_directory_on_rewind_failure",
            "remove_data_directory_on_diverged_timelines",
            "use_unix_socket",
            "use_unix_socket_repl",
        ):
            c.boolean(sk, sv)
        elif sub in ("pg_hba", "pg_ident", "create_replica_methods"):
            c.string_list(sk, sv)
        elif sub == "callbacks":
            if c.mapping(sk, sv):
                for name, script in sv.items():
                    if name not in _CALLBACKS:
                        c.unknown((*sk, name), script, _CALLBACKS)
                    elif script is not None and not isinstance(script, str):
                        c.string_list((*sk, name), script)
        elif sub == "basebackup":
            if isinstance(sv, (list, tuple)):
                _check_initdb(c, sk, sv)
            else:
                c.mapping(sk, sv)
        elif sub == "recovery_conf":
            c.mapping(sk, sv)
        elif sub == "pg_ctl_timeout":
            c.integer(sk, sv, 0, SECONDS_MAX)
    if value.get("listen") is None:
        c.error((*k, "listen"), None, "required", "is required, e.g. 127.0.0.1:5432")
    if value.get("data_dir") is None:
        c.error((*k, "data_dir"), None, "required", "is required")
    if value.get("connect_address") is None:
        c.warning(
            (*k, "connect_address"),
            None,
            "required",
            "is not set; other nodes will be told the listen address (with 127.0.0.1 for a wildcard)",
        )


def _check_tags(c: _Checker, k: tuple, value: Any) -> None:
    if value is None:
        return
    if not c.mapping(k, value):
        return
    for tag, tv in value.items():
        tk = (*k, tag)
        if tag in _BOOL_TAGS:
            if tv is not None:
                c.boolean(tk, tv)
        elif tag in ("failover_priority", "sync_priority"):
            if tv is not None:
                c.integer(tk, tv, 0, PG_INT_MAX)
        elif tag == "replicatefrom":
            if tv is not None:
                c.string(tk, tv)
        elif not isinstance(tag, str):
            c.error(tk, tv, "type", "tag names must be strings")
    priority = value.get("failover_priority")
    nofailover = value.get("nofailover")
    if _is_int(priority) and isinstance(nofailover, bool):
        if nofailover and priority > 0:
            c.warning(
                (*k, "failover_priority"),
                priority,
                "conflict",
                f"{priority} conflicts with nofailover: true; nofailover wins and the node is never promoted",
            )
        elif not nofailover and priority <= 0:
            c.warning(
                (*k, "failover_priority"),
                priority,
                "conflict",
                f"{priority} conflicts with nofailover: false; a priority of 0 means the node is never "
                "promoted",
            )
    sync_priority = value.get("sync_priority")
    nosync = value.get("nosync")
    if _is_int(sync_priority) and nosync is True and sync_priority > 0:
        c.warning(
            (*k, "sync_priority"),
            sync_priority,
            "conflict",
            f"{sync_priority} conflicts with nosync: true; nosync wins",
        )


def _check_watchdog(c: _Checker, k: tuple, value: Any) -> None:
    section = _check_section(
        c, k, value, {"mode": None, "device": "str", "safety_margin": (-1, SECONDS_MAX), "driver": "str"}
    )
    if section is None or section.get("mode") is None:
        return
    mode = section["mode"]
    if isinstance(mode, bool):
        return
    if not isinstance(mode, str) or mode.strip().lower() not in _WATCHDOG_MODES:
        c.error((*k, "mode"), mode, "enum", f"{_show(mode)} must be one of: off, automatic, required")


def _check_log(c: _Checker, k: tuple, value: Any) -> None:
    schema = {
        "dir": "str",
        "level": None,
        "file": "str",
        "file_num": (0, 100000),
        "file_size": (0, BYTES_MAX),
        "format": None,
        "dateformat": "str",
        "loggers": None,
        "traceback_level": None,
        "max_queue_size": (1, SECONDS_MAX),
        "type": "str",
        "mode": None,
        "static_fields": None,
        "deduplicate_heartbeat_logs": "bool",
    }
    section = _check_section(c, k, value, schema)
    if section is None:
        return
    if isinstance(section.get("type"), str):
        c.choice((*k, "type"), section["type"], ("plain", "json"))
    for key in ("level", "traceback_level"):
        if section.get(key) is not None:
            level = section[key]
            if not isinstance(level, str) or level.upper() not in _LOG_LEVELS:
                c.error((*k, key), level, "enum", f"{_show(level)} must be one of: {', '.join(_LOG_LEVELS)}")
    if section.get("loggers") is not None:
        c.mapping((*k, "loggers"), section["loggers"])


# --------------------------------------------------------------------------------------------------------------
# Text entry points (editor, edit-config): parse + validate + positions


def validate_dynamic_text(text: str | bytes,
                          known_parameters: frozenset[str] | None = None) -> tuple[Any | None, list[Issue]]:
    """Parse a YAML document and validate it as the cluster configuration; issues carry line/column."""
    doc = _load(text)
    if doc.issues:
        return None, doc.issues
    return doc.data, [doc.locate(i) for i in validate_dynamic(doc.data, known_parameters)]


def validate_node_text(text: str | bytes, *, local: bool = True) -> tuple[Any | None, list[Issue]]:
    """Parse a YAML document and validate it as a node file; issues carry line/column."""
    doc = _load(text)
    if doc.issues:
        return None, doc.issues
    return doc.data, [doc.locate(i) for i in validate_node(doc.data, local=local)]


# --------------------------------------------------------------------------------------------------------------
# The dynamic configuration as the daemon uses it


def _int_or(value: Any, default: int, maximum: int = BYTES_MAX) -> int:
    return value if _is_int(value) and abs(value) <= maximum else default


def _bool_or(value: Any, default: bool) -> bool:
    truth = _bool_word(value) if isinstance(value, (bool, str)) else None
    return default if truth is None else truth


@dataclass(frozen=True)
class DynamicConfig:
    """Typed view of the cluster configuration, defaults filled in. `data` is the dict it was built from."""

    ttl: int = 30
    loop_wait: int = 10
    retry_timeout: int = 10
    maximum_lag_on_failover: int = 1048576
    maximum_lag_on_syncnode: int = -1
    max_timelines_history: int = 0
    primary_start_timeout: int = 300
    primary_stop_timeout: int = 0
    check_timeline: bool = False
    synchronous_mode: str = "off"  # "off" | "on" | "quorum"
    synchronous_mode_strict: bool = False
    synchronous_node_count: int = 1
    failsafe_mode: bool = False
    pause: bool = False
    member_slots_ttl: int = 1800
    use_pg_rewind: bool = False
    use_slots: bool = True
    parameters: dict[str, Any] = field(default_factory=dict)
    pg_hba: list[str] | None = None
    pg_ident: list[str] | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    ignore_slots: list[Any] = field(default_factory=list)
    standby_cluster: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DynamicConfig:
        """Best effort and never raises: a value of the wrong type is replaced by its default.

        This does NOT apply the timing rule; use safe_dynamic for what a daemon should run with.
        """
        d = d if isinstance(d, Mapping) else {}
        pg = d.get("postgresql") if isinstance(d.get("postgresql"), Mapping) else {}
        params = pg.get("parameters") if isinstance(pg.get("parameters"), Mapping) else {}
        start = d.get("primary_start_timeout", d.get("master_start_timeout"))
        stop = d.get("primary_stop_timeout", d.get("master_stop_timeout"))
        slots: dict[str, Any] = {}
        for key in ("permanent_replication_slots", "permanent_slots", "slots"):  # later names win
            if isinstance(d.get(key), Mapping):
                slots.update(d[key])
        member_ttl = parse_duration(d.get("member_slots_ttl"))
        return cls(
            ttl=_int_or(d.get("ttl"), 30, SECONDS_MAX),
            loop_wait=_int_or(d.get("loop_wait"), 10, SECONDS_MAX),
            retry_timeout=_int_or(d.get("retry_timeout"), 10, SECONDS_MAX),
            maximum_lag_on_failover=_int_or(d.get("maximum_lag_on_failover"), 1048576),
            maximum_lag_on_syncnode=_int_or(d.get("maximum_lag_on_syncnode"), -1),
            max_timelines_history=_int_or(d.get("max_timelines_history"), 0, SECONDS_MAX),
            primary_start_timeout=_int_or(start, 300, SECONDS_MAX),
            primary_stop_timeout=_int_or(stop, 0, SECONDS_MAX),
            check_timeline=_bool_or(d.get("check_timeline"), False),
            synchronous_mode=normalize_synchronous_mode(d.get("synchronous_mode")),
            synchronous_mode_strict=_bool_or(d.get("synchronous_mode_strict"), False),
            synchronous_node_count=max(1, _int_or(d.get("synchronous_node_count"), 1, SECONDS_MAX)),
            failsafe_mode=_bool_or(d.get("failsafe_mode"), False),
            pause=_bool_or(d.get("pause"), False),
            member_slots_ttl=1800 if member_ttl is None or not 0 <= member_ttl <= SECONDS_MAX else member_ttl,
            use_pg_rewind=_bool_or(pg.get("use_pg_rewind"), False),
            use_slots=_bool_or(pg.get("use_slots"), True),
            parameters=dict(params),
            pg_hba=list(pg["pg_hba"]) if isinstance(pg.get("pg_hba"), list) else None,
            pg_ident=list(pg["pg_ident"]) if isinstance(pg.get("pg_ident"), list) else None,
            slots=slots,
            ignore_slots=list(d["ignore_slots"]) if isinstance(d.get("ignore_slots"), list) else [],
            standby_cluster=dict(d["standby_cluster"])
            if isinstance(d.get("standby_cluster"), Mapping)
            else None,
            data=dict(d),
        )

    def get(self, key: str, default: Any = None) -> Any:
        """A raw stored value (as in the DCS), for keys without a typed attribute."""
        return self.data.get(key, default)

    @property
    def is_paused(self) -> bool:
        return self.pause

    @property
    def is_synchronous(self) -> bool:
        return self.synchronous_mode != "off"

    @property
    def merged(self) -> dict[str, Any]:
        """DEFAULT_DYNAMIC with `data` laid over it (postgresql merged one level deeper)."""
        out = default_dynamic()
        for key, value in self.data.items():
            if key == "postgresql" and isinstance(value, Mapping):
                out["postgresql"].update(copy.deepcopy(dict(value)))
            else:
                out[key] = copy.deepcopy(value)
        return out

    @property
    def satisfies_timing_rule(self) -> bool:
        return self.loop_wait + 2 * self.retry_timeout <= self.ttl


def safe_dynamic(d: Any, known_parameters: Collection[str] | None = None) -> tuple[DynamicConfig, list[str]]:
    """What a daemon runs with, whatever was written: Patroni's adjustments (spec §3.2), each one a warning.

    The stored value is not touched (`.data` is the input); only the effective values change.
    `known_parameters` (lower case): the local server's parameter names; others are left out.
    """
    warnings: list[str] = []
    if not isinstance(d, Mapping):
        warnings.append(f"the cluster configuration is {_kind(d)}, not a mapping; using the defaults")
        return DynamicConfig.from_dict({}), warnings
    data = dict(d)
    # 1. wrong types: keep the default for that setting
    for key, (_minimum, maximum) in _DYNAMIC_INT.items():
        value = data.get(key)
        if value is None:
            continue
        default = DEFAULT_DYNAMIC.get(_OLD_NAMES.get(key, key))
        if not _is_int(value) or value > maximum:
            what = "is not an integer" if not _is_int(value) else "is too large"
            warnings.append(f"{key}={_show(value)} {what}, keeping the default {default}")
            data[key] = default
    for key in _DYNAMIC_BOOL:
        value = data.get(key)
        if value is not None and not isinstance(value, bool):
            truth = _bool_or(value, DEFAULT_DYNAMIC.get(key, False))
            warnings.append(f"{key}={_show(value)} is not true or false, using {_show(truth)}")
            data[key] = truth
    mode = data.get("synchronous_mode")
    if mode is not None and not (
        isinstance(mode, bool) or (isinstance(mode, str) and mode.strip().lower() in _SYNC_MODES)
    ):
        warnings.append(f"synchronous_mode={_show(mode)} is not off, on or quorum, using off")
        data["synchronous_mode"] = False
    # 2. minimums, then the timing rule, in Patroni's order and words
    values = {k: data.get(k) if data.get(k) is not None else DEFAULT_DYNAMIC[k] for k in _TIMING_MINIMUMS}
    for key, minimum in _TIMING_MINIMUMS.items():
        if values[key] < minimum:
            warnings.append(f"{key}={values[key]} can't be smaller than {minimum}, adjusting...")
            values[key] = minimum
    ttl, loop_wait, retry = values["ttl"], values["loop_wait"], values["retry_timeout"]
    rule = 'Violated the rule "loop_wait + 2*retry_timeout <= ttl", where ttl='
    if 1 + 2 * retry > ttl:
        new_retry = (ttl - 1) // 2
        warnings.append(
            f"{rule}{ttl}. Adjusting loop_wait from {loop_wait} to 1 and retry_timeout from {retry} "
            f"to {new_retry}"
        )
        loop_wait, retry = 1, new_retry
    elif loop_wait + 2 * retry > ttl:
        new_loop = ttl - 2 * retry
        warnings.append(
            f"{rule}{ttl} and retry_timeout={retry}. Adjusting loop_wait from {loop_wait} to {new_loop}"
        )
        loop_wait = new_loop
    data.update(ttl=ttl, loop_wait=loop_wait, retry_timeout=retry)
    for key in (
        "synchronous_node_count",
        "max_timelines_history",
        "primary_start_timeout",
        "primary_stop_timeout",
    ):
        minimum = _DYNAMIC_INT[key][0]
        if _is_int(data.get(key)) and data[key] < minimum:
            warnings.append(f"{key}={data[key]} can't be smaller than {minimum}, adjusting...")
            data[key] = minimum
    # 3. PostgreSQL parameters: owned GUCs fall back to their default, broken known GUCs are left out
    pg = data.get("postgresql")
    if pg is not None and not isinstance(pg, Mapping):
        warnings.append(f"postgresql is {_kind(pg)}, not a mapping; ignored")
        data.pop("postgresql")
    elif isinstance(pg, Mapping) and isinstance(pg.get("parameters"), Mapping):
        params, param_warnings = _safe_parameters(pg["parameters"], known_parameters)
        warnings.extend(param_warnings)
        data["postgresql"] = {**pg, "parameters": params}
    elif isinstance(pg, Mapping) and pg.get("parameters") is not None:
        warnings.append(f"postgresql.parameters is {_kind(pg['parameters'])}, not a mapping; ignored")
        data["postgresql"] = {k: v for k, v in pg.items() if k != "parameters"}
    return dataclasses.replace(DynamicConfig.from_dict(data), data=dict(d)), warnings


def _safe_parameters(params: Mapping[Any, Any],
                     known: Collection[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for name, value in params.items():
        if not isinstance(name, str) or value is None:
            continue
        if not is_known(name, known):
            # PostgreSQL refuses to start with a parameter it does not know in postgresql.conf:
            # one typo in the cluster config would keep every node down after its next restart.
            # Names with a dot belong to extensions and are accepted as PostgreSQL does.
            warnings.append(f"postgresql parameter {_short_name(name)} is not known to this PostgreSQL, "
                            f"leaving it out")
            continue
        owned = OWNED_GUCS.get(name.lower())
        if owned is not None and owned.kind != "node":
            if owned.check(value) is not None:
                warnings.append(
                    f"postgresql parameter {_short_name(name)}={_guc_shown(value)} failed validation, "
                    f"defaulting to {owned.default}"
                )
                value = owned.default
            out[name] = value
            continue
        problem = check_guc_value(name, value)
        if problem:
            warnings.append(
                f"postgresql parameter {_short_name(name)}={_guc_shown(value)} "
                f"failed validation ({problem}), leaving it out"
            )
            continue
        out[name] = value
    return out, warnings


def effective_parameters(
    dynamic: DynamicConfig | Mapping[str, Any] | None,
    node: NodeConfig | None = None,
    server_version: int = 150000,
) -> dict[str, str]:
    """The GUCs a node runs PostgreSQL with (see effective_parameters_report)."""
    return effective_parameters_report(dynamic, node, server_version)[0]


def effective_parameters_report(
    dynamic: DynamicConfig | Mapping[str, Any] | None,
    node: NodeConfig | None = None,
    server_version: int = 150000,
) -> tuple[dict[str, str], list[str]]:
    """(GUCs as text, warnings). Precedence as in Patroni (spec §3.1):

    ordinary GUCs: node file postgresql.parameters over cluster postgresql.parameters;
    owned GUCs: cluster config only, validated, default when missing or invalid;
    hot_standby and wal_log_hints always on; listen_addresses/port from postgresql.listen; cluster_name = scope.
    """
    dyn = dynamic if isinstance(dynamic, DynamicConfig) else DynamicConfig.from_dict(dynamic or {})
    warnings: list[str] = []
    cluster = {k: v for k, v in dyn.parameters.items() if isinstance(k, str)}
    local = dict(node.postgresql.parameters) if node is not None else {}
    result: dict[str, str] = {}
    for origin, source in (("cluster", cluster), ("node", local)):
        for name, value in source.items():
            if not isinstance(name, str) or value is None:
                continue
            if name.lower() in OWNED_GUCS:
                if origin == "node":
                    warnings.append(
                        f"postgresql parameter {name} in the node file is ignored: it is set by the "
                        "cluster configuration"
                    )
                continue
            problem = check_guc_value(name, value)
            if problem:
                warnings.append(
                    f"postgresql parameter {name} from the {origin} configuration is left out: {problem}"
                )
                continue
            result.pop(name, None)  # keep the later spelling when only the case differs
            result[name] = _guc_text(value)
    by_lower = {k.lower(): v for k, v in cluster.items()}
    for guc in OWNED_GUCS.values():
        if guc.kind == "node" or not guc.applies_to(server_version):
            continue
        raw = by_lower.get(guc.name)
        value = guc.default
        if raw is not None:
            problem = guc.check(raw)
            if problem is None:
                value = _guc_text(raw)
            else:
                warnings.append(
                    f"postgresql parameter {guc.name}={_guc_shown(raw)} failed validation, "
                    f"defaulting to {guc.default}"
                )
        result[guc.name] = value  # type: ignore[assignment]
    if server_version >= 130000 and "wal_keep_size" not in by_lower:
        segments = by_lower.get("wal_keep_segments")
        if _is_int(segments) and segments > 0:  # an old-style setting still means something on PG 13+
            result["wal_keep_size"] = f"{segments * 16}MB"
    if result.get("wal_level") == "hot_standby":
        result["wal_level"] = "replica"  # the same level; PostgreSQL 9.6+ calls it replica
    result["hot_standby"] = "on"
    result["wal_log_hints"] = "on"
    if node is not None:
        try:
            host, port = node.pg_listen
            result["listen_addresses"] = host or "*"
            result["port"] = str(port)
        except ValueError as exc:
            warnings.append(f"postgresql.listen cannot be used: {exc}")
        result["cluster_name"] = node.scope
    return result, warnings


# --------------------------------------------------------------------------------------------------------------
# Node file model


def normalize_namespace(ns: str | None) -> str:
    """'service', '/service/', None -> '/service' (leading slash, no trailing slash)."""
    parts = [p for p in (ns if isinstance(ns, str) else "").split("/") if p]
    return "/" + "/".join(parts) if parts else DEFAULT_NAMESPACE


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """'h:5432', '[::1]:5432', 'http://h:2379/', '*:5432', 'a,b:5432', ':8008', 'h' -> (host, port).

    Raises ValueError with a short reason when the port is missing (and no default) or not a port.
    """
    t = text.strip()
    if "://" in t:
        t = t.split("://", 1)[1]
    t = t.split("/", 1)[0]
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep:
            raise ValueError("has an unclosed [ around the IPv6 address")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError("has text after the IPv6 address")
    elif t.count(":") > 1 and "," not in t:  # a bare IPv6 address without port
        host, port_text = t, ""
    else:
        host, sep, port_text = t.rpartition(":")
        if not sep:
            host, port_text = t, ""
    if not port_text:
        if default_port is None:
            raise ValueError("needs a port (host:port)")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"has an invalid port {port_text!r} (must be 1-65535)")
    return host, int(port_text)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


_WILDCARDS = ("", "*", "0.0.0.0", "::")


def _reachable(host: str) -> str:
    """A host other nodes can dial, from a listen host (first of a list; loopback for a wildcard)."""
    first = host.split(",")[0].strip()
    return "127.0.0.1" if first in _WILDCARDS else first


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # sslmode, sslcert, ... for libpq

    @classmethod
    def from_dict(cls, d: Any) -> Credentials | None:
        if not isinstance(d, Mapping):
            return None
        user, password = d.get("username"), d.get("password")
        return cls(
            username=str(user) if user is not None else None,
            password=str(password) if password is not None else None,
            extra={k: v for k, v in d.items() if k not in ("username", "password")},
        )


@dataclass(frozen=True)
class RestApiConfig:
    listen: str = ""
    connect_address: str | None = None
    authentication: Credentials | None = None
    certfile: str | None = None
    keyfile: str | None = None
    keyfile_password: str | None = None
    cafile: str | None = None
    verify_client: str | None = None
    allowlist: list[str] = field(default_factory=list)
    allowlist_include_members: bool = False
    auth_get: bool = False  # hatui extension: also require authentication for GETs that reveal config

    @property
    def tls(self) -> bool:
        return bool(self.certfile)


@dataclass(frozen=True)
class EtcdConfig:
    hosts: list[str] = field(default_factory=list)  # "host:port"
    protocol: str = "http"
    username: str | None = None
    password: str | None = None
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    section: str = "etcd3"  # which section the settings came from ("etcd3" or the "etcd" alias)

    @classmethod
    def from_dict(cls, d: Any, section: str) -> EtcdConfig:
        d = d if isinstance(d, Mapping) else {}
        protocol = d.get("protocol") if d.get("protocol") in ("http", "https") else None
        raw: list[str] = []
        hosts = d.get("hosts")
        if isinstance(hosts, str):
            raw = [h.strip() for h in hosts.split(",") if h.strip()]
        elif isinstance(hosts, (list, tuple)):
            raw = [h.strip() for h in hosts if isinstance(h, str) and h.strip()]
        for single in ("host", "url", "proxy"):
            if not raw and isinstance(d.get(single), str) and d[single].strip():
                raw = [d[single].strip()]
        out: list[str] = []
        for item in raw:
            if protocol is None and "://" in item:
                protocol = "https" if item.lower().startswith("https://") else "http"
            try:
                out.append(_join_host_port(*split_host_port(item, 2379)))
            except ValueError:
                continue  # reported by validate_node
        return cls(
            hosts=out,
            protocol=protocol or "http",
            username=_str_or_none(d.get("username")),
            password=None if d.get("password") is None else str(d.get("password")),
            cacert=_str_or_none(d.get("cacert")),
            cert=_str_or_none(d.get("cert")),
            key=_str_or_none(d.get("key")),
            section=section,
        )


@dataclass(frozen=True)
class BootstrapConfig:
    dcs: dict[str, Any] = field(default_factory=dict)
    initdb: list[Any] = field(default_factory=list)  # "data-checksums" or {"encoding": "UTF8"}
    users: dict[str, Any] = field(default_factory=dict)
    pg_hba: list[str] = field(default_factory=list)
    method: str | None = None
    post_bootstrap: str | None = None

    def initdb_args(self) -> list[str]:
        """initdb options as command-line arguments: ['--data-checksums', '--encoding=UTF8']."""
        args = []
        for item in self.initdb:
            if isinstance(item, str):
                args.append("--" + item.lstrip("-"))
            elif isinstance(item, Mapping):
                for k, v in item.items():
                    args.append(f"--{str(k).lstrip('-')}={v}")
        return args


@dataclass(frozen=True)
class PostgresqlConfig:
    listen: str = ""
    connect_address: str | None = None
    proxy_address: str | None = None
    data_dir: str = ""
    bin_dir: str | None = None
    config_dir: str | None = None
    pgpass: str | None = None
    authentication: dict[str, Credentials] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    pg_hba: list[str] | None = None
    pg_ident: list[str] | None = None
    use_pg_rewind: bool | None = None  # None: not set here, the cluster configuration decides
    use_slots: bool | None = None
    remove_data_directory_on_rewind_failure: bool = False
    remove_data_directory_on_diverged_timelines: bool = False
    database: str = "postgres"
    os_user: str | None = None  # hatui extension: the OS user PostgreSQL runs as when hatui runs as root
    callbacks: dict[str, str] = field(default_factory=dict)
    create_replica_methods: list[str] = field(default_factory=lambda: ["basebackup"])
    basebackup: Any = None
    replica_method_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    pg_ctl_timeout: int | None = None

    @property
    def superuser(self) -> Credentials:
        return self.authentication.get("superuser") or Credentials()

    @property
    def replication(self) -> Credentials:
        return self.authentication.get("replication") or Credentials()

    @property
    def rewind(self) -> Credentials:
        """The pg_rewind user; Patroni falls back to the superuser when none is configured."""
        return self.authentication.get("rewind") or self.superuser

    def basebackup_args(self) -> list[str]:
        """pg_basebackup options from `basebackup:` (list of str / single-key dicts, or a mapping)."""
        items: list[Any] = []
        if isinstance(self.basebackup, Mapping):
            items = [{k: v} for k, v in self.basebackup.items()]
        elif isinstance(self.basebackup, (list, tuple)):
            items = list(self.basebackup)
        return BootstrapConfig(initdb=items).initdb_args()


@dataclass(frozen=True)
class NodeTags:
    nofailover: bool = False
    noloadbalance: bool = False
    clonefrom: bool = False
    nosync: bool = False
    nostream: bool = False
    failover_priority: int | None = None
    sync_priority: int | None = None
    replicatefrom: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def can_failover(self) -> bool:
        """False for nofailover or failover_priority <= 0 (spec §2.10)."""
        if self.nofailover:
            return False
        return self.failover_priority is None or self.failover_priority > 0

    def for_member(self) -> dict[str, Any]:
        """The tags published in the member key (spec §1.2 filtering)."""
        raw = self.raw
        out = {}
        for tag, value in raw.items():
            if tag in _BOOL_TAGS and not value:
                keep = (tag == "nofailover" and "failover_priority" in raw) or (
                    tag == "nosync" and "sync_priority" in raw
                )
                if not keep:
                    continue
            out[tag] = value
        return out

    @classmethod
    def from_dict(cls, d: Any) -> NodeTags:
        d = dict(d) if isinstance(d, Mapping) else {}
        known = {*_BOOL_TAGS, "failover_priority", "sync_priority", "replicatefrom"}
        return cls(
            **{t: d.get(t) is True for t in _BOOL_TAGS},
            failover_priority=d["failover_priority"] if _is_int(d.get("failover_priority")) else None,
            sync_priority=d["sync_priority"] if _is_int(d.get("sync_priority")) else None,
            replicatefrom=_str_or_none(d.get("replicatefrom")),
            custom={k: v for k, v in d.items() if k not in known},
            raw=d,
        )


@dataclass(frozen=True)
class WatchdogConfig:
    mode: str = "automatic"  # "off" | "automatic" | "required"
    device: str = "/dev/watchdog"
    safety_margin: int = 5


@dataclass(frozen=True)
class LogConfig:
    dir: str | None = None
    level: str = "INFO"
    file: str | None = None


@dataclass(frozen=True)
class FencingConfig:
    enabled: bool = True
    safety_margin: int = 5


@dataclass(frozen=True)
class NodeConfig:
    scope: str
    name: str
    namespace: str = DEFAULT_NAMESPACE
    restapi: RestApiConfig = field(default_factory=RestApiConfig)
    etcd: EtcdConfig = field(default_factory=EtcdConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    postgresql: PostgresqlConfig = field(default_factory=PostgresqlConfig)
    tags: NodeTags = field(default_factory=NodeTags)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    log: LogConfig = field(default_factory=LogConfig)
    fencing: FencingConfig = field(default_factory=FencingConfig)
    raw: dict[str, Any] = field(default_factory=dict)
    source: str = "<string>"
    warnings: list[Issue] = field(default_factory=list)

    # -- addresses --
    @property
    def etcd_hosts(self) -> list[str]:
        return list(self.etcd.hosts)

    @property
    def restapi_listen(self) -> tuple[str, int]:
        return split_host_port(self.restapi.listen, 8008)

    @property
    def restapi_connect_address(self) -> str:
        """host:port other nodes and patronictl use; derived from listen when not configured."""
        if self.restapi.connect_address:
            return _join_host_port(*split_host_port(self.restapi.connect_address, 8008))
        host, port = self.restapi_listen
        return _join_host_port(_reachable(host), port)

    @property
    def api_url(self) -> str:
        scheme = "https" if self.restapi.tls else "http"
        return f"{scheme}://{self.restapi_connect_address}/patroni"

    @property
    def pg_listen(self) -> tuple[str, int]:
        """(listen_addresses, port); listen_addresses may be a comma list or '*'."""
        return split_host_port(self.postgresql.listen, 5432)

    @property
    def pg_connect_address(self) -> tuple[str, int]:
        if self.postgresql.connect_address:
            return split_host_port(self.postgresql.connect_address, 5432)
        host, port = self.pg_listen
        return _reachable(host), port

    @property
    def conn_url(self) -> str:
        return f"postgres://{_join_host_port(*self.pg_connect_address)}/{self.postgresql.database}"

    # -- other views --
    @property
    def data_dir(self) -> str:
        return self.postgresql.data_dir

    def tags_for_member(self) -> dict[str, Any]:
        return self.tags.for_member()

    @property
    def bootstrap_dynamic(self) -> DynamicConfig:
        """bootstrap.dcs as a DynamicConfig: what the first node writes into the `config` key."""
        return DynamicConfig.from_dict(self.bootstrap.dcs)

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], source: str = "<string>", warnings: list[Issue] | None = None
    ) -> NodeConfig:
        """Build without validating (best effort, defaults for anything unusable). See parse_node_config."""
        d = d if isinstance(d, Mapping) else {}
        return cls(
            scope=str(d.get("scope") or ""),
            name=str(d.get("name") or ""),
            namespace=normalize_namespace(d.get("namespace")),
            restapi=_restapi_from(d.get("restapi")),
            etcd=EtcdConfig.from_dict(d["etcd3"], "etcd3")
            if isinstance(d.get("etcd3"), Mapping)
            else EtcdConfig.from_dict(d.get("etcd"), "etcd"),
            bootstrap=_bootstrap_from(d.get("bootstrap")),
            postgresql=_postgresql_from(d.get("postgresql")),
            tags=NodeTags.from_dict(d.get("tags")),
            watchdog=_watchdog_from(d.get("watchdog")),
            log=_log_from(d.get("log")),
            fencing=_fencing_from(d.get("fencing")),
            raw=copy.deepcopy(dict(d)),
            source=source,
            warnings=list(warnings or []),
        )


def _section(d: Any) -> Mapping[str, Any]:
    return d if isinstance(d, Mapping) else {}


def _restapi_from(d: Any) -> RestApiConfig:
    d = _section(d)
    allow = d.get("allowlist")
    return RestApiConfig(
        listen=_str_or_none(d.get("listen")) or "",
        connect_address=_str_or_none(d.get("connect_address")),
        authentication=Credentials.from_dict(d.get("authentication")),
        certfile=_str_or_none(d.get("certfile")),
        keyfile=_str_or_none(d.get("keyfile")),
        keyfile_password=_str_or_none(d.get("keyfile_password")),
        cafile=_str_or_none(d.get("cafile")),
        verify_client=_str_or_none(d.get("verify_client")),
        allowlist=[a for a in allow if isinstance(a, str)] if isinstance(allow, list) else [],
        allowlist_include_members=d.get("allowlist_include_members") is True,
        auth_get=d.get("auth_get") is True,
    )


def _bootstrap_from(d: Any) -> BootstrapConfig:
    d = _section(d)
    return BootstrapConfig(
        dcs=dict(d["dcs"]) if isinstance(d.get("dcs"), Mapping) else {},
        initdb=list(d["initdb"]) if isinstance(d.get("initdb"), list) else [],
        users=dict(d["users"]) if isinstance(d.get("users"), Mapping) else {},
        pg_hba=[x for x in d["pg_hba"] if isinstance(x, str)] if isinstance(d.get("pg_hba"), list) else [],
        method=_str_or_none(d.get("method")),
        post_bootstrap=_str_or_none(d.get("post_bootstrap") or d.get("post_init")),
    )


def _postgresql_from(d: Any) -> PostgresqlConfig:
    d = _section(d)
    auth = _section(d.get("authentication"))
    creds = {
        role: c
        for role in ("superuser", "replication", "rewind")
        if (c := Credentials.from_dict(auth.get(role))) is not None
    }
    methods = d.get("create_replica_methods")
    methods = [m for m in methods if isinstance(m, str)] if isinstance(methods, list) else ["basebackup"]
    callbacks = _section(d.get("callbacks"))

    def bool_or_none(key: str) -> bool | None:
        return d[key] if isinstance(d.get(key), bool) else None

    return PostgresqlConfig(
        listen=_str_or_none(d.get("listen")) or "",
        connect_address=_str_or_none(d.get("connect_address")),
        proxy_address=_str_or_none(d.get("proxy_address")),
        data_dir=_str_or_none(d.get("data_dir")) or "",
        bin_dir=_str_or_none(d.get("bin_dir")),
        config_dir=_str_or_none(d.get("config_dir")),
        pgpass=_str_or_none(d.get("pgpass")),
        authentication=creds,
        parameters=dict(d["parameters"]) if isinstance(d.get("parameters"), Mapping) else {},
        pg_hba=list(d["pg_hba"]) if isinstance(d.get("pg_hba"), list) else None,
        pg_ident=list(d["pg_ident"]) if isinstance(d.get("pg_ident"), list) else None,
        use_pg_rewind=bool_or_none("use_pg_rewind"),
        use_slots=bool_or_none("use_slots"),
        remove_data_directory_on_rewind_failure=d.get("remove_data_directory_on_rewind_failure") is True,
        remove_data_directory_on_diverged_timelines=d.get("remove_data_directory_on_diverged_timelines")
        is True,
        database=_str_or_none(d.get("database")) or "postgres",
        os_user=_str_or_none(d.get("os_user")),
        callbacks={k: v for k, v in callbacks.items() if k in _CALLBACKS and isinstance(v, str)},
        create_replica_methods=methods,
        basebackup=copy.deepcopy(d.get("basebackup")),
        replica_method_settings={
            m: dict(d[m]) for m in methods if m != "basebackup" and isinstance(d.get(m), Mapping)
        },
        pg_ctl_timeout=d["pg_ctl_timeout"] if _is_int(d.get("pg_ctl_timeout")) else None,
    )


def _watchdog_from(d: Any) -> WatchdogConfig:
    d = _section(d)
    mode = d.get("mode", "automatic")
    if isinstance(mode, bool):  # YAML 1.1 reads `mode: off` as false
        mode = "automatic" if mode else "off"
    mode = _WATCHDOG_MODES.get(str(mode).strip().lower(), "automatic")
    return WatchdogConfig(
        mode=mode,
        device=_str_or_none(d.get("device")) or "/dev/watchdog",
        safety_margin=_int_or(d.get("safety_margin"), 5, SECONDS_MAX),
    )


def _log_from(d: Any) -> LogConfig:
    d = _section(d)
    level = d.get("level")
    return LogConfig(
        dir=_str_or_none(d.get("dir")),
        level=level.upper() if isinstance(level, str) and level.upper() in _LOG_LEVELS else "INFO",
        file=_str_or_none(d.get("file")),
    )


def _fencing_from(d: Any) -> FencingConfig:
    d = _section(d)
    return FencingConfig(
        enabled=d.get("enabled") is not False,
        safety_margin=_int_or(d.get("safety_margin"), 5, SECONDS_MAX),
    )


def parse_node_config(text: str | bytes, source: str = "<string>", *, local: bool = True) -> NodeConfig:
    """Parse and validate a node file. Raises ConfigError (all problems, with lines) when it has errors;
    warnings are kept in NodeConfig.warnings. local=False: a client-only file (see validate_node)."""
    data, issues = validate_node_text(text, local=local)
    if data is None or errors(issues):
        raise ConfigError(source, issues)
    return NodeConfig.from_dict(data, source=source, warnings=issues)


def load_node_config(path: str | Path, *, local: bool = True) -> NodeConfig:
    """Read and validate a node file (Patroni-style YAML). Raises ConfigError, or OSError if unreadable."""
    p = Path(path)
    return parse_node_config(p.read_bytes(), source=str(p), local=local)


# --------------------------------------------------------------------------------------------------------------
# Showing and editing


def _yaml_dumper() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.width = 2**31 - 1  # never fold long lines (pg_hba entries, commands)
    y.allow_unicode = True
    # YAML 1.1 quoting, so 'on'/'yes' stay strings for Patroni's PyYAML readers; the directive is dropped below.
    y.version = (1, 1)
    return y


def _sorted_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: (not isinstance(kv[0], str), str(kv[0])))
        return {k: _sorted_plain(v) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [_sorted_plain(v) for v in value]
    return value


def dump_yaml(d: Any) -> str:
    """Block-style YAML with sorted keys, like patronictl show-config."""
    data = _sorted_plain(d)
    text = _dump(data, allow_unicode=True)
    if not text.isascii():
        # The emitter mangles a few Unicode line breaks (U+0085, U+2028) when it writes them raw; if the text
        # does not read back as the same data, write non-ASCII characters as escapes instead.
        back = _load(text)
        if back.issues or back.data != (data if data is not None else {}):
            text = _dump(data, allow_unicode=False)
    return text


def _dump(data: Any, allow_unicode: bool) -> str:
    buf = io.StringIO()
    dumper = _yaml_dumper()
    dumper.allow_unicode = allow_unicode
    dumper.dump(data, buf)
    text = buf.getvalue()
    text = text.removeprefix("%YAML 1.1\n")
    if text.startswith(("--- ", "---\n")):  # a scalar or flow collection follows '--- ' on the same line
        text = text[4:]
    return text


def config_diff(old: Any, new: Any) -> str:
    """Unified diff of the two YAML dumps, headers '--- '/'+++ ' with empty names (as patronictl prints it).
    Empty string when there is no difference."""

    def lines(text: str) -> list[str]:
        return [line + "\n" for line in text.rstrip("\n").split("\n")]

    diff = difflib.unified_diff(lines(dump_yaml(old)), lines(dump_yaml(new)))
    return "".join(diff)


_PARAMETERS_PREFIX = ("postgresql", "parameters")


def set_path(
    d: Mapping[str, Any] | None, path: str | Sequence[str], value: Any, *, parse: bool = True
) -> dict:
    """A copy of `d` with `path` (dotted) set to `value`, as edit-config --set does.

    A string value is read as YAML when `parse` (so '60' is 60, 'true' is true, 'null' removes the key).
    Under postgresql.parameters the rest of the path is one GUC name, dots included
    (`postgresql.parameters.auto_explain.log_min_duration`). Mappings left empty by a removal are dropped.
    """
    keys = path.split(".") if isinstance(path, str) else [str(p) for p in path]
    if not keys or any(not k for k in keys):
        raise ValueError(f"invalid setting path {path!r}")
    if tuple(keys[:2]) == _PARAMETERS_PREFIX and len(keys) > 3:
        keys = [*_PARAMETERS_PREFIX, ".".join(keys[2:])]
    if parse and isinstance(value, str):
        value = parse_value(value)
    out = copy.deepcopy(dict(d)) if isinstance(d, Mapping) else {}
    _set_in(out, keys, value)
    return out


def _set_in(node: dict, keys: list[str], value: Any) -> None:
    key = keys[0]
    if len(keys) == 1:
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
        return
    child = node.get(key)
    if not isinstance(child, dict):
        if value is None:
            return  # nothing to remove
        child = node[key] = {}
    _set_in(child, keys[1:], value)
    if not child:
        del node[key]


def apply_edits(d: Mapping[str, Any] | None, sets: Iterable[str] = (), pgs: Iterable[str] = ()) -> dict:
    """edit-config's --set k.path=VALUE and --pg GUC=VALUE, applied in order. ValueError for 'no = sign'."""
    out = copy.deepcopy(dict(d)) if isinstance(d, Mapping) else {}
    for prefix, items in (("", sets), ("postgresql.parameters.", pgs)):
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"invalid setting {item!r}: expected key=value")
            out = set_path(out, prefix + key.strip(), value)
    return out
