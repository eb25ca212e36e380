"""The etcd adapter: the only module that knows key paths, leases, transactions and watches.

Everything above this module speaks in clusters (see cluster.py) and in intentions ("take the
leader lock", "write the config if nobody changed it since revision N"). Every shared write is a
transaction, so two daemons or two operators can never overwrite each other silently.

`Etcd` here is the interface every caller types against; the client that implements it talks to
etcd's JSON gateway (`kv.EtcdHttp` for key-value and transactions, `gateway.EtcdGateway`
adding leases and watches, over http or https). No gRPC at run time: the tests keep an
independent gRPC client of their own (tests/etcd_grpc.py) to check what the gateway client wrote.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from ..cluster import Cluster, Failover, Status, SyncState, TimelineHistory
from ..events import Event

log = logging.getLogger("hatui.etcd.store")

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


class Etcd:
    """A connection to one etcd cluster (one or more endpoints; a dead one is skipped).

    The interface: endpoints and credentials, key-value calls, compare-and-swap transactions,
    leases and prefix watches, plus the cluster-level reads built on them. `EtcdHttp` and
    `EtcdGateway` implement it over etcd's JSON gateway; the calls below say what each must do.
    """

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
        self._current = 0
        self._lock = threading.RLock()
        self._closed = False

    @property
    def endpoint_text(self) -> str:
        return ", ".join(f"{h}:{p}" for h, p in self.endpoints)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "Etcd":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plain operations (implemented by the client) -----------------------------------------
    def get_prefix(self, prefix: str) -> tuple[list[tuple[str, bytes, int, int]], int]:
        """All keys under prefix as (key, value, mod_revision, lease) plus the read's revision."""
        raise NotImplementedError

    def get(self, key: str) -> tuple[bytes | None, int]:
        raise NotImplementedError

    def put(self, key: str, value: str, lease: int | None = None) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> bool:
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> None:
        raise NotImplementedError

    def create(self, key: str, value: str, lease: int | None = None) -> bool:
        """Put only if the key does not exist. True when we created it."""
        raise NotImplementedError

    def put_if_revision(self, key: str, value: str, mod_revision: int, lease: int | None = None) -> bool:
        """Compare-and-swap on mod_revision (0 means: the key must not exist)."""
        raise NotImplementedError

    def put_if_value(self, key: str, expected: str, value: str, lease: int | None = None) -> bool:
        raise NotImplementedError

    def delete_if_value(self, key: str, expected: str) -> bool:
        raise NotImplementedError

    # --- leases and watches (implemented by the client) ----------------------------------------
    def grant_lease(self, ttl: int) -> int:
        raise NotImplementedError

    def keepalive(self, lease_id: int) -> int:
        """Refresh a lease; returns the remaining TTL. Raises LeaseExpired when it is gone."""
        raise NotImplementedError

    def lease_ttl(self, lease_id: int) -> int:
        """Remaining seconds of a lease (-1 when it no longer exists)."""
        raise NotImplementedError

    def revoke(self, lease_id: int) -> None:
        raise NotImplementedError

    def watch_prefix(self, prefix: str, start_revision: int, timeout: float | None = None) -> "Watch":
        """Open a watch stream from start_revision. Iterate it for lists of events."""
        raise NotImplementedError

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
    """What `Etcd.watch_prefix` returns: iterating yields (revision, [WatchEvent]) batches.

    A batch is what etcd sent in one response, so a burst of writes arrives together and the
    caller can coalesce it into one update. `cancel()` ends the iteration from another thread.
    """

    def __iter__(self) -> Iterator[tuple[int, list[WatchEvent]]]:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError


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
        groups: dict[str, dict[str, tuple[bytes, int, int]]] = {}
        built: dict[str, Cluster] = {}
        while not self._stop.is_set():
            try:
                rows, revision = self.etcd.get_prefix(self.prefix)
                fresh: dict[str, dict[str, tuple[bytes, int, int]]] = {}
                for k, v, r, le in rows:
                    where = self._scope_of(k)
                    if where is not None:
                        fresh.setdefault(where[0], {})[where[1]] = (v, r, le)
                # After a reconnect, clusters whose keys did not change keep their object too.
                dirty = {s for s in set(fresh) | set(groups) if fresh.get(s) != groups.get(s) or s not in built}
                groups = fresh
                self.on_change(self._snapshot(groups, built, dirty, revision))
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
