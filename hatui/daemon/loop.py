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
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from ..cluster import Cluster, HistoryEntry, Status, TimelineHistory, parse_lsn
from ..etcd.store import ClusterStore, ClusterWatcher, DCSError, LeaseExpired
from ..etcd.gateway import EtcdGateway
from ..events import DEFAULT_CAP
from ..notbuilt import dynamic_findings
from . import bootstrap, failsafe, faultpoint, nodereload, queries, standby_cluster, sync
from .callbacks import CallbackRunner
from .decisions import Narrator, callback_recorder
from .fence import FenceClient
from .ha import Action, Decision, LocalPostgres, Observation
from .lease import LeaseKeeper
from .member import NodeView, member_data
from .node import NodeRuntime
from .peers import probe_members, probe_one
from .recorder import EventRecorder
from .requests import Request
from .slots import SlotKeeper, slot_name_from_member_name
from .wdcheck import may_lead

log = logging.getLogger("hatui.ha")


class FatalError(Exception):
    """The daemon must stop (e.g. the data dir belongs to another cluster)."""


class Daemon:
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
        self.callbacks = CallbackRunner(rt.node.postgresql.callbacks, rt.scope, rt.pgc.get("pre_promote"),
                                        rt.pgc.get("before_stop"))
        # Say why (decisions.py, recorder.py): the published decision and the event timeline.
        ev_cfg = rt.node.raw.get("events") or {}
        self.recorder = EventRecorder(self.store, rt.name, int(ev_cfg.get("max") or DEFAULT_CAP),
                                      ev_cfg.get("webhooks") or {})
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
            self._touch_member(force=True)
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
                obs = replace(obs, cluster=cluster, peers=peers)
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
            with self._lease_kept(a.kind):
                result = handler(a, cluster)
        else:
            result = handler(a, cluster)
        return result is not False

    @contextmanager
    def _lease_kept(self, what: str) -> Iterator[None]:
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
        self._touch_member(force=True)
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
        self._touch_member(force=True)
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
        self._touch_member(force=True)
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

    def _do_promote(self, a: Action, cluster: Cluster | None) -> bool:
        may_promote = True
        if self.callbacks.pre_promote_cmd:
            with self._lease_kept("pre_promote"):
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
        self._touch_member(force=True)
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
            self._touch_member(force=True)
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
        self._touch_member(force=True)
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
            import psycopg

            addr = self._member_address(cluster, target)
            if addr is None:
                return None
            user, password = self.rt.superuser
            try:
                with psycopg.connect(host=addr[0], port=addr[1], user=user, password=password or None,
                                     dbname=self.pg.database, connect_timeout=2, autocommit=True) as conn:
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

    # ------------------------------------------------------------------ leader bookkeeping
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

    def _housekeeping(self) -> None:
        if not self.dcs_ok:
            return
        cluster = self.cluster
        self.view.paused = bool(cluster and cluster.is_paused)
        self._touch_member()
        if cluster is None or cluster.leader_name != self.name or self.view.role != "primary":
            return
        try:
            optime = self.view.xlog_location
            slots, retain = self.slots.status_fields()
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

    def _touch_member(self, force: bool = False) -> None:
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

    # ------------------------------------------------------------------ dynamic config
    def _apply_dynamic_config(self, cluster: Cluster) -> None:
        if cluster.config is None or cluster.config.mod_revision == self.applied_config_revision:
            return
        self.applied_config_revision = cluster.config.mod_revision
        new, warnings = self.rt.safe_dynamic(dict(cluster.config.data))
        for w in warnings:
            log.warning("%s", w)
        for issue in dynamic_findings(cluster.config.data):
            log.warning("cluster configuration: %s", issue)
        old_params = self.rt.effective_parameters(self.dynamic)
        self.dynamic = new
        if self.pg.data_dir_state() != "valid":
            return
        new_params = self.rt.effective_parameters(new)
        if new_params == old_params and self.pg.is_running():
            return
        standby = self._standby_for(cluster, self.following) if self.view.role != "primary" else None
        if self.view.role == "replica" and self.following is None:
            standby = self._standby_for(None, None)
        changed = self.pg.write_config(new_params, self.rt.pg_hba(new), standby)
        if not changed:
            log.info("No PostgreSQL configuration items changed, nothing to reload.")
            return
        if self.pg.is_running():
            names = sorted(n for n in set(new_params) | set(old_params) if new_params.get(n) != old_params.get(n))
            try:
                # What the server runs with now (the old config may not have named the GUC at all)
                # and whether the change needs a restart; pending_restart itself comes from
                # pg_settings on the next observation, once the server has re-read its files.
                rows = queries.execute(self.pg, "SELECT name, current_setting(name), context FROM pg_settings "
                                                "WHERE name = ANY(%s)", (names,))
                current = {r[0]: (r[1], r[2]) for r in rows}
            except Exception:  # noqa: BLE001 - only the log line loses detail
                current = {}
            for name in names:
                value, context = current.get(name, (old_params.get(name), None))
                note = " (restart might be required)" if context == "postmaster" else ""
                log.info("Changed %s from '%s' to '%s'%s", name, value, new_params.get(name), note)
            log.info("Reloading PostgreSQL configuration.")
            self.pg.reload()  # logs "server signaled"
            self.callbacks.fire("on_reload", self.view.role)

    # ------------------------------------------------------------------ REST requests
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

    def _req_reload(self, req: Request, cluster: Cluster | None) -> None:
        """POST /reload (Patroni's SIGHUP): re-read the local YAML, rewrite PostgreSQL's config, reload."""
        self._reload_local_config()
        self.applied_config_revision = -1
        if cluster is not None:
            self._apply_dynamic_config(cluster)
        if self.pg.data_dir_state() == "valid":
            if self.view.role == "primary":
                standby = None
            else:
                standby = self._standby_for(cluster, self.following)
            changed = self.pg.write_config(self.rt.effective_parameters(self.dynamic), self.rt.pg_hba(self.dynamic),
                                           standby)
            if changed and self.pg.is_running():
                log.info("Reloading PostgreSQL configuration.")
                self.pg.reload()
                self.callbacks.fire("on_reload", self.view.role)
            elif not changed:
                log.info("No PostgreSQL configuration items changed, nothing to reload.")
        req.finish(202, "reload scheduled")

    def _reload_local_config(self) -> None:
        """Take the node YAML's reloadable parts (postgresql.parameters, pg_hba, tags) from disk again.

        Addresses, credentials and the data dir stay as the daemon started with them: changing
        those under a running node needs a daemon restart, as with Patroni.
        """
        from ..config import ConfigError
        from ..envconfig import reload_node

        source = self.rt.node.source
        if not source or source.startswith(("<", "$")):
            return
        try:
            node = reload_node(source)  # the file, with the variables the daemon started with over it
        except (ConfigError, OSError) as exc:
            log.error("reload: keeping the running configuration, %s is not valid: %s", source, exc)
            return
        if (node.name, node.scope) != (self.name, self.rt.scope):
            log.error("reload: name and scope cannot change without a restart of the daemon; ignoring %s", source)
            return
        pgc = dict(node.raw.get("postgresql") or {})
        nodereload.apply(self.rt.node, node)  # the log section; names what needs a daemon restart
        self.rt.node = node
        for key in ("parameters", "pg_hba"):
            if pgc.get(key) is not None:
                self.rt.pgc[key] = pgc[key]
            else:
                self.rt.pgc.pop(key, None)
        self.view.tags = self.rt.member_tags
        log.info("reload: local configuration re-read from %s", source)

    def _req_restart(self, req: Request, cluster: Cluster | None) -> None:
        if not self.pg.is_running():
            self._restart_stopped(req, cluster)
            return
        role = self.view.role
        left_sync = sync.leave(self, "restarting")
        self.view.state = "restarting"
        self._touch_member(force=True)
        log.info("restarting PostgreSQL (%s)", req.params.get("reason", "requested over the REST API"))
        standby = None if role == "primary" else self._standby_for(cluster, self.following)
        if role != "primary" and standby is None:
            standby = self._standby_for(None, None)
        self.pg.write_config(self.rt.effective_parameters(self.dynamic), self.rt.pg_hba(self.dynamic), standby)
        try:
            with self._lease_kept("restart"):
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
        self._touch_member(force=True)
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
        with self._lease_kept("start"):
            started_ok = self._start(mode, target, cluster)
        if not started_ok:
            req.finish(503, "restart failed")
            return
        self.view.scheduled_restart = None
        try:
            self._update_view_from_state(queries.fetch_state(self.pg))
        except Exception:  # noqa: BLE001 - the next cycle observes it anyway
            pass
        self._touch_member(force=True)
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
        self._touch_member(force=True)
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


# Actions that can outlast ttl (pg_basebackup of a big database, a slow shutdown checkpoint).
_LONG_ACTIONS = frozenset({"bootstrap", "clone", "reinit", "rewind", "crash_recovery", "start"})


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def install_signal_handlers(daemon: Daemon) -> None:
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
