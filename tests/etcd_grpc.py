"""An independent etcd client for tests: gRPC through the `etcd3` package (the test extra).

hatui itself talks to etcd only through the JSON gateway (hatui/etcd/kv.py,
hatui/etcd/gateway.py). Tests that check what hatui wrote read and write through this other
client, so a bug in the gateway client cannot hide itself by reading its own mistakes back.
Key-value and transaction calls only: that is all the tests ask of it.
"""

from __future__ import annotations

import os
from typing import Callable

from hatui.etcd.store import DCSError, Etcd

# gRPC's fork handlers run in every child forked while its threads are busy; the tests fork
# PostgreSQL tools and daemons, and such a child could die before exec. Set before grpc loads.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import etcd3  # noqa: E402
import etcd3.exceptions  # noqa: E402
import grpc  # noqa: E402


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        try:
            details = exc.details() or ""  # type: ignore[attr-defined]
            code = exc.code().name  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a broken error object must not hide the real error
            return str(exc)
        return f"{code.lower()}: {details}" if details else code.lower()
    return str(exc) or type(exc).__name__


class GrpcEtcd(Etcd):
    """`dcs.Etcd`'s key-value surface over gRPC (one endpoint after another on failure)."""

    def __init__(self, hosts: list[str] | str, *, timeout: float = 3.0) -> None:
        super().__init__(hosts, timeout=timeout)
        self._clients: dict[int, etcd3.Etcd3Client] = {}

    def _client(self, index: int) -> etcd3.Etcd3Client:
        with self._lock:
            client = self._clients.get(index)
            if client is None:
                host, port = self.endpoints[index]
                client = etcd3.client(host=host, port=port, timeout=self.timeout)
                self._clients[index] = client
            return client

    def _drop(self, index: int) -> None:
        with self._lock:
            client = self._clients.pop(index, None)
        if client is not None:
            client.close()

    def call(self, fn: Callable[[etcd3.Etcd3Client], object], what: str = "request") -> object:
        if self._closed:
            raise DCSError("etcd client closed")
        errors = []
        for i in range(len(self.endpoints)):
            index = (self._current + i) % len(self.endpoints)
            try:
                result = fn(self._client(index))
                self._current = index
                return result
            except (grpc.RpcError, etcd3.exceptions.Etcd3Exception, ValueError) as exc:
                host, port = self.endpoints[index]
                errors.append(f"{host}:{port} ({_describe(exc)})")
                self._drop(index)
        raise DCSError(f"etcd is not reachable at {', '.join(errors)}")

    def close(self) -> None:
        super().close()
        for index in list(self._clients):
            self._drop(index)

    def get_prefix(self, prefix: str) -> tuple[list[tuple[str, bytes, int, int]], int]:
        def read(c: etcd3.Etcd3Client):
            resp = c.get_prefix_response(prefix)
            return [(kv.key.decode(), kv.value, kv.mod_revision, kv.lease) for kv in resp.kvs], resp.header.revision

        return self.call(read, "read")  # type: ignore[return-value]

    def get(self, key: str) -> tuple[bytes | None, int]:
        def read(c: etcd3.Etcd3Client):
            value, meta = c.get(key)
            return value, (meta.mod_revision if meta else 0)

        return self.call(read, "read")  # type: ignore[return-value]

    def put(self, key: str, value: str, lease: int | None = None) -> None:
        self.call(lambda c: c.put(key, value, lease=lease or None), "write")

    def delete(self, key: str) -> bool:
        return bool(self.call(lambda c: c.delete(key), "delete"))

    def delete_prefix(self, prefix: str) -> None:
        self.call(lambda c: c.delete_prefix(prefix), "delete")

    def _txn(self, compare, success) -> bool:
        def txn(c: etcd3.Etcd3Client):
            ok, _ = c.transaction(compare=[compare(c)], success=[success(c)], failure=[])
            return ok

        return bool(self.call(txn, "transaction"))

    def create(self, key: str, value: str, lease: int | None = None) -> bool:
        return self._txn(lambda c: c.transactions.create(key) == 0,
                         lambda c: c.transactions.put(key, value, lease=lease or None))

    def put_if_revision(self, key: str, value: str, mod_revision: int, lease: int | None = None) -> bool:
        if not mod_revision:
            return self.create(key, value, lease)
        return self._txn(lambda c: c.transactions.mod(key) == mod_revision,
                         lambda c: c.transactions.put(key, value, lease=lease or None))

    def put_if_value(self, key: str, expected: str, value: str, lease: int | None = None) -> bool:
        return self._txn(lambda c: c.transactions.value(key) == expected,
                         lambda c: c.transactions.put(key, value, lease=lease or None))

    def delete_if_value(self, key: str, expected: str) -> bool:
        return self._txn(lambda c: c.transactions.value(key) == expected, lambda c: c.transactions.delete(key))
