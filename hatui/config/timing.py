"""The timing rule of the cluster config: ttl >= loop_wait + 2 * retry_timeout, and the minimums of the
three (Patroni's). The validator refuses a config that breaks it; `safe_dynamic` adjusts it as Patroni does."""

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
