"""`hatui daemon node.yml`: run one HA node in the foreground."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str = "INFO", log_file: str | None = None) -> None:
    # Patroni's format, so operators' greps and log shippers keep working.
    fmt = "%(asctime)s %(levelname)s: %(message)s"
    handlers: list[logging.Handler] = []
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=fmt, handlers=handlers,
                        force=True)
    # The etcd and gRPC libraries are chatty at INFO about things the operator cannot act on.
    for noisy in ("grpc", "etcd3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(path: str, log_level: str | None = None) -> int:
    from ..config import ConfigError, load_node_config
    from .loop import Daemon, FatalError, install_signal_handlers
    from .node import NodeRuntime

    try:
        node = load_node_config(path)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    log_cfg = node.raw.get("log") or {}
    level = log_level or os.environ.get("HATUI_LOG_LEVEL") or str(log_cfg.get("level", "INFO"))
    log_file = None
    if log_cfg.get("dir"):
        os.makedirs(str(log_cfg["dir"]), exist_ok=True)
        log_file = os.path.join(str(log_cfg["dir"]), f"{node.name}.log")
    setup_logging(level, log_file)
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
