"""etcd v3 through its JSON gateway (`POST /v3/kv/...`): key-value calls and transactions.

Patroni itself talks to etcd v3 through this same gateway, so it is a supported, stable
interface, and it needs no gRPC (grpc and the etcd3 package cost about 0.25 s to import, more
than a whole `hatui list` may take, and 20 MB in a resident daemon). `EtcdHttp` implements the
key-value and transaction half of `store.Etcd` (everything `ClusterStore` and the cluster reads
need); `gateway.EtcdGateway` adds leases and watches.

Key paths are not known here: callers pass keys built by `store.KeyPaths`.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

from .store import DCSError, Etcd

# Oldest API prefix first is wrong: etcd >= 3.4 serves /v3, 3.3 /v3beta, 3.2 /v3alpha.
_API_PREFIXES = ("/v3", "/v3beta", "/v3alpha")

# Idle connections kept per endpoint: the daemon's HA loop, a REST request and a watch being
# opened may each hold one at once; more than that is a burst, not worth keeping open.
_MAX_IDLE = 2


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _range_end(prefix: str) -> str:
    """The key just past every key starting with prefix (etcd's prefix range convention)."""
    raw = bytearray(prefix.encode())
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return _b64(bytes(raw[: i + 1]))
    return _b64(b"\0")


class _GatewayError(Exception):
    """etcd answered, with an error (the request reached it, so rotating endpoints won't help)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EtcdHttp(Etcd):
    """Key-value and transaction calls over HTTP(S) to one or more etcd endpoints."""

    def __init__(
        self,
        hosts: list[str] | str,
        *,
        timeout: float = 3.0,
        protocol: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        verify: bool = True,
    ) -> None:
        super().__init__(hosts, timeout=timeout, username=username, password=password,
                         ca_cert=ca_cert, cert=cert, key=key)
        raw_hosts = hosts.split(",") if isinstance(hosts, str) else list(hosts)
        schemes = {urlsplit(h.strip()).scheme for h in raw_hosts if "://" in h}
        if protocol:
            self.scheme = protocol
        elif "https" in schemes or ca_cert or cert:
            self.scheme = "https"
        else:
            self.scheme = "http"
        self._username = username
        self._password = password
        self._token: str | None = None
        self._prefix: str | None = None
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[int, list[_Connection]] = {}  # endpoint index -> kept-alive connections
        self._pool_lock = threading.Lock()
        self._tls_sessions: dict[int, ssl.SSLSession] = {}
        self.connections_opened = 0  # TCP connections made so far (tests and benchmarks read it)
        if self.scheme == "https":
            import ssl

            ctx = ssl.create_default_context(cafile=ca_cert)
            if cert:
                ctx.load_cert_chain(cert, key)
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx

    # --- transport ---------------------------------------------------------------------------
    # HTTP/1.1 connections are kept open and reused (Patroni's urllib3 pool does the same): a new
    # TCP (or TLS) connection per request was most of an idle daemon's etcd cost. Every call is
    # still bounded by `self.timeout` per socket operation, read at each call (the daemon shortens
    # it for reads that must end before the lease does).

    def _connect(self, index: int, timeout: float) -> _Connection:
        host, port = self.endpoints[index]
        sock = socket.create_connection((host, port), timeout=timeout)
        if self._ssl is not None:
            try:
                # Resume the endpoint's last TLS session when the server allows it: a reconnect
                # then skips the certificate exchange.
                sock = self._ssl.wrap_socket(sock, server_hostname=host, session=self._tls_sessions.get(index))
            except OSError:
                sock.close()
                raise
        with self._pool_lock:
            self.connections_opened += 1
        return _Connection(sock)

    def _checkout(self, index: int) -> _Connection | None:
        """An idle kept-alive connection to the endpoint that the server has not closed, or None."""
        while True:
            with self._pool_lock:
                idle = self._idle.get(index)
                conn = idle.pop() if idle else None
            if conn is None or not conn.dropped():
                return conn
            conn.close()  # etcd closed it while idle (restart, its idle timeout): never reuse it

    def _checkin(self, index: int, conn: _Connection) -> None:
        if self._ssl is not None:
            session = getattr(conn.sock, "session", None)
            if session is not None:
                self._tls_sessions[index] = session
        with self._pool_lock:
            idle = self._idle.setdefault(index, [])
            if not self._closed and len(idle) < _MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def _drop_idle(self, index: int | None = None) -> None:
        """Close kept connections (to one endpoint, or all): after a failure they are suspect."""
        with self._pool_lock:
            if index is None:
                conns = [c for idle in self._idle.values() for c in idle]
                self._idle.clear()
            else:
                conns = self._idle.pop(index, [])
        for conn in conns:
            conn.close()

    def close(self) -> None:
        super().close()
        self._drop_idle()

    def _post_once(self, index: int, path: str, body: dict) -> dict:
        host, port = self.endpoints[index]
        payload = json.dumps(body).encode()
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
                f"Content-Length: {len(payload)}"]
        if self._token:
            head.append(f"Authorization: {self._token}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
        timeout = self.timeout
        started = time.monotonic()
        conn = self._checkout(index)
        reused = conn is not None
        if conn is None:
            conn = self._connect(index, timeout)
        while True:
            try:
                status, reason, data, keep = conn.exchange(request, timeout)
                break
            except OSError as exc:
                conn.close()
                # A kept connection the server closed just as we sent (etcd restarted, or its idle
                # timeout) fails before any answer: the request never ran, so send it once more on
                # a new connection, within what is left of this call's timeout (never longer than
                # a call on a fresh connection could take).
                left = timeout - (time.monotonic() - started)
                if not (reused and conn.unanswered and _dropped_by_peer(exc) and left > 0.05):
                    raise
                reused = False
                timeout = left
                conn = self._connect(index, timeout)
        if keep:
            self._checkin(index, conn)
        else:
            conn.close()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {}
        if status != 200:
            message = (parsed.get("message") or parsed.get("error")) if isinstance(parsed, dict) else None
            raise _GatewayError(status, message or f"HTTP {status} {reason}")
        return parsed if isinstance(parsed, dict) else {}

    def _authenticate(self, index: int, prefix: str) -> None:
        self._token = None
        result = self._post_once(index, f"{prefix}/auth/authenticate",
                                 {"name": self._username, "password": self._password or ""})
        self._token = result.get("token")

    def _post(self, index: int, api: str, body: dict) -> dict:
        # The API prefix is found on the first real request (404 -> try the older prefix), which
        # saves the extra round trip of asking /version first.
        prefixes = [self._prefix] if self._prefix else list(_API_PREFIXES)
        for i, prefix in enumerate(prefixes):
            try:
                if self._username and self._token is None:
                    self._authenticate(index, prefix)
                try:
                    result = self._post_once(index, f"{prefix}{api}", body)
                except _GatewayError as exc:
                    # An expired token shows up as 401 or an "invalid auth token": log in again once.
                    if not (self._username and (exc.status == 401 or "token" in exc.message.lower())):
                        raise
                    self._authenticate(index, prefix)
                    result = self._post_once(index, f"{prefix}{api}", body)
            except _GatewayError as exc:
                if exc.status == 404 and exc.message.startswith("etcdserver:"):
                    # etcd's own answer (e.g. "requested lease not found" for a put on a revoked
                    # lease): the API is there, the request is what failed.
                    self._prefix = prefix
                    raise
                if exc.status == 404 and i + 1 < len(prefixes):
                    continue
                if exc.status == 404:
                    raise _GatewayError(404, "no etcd v3 JSON API found (is this an etcd >= 3.2 client port?)") from exc
                raise
            self._prefix = prefix
            return result
        raise AssertionError("unreachable")

    def _endpoint_name(self, index: int) -> str:
        host, port = self.endpoints[index]
        return f"{host}:{port}"

    def request(self, api: str, body: dict, what: str = "request") -> dict:
        """POST body to `<prefix><api>` on the first endpoint that answers."""
        if self._closed:
            raise DCSError("etcd client closed")
        errors = []
        n = len(self.endpoints)
        start = self._current
        for i in range(n):
            index = (start + i) % n
            try:
                result = self._post(index, api, body)
                self._current = index
                return result
            except _GatewayError as exc:
                raise DCSError(f"etcd at {self._endpoint_name(index)} refused the {what}: {exc.message}") from exc
            except OSError as exc:
                self._drop_idle(index)
                errors.append(f"{self._endpoint_name(index)} ({_describe_network(exc)})")
                self._prefix = None if n > 1 else self._prefix
        raise DCSError(f"etcd is not reachable at {', '.join(errors)}")

    # --- Etcd's key-value surface ------------------------------------------------------------
    @staticmethod
    def _kvs(result: dict) -> list[tuple[str, bytes, int, int]]:
        rows = []
        for kv in result.get("kvs") or []:
            rows.append((_unb64(kv.get("key")).decode("utf-8", "replace"), _unb64(kv.get("value")),
                         int(kv.get("mod_revision") or 0), int(kv.get("lease") or 0)))
        return rows

    @staticmethod
    def _revision(result: dict) -> int:
        return int((result.get("header") or {}).get("revision") or 0)

    def get_prefix(self, prefix: str) -> tuple[list[tuple[str, bytes, int, int]], int]:
        # Linearizable (serializable: false), as patronictl reads: never a stale follower's view.
        result = self.request("/kv/range", {"key": _b64(prefix), "range_end": _range_end(prefix)}, "read")
        return self._kvs(result), self._revision(result)

    def get(self, key: str) -> tuple[bytes | None, int]:
        rows = self._kvs(self.request("/kv/range", {"key": _b64(key)}, "read"))
        if not rows:
            return None, 0
        return rows[0][1], rows[0][2]

    @staticmethod
    def _put_op(key: str, value: str, lease: int | None) -> dict:
        op: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            op["lease"] = str(lease)
        return op

    def put(self, key: str, value: str, lease: int | None = None) -> None:
        self.request("/kv/put", self._put_op(key, value, lease), "write")

    def delete(self, key: str) -> bool:
        result = self.request("/kv/deleterange", {"key": _b64(key)}, "delete")
        return int(result.get("deleted") or 0) > 0

    def delete_prefix(self, prefix: str) -> None:
        self.request("/kv/deleterange", {"key": _b64(prefix), "range_end": _range_end(prefix)}, "delete")

    def _txn(self, compare: dict, success: dict, what: str) -> bool:
        result = self.request("/kv/txn", {"compare": [compare], "success": [success], "failure": []}, what)
        # The gateway omits false booleans: a failed compare has no "succeeded" at all.
        return bool(result.get("succeeded", False))

    def create(self, key: str, value: str, lease: int | None = None) -> bool:
        return self._txn({"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"},
                         {"request_put": self._put_op(key, value, lease)}, "create")

    def put_if_revision(self, key: str, value: str, mod_revision: int, lease: int | None = None) -> bool:
        if not mod_revision:
            return self.create(key, value, lease)
        return self._txn({"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(mod_revision)},
                         {"request_put": self._put_op(key, value, lease)}, "write")

    def put_if_value(self, key: str, expected: str, value: str, lease: int | None = None) -> bool:
        return self._txn({"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(expected)},
                         {"request_put": self._put_op(key, value, lease)}, "write")

    def delete_if_value(self, key: str, expected: str) -> bool:
        return self._txn({"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(expected)},
                         {"request_delete_range": {"key": _b64(key)}}, "delete")


class _Connection:
    """One HTTP/1.1 connection to an etcd endpoint, kept open between requests.

    Not http.client: measured against etcd's gateway, its keep-alive requests cost more CPU (about
    0.3 ms each: a file object and an e-mail header parser per answer) than a new connection with
    this reader did (0.2 ms), against 0.09 ms here; and it costs ~40 ms to import, a sixth of a
    whole `hatui list`. etcd answers with Content-Length or chunked encoding; both are read exactly,
    so the connection is ready for the next request.
    """

    __slots__ = ("sock", "buf", "unanswered")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.unanswered = True  # no byte of the current answer received yet

    def dropped(self) -> bool:
        """True when the idle connection was closed by the server (or has unasked-for data)."""
        if self.buf:
            return True
        pending = getattr(self.sock, "pending", None)  # TLS bytes already decrypted
        if pending is not None and pending():
            return True
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, eof_ok: bool = False) -> bool:
        """Read what the server sent; False at its end of the connection (an error unless eof_ok)."""
        data = self.sock.recv(65536)
        if not data:
            if eof_ok:
                return False
            raise OSError("connection closed before a complete HTTP answer")
        self.unanswered = False
        self.buf += data
        return True

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > 65536:
                raise OSError("HTTP header line too long")
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def exchange(self, request: bytes, timeout: float) -> tuple[int, str, bytes, bool]:
        """Send one request, read its whole answer: (status, reason, body, connection reusable)."""
        self.unanswered = True
        self.sock.settimeout(timeout)
        self.sock.sendall(request)
        status_line = self._line().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise OSError(f"not an HTTP answer: {status_line[:60]!r}")
        fields = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        keep = parts[0] == "HTTP/1.1" and "close" not in fields.get("connection", "").lower()
        if "chunked" in fields.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                try:
                    size = int(self._line().split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise OSError("malformed chunked HTTP answer") from None
                if size == 0:
                    while self._line():  # trailers (etcd sends Grpc-Trailer-*), then a blank line
                        pass
                    break
                chunks.append(self._exact(size))
                if self._exact(2) != b"\r\n":
                    raise OSError("malformed chunked HTTP answer")
            body = b"".join(chunks)
        elif fields.get("content-length", "").isdigit():
            body = self._exact(int(fields["content-length"]))
        else:  # the answer ends where the connection does
            keep = False
            while self._fill(eof_ok=True):
                pass
            body = bytes(self.buf)
            self.buf.clear()
        return int(parts[1]), parts[2] if len(parts) > 2 else "", body, keep


def _dropped_by_peer(exc: OSError) -> bool:
    """The server closed or reset the connection (as opposed to: it is slow, or unreachable)."""
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return True
    if type(exc).__name__ in ("SSLEOFError", "SSLZeroReturnError"):
        return True
    return type(exc) is OSError and "connection closed" in str(exc)


def _describe_network(exc: BaseException) -> str:
    import ssl

    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
