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
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

from .store import DCSError, Etcd

# Oldest API prefix first is wrong: etcd >= 3.4 serves /v3, 3.3 /v3beta, 3.2 /v3alpha.
_API_PREFIXES = ("/v3", "/v3beta", "/v3alpha")


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
    def _post_once(self, index: int, path: str, body: dict) -> dict:
        host, port = self.endpoints[index]
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = self._token
        payload = json.dumps(body).encode()
        if self.scheme == "https":
            status, reason, data = self._https_post(host, port, path, payload, headers)
        else:
            status, reason, data = _http_post(host, port, path, payload, headers, self.timeout)
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {}
        if status != 200:
            message = (parsed.get("message") or parsed.get("error")) if isinstance(parsed, dict) else None
            raise _GatewayError(status, message or f"HTTP {status} {reason}")
        return parsed if isinstance(parsed, dict) else {}

    def _https_post(self, host: str, port: int, path: str, payload: bytes,
                    headers: dict[str, str]) -> tuple[int, str, bytes]:
        import http.client

        conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl)
        try:
            conn.request("POST", path, payload, headers)
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.read()
        except http.client.HTTPException as exc:
            raise OSError(f"bad HTTP answer: {type(exc).__name__}") from exc
        finally:
            conn.close()

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


def _http_post(host: str, port: int, path: str, payload: bytes, headers: dict[str, str],
               timeout: float) -> tuple[int, str, bytes]:
    """One HTTP/1.1 POST over a fresh connection (closed by the server after the answer).

    Plain http needs nothing more, and http.client costs ~40 ms to import (its e-mail header
    parser), a sixth of a whole `hatui list`. etcd's gateway answers with Content-Length, or with
    chunked encoding for errors; both are handled.
    """
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
            f"Content-Length: {len(payload)}"] + [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    header_end = raw.find(b"\r\n\r\n")
    if header_end < 0:
        raise OSError("connection closed before a complete HTTP answer")
    lines = raw[:header_end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise OSError(f"not an HTTP answer: {lines[0][:60]!r}")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    body = raw[header_end + 4:]
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    elif fields.get("content-length", "").isdigit():
        body = body[: int(fields["content-length"])]
    return int(parts[1]), parts[2] if len(parts) > 2 else "", body


def _dechunk(data: bytes) -> bytes:
    out = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise OSError("truncated chunked HTTP answer")
        try:
            size = int(data[pos:eol].split(b";", 1)[0].strip() or b"0", 16)
        except ValueError:
            raise OSError("malformed chunked HTTP answer") from None
        if size == 0:
            return b"".join(out)  # trailers (etcd sends Grpc-Trailer-*) are ignored
        out.append(data[eol + 2: eol + 2 + size])
        pos = eol + 2 + size + 2


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
