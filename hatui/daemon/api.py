"""The node's REST API: Patroni-compatible endpoints, status codes and reply texts.

Load balancers (HAProxy `OPTIONS /primary`), patronictl and other members (`GET /patroni` in the
leader race) talk to this server exactly as they talk to Patroni's. The server owns no state: it asks
an `ApiBackend` (the daemon) for the node's status and the cluster view, validates requests with the
pure rules in `api_rules.py`, and hands only valid requests to the backend.

Security model: unsafe methods (POST/PUT/PATCH/DELETE) pass the allowlist (403), the client-cert check
(403) and Basic auth (401) before their body is even read; health checks stay open so load balancers
work. With `auth_get` the GETs that reveal data (/patroni, /cluster, /config, /history, /metrics,
/failsafe) need credentials too, and a health check without them answers its status code only.

This module is the HTTP plumbing: the server (threads, TLS, allowlist, Basic auth) and the request
handler (routing, replies, access checks, bodies). The endpoints are its mixins, one module per
family: `api_reads` (health checks, probes, /patroni, /cluster, /history, /config, /metrics) and
`api_writes` (config writes, switchover, restart, reload, reinitialize, failsafe). The contract with
the daemon (`ApiBackend`, `ApiRefusal`) lives in `api_contract` and is importable from here.
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
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from .api_contract import ApiBackend, ApiRefusal, _Reply
from .api_reads import DEFAULT_MAX_LAG, DEFAULT_TTL, ReadEndpoints
from .api_writes import WriteEndpoints

__all__ = ["DEFAULT_MAX_LAG", "DEFAULT_TTL", "MAX_BODY", "REQUEST_TIMEOUT", "ApiBackend", "ApiRefusal",
           "ApiServer"]

log = logging.getLogger("hatui.api")

MAX_BODY = 1 << 20  # 1 MiB: the largest legitimate body is a dynamic config
REQUEST_TIMEOUT = 30.0  # seconds a client may take to send its request (or complete TLS)

Network = IPv4Network | IPv6Network


_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}", re.ASCII)


class _Handler(ReadEndpoints, WriteEndpoints, BaseHTTPRequestHandler):
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
        close = getattr(self.backend, "close", None)  # the backend's own resources (a PostgreSQL session)
        if close is not None:
            close()

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
