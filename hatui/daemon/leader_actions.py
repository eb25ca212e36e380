"""The actions around the leader lock: take and release it, promote, the graceful switchover
demotion (hand over once the candidate has all our WAL), the initialize and failover keys, and
the fatal stop.

A part of `loop.Daemon` (a mixin: the methods run on the daemon object, with its attributes).
"""

from __future__ import annotations

import logging
import time

from ..cluster import Cluster, parse_lsn
from ..etcd.store import DCSError
from . import queries, sync
from .ha import Action
from .peers import probe_one
from .wdcheck import may_lead
from .errors import FatalError

log = logging.getLogger("hatui.ha")


class LeaderActions:
    """acquire/release the lock, promote, switchover (part of `loop.Daemon`)."""

    def _do_promote(self, a: Action, cluster: Cluster | None) -> bool:
        may_promote = True
        if self.callbacks.pre_promote_cmd:
            with self.lease_kept("pre_promote"):
                may_promote = self.callbacks.pre_promote()
        if not may_promote:
            log.warning("pre_promote script failed: not promoting, giving the leader lock back")
            try:
                self.store.release_leader(self.name)
            except DCSError as exc:
                log.error("could not release the leader lock: %s", exc)
            return False
        self.view.role = "promoted"
        self.view.checkpoint_after_promote = False
        self.slots.on_promote()
        sync.claim(self, cluster)
        # The config files stay as they are until the promotion is done: PostgreSQL itself
        # removes standby.signal at the end of recovery and fails if it is already gone.
        try:
            self.pg.promote()
        except Exception as exc:  # noqa: BLE001
            log.error("promote failed: %s", exc)
            return False
        self.following = None
        self.view.role = "primary"
        self.callbacks.fire("on_role_change", "primary")
        self.touch_member(force=True)
        self.pg.write_config(self.rt.effective_parameters(self.dynamic), self.rt.pg_hba(self.dynamic), None)
        try:
            queries.checkpoint(self.pg)
        except Exception as exc:  # noqa: BLE001
            log.warning("CHECKPOINT after promote failed: %s", exc)
        self.view.checkpoint_after_promote = None
        # Publish the new timeline now, not a cycle later: the REST API and the member key
        # are what clients and the other members read.
        state = queries.fetch_state(self.pg)
        if state.accepting_connections:
            self._update_view_from_state(state)
            self.touch_member(force=True)
        self._update_history()
        return True

    def _do_acquire_lock(self, a: Action, cluster: Cluster | None) -> bool:
        if self.lease is None or not may_lead(self.rt.node, "taking the leader lock"):
            return False
        try:
            won = self.store.take_leader(self.name, self.lease)
            if won and not (cluster and cluster.is_paused):
                self.fence.beat(self.lease_refreshed_at, self.lease_ttl, self.lease)  # guard from the start
            return won
        except DCSError as exc:
            log.error("could not take the leader lock: %s", exc)
            return False

    def _do_release_lock(self, a: Action, cluster: Cluster | None) -> bool:
        try:
            self.store.release_leader(self.name)
        except DCSError as exc:
            log.error("could not release the leader lock: %s", exc)
            return False
        return True

    def _do_set_initialize(self, a: Action, cluster: Cluster | None) -> bool:
        sysid = self.pg.sysid()
        if sysid:
            self.store.etcd.create(self.store.paths.initialize, sysid)
        return True

    def _do_clear_failover(self, a: Action, cluster: Cluster | None) -> bool:
        try:
            self.store.clear_failover()
        except DCSError:
            return False
        return True

    def _do_switchover_demote(self, a: Action, cluster: Cluster | None) -> bool:
        """Graceful: checkpoint, fast stop, hand the lock over once the candidate has all our WAL."""
        target = a.target
        try:
            queries.checkpoint(self.pg)
        except Exception as exc:  # noqa: BLE001
            log.warning("CHECKPOINT before switchover failed: %s", exc)
        self.view.state = "stopping"
        self.touch_member(force=True)
        self.callbacks.before_stop()
        if self.pg.stop("fast"):
            self.callbacks.fire("on_stop", "primary")
        self.view.role = "demoted"
        self.view.state = "stopped"
        final = parse_lsn(self.pg.controldata().get("Latest checkpoint location"))
        member = cluster.member(target) if cluster else None
        deadline = time.monotonic() + max(5, self.dynamic.loop_wait)

        def received_by_sql() -> bool | None:
            """Ask the candidate's PostgreSQL itself: its REST view is only refreshed once per
            cycle, which would stretch every switchover by up to loop_wait. None: cannot ask."""
            addr = self._member_address(cluster, target)
            if addr is None:
                return None
            user, password = self.rt.superuser
            try:
                with queries.connect_other(self.rt.superuser_options, host=addr[0], port=addr[1], user=user,
                                           password=password or None, dbname=self.pg.database,
                                           connect_timeout=2, autocommit=True) as conn:
                    while time.monotonic() < deadline:
                        row = conn.execute("SELECT pg_last_wal_receive_lsn() - '0/0'::pg_lsn").fetchone()
                        if row and row[0] is not None and int(row[0]) >= final:
                            return True
                        time.sleep(0.02)
                    return False
            except Exception as exc:  # noqa: BLE001 - fall back to the REST view
                log.info("switchover: cannot ask %s's PostgreSQL for its WAL position (%s)", target, exc)
                return None

        if member is not None and final is not None:
            confirmed = received_by_sql()
            if confirmed is None and member.api_url:
                while time.monotonic() < deadline:
                    status, body = probe_one(target or "", member.api_url, timeout=1.0)
                    if body and (status.wal_position or 0) >= final:
                        confirmed = True
                        break
                    time.sleep(0.25)
            if confirmed:
                log.info("switchover: %s has received WAL up to the shutdown checkpoint", target)
            else:
                log.warning("switchover: %s has not confirmed WAL up to the shutdown checkpoint", target)
        try:
            self.store.release_leader(self.name)
        except DCSError as exc:
            log.error("switchover: could not release the leader lock: %s", exc)
        log.info("Lock owner: None; I am %s", self.name)
        log.info("switchover: demote in progress")
        return self._start("replica", target, cluster)

    def _do_fatal(self, a: Action, cluster: Cluster | None) -> bool:
        raise FatalError("stopping the daemon: see the previous message")
