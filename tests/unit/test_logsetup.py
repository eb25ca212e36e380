"""The daemon's log formatting and heartbeat deduplication (hatui/daemon/logsetup.py), and the
console's reading of JSON lines (hatui/logread.py)."""

from __future__ import annotations

import io
import json
import logging

from hatui.daemon import logsetup
from hatui.logread import readable


def capture(cfg: dict) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logsetup.make_handler(cfg, "node")
    handler.setStream(stream)  # type: ignore[attr-defined]
    logger = logging.getLogger(f"hatui.ha.test{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.name = "hatui.ha"  # the dedup filter only looks at the HA loop's own lines
    return logger, stream


def test_json_lines_have_stable_fields_extras_and_static_fields() -> None:
    log, out = capture({"type": "json", "static_fields": {"app": "x"}})
    log.info("%s", "no action. I am (a), the leader with the lock", extra={"decision": "d", "actions": []})
    rec = json.loads(out.getvalue())
    assert rec["message"] == "no action. I am (a), the leader with the lock"
    assert {"asctime", "levelname", "name", "app", "decision", "actions"} <= set(rec)
    assert rec["levelname"] == "INFO" and rec["app"] == "x" and rec["actions"] == []


def test_plain_format_and_dateformat() -> None:
    log, out = capture({"format": "%(levelname)s|%(asctime)s|%(message)s", "dateformat": "%Y"})
    log.warning("hello")
    level, year, msg = out.getvalue().strip().split("|")
    assert (level, msg) == ("WARNING", "hello") and len(year) == 4


def test_repeated_heartbeats_are_dropped_with_their_lock_owner_line() -> None:
    log, out = capture({"deduplicate_heartbeat_logs": True})
    for _ in range(3):
        log.info("Lock owner: a; I am a")
        log.info("no action. I am (a), the leader with the lock")
    log.info("Lock owner: a; I am a")
    log.info("promoted self to leader by acquiring session lock")
    log.info("Lock owner: a; I am a")
    log.info("no action. I am (a), the leader with the lock")
    lines = [line.split(": ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == ["Lock owner: a; I am a", "no action. I am (a), the leader with the lock",
                     "Lock owner: a; I am a", "promoted self to leader by acquiring session lock",
                     "Lock owner: a; I am a", "no action. I am (a), the leader with the lock"]


def test_without_dedup_every_heartbeat_is_written() -> None:
    log, out = capture({})
    for _ in range(3):
        log.info("no action. I am (a), the leader with the lock")
    assert len(out.getvalue().splitlines()) == 3


def test_readable_turns_json_into_the_plain_shape() -> None:
    line = json.dumps({"asctime": "2026-12-03 18:00:00,000", "levelname": "INFO", "message": "no action. x"})
    assert readable(line) == "2026-12-03 18:00:00,000 INFO: no action. x"
    assert readable(json.dumps({"@timestamp": "t", "level": "ERROR", "message": "m"})) == "t ERROR: m"
    assert readable("2026 INFO: plain") == "2026 INFO: plain"
    assert readable("{not json") == "{not json"
