"""The etcd adapter: the only module that knows key paths, leases, transactions and watches.

Everything above this module speaks in clusters (see cluster.py) and in intentions ("take the
leader lock", "write the config if nobody changed it since revision N"). Every shared write is a
transaction, so two daemons or two operators can never overwrite each other silently.

The `etcd3` client library is used for key-value, lease and transaction calls. Watches are run on
the raw gRPC stream instead of the library's watcher, whose background thread reconnects in a
tight loop when etcd is down and cannot be stopped cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from .cluster import Cluster, Failover, Status, SyncState, TimelineHistory
from .events import Event

if TYPE_CHECKING:
    import etcd3

# grpc and etcd3 are imported where they are used, not here: together they take about 0.25 s to
# import, and the CLI (which reads through etcd's JSON gateway, see etcd_http.py) must start fast.

log = logging.getLogger("hatui.dcs")

# gRPC's fork handlers run in every child forked while its threads are busy; the daemon forks
# pg_ctl, initdb and pg_rewind while a watch stream is open, and with the handlers enabled such a
# child could die before exec (an "initdb failed" with no output). We never use gRPC in a child.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

DEFAULT_NAMESPACE = "/service"


class DCSError(Exception):
    """etcd could not be reached or refused the request; the message is for people."""


class LeaseExpired(DCSError):
    pass


def normalize_namespace(ns: str | None) -> str:
    parts = [p for p in (ns or DEFAULT_NAMESPACE).split("/") if p]
    return "/" + "/".join(parts) if parts else DEFAULT_NAMESPACE


def parse_endpoint(text: str) -> tuple[str, int]:
    """'127.0.0.1:2379', 'http://host:2379', 'host' -> (host, port)."""
    t = text.strip()
    if "://" in t:
        t = t.split("://", 1)[1]
    t = t.rstrip("/")
    if t.startswith("["):  # [::1]:2379
        host, _, rest = t[1:].partition("]")
        port = int(rest.lstrip(":") or 2379)
        return host, port
    host, sep, port = t.rpartition(":")
    if not sep:
        return t, 2379
    return host, int(port)


@dataclass(frozen=True)
class KeyPaths:
    """Key names of one cluster: `<namespace>/<scope>/<name>`."""

    namespace: str
    scope: str

    @property
    def base(self) -> str:
        return f"{self.namespace}/{self.scope}"

    @property
    def prefix(self) -> str:
        return self.base + "/"

    def key(self, name: str) -> str:
        return f"{self.base}/{name}"

    @property
    def leader(self) -> str:
        return self.key("leader")

    def member(self, name: str) -> str:
        return self.key(f"members/{name}")

    @property
    def config(self) -> str:
        return self.key("config")

    @property
    def initialize(self) -> str:
        return self.key("initialize")

    @property
    def history(self) -> str:
        return self.key("history")

    @property
    def status(self) -> str:
        return self.key("status")

    @property
    def failover(self) -> str:
        return self.key("failover")

    @property
    def sync(self) -> str:
        return self.key("sync")

    @property
    def failsafe(self) -> str:
        return self.key("failsafe")

    @property
    def events(self) -> str:
        """Prefix of the event timeline: one write-once key per event (events.py)."""
        return self.key("events/")

    def event(self, event_id: str) -> str:
        return self.events + event_id


def _describe(exc: BaseException) -> str:
    import etcd3.exceptions
    import grpc

    if isinstance(exc, grpc.RpcError):
        try:
            details = exc.details() or ""  # type: ignore[attr-defined]
            code = exc.code().name  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a broken error object must not hide the real error
            return str(exc)
        if "Connection refused" in details or "connection refused" in details:
            return "connection refused"
        return f"{code.lower()}: {details}" if details else code.lower()
    if isinstance(exc, etcd3.exceptions.ConnectionFailedError):
        return "connection failed"
    if isinstance(exc, etcd3.exceptions.ConnectionTimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _retryable() -> tuple[type[BaseException], ...]:
    import etcd3.exceptions
    import grpc

    return (grpc.RpcError, etcd3.exceptions.Etcd3Exception, ValueError)


class Etcd:
    """A connection to one etcd cluster (one or more endpoints; a dead one is skipped)."""

    def __init__(
        self,
        hosts: list[str] | str,
        *,
        timeout: float = 3.0,
        username: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
    ) -> None:
        if isinstance(hosts, str):
            hosts = [h for h in hosts.split(",") if h.strip()]
        if not hosts:
            raise DCSError("no etcd endpoint configured")
        self.endpoints = [parse_endpoint(h) for h in hosts]
        self.timeout = timeout
        self._auth = dict(user=username, password=password, ca_cert=ca_cert, cert_key=key, cert_cert=cert)
        self._clients: dict[int, etcd3.Etcd3Client] = {}
        self._current = 0
        self._lock = threading.RLock()
        self._closed = False

    # --- connection handling ----------------------------------------------------------------
    @property
    def endpoint_text(self) -> str:
        return ", ".join(f"{h}:{p}" for h, p in self.endpoints)

    def _client(self, index: int) -> etcd3.Etcd3Client:
        with self._lock:
            client = self._clients.get(index)
            if client is None:
                import etcd3

                host, port = self.endpoints[index]
                kwargs = {k: v for k, v in self._auth.items() if v is not None}
                client = etcd3.client(host=host, port=port, timeout=self.timeout, **kwargs)
                self._clients[index] = client
            return client

    def _drop(self, index: int) -> None:
        with self._lock:
            client = self._clients.pop(index, None)
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken channel may raise anything
                pass

    def call(self, fn: Callable[[etcd3.Etcd3Client], object], what: str = "request") -> object:
        """Run fn(client) on the current endpoint, rotating through the others on failure."""
        if self._closed:
            raise DCSError("etcd client closed")
        import etcd3.exceptions

        retryable = _retryable()
        errors = []
        n = len(self.endpoints)
        start = self._current
        for i in range(n):
            index = (start + i) % n
            try:
                result = fn(self._client(index))
                self._current = index
                return result
            except etcd3.exceptions.PreconditionFailedError as exc:
                raise DCSError(f"etcd refused the {what}: {_describe(exc)}") from exc
            except retryable as exc:
                host, port = self.endpoints[index]
                errors.append(f"{host}:{port} ({_describe(exc)})")
                self._drop(index)
        raise DCSError(f"etcd is not reachable at {', '.join(errors)}")

    def close(self) -> None:
        self._closed = True
        for index in list(self._clients):
            self._drop(index)

    def __enter__(self) -> "Etcd":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plain operations -------------------------------------------------------------------
    def get_prefix(self, prefix: str) -> tuple[list[tuple[str, bytes, int, int]], int]:
        """All keys under prefix as (key, value, mod_revision, lease) plus the read's revision."""

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

    def create(self, key: str, value: str, lease: int | None = None) -> bool:
        """Put only if the key does not exist. True when we created it."""

        def txn(c: etcd3.Etcd3Client):
            ok, _ = c.transaction(
                compare=[c.transactions.create(key) == 0],
                success=[c.transactions.put(key, value, lease=lease or None)],
                failure=[],
            )
            return ok

        return bool(self.call(txn, "create"))

    def put_if_revision(self, key: str, value: str, mod_revision: int, lease: int | None = None) -> bool:
        """Compare-and-swap on mod_revision (0 means: the key must not exist)."""

        def txn(c: etcd3.Etcd3Client):
            cmp = c.transactions.mod(key) == mod_revision if mod_revision else c.transactions.create(key) == 0
            ok, _ = c.transaction(compare=[cmp], success=[c.transactions.put(key, value, lease=lease or None)],
                                  failure=[])
            return ok

        return bool(self.call(txn, "write"))

    def put_if_value(self, key: str, expected: str, value: str, lease: int | None = None) -> bool:
        def txn(c: etcd3.Etcd3Client):
            ok, _ = c.transaction(compare=[c.transactions.value(key) == expected],
                                  success=[c.transactions.put(key, value, lease=lease or None)], failure=[])
            return ok

        return bool(self.call(txn, "write"))

    def delete_if_value(self, key: str, expected: str) -> bool:
        def txn(c: etcd3.Etcd3Client):
            ok, _ = c.transaction(compare=[c.transactions.value(key) == expected],
                                  success=[c.transactions.delete(key)], failure=[])
            return ok

        return bool(self.call(txn, "delete"))

    # --- leases -----------------------------------------------------------------------------
    def grant_lease(self, ttl: int) -> int:
        return int(self.call(lambda c: c.lease(int(ttl)).id, "lease"))  # type: ignore[arg-type]

    def keepalive(self, lease_id: int) -> int:
        """Refresh a lease; returns the remaining TTL. Raises LeaseExpired when it is gone."""

        def refresh(c: etcd3.Etcd3Client):
            for resp in c.refresh_lease(lease_id):
                return resp.TTL
            return 0

        ttl = int(self.call(refresh, "lease keepalive"))  # type: ignore[arg-type]
        if ttl <= 0:
            raise LeaseExpired(f"lease {lease_id:x} has expired")
        return ttl

    def lease_ttl(self, lease_id: int) -> int:
        """Remaining seconds of a lease (-1 when it no longer exists)."""
        return int(self.call(lambda c: c.get_lease_info(lease_id).TTL, "lease info"))  # type: ignore[arg-type]

    def revoke(self, lease_id: int) -> None:
        self.call(lambda c: c.revoke_lease(lease_id), "lease revoke")

    # --- watches ----------------------------------------------------------------------------
    def watch_prefix(self, prefix: str, start_revision: int, timeout: float | None = None) -> "Watch":
        """Open a watch stream from start_revision. Iterate it for lists of events."""
        return Watch(self, prefix, start_revision)

    # --- cluster-level reads ----------------------------------------------------------------
    def read_cluster(self, namespace: str, scope: str) -> Cluster:
        paths = KeyPaths(normalize_namespace(namespace), scope)
        kvs, revision = self.get_prefix(paths.prefix)
        n = len(paths.prefix)
        return Cluster.from_kvs(scope, [(k[n:], v, r, lease) for k, v, r, lease in kvs], revision)

    def read_namespace(self, namespace: str) -> dict[str, Cluster]:
        """Every cluster under a namespace, from one range read."""
        ns = normalize_namespace(namespace)
        kvs, revision = self.get_prefix(ns + "/")
        return clusters_from_kvs(ns, kvs, revision)

    def list_scopes(self, namespace: str) -> list[str]:
        return sorted(self.read_namespace(namespace))


