"""The actions that start, stop and point a PostgreSQL at its upstream: start, stop, demote,
follow, rewind; and the standby settings (primary_conninfo, slot) for a given upstream.

A part of `loop.Daemon` (a mixin: the methods run on the daemon object, with its attributes).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..cluster import Cluster
from ..etcd.store import DCSError
from . import standby_cluster
from .ha import Action
from .slots import slot_name_from_member_name

log = logging.getLogger("hatui.ha")


class RejoinActions:
    """start, stop, demote, follow, rewind (part of `loop.Daemon`)."""

    def _member_address(self, cluster: Cluster | None, name: str | None) -> tuple[str, int] | None:
        if cluster is None or name is None:
            return None
        m = cluster.member(name)
        if m is None or not m.host:
            return None
        return m.host, m.port

    def _standby_for(self, cluster: Cluster | None, target: str | None):
        sc, dyn = standby_cluster.config_of(self.dynamic), self.dynamic
        if self.rt.node.tags.nostream:
            return self.rt.standby_config(None, sc, dynamic=dyn)  # nostream: no WAL streaming, as in Patroni
        if target == standby_cluster.REMOTE:  # a standby leader follows the remote primary
            return self.rt.standby_config(standby_cluster.remote_address(sc), sc, standby_leader=True, dynamic=dyn)
        addr = self._member_address(cluster, target)
        standby = self.rt.standby_config(addr, sc, dynamic=dyn)
        if addr is not None and self.dynamic.use_slots:
            standby = replace(standby, slot_name=slot_name_from_member_name(self.name))
        return standby

    def _start(self, mode: str, target: str | None, cluster: Cluster | None) -> bool:
        standby = None if mode == "primary" else self._standby_for(cluster, target)
        self.pg.write_config(self.rt.effective_parameters(self.dynamic), self.rt.pg_hba(self.dynamic), standby)
        self.following = target if standby is not None and (standby.host or target == standby_cluster.REMOTE) \
            else None
        self.view.state = "starting"
        self.touch_member(force=True)
        try:
            self.pg.start(timeout=self.dynamic.primary_start_timeout if mode == "primary" else 60)
        except Exception as exc:  # noqa: BLE001
            log.error("failed to start postgres: %s", exc)
            self.view.state = "start failed"
            self.start_failed = True
            return False
        self.start_failed = False
        self.view.state = "running"
        self.callbacks.started(mode)
        return True

    def _do_rewind(self, a: Action, cluster: Cluster | None) -> bool:
        addr = self._member_address(cluster, a.target)
        if addr is None:
            return False
        # pg_rewind needs the source's pg_control to show its new timeline; a fresh leader
        # may not have checkpointed yet, so ask for one instead of waiting a loop for it.
        try:
            self.rt.checkpoint_remote(addr)
        except Exception as exc:  # noqa: BLE001
            log.info("could not request a checkpoint on %s (%s); rewinding anyway", a.target, exc)
        ok, output = self.pg.rewind(self.rt.rewind_conninfo(addr), a.target, self._standby_for(cluster, a.target))
        if not ok:
            self.rewind_failed_for = a.target
            log.error("pg_rewind from %s failed", a.target)
            return False
        self.rewind_failed_for = None
        return True

    def _do_start(self, a: Action, cluster: Cluster | None) -> bool:
        target = a.target
        if a.mode == "replica" and target is None and cluster is not None and cluster.leader_name != self.name:
            target = cluster.leader_name
        return self._start(a.mode or "replica", target, cluster)

    def _do_stop(self, a: Action, cluster: Cluster | None) -> bool:
        self.view.state = "stopping"
        role = self.view.role
        self.callbacks.before_stop()
        if self.pg.stop(a.mode or "fast"):
            self.callbacks.fire("on_stop", role)
        self.view.state = "stopped"
        self.wake.set()
        return True

    def _do_demote(self, a: Action, cluster: Cluster | None) -> bool:
        mode = a.mode or "immediate-nolock"
        if mode == "demote-cluster":
            # Primary -> standby leader: a clean stop, then follow the remote primary; the
            # leader key stays ours (Patroni's demote('demote-cluster')).
            self.view.state = "stopping"
            self.pg.stop("fast")
            self.view.role = "demoted"
            return self._start("replica", standby_cluster.REMOTE, cluster)
        pg_mode = "fast" if mode in ("offline", "graceful") else "immediate"
        self.view.state = "stopping"
        if pg_mode == "fast":
            # An immediate demote (the lock is lost) waits for no script: a write accepted
            # meanwhile could be lost to the new primary.
            self.callbacks.before_stop()
        if self.pg.stop(pg_mode):
            self.callbacks.fire("on_stop", "primary")
        self.view.role = "demoted"
        self.view.state = "stopped"
        if mode == "immediate":
            try:
                self.store.release_leader(self.name)
            except DCSError:
                pass
        if mode == "offline":
            # etcd is gone: come back read-only without an upstream; the next cycles follow
            # whoever holds the lock once etcd answers again.
            return self._start("replica", None, None)
        self.wake.set()  # rejoin (rewind if needed) in the next cycle, right away
        return True

    def _do_follow(self, a: Action, cluster: Cluster | None) -> bool:
        standby = self._standby_for(cluster, a.target)
        changed = self.pg.write_config(self.rt.effective_parameters(self.dynamic), self.rt.pg_hba(self.dynamic),
                                       standby)
        self.following = a.target
        if changed:
            self.pg.reload()
            who = a.target if a.target != standby_cluster.REMOTE else \
                f"the remote primary ({standby_cluster.describe(standby_cluster.config_of(self.dynamic))})"
            log.info("following %s: primary_conninfo updated, server signaled", who)
            self.callbacks.fire("on_reload", "replica")
        return True
