"""The node's REST API: Patroni-compatible endpoints, status codes and reply texts.

Load balancers (HAProxy `OPTIONS /primary`), patronictl and other members (`GET /patroni` in the
leader race) talk to this server exactly as they talk to Patroni's. The server owns no state: it asks
an `ApiBackend` (the daemon) for the node's status and the cluster view, validates requests with the
pure rules in `api_rules.py`, and hands only valid requests to the backend.

Security model: unsafe methods (POST/PUT/PATCH/DELETE) pass the allowlist (403), the client-cert check
(403) and Basic auth (401) before their body is even read; health checks stay open so load balancers
work. With `auth_get` the GETs that reveal data (/patroni, /cluster, /config, /history, /metrics,
/failsafe) need credentials too, and a health check without them answers its status code only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from ..cluster import Cluster
from . import api_rules as rules

log = logging.getLogger("hatui.api")

MAX_BODY = 1 << 20  # 1 MiB: the largest legitimate body is a dynamic config
REQUEST_TIMEOUT = 30.0  # seconds a client may take to send its request (or complete TLS)
DEFAULT_TTL = 30
DEFAULT_MAX_LAG = 1048576

Network = IPv4Network | IPv6Network


class ApiRefusal(Exception):
    """Raised by a backend to answer a request with `status` and the plain-text `text`."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status} {text}")
        self.status = status
        self.text = text


@runtime_checkable
class ApiBackend(Protocol):
    """What the REST API needs from the daemon. Every call comes from a request thread.

    Methods returning (status, text) give the HTTP status and the plain-text reply; any method may
    raise ApiRefusal(status, text) instead. Other exceptions become a logged 500.
    """

    def node_status(self) -> dict:
        """The GET /patroni dict (Patroni 4.1 keys, see member.patroni_status). May include the
        internal int `latest_end_lsn` (wal receiver), which is used for lag and never sent. Called by
        every health check: keep it cheap (cached values, bounded queries)."""

    def cluster(self) -> Cluster | None:
        """The last cluster view read from etcd, or None if there is none yet."""

    def dcs_ok(self) -> bool:
        """The last etcd access succeeded and is less than ttl old (the view in cluster() is current)."""

    def is_leader(self) -> bool:
        """This node holds the leader lock now: its last successful lock update is less than ttl old."""

    def next_run(self) -> float:
        """time.monotonic() when the next HA cycle is due (last cycle start + loop_wait), for /liveness."""

    def dynamic_config(self) -> tuple[dict, int] | None:
        """(config dict, mod_revision) of the `config` key, None if the key is absent."""

    def patch_config(self, patch: dict) -> dict:
        """Deep-merge `patch` (null deletes; see api_rules.merge_patch), validate, write with CAS and
        return the new config. ApiRefusal: 400 invalid, 409 CAS conflict, 503 no config in DCS."""

    def put_config(self, new: dict) -> dict:
        """Validate and write `new` as the whole config; return it.
        ApiRefusal: 400 invalid, 502 write failed."""

    def request_switchover(self, leader: str | None, candidate: str | None,
                           scheduled_at: datetime | None, action: str) -> tuple[int, str]:
        """Already validated by api_rules.validate_switchover (action "switchover" | "failover";
        scheduled_at tz-aware and in the future). Checks the cluster (412 texts), writes the failover
        key (503 `failed to write failover key into DCS`), then 202 `Switchover scheduled` or waits:
        200 `Successfully switched over to "x"` / 503 `Switchover failed` / `Switchover status unknown`."""

    def cancel_switchover(self) -> tuple[int, str]:
        """200 `scheduled switchover deleted` | 404 `no switchover is scheduled` | 409 on CAS conflict."""

    def request_restart(self, schedule: datetime | None, role: str | None, postgres_version: str | None,
                        restart_pending: bool, timeout: int | None) -> tuple[int, str]:
        """Validated by api_rules.validate_restart. 200 `restarted successfully` | 202 `Restart scheduled`
        | 409 `Another restart is already scheduled` | 503 `restart conditions are not satisfied` ..."""

    def cancel_restart(self) -> tuple[int, str]:
        """200 `scheduled restart deleted` | 404 `no restarts are scheduled`."""

    def request_reload(self) -> tuple[int, str]:
        """202 `reload scheduled`."""

    def request_reinitialize(self, force: bool, from_leader: bool) -> tuple[int, str]:
        """200 `reinitialize started` | 503 `Cluster has no leader, can not reinitialize` | ..."""

    def failsafe_heartbeat(self, body: dict) -> tuple[int, str, dict[str, str]]:
        """A primary's POST /failsafe ({"name","conn_url","api_url","slots"}): (200, "Accepted",
        {"lsn": "<int>"}) on a replica, (500, "Running as a leader", {}) on the leader, (502, ..., {})
        when failsafe_mode is off."""


