"""The daemon's logging, from Patroni's `log` section (docs: yaml_configuration, "Log").

  level             root level (DEBUG..CRITICAL), default INFO
  type              plain (default) | json: one JSON object per line
  format            plain: a %-style format (default "%(asctime)s %(levelname)s: %(message)s");
                    json: the same string, or a list of record attributes, an item {attr: key} renaming one
  dateformat        strftime format of asctime (default: logging's "2026-12-03 18:01:30,373")
  static_fields     json only: fields added to every line ({app: hatui})
  dir               write <dir>/<name>.log (hatui's `log.file` names the file itself), rotated at
                    file_size bytes (default 25000000), keeping file_num old files (default 4); mode: the
                    files' permissions. Without dir (or file) the lines go to stderr, where journald takes them.
  loggers           per-logger levels ({hatui.api: WARNING})
  traceback_level   ERROR (default): tracebacks shown with error lines; DEBUG: only when level is DEBUG
  deduplicate_heartbeat_logs
                    true: the HA loop's "no action." line (and the "Lock owner" line before it) is written
                    only when it differs from the previous cycle's (as Patroni does)
  max_queue_size    accepted for compatibility: hatui writes synchronously, there is no queue

JSON field names are stable: with the default format a line is
  {"asctime": ..., "levelname": ..., "message": ..., "name": <logger>}
plus, on the HA loop's one line per cycle, "decision" (the same sentence as message) and "actions"
(the kinds of what it did, e.g. ["acquire_lock", "promote"]), and "static_fields".
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

DEFAULT_FORMAT = "%(asctime)s %(levelname)s: %(message)s"
DEFAULT_FILE_SIZE = 25_000_000
DEFAULT_FILE_NUM = 4
# The chatty third-party loggers, quiet unless `loggers` says otherwise.
_NOISY = ("grpc", "etcd3", "urllib3")
# What a LogRecord always carries: everything else on a record is an `extra` (decision, actions).
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _level(value: Any, default: int = logging.INFO) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and isinstance(logging.getLevelName(value.upper()), int):
        return logging.getLevelName(value.upper())
    return default


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the fields of `format` (renamed as asked), the extras, static fields."""

    def __init__(self, fmt: Any = None, datefmt: str | None = None, static_fields: Mapping | None = None) -> None:
        self.fields: list[tuple[str, str]] = []
        if isinstance(fmt, list):
            for item in fmt:
                if isinstance(item, str):
                    self.fields.append((item, item))
                elif isinstance(item, Mapping):
                    self.fields.extend((str(k), str(v)) for k, v in item.items())
        if not self.fields:
            text = fmt if isinstance(fmt, str) and fmt else DEFAULT_FORMAT
            self.fields = [(f, f) for f in re.findall(r"%\((\w+)\)", text)] or [("message", "message")]
        if not any(src == "name" for src, _ in self.fields):
            self.fields.append(("name", "name"))  # which part of the daemon spoke: always useful to a pipeline
        super().__init__(None, datefmt)
        self.static_fields = dict(static_fields or {})

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        out: dict[str, Any] = {}
        for src, key in self.fields:
            out[key] = getattr(record, src, None)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        out.update(self.static_fields)
        return json.dumps(out, default=str, ensure_ascii=False)


class _TracebackFilter(logging.Filter):
    """traceback_level DEBUG: an error line keeps its traceback only when DEBUG lines are shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not logging.getLogger().isEnabledFor(logging.DEBUG):
            record.exc_info = None
            record.exc_text = None
        return True


def is_heartbeat(record: logging.LogRecord) -> bool:
    msg = record.getMessage()
    return msg.startswith(("no action. ", "PAUSE: no action"))


class DedupHeartbeat(logging.Filter):
    """deduplicate_heartbeat_logs: a heartbeat line identical to the previous one is dropped, and the
    "Lock owner: ..." line logged just before it with it. A "Lock owner" line is held until the next
    record of the same thread says whether it belongs to a repeated heartbeat."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler
        self.previous: str | None = None
        self.held: logging.LogRecord | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hatui_released", False):
            return True
        msg = record.getMessage()
        if record.name == "hatui.ha" and msg.startswith("Lock owner: "):
            self._release()
            self.held = record
            return False
        if is_heartbeat(record):
            repeated = msg == self.previous
            self.previous = msg
            held, self.held = self.held, None
            if repeated:
                return False
            if held is not None:
                held._hatui_released = True  # type: ignore[attr-defined]
                self.handler.handle(held)
            return True
        if record.name == "hatui.ha":
            self.previous = None  # something else happened: the next heartbeat is news again
        self._release()
        return True

    def _release(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            held._hatui_released = True  # type: ignore[attr-defined]
            self.handler.handle(held)


class _ModeRotatingFileHandler(logging.handlers.RotatingFileHandler):
    def __init__(self, filename: str, max_bytes: int, backups: int, mode: int | None) -> None:
        self.file_mode = mode
        super().__init__(filename, maxBytes=max_bytes, backupCount=backups)

    def _open(self):
        stream = super()._open()
        if self.file_mode is not None:
            try:
                os.chmod(self.baseFilename, self.file_mode)
            except OSError:
                pass
        return stream


def log_file_path(cfg: Mapping[str, Any], name: str) -> str | None:
    if cfg.get("file"):
        return str(cfg["file"])
    if cfg.get("dir"):
        return os.path.join(str(cfg["dir"]), f"{name}.log")
    return None


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    try:
        return int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return default


def make_handler(cfg: Mapping[str, Any], name: str) -> logging.Handler:
    path = log_file_path(cfg, name)
    handler: logging.Handler
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        mode = cfg.get("mode")
        handler = _ModeRotatingFileHandler(
            path,
            max_bytes=_int(cfg.get("file_size"), DEFAULT_FILE_SIZE),
            # file_num 0 would make RotatingFileHandler truncate in place; keep at least one old file.
            backups=max(1, _int(cfg.get("file_num"), DEFAULT_FILE_NUM)),
            mode=None if mode is None else _int(mode, 0o600),
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    dateformat = cfg.get("dateformat") or None
    if not isinstance(dateformat, str):
        dateformat = None
    if str(cfg.get("type") or "plain").lower() == "json":
        handler.setFormatter(JsonFormatter(cfg.get("format"), dateformat, cfg.get("static_fields")
                                           if isinstance(cfg.get("static_fields"), Mapping) else None))
    else:
        fmt = cfg.get("format") if isinstance(cfg.get("format"), str) and cfg.get("format") else DEFAULT_FORMAT
        handler.setFormatter(logging.Formatter(fmt, dateformat))
    if str(cfg.get("traceback_level") or "ERROR").upper() == "DEBUG":
        handler.addFilter(_TracebackFilter())
    if cfg.get("deduplicate_heartbeat_logs") is True:
        handler.addFilter(DedupHeartbeat(handler))
    return handler


def setup(cfg: Mapping[str, Any] | None, name: str, level_override: str | None = None) -> logging.Handler:
    """Install the root handler for the `log` section `cfg`; returns it. Safe to call again (reload)."""
    cfg = dict(cfg or {})
    handler = make_handler(cfg, name)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(_level(level_override or cfg.get("level")))
    loggers = cfg.get("loggers") if isinstance(cfg.get("loggers"), Mapping) else {}
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for logger_name, level in loggers.items():
        logging.getLogger(str(logger_name)).setLevel(_level(level, logging.NOTSET))
    return handler
