"""Where the console's cluster views come from: etcd (a watch in a thread worker, plus the etcd
prober), or anything else that implements `DataSource` (the recording in `hatui.console_events`).
Also the editor's compare-and-swap target for config writes, and the check for a local etcd.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any, Protocol

from ..etcd.store import ClusterStore, ClusterWatcher, DCSError, Etcd, normalize_namespace
from ..screens.config_editor import WriteResult
from ..widgets.health import ETCD_PROBE_INTERVAL, ETCD_PROBE_TIMEOUT
from .messages import EtcdProbed

LOCAL_ETCD = "127.0.0.1:2379"


class SourceOwner(Protocol):
    """What a data source needs from the app it feeds (`hatui.app.HatuiApp` implements it)."""

    def submit_snapshot(self, snapshot: object) -> None: ...

    def submit_error(self, error: str) -> None: ...

    def post_message(self, message: Any) -> bool: ...

    def run_worker(self, work: Any, *args: Any, **kwargs: Any) -> Any: ...


class DataSource(Protocol):
    live: bool
    endpoint: str

    def start(self, app: SourceOwner) -> None: ...

    def stop(self) -> None: ...

    def lease_ttl(self, lease_id: int) -> int: ...

    def store(self, scope: str) -> ClusterStore | None: ...


class EtcdSource:
    """The live source: ClusterWatcher in a thread worker; lease reads and writes on the same client."""

    live = True

    def __init__(self, hosts: Sequence[str], namespace: str, scope: str | None) -> None:
        from ..etcd.gateway import EtcdGateway

        # The JSON gateway, like the daemon and the CLI: no gRPC import (a quarter second) and
        # less memory for a console that may watch a whole namespace.
        self.etcd: Etcd = EtcdGateway(list(hosts))
        self.hosts = list(hosts)
        self.prober = None
        self.namespace = normalize_namespace(namespace)
        self.scope = scope
        self.endpoint = self.etcd.endpoint_text
        self.watcher: ClusterWatcher | None = None

    def start(self, app: SourceOwner) -> None:
        self.watcher = ClusterWatcher(
            self.etcd,
            self.namespace,
            self.scope,
            on_change=app.submit_snapshot,
            on_error=app.submit_error,
            retry_delay=1.0,
        )
        app.run_worker(self.watcher.run, thread=True, group="watch", name="etcd watch", exit_on_error=False)
        from ..probes import EtcdProber

        self.prober = EtcdProber(
            self.hosts,
            on_answer=lambda _t: app.post_message(EtcdProbed()),
            on_error=lambda err: app.post_message(EtcdProbed(err)),
            interval=ETCD_PROBE_INTERVAL,
            timeout=ETCD_PROBE_TIMEOUT,
        )
        app.run_worker(self.prober.run, thread=True, group="probe", name="etcd probe", exit_on_error=False)

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.prober is not None:
            self.prober.stop()
        self.etcd.close()

    def lease_ttl(self, lease_id: int) -> int:
        return self.etcd.lease_ttl(lease_id)

    def store(self, scope: str) -> ClusterStore:
        return ClusterStore(self.etcd, self.namespace, scope)


class EtcdConfigTarget:
    """The console's config writes: compare-and-swap on the revision the editor was opened at."""

    def __init__(self, store: ClusterStore, mod_revision: int) -> None:
        self.store = store
        self.mod_revision = mod_revision

    def write(self, data: dict) -> WriteResult:
        try:
            ok = self.store.write_config(data, self.mod_revision)
        except DCSError as exc:
            return WriteResult(False, message=str(exc))
        if not ok:
            return WriteResult(False, conflict=True, message="config changed in etcd since it was read")
        return WriteResult(True)

    def reload(self) -> tuple[str, dict]:
        from ..config import dump_yaml

        cluster = self.store.read()
        data = dict(cluster.config.data) if cluster.config else {}
        self.mod_revision = cluster.config.mod_revision if cluster.config else 0
        return dump_yaml(data), data


def find_local_etcd(endpoint: str = LOCAL_ETCD, timeout: float = 0.3) -> bool:
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False
