"""Values in REST API requests the way Patroni accepts them: sizes and durations with units
(?lag=16MB, "timeout": "1min"), booleans, PostgreSQL version texts. Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any



# --------------------------------------------------------------------------------------------------
# Values with units (?lag=16MB, "timeout": "1min") and booleans the way Patroni accepts them

_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_TIME_UNITS = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}
_NUMBER_UNIT = re.compile(r"\s*(-?[0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", re.ASCII)


def _with_units(value: Any, units: Mapping[str, float], default_unit: str) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    m = _NUMBER_UNIT.fullmatch(value)
    if not m:
        return None
    number, unit = m.groups()
    # Units are case-insensitive here (PostgreSQL's are not): `?lag=1mb` meaning "no limit" would
    # silently disable a load balancer's lag check.
    factor = units.get((unit or default_unit).lower())
    if factor is None:
        return None
    try:
        if "." not in number and factor >= 1:
            return int(number) * int(factor)
        result = float(number) * factor
    except ValueError:  # more digits than int() accepts
        return None
    return round(result) if math.isfinite(result) else None


def parse_size(value: Any) -> int | None:
    """Bytes from 1048576, "1048576", "16kB", "64MB", "1GB", "1.5 TB"; None when not understood."""
    return _with_units(value, _SIZE_UNITS, "b")


def parse_seconds(value: Any) -> int | None:
    """Seconds from 30, "30", "30s", "5min", "1h", "1d", "1500ms"; None when not understood."""
    return _with_units(value, _TIME_UNITS, "s")


def parse_bool(value: Any) -> bool | None:
    """True/False from JSON booleans, 0/1 and on/off/true/false/yes/no; None when not a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("on", "true", "yes", "1"):
            return True
        if v in ("off", "false", "no", "0"):
            return False
    return None


def postgres_version_to_int(text: Any) -> int:
    """"15.2" -> 150002, "9.6.24" -> 90624 (server_version_num form); ValueError with the reply text."""
    message = f"Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: {text}"
    if not isinstance(text, str):
        raise ValueError(message)  # noqa: TRY004 - callers turn every ValueError into a 400 reply
    parts = text.strip().split(".")
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(message)
    nums = [int(p) for p in parts]
    if len(nums) == 2 and nums[0] >= 10:
        nums.insert(1, 0)  # 15.2 is major 15, minor 2: the same three slots as 9.6.24
    elif len(nums) != 3 or nums[0] >= 10:
        raise ValueError(message)
    if nums[0] < 1 or any(n > 99 for n in nums):
        raise ValueError(f"Invalid PostgreSQL version: {text}")
    return nums[0] * 10000 + nums[1] * 100 + nums[2]
