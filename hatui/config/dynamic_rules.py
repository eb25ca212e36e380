"""The validator of the cluster-wide (dynamic) configuration: `validate_dynamic` (every problem, never
raises), `validate_dynamic_text` (the same on YAML text, findings with line and column), and the generic
safety walk (sizes, non-finite numbers, foreign types, loops) the node file's validator shares."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from hatui.pgparams import is_known

from .defaults import DEFAULT_DYNAMIC, SECONDS_MAX, STRING_MAX
from .gucs import OWNED_GUCS, check_guc_value, parse_duration
from .issues import Issue, _Checker, _kind, _show
from .keys import (
    _DYNAMIC_BOOL,
    _DYNAMIC_INT,
    _OLD_NAMES,
    _PG_LOCAL_ONLY,
    _PG_SHARED,
    _SYNC_MODES,
    DYNAMIC_KEYS,
    NODE_KEYS,
)
from .timing import _check_timing_rule
from .yaml_load import _load


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


_SLOT_NAME_RE = re.compile(r"^[a-z0-9_]{1,63}$")


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
# Text entry point (editor, edit-config): parse + validate + positions


def validate_dynamic_text(text: str | bytes,
                          known_parameters: frozenset[str] | None = None) -> tuple[Any | None, list[Issue]]:
    """Parse a YAML document and validate it as the cluster configuration; issues carry line/column."""
    doc = _load(text)
    if doc.issues:
        return None, doc.issues
    return doc.data, [doc.locate(i) for i in validate_dynamic(doc.data, known_parameters)]
