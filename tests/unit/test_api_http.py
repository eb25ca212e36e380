"""The REST API server over real HTTP(S) on a loopback port.

The backend here is a small in-test object implementing the ApiBackend protocol: these tests check
the HTTP layer (routing, auth, allowlist, TLS, body limits, reply texts), not etcd or PostgreSQL.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import shutil
import socket
import ssl
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hatui.cluster import Cluster
from hatui.daemon.api import ApiBackend, ApiRefusal, ApiServer

USER, PASSWORD = "admin", "s3cret:with:colons"
LSN = 52903928


def make_cluster(config: dict | None = None) -> Cluster:
    cfg = {
        "ttl": 30,
        "loop_wait": 10,
        "retry_timeout": 10,
        "maximum_lag_on_failover": 1048576,
        **(config or {}),
    }
    kvs = [
        ("config", json.dumps(cfg)),
        ("leader", "postgresql1"),
        (
            "members/postgresql1",
            json.dumps(
                {
                    "conn_url": "postgres://127.0.0.1:5433/postgres",
                    "api_url": "http://127.0.0.1:8009/patroni",
                    "state": "running",
                    "role": "primary",
                    "version": "4.1.5",
                    "xlog_location": LSN,
                    "timeline": 26,
                }
            ),
        ),
        (
            "members/postgresql0",
            json.dumps(
                {
                    "conn_url": "postgres://127.0.0.1:5432/postgres",
                    "api_url": "http://127.0.0.1:8008/patroni",
                    "state": "running",
                    "role": "replica",
                    "version": "4.1.5",
                    "xlog_location": LSN,
                    "replay_lsn": LSN,
                    "receive_lsn": LSN,
                    "replication_state": "streaming",
                    "timeline": 26,
                }
            ),
        ),
        ("status", json.dumps({"optime": LSN})),
        (
            "history",
            json.dumps(
                [[25, 50000000, "no recovery target specified", "2026-11-25T19:40:00+00:00", "postgresql1"]]
            ),
        ),
    ]
    return Cluster.from_kvs("batman", [(k, v, i + 1, 0) for i, (k, v) in enumerate(kvs)])


class InTestBackend:
    """Implements ApiBackend with fixed answers and records every call it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.leader = True
        self.dcs = True
        self.view: Cluster | None = make_cluster()
        self.config: tuple[dict, int] | None = ({"ttl": 30, "loop_wait": 10}, 7)
        self.next_run_at = time.monotonic() + 10
        self.fail_with: BaseException | None = None
        self.status = {
            "state": "running",
            "postmaster_start_time": "2026-11-25 19:45:40.417338+00:00",
            "role": "primary",
            "server_version": 150018,
            "xlog": {"location": LSN},
            "timeline": 26,
            "dcs_last_seen": 1795636005,
            "latest_end_lsn": 0,
            "patroni": {"version": "4.1.5", "scope": "batman", "name": "postgresql1"},
        }

    def _record(self, *call):
        self.calls.append(call)
        if self.fail_with is not None:
            raise self.fail_with

    def make_replica(self) -> None:
        self.leader = False
        self.status.update(
            role="replica",
            replication_state="streaming",
            xlog={
                "received_location": LSN,
                "replayed_location": LSN,
                "replayed_timestamp": None,
                "paused": False,
            },
        )
        self.status["patroni"] = {**self.status["patroni"], "name": "postgresql0"}

    # --- ApiBackend ---
    def node_status(self) -> dict:
        if isinstance(self.fail_with, RuntimeError):
            raise self.fail_with
        return dict(self.status)

    def cluster(self):
        return self.view

    def dcs_ok(self) -> bool:
        return self.dcs

    def is_leader(self) -> bool:
        return self.leader

    def next_run(self) -> float:
        return self.next_run_at

    def dynamic_config(self):
        return self.config

    def patch_config(self, patch: dict) -> dict:
        self._record("patch_config", patch)
        return {**(self.config[0] if self.config else {}), **patch}

    def put_config(self, new: dict) -> dict:
        self._record("put_config", new)
        return new

    def request_switchover(self, leader, candidate, scheduled_at, action):
        self._record("request_switchover", leader, candidate, scheduled_at, action)
        if scheduled_at is not None:
            return 202, "Switchover scheduled"
        return 200, f'Successfully {action[:-4]}ed over to "{candidate or "postgresql0"}"'

    def cancel_switchover(self):
        self._record("cancel_switchover")
        return 404, "no switchover is scheduled"

    def request_restart(self, schedule, role, postgres_version, restart_pending, timeout):
        self._record("request_restart", schedule, role, postgres_version, restart_pending, timeout)
        return (202, "Restart scheduled") if schedule else (200, "restarted successfully")

    def cancel_restart(self):
        self._record("cancel_restart")
        return 200, "scheduled restart deleted"

    def request_reload(self):
        self._record("request_reload")
        return 202, "reload scheduled"

    def request_reinitialize(self, force, from_leader):
        self._record("request_reinitialize", force, from_leader)
        return 503, "I am the leader, can not reinitialize"

    def failsafe_heartbeat(self, body):
        self._record("failsafe_heartbeat", body)
        return 200, "Accepted", {"lsn": str(LSN)}


