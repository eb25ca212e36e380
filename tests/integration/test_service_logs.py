"""Patroni's `log` section on a running daemon (issue 20): JSON lines that carry the HA decision,
and a log file rotated at file_size that keeps file_num old files. Real etcd and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from servers import make_tempdir, print_logs, remove_tree

from hatui.launcher import LocalCluster

pytestmark = pytest.mark.integration

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


def test_json_log_lines_carry_the_decision_and_rotation_keeps_file_num(request: pytest.FixtureRequest) -> None:
    base = make_tempdir("hatui-logs-")
    log_dir = base / "daemonlogs"
    cluster = LocalCluster(base, 1, dcs=dict(FAST), extra_node={"log": {
        "type": "json", "dir": str(log_dir), "file_size": 4000, "file_num": 2,
        "format": ["message", {"asctime": "@timestamp"}, {"levelname": "level"}],
        "static_fields": {"app": "hatui-test"}, "loggers": {"hatui.api": "WARNING"}}})
    try:
        cluster.start()
        name = cluster.nodes[0].name
        current = log_dir / f"{name}.log"
        # One cycle a second writes two lines of ~250 bytes: a rotation every few seconds.
        cluster.wait_for(lambda: (log_dir / f"{name}.log.2").exists(), 90, "a second rotation")
        first_rotated = (log_dir / f"{name}.log.2").stat().st_ino
        cluster.wait_for(lambda: (log_dir / f"{name}.log.2").stat().st_ino != first_rotated, 90,
                         "a third rotation")
        assert sorted(p.name for p in log_dir.iterdir()) == [f"{name}.log", f"{name}.log.1", f"{name}.log.2"]
        records = []
        for path in (current, log_dir / f"{name}.log.1"):
            for line in path.read_text().splitlines():
                records.append(json.loads(line))  # every line is one JSON object
        assert records
        for r in records:
            assert set(r) >= {"message", "@timestamp", "level", "name", "app"}
            assert r["app"] == "hatui-test" and r["name"].startswith("hatui")
            assert r["name"] != "hatui.api" or r["level"] in ("WARNING", "ERROR", "CRITICAL")
        decisions = [r for r in records if "decision" in r]
        assert decisions, "no HA decision line in the JSON log"
        for r in decisions:
            assert r["decision"] == r["message"] and isinstance(r["actions"], list)
        assert any(r["decision"].startswith("no action. I am (postgresql0), the leader with the lock")
                   for r in decisions)
    except BaseException:
        print_logs(cluster.nodes)
        raise
    finally:
        cluster.stop()
        rep = getattr(request.node, "_hatui_rep_call", None)
        if rep is None or not rep.failed:
            remove_tree(base)