def clusters_from_kvs(namespace: str, kvs: list[tuple[str, bytes, int, int]], revision: int) -> dict[str, Cluster]:
    """Group absolute (key, value, rev, lease) rows of a namespace into clusters by scope."""
    ns = normalize_namespace(namespace) + "/"
    grouped: dict[str, list] = {}
    for key, value, rev, lease in kvs:
        if not key.startswith(ns):
            continue
        scope, sep, rest = key[len(ns):].partition("/")
        if not sep or not scope:
            continue
        grouped.setdefault(scope, []).append((rest, value, rev, lease))
    return {s: Cluster.from_kvs(s, rows, revision) for s, rows in grouped.items()}


@dataclass(frozen=True)
class WatchEvent:
    key: str
    value: bytes
    mod_revision: int
    lease: int
    deleted: bool


class WatchCompacted(DCSError):
    """The requested start revision was compacted away: re-read and watch again."""


class Watch:
    """One gRPC watch stream on a prefix. Iterating yields (revision, [WatchEvent]) batches.

    A batch is what etcd sent in one response, so a burst of writes arrives together and the
    caller can coalesce it into one update. `cancel()` ends the iteration from another thread.
    """

    def __init__(self, etcd: Etcd, prefix: str, start_revision: int) -> None:
        self._etcd = etcd
        self._prefix = prefix.encode()
        self._start = start_revision
        self._stop = threading.Event()
        self._call = None

    def _requests(self) -> Iterator:
        from etcd3 import etcdrpc
        from etcd3.utils import increment_last_byte

        create = etcdrpc.WatchCreateRequest(key=self._prefix, range_end=increment_last_byte(self._prefix),
                                            start_revision=self._start, progress_notify=True)
        yield etcdrpc.WatchRequest(create_request=create)
        # Keep the sending side open: etcd ends the stream when the client half-closes.
        self._stop.wait()

    def __iter__(self) -> Iterator[tuple[int, list[WatchEvent]]]:
        import grpc
        from etcd3 import etcdrpc

        etcd = self._etcd
        index = etcd._current
        client = etcd._client(index)
        stub = etcdrpc.WatchStub(client.channel)
        try:
            self._call = stub.Watch(self._requests(), metadata=client.metadata)
            for resp in self._call:
                if self._stop.is_set():
                    return
                if resp.compact_revision:
                    raise WatchCompacted(f"watch revision {self._start} compacted (now {resp.compact_revision})")
                if resp.canceled:
                    raise DCSError(f"etcd cancelled the watch: {resp.cancel_reason or 'no reason given'}")
                events = [
                    WatchEvent(ev.kv.key.decode(), ev.kv.value, ev.kv.mod_revision, ev.kv.lease, ev.type == 1)
                    for ev in resp.events
                ]
                yield resp.header.revision, events
        except grpc.RpcError as exc:
            if self._stop.is_set():
                return
            etcd._drop(index)
            etcd._current = (index + 1) % len(etcd.endpoints)
            host, port = etcd.endpoints[index]
            raise DCSError(f"etcd watch lost at {host}:{port} ({_describe(exc)})") from exc
        finally:
            self._stop.set()

    def cancel(self) -> None:
        self._stop.set()
        call = self._call
        if call is not None:
            call.cancel()


