"""`hatui daemon node.yml`: run one HA node in the foreground."""

from __future__ import annotations

import logging
import os
import sys


def run(path: str | None, log_level: str | None = None) -> int:
    """path None: the node is configured by PATRONI_* / HATUI_* variables alone (hatui/envconfig.py)."""
    from ..config import ConfigError
    from ..envconfig import load_node
    from .loop import Daemon, FatalError, install_signal_handlers
    from .node import NodeRuntime

    try:
        # Variables override the file; they are removed from the environment once read, so no
        # child process (PostgreSQL, pg_basebackup, the guard) inherits the passwords they hold.
        node = load_node(path, pop=True, remember=True)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    from . import logsetup

    log_cfg = node.raw.get("log") if isinstance(node.raw.get("log"), dict) else {}
    try:
        logsetup.setup(log_cfg, node.name, log_level or os.environ.get("HATUI_LOG_LEVEL"))
    except OSError as exc:
        print(f"Error: cannot open the log file: {exc}", file=sys.stderr)
        return 1
    from ..notbuilt import merge, node_findings

    for issue in merge(node.warnings, node_findings(node.raw)):  # nothing accepted is ignored silently
        where = f"{node.source}:{issue.line}" if issue.line else node.source
        logging.getLogger("hatui.config").warning("%s: %s", where, issue.message)
    try:
        daemon = Daemon(NodeRuntime(node))
    except Exception as exc:  # noqa: BLE001 - a bad node config must read as one line
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    install_signal_handlers(daemon)
    from . import sdnotify

    # systemd (Type=notify): READY/STATUS/STOPPING/RELOADING and watchdog pings; SIGHUP reloads.
    sdnotify.install(daemon)
    try:
        return daemon.run()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            logging.getLogger("hatui.ha").critical("%s", exc.code)
            print(f"Error: {exc.code}", file=sys.stderr)
            return 1
        raise
    except FatalError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
