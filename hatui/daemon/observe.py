"""Observing the local PostgreSQL for the HA decision: running or not, its role, timeline and
WAL position (from SQL when it runs, from pg_control and the WAL on disk when it does not), and
the member view (`NodeView`) the REST API and the member key publish.

A part of `loop.Daemon` (a mixin: the methods run on the daemon object, with its attributes).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from ..cluster import Cluster, parse_lsn
from . import queries, standby_cluster
from .ha import LocalPostgres, Observation

log = logging.getLogger("hatui.ha")


class Observer:
    """What the daemon sees of its PostgreSQL (part of `loop.Daemon`)."""

    def _observe(self, cluster: Cluster | None, lock_refreshed: bool) -> Observation:
        led = self.cluster is not None and self.cluster.leader_name == self.name and self.lease is not None
        return Observation(
            lease_left=self.keeper.left() if led else None,
            settings=self.rt.settings(self.dynamic),
            pg=self._observe_postgres(),
            cluster=cluster,
            lock_refreshed=lock_refreshed,
            rewind_failed=bool(cluster and self.rewind_failed_for and self.rewind_failed_for == cluster.leader_name),
            now=datetime.now(timezone.utc),
            start_failed=self.start_failed,
            standby_cluster=standby_cluster.config_of(self.dynamic) is not None,
        )

    def _position_after_probe(self, pg: LocalPostgres) -> LocalPostgres:
        """A running primary's WAL position, read again once its peers have answered.

        The leader race compares our position with the peers'. Ours was read at the start of the
        cycle, theirs over their REST APIs afterwards; under writes a streaming replica had by then
        received more than our old reading, and a primary that had only lost its leader key
        (deleted, or expired while failsafe kept it up) demoted itself to a replica that seemed
        ahead. A replica cannot hold WAL its primary has not flushed: read ours after theirs."""
        if not (pg.running and pg.role == "primary"):
            return pg
        position = queries.primary_flush_position(self.pg)
        return replace(pg, wal_position=position) if position is not None else pg

    def _observe_postgres(self) -> LocalPostgres:
        pg = self.pg
        state = pg.data_dir_state()
        if state != "valid":
            self.view.state, self.view.role = "stopped", "uninitialized"
            return LocalPostgres(data_dir=state, running=pg.is_running())
        if pg.is_running():
            s = queries.fetch_state(pg)
            if not s.accepting_connections:
                # Starting up, shutting down or refusing us: not yet a role we can act on.
                log.info("PostgreSQL is running but not accepting connections yet: %s", s.error)
                self.view.state = "starting"
                return LocalPostgres("valid", running=True, role=self._controldata_role(), sysid=pg.sysid(),
                                     following=self.following)
            s.timeline, self.replica_tl_seen = queries.replica_timeline(self.replica_tl_seen, s)
            self._update_view_from_state(s)
            return LocalPostgres("valid", True, "replica" if s.in_recovery else "primary", s.timeline,
                                 s.wal_position, s.sysid, False, self.following, s.pending_restart)
        cd = pg.controldata()
        cluster_state = cd.get("Database cluster state", "")
        role = "replica" if "recovery" in cluster_state else "primary"
        if role == "primary" and os.path.exists(os.path.join(pg.data_dir, "backup_label")):
            # A base backup whose recovery never began (its first start failed: a port taken by
            # another process...). Its pg_control says "in production", copied from the primary,
            # but it is a standby's data: single-user crash recovery would end its recovery with a
            # checkpoint ahead of the leader, and it could never stream. It starts as a replica.
            role = "replica"
        crashed = cluster_state not in ("shut down", "shut down in recovery")
        tl = _int(cd.get("Latest checkpoint's TimeLineID"))
        lsn = parse_lsn(cd.get("Latest checkpoint location"))
        if not crashed:
            # Where our WAL really ends decides whether we diverged from the new leader.
            try:
                end = pg.local_wal_end()
            except Exception as exc:  # noqa: BLE001 - fall back to the checkpoint location
                log.warning("could not find the end of the local WAL: %s", exc)
                end = None
            if end is not None:
                tl, lsn = end
        if self.view.state not in ("creating replica",):
            self.view.state = "crashed" if crashed and self.view.state == "running" else "stopped"
        self.view.role = "demoted" if self.view.role == "primary" else self.view.role
        return LocalPostgres("valid", False, role, tl, lsn, cd.get("Database system identifier"), crashed, None)

    def _controldata_role(self) -> str | None:
        try:
            state = self.pg.controldata().get("Database cluster state", "")
        except Exception:  # noqa: BLE001
            return None
        return "replica" if "recovery" in state else "primary"

    def _update_view_from_state(self, s: Any) -> None:
        v = self.view
        v.state = "running"
        v.role = "replica" if s.in_recovery else "primary"
        if v.role == "replica" and self.following == standby_cluster.REMOTE and \
                self.cluster is not None and self.cluster.leader_name == self.name:
            v.role = "standby_leader"
        v.timeline = s.timeline
        v.xlog_location = s.wal_position
        v.receive_lsn = s.receive_lsn if s.in_recovery else None
        v.replay_lsn = s.replay_lsn if s.in_recovery else None
        v.replication_state = s.replication_state if s.in_recovery else None
        v.replayed_timestamp = getattr(s, "last_replay_timestamp", None)
        v.replay_paused = bool(getattr(s, "replay_paused", False))
        v.pending_restart = bool(s.pending_restart)
        v.pending_restart_reason = dict(s.pending_restart_reason or {})
        v.server_version = s.server_version
        v.postmaster_start_time = s.postmaster_start_time
        v.sysid = s.sysid
        v.replication = [
            {k: r.get(k) for k in ("usename", "application_name", "client_addr", "state", "sync_state", "sync_priority")}
            for r in (s.replicas or [])
        ]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
