"""The leader's own view of its etcd lease, and keepalives that never wait behind slow reads.

Why: a slow etcd (loaded, remote, a congested link) that answers seconds late is not a dead one.
Treating every request slower than retry_timeout as "etcd is gone" made a leader demote itself
although its lease was valid and nobody else could take over (Patroni does the same). What
decides whether another member can be promoted is the lease alone: etcd deletes the leader key
`ttl` seconds after it last received our keepalive, and that is never earlier than `ttl` seconds
after we *sent* it. So:

* the lease view: `deadline = (monotonic time a keepalive was sent) + ttl`, for the latest
  keepalive etcd acknowledged. The same instant feeds the fencing guard, whose deadline is
  `deadline - safety_margin`: one clock, one origin, for the daemon and its guard;
* the leader keeps serving while `deadline - now > stop_budget`, the time it needs to stop
  safely: the guard's margin, one more loop_wait until the next decision, and a second for the
  cycle itself. Below that it demotes; the guard stops PostgreSQL `safety_margin` before the
  deadline if the daemon could not; etcd frees the key at the deadline at the earliest, so a
  failover after a real etcd loss happens exactly when it did before;
* keepalives go out at the start of every cycle on their own thread and their own etcd client
  (own connection; what is left of the lease, shared among the endpoints, as the timeout), so
  they never queue behind a slow read nor wait on one unhealthy member for good, and a hung HA loop
  stops refreshing as before (no cycle, no keepalive);
* the loop's cluster read may wait as long as the lease allows (`deadline - now - stop_budget`),
  never longer: nothing in the HA loop waits on etcd past the point where it must stop.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..etcd.store import DCSError, LeaseExpired

if TYPE_CHECKING:
    from ..cluster import Cluster
    from ..config import DynamicConfig
    from .fence import FenceClient

log = logging.getLogger("hatui.ha")


class LeaseHolder(Protocol):
    """What the lease keeper uses of the daemon (`loop.Daemon` implements it)."""

    lease: int | None
    lease_ttl: int
    lease_refreshed_at: float  # monotonic; moved on here, by the newest acknowledged keepalive
    dynamic: DynamicConfig
    cluster: Cluster | None
    fence: FenceClient

    def fence_margin(self) -> float: ...

MAX_IN_FLIGHT = 4  # keepalives outstanding at once (a slow etcd answers them out of the loop)


def guard_margin(ttl: int, safety_margin: float) -> float:
    """The fencing guard's margin as the guard computes it (fence.Guard.margin)."""
    return ttl / 2 if safety_margin < 0 or safety_margin >= ttl else float(safety_margin)


def stop_budget(ttl: int, loop_wait: float, safety_margin: float) -> float:
    """Seconds of lease the leader needs left to be sure it stops before another may lead."""
    return guard_margin(ttl, safety_margin) + loop_wait + 1.0


class LeaseKeeper:
    """Sends keepalives for the daemon's lease without blocking the HA loop, and keeps the view.

    `daemon` is a loop.Daemon: this reads its lease, ttl, fence and cluster and updates
    `lease_refreshed_at` (send time of the newest acknowledged keepalive)."""

    def __init__(self, daemon: LeaseHolder, etcd: Any) -> None:
        self.daemon = daemon
        self.etcd = etcd  # a client of its own: its own connections, timeout = ttl
        self.expired: int | None = None  # a lease etcd said is gone
        self._lock = threading.Lock()
        self._in_flight = 0
        self._acked = threading.Event()
        self._failing_since: float | None = None

    # --- the view -----------------------------------------------------------------------------
    def deadline(self) -> float:
        d = self.daemon
        return d.lease_refreshed_at + d.lease_ttl

    def budget(self) -> float:
        d = self.daemon
        return stop_budget(d.lease_ttl, d.dynamic.loop_wait, d.fence_margin())

    def left(self, now: float | None = None) -> float:
        """Seconds the leader may go on serving before it must stop (negative: stop now)."""
        return self.deadline() - (time.monotonic() if now is None else now) - self.budget()

    # --- keepalives ---------------------------------------------------------------------------
    def send(self) -> None:
        """Start one keepalive on its own thread (the cycle goes on at once)."""
        lease = self.daemon.lease
        if lease is None:
            return
        with self._lock:
            if self._in_flight >= MAX_IN_FLIGHT:
                return
            self._in_flight += 1
            self._acked.clear()
        threading.Thread(target=self._keepalive, args=(lease, time.monotonic()), name="lease-keepalive",
                         daemon=True).start()

    def wait_ack(self, timeout: float) -> None:
        """Give the keepalive sent at the start of this cycle a moment (healthy etcd: ms)."""
        if timeout > 0:
            self._acked.wait(timeout)

    def _keepalive(self, lease: int, sent: float) -> None:
        d = self.daemon
        try:
            # The client tries each endpoint in turn with this socket timeout, so what is left of
            # the lease is shared among them (an answer later than that is useless). A member cut
            # off from its peers holds a keepalive until etcd's own timeout: with the whole ttl for
            # the first endpoint, the leader never reached a healthy member in time (tests/hosts:
            # the leader's own etcd member partitioned from the others demoted the leader).
            left = min(float(d.lease_ttl), self.deadline() - time.monotonic())
            self.etcd.timeout = max(1.0, left / max(1, len(getattr(self.etcd, "endpoints", ()))))
            self.etcd.keepalive(lease)
        except LeaseExpired:
            self.expired = lease
            self._acked.set()
            return
        except DCSError as exc:
            now = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
                log.warning("lease keepalive failed: %s (the lease is valid for %.1fs more)", exc,
                            max(0.0, self.deadline() - now))
            return
        finally:
            with self._lock:
                self._in_flight -= 1
        if self._failing_since is not None:
            log.info("lease keepalive acknowledged again after %.1fs", time.monotonic() - self._failing_since)
            self._failing_since = None
        with self._lock:
            if d.lease != lease or sent <= d.lease_refreshed_at:
                self._acked.set()
                return
            if d.fence.deadline_passed(time.monotonic()):
                # This daemon was stalled past its fencing guard's deadline (a SIGSTOP between
                # sending and reading this answer): the guard has stopped PostgreSQL and, for a
                # frozen daemon, may have revoked this lease after etcd answered. The answer
                # proves nothing now: take a new lease and decide on what etcd holds.
                log.warning("lease keepalive answered after the fencing guard's deadline (this daemon was "
                            "stalled): not trusting lease %x any more; taking a new one", lease)
                self.expired = lease
                self._acked.set()
                return
            d.lease_refreshed_at = sent
        cluster = d.cluster
        # The guard follows the same instant: only ever forward, only while armed.
        d.fence.refresh(sent, d.lease_ttl, lease, paused=bool(cluster is not None and cluster.is_paused))
        self._acked.set()
