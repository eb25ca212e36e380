"""What the REST API and the HA loop share: the request objects the API hands to the HA thread,
and `DaemonPort`, the narrow view of the daemon the REST backend (api_backend.py) works on.

The backend depends on this interface, not on `loop.Daemon`, which implements it; so the loop
can import the backend without an import circle, and the backend's reach into the daemon is
written down in one place.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..cluster import Cluster
    from ..config import DynamicConfig
    from ..etcd.store import ClusterStore
    from .decisions import Narrator
    from .member import NodeView
    from .node import NodeRuntime
    from .postgres import Postgres


@dataclass
class Request:
    """Work the REST API asks the HA thread to do; the API thread waits on `done`."""

    kind: str  # restart | reload | reinitialize
    params: dict = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 503
    text: str = ""

    def finish(self, status: int, text: str) -> None:
        self.status, self.text = status, text
        self.done.set()


class DaemonPort(Protocol):
    """The daemon as the REST backend sees it (`loop.Daemon` implements it)."""

    name: str
    rt: NodeRuntime  # the node file's settings (REST API address, TLS, auth)
    view: NodeView  # the loop's last observation, published for the API threads
    cluster: Cluster | None
    dynamic: DynamicConfig
    store: ClusterStore
    pg: Postgres
    requests: queue.Queue[Request]
    wake: threading.Event  # wakes the HA loop for a new request or a changed schedule
    dcs_ok: bool
    dcs_seen_at: float  # monotonic
    lock_refreshed_at: float  # monotonic
    next_run_at: float  # monotonic
    failsafe_leader_seen: tuple[str, float] | None
    lease_ttl: int  # the TTL our lease was granted with (GET /patroni's lease_time_left)
    lease_refreshed_at: float  # monotonic
    narrator: Narrator  # the published decision and the failover/switchover counters

    def record_event(self, kind: str, message: str, **facts: object) -> object:
        """Put an event in the cluster's timeline (recorder.py), aside from the HA loop."""
        ...

    def submit(self, req: Request, timeout: float) -> Request:
        """Queue `req` for the HA thread and wait up to `timeout` for it to finish."""
        ...
