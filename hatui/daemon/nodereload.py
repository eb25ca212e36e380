"""What a reload of the node file (SIGHUP, POST /reload) can apply to a running daemon, and what not.

Applied at once: postgresql.parameters and pg_hba (loop.py rewrites PostgreSQL's files and reloads
it), tags (published with the next member key), and the whole `log` section (re-installed here).
Everything else the daemon built its connections and processes from at start needs a restart of the
daemon; a reload says so by name instead of silently keeping the old values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("hatui.ha")

# Settings read once at start (the REST API socket, the etcd client, PostgreSQL's identity and paths).
_RESTART_ONLY: tuple[tuple[str, ...], ...] = (
    ("namespace",), ("restapi",), ("etcd3",), ("etcd",), ("watchdog",), ("fencing",),
    ("postgresql", "listen"), ("postgresql", "connect_address"), ("postgresql", "data_dir"),
    ("postgresql", "bin_dir"), ("postgresql", "authentication"), ("postgresql", "os_user"),
    ("postgresql", "database"), ("postgresql", "unix_socket_directory"),
)


def _get(d: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def needs_restart(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The settings that differ between two node files and only take effect after a daemon restart."""
    return [".".join(keys) for keys in _RESTART_ONLY if _get(old, keys) != _get(new, keys)]


def apply(old_node: Any, new_node: Any) -> list[str]:
    """Apply what can change at run time (the log section); log and return what needs a restart."""
    old_raw, new_raw = old_node.raw or {}, new_node.raw or {}
    if old_raw.get("log") != new_raw.get("log"):
        from . import logsetup

        try:
            logsetup.setup(new_raw.get("log") if isinstance(new_raw.get("log"), Mapping) else {}, new_node.name)
            log.info("reload: log settings applied")
        except OSError as exc:
            log.error("reload: the new log settings cannot be used (%s); keeping the old ones", exc)
            logsetup.setup(old_raw.get("log") if isinstance(old_raw.get("log"), Mapping) else {}, old_node.name)
    pending = needs_restart(old_raw, new_raw)
    if pending:
        log.warning("reload: changed settings that take effect only after a restart of the daemon: %s",
                    ", ".join(pending))
    return pending
