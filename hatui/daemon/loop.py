"""The imperative shell of the daemon: observe -> decide -> act, every loop_wait.

One thread runs the HA cycle; it is the only thread that touches PostgreSQL's process or files.
A watch on the cluster prefix wakes it at once when the leader key moves or vanishes, when the
config or the failover key change. The REST API runs in its own threads and hands work to the
cycle through `Request` objects, so an operator's restart never races an HA action.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import replace
from typing import Any, Callable

from ..cluster import Cluster
from ..etcd.store import ClusterStore, ClusterWatcher, DCSError
from ..etcd.gateway import EtcdGateway
from ..events import DEFAULT_CAP
from . import failsafe, standby_cluster, sync
from .callbacks import CallbackRunner
from .decisions import Narrator, callback_recorder
from .fence import FenceClient
from .ha import Action, Decision
from .lease import LeaseKeeper
from .member import NodeView
from .node import NodeRuntime
from .peers import probe_members, probe_one
from .recorder import EventRecorder
from .requests import Request
from .slots import SlotKeeper
from .clone_actions import CloneActions
from .dynconfig import ConfigApply
from .errors import FatalError
from .etcdio import LoopEtcd
from .leader_actions import LeaderActions
from .observe import Observer
from .rejoin_actions import RejoinActions
from .restarts import RestartWork

log = logging.getLogger("hatui.ha")


class Daemon(LoopEtcd, Observer, CloneActions, RejoinActions, LeaderActions, RestartWork, ConfigApply):
    """One node's daemon. This module holds its state, its lifecycle and the HA cycle; the
    cycle's parts are mixins, one module each: etcdio (the loop's etcd reads and writes, the
    lease), observe (the local PostgreSQL), clone_actions / rejoin_actions / leader_actions (what
    a decision's actions do), restarts (REST work and scheduled restarts), dynconfig (config
    applied to PostgreSQL)."""

    def __init__(self, rt: NodeRuntime) -> None:
        self.rt = rt
        self.name = rt.name
        self.pg = rt.postgres
        self.etcd = EtcdGateway(rt.etcd_hosts, timeout=rt.etcd_timeout, **rt.etcd_auth)
        self.store = ClusterStore(self.etcd, rt.namespace, rt.scope)
        self.view = NodeView(rt.name, rt.scope, rt.conn_url, rt.api_url, tags=rt.member_tags)
        self.dynamic = rt.initial_dynamic()
        self.lease: int | None = None
        self.lease_ttl = self.dynamic.ttl
        self.cluster: Cluster | None = None
        self.dcs_ok = True
        self.last_member_data: dict | None = None
        self.following: str | None = None
        self.rewind_failed_for: str | None = None
        self.replica_tl_seen: tuple[str | None, int] | None = None  # see queries.replica_timeline
        self.applied_config_revision = -1
        self.requests: "queue.Queue[Request]" = queue.Queue()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.watcher: ClusterWatcher | None = None
        self.api: Any = None
        self._lock = threading.RLock()
        self.on_cycle: Callable[[Decision], None] | None = None  # test hook
        self.lock_refreshed_at = float("-inf")  # monotonic time of the last successful lock update
        # Monotonic: local timeouts (liveness, etcd freshness) must not jump with the wall clock.
        self.next_run_at = time.monotonic()
        self.dcs_seen_at = 0.0
        self.failsafe_leader_seen: tuple[str, float] | None = None
        self.failsafe_published: dict[str, str] | None = None  # what we last wrote to /failsafe
        self.start_failed = False  # the last start of PostgreSQL failed (see ha._recover)
        self._view_stale = False  # _keep_lease wrote the leader key: read the cluster again
        self.fence = FenceClient(None)  # the self-fencing guard; started in run()
        self.lease_refreshed_at = float("-inf")  # monotonic time taken before the last good keepalive
        self.sync_confirm_from: int | None = None  # sync.py: WAL position new sync standbys must pass
        # Keepalives on their own thread and etcd client; the lease view (lease.py).
        self.keeper = LeaseKeeper(self, EtcdGateway(rt.etcd_hosts, timeout=float(self.dynamic.ttl), **rt.etcd_auth))
        self.slots = SlotKeeper(self)  # replication slots (use_slots, slots, member_slots_ttl)
        self.callbacks = CallbackRunner(rt.node.postgresql.callbacks, rt.scope, rt.pg_conf.pre_promote,
                                        rt.pg_conf.before_stop)
        # Say why (decisions.py, recorder.py): the published decision and the event timeline.
        ev_cfg = rt.node.events
        self.recorder = EventRecorder(self.store, rt.name, ev_cfg.max or DEFAULT_CAP, ev_cfg.webhooks)
        self.record_event = self.recorder.record_event  # the one entry point (callbacks use it too)
        self.narrator = Narrator(rt.name, self.record_event)
        self.callbacks.listeners.append(callback_recorder(self.record_event))

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        self._check_unique_name()
        self.fence = FenceClient.for_daemon(self)
        self.fence.start()
        self.recorder.start()
        self._start_watch()
        self._start_api()
        try:
            next_run = time.monotonic()
            while not self.stopping.is_set():
                self.next_run_at = time.monotonic() + self.dynamic.loop_wait
                self.run_cycle()
                next_run += self.dynamic.loop_wait
                delay = next_run - time.monotonic()
                if delay < 0:
                    if delay < -self.dynamic.loop_wait:
                        log.warning("Loop time exceeded, rescheduling immediately.")
                    next_run = time.monotonic()
                    delay = 0
                if self.wake.wait(delay):
                    self.wake.clear()
                    next_run = time.monotonic()
        except FatalError as exc:
            log.critical("%s", exc)
            self.shutdown(stop_postgres=False)
            return 1
        self.shutdown()
        return 0

    def request_stop(self, *_: object) -> None:
        self.stopping.set()
        self.wake.set()

    def shutdown(self, stop_postgres: bool = True) -> None:
        """Clean stop: PostgreSQL first, then the lock, so no write can happen without it."""
        paused = bool(self.cluster and self.cluster.is_paused)
        if stop_postgres and not paused and self.pg.is_running():
            sync.leave(self, "shutting down")
            log.info("stopping PostgreSQL before releasing the lock")
            self.view.state = "stopping"
            self.touch_member(force=True)
            self.callbacks.before_stop()
            try:
                self.pg.stop("fast")
                self.callbacks.fire("on_stop", self.view.role)
            except Exception as exc:  # noqa: BLE001 - keep shutting down; the lease still expires
                log.error("could not stop PostgreSQL: %s", exc)
        elif paused:
            log.info("Leader key is not deleted and Postgresql is not stopped due paused state")
        try:
            if not paused or not self.pg.is_running():
                if self.cluster is not None and self.cluster.leader_name == self.name and not self.pg.is_running():
                    if self.store.release_leader(self.name):
                        log.info("released the leader lock on shutdown")
                if self.lease and not paused:
                    self.etcd.revoke(self.lease)
        except DCSError as exc:
            log.warning("could not clean up etcd keys on shutdown: %s", exc)
        if self.watcher:
            self.watcher.stop()
        if self.api:
            self.api.stop()
        self.fence.close()  # a clean exit: the guard leaves PostgreSQL and etcd alone
        self.recorder.flush(2.0)  # the last events (demotion on the way out) still reach etcd
        self.recorder.stop()
        self.etcd.close()
        self.keeper.etcd.close()
        self.callbacks.wait_idle(5.0)  # let a just-fired on_stop finish and be logged

    def _check_unique_name(self) -> None:
        """Refuse to start when a live node already uses our name (spec 6.2)."""
        try:
            cluster = self.store.read()
        except DCSError:
            return
        member = cluster.member(self.name)
        if member is None or not member.api_url:
            return
        url = member.api_url.rsplit("/", 1)[0] + "/liveness"
        status, _ = probe_one(self.name, url, timeout=1.0)
        if status.reachable:
            raise SystemExit(f"Can't start; there is already a node named '{self.name}' running")

    def _start_watch(self) -> None:
        previous: dict[str, Any] = {}

        def changed(cluster: object) -> None:
            if not isinstance(cluster, Cluster):
                return
            key = (cluster.leader_name, cluster.failover, cluster.config.mod_revision if cluster.config else None,
                   cluster.member(self.name) is None)
            with self._lock:
                self.watch_view = cluster
            if previous.get("key") != key:
                previous["key"] = key
                self.wake.set()

        self.watch_view: Cluster | None = None
        self.watcher = ClusterWatcher(self.etcd, self.rt.namespace, self.rt.scope, changed,
                                      lambda msg: None, retry_delay=1.0).start()

    def _start_api(self) -> None:
        from .api_backend import DaemonBackend

        self.api = DaemonBackend.start_server(self)

    # ------------------------------------------------------------------ one cycle
    def run_cycle(self) -> Decision | None:
        try:
            self.keeper.send()  # first, and on its own thread: never behind a slow read
            cluster = self._read_cluster()
            lock_refreshed = False
            if cluster is not None:
                self._apply_dynamic_config(cluster)
                lock_refreshed = self._keep_lease(cluster)
                if lock_refreshed and not cluster.is_paused:
                    self.fence.beat(self.lease_refreshed_at, self.lease_ttl, self.lease)
                if self._view_stale:
                    # The leader key was just moved to our lease (or we lost it to someone): decide
                    # on what etcd holds now. A plain keepalive changes no key, so no second read.
                    cluster = self._read_cluster_fast() or cluster
            self._serve_requests(cluster)
            self._run_scheduled_restart(cluster)
            obs = self._observe(cluster, lock_refreshed)
            obs = failsafe.confirm(self, obs)  # etcd unreachable: may the primary stay up?
            decision = standby_cluster.decide(obs)  # ha.decide, rewritten in a standby cluster
            if decision.has("probe_peers") and cluster is not None:
                peers = probe_members(cluster, self.name)
                obs = replace(obs, cluster=cluster, peers=peers, pg=self._position_after_probe(obs.pg))
                decision = standby_cluster.decide(obs)
            completed = self._execute(decision, cluster)
            self.narrator.after_cycle(self, decision, obs, cluster, completed)
            self.fence.after_cycle(lock_refreshed, self.view.role in ("primary", "promoted"),
                                   bool(cluster and cluster.is_paused))
            self.slots.sync(cluster)
            self._housekeeping()
            failsafe.publish(self, cluster)
            sync.manage(self, cluster)  # synchronous_standby_names and /sync, in the safe order
            if self.on_cycle:
                self.on_cycle(decision)
            return decision
        except FatalError:
            raise
        except Exception:  # noqa: BLE001 - one bad cycle must not kill the node's HA
            log.exception("Unexpected exception raised in the HA cycle; will try again next cycle")
            return None

    # ------------------------------------------------------------------ actions
    def _execute(self, decision: Decision, cluster: Cluster | None) -> bool:
        level = getattr(logging, decision.level.upper(), logging.INFO)
        for note in decision.notes:
            log.info("%s", note)
        if cluster is not None:
            log.info("Lock owner: %s; I am %s", cluster.leader_name, self.name)
        completed = True
        for action in decision.actions:
            if action.kind == "probe_peers":
                continue
            ok = self._run_action(action, cluster)
            if ok is False:
                completed = False
                if action.fail_message:
                    log.info("%s", action.fail_message)
                else:
                    log.error("%s: the %s action failed", decision.message, action.kind)
                break
        if completed:
            # The decision and its actions as fields too, for JSON logs (hatui/daemon/logsetup.py).
            log.log(level, "%s", decision.message,
                    extra={"decision": decision.message, "actions": [k for k in decision.kinds if k != "probe_peers"]})
        return completed

    def _run_action(self, a: Action, cluster: Cluster | None) -> bool:
        handler = getattr(self, f"_do_{a.kind}", None)
        if handler is None:
            log.error("no handler for action %s", a.kind)
            return False
        if a.kind in _LONG_ACTIONS:
            with self.lease_kept(a.kind):
                result = handler(a, cluster)
        else:
            result = handler(a, cluster)
        return result is not False


# Actions that can outlast ttl (pg_basebackup of a big database, a slow shutdown checkpoint).
_LONG_ACTIONS = frozenset({"bootstrap", "clone", "reinit", "rewind", "crash_recovery", "start"})


def install_signal_handlers(daemon: Daemon) -> None:
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
