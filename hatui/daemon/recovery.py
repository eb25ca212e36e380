"""Recovery settings (`postgresql.recovery_conf`), written the way PostgreSQL 12+ takes them.

Since PostgreSQL 12 there is no recovery.conf: the recovery parameters are ordinary settings in
postgresql.conf, and a `standby.signal` (follow a primary / the archive for ever) or
`recovery.signal` (recover, then end recovery) file in the data directory says what to do.

A replica gets the node's `recovery_conf` minus its recovery targets and connection settings
(hatui writes primary_conninfo itself), with every recovery target blanked so that a file
included by postgresql.conf cannot pause, promote or stop a standby. In a standby cluster the
`standby_cluster` section's restore_command and archive_cleanup_command override the node's,
and its recovery_min_apply_delay applies to the standby leader only (as in Patroni).

Backup tools (pgBackRest, Barman) write their own recovery settings into postgresql.auto.conf,
which PostgreSQL reads after postgresql.conf, so it would silently win: `strip_auto_conf` takes
them out when hatui writes its own.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("hatui.recovery")

RECOVERY_PARAMETERS = frozenset({
    "archive_cleanup_command", "restore_command", "recovery_end_command", "recovery_min_apply_delay",
    "recovery_target", "recovery_target_name", "recovery_target_time", "recovery_target_xid",
    "recovery_target_lsn", "recovery_target_inclusive", "recovery_target_timeline", "recovery_target_action",
    "primary_conninfo", "primary_slot_name", "promote_trigger_file",
})
# Blanked on every standby (Patroni does the same on PostgreSQL 12+).
_TARGETS = ("recovery_target", "recovery_target_name", "recovery_target_time", "recovery_target_xid",
            "recovery_target_lsn")
# What a standby cluster's section may set on its members.
_STANDBY_CLUSTER_KEYS = ("restore_command", "archive_cleanup_command")

_PARAM_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?")


def _text(value: Any) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value)


def replica_params(
    recovery_conf: Mapping[str, Any] | None, standby_cluster: Mapping[str, Any] | None = None,
    standby_leader: bool = False,
) -> dict[str, str]:
    """The recovery settings of a replica (or, standby_leader=True, of a standby cluster's leader)."""
    out: dict[str, str] = {}
    for key, value in (recovery_conf or {}).items():
        name = str(key).lower()
        if name.startswith("recovery_target") or name in ("primary_conninfo", "primary_slot_name", "standby_mode"):
            continue
        if value is None:
            continue
        out[name] = _text(value)
    out.update({t: "" for t in _TARGETS})
    if standby_cluster:
        keys = _STANDBY_CLUSTER_KEYS + (("recovery_min_apply_delay",) if standby_leader else ())
        out.update({k: _text(standby_cluster[k]) for k in keys if standby_cluster.get(k)})
    return out


def bootstrap_params(recovery_conf: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """A custom bootstrap's recovery_conf -> (settings for postgresql.conf, signal file to create)."""
    params = {str(k).lower(): _text(v) for k, v in recovery_conf.items() if v is not None}
    standby = params.pop("standby_mode", "off").lower() in ("on", "true", "yes", "1")
    # Patroni's translation of the pre-9.5 spelling.
    pause = params.pop("pause_at_recovery_target", None)
    if pause is not None:
        params.setdefault("recovery_target_action", "pause" if pause.lower() in ("on", "true", "yes", "1")
                          else "promote")
    return params, ("standby.signal" if standby else "recovery.signal")


def strip_auto_conf(data_dir: str, chown=None) -> list[str]:
    """Remove recovery settings from postgresql.auto.conf; returns the names removed."""
    path = Path(data_dir, "postgresql.auto.conf")
    try:
        lines = path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return []
    kept, removed = [], []
    for line in lines:
        m = _PARAM_RE.match(line)
        if m and not line.lstrip().startswith("#") and m.group(1).lower() in RECOVERY_PARAMETERS:
            removed.append(m.group(1).lower())
        else:
            kept.append(line)
    if removed:
        tmp = path.with_suffix(".conf.hatui-tmp")
        tmp.write_text("".join(kept))
        os.chmod(tmp, 0o600)
        if chown is not None:
            chown(tmp)
        os.replace(tmp, path)
        log.info("removed recovery settings %s from %s (hatui writes its own)", ", ".join(removed), path)
    return removed


def remove_signal_files(data_dir: str) -> None:
    for name in ("standby.signal", "recovery.signal"):
        Path(data_dir, name).unlink(missing_ok=True)
