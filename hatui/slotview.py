"""Replication slots as the cluster model shows them: Patroni's member -> slot name mapping and the
slot positions the leader publishes in `/status`, for `hatui list -e` and the console's member
detail. Pure functions of the cluster model (no I/O); the daemon's slot keeper uses the same mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .cluster import Cluster


def slot_name_from_member_name(member_name: str) -> str:
    """Patroni's mapping: lower case; '-' and '.' become '_'; any other character outside
    [a-z0-9_] becomes 'u' + its code point in 4 digits; at most 63 characters."""

    def replace(match: re.Match) -> str:
        c = match.group(0)
        return "_" if c in "-." else f"u{ord(c):04d}"

    return re.sub(r"[^a-z0-9_]", replace, member_name.lower())[:63]


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def slot_rows(cluster: Cluster) -> list[tuple[str, str, str, str, int | None]]:
    """(slot, type, what it is for, position, lag in bytes behind the leader's WAL) for every slot
    the leader published in /status. The leader's own name (published at its WAL position so the
    replicas keep a slot for it) is included; `For` says which member a slot serves."""
    status = cluster.status
    if status is None or not status.slots:
        return []
    config = cluster.config.data if cluster.config is not None and isinstance(cluster.config.data, Mapping) else {}
    permanent: dict[str, Any] = {}
    for key in ("permanent_replication_slots", "permanent_slots", "slots"):
        if isinstance(config.get(key), Mapping):
            permanent.update(config[key])
    owners = {slot_name_from_member_name(m.name): m.name for m in cluster.members}
    rows = []
    for name, value in sorted(status.slots.items()):
        lsn = _int(value)
        spec = permanent.get(name)
        kind = spec.get("type", "physical") if isinstance(spec, Mapping) else "physical"
        if name in owners:
            owner = f"member {owners[name]}"
        elif name in permanent:
            owner = "permanent"
        elif name in status.retain_slots:
            owner = "gone member (kept for member_slots_ttl)"
        else:
            owner = "member"
        # Never below 0: a slot cannot be ahead of the leader's WAL; a negative difference only
        # means /status was written by a leader that read its WAL position before the slots.
        lag = max(0, status.optime - lsn) if status.optime is not None and lsn is not None else None
        rows.append((name, kind, owner, format_lsn(lsn) if lsn is not None else "", lag))
    return rows
