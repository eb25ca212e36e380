"""REST API cluster operations against real daemons (issue 4's "done when" list).

One two-node cluster (hatui.launcher.LocalCluster, ttl 20 / loop_wait 1 / retry_timeout 3) serves
the whole module: every test first waits for "a leader and a streaming replica" and finds out who
is who, so the tests do not depend on each other's leftovers, only on the cluster being healthy.
The REST API is protected with Basic auth, as in a real deployment.

No test asserts a duration. "Nothing happened" checks watch a fixed number of HA cycles.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from servers import make_tempdir, print_logs, remove_tree

from hatui.launcher import LocalCluster, LocalNode

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("rest_ops")]

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
USER, PASSWORD = "admin", "s3cret-api"


class AuthCluster(LocalCluster):
    """LocalCluster whose nodes require Basic auth on unsafe REST calls.

    extra_node replaces whole top-level sections, and `restapi` carries each node's own port, so
    the credentials are added to the generated section instead.
    """

    def node_config(self, node: LocalNode) -> dict:
        cfg = super().node_config(node)
        cfg["restapi"]["authentication"] = {"username": USER, "password": PASSWORD}
        return cfg


# --------------------------------------------------------------------------- helpers

def call(node: LocalNode, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
         auth: tuple[str, str] | None = (USER, PASSWORD), timeout: float = 60.0) -> tuple[int, str, dict]:
    """One REST call: (status, body text, headers). `raw` sends bytes as they are (bad JSON)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(node.api_url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def patroni(node: LocalNode) -> dict:
    status, body = node.rest("/patroni")
    return body if status == 200 and isinstance(body, dict) else {}


def connect(node: LocalNode, **kw: Any) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=node.pg_port, user="postgres", password="zalando",
                           dbname="postgres", autocommit=True, connect_timeout=3, **kw)


def sql_value(node: LocalNode, query: str) -> Any:
    try:
        with connect(node) as conn:
            row = conn.execute(query).fetchone()
            return row[0] if row else None
    except psycopg.Error:
        return None


def etcd_get(cluster: LocalCluster, key: str) -> tuple[str | None, int]:
    """(value, mod_revision) of an etcd key through the v3 JSON gateway."""
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    req = urllib.request.Request(f"http://{cluster.etcd_endpoint}/v3/kv/range", body)
    with urllib.request.urlopen(req, timeout=3) as r:
        kvs = json.loads(r.read()).get("kvs") or []
    if not kvs:
        return None, 0
    return base64.b64decode(kvs[0]["value"]).decode(), int(kvs[0].get("mod_revision", 0))


def member_key(cluster: LocalCluster, name: str) -> dict:
    value, _ = etcd_get(cluster, f"/service/{cluster.scope}/members/{name}")
    return json.loads(value) if value else {}


def healthy(cluster: LocalCluster, timeout: float = 120) -> tuple[LocalNode, LocalNode]:
    """Wait for one leader with a running primary and the other node streaming from it."""
    def check() -> tuple[LocalNode, LocalNode] | None:
        name = cluster.leader()
        if name is None:
            return None
        leader = cluster.node(name)
        others = [n for n in cluster.nodes if n.name != name]
        if patroni(leader).get("role") != "primary":
            return None
        if all(patroni(n).get("replication_state") == "streaming" for n in others):
            return leader, others[0]
        return None
    return cluster.wait_for(check, timeout, "a leader and a streaming replica", interval=0.3)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    base = make_tempdir("hatui-restops-")
    c = AuthCluster(base, 2, dcs=dict(FAST))
    failed_before = request.session.testsfailed
    try:
        c.start()
        healthy(c)
        yield c
    finally:
        if request.session.testsfailed > failed_before:
            print_logs(c.nodes, 60)
        c.stop()
        remove_tree(base)


# --------------------------------------------------------------------------- security and input

