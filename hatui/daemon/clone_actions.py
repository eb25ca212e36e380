"""The actions that make a data directory: bootstrap a new cluster (or a standby cluster's
leader), clone a replica, reinitialize, and crash recovery of a data directory left unclean.

A part of `loop.Daemon` (a mixin: the methods run on the daemon object, with its attributes).
"""

from __future__ import annotations

import logging

from ..cluster import Cluster
from ..etcd.store import DCSError
from . import bootstrap, faultpoint, standby_cluster
from .ha import Action
from .wdcheck import may_lead
from .errors import FatalError

log = logging.getLogger("hatui.ha")


class CloneActions:
    """bootstrap, clone, reinit, crash_recovery (part of `loop.Daemon`)."""

    def _do_bootstrap(self, a: Action, cluster: Cluster | None) -> bool:
        if not may_lead(self.rt.node, "bootstrapping a new cluster"):
            return False
        faultpoint.reached("bootstrap-race")
        if not self.store.race_initialize():
            log.info("failed to acquire initialize lock")
            # Normal when members start together: say what happens, not that a bootstrap failed.
            log.info("lost the bootstrap race: another member is initializing the cluster; cloning from it instead")
            return False
        standby_leader = a.mode == "standby_leader"
        log.info("trying to bootstrap a new %s", "standby leader" if standby_leader else "cluster")
        self.view.state = "initializing new cluster"
        self.touch_member(force=True)
        try:
            if standby_leader:
                self._bootstrap_standby_leader()
            else:
                bootstrap.initialize(self)
            sysid = self.pg.sysid() or ""
            self.store.set_initialize(sysid)
            config = self.rt.bootstrap_dcs()
            self.store.write_config(config, 0)
            assert self.lease is not None
            if not self.store.take_leader(self.name, self.lease):
                raise RuntimeError("another node took the leader key during bootstrap")
        except Exception as exc:  # noqa: BLE001
            log.error("bootstrap failed: %s", exc or type(exc).__name__)
            log.info("removing initialize key after failed attempt to bootstrap the cluster")
            try:
                self.store.cancel_initialize()
            except DCSError:
                pass
            try:
                if self.pg.is_running():
                    self.pg.stop("immediate")
                if self.pg.data_dir_state() != "missing":  # a failed clone leaves none
                    self.pg.move_data_dir_aside()
            except Exception as exc2:  # noqa: BLE001
                log.error("could not move the failed data dir aside: %s", exc2)
            raise FatalError("Failed to bootstrap cluster") from exc
        self.view.state = "running"
        self.view.role = "standby_leader" if standby_leader else "primary"
        self.applied_config_revision = -1
        self.callbacks.started("primary")
        return True

    def _bootstrap_standby_leader(self) -> None:
        """A new standby cluster: copy the remote primary (standby_cluster.create_replica_methods)
        and follow it; the caller then takes the initialize and leader keys as for any bootstrap."""
        sc = standby_cluster.config_of(self.rt.bootstrap_dynamic()) or {}
        log.info("clone from remote member %s", standby_cluster.describe(sc))
        self.rt.create_replica(standby_cluster.remote_address(sc), sc)
        self.dynamic = self.rt.bootstrap_dynamic()
        if not self._start("replica", standby_cluster.REMOTE, None):
            raise RuntimeError("the standby leader's PostgreSQL did not start")

    def _do_clone(self, a: Action, cluster: Cluster | None) -> bool:
        # target None: no member to copy from, only create_replica_methods marked no_leader run.
        addr = self._member_address(cluster, a.target) if a.target is not None else None
        if a.target is not None and addr is None:
            log.error("cannot clone: member %s has no address", a.target)
            return False
        self.view.state, self.view.role = "creating replica", "replica"
        self.touch_member(force=True)
        try:
            self.rt.create_replica(addr, standby_cluster.config_of(self.dynamic))
        except Exception as exc:  # noqa: BLE001
            log.error("failed to bootstrap %s: %s", f"from {a.target}" if a.target else "(without leader)", exc)
            self.view.state = "stopped"
            return False
        return self._start("replica", cluster.leader_name if cluster else a.target, cluster)

    def _do_reinit(self, a: Action, cluster: Cluster | None) -> bool:
        if self.pg.is_running():
            self.pg.stop("immediate")
        self.pg.remove_data_dir()
        self.rewind_failed_for = None
        return self._do_clone(a, cluster)

    def _do_crash_recovery(self, a: Action, cluster: Cluster | None) -> bool:
        try:
            self.pg.single_user_recovery()
        except Exception as exc:  # noqa: BLE001
            log.error("crash recovery failed: %s", exc)
            return False
        self.wake.set()  # decide again at once with the recovered pg_control
        return True
