"""Say why, against REAL servers: published decisions, the event timeline, `hatui explain`.

A private etcd and three `hatui daemon` nodes (hatui.launcher.LocalCluster). After each of a
switchover, a refused switchover to a lagging member, a pause, a daemon crash and a host crash,
`hatui explain -f json` and `hatui events -f json` must say what happened and why (asserted on
fields), and the member keys carry each daemon's decision. No duration is asserted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from ruamel.yaml import YAML
from servers import free_port, live_processes, make_tempdir, print_logs, process_args, remove_tree

from hatui.cli.main import cli
from hatui.cluster import Cluster
from hatui.etcd.kv import EtcdHttp
from hatui.launcher import LocalCluster, LocalNode

pytestmark = pytest.mark.integration

DCS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
ENV_CLEAR = ("HATUI_CONFIG_FILE", "PATRONICTL_CONFIG_FILE", "HATUI_ETCD", "DCS_URL", "PATRONI_SCOPE",
             "PATRONI_NAMESPACE", "PATRONI_ETCD3_HOSTS", "EDITOR")


class Hooks(BaseHTTPRequestHandler):
    """The webhook receiver: keeps every JSON body POSTed to it."""

    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Hooks.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class Live:
    def __init__(self, cluster: LocalCluster, base: Path) -> None:
        self.c = cluster
        self.base = base
        self.ctl_yaml = base / "patronictl.yaml"
        self.env = {name: None for name in ENV_CLEAR}
        self.env.update(HOME=str(base))
        self.etcd = EtcdHttp([cluster.etcd_endpoint])

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["-c", str(self.ctl_yaml), *args], env=self.env)

    def json(self, *args: str) -> Any:
        result = self(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def read(self) -> Cluster:
        return self.etcd.read_cluster("/service", "batman")

    def events(self, kind: str | None = None) -> list[dict]:
        evs = self.json("events", "-f", "json")
        return [e for e in evs if kind is None or e["kind"] == kind]

    def wait_event(self, kind: str, after: int, what: str, timeout: float = 90, **facts: Any) -> dict:
        def check() -> dict | None:
            for ev in self.events(kind):
                if ev["revision"] > after and all(ev["facts"].get(k) == v or ev.get(k) == v
                                                  for k, v in facts.items()):
                    return ev
            return None
        return self.c.wait_for(check, timeout, what, interval=0.5)

    def revision(self) -> int:
        return self.read().revision

    def healthy(self, timeout: float = 180) -> tuple[str, list[str]]:
        """A running leader and every other member streaming on its timeline, caught up."""
        def check() -> tuple[str, list[str]] | None:
            try:
                cluster = self.read()
            except Exception:  # noqa: BLE001 - etcd busy for a moment
                return None
            leader = cluster.leader_member
            if leader is None or leader.state != "running" or cluster.is_paused:
                return None
            others = [m for m in cluster.members if m.name != leader.name]
            if len(others) != len(self.c.nodes) - 1:
                return None
            for m in others:
                if m.replication_state != "streaming" or m.timeline != leader.timeline:
                    return None
                lag = cluster.lag(m)
                if lag is None or lag > 1048576:
                    return None
            return leader.name, [m.name for m in others]
        return self.c.wait_for(check, timeout, "a leader and streaming replicas", interval=0.3)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    base = make_tempdir("hatui-explain-")
    hooks = ThreadingHTTPServer(("127.0.0.1", free_port()), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
    cluster = LocalCluster(base, 3, dcs=dict(DCS), extra_node={"events": {"max": 100, "webhooks": {"*": url}}})
    try:
        cluster.start()
        it = Live(cluster, base)
        yaml = YAML()
        with open(it.ctl_yaml, "w") as f:
            yaml.dump({"scope": "batman", "namespace": "/service/", "etcd3": {"hosts": cluster.etcd_endpoint}}, f)
        it.healthy()
        yield it
        it.etcd.close()
    finally:
        cluster.stop()
        hooks.shutdown()
        remove_tree(base)


@pytest.fixture
def h(live: Live, request: pytest.FixtureRequest) -> Iterator[Live]:
    live.healthy()
    yield live
    rep = getattr(request.node, "_hatui_rep_call", None)
    if rep is not None and rep.failed:
        print_logs(live.c.nodes)


def explain(h: Live) -> dict:
    return h.json("explain", "-f", "json")


def member_decision(h: Live, name: str) -> dict:
    m = h.read().member(name)
    assert m is not None
    return dict(m.data.get("decision") or {})


# --- published decisions -------------------------------------------------------------------------
def test_member_keys_and_rest_carry_the_decision_and_idle_members_write_nothing(h: Live) -> None:
    leader, replicas = h.healthy()
    d = member_decision(h, leader)
    assert d["leader"] == leader and d["message"] == f"no action. I am ({leader}), the leader with the lock"
    assert "eligible" not in d and d["lease_ttl"] == DCS["ttl"]
    for r in replicas:
        d = member_decision(h, r)
        assert d["message"] == f"no action. I am ({r}), a secondary, and following a leader ({leader})"
        assert d["eligible"] is True and "why_not" not in d and d["leader"] == leader
    status = h.c.node(leader).patroni()
    assert status["decision"]["message"].startswith("no action.")
    assert 0 <= status["decision"]["lease_time_left"] <= DCS["ttl"]
    # Idle: the same decision is not written again. Right after start-up WAL still moves (the
    # checkpoint after bootstrap), so the key may change a few times; then it must settle: no
    # write over several cycles (loop_wait is 1 s). A field that changed every cycle (a clock,
    # a counter) would never let it settle.
    def settled() -> bool:
        before = h.read().member(replicas[0]).mod_revision
        time.sleep(4)
        return h.read().member(replicas[0]).mod_revision == before
    h.c.wait_for(settled, 90, f"{replicas[0]}'s member key to stop changing", interval=0)


# --- switchover ------------------------------------------------------------------------------------
def test_switchover_is_explained(h: Live) -> None:
    leader, replicas = h.healthy()
    target = replicas[0]
    rev = h.revision()
    dry = h("switchover", "--candidate", target, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Would go ahead" in dry.output and h.read().leader_name == leader and h.read().failover is None
    result = h("switchover", "--leader", leader, "--candidate", target, "--force")
    assert result.exit_code == 0, result.output
    ev = h.wait_event("switchover", rev, f"{target}'s switchover event", member=target)
    assert ev["facts"]["previous"] == leader and ev["facts"]["cause"].startswith("switchover requested from")
    assert isinstance(ev["facts"]["lsn"], int) and ev["facts"]["timeline"] >= 2
    demote = h.wait_event("demote", rev, f"{leader}'s demotion", member=leader)
    assert demote["facts"]["to"] == target
    h.healthy()
    data = explain(h)
    assert data["leader"]["name"] == target and data["leader"]["how_kind"] == "switchover"
    assert data["leader"]["since"] == ev["time"]
    assert {m["name"] for m in data["members"]} == {leader, replicas[1]}
    assert all(m["promotable"] and m["switchover"]["allowed"] for m in data["members"])
    text = h("explain")
    assert text.exit_code == 0 and f"Leader: {target}" in text.output and "switchover" in text.output
    # The same event went to the webhook (sent by the daemon's event thread, not the HA loop).
    h.c.wait_for(lambda: any(b["kind"] == "switchover" and b["id"] == ev["id"] and b["scope"] == "batman"
                             for b in Hooks.received), 30, "the switchover webhook")


# --- a refused switchover to a lagging member -----------------------------------------------------
def _walreceiver_pid(node: LocalNode) -> int:
    with node.connect() as conn:
        row = conn.execute("SELECT pid FROM pg_stat_wal_receiver").fetchone()
    assert row and row[0], "no WAL receiver"
    return int(row[0])


def test_refused_switchover_to_a_lagging_member_is_explained(h: Live) -> None:
    leader, replicas = h.healthy()
    lagging, other = replicas
    pid = _walreceiver_pid(h.c.node(lagging))
    os.kill(pid, signal.SIGSTOP)  # the WAL receiver of a server this test started
    try:
        with h.c.node(leader).connect() as conn:
            conn.autocommit = True
            for _ in range(2):
                conn.execute("CREATE TABLE IF NOT EXISTS explain_lag (x int); INSERT INTO explain_lag VALUES (1)")
                conn.execute("SELECT pg_switch_wal()")
            conn.execute("INSERT INTO explain_lag VALUES (2)")

        def lagging_published() -> bool:
            d = member_decision(h, lagging)
            return d.get("eligible") is False and "maximum_lag_on_failover" in d.get("why_not", "")
        h.c.wait_for(lagging_published, 60, f"{lagging}'s key to say it lags")
        # No wait for the other replica: explain compares its REST status, read from its PostgreSQL
        # when asked (api_pgstatus), with the leader's optime key, so it is never a loop behind.
        by = {m["name"]: m for m in explain(h)["members"]}
        assert by[other]["promotable"] is True and by[other]["lag"] <= 1048576, by[other]
        rev = h.revision()
        dry = h("switchover", "--candidate", lagging, "--dry-run")
        assert dry.exit_code == 1 and "Would be refused" in dry.output and "maximum_lag_on_failover" in dry.output
        result = h("switchover", "--leader", leader, "--candidate", lagging, "--force")
        assert result.exit_code == 1 and "not eligible" in result.output
        assert h.read().leader_name == leader
        ev = h.wait_event("switchover_refused", rev, "the refusal event", candidate=lagging)
        assert "maximum_lag_on_failover" in ev["facts"]["why"] and ev["facts"]["action"] == "switchover"
        data = explain(h)
        by = {m["name"]: m for m in data["members"]}
        assert by[lagging]["promotable"] is False and "lags" in by[lagging]["why"]
        assert by[lagging]["switchover"]["allowed"] is False and by[lagging]["lag"] > 1048576
        assert by[other]["promotable"] is True and by[other]["switchover"]["allowed"] is True, by[other]
        one = h.json("explain", lagging, "-f", "json")
        assert [m["name"] for m in one["members"]] == [lagging]
    finally:
        os.kill(pid, signal.SIGCONT)
    h.c.wait_for(lambda: member_decision(h, lagging).get("eligible") is True, 60, f"{lagging} eligible again")


# --- pause ---------------------------------------------------------------------------------------
def test_pause_and_resume_are_explained(h: Live) -> None:
    leader, replicas = h.healthy()
    rev = h.revision()
    follow = subprocess.Popen([sys.executable, "-m", "hatui.cli", "-c", str(h.ctl_yaml), "events", "--follow",
                               "-f", "json", "-k", "pause", "-k", "resume"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**{k: v for k, v in os.environ.items() if k not in ENV_CLEAR}, "HOME": str(h.base)})
    assert h("pause", "--wait").exit_code == 0
    try:
        ev = h.wait_event("pause", rev, "the pause event", member=leader)
        assert ev["facts"]["revision"] > rev
        h.c.wait_for(lambda: all(member_decision(h, r).get("why_not", "").startswith("the cluster is paused")
                                 for r in replicas), 30, "replicas saying they are paused")
        data = explain(h)
        assert data["paused"] is True
        assert all(m["promotable"] is False and m["why"].startswith("the cluster is paused") for m in data["members"])
        assert member_decision(h, leader)["message"].startswith("PAUSE: ")
    finally:
        assert h("resume", "--wait").exit_code == 0
    resumed = h.wait_event("resume", rev, "the resume event", member=leader)
    # `events --follow` printed both as they came, one JSON object a line (older pauses first).
    guard = threading.Timer(60, follow.kill)  # a silent follow fails the test instead of hanging it
    guard.start()
    try:
        lines: list[dict] = []
        assert follow.stdout is not None
        while not any(e["id"] == resumed["id"] for e in lines):
            line = follow.stdout.readline()
            assert line, follow.stderr.read() if follow.stderr else "follow ended"
            lines.append(json.loads(line))
        new = [e for e in lines if e["revision"] > rev]
        assert [e["kind"] for e in new] == ["pause", "resume"] and all(e["scope"] == "batman" for e in new)
    finally:
        guard.cancel()
        follow.terminate()  # the process this test started, by its handle
        follow.wait(10)


# --- crashes ---------------------------------------------------------------------------------------
def _restart(h: Live, name: str) -> None:
    h.c.start_node(h.c.nodes.index(h.c.node(name)))
    h.healthy()


def test_daemon_crash_is_explained(h: Live) -> None:
    leader, _ = h.healthy()
    rev = h.revision()
    h.c.kill_node(leader, postgres_too=False)  # the fencing guard stops PostgreSQL and frees the lock
    fencing = h.wait_event("fencing", rev, "the fencing guard's event", member=leader)
    assert "released the leader key" in fencing["message"]
    ev = h.wait_event("failover", rev, "a failover event")
    assert ev["member"] != leader and ev["facts"]["previous"] == leader
    assert ev["facts"]["decision"] == "promoted self to leader by acquiring session lock"
    data = explain(h)
    assert data["leader"]["name"] == ev["member"] and data["leader"]["how_kind"] == "failover"
    kinds = [e["kind"] for e in data["events"]]
    assert "fencing" in kinds and "failover" in kinds

    def counted() -> bool:
        status, text = h.c.node(ev["member"]).rest("/metrics")
        return status == 200 and f'hatui_failovers_total{{scope="batman",name="{ev["member"]}"}} 1' in text
    h.c.wait_for(counted, 30, "the failover counted in /metrics")
    _restart(h, leader)


def _kill_host(h: Live, name: str) -> None:
    """A host crash: the daemon, its fencing guard and PostgreSQL all die at once (SIGKILL)."""
    node = h.c.node(name)
    daemon_pid = node.daemon.pid
    guards = [pid for pid, _ in live_processes()
              if b"hatui.daemon.fence" in b" ".join(process_args(pid))
              and str(daemon_pid).encode() in process_args(pid)]
    for pid in guards:
        os.kill(pid, signal.SIGKILL)
    h.c.kill_node(name, postgres_too=True)


def test_host_crash_is_explained(h: Live) -> None:
    leader, _ = h.healthy()
    rev = h.revision()
    _kill_host(h, leader)
    ev = h.wait_event("failover", rev, "a failover after the lease expired")
    assert ev["facts"]["previous"] == leader
    assert f"the leader {leader} vanished" in ev["facts"]["cause"]
    assert not h.events("fencing") or all(e["revision"] < rev for e in h.events("fencing"))
    data = explain(h)
    assert data["leader"]["name"] == ev["member"] and data["leader"]["how"] == ev["message"]
    assert leader not in {m["name"] for m in data["members"]}  # its key went with its lease
    _restart(h, leader)
    # The old leader comes back and says how it rejoined (rewind or a plain start) in its key.
    h.c.wait_for(lambda: member_decision(h, leader).get("leader") == ev["member"], 60, "the old leader following")