def test_wrong_credentials_get_401_and_change_nothing(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    before, revision = etcd_get(cluster, "/service/batman/config")
    started = patroni(replica)["postmaster_start_time"]
    patch = {"postgresql": {"parameters": {"work_mem": "64MB"}}}
    for auth in ((USER, "wrong"), ("nobody", PASSWORD), None):
        status, _, headers = call(leader, "PATCH", "/config", patch, auth=auth)
        assert status == 401
        assert headers.get("WWW-Authenticate", "").startswith("Basic")
        assert call(replica, "POST", "/restart", {}, auth=auth)[0] == 401
        assert call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": replica.name},
                    auth=auth)[0] == 401
        assert call(replica, "POST", "/reinitialize", {}, auth=auth)[0] == 401
        assert call(leader, "PUT", "/config", {"ttl": 20}, auth=auth)[0] == 401
    # A few HA cycles later nothing moved: config key, leader, the replica's postmaster.
    time.sleep(3 * FAST["loop_wait"])
    assert etcd_get(cluster, "/service/batman/config") == (before, revision)
    assert cluster.leader() == leader.name
    assert patroni(replica)["postmaster_start_time"] == started
    assert sql_value(replica, "SHOW work_mem") != "64MB"
    # Reading stays open (load balancers and monitoring use it without credentials).
    assert call(leader, "GET", "/config", auth=None)[0] == 200


