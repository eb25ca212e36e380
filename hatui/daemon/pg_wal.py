"""WAL positions and timelines, pure: LSNs, timeline history files, the divergence check that
says whether a node needs pg_rewind, and pg_controldata's output parsed. No I/O; unit-tested on
their own (tests/unit/test_rewind_logic.py) and used by the HA core.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence


def parse_lsn(text: str) -> int:
    """'0/3000060' -> 50331744. Raises ValueError on anything that is not an LSN."""
    hi, sep, lo = text.strip().partition("/")
    if not sep or not hi or not lo:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(hi, 16) << 32) | int(lo, 16)


def format_lsn(value: int) -> str:
    """50331744 -> '0/3000060' (PostgreSQL's own spelling: upper-case hex, no padding)."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def parse_history(text: str) -> list[tuple[int, int, str]]:
    """Parse a `<TL>.history` file into [(parent_timeline, switch_lsn, reason), ...].

    Each line says: timeline N ended at this LSN (and N+1 began there). Comments and blank
    lines are skipped, as PostgreSQL itself does.
    """
    entries: list[tuple[int, int, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        try:
            entries.append((int(parts[0]), parse_lsn(parts[1]), parts[2].strip() if len(parts) > 2 else ""))
        except ValueError:
            continue
    return entries


def needs_rewind(
    local_tl: int,
    local_lsn: int,
    leader_history: Iterable[Sequence[Any]],
    leader_tl: int | None = None,
) -> bool:
    """Has the local node written WAL that the leader's timeline does not contain?

    `local_lsn` is the END of the local WAL (the first byte the node has not written): for a
    cleanly stopped former primary that is the end of its shutdown checkpoint record (see
    `Postgres.local_wal_end`), for a replica the end of what it replayed, for a running primary
    pg_current_wal_lsn(). `leader_history` is the leader's timeline history, entries
    (timeline, switch_lsn, ...) with LSNs as ints; `leader_tl` defaults to one past the last entry.

    The node diverged when it is on a timeline the leader never had, or when the leader left our
    timeline at a switch point before our end of WAL. A node exactly at the switch point (a clean
    switchover) can simply follow.
    """
    history = [(int(h[0]), int(h[1])) for h in leader_history]
    if leader_tl is None:
        leader_tl = max((tl for tl, _ in history), default=0) + 1
    if local_tl > leader_tl:
        return True
    if local_tl == leader_tl:
        return False
    for tl, switch_lsn in history:
        if tl == local_tl:
            return local_lsn > switch_lsn
    # The leader's lineage skips our timeline: we were promoted on a branch it never followed.
    return True


def parse_controldata(text: str) -> dict[str, str]:
    """pg_controldata output (run with LC_ALL=C) -> {"Database cluster state": "shut down", ...}."""
    data: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            data[key.strip()] = value.strip()
    return data
