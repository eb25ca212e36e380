"""The timing rule of the cluster config: ttl >= loop_wait + 2 * retry_timeout, and the minimums of the
three (Patroni's), stated once for both readers: the validator refuses a config that breaks it
(`_check_timing_rule`), the daemon runs with it adjusted as Patroni does, a warning per change
(`_adjust_timing`, called by `safe_dynamic`)."""

from __future__ import annotations

from collections.abc import Mapping

from .defaults import DEFAULT_DYNAMIC, SECONDS_MAX
from .issues import _Checker, _is_int

_TIMING_MINIMUMS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


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


def _adjust_timing(data: Mapping, warnings: list[str]) -> tuple[int, int, int]:
    """(ttl, loop_wait, retry_timeout) a daemon runs with: Patroni's adjustments (spec §3.2), the minimums
    first, then the rule, each one a warning in Patroni's words. `data`'s values are integers or None here
    (safe_dynamic replaced the others by their defaults)."""
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
    return ttl, loop_wait, retry