_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}", re.ASCII)


class _Reply(Exception):
    """Ends request handling with a reply (used from deep inside body parsing)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "hatui"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # one request per connection, as Patroni (HAProxy expects it)
    timeout = REQUEST_TIMEOUT

    # --- method entry points --------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    @property
    def api(self) -> ApiServer:
        return self.server.api

    @property
    def backend(self) -> ApiBackend:
        return self.server.api.backend

    def _dispatch(self, method: str) -> None:
        self._replied = False
        url = urlsplit(self.path)
        self.path_name = url.path.lstrip("/").split("/")[0]
        self.query = parse_qs(url.query)
        try:
            route = self._route(method, self.path_name)
            if route is None:
                self._send_text(501, f"Unsupported method ('{method} /{self.path_name}')")
                return
            handler, unsafe = route
            # A primary in failsafe mode must reach every member even if members are not allowlisted.
            if unsafe and not self._check_access(check_members=self.path_name != "failsafe"):
                return
            handler()
        except _Reply as r:
            self._send_text(r.status, r.text)
        except ApiRefusal as r:
            self._send_text(r.status, r.text)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The client gave up before the reply (e.g. requests queued while the daemon was
            # frozen, answered after it resumed): one line, no traceback, nothing left to send.
            self.close_connection = True
            log.info("REST API: %s %s from %s: client closed the connection before the reply (%s)",
                     method, self.path, self.client_address[0], exc.strerror or type(exc).__name__)
        except Exception:
            log.exception("REST API: %s %s failed", method, self.path)
            if not self._replied:
                self._send_text(500, "Internal error, see the node's log")

    def _route(self, method: str, name: str) -> tuple[Callable[[], None], bool] | None:
        if method == "GET":
            getter = {
                "patroni": self._get_patroni, "cluster": self._get_cluster, "history": self._get_history,
                "config": self._get_config, "metrics": self._get_metrics, "failsafe": self._get_failsafe,
                "liveness": self._get_liveness, "readiness": self._get_readiness,
            }.get(name, self._get_health)
            return getter, False
        if method in ("HEAD", "OPTIONS"):
            probes = {"liveness": self._get_liveness, "readiness": self._get_readiness}
            return probes.get(name, self._head_health), False
        unsafe = {
            ("POST", "switchover"): self._post_switchover, ("POST", "failover"): self._post_failover,
            ("POST", "restart"): self._post_restart, ("POST", "reload"): self._post_reload,
            ("POST", "reinitialize"): self._post_reinitialize, ("POST", "failsafe"): self._post_failsafe,
            ("PATCH", "config"): self._patch_config, ("PUT", "config"): self._put_config,
            ("DELETE", "restart"): self._delete_restart, ("DELETE", "switchover"): self._delete_switchover,
        }.get((method, name))
        return (unsafe, True) if unsafe else None

    # --- replies ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self._replied = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8", headers)

    def _send_json(self, status: int, data: Any) -> None:
        body = json.dumps(data, default=str).encode("utf-8")
        self._send(status, body, "application/json")

    def _send_status_only(self, status: int) -> None:
        # What HAProxy and kubelet probes read: a status line, nothing else worth parsing.
        self._replied = True
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The base class's HTML error pages (bad request line, unknown method) -> one plain line.
        text = message or self.responses.get(code, ("Error",))[0]
        try:
            self.close_connection = True
            self._send_text(code, text)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("REST API: %s %s", self.client_address[0], format % args)

    # --- access control ---------------------------------------------------------------------------
    def _refuse(self, status: int, text: str, headers: dict[str, str] | None = None) -> bool:
        log.warning("REST API: refused %s /%s from %s: %s",
                    self.command, self.path_name, self.client_address[0], text)
        try:
            # Read (and drop) a small body first: closing a socket with unread data resets the
            # connection, and the client could lose the refusal it is meant to read.
            self._drain_body()
        except OSError:
            pass
        self._send_text(status, text, headers)
        return False

    def _check_access(self, check_members: bool = True) -> bool:
        api = self.api
        members = check_members and api.allowlist_include_members
        if api.allowlist is not None or members:  # None: no allowlist configured
            nets = list(api.allowlist or ())
            if members:
                nets += api.member_networks()
            if not _ip_in(self.client_address[0], nets):
                return self._refuse(403, "Access is denied")
        if api.tls and api.verify_client in ("optional", "required"):
            getpeercert = getattr(self.connection, "getpeercert", None)
            if not getpeercert or not getpeercert():
                return self._refuse(403, "client certificate required")
        reason = api.auth_failure(self.headers.get("Authorization"))
        if reason:
            return self._refuse(401, reason, {"WWW-Authenticate": 'Basic realm="Patroni"'})
        return True

    # --- request bodies ---------------------------------------------------------------------------
    def _read_body(self, required: bool) -> Any:
        """The JSON object in the body; {} for an absent optional body. Raises _Reply on anything else."""
        if self.headers.get("Transfer-Encoding"):
            raise _Reply(411, "Content-Length required (chunked bodies are not accepted)")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            if required:
                raise _Reply(411, "Content-Length required")
            return {}
        if not _CONTENT_LENGTH.fullmatch(raw_length.strip()):
            raise _Reply(400, "Invalid Content-Length")
        length = int(raw_length)
        if length > self.api.max_body:
            self.close_connection = True
            raise _Reply(413, f"Request body too large (limit {self.api.max_body} bytes)")
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            raise _Reply(400, "Incomplete request body")
        if not data.strip():
            if required:
                raise _Reply(400, "Invalid JSON: empty body")
            return {}
        try:
            obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _Reply(400, "Invalid JSON") from None
        if not isinstance(obj, dict):
            raise _Reply(400, "Invalid JSON: expected an object")
        if required and not obj:
            raise _Reply(400, "Invalid JSON: empty object")
        return obj

    def _drain_body(self) -> None:
        # Endpoints that ignore their body still read it, so closing the socket does not reset the reply.
        raw_length = (self.headers.get("Content-Length") or "").strip()
        if _CONTENT_LENGTH.fullmatch(raw_length) and 0 < int(raw_length) <= self.api.max_body:
            self.rfile.read(int(raw_length))

    # --- views ------------------------------------------------------------------------------------
    def _current_cluster(self) -> Cluster | None:
        """The cluster view for health checks: None when it is not current (etcd unreachable)."""
        return self.backend.cluster() if self.backend.dcs_ok() else None

    def _node_view(self) -> rules.NodeView:
        return rules.NodeView(self.backend.node_status(), self._current_cluster(), self.backend.is_leader())

    def _authorized_get(self) -> bool:
        return not self.api.auth_get or self.api.auth_failure(self.headers.get("Authorization")) is None

    def _require_get_auth(self) -> bool:
        if self._authorized_get():
            return True
        reason = self.api.auth_failure(self.headers.get("Authorization")) or "not authenticated"
        return self._refuse(401, reason, {"WWW-Authenticate": 'Basic realm="Patroni"'})

    # --- GET --------------------------------------------------------------------------------------
    def _health(self) -> tuple[int, rules.NodeView | None]:
        try:
            view = self._node_view()
        except Exception:
            log.exception("REST API: node status unavailable for %s", self.path)
            return 503, None
        return rules.health_code(self.path_name, view, self.query), view

    def _get_health(self) -> None:
        code, view = self._health()
        if view is None:
            self._send_text(code, "node status unavailable")
        elif not self._authorized_get():
            self._send_status_only(code)
        else:
            self._send_json(code, rules.public_status(view.status, view.cluster))

    def _head_health(self) -> None:
        self._send_status_only(self._health()[0])

    def _get_liveness(self) -> None:
        try:
            status = self.backend.node_status()
            cluster = self.backend.cluster()
            paused = bool(status.get("pause")) or bool(cluster and cluster.is_paused)
            ttl = cluster.config.ttl if cluster is not None and cluster.config is not None else DEFAULT_TTL
            code = rules.liveness_code(status, paused, ttl, self.backend.next_run(), time.monotonic())
        except Exception:
            log.exception("REST API: liveness check failed")
            code = 503
        self._send_status_only(code)

    def _get_readiness(self) -> None:
        try:
            view = self._node_view()
            cluster = view.cluster or self.backend.cluster()
            max_lag = (cluster.config.maximum_lag_on_failover
                       if cluster is not None and cluster.config is not None else DEFAULT_MAX_LAG)
            reason = rules.readiness_failure(view, self.query, max_lag)
        except Exception:
            log.exception("REST API: readiness check failed")
            reason = "node status unavailable"
        if reason:
            log.debug("Readiness check failure: %s", reason)
        self._send_status_only(503 if reason else 200)

    def _get_patroni(self) -> None:
        if self._require_get_auth():
            status = self.backend.node_status()
            self._send_json(200, rules.public_status(status, self._current_cluster()))

    def _any_cluster(self) -> Cluster:
        cluster = self.backend.cluster()
        if cluster is None:
            raise _Reply(503, "DCS is not accessible")
        return cluster

    def _get_cluster(self) -> None:
        if self._require_get_auth():
            self._send_json(200, rules.cluster_as_json(self._any_cluster()))

    def _get_history(self) -> None:
        if self._require_get_auth():
            history = self._any_cluster().history
            self._send_json(200, [e.as_list() for e in history.entries] if history else [])

    def _get_config(self) -> None:
        if self._require_get_auth():
            found = self.backend.dynamic_config()
            if found is None:
                self._send_text(502, "no configuration in the DCS")
            else:
                self._send_json(200, found[0])

    def _get_failsafe(self) -> None:
        if self._require_get_auth():
            cluster = self.backend.cluster()
            failsafe = cluster.failsafe if cluster is not None else None
            if failsafe is not None:
                self._send_json(200, dict(failsafe))
            else:
                self._send_text(502, "failsafe mode is not enabled")

    def _get_metrics(self) -> None:
        if self._require_get_auth():
            status = self.backend.node_status()
            text = rules.metrics_text(status, self._current_cluster(), self.backend.dcs_ok())
            extra = getattr(self.backend, "extra_metrics", None)  # hatui's own counters (decisions.py)
            if extra is not None:
                text += extra()
            self._send(200, text.encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")

    # --- config writes ----------------------------------------------------------------------------
    def _patch_config(self) -> None:
        patch = self._read_body(required=True)
        self._send_json(200, self.backend.patch_config(patch))

    def _put_config(self) -> None:
        new = self._read_body(required=True)
        self._send_json(200, self.backend.put_config(new))

    # --- actions ----------------------------------------------------------------------------------
    def _paused(self) -> bool:
        cluster = self.backend.cluster()
        return bool(cluster is not None and cluster.is_paused)

    def _post_switchover(self, action: str = "switchover") -> None:
        body = self._read_body(required=True)
        log.info("received %s request with leader=%r candidate=%r scheduled_at=%r", action,
                 body.get("leader"), body.get("candidate") or body.get("member"), body.get("scheduled_at"))
        req = rules.validate_switchover(body, action, self._paused(), datetime.now(UTC))
        if isinstance(req, rules.Refusal):
            raise _Reply(req.status, req.text)
        self._send_text(*self.backend.request_switchover(req.leader, req.candidate, req.scheduled_at,
                                                         req.action))

    def _post_failover(self) -> None:
        self._post_switchover("failover")

    def _delete_switchover(self) -> None:
        self._drain_body()
        self._send_text(*self.backend.cancel_switchover())

    def _post_restart(self) -> None:
        body = self._read_body(required=False)
        if body:
            log.debug("received restart request: %r", body)
        req = rules.validate_restart(body, self._paused(), datetime.now(UTC))
        if isinstance(req, rules.Refusal):
            raise _Reply(req.status, req.text)
        self._send_text(*self.backend.request_restart(
            schedule=req.schedule, role=req.role, postgres_version=req.postgres_version,
            restart_pending=req.restart_pending, timeout=req.timeout))

    def _delete_restart(self) -> None:
        self._drain_body()
        self._send_text(*self.backend.cancel_restart())

    def _post_reload(self) -> None:
        self._drain_body()
        self._send_text(*self.backend.request_reload())

    def _post_reinitialize(self) -> None:
        body = self._read_body(required=False)
        if body:
            log.debug("received reinitialize request: %r", body)
        force, from_leader = rules.parse_reinitialize(body)
        self._send_text(*self.backend.request_reinitialize(force, from_leader))

    def _post_failsafe(self) -> None:
        body = self._read_body(required=True)
        status, text, headers = self.backend.failsafe_heartbeat(body)
        self._send_text(status, text, headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _ip_in(address: str, nets: Iterable[Network]) -> bool:
    try:
        ip = ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    candidates = [ip] + ([mapped] if mapped is not None else [])
    return any(c in net for c in candidates for net in nets if c.version == net.version)


def _resolve(host: str) -> list[Network]:
    """IP networks for an allowlist entry: a CIDR, an address, or a host name (resolved now)."""
    try:
        return [ip_network(host, strict=False)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
    except OSError as exc:
        log.error("REST API: cannot resolve %r for the allowlist: %s", host, exc)
        return []
    return sorted({ip_network(info[4][0].split("%", 1)[0]) for info in infos}, key=str)


def _poke(address: tuple) -> None:
    """Wake a serve_forever() loop blocked in select, so it sees the shutdown request now."""
    try:
        socket.create_connection(address[:2], timeout=1).close()
    except OSError:
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a switchover request that polls for 20 s
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], api: ApiServer, family: int) -> None:
        self.address_family = family
        self.api = api
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves our own name with getfqdn(), which can hang for seconds
        # on a host without working reverse DNS; nothing here needs that name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the request's own thread, so a slow TLS handshake never stalls the accept loop.
        ctx = self.api.ssl_context
        if ctx is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(REQUEST_TIMEOUT)
        try:
            tls = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.warning("REST API: TLS handshake with %s failed: %s", client_address[0], exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Usually a client that went away mid-reply; the traceback only helps when debugging.
        log.warning("REST API: connection from %s failed", client_address[0],
                    exc_info=log.isEnabledFor(logging.DEBUG))


class ApiServer:
    """The REST API server of one node; `start()` serves from a background thread, `stop()` ends it."""

    def __init__(
        self,
        backend: ApiBackend,
        listen: tuple[str, int] = ("127.0.0.1", 8008),
        auth: tuple[str, str] | None = None,
        auth_get: bool = False,
        certfile: str | None = None,
        keyfile: str | None = None,
        cafile: str | None = None,
        verify_client: str | None = None,
        allowlist: list[str] | None = None,
        allowlist_include_members: bool = False,
        max_body: int = MAX_BODY,
    ) -> None:
        if verify_client not in (None, "none", "optional", "required"):
            raise ValueError(f"verify_client must be none, optional or required, not {verify_client!r}")
        if verify_client in ("optional", "required") and not certfile:
            raise ValueError("verify_client needs certfile (client certificates only exist over TLS)")
        if auth_get and not auth:
            raise ValueError("auth_get needs auth (a username and a password)")
        self.backend = backend
        self.listen = listen
        self.auth_get = auth_get
        self.verify_client = verify_client if verify_client != "none" else None
        # None: no restriction. A configured list that resolves to nothing denies everyone (fail closed).
        self.allowlist: list[Network] | None = None
        if allowlist:
            self.allowlist = [net for entry in allowlist for net in _resolve(str(entry))]
        self.allowlist_include_members = allowlist_include_members
        self.max_body = max_body
        self._auth: tuple[bytes, bytes] | None = None
        if auth is not None:
            self._auth = (auth[0].encode("utf-8"), auth[1].encode("utf-8"))
        self.ssl_context = self._make_ssl_context(certfile, keyfile, cafile) if certfile else None
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def _make_ssl_context(self, certfile: str, keyfile: str | None, cafile: str | None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(certfile=certfile, keyfile=keyfile)
        if self.verify_client:
            if cafile:
                ctx.load_verify_locations(cafile=cafile)
            else:
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
            ctx.verify_mode = ssl.CERT_REQUIRED if self.verify_client == "required" else ssl.CERT_OPTIONAL
        return ctx

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    # --- credentials ------------------------------------------------------------------------------
    def auth_failure(self, header: str | None) -> str | None:
        """None when the Authorization header carries the configured credentials, else the 401 text."""
        if self._auth is None:
            return None
        if header is None:
            return "no auth header received"
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return "not authenticated"
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return "not authenticated"
        user, sep, password = decoded.partition(b":")
        # Compare both parts, always, in constant time: no early exit that leaks which one was wrong.
        user_ok = hmac.compare_digest(user, self._auth[0])
        password_ok = hmac.compare_digest(password, self._auth[1])
        return None if sep and user_ok and password_ok else "not authenticated"

    def member_networks(self) -> list[Network]:
        """Addresses of the members' REST APIs (allowlist_include_members), from the cluster view."""
        cluster = self.backend.cluster()
        nets: list[Network] = []
        for member in cluster.members if cluster is not None else ():
            try:
                host = urlsplit(member.api_url or "").hostname
            except ValueError:
                host = None
            if host:
                nets += _resolve(host)
        return nets

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the REST API server is already running")
        host, port = self.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._server = _HttpServer((host, port), self, family)
        except OSError as exc:
            log.error("REST API cannot listen on %s:%s: %s (check restapi.listen)", host, port, exc)
            raise
        # An idle server wakes once per poll_interval; stop() wakes it at once with a connection.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 5.0},
                                        name="hatui-rest-api", daemon=True)
        self._thread.start()
        log.info("REST API listening on %s", self.url)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        threading.Timer(0.05, _poke, (server.server_address,)).start()  # shutdown() waits for the loop
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the REST API server is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self.listen[0]
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