@pytest.fixture
def backend() -> InTestBackend:
    return InTestBackend()


@pytest.fixture
def server(backend):
    srv = ApiServer(backend, listen=("127.0.0.1", 0), auth=(USER, PASSWORD))
    srv.start()
    yield srv
    srv.stop()


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def call(
    srv: ApiServer,
    method: str,
    path: str,
    body: bytes | str | dict | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
):
    """(status, headers, body bytes) of one request."""
    if srv.tls:
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    if isinstance(body, dict):
        body = json.dumps(body)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def raw(srv: ApiServer, request: bytes) -> bytes:
    """Send bytes as they are (for requests http.client will not produce) and read the whole reply."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_backend_implements_the_protocol(backend):
    assert isinstance(backend, ApiBackend)


# --- reads ----------------------------------------------------------------------------------------


def test_get_patroni(server, backend):
    status, headers, body = call(server, "GET", "/patroni")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    data = json.loads(body)
    assert data["role"] == "primary" and data["patroni"]["name"] == "postgresql1"
    assert "latest_end_lsn" not in data


def test_health_codes_on_leader_and_replica(server, backend):
    expected_leader = {
        "/": 200,
        "/primary": 200,
        "/leader": 200,
        "/read-write": 200,
        "/replica": 503,
        "/read-only": 200,
        "/health": 200,
        "/async": 503,
        "/sync": 503,
        "/standby-leader": 503,
        "/liveness": 200,
        "/readiness": 200,
    }
    for path, code in expected_leader.items():
        assert call(server, "GET", path)[0] == code, path
    backend.make_replica()
    expected_replica = {
        "/": 503,
        "/primary": 503,
        "/leader": 503,
        "/read-write": 503,
        "/replica": 200,
        "/read-only": 200,
        "/health": 200,
        "/async": 200,
        "/sync": 503,
        "/standby-leader": 503,
        "/liveness": 200,
        "/readiness": 200,
    }
    for path, code in expected_replica.items():
        assert call(server, "GET", path)[0] == code, path


def test_health_body_is_the_status(server, backend):
    status, _, body = call(server, "GET", "/primary")
    assert status == 200 and json.loads(body)["xlog"] == {"location": LSN}
    backend.make_replica()
    status, _, body = call(server, "GET", "/primary")
    assert status == 503 and json.loads(body)["role"] == "replica"


def test_health_query_parameters(server, backend):
    backend.make_replica()
    backend.status["latest_end_lsn"] = LSN + 4 * 1048576
    backend.status["tags"] = {"zone": "a"}
    assert call(server, "GET", "/replica?lag=1MB")[0] == 503
    assert call(server, "GET", "/replica?lag=8MB")[0] == 200
    assert call(server, "GET", "/replica?lag=8MB&tag_zone=a")[0] == 200
    assert call(server, "GET", "/replica?tag_zone=b")[0] == 503
    assert call(server, "GET", "/replica?replication_state=streaming")[0] == 200
    assert call(server, "GET", "/readiness")[0] == 503  # 4 MB behind > maximum_lag_on_failover
    assert call(server, "GET", "/readiness?lag=8MB")[0] == 200


def test_head_and_options_answer_status_only(server, backend):
    for method in ("HEAD", "OPTIONS"):
        status, _headers, body = call(server, method, "/primary")
        assert (status, body) == (200, b"")
        assert call(server, method, "/replica")[0] == 503
    backend.next_run_at = time.monotonic() - 100  # the HA loop is stuck for longer than ttl
    assert call(server, "OPTIONS", "/liveness")[0] == 503
    assert call(server, "GET", "/liveness")[0] == 503


def test_sync_endpoints_need_etcd(server, backend):
    backend.make_replica()
    assert call(server, "GET", "/async")[0] == 200
    backend.dcs = False
    assert call(server, "GET", "/async")[0] == 503
    assert call(server, "GET", "/replica")[0] == 200


def test_cluster_history_config_failsafe(server, backend):
    status, _, body = call(server, "GET", "/cluster")
    assert status == 200
    data = json.loads(body)
    assert [m["name"] for m in data["members"]] == ["postgresql0", "postgresql1"]
    assert data["members"][1]["role"] == "leader" and data["scope"] == "batman"
    status, _, body = call(server, "GET", "/history")
    assert status == 200 and json.loads(body) == [
        [25, 50000000, "no recovery target specified", "2026-11-25T19:40:00+00:00", "postgresql1"]
    ]
    status, _, body = call(server, "GET", "/config")
    assert status == 200 and json.loads(body) == {"ttl": 30, "loop_wait": 10}
    backend.config = None
    assert call(server, "GET", "/config")[0] == 502
    assert call(server, "GET", "/failsafe")[0] == 502
    backend.view = None
    assert call(server, "GET", "/cluster")[0] == 503


def test_metrics_format(server, backend):
    status, headers, body = call(server, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    lines = body.decode().splitlines()
    samples = {}
    for line in lines:
        if line.startswith("#"):
            assert line.split()[1] in ("HELP", "TYPE")
            continue
        name, _, value = line.partition(" ")
        assert name.endswith('{scope="batman",name="postgresql1"}'), line
        float(value)
        samples[name.split("{")[0]] = value
    assert samples["patroni_version"] == "040105"
    assert samples["patroni_primary"] == "1"
    assert samples["hatui_dcs_reachable"] == "1"
    for name in (
        "patroni_postgres_running",
        "patroni_postmaster_start_time",
        "patroni_replica",
        "patroni_sync_standby",
        "patroni_quorum_standby",
        "patroni_xlog_location",
        "patroni_xlog_received_location",
        "patroni_xlog_replayed_location",
        "patroni_postgres_timeline",
        "patroni_dcs_last_seen",
        "patroni_pending_restart",
        "patroni_is_paused",
    ):
        assert name in samples
    # Patroni 4.1.4: these three exist, and the timeline is a gauge (issue 14).
    text = body.decode()
    assert "# TYPE patroni_postgres_timeline gauge" in text
    assert "# TYPE patroni_failsafe_mode_enabled gauge" in text and "patroni_failsafe_mode_enabled" in samples
    assert "# TYPE patroni_failover_priority gauge" in text and "patroni_failover_priority" in samples
    backend.dcs = False
    assert (
        'hatui_dcs_reachable{scope="batman",name="postgresql1"} 0'
        in call(server, "GET", "/metrics")[2].decode()
    )


def test_unknown_method_and_unsafe_path(server, backend):
    status, _, body = call(server, "FROB", "/")
    assert status == 501
    assert b"<" not in body  # plain text, not the base class's HTML page
    assert call(server, "POST", "/nonsense", {}, basic())[0] == 501
    assert call(server, "PUT", "/switchover", {}, basic())[0] == 501
    assert backend.calls == []


# --- auth -----------------------------------------------------------------------------------------

UNSAFE = [
    ("POST", "/switchover", {"leader": "postgresql1", "candidate": "postgresql0"}),
    ("POST", "/failover", {"candidate": "postgresql0"}),
    ("POST", "/restart", {}),
    ("POST", "/reload", None),
    ("POST", "/reinitialize", {}),
    ("POST", "/failsafe", {"name": "x"}),
    ("PATCH", "/config", {"pause": True}),
    ("PUT", "/config", {"ttl": 30}),
    ("DELETE", "/restart", None),
    ("DELETE", "/switchover", None),
]


@pytest.mark.parametrize("method,path,body", UNSAFE)
def test_unsafe_requests_need_credentials(server, backend, method, path, body, caplog):
    caplog.set_level(logging.WARNING, "hatui.api")
    for headers, reason in [
        ({}, b"no auth header received"),
        (basic(password="wrong"), b"not authenticated"),
        (basic(user="root"), b"not authenticated"),
        ({"Authorization": "Basic !!!not-base64"}, b"not authenticated"),
        ({"Authorization": "Bearer abc"}, b"not authenticated"),
        ({"Authorization": "Basic " + base64.b64encode(USER.encode()).decode()}, b"not authenticated"),
    ]:
        status, resp_headers, text = call(server, method, path, body, headers)
        assert (status, text) == (401, reason)
        assert resp_headers["WWW-Authenticate"] == 'Basic realm="Patroni"'
    assert backend.calls == []
    assert any("refused" in rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING)
    status, _, _ = call(server, method, path, body, basic())
    assert status not in (401, 403, 500)
    assert len(backend.calls) == 1


def test_auth_get(backend):
    with ApiServer(backend, listen=("127.0.0.1", 0), auth=(USER, PASSWORD), auth_get=True) as srv:
        for path in ("/patroni", "/cluster", "/config", "/history", "/metrics"):
            assert call(srv, "GET", path)[0] == 401, path
            assert call(srv, "GET", path, headers=basic("x", "y"))[0] == 401, path
            assert call(srv, "GET", path, headers=basic())[0] == 200, path
        # Health checks stay open for load balancers, but reveal nothing without credentials.
        status, _, body = call(srv, "GET", "/primary")
        assert (status, body) == (200, b"")
        status, _, body = call(srv, "GET", "/primary", headers=basic())
        assert status == 200 and json.loads(body)["role"] == "primary"
        assert call(srv, "GET", "/liveness")[0] == 200


def test_no_auth_configured_lets_unsafe_requests_through(backend):
    with ApiServer(backend, listen=("127.0.0.1", 0)) as srv:
        assert call(srv, "POST", "/reload")[:1] == (202,)
    assert backend.calls == [("request_reload",)]


# --- request bodies -------------------------------------------------------------------------------


def test_malformed_json_is_400(server, backend):
    for body in (
        b'{"leader":',
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"text"',
        b"{}",
        b"NaN",
        b'{"leader": NaN}',
        b"[" * 100000,
    ):
        status, _, text = call(server, "POST", "/switchover", body, basic())
        assert status == 400, body[:20]
        assert text.startswith(b"Invalid JSON")
    status, _, text = call(server, "PATCH", "/config", b"{oops", basic())
    assert (status, text) == (400, b"Invalid JSON")
    assert backend.calls == []


def test_oversized_body_is_413_without_reading_it(server, backend):
    head = (
        f"POST /switchover HTTP/1.1\r\nHost: x\r\nContent-Length: {2 << 20}\r\n"
        f"Authorization: {basic()['Authorization']}\r\n\r\n"
    ).encode()
    reply = raw(server, head)
    assert reply.startswith(b"HTTP/1.0 413 ")
    assert backend.calls == []


def test_body_needs_content_length(server, backend):
    head = f"PATCH /config HTTP/1.0\r\nAuthorization: {basic()['Authorization']}\r\n\r\n".encode()
    assert raw(server, head).startswith(b"HTTP/1.0 411 ")
    chunked = (
        f"PATCH /config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        f"Authorization: {basic()['Authorization']}\r\n\r\n0\r\n\r\n"
    ).encode()
    assert raw(server, chunked).startswith(b"HTTP/1.0 411 ")
    bad = (
        f"PATCH /config HTTP/1.0\r\nContent-Length: -5\r\nAuthorization: {basic()['Authorization']}\r\n\r\n"
    ).encode()
    assert raw(server, bad).startswith(b"HTTP/1.0 400 ")
    # An optional body (restart) may be left out entirely.
    assert raw(
        server, f"POST /restart HTTP/1.0\r\nAuthorization: {basic()['Authorization']}\r\n\r\n".encode()
    ).startswith(b"HTTP/1.0 200 ")
    assert [c[0] for c in backend.calls] == ["request_restart"]


# --- actions --------------------------------------------------------------------------------------


def test_switchover_passes_validated_values(server, backend):
    status, _, text = call(
        server, "POST", "/switchover", {"leader": "postgresql1", "candidate": "postgresql0"}, basic()
    )
    assert (status, text) == (200, b'Successfully switched over to "postgresql0"')
    status, _, text = call(
        server,
        "POST",
        "/switchover",
        {"leader": "postgresql1", "scheduled_at": "2099-01-01T10:00:00+02:00"},
        basic(),
    )
    assert (status, text) == (202, b"Switchover scheduled")
    status, _, text = call(server, "POST", "/failover", {"candidate": "postgresql0"}, basic())
    assert (status, text) == (200, b'Successfully failed over to "postgresql0"')
    when = backend.calls[1][3]
    assert isinstance(when, datetime) and when.utcoffset().total_seconds() == 7200
    assert backend.calls[0] == ("request_switchover", "postgresql1", "postgresql0", None, "switchover")
    assert backend.calls[2] == ("request_switchover", None, "postgresql0", None, "failover")


def test_switchover_validation_is_answered_by_the_api(server, backend):
    cases = [
        (
            "/switchover",
            {"candidate": "postgresql0"},
            400,
            b"Switchover could be performed only from a specific leader",
        ),
        (
            "/failover",
            {"leader": "postgresql1"},
            400,
            b"Failover could be performed only to a specific candidate",
        ),
        ("/switchover", {"leader": "a", "candidate": "a"}, 400, b"Switchover target and source are the same"),
        (
            "/switchover",
            {"leader": "a", "scheduled_at": "2000-01-01T00:00:00+00:00"},
            422,
            b"Cannot schedule switchover in the past",
        ),
        (
            "/switchover",
            {"leader": "a", "scheduled_at": "2099-01-01T00:00:00"},
            400,
            b"Timezone information is mandatory for the scheduled switchover",
        ),
        (
            "/failover",
            {"candidate": "b", "scheduled_at": "2099-01-01T00:00:00+00:00"},
            400,
            b"Failover can't be scheduled",
        ),
    ]
    for path, body, status, text in cases:
        assert call(server, "POST", path, body, basic())[::2] == (status, text), body
    backend.view = make_cluster({"pause": True})
    assert call(
        server, "POST", "/switchover", {"leader": "a", "scheduled_at": "2099-01-01T00:00:00+00:00"}, basic()
    )[::2] == (400, b"Can't schedule switchover in the paused state")
    assert call(server, "POST", "/switchover", {"leader": "a"}, basic())[::2] == (
        400,
        b"Switchover is possible only to a specific candidate in a paused state",
    )
    assert backend.calls == []


def test_restart_and_other_actions(server, backend):
    assert call(server, "POST", "/restart", {"role": "boss"}, basic())[::2] == (
        400,
        b"PostgreSQL role should be either primary, standby_leader, or replica",
    )
    assert backend.calls == []
    status, _, text = call(
        server,
        "POST",
        "/restart",
        {
            "schedule": "2099-01-01T00:00:00+00:00",
            "role": "replica",
            "timeout": "2min",
            "postgres_version": "16.1",
            "restart_pending": True,
        },
        basic(),
    )
    assert (status, text) == (202, b"Restart scheduled")
    name, schedule, role, version, pending, timeout = backend.calls[-1]
    assert (name, role, version, pending, timeout) == ("request_restart", "replica", "16.1", True, 120)
    assert schedule.year == 2099
    assert call(server, "DELETE", "/restart", headers=basic())[::2] == (200, b"scheduled restart deleted")
    assert call(server, "DELETE", "/switchover", headers=basic())[::2] == (404, b"no switchover is scheduled")
    assert call(server, "POST", "/reload", b'{"ignored": true}', basic())[::2] == (202, b"reload scheduled")
    assert call(server, "POST", "/reinitialize", {"force": True, "from_leader": "yes"}, basic())[::2] == (
        503,
        b"I am the leader, can not reinitialize",
    )
    assert backend.calls[-1] == ("request_reinitialize", True, True)
    status, headers, text = call(server, "POST", "/failsafe", {"name": "postgresql1"}, basic())
    assert (status, text, headers["lsn"]) == (200, b"Accepted", str(LSN))


def test_config_writes(server, backend):
    status, _, body = call(server, "PATCH", "/config", {"pause": True}, basic())
    assert status == 200 and json.loads(body) == {"ttl": 30, "loop_wait": 10, "pause": True}
    backend.fail_with = ApiRefusal(409, "Conflict: the config changed since it was read")
    assert call(server, "PATCH", "/config", {"pause": True}, basic())[::2] == (
        409,
        b"Conflict: the config changed since it was read",
    )
    backend.fail_with = None
    status, _, body = call(server, "PUT", "/config", {"ttl": 20}, basic())
    assert status == 200 and json.loads(body) == {"ttl": 20}
    assert [c[0] for c in backend.calls] == ["patch_config", "patch_config", "put_config"]


def test_unexpected_errors_are_a_one_line_500(server, backend, caplog):
    caplog.set_level(logging.ERROR, "hatui.api")
    backend.fail_with = KeyError("boom")
    status, _, text = call(server, "POST", "/reload", None, basic())
    assert status == 500
    assert b"Traceback" not in text and b"\n" not in text.strip()
    assert any(rec.exc_info for rec in caplog.records)
    # A failing status source makes health checks unhealthy, not broken.
    backend.fail_with = RuntimeError("no status")
    assert call(server, "GET", "/primary")[0] == 503
    assert call(server, "GET", "/liveness")[0] == 503
    assert call(server, "GET", "/patroni")[0] == 500


def test_a_client_gone_before_the_reply_is_one_log_line_without_traceback(backend, caplog):
    """Requests queued while the daemon was frozen are answered after it resumes, to clients that
    have given up: the write fails with a broken pipe or a reset. One line each, no traceback."""
    import struct
    import threading

    caplog.set_level(logging.DEBUG, "hatui")
    release = threading.Event()
    answered = threading.Event()
    status = backend.node_status

    def slow_status() -> dict:
        release.wait(10)
        try:
            return status()
        finally:
            answered.set()

    backend.node_status = slow_status
    srv = ApiServer(backend, listen=("127.0.0.1", 0))
    srv.start()
    try:
        host, port = "127.0.0.1", srv.port
        for _ in range(3):
            answered.clear()
            release.clear()
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(b"GET /patroni HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)  # the server thread is now waiting in node_status
            # Close with a reset (linger 0), as a client timing out and exiting would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            release.set()
            assert answered.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum("client closed" in r.getMessage() for r in caplog.records) < 3:
            time.sleep(0.05)
    finally:
        srv.stop()
    closed = [r for r in caplog.records if "client closed the connection before the reply" in r.getMessage()]
    assert len(closed) == 3
    assert not any(r.exc_info for r in caplog.records)
    assert "Traceback" not in caplog.text


# --- allowlist ------------------------------------------------------------------------------------


def test_allowlist_refuses_other_addresses(backend):
    with ApiServer(
        backend, listen=("127.0.0.1", 0), auth=(USER, PASSWORD), allowlist=["10.0.0.0/8", "192.0.2.1"]
    ) as srv:
        assert call(srv, "POST", "/reload", None, basic())[::2] == (403, b"Access is denied")
        assert call(srv, "PATCH", "/config", {"pause": True}, basic())[0] == 403
        assert call(srv, "GET", "/primary")[0] == 200  # reads are not restricted
        assert backend.calls == []
    with ApiServer(backend, listen=("127.0.0.1", 0), auth=(USER, PASSWORD), allowlist=["127.0.0.0/8"]) as srv:
        assert call(srv, "POST", "/reload", None, basic())[0] == 202
    with ApiServer(backend, listen=("127.0.0.1", 0), allowlist=["127.0.0.1"]) as srv:
        assert call(srv, "POST", "/reload")[0] == 202


def test_allowlist_include_members(backend):
    with ApiServer(backend, listen=("127.0.0.1", 0), allowlist_include_members=True) as srv:
        assert call(srv, "POST", "/reload")[0] == 202  # members' api_url hosts are 127.0.0.1
        backend.view = Cluster.from_kvs(
            "batman",
            [
                (
                    "members/far",
                    json.dumps(
                        {
                            "api_url": "http://192.0.2.7:8008/patroni",
                            "conn_url": "postgres://192.0.2.7:5432/postgres",
                        }
                    ),
                    1,
                    0,
                )
            ],
        )
        assert call(srv, "POST", "/reload")[0] == 403
        # A primary in failsafe mode reaches members whatever the member list says.
        assert call(srv, "POST", "/failsafe", {"name": "far"})[0] == 200


# --- TLS ------------------------------------------------------------------------------------------


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls(backend, tmp_path):
    cert, key = make_cert(tmp_path, "server")
    with ApiServer(
        backend, listen=("127.0.0.1", 0), auth=(USER, PASSWORD), certfile=str(cert), keyfile=str(key)
    ) as srv:
        assert srv.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(cert))
        status, _, body = call(srv, "GET", "/patroni", context=ctx)
        assert status == 200 and json.loads(body)["role"] == "primary"
        assert call(srv, "POST", "/reload", None, basic(), context=ctx)[0] == 202
        # A client that does not trust the certificate gets no answer.
        with pytest.raises(ssl.SSLCertVerificationError):
            call(srv, "GET", "/patroni", context=ssl.create_default_context())
        # Plain HTTP to the TLS port gets no HTTP answer either.
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET /patroni HTTP/1.0\r\n\r\n")
            try:
                answer = sock.recv(100)
            except ConnectionResetError:
                answer = b""
            assert not answer.startswith(b"HTTP/")


def test_tls_client_certificates(backend, tmp_path):
    cert, key = make_cert(tmp_path, "server")
    client_cert, client_key = make_cert(tmp_path, "client")
    server_ca = ssl.create_default_context(cafile=str(cert))
    with_cert = ssl.create_default_context(cafile=str(cert))
    with_cert.load_cert_chain(str(client_cert), str(client_key))
    with ApiServer(
        backend,
        listen=("127.0.0.1", 0),
        certfile=str(cert),
        keyfile=str(key),
        cafile=str(client_cert),
        verify_client="required",
    ) as srv:
        assert call(srv, "GET", "/patroni", context=with_cert)[0] == 200
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
            call(srv, "GET", "/patroni", context=server_ca)
    with ApiServer(
        backend,
        listen=("127.0.0.1", 0),
        certfile=str(cert),
        keyfile=str(key),
        cafile=str(client_cert),
        verify_client="optional",
    ) as srv:
        assert call(srv, "GET", "/patroni", context=server_ca)[0] == 200
        assert call(srv, "POST", "/reload", context=server_ca)[::2] == (403, b"client certificate required")
        assert backend.calls == []
        assert call(srv, "POST", "/reload", context=with_cert)[0] == 202


def test_bad_settings_are_refused(backend):
    with pytest.raises(ValueError):
        ApiServer(backend, verify_client="sometimes")
    with pytest.raises(ValueError):
        ApiServer(backend, verify_client="required")  # no certfile
    with pytest.raises(ValueError):
        ApiServer(backend, auth_get=True)  # nothing to check against


def test_stop_closes_the_port(backend):
    srv = ApiServer(backend, listen=("127.0.0.1", 0))
    srv.start()
    port = srv.port
    assert call(srv, "GET", "/health")[0] == 200
    srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# --- arbitrary bodies -----------------------------------------------------------------------------


class CheckingBackend(InTestBackend):
    """Fails the test if the API hands it a request the validation should have refused."""

    def request_switchover(self, leader, candidate, scheduled_at, action):
        assert action in ("switchover", "failover")
        assert leader is None or (isinstance(leader, str) and leader)
        assert candidate is None or (isinstance(candidate, str) and candidate)
        assert leader != candidate
        assert action == "switchover" or (candidate and not leader and scheduled_at is None)
        assert action == "failover" or leader
        assert scheduled_at is None or (
            scheduled_at.tzinfo is not None and scheduled_at > datetime.now(scheduled_at.tzinfo)
        )
        return super().request_switchover(leader, candidate, scheduled_at, action)

    def patch_config(self, patch):
        assert isinstance(patch, dict) and patch
        return super().patch_config(patch)


@pytest.fixture(scope="module")
def checking_server():
    backend = CheckingBackend()
    with ApiServer(backend, listen=("127.0.0.1", 0), auth=(USER, PASSWORD)) as srv:
        yield srv, backend


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
switchover_like = st.fixed_dictionaries(
    {},
    optional={
        "leader": json_like | st.sampled_from(["postgresql1", ""]),
        "candidate": json_like | st.sampled_from(["postgresql0", "postgresql1"]),
        "member": json_like,
        "scheduled_at": json_like
        | st.sampled_from(
            ["2099-01-01T00:00:00+00:00", "2000-01-01T00:00:00Z", "2099-01-01T00:00:00", "not a date"]
        ),
    },
)
bodies = (
    st.binary(max_size=300)
    | json_like.map(lambda v: json.dumps(v).encode())
    | switchover_like.map(lambda v: json.dumps(v).encode())
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=bodies,
    target=st.sampled_from([("POST", "/switchover"), ("POST", "/failover"), ("PATCH", "/config")]),
)
def test_arbitrary_bodies_never_cause_5xx(checking_server, body, target):
    srv, backend = checking_server
    before = len(backend.calls)
    status, _, text = call(srv, target[0], target[1], body, basic())
    assert status < 500, (status, text)
    assert b"Traceback" not in text
    if status >= 400:
        assert len(backend.calls) == before  # refused requests never reach the backend
