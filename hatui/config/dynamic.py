"""The cluster-wide (dynamic) configuration as the daemon uses it: `DynamicConfig`, the typed view with
defaults filled in, and `safe_dynamic`, what a daemon runs with whatever was written. Patroni never refuses a
config that breaks the timing rule, it adjusts it in memory and logs a warning; `safe_dynamic` does the same."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from hatui.pgparams import is_known

from .defaults import BYTES_MAX, DEFAULT_DYNAMIC, SECONDS_MAX, default_dynamic
from .gucs import OWNED_GUCS, _bool_word, _guc_shown, _short_name, check_guc_value, parse_duration
from .issues import _is_int, _kind, _show
from .keys import _DYNAMIC_BOOL, _DYNAMIC_INT, _OLD_NAMES, _SYNC_MODES, normalize_synchronous_mode
from .timing import _adjust_timing


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
    ttl, loop_wait, retry = _adjust_timing(data, warnings)
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
