"""The daemon's etcd client: `EtcdHttp` plus leases and watches, all over etcd's JSON gateway.

gRPC (with protobuf and the etcd3 package) adds about 20 MB to a resident daemon and a dozen
threads, while the daemon only needs a handful of calls per loop. Patroni's own etcd3 support uses
this same gateway. Leases are plain POSTs; a watch is one long POST whose chunked answer carries
one JSON message per event batch, read here incrementally from the socket.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Iterator

from .store import DCSError, LeaseExpired, Watch, WatchCompacted, WatchEvent
from .kv import EtcdHttp, _b64, _describe_network, _range_end, _unb64


class EtcdGateway(EtcdHttp):
    """Everything `store.Etcd` offers (KV, transactions, leases, watches) without gRPC, over http
    or https."""

    # --- leases ------------------------------------------------------------------------------
    def grant_lease(self, ttl: int) -> int:
        result = self.request("/lease/grant", {"TTL": str(int(ttl))}, "lease")
        if result.get("error"):
            raise DCSError(f"etcd refused the lease: {result['error']}")
        return int(result["ID"])

    def keepalive(self, lease_id: int) -> int:
        result = self.request("/lease/keepalive", {"ID": str(lease_id)}, "lease keepalive")
        # The gateway streams the answer: {"result": {"ID": .., "TTL": ..}}; TTL is absent when 0.
        inner = result.get("result") if isinstance(result.get("result"), dict) else result
        ttl = int(inner.get("TTL") or 0)
        if ttl <= 0:
            raise LeaseExpired(f"lease {lease_id:x} has expired")
        return ttl

    def lease_ttl(self, lease_id: int) -> int:
        result = self.request("/lease/timetolive", {"ID": str(lease_id)}, "lease info")
        return int(result.get("TTL") or -1)

    def revoke(self, lease_id: int) -> None:
        try:
            self.request("/lease/revoke", {"ID": str(lease_id)}, "lease revoke")
        except DCSError as exc:
            if "not found" not in str(exc):  # already gone is what we wanted
                raise

    # --- watches -----------------------------------------------------------------------------
    def watch_prefix(self, prefix: str, start_revision: int, timeout: float | None = None) -> "GatewayWatch":
        return GatewayWatch(self, prefix, start_revision)


class GatewayWatch(Watch):
    """One watch stream on a prefix; iterating yields (revision, [WatchEvent]) per etcd message.

    `cancel()` from another thread closes the socket, which ends the iteration.
    """

    def __init__(self, etcd: EtcdGateway, prefix: str, start_revision: int) -> None:
        self._etcd = etcd
        self._prefix = prefix
        self._start = start_revision
        self._sock: socket.socket | None = None
        self._stop = threading.Event()

    def _open(self) -> tuple[socket.socket, str]:
        etcd = self._etcd
        errors = []
        n = len(etcd.endpoints)
        for i in range(n):
            index = (etcd._current + i) % n
            host, port = etcd.endpoints[index]
            try:
                # Auth token (if any) and API prefix are settled by one ordinary request first.
                etcd._post(index, "/kv/range", {"key": _b64(self._prefix), "limit": "1", "keys_only": True})
                sock = socket.create_connection((host, port), timeout=etcd.timeout)
                if etcd._ssl is not None:
                    # The same TLS context as every other request (CA, client certificate, verify).
                    try:
                        sock = etcd._ssl.wrap_socket(sock, server_hostname=host)
                    except OSError:
                        sock.close()
                        raise
            except (OSError, DCSError) as exc:
                errors.append(f"{host}:{port} ({_describe_network(exc) if isinstance(exc, OSError) else exc})")
                continue
            etcd._current = index
            return sock, f"{host}:{port}"
        raise DCSError(f"etcd is not reachable at {', '.join(errors)}")

    def __iter__(self) -> Iterator[tuple[int, list[WatchEvent]]]:
        etcd = self._etcd
        sock, where = self._open()
        self._sock = sock
        body = json.dumps({"create_request": {
            "key": _b64(self._prefix), "range_end": _range_end(self._prefix),
            "start_revision": str(self._start), "progress_notify": True}}).encode()
        headers = [f"POST {etcd._prefix or '/v3'}/watch HTTP/1.1", f"Host: {where}",
                   "Content-Type: application/json", f"Content-Length: {len(body)}"]
        if etcd._token:
            headers.append(f"Authorization: {etcd._token}")
        try:
            sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body)
            # Progress notifications arrive every few minutes at most; no read timeout on an idle
            # stream, the loop's own reads notice a dead etcd.
            sock.settimeout(None)
            for message in _json_stream(sock):
                if self._stop.is_set():
                    return
                result = message.get("result")
                if not isinstance(result, dict):
                    if message.get("error"):
                        raise DCSError(f"etcd watch failed: {message['error'].get('message', message['error'])}")
                    continue
                if int(result.get("compact_revision") or 0):
                    raise WatchCompacted(f"watch revision {self._start} compacted")
                if result.get("canceled"):
                    raise DCSError(f"etcd cancelled the watch: {result.get('cancel_reason') or 'no reason given'}")
                revision = int((result.get("header") or {}).get("revision") or 0)
                events = []
                for ev in result.get("events") or []:
                    kv = ev.get("kv") or {}
                    events.append(WatchEvent(_unb64(kv.get("key")).decode("utf-8", "replace"), _unb64(kv.get("value")),
                                             int(kv.get("mod_revision") or 0), int(kv.get("lease") or 0),
                                             ev.get("type") == "DELETE"))
                yield revision, events
        except OSError as exc:
            if self._stop.is_set():
                return
            raise DCSError(f"etcd watch lost at {where} ({_describe_network(exc)})") from exc
        finally:
            self._stop.set()
            sock.close()
        if not self._stop.is_set():
            raise DCSError(f"etcd closed the watch stream at {where}")

    def cancel(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _json_stream(sock: socket.socket) -> Iterator[dict]:
    """JSON objects from a chunked HTTP answer, as soon as each one is complete."""
    reader = sock.makefile("rb")
    status = reader.readline().decode("latin-1")
    parts = status.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"not an HTTP answer: {status[:60]!r}")
    chunked = False
    while True:
        line = reader.readline()
        if not line:
            raise OSError("connection closed in the HTTP header")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if parts[1] != "200":
        raise OSError(f"etcd answered the watch with HTTP {parts[1]}")
    decoder = json.JSONDecoder()
    buffer = ""
    while True:
        if chunked:
            size_line = reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                return
            data = reader.read(size)
            reader.readline()  # the CRLF after each chunk
        else:
            data = reader.read1(65536)
            if not data:
                return
        buffer += data.decode("utf-8", "replace")
        while True:
            stripped = buffer.lstrip()
            if not stripped:
                buffer = ""
                break
            try:
                obj, end = decoder.raw_decode(stripped)
            except ValueError:
                buffer = stripped
                break  # incomplete: wait for more bytes
            buffer = stripped[end:]
            if isinstance(obj, dict):
                yield obj
