"""The REST API's view of a running daemon (api.ApiBackend over requests.DaemonPort, which
loop.Daemon implements).

The API threads never touch PostgreSQL's process: reads come from the loop's last observation,
but for what PostgreSQL itself knows (WAL positions, timeline, replication), which is queried
when the request comes on the API's own session (api_pgstatus, as Patroni does); writes go to
etcd or, for restart, reload and reinitialize, through the loop's request queue.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from .. import config as cfg
from ..cluster import Cluster, Failover
from ..etcd.store import DCSError
from .api import ApiRefusal, ApiServer
from .api_pgstatus import LIVE_STATES, LiveStatus, apply_live
from .api_rules import merge_patch, postgres_version_to_int
from .decisions import lease_time_left, metrics_lines
from .member import patroni_status
from .peers import probe_members
from .requests import DaemonPort, Request

log = logging.getLogger("hatui.api")


def _refuse_invalid(data: Any, known_parameters: frozenset[str] | None = None) -> None:
    problems = cfg.errors(cfg.validate_dynamic(data, known_parameters))
    if problems:
        raise ApiRefusal(400, "; ".join(p.message for p in problems))


class DaemonBackend:
    def __init__(self, daemon: DaemonPort) -> None:
        self.d = daemon
        # Opened at the first status request, not here (restarts.py builds a backend for one check).
        self.live = LiveStatus(lambda: self.d.pg.connect_kwargs())

    @classmethod
    def start_server(cls, daemon: DaemonPort) -> ApiServer:
        r = daemon.rt.node.restapi
        auth = None
        if r.authentication and r.authentication.username:
            auth = (r.authentication.username, r.authentication.password or "")
        server = ApiServer(
            cls(daemon), listen=daemon.rt.node.restapi_listen, auth=auth, auth_get=r.auth_get,
            certfile=r.certfile, keyfile=r.keyfile, cafile=r.cafile, verify_client=r.verify_client,
            allowlist=list(r.allowlist) or None, allowlist_include_members=r.allowlist_include_members,
        )
        server.start()
        log.info("REST API listening on %s:%d", server.listen[0], server.port)
        return server

    # ---- reads -----------------------------------------------------------------------------
    def node_status(self) -> dict:
        v = self.d.view
        status = patroni_status(v)
        row = self.live.query() if v.state in LIVE_STATES else None
        status = apply_live(status, row, v.role, v.timeline, v.postmaster_start_time)
        left = lease_time_left(self.d)
        if left is not None and isinstance(status.get("decision"), dict):
            status["decision"] = {**status["decision"], "lease_time_left": left}  # live, never in etcd
        return status

    def close(self) -> None:
        """The API server stopped: end its PostgreSQL session."""
        self.live.close()

    def extra_metrics(self) -> str:
        return metrics_lines(self.d.rt.scope, self.d.name, self.d.narrator.counters)

    def cluster(self) -> Cluster | None:
        return self.d.cluster

    def dcs_ok(self) -> bool:
        return self.d.dcs_ok and time.monotonic() - self.d.dcs_seen_at < self.d.dynamic.ttl

    def is_leader(self) -> bool:
        return self.d.name == (self.d.cluster.leader_name if self.d.cluster else None) and \
            time.monotonic() - self.d.lock_refreshed_at < self.d.dynamic.ttl

    def next_run(self) -> float:
        return self.d.next_run_at  # time.monotonic() clock

    def _current_cluster(self) -> Cluster | None:
        """etcd as it is now, as Patroni's API reads it; the loop's last view (a cycle old) only
        when etcd does not answer."""
        try:
            return self.d.store.read()
        except DCSError:
            return self.d.cluster

    def dynamic_config(self) -> tuple[dict, int] | None:
        cluster = self._current_cluster()
        if cluster is None or cluster.config is None:
            return None
        return dict(cluster.config.data), cluster.config.mod_revision

    # ---- config writes ---------------------------------------------------------------------
    def patch_config(self, patch: dict) -> dict:
        current = self.dynamic_config()
        if current is None:
            raise ApiRefusal(503, "no configuration in DCS")
        data, revision = current
        new = merge_patch(data, patch)
        _refuse_invalid(new, self.d.pg.parameter_names())
        try:
            if not self.d.store.write_config(new, revision):
                raise ApiRefusal(409, "Conflict")
        except DCSError as exc:
            raise ApiRefusal(503, f"failed to write the configuration: {exc}") from None
        self.d.wake.set()
        return new

    def put_config(self, new: dict) -> dict:
        _refuse_invalid(new, self.d.pg.parameter_names())
        try:
            self.d.store.write_config(new, None)
        except DCSError as exc:
            raise ApiRefusal(502, f"failed to write the configuration: {exc}") from None
        self.d.wake.set()
        return new

    # ---- switchover / failover -------------------------------------------------------------
    def _fresh_cluster(self) -> Cluster:
        try:
            return self.d.store.read()
        except DCSError as exc:
            raise ApiRefusal(503, f"DCS is not accessible: {exc}") from None

    def request_switchover(self, leader: str | None, candidate: str | None,
                           scheduled_at: datetime | None, action: str) -> tuple[int, str]:
        cluster = self._fresh_cluster()
        if scheduled_at is None:
            self._precheck(cluster, leader, candidate, action)
        fo = Failover(leader, candidate, scheduled_at)
        try:
            previous = cluster.failover.mod_revision if cluster.failover else None
            if not self.d.store.write_failover(fo, previous):
                raise ApiRefusal(503, "failed to write failover key into DCS")
        except DCSError:
            raise ApiRefusal(503, "failed to write failover key into DCS") from None
        self.d.wake.set()
        if scheduled_at is not None:
            return 202, "Switchover scheduled"
        return self._wait_for_new_leader(cluster.leader_name, candidate, action)

    def _precheck(self, cluster: Cluster, leader: str | None, candidate: str | None, action: str) -> None:
        if leader and cluster.leader_name != leader:
            raise ApiRefusal(412, "leader name does not match")
        sync = cluster.sync
        sync_mode = cluster.config is not None and cluster.config.synchronous_mode not in ("off", "")
        if candidate:
            # Only a switchover must go to a synchronous standby. A failover to a named member is
            # the operator's explicit choice when the sync set is gone (spec 2.6): it may pick an
            # asynchronous replica, accepting that the commits only the lost pair had are gone.
            if action == "switchover" and sync_mode and sync is not None and not sync.matches(candidate):
                raise ApiRefusal(412, "candidate name does not match with sync_standby")
            if cluster.member(candidate) is None:
                raise ApiRefusal(412, "candidate does not exists")
        elif sync_mode and (sync is None or not sync.sync_standby):
            raise ApiRefusal(412, f"{action} is not possible: can not find sync_standby")
        others = [m for m in cluster.members if m.name != cluster.leader_name]
        if not others:
            raise ApiRefusal(412, f"{action} is not possible: cluster does not have members except leader")
        names = [candidate] if candidate else sorted(m.name for m in others)
        peers = probe_members(cluster, cluster.leader_name or "", timeout=2.0)
        reasons = {n: self._candidate_problem(cluster, n, peers.get(n)) for n in names}
        if all(reasons.values()):
            # Patroni's text, then why: "no good candidates" alone is what its users complain about.
            why = "; ".join(f"{n}: {r}" for n, r in reasons.items())
            log.warning("%s refused: %s", action, why)
            self.d.record_event("switchover_refused", f"{action} to {candidate or 'any member'} refused (REST API): "
                                f"{why}", action=action, candidate=candidate, why=why, via="REST API")
            raise ApiRefusal(412, f"{action} is not possible: no good candidates have been found ({why})")

    @staticmethod
    def _candidate_problem(cluster: Cluster, name: str, peer: Any) -> str | None:
        """Why `name` cannot take over now (the leader applies the same checks), or None."""
        member = cluster.member(name)
        if member is None:
            return "not a member"
        if peer is None or not peer.reachable:
            return "not reachable"
        if member.nofailover or peer.nofailover:
            return "tagged nofailover"
        pos = peer.wal_position if peer.wal_position is not None else member.wal_position
        limit = cluster.config.maximum_lag_on_failover if cluster.config else 1048576
        if cluster.leader is not None and cluster.last_lsn is not None:
            lag = cluster.lag_behind(pos)
            if lag is None:
                return "WAL position unknown"
            if lag > limit:
                return f"lagging by {lag} bytes (maximum_lag_on_failover is {limit})"
        return None

    def _wait_for_new_leader(self, old: str | None, candidate: str | None, action: str) -> tuple[int, str]:
        limit = 2 * max(10, self.d.dynamic.loop_wait)
        deadline = time.monotonic() + limit
        verb = "switched over" if action == "switchover" else "failed over"
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                cluster = self.d.store.read()
            except DCSError:
                continue
            new = cluster.leader_name
            if new and new != old:
                if candidate and new != candidate:
                    return 200, f'Switched over to "{new}" instead of "{candidate}"'
                return 200, f'Successfully {verb} to "{new}"'
            if cluster.failover is None and new == old and new is not None:
                return 503, "Switchover failed"
        log.warning("%s status unknown after %d seconds; operation may still be in progress", action, limit)
        return 503, "Switchover status unknown"

    def cancel_switchover(self) -> tuple[int, str]:
        cluster = self._fresh_cluster()
        fo = cluster.failover
        if fo is None or fo.scheduled_at is None:
            return 404, "no switchover is scheduled"
        try:
            if not self.d.store.etcd.put_if_revision(self.d.store.paths.failover, "{}", fo.mod_revision):
                return 409, "Conflict"
        except DCSError as exc:
            return 503, f"failed to delete the scheduled switchover: {exc}"
        return 200, "scheduled switchover deleted"

    # ---- restart / reload / reinitialize ---------------------------------------------------
    def request_restart(self, schedule: datetime | None, role: str | None, postgres_version: str | None,
                        restart_pending: bool, timeout: int | None) -> tuple[int, str]:
        d = self.d
        if schedule is not None:
            if d.view.scheduled_restart:
                return 409, "Another restart is already scheduled"
            entry: dict[str, Any] = {"schedule": schedule.isoformat()}
            if role:
                entry["role"] = role
            if postgres_version:
                entry["postgres_version"] = postgres_version
            if restart_pending:
                entry["restart_pending"] = True
            if timeout:
                entry["timeout"] = timeout
            d.view.scheduled_restart = entry
            d.wake.set()
            return 202, "Restart scheduled"
        if not self.restart_conditions_met(role, postgres_version, restart_pending):
            return 503, "restart conditions are not satisfied"
        if d.view.state == "starting":
            return 503, "postgres is still starting"
        if d.view.state == "restarting":
            return 503, "restart already in progress"
        req = d.submit(Request("restart", {"timeout": timeout}), timeout=(timeout or 60) + 30)
        return req.status, req.text

    def restart_conditions_met(self, role: str | None, postgres_version: str | None, pending: bool) -> bool:
        v = self.d.view
        if role and role != v.role:
            return False
        if postgres_version and v.server_version and v.server_version >= postgres_version_to_int(postgres_version):
            return False
        if pending and not v.pending_restart:
            return False
        return True

    def cancel_restart(self) -> tuple[int, str]:
        if not self.d.view.scheduled_restart:
            return 404, "no restarts are scheduled"
        self.d.view.scheduled_restart = None
        self.d.wake.set()
        return 200, "scheduled restart deleted"

    def request_reload(self) -> tuple[int, str]:
        self.d.requests.put(Request("reload"))
        self.d.wake.set()
        return 202, "reload scheduled"

    def request_reinitialize(self, force: bool, from_leader: bool) -> tuple[int, str]:
        # Not the loop's last view: a former leader that just demoted and streams again would
        # still answer "I am the leader" (seen after a switchover, in tests/integration/test_rest_ops.py).
        cluster = self._current_cluster()
        if cluster is None or cluster.leader is None:
            return 503, "Cluster has no leader, can not reinitialize"
        if cluster.leader_name == self.d.name:
            return 503, "I am the leader, can not reinitialize"
        if self.d.view.state == "creating replica":
            # The HA thread is copying already; it cannot be interrupted halfway, even with force.
            return 503, "reinitialize already in progress"
        # Answer only once the HA thread has taken the request and shows "creating replica", so a
        # client polling GET /patroni right after (patronictl reinit --wait) cannot see the old
        # "running" and think the copy is done already.
        started = threading.Event()
        req = Request("reinitialize", {"force": force, "from_leader": from_leader, "started": started})
        self.d.requests.put(req)
        self.d.wake.set()
        deadline = time.monotonic() + max(30.0, 3 * self.d.dynamic.loop_wait)
        while time.monotonic() < deadline:
            if started.wait(0.05):
                return 200, "reinitialize started"
            if req.done.is_set():  # refused by the HA thread before it began
                return req.status, req.text
        return 503, "reinitialize status unknown: the HA loop has not picked the request up yet"

    def failsafe_heartbeat(self, body: dict) -> tuple[int, str, dict[str, str]]:
        d = self.d
        if not d.dynamic.failsafe_mode:
            return 502, "failsafe_mode is not enabled", {}
        if d.view.role == "primary":
            return 500, "Running as a leader", {}
        d.failsafe_leader_seen = (str(body.get("name") or ""), time.monotonic())
        lsn = d.view.replay_lsn or d.view.xlog_location or 0
        return 200, "Accepted", {"lsn": str(lsn)}

