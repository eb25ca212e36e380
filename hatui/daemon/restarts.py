"""Work the REST API hands to the HA thread (restart, reinitialize; reload is in dynconfig.py)
and the scheduled restart, run inside the HA cycle so an operator's action never races an HA one.

A part of `loop.Daemon` (a mixin: the methods run on the daemon object, with its attributes).
"""

from __future__ import annotations

import logging
import queue
from datetime import datetime, timezone

from ..cluster import Cluster
from . import queries, sync
from .ha import Action
from .requests import Request

log = logging.getLogger("hatui.ha")


class RestartWork:
    """REST requests and scheduled restarts, served in the HA thread (part of `loop.Daemon`)."""

    def submit(self, req: Request, timeout: float) -> Request:
        self.requests.put(req)
        self.wake.set()
        if not req.done.wait(timeout):
            req.status, req.text = 503, f"{req.kind} status unknown"
        return req

    def _serve_requests(self, cluster: Cluster | None) -> None:
        while True:
            try:
                req = self.requests.get_nowait()
            except queue.Empty:
                return
            try:
                handler = getattr(self, f"_req_{req.kind}")
                handler(req, cluster)
            except Exception as exc:  # noqa: BLE001
                log.exception("request %s failed", req.kind)
                req.finish(500, f"{req.kind} failed: {exc}")

    def _req_restart(self, req: Request, cluster: Cluster | None) -> None:
        if not self.pg.is_running():
            self._restart_stopped(req, cluster)
            return
        role = self.view.role
        left_sync = sync.leave(self, "restarting")
        self.view.state = "restarting"
        self.touch_member(force=True)
        log.info("restarting PostgreSQL (%s)", req.params.get("reason", "requested over the REST API"))
        standby = None if role == "primary" else self._standby_for(cluster, self.following)
        if role != "primary" and standby is None:
            standby = self._standby_for(None, None)
        self.pg.write_config(self.rt.effective_parameters(self.dynamic), self.rt.pg_hba(self.dynamic), standby)
        try:
            with self.lease_kept("restart"):
                self.callbacks.before_stop()
                self.pg.restart(timeout=float(req.params.get("timeout") or 60))
            self.callbacks.fire("on_restart", role)
        except Exception as exc:  # noqa: BLE001
            self.view.state = "restart failed"
            req.finish(503, f"restart failed: {exc}")
            return
        finally:
            if left_sync:
                sync.rejoin(self)
        self.view.state = "running"
        self.view.scheduled_restart = None
        try:
            self._update_view_from_state(queries.fetch_state(self.pg))
        except Exception:  # noqa: BLE001
            pass
        self.touch_member(force=True)
        req.finish(200, "restarted successfully")

    def _restart_stopped(self, req: Request, cluster: Cluster | None) -> None:
        """A restart of a stopped server is a start, as in Patroni: while paused, it is how an
        operator brings PostgreSQL back by hand (the HA loop starts nothing then)."""
        if self.pg.data_dir_state() != "valid":
            req.finish(503, "restart failed: no valid data directory")
            return
        leader = cluster.leader_name if cluster is not None else None
        if leader == self.name:
            mode, target = "primary", None
        elif leader:
            mode, target = "replica", leader
        else:
            mode, target = self._controldata_role() or "replica", None
        log.info("PostgreSQL is not running: starting it as %s (%s)", mode,
                 req.params.get("reason", "restart requested over the REST API"))
        with self.lease_kept("start"):
            started_ok = self._start(mode, target, cluster)
        if not started_ok:
            req.finish(503, "restart failed")
            return
        self.view.scheduled_restart = None
        try:
            self._update_view_from_state(queries.fetch_state(self.pg))
        except Exception:  # noqa: BLE001 - the next cycle observes it anyway
            pass
        self.touch_member(force=True)
        self.wake.set()
        req.finish(200, "restarted successfully")

    def _run_scheduled_restart(self, cluster: Cluster | None) -> None:
        entry = self.view.scheduled_restart
        if not entry:
            return
        try:
            when = datetime.fromisoformat(str(entry["schedule"]))
        except (KeyError, ValueError):
            self.view.scheduled_restart = None
            return
        if datetime.now(timezone.utc) < when:
            return
        self.view.scheduled_restart = None
        from .api_backend import DaemonBackend

        if not DaemonBackend(self).restart_conditions_met(entry.get("role"), entry.get("postgres_version"),
                                                         bool(entry.get("restart_pending"))):
            log.info("scheduled restart skipped: restart conditions are not satisfied")
            return
        log.info("running the restart scheduled for %s", entry["schedule"])
        req = Request("restart", {"timeout": entry.get("timeout"), "reason": "scheduled restart"})
        self._req_restart(req, cluster)
        log.info("scheduled restart: %s", req.text)

    def _req_reinitialize(self, req: Request, cluster: Cluster | None) -> None:
        if cluster is None or cluster.leader is None:
            req.finish(503, "Cluster has no leader, can not reinitialize")
            return
        if cluster.leader_name == self.name:
            req.finish(503, "I am the leader, can not reinitialize")
            return
        self.view.state = "creating replica"
        self.touch_member(force=True)
        started = req.params.get("started")
        if started is not None:
            started.set()  # the API answers "reinitialize started" now, showing "creating replica"
        source = cluster.leader_name
        if not req.params.get("from_leader"):
            # As Patroni: a running member tagged clonefrom takes the copy load off the leader.
            source = next((m.name for m in cluster.members if m.name not in (self.name, cluster.leader_name)
                           and m.clonefrom and m.is_running and m.host), source)
        log.info("reinitializing: removing the data directory and cloning from %s", source)
        ok = self._run_action(Action("reinit", source), cluster)
        req.finish(200 if ok else 503, "reinitialize finished" if ok else "reinitialize failed")
