"""GET /patroni and the health checks answer from PostgreSQL as it is now, against REAL servers.

A private etcd and two `hatui daemon` nodes with loop_wait 10 (hatui.launcher.LocalCluster). The
HA loop then observes PostgreSQL once every 10 s; what the REST API shows of WAL positions must
not be that observation but what PostgreSQL says when the request comes, as in Patroni
(patroni/api.py get_postgresql_status). Values are asserted, never durations: each REST answer is
read right after PostgreSQL itself showed a position, and must not be older than that position.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from servers import make_tempdir, print_logs, remove_tree

from hatui.launcher import LocalCluster, LocalNode

pytestmark = pytest.mark.integration

# Patroni's defaults: a loop every 10 s, so a status taken from the last loop is visibly old.
DCS = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}
MB = 1048576


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    base = make_tempdir("hatui-live-status-")
    c = LocalCluster(base, 2, dcs=dict(DCS))
    failed = False
    try:
        c.start()
        c.wait_for(lambda: c.leader() is not None, 120, "a leader")
        for node in c.nodes:
            if node.name != c.leader():
                c.wait_for(node.is_streaming, 180, f"{node.name} streaming")
        with _leader(c).connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS live_status (id serial PRIMARY KEY, at timestamptz)")
        yield c
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            print_logs(c.nodes, 80)
        c.stop()
        remove_tree(base)


@pytest.fixture(autouse=True)
def _logs_on_failure(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    rep = getattr(request.node, "_hatui_rep_call", None)
    if rep is not None and rep.failed:
        print_logs(cluster.nodes, 80)


def _leader(c: LocalCluster) -> LocalNode:
    name = c.wait_for(c.leader, 60, "a leader")
    return c.node(name)


def _replica(c: LocalCluster) -> LocalNode:
    leader = _leader(c)
    return next(n for n in c.nodes if n.name != leader.name)


def _one(node: LocalNode, query: str) -> object:
    with node.connect() as conn:
        return conn.execute(query).fetchone()[0]


def _move_wal(leader: LocalNode) -> int:
    """Two WAL switches and an insert on the leader; its flush LSN after them (bytes)."""
    with leader.connect() as conn:
        for _ in range(2):
            conn.execute("INSERT INTO live_status (at) VALUES (now())")
            conn.execute("SELECT pg_switch_wal()")
        conn.execute("INSERT INTO live_status (at) VALUES (now())")
        return conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint").fetchone()[0]


def _restapi_sessions(node: LocalNode) -> list[tuple]:
    with node.connect() as conn:
        return conn.execute("SELECT pid, backend_start FROM pg_stat_activity "
                            "WHERE application_name = 'hatui restapi'").fetchall()


def test_positions_are_read_from_postgresql_when_asked(cluster: LocalCluster) -> None:
    leader, replica = _leader(cluster), _replica(cluster)
    before = replica.patroni()["xlog"]["replayed_location"]
    lsn = _move_wal(leader)
    assert lsn > before + 16 * MB  # two segments: the loop's last view is at least that far behind

    # The leader: its location right after the insert, not the one of its last loop. Its
    # replication list is live too: wait until its WAL sender shows (seen missing once for a
    # replica that said it streamed a moment before, on a machine with load 10).
    status = cluster.wait_for(lambda: (lambda s: s if s.get("replication") else None)(leader.patroni()), 30,
                              f"{leader.name} listing its WAL sender")
    assert status["role"] == "primary" and status["state"] == "running"
    assert status["xlog"]["location"] >= lsn, status
    assert [r["application_name"] for r in status["replication"]] == [replica.name], status
    assert status["replication"][0]["state"] == "streaming"

    # The replica: once PostgreSQL says it replayed past the leader's LSN, so does its REST API.
    cluster.wait_for(lambda: _one(replica, "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")
                     >= lsn, 60, f"{replica.name} to replay past {lsn}", interval=0.05)
    status = replica.patroni()
    assert status["role"] == "replica" and status["state"] == "running", status
    assert status["xlog"]["replayed_location"] >= lsn, status
    assert status["xlog"]["received_location"] >= status["xlog"]["replayed_location"], status
    assert status["xlog"]["paused"] is False
    assert status["replication_state"] == "streaming"
    assert status["timeline"] == leader.patroni()["timeline"]
    assert "latest_end_lsn" not in status  # internal: used for lag, never sent

    # The health checks look at the same live positions.
    assert replica.rest("/replica?lag=1MB")[0] == 200
    assert replica.rest("/read-only")[0] == 200
    assert replica.rest("/health")[0] == 200
    code, text = replica.rest("/metrics")
    assert code == 200
    line = next(x for x in text.splitlines() if x.startswith("patroni_xlog_replayed_location{"))
    assert int(float(line.rsplit(" ", 1)[1])) >= lsn, line


def test_one_session_opened_at_the_first_request_and_kept(cluster: LocalCluster) -> None:
    replica = _replica(cluster)
    replica.patroni()
    first = _restapi_sessions(replica)
    assert len(first) == 1, first
    for path in ("/patroni", "/replica?lag=1MB", "/health", "/metrics"):
        replica.rest(path)
    assert _restapi_sessions(replica) == first


def test_postgresql_stopped_answers_state_and_role_only(cluster: LocalCluster) -> None:
    leader, replica = _leader(cluster), _replica(cluster)
    assert replica.patroni()["xlog"]  # the API's session to it is open
    # Paused, the daemon leaves a stopped PostgreSQL stopped (no automatic start).
    assert _patch(leader, {"pause": True})[0] == 200
    cluster.wait_for(lambda: replica.patroni().get("pause") is True, 60, f"{replica.name} to see the pause")
    pid = replica.postmaster_pid()
    assert pid
    os.kill(pid, signal.SIGINT)  # fast shutdown of the server this test's cluster started
    cluster.wait_for(lambda: replica.postmaster_pid() is None, 60, f"{replica.name}'s PostgreSQL to stop")

    # Patroni: no query answer -> state and role only; "unknown" while the loop still thinks it runs.
    status = replica.patroni()
    assert status["state"] in ("unknown", "stopped"), status
    assert status["role"] == "replica", status
    for key in ("xlog", "timeline", "postmaster_start_time", "server_version", "replication_state"):
        assert key not in status, (key, status)
    assert status["pause"] is True and status["patroni"]["name"] == replica.name
    for path in ("/health", "/replica", "/read-only", "/replica?lag=1MB"):
        assert replica.rest(path)[0] == 503, path
    assert leader.rest("/primary")[0] == 200

    # Resumed, the daemon starts it again; the API's broken session is replaced on the next request.
    assert _patch(leader, {"pause": None})[0] == 200
    # The server answers queries a moment before the loop has seen it start ("starting" until then).
    cluster.wait_for(lambda: (lambda s: s.get("xlog") and s.get("state") == "running")(replica.patroni()), 120,
                     f"{replica.name} running and answering with positions again")
    status = replica.patroni()
    assert status["state"] == "running" and status["xlog"]["replayed_location"] > 0, status
    assert len(_restapi_sessions(replica)) == 1


def _patch(node: LocalNode, body: dict) -> tuple[int, str]:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(node.api_url + "/config", data=json.dumps(body).encode(), method="PATCH",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_terminated_session_is_replaced_by_the_next_request(cluster: LocalCluster) -> None:
    replica = _replica(cluster)
    replica.patroni()
    with replica.connect() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hatui restapi'")
    cluster.wait_for(lambda: not _restapi_sessions(replica), 10, "the API session to end")
    status = replica.patroni()  # the kept session is dead: a new one, in this same request
    assert status["state"] == "running" and status["xlog"]["replayed_location"] > 0, status
    assert len(_restapi_sessions(replica)) == 1


def test_a_standby_neither_streaming_nor_restoring_says_no_replication_state(cluster: LocalCluster) -> None:
    """Patroni's rule (replication_state_from_parameters): "in archive recovery" only when the standby
    has a restore_command. These have none, so with the leader's server stopped the replica says
    nothing, in its member key (the loop) as in GET /patroni (live), and `list` shows it running."""
    import json

    leader, replica = _leader(cluster), _replica(cluster)
    key = f"/service/batman/members/{replica.name}"
    assert _patch(leader, {"pause": True})[0] == 200
    cluster.wait_for(lambda: replica.patroni().get("pause") is True, 60, f"{replica.name} to see the pause")
    pid = leader.postmaster_pid()
    assert pid
    os.kill(pid, signal.SIGINT)  # fast shutdown of the leader's server, started by this test's cluster
    try:
        cluster.wait_for(lambda: leader.postmaster_pid() is None, 60, f"{leader.name}'s PostgreSQL to stop")
        cluster.wait_for(lambda: "replication_state" not in replica.patroni(), 60,
                         f"{replica.name}'s REST answer to drop replication_state")
        member = cluster.wait_for(
            lambda: (lambda d: d if d and "replication_state" not in d else None)(
                json.loads(cluster.etcd_get(key) or "null")), 60,
            f"{replica.name}'s member key to drop replication_state")
        assert member["state"] == "running" and member["role"] == "replica", member
        assert replica.patroni()["state"] == "running"
    finally:
        assert _patch(leader, {"pause": None})[0] == 200
    # Resumed with no leader key and the old leader's server down: the replica takes over (as
    # Patroni's would) and the old leader rejoins as its replica. Wait for that settled state.
    # (Asked of PostgreSQL itself: a daemon's /cluster answer may still name the old leader.)
    def settled() -> LocalNode | None:
        writable = [n for n in cluster.nodes if n.is_writable()]
        if len(writable) != 1:
            return None
        other = next(n for n in cluster.nodes if n is not writable[0])
        return other if other.is_streaming() else None
    follower = cluster.wait_for(settled, 180, "one writable node and the other streaming")
    cluster.wait_for(
        lambda: (lambda d: d if d and d.get("replication_state") == "streaming" else None)(
            json.loads(cluster.etcd_get(f"/service/batman/members/{follower.name}") or "null")), 60,
        f"{follower.name}'s member key: streaming")
