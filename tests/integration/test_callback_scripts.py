"""Callbacks, pre_promote and before_stop run by real daemons (issue 14, item 3).

A recording script appends its arguments to one file per node; the tests read what each daemon ran.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import cluster_factory, rest

pytestmark = pytest.mark.integration


@pytest.fixture
def make(request: pytest.FixtureRequest) -> Iterator:
    yield from cluster_factory(request)


def recorder(base: Path) -> str:
    path = base / "record.sh"
    path.write_text('#!/bin/sh\nlog="$1"; shift\necho "$*" >> "$log"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def test_callbacks_run_with_patroni_arguments_and_pre_promote_can_stop_a_promotion(make, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    rec = recorder(tmp_path)
    logs = {n: tmp_path / f"{n}.log" for n in ("postgresql0", "postgresql1")}
    pre = tmp_path / "pre_promote.log"
    extra = {}
    for name, log in logs.items():
        cb = {a: f"{rec} {log}" for a in ("on_start", "on_stop", "on_restart", "on_reload", "on_role_change")}
        extra[name] = {"postgresql.callbacks": cb, "postgresql.before_stop": f"{rec} {log} before_stop"}
    # postgresql0 refuses every promotion (it bootstraps, which is no promotion).
    extra["postgresql0"]["postgresql.pre_promote"] = f"sh -c 'echo refused >> {pre}; exit 1'"
    extra["postgresql1"]["postgresql.pre_promote"] = f"{rec} {pre} postgresql1"
    # Settings hatui does not act on: one warning line each at start (issue 14, item 5).
    extra["postgresql0"]["citus"] = {"group": 0, "database": "citus"}
    extra["postgresql0"]["postgresql.pgpass"] = str(tmp_path / "pgpass")
    cluster = make(2, node_extra=extra)
    p0, p1 = cluster.nodes
    cluster.wait_for(lambda: "on_start primary batman" in lines(logs["postgresql0"]), 30, "on_start on the primary")
    cluster.wait_for(lambda: "on_start replica batman" in lines(logs["postgresql1"]), 30, "on_start on the replica")
    daemon_log = p0.log_path.read_text().splitlines()
    for key in ("citus", "postgresql.pgpass"):
        assert len([x for x in daemon_log if f"WARNING: {p0.config_path}: {key}: accepted but not acted on" in x
                    or re.search(rf"WARNING: {p0.config_path}:\d+: {key}: accepted but not acted on", x)]) == 1
    assert not any("accepted but not acted on" in x for x in p1.log_path.read_text().splitlines())

    # A parameter change reaches both nodes with a reload.
    assert rest(p0, "PATCH", "/config", {"postgresql": {"parameters": {"work_mem": "7MB"}}}) == 200
    cluster.wait_for(lambda: "on_reload replica batman" in lines(logs["postgresql1"]), 30, "on_reload on the replica")
    cluster.wait_for(lambda: "on_reload primary batman" in lines(logs["postgresql0"]), 30, "on_reload on the primary")

    # A restart: before_stop, then on_restart.
    assert rest(p1, "POST", "/restart", {}) == 200
    cluster.wait_for(lambda: "on_restart replica batman" in lines(logs["postgresql1"]), 30, "on_restart")
    assert "before_stop" in lines(logs["postgresql1"])
    cluster.wait_for(lambda: p1.is_streaming(), 60, "postgresql1 streaming after the restart")

    # Switchover to postgresql1: its pre_promote runs (and allows it), roles change on both.
    assert rest(p0, "POST", "/switchover", {"leader": "postgresql0", "candidate": "postgresql1"}) == 200
    cluster.wait_for(lambda: cluster.leader() == "postgresql1", 60, "postgresql1 leading")
    cluster.wait_for(lambda: "on_role_change primary batman" in lines(logs["postgresql1"]), 30,
                     "on_role_change primary on the new leader")
    cluster.wait_for(lambda: "on_role_change replica batman" in lines(logs["postgresql0"]), 60,
                     "on_role_change replica on the old leader")
    assert lines(pre) == ["postgresql1"]
    p0_log = lines(logs["postgresql0"])
    assert p0_log.index("before_stop") < p0_log.index("on_stop primary batman") < p0_log.index(
        "on_role_change replica batman")

    # Switchover back: postgresql0's pre_promote exits 1, so it never promotes and gives the lock back.
    cluster.wait_for(lambda: p0.is_streaming(), 60, "postgresql0 streaming")
    rest(p1, "POST", "/switchover", {"leader": "postgresql1", "candidate": "postgresql0"})
    cluster.wait_for(lambda: "refused" in lines(pre), 60, "postgresql0's pre_promote")
    cluster.wait_for(lambda: cluster.leader() == "postgresql1" and p1.is_writable(), 90,
                     "postgresql1 leading again")
    assert not p0.is_writable()
    assert "pre_promote script failed: not promoting" in p0.log_path.read_text()
    assert "on_role_change primary batman" not in lines(logs["postgresql0"])

    # Issue 17: every run is in the cluster's event timeline with its exit status (the refused
    # pre_promote as exit status 1), so `hatui events` shows why postgresql0 did not take over.
    from hatui.etcd.kv import EtcdHttp

    etcd = EtcdHttp([cluster.etcd_endpoint])

    def recorded() -> bool:
        evs = etcd.read_cluster("/service", "batman").events
        refused = any(e.kind == "callback" and e.member == "postgresql0" and e.facts.get("callback") == "pre_promote"
                      and e.facts.get("returncode") == 1 for e in evs)
        role = any(e.kind == "callback" and e.member == "postgresql1" and e.facts.get("callback") == "on_role_change"
                   and e.facts.get("returncode") == 0 for e in evs)
        return refused and role
    try:
        cluster.wait_for(recorded, 30, "the callback runs in the event timeline")
    finally:
        etcd.close()