class ClusterWatcher:
    """Keeps a Cluster view current: one read, then a watch from the next revision.

    `on_change(cluster)` is called from the watcher thread after the initial read and after each
    batch of events; `on_error(message)` when etcd is lost (the watcher keeps retrying by itself,
    re-reading when it comes back or when the watch revision was compacted).
    """

    def __init__(self, etcd: Etcd, namespace: str, scope: str | None,
                 on_change: Callable[[object], None], on_error: Callable[[str], None] | None = None,
                 retry_delay: float = 1.0) -> None:
        self.etcd = etcd
        self.namespace = normalize_namespace(namespace)
        self.scope = scope
        self.on_change = on_change
        self.on_error = on_error or (lambda msg: None)
        self.retry_delay = retry_delay
        self._stop = threading.Event()
        self._watch: Watch | None = None
        self._thread: threading.Thread | None = None

    @property
    def prefix(self) -> str:
        return f"{self.namespace}/{self.scope}/" if self.scope else f"{self.namespace}/"

    def _scope_of(self, key: str) -> tuple[str, str] | None:
        """(scope, key relative to the scope) of an absolute key; None outside any cluster."""
        if self.scope:
            return (self.scope, key[len(self.prefix):]) if key.startswith(self.prefix) else None
        ns = self.namespace + "/"
        if not key.startswith(ns):
            return None
        scope, sep, rest = key[len(ns):].partition("/")
        return (scope, rest) if sep and scope else None

    def _snapshot(self, groups: dict[str, dict[str, tuple[bytes, int, int]]], built: dict[str, Cluster],
                  dirty: set[str], revision: int) -> object:
        """Rebuild only the clusters a batch touched: with event timelines (events.py) a namespace
        holds thousands of keys, and rebuilding every cluster per change cost the console most of
        its paint time (bench/console_probe.py --events). The others keep their Cluster object."""
        for scope in dirty:
            rows = groups.get(scope)
            if rows is None:
                built.pop(scope, None)
            else:
                built[scope] = Cluster.from_kvs(scope, [(k, v, r, le) for k, (v, r, le) in rows.items()], revision)
        if self.scope:
            return built.get(self.scope) or Cluster.from_kvs(self.scope, [], revision)
        return dict(built)

    def run(self) -> None:
        """Blocking loop; returns after stop()."""
        while not self._stop.is_set():
            try:
                rows, revision = self.etcd.get_prefix(self.prefix)
                groups: dict[str, dict[str, tuple[bytes, int, int]]] = {}
                for k, v, r, le in rows:
                    where = self._scope_of(k)
                    if where is not None:
                        groups.setdefault(where[0], {})[where[1]] = (v, r, le)
                built: dict[str, Cluster] = {}
                self.on_change(self._snapshot(groups, built, set(groups), revision))
                self._watch = self.etcd.watch_prefix(self.prefix, revision + 1)
                for rev, events in self._watch:
                    if self._stop.is_set():
                        return
                    if not events:
                        continue  # progress notification
                    dirty: set[str] = set()
                    for ev in events:
                        where = self._scope_of(ev.key)
                        if where is None:
                            continue
                        scope, rel = where
                        dirty.add(scope)
                        if ev.deleted:
                            group = groups.get(scope)
                            if group is not None:
                                group.pop(rel, None)
                                if not group:
                                    del groups[scope]
                        else:
                            groups.setdefault(scope, {})[rel] = (ev.value, ev.mod_revision, ev.lease)
                    self.on_change(self._snapshot(groups, built, dirty, rev))
            except DCSError as exc:
                if self._stop.is_set():
                    return
                self.on_error(str(exc))
                self._stop.wait(self.retry_delay)
            except Exception as exc:  # noqa: BLE001 - a watcher thread must survive anything
                if self._stop.is_set():
                    return
                log.exception("watch failed")
                self.on_error(f"watch failed: {exc}")
                self._stop.wait(self.retry_delay)

    def start(self) -> "ClusterWatcher":
        self._thread = threading.Thread(target=self.run, name="hatui-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.cancel()
        if self._thread is not None:
            self._thread.join(timeout=2)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class ClusterStore:
    """The writes one cluster needs, each as a transaction where others may race us."""

    def __init__(self, etcd: Etcd, namespace: str | None, scope: str) -> None:
        self.etcd = etcd
        self.paths = KeyPaths(normalize_namespace(namespace), scope)

    @property
    def scope(self) -> str:
        return self.paths.scope

    def read(self) -> Cluster:
        return self.etcd.read_cluster(self.paths.namespace, self.paths.scope)

    # leader lock
    def take_leader(self, name: str, lease: int) -> bool:
        return self.etcd.create(self.paths.leader, name, lease)

    def hold_leader(self, name: str, lease: int) -> bool:
        """Re-bind the leader key to our lease if it still names us; False if someone else has it."""
        return self.etcd.put_if_value(self.paths.leader, name, name, lease)

    def release_leader(self, name: str) -> bool:
        return self.etcd.delete_if_value(self.paths.leader, name)

    # members
    def touch_member(self, name: str, data: dict, lease: int | None) -> None:
        self.etcd.put(self.paths.member(name), json.dumps(data, separators=(",", ":")), lease)

    def delete_member(self, name: str) -> None:
        self.etcd.delete(self.paths.member(name))

    # initialize
    def race_initialize(self) -> bool:
        """Claim the right to bootstrap: create `initialize` with an empty value."""
        return self.etcd.create(self.paths.initialize, "")

    def set_initialize(self, sysid: str) -> None:
        self.etcd.put(self.paths.initialize, sysid)

    def cancel_initialize(self) -> None:
        self.etcd.delete(self.paths.initialize)

    # config
    def write_config(self, data: dict, mod_revision: int | None = None) -> bool:
        """Write the dynamic config; with mod_revision, only if nobody changed it since (CAS)."""
        value = json.dumps(data, separators=(",", ":"))
        if mod_revision is None:
            self.etcd.put(self.paths.config, value)
            return True
        return self.etcd.put_if_revision(self.paths.config, value, mod_revision)

    def write_history(self, history: "TimelineHistory") -> None:
        self.etcd.put(self.paths.history, history.to_value())

    def write_status(self, status: "Status") -> None:
        self.etcd.put(self.paths.status, status.to_value())

    def write_failover(self, failover: "Failover", mod_revision: int | None = None) -> bool:
        if mod_revision is None:
            self.etcd.put(self.paths.failover, failover.to_value())
            return True
        return self.etcd.put_if_revision(self.paths.failover, failover.to_value(), mod_revision)

    def clear_failover(self) -> None:
        # Patroni leaves the key with `{}` rather than deleting it; readers treat both alike.
        self.etcd.put(self.paths.failover, "{}")

    def write_sync(self, sync: "SyncState", mod_revision: int | None = None) -> bool:
        if mod_revision is None:
            self.etcd.put(self.paths.sync, sync.to_value())
            return True
        return self.etcd.put_if_revision(self.paths.sync, sync.to_value(), mod_revision)

    def delete_sync(self) -> None:
        self.etcd.delete(self.paths.sync)

    def write_failsafe(self, members: dict[str, str]) -> None:
        self.etcd.put(self.paths.failsafe, json.dumps(members, separators=(",", ":")))

    def delete_failsafe(self) -> None:
        self.etcd.delete(self.paths.failsafe)

    def delete_cluster(self) -> None:
        self.etcd.delete_prefix(self.paths.prefix)

    # event timeline
    def append_event(self, event: Event, cap: int) -> int:
        """Write one event, then drop the oldest past `cap` (by revision). Returns how many were
        dropped. Two writers may drop the same key: deleting a missing key is harmless."""
        self.etcd.put(self.paths.event(event.id), event.to_value())
        kvs, _ = self.etcd.get_prefix(self.paths.events)
        if len(kvs) <= cap:
            return 0
        oldest = sorted(kvs, key=lambda kv: kv[2])[: len(kvs) - cap]
        for key, *_ in oldest:
            self.etcd.delete(key)
        return len(oldest)