def test_malformed_json_gets_400_and_changes_nothing(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    before = etcd_get(cluster, "/service/batman/config")
    for path, method in (("/config", "PATCH"), ("/config", "PUT"), ("/switchover", "POST"),
                         ("/failover", "POST"), ("/restart", "POST")):
        status, text, _ = call(leader, method, path, raw=b'{"postgresql": {"parameters": ')
        assert status == 400, (method, path, status, text)
    # Well-formed JSON that breaks the timing rule is refused too, saying which rule (hatui, not Patroni).
    status, text, _ = call(leader, "PATCH", "/config", {"loop_wait": 10, "retry_timeout": 10})
    assert status == 400 and "ttl: 20 must be >= loop_wait + 2 * retry_timeout" in text, text
    assert etcd_get(cluster, "/service/batman/config") == before
    assert cluster.leader() == leader.name


# --------------------------------------------------------------------------- dynamic configuration

def test_work_mem_patch_reaches_both_nodes_without_restart(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    started = {n.name: patroni(n)["postmaster_start_time"] for n in cluster.nodes}
    status, text, _ = call(leader, "PATCH", "/config", {"postgresql": {"parameters": {"work_mem": "8MB"}}})
    assert status == 200, text
    assert json.loads(text)["postgresql"]["parameters"]["work_mem"] == "8MB"
    for node in cluster.nodes:
        cluster.wait_for(lambda n=node: sql_value(n, "SHOW work_mem") == "8MB", 30, f"work_mem on {node.name}")
    for node in cluster.nodes:
        st = patroni(node)
        assert st["postmaster_start_time"] == started[node.name], f"{node.name} was restarted"
        assert not st.get("pending_restart")
        # "server signaled" is logged once pg_ctl reload has returned, and the server may already
        # run with the new value by then: wait for the line rather than read the log too early.
        def logged(n: LocalNode = node) -> bool:
            log = n.log_path.read_text()
            return "Changed work_mem from '4MB' to '8MB'" in log and "server signaled" in log
        cluster.wait_for(logged, 10, f"{node.name}'s log saying it changed work_mem and signaled the server")
    stored, _ = etcd_get(cluster, "/service/batman/config")
    assert json.loads(stored)["postgresql"]["parameters"]["work_mem"] == "8MB"


def test_max_connections_marks_pending_restart_until_each_member_restarts(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    status, text, _ = call(leader, "PATCH", "/config", {"postgresql": {"parameters": {"max_connections": 101}}})
    assert status == 200, text

    def both_pending() -> bool:
        return all(member_key(cluster, n.name).get("pending_restart") and patroni(n).get("pending_restart")
                   for n in cluster.nodes)
    cluster.wait_for(both_pending, 30, "pending_restart on both members")
    for node in cluster.nodes:
        assert sql_value(node, "SHOW max_connections") == "100"
        reason = patroni(node).get("pending_restart_reason", {})
        assert reason.get("max_connections", {}).get("new_value") == "101", reason
        assert "Changed max_connections from '100' to '101' (restart might be required)" in node.log_path.read_text()

    # GET / is the primary check: 200 on the leader, 503 on the replica, both with the flag.
    code, body = leader.rest("/")
    assert code == 200 and body["pending_restart"] is True and body["role"] == "primary"
    code, body = replica.rest("/")
    assert code == 503 and body["pending_restart"] is True and body["role"] == "replica"
    for node, primary in ((leader, 1), (replica, 0)):
        code, text = node.rest("/metrics")
        labels = f'{{scope="batman",name="{node.name}"}}'
        assert code == 200 and f"patroni_pending_restart{labels} 1" in text, text
        assert f"patroni_primary{labels} {primary}" in text and f"hatui_dcs_reachable{labels} 1" in text

    # Increasing a shared-memory setting: the replica restarts first (spec 3.3).
    status, text, _ = call(replica, "POST", "/restart", {"restart_pending": True})
    assert (status, text) == (200, "restarted successfully")
    assert sql_value(replica, "SHOW max_connections") == "101"
    assert sql_value(leader, "SHOW max_connections") == "100"
    cluster.wait_for(lambda: not member_key(cluster, replica.name).get("pending_restart"), 15,
                     "the replica's pending_restart cleared")
    assert member_key(cluster, leader.name).get("pending_restart") is True

    # The leader restarts in place and keeps the lock.
    status, text, _ = call(leader, "POST", "/restart", {})
    assert (status, text) == (200, "restarted successfully")
    assert sql_value(leader, "SHOW max_connections") == "101"
    assert cluster.leader() == leader.name
    value, _ = etcd_get(cluster, "/service/batman/leader")
    assert value == leader.name
    healthy(cluster)


def test_reload_rereads_the_local_yaml(cluster: LocalCluster) -> None:
    from ruamel.yaml import YAML

    leader, replica = healthy(cluster)
    started = patroni(replica)["postmaster_start_time"]
    yaml = YAML()
    original = replica.config_path.read_text()
    cfg = yaml.load(original)
    cfg["postgresql"]["parameters"]["log_min_duration_statement"] = 1234
    cfg["tags"]["rack"] = "r42"
    with open(replica.config_path, "w") as f:
        yaml.dump(cfg, f)
    try:
        assert call(replica, "POST", "/reload")[:2] == (202, "reload scheduled")
        cluster.wait_for(lambda: sql_value(replica, "SHOW log_min_duration_statement") == "1234ms", 20,
                         "the local parameter applied")
        cluster.wait_for(lambda: member_key(cluster, replica.name).get("tags", {}).get("rack") == "r42", 20,
                         "the new tag in the member key")
        assert replica.rest("/replica?tag_rack=r42")[0] == 200
        assert replica.rest("/replica?tag_rack=r1")[0] == 503
        assert sql_value(leader, "SHOW log_min_duration_statement") == "-1"
        assert patroni(replica)["postmaster_start_time"] == started
    finally:
        replica.config_path.write_text(original)
        call(replica, "POST", "/reload")
    cluster.wait_for(lambda: sql_value(replica, "SHOW log_min_duration_statement") == "-1", 20, "reverted")


# --------------------------------------------------------------------------- restart

def test_scheduled_restart_happens_at_its_time_and_delete_cancels(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    started = patroni(replica)["postmaster_start_time"]
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    status, text, _ = call(replica, "POST", "/restart", {"schedule": when.isoformat()})
    assert (status, text) == (202, "Restart scheduled")
    assert call(replica, "POST", "/restart", {"schedule": (when + timedelta(hours=1)).isoformat()})[:2] == \
        (409, "Another restart is already scheduled")
    scheduled = patroni(replica).get("scheduled_restart") or {}
    assert datetime.fromisoformat(scheduled["schedule"]) == when
    cluster.wait_for(lambda: member_key(cluster, replica.name).get("scheduled_restart"), 10,
                     "scheduled_restart in the member key")

    new_start = cluster.wait_for(
        lambda: (patroni(replica).get("postmaster_start_time") or started) != started
        and patroni(replica)["postmaster_start_time"], 60, "the scheduled restart")
    assert datetime.fromisoformat(new_start) >= when, "restarted before its schedule"
    cluster.wait_for(lambda: "scheduled_restart" not in patroni(replica), 10, "schedule cleared")
    healthy(cluster)

    # Schedule again, far away, then cancel: nothing restarts.
    later = datetime.now(UTC) + timedelta(hours=1)
    assert call(replica, "POST", "/restart", {"schedule": later.isoformat()})[0] == 202
    assert call(replica, "DELETE", "/restart")[:2] == (200, "scheduled restart deleted")
    assert call(replica, "DELETE", "/restart")[:2] == (404, "no restarts are scheduled")
    assert "scheduled_restart" not in patroni(replica)
    cluster.wait_for(lambda: "scheduled_restart" not in member_key(cluster, replica.name), 10,
                     "schedule gone from the member key")
    assert patroni(replica)["postmaster_start_time"] == new_start


def test_restart_conditions_refused(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    started = patroni(replica)["postmaster_start_time"]
    assert call(replica, "POST", "/restart", {"role": "primary"})[:2] == \
        (503, "restart conditions are not satisfied")
    assert call(replica, "POST", "/restart", {"postgres_version": "10.1"})[:2] == \
        (503, "restart conditions are not satisfied")
    status, text, _ = call(replica, "POST", "/restart", {"bogus": 1})
    assert status == 400 and "Unknown filter for the scheduled restart: bogus" in text
    assert patroni(replica)["postmaster_start_time"] == started


# --------------------------------------------------------------------------- switchover

class Writer(threading.Thread):
    """Inserts one row every 20 ms into whichever node accepts writes; remembers acknowledged ids."""

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(daemon=True)
        hosts = ",".join("127.0.0.1" for _ in cluster.nodes)
        ports = ",".join(str(n.pg_port) for n in cluster.nodes)
        self.conninfo = (f"host={hosts} port={ports} user=postgres password=zalando dbname=postgres "
                         "target_session_attrs=read-write connect_timeout=2")
        self.acked: list[int] = []
        self.errors = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        next_id = 0
        while not self.stop_event.is_set():
            time.sleep(0.02)
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                next_id += 1
                conn.execute("INSERT INTO load (id) VALUES (%s)", (next_id,))
                self.acked.append(next_id)  # committed: autocommit returned without error
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def test_switchover_under_writes_loses_no_committed_row(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    with connect(leader) as conn:
        conn.execute("DROP TABLE IF EXISTS load")
        conn.execute("CREATE TABLE load (id int PRIMARY KEY)")
    writer = Writer(cluster)
    writer.start()
    try:
        cluster.wait_for(lambda: len(writer.acked) >= 50, 30, "rows before the switchover")
        status, text, _ = call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": replica.name})
        assert (status, text) == (200, f'Successfully switched over to "{replica.name}"')
        count = len(writer.acked)
        cluster.wait_for(lambda: len(writer.acked) >= count + 50, 60, "rows after the switchover")
    finally:
        writer.stop_event.set()
        writer.join(10)
    assert cluster.leader() == replica.name
    with connect(replica) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        present = {r[0] for r in conn.execute("SELECT id FROM load")}
    lost = sorted(set(writer.acked) - present)
    assert not lost, f"{len(lost)} acknowledged rows lost: {lost[:20]}"
    print(f"acknowledged {len(writer.acked)} rows, {writer.errors} failed attempts during the switchover")

    new_leader, old_leader = healthy(cluster)
    assert (new_leader.name, old_leader.name) == (replica.name, leader.name)
    assert patroni(old_leader)["role"] == "replica"
    # The old leader logs its decision when the switchover action returns, and that action ends
    # by starting it as a replica: it can stream (what healthy() asks its REST API) a moment before.
    cluster.wait_for(lambda: "switchover: demoting myself" in leader.log_path.read_text(), 30,
                     f"{leader.name}'s log saying why it demoted")
    top = max(writer.acked)
    cluster.wait_for(lambda: sql_value(old_leader, f"SELECT count(*) FROM load WHERE id = {top}") == 1, 30,
                     "the last row on the old leader")


def test_switchover_refusals_carry_the_reason(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    status, text, _ = call(leader, "POST", "/switchover", {"leader": replica.name, "candidate": leader.name})
    assert (status, text) == (412, "leader name does not match")
    status, text, _ = call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": "ghost"})
    assert (status, text) == (412, "candidate does not exists")
    status, text, _ = call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": leader.name})
    assert status == 400 and text == "Switchover target and source are the same"
    when = datetime.now(UTC) - timedelta(minutes=5)
    status, text, _ = call(leader, "POST", "/switchover", {"leader": leader.name, "scheduled_at": when.isoformat()})
    assert (status, text) == (422, "Cannot schedule switchover in the past")
    assert call(leader, "DELETE", "/switchover")[:2] == (404, "no switchover is scheduled")
    # Scheduled far ahead, visible in /cluster, then deleted: nothing moves.
    when = datetime.now(UTC) + timedelta(hours=1)
    status, text, _ = call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": replica.name,
                                                           "scheduled_at": when.isoformat()})
    assert (status, text) == (202, "Switchover scheduled")
    cluster.wait_for(lambda: "scheduled_switchover" in (leader.rest("/cluster")[1] or {}), 10,
                     "scheduled_switchover in /cluster")
    assert call(leader, "DELETE", "/switchover")[:2] == (200, "scheduled switchover deleted")
    time.sleep(3 * FAST["loop_wait"])
    assert cluster.leader() == leader.name
    assert "scheduled_switchover" not in leader.rest("/cluster")[1]

    # The candidate's daemon is gone (its member key lives on until its lease expires): the
    # refusal names the candidate and the reason.
    cluster.kill_node(replica.name, postgres_too=False)
    try:
        status, text, _ = call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": replica.name})
        assert status == 412, text
        assert text == (f"switchover is not possible: no good candidates have been found "
                        f"({replica.name}: not reachable)")
        assert cluster.leader() == leader.name
    finally:
        cluster.start_node(cluster.nodes.index(replica))
    healthy(cluster)


def test_scheduled_switchover_happens_at_its_time(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    status, text, _ = call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": replica.name,
                                                           "scheduled_at": when.isoformat()})
    assert (status, text) == (202, "Switchover scheduled")
    body = cluster.wait_for(lambda: (leader.rest("/cluster")[1] or {}).get("scheduled_switchover"), 5,
                            "scheduled_switchover in /cluster")
    assert body["to"] == replica.name and body["from"] == leader.name
    assert datetime.fromisoformat(body["at"]) == when
    value, _ = etcd_get(cluster, "/service/batman/leader")
    if datetime.now(UTC) < when:
        assert value == leader.name  # still early: nothing moved yet
    cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/leader")[0] == replica.name, 60,
                     "the scheduled switchover")
    assert datetime.now(UTC) >= when
    assert "Awaiting switchover at" in leader.log_path.read_text()
    new_leader, old_leader = healthy(cluster)
    assert (new_leader.name, old_leader.name) == (replica.name, leader.name)


# --------------------------------------------------------------------------- reinitialize

def test_reinitialize_a_replica(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    assert call(leader, "POST", "/reinitialize", {})[:2] == (503, "I am the leader, can not reinitialize")
    with connect(leader) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS before_reinit (id int)")
    # A file only the old copy of the data dir has: a fresh clone from the leader cannot have it.
    marker = Path(replica.data_dir) / "hatui-test-marker"
    marker.write_text("old copy\n")
    started = patroni(replica)["postmaster_start_time"]
    status, text, _ = call(replica, "POST", "/reinitialize", {"force": True})
    assert (status, text) == (200, "reinitialize started")
    # Answered only once the copy is under way: never "running" on the old data right after.
    st = patroni(replica)
    assert st.get("state") != "running" or st.get("postmaster_start_time") != started, st
    assert call(replica, "POST", "/reinitialize", {})[:2] in ((503, "reinitialize already in progress"),
                                                              (200, "reinitialize started"))
    cluster.wait_for(lambda: (patroni(replica).get("postmaster_start_time") or started) != started, 120,
                     "the replica restarted from a fresh copy")
    healthy(cluster)
    assert not marker.exists()
    assert sql_value(replica, "SELECT to_regclass('before_reinit')::text") == "before_reinit"
    assert patroni(replica)["role"] == "replica"


# --------------------------------------------------------------------------- pause / failover

def test_pause_stops_automatic_failover_and_failover_to_candidate_without_leader(cluster: LocalCluster) -> None:
    leader, replica = healthy(cluster)
    status, text, _ = call(leader, "PATCH", "/config", {"pause": True})
    assert status == 200, text
    for node in cluster.nodes:
        cluster.wait_for(lambda n=node: member_key(cluster, n.name).get("pause") is True
                         and patroni(n).get("pause") is True, 20, f"{node.name} paused")
    # Scheduled actions are refused while paused.
    status, text, _ = call(replica, "POST", "/restart", {"schedule": (datetime.now(UTC)
                                                                       + timedelta(hours=1)).isoformat()})
    assert (status, text) == (500, "Can't schedule restart in the paused state")

    # The replica's PostgreSQL dies. Paused: nothing starts it again, until an operator's restart.
    pid = replica.postmaster_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    cluster.wait_for(lambda: patroni(replica).get("state") in ("stopped", "crashed"), 20, "replica seen down")
    time.sleep(4 * FAST["loop_wait"])
    assert replica.postmaster_pid() is None, "PostgreSQL was started while paused"
    assert call(replica, "POST", "/restart", {})[:2] == (200, "restarted successfully")
    cluster.wait_for(lambda: patroni(replica).get("replication_state") == "streaming", 30, "replica streaming")

    # The primary dies. Paused: the lock goes, but nobody restarts, promotes or races.
    pid = leader.postmaster_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/leader")[0] is None, 30, "the lock released")
    time.sleep(6 * FAST["loop_wait"])
    assert leader.postmaster_pid() is None, "PostgreSQL was restarted while paused"
    assert etcd_get(cluster, "/service/batman/leader")[0] is None
    assert sql_value(replica, "SELECT pg_is_in_recovery()") is True
    assert "PAUSE: " in replica.log_path.read_text()

    # A failover to a named candidate is allowed with no leader, paused or not.
    status, text, _ = call(replica, "POST", "/failover", {"candidate": replica.name})
    assert (status, text) == (200, f'Successfully failed over to "{replica.name}"'), text
    cluster.wait_for(lambda: sql_value(replica, "SELECT pg_is_in_recovery()") is False, 30, "candidate promoted")

    # Resume: the old primary is managed again and rejoins as a replica.
    status, text, _ = call(replica, "PATCH", "/config", {"pause": None})
    assert status == 200, text
    assert "pause" not in json.loads(text)
    new_leader, old = healthy(cluster, timeout=180)
    assert (new_leader.name, old.name) == (replica.name, leader.name)
    for node in cluster.nodes:
        cluster.wait_for(lambda n=node: "pause" not in member_key(cluster, n.name), 20, f"{node.name} resumed")
