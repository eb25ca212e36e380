"""The HA loop's own etcd reads and writes: the cluster read (with a leader's longer patience),
the lease and the leader key, the member key, and a leader's bookkeeping keys (status,
initialize, config, history). Also the lease kept alive around long actions.

A part of `loop.Daemon` (a mixin: the methods run on the daemon object, with its attributes).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from ..cluster import Cluster, HistoryEntry, Status, TimelineHistory
from ..etcd.store import DCSError, LeaseExpired
from . import queries
from .member import member_data

log = logging.getLogger("hatui.ha")


class LoopEtcd:
    """The daemon's etcd reads and writes (part of `loop.Daemon`)."""

    def _read_cluster(self) -> Cluster | None:
        """Read the cluster, retrying for up to retry_timeout; None means etcd is unreachable.

        A leader may wait longer, as long as its lease allows (lease.py): a slow etcd is not a
        dead one, and until the lease runs short nobody else can take over anyway."""
        deadline = time.monotonic() + self.dynamic.retry_timeout
        base_timeout = self.etcd.timeout
        leader = self.cluster is not None and self.cluster.leader_name == self.name and self.lease is not None
        if leader:
            # Longer than retry_timeout while the lease allows it, and never past the point where
            # the leader must stop (also when that is sooner than retry_timeout: a read that ran
            # on would leave the fencing guard to stop PostgreSQL before the daemon decided).
            deadline = time.monotonic() + max(0.0, self.keeper.left())
        while True:
            try:
                if leader:
                    # The client tries each endpoint in turn with this socket timeout, so the
                    # lease's time is shared among them: with three unreachable members a whole
                    # timeout each made one read outlast the lease (seen in tests/hosts: the
                    # fencing guard stopped PostgreSQL before the daemon had decided anything).
                    left = min(float(self.lease_ttl), deadline - time.monotonic())
                    self.etcd.timeout = max(0.5, left / max(1, len(self.etcd.endpoints)))
                try:
                    cluster = self.store.read()
                finally:
                    self.etcd.timeout = base_timeout
                self.cluster = cluster
                if not self.dcs_ok:
                    log.info("etcd is reachable again")
                self.dcs_ok = True
                self.view.dcs_last_seen = int(time.time())  # shown to people: wall clock
                self.dcs_seen_at = time.monotonic()
                return cluster
            except DCSError as exc:
                if time.monotonic() >= deadline or self.stopping.is_set():
                    if self.dcs_ok:
                        log.error("Error communicating with DCS: %s", exc)
                    self.dcs_ok = False
                    return None
                if leader:
                    self.keeper.send()  # etcd may be back for the lease before the read succeeds
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def _read_cluster_fast(self) -> Cluster | None:
        try:
            self.cluster = self.store.read()
            return self.cluster
        except DCSError:
            return None

    def _keep_lease(self, cluster: Cluster) -> bool:
        """Keep our lease alive; if the leader key names us, make sure it is on our lease.

        Returns True when we hold the lock and refreshed it this cycle.
        """
        self._view_stale = False
        try:
            started = time.monotonic()
            if self.lease is not None and self.lease_ttl == self.dynamic.ttl:
                # The keepalive went out at the start of the cycle (lease.py); a healthy etcd has
                # answered by now, a slow one answers later and the lease view says how long we have.
                self.keeper.wait_ack(min(1.0, self.keeper.left()))
            if self.lease is None or self.lease_ttl != self.dynamic.ttl:
                self.lease = self.etcd.grant_lease(self.dynamic.ttl)
                self.lease_ttl = self.dynamic.ttl
                self.last_member_data = None
                self.lease_refreshed_at = started  # etcd counts the TTL from later than this
            elif self.keeper.expired == self.lease:
                log.warning("our etcd lease expired; taking a new one")
                self.lease = self.etcd.grant_lease(self.dynamic.ttl)
                self.last_member_data = None
                self.lease_refreshed_at = started
            if cluster.leader_name != self.name:
                return False
            if self.keeper.left() <= 0:
                log.error("failed to update leader lock: the last keepalive etcd acknowledged leaves %.1fs of "
                          "lease, less than the %.1fs needed to stop safely",
                          max(0.0, self.keeper.deadline() - time.monotonic()), self.keeper.budget())
                return False
            if cluster.leader is not None and cluster.leader.lease != self.lease:
                # After a restart of the daemon (or a new lease) the key still names us but
                # lives on the old lease: move it to ours with a compare-on-value write.
                self._view_stale = True
                if not self.store.hold_leader(self.name, self.lease):
                    return False
                self.last_member_data = None
            self.lock_refreshed_at = time.monotonic()
            return True
        except DCSError as exc:
            log.error("failed to update leader lock: %s", exc)
            return False

    def fence_margin(self) -> float:
        fencing = getattr(self.rt.node, "fencing", None)
        return float(getattr(fencing, "safety_margin", 5))

    @contextmanager
    def lease_kept(self, what: str) -> Iterator[None]:
        """Run a long operation (a restart, a clone, a rewind) in the HA thread while a helper
        thread keeps our etcd lease alive every loop_wait: the leader key (when we hold it) and
        our member key outlive a restart slower than ttl, as they do in Patroni, whose HA loop
        goes on beside its restart. The fencing guard is fed only while it is armed (we were the
        leader at the last cycle) and each keepalive succeeded, so a lost etcd still fences."""
        stop = threading.Event()

        def keep() -> None:
            while not stop.wait(max(1.0, float(self.dynamic.loop_wait))):
                lease = self.lease
                if lease is None:
                    continue
                started = time.monotonic()
                try:
                    self.etcd.keepalive(lease)
                except (DCSError, LeaseExpired) as exc:
                    log.warning("%s in progress: could not keep the etcd lease alive: %s", what, exc)
                    continue
                self.lease_refreshed_at = max(self.lease_refreshed_at, started)  # the lease view only moves on
                self.fence.refresh(started, self.lease_ttl, lease,
                                   paused=bool(self.cluster is not None and self.cluster.is_paused))

        keeper = threading.Thread(target=keep, name=f"lease-during-{what}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join(timeout=10)

    def _housekeeping(self) -> None:
        if not self.dcs_ok:
            return
        cluster = self.cluster
        self.view.paused = bool(cluster and cluster.is_paused)
        self.touch_member()
        if cluster is None or cluster.leader_name != self.name or self.view.role != "primary":
            return
        try:
            slots, retain = self.slots.status_fields()
            optime = self.view.xlog_location
            if optime is not None and slots:
                # The slots were read after our WAL position, and a replica can have confirmed WAL
                # written in between: the WAL reaches at least every slot's position.
                optime = max(optime, *slots.values())
            if optime is not None and cluster.status != Status(optime, slots, retain):
                self.store.write_status(Status(optime, slots, retain))
            if cluster.initialize is None or cluster.initialize == "":
                sysid = self.pg.sysid()
                if sysid:
                    self.store.set_initialize(sysid)
            if cluster.config is None or not cluster.config.data:
                self.store.write_config(self.dynamic.data, 0)
            if self.view.timeline and self.view.timeline > 1 and (
                    cluster.history is None or cluster.history.last_timeline < self.view.timeline - 1):
                self._update_history()
        except DCSError as exc:
            log.warning("leader bookkeeping failed: %s", exc)

    def touch_member(self, force: bool = False) -> None:
        if self.lease is None:
            return
        data = member_data(self.view)
        if not force and data == self.last_member_data:
            return
        try:
            self.store.touch_member(self.name, data, self.lease)
            self.last_member_data = data
        except DCSError as exc:
            log.warning("could not update my member key: %s", exc)

    def _update_history(self) -> None:
        """After a promotion, add the timeline(s) we branched from to the `history` key."""
        try:
            cluster = self.store.read()
            tl = queries.fetch_state(self.pg).timeline or self.view.timeline
            lines = self.pg.read_history_file(tl) if tl and tl > 1 else []
            if not lines:
                log.info("timeline history not written yet: no history file for timeline %s", tl)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not update the timeline history: %s", exc)
            return
        known = {e.timeline: e for e in (cluster.history.entries if cluster.history else ())}
        entries: list[HistoryEntry] = []
        now = datetime.now(timezone.utc).astimezone().isoformat()
        for i, (line_tl, lsn, reason) in enumerate(lines):
            if line_tl in known:
                entries.append(known[line_tl])
            elif i == len(lines) - 1:
                entries.append(HistoryEntry(line_tl, lsn, reason, now, self.name))
            else:
                entries.append(HistoryEntry(line_tl, lsn, reason))
        if not entries:
            return
        max_lines = self.dynamic.max_timelines_history
        if max_lines > 0:
            entries = entries[-max_lines:]
        self.store.write_history(TimelineHistory(tuple(entries)))
