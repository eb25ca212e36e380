"""The Textual console: wires the etcd watch, the pollers and the screens.

Data flows one way. A thread worker runs `dcs.ClusterWatcher` (one read, then a watch) and hands
every new Cluster view to `_submit`, which keeps only the newest and posts at most one
`ClustersChanged` message at a time: a burst of etcd events is rendered once, as its last state.
The message handler updates the widgets in place. Actions go out through the REST API
(`api_client.ApiClient`) or an etcd transaction and come back through the watch: the console
never assumes an action worked, it says so when the leader key (or the config) moves.

Latency for benchmarks: `app.render_log` is a deque of `RenderRecord(revision, received,
rendered, painted)` (monotonic seconds): `received` when the watch thread handed the revision
over, `rendered` when the widgets were updated, `painted` after the next screen refresh. A
benchmark writes a key (the put's response header carries the revision), then awaits
`app.wait_for_revision(revision)` inside `app.run_test()` and subtracts its own monotonic t0.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from textual import work
from textual.app import App, SystemCommand
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget

from .api_client import ApiClient, ApiError
from .cluster import Cluster, Member
from .etcd.store import ClusterStore, ClusterWatcher, DCSError, Etcd, normalize_namespace
from .screens.config_editor import ConfigEditorScreen, WriteResult
from .screens.confirm import ConfirmScreen
from .screens.events import EventsScreen, only_events_changed
from .screens.help import HelpScreen
from .screens.history import HistoryScreen
from .screens.keymap import ACTIONS, WRITE_ACTIONS, KeyAction, bindings_for, visible_actions
from .screens.member_detail import MemberDetailScreen
from .screens.pickers import Candidate, CandidateScreen, RestartChoice, RestartScreen
from .widgets.banner import ConnStatus
from .widgets.health import ETCD_PROBE_INTERVAL, ETCD_PROBE_TIMEOUT, EtcdEvidence
from .widgets.lag_sparkline import new_history
from .widgets.palette import HealthPalette, palette_for
from .widgets.rows import MemberRow, PatroniSample, build_rows, eligibility
from .widgets.timeline import TimelineEvent, diff_clusters

log = logging.getLogger("hatui.console")

PATRONI_POLL_SECONDS = 0.7  # pause between the end of one /patroni round and the next (~1 s a round)
REST_PROBE_TIMEOUT = 0.8  # a member's /patroni answer slower than this counts as "silent"
SILENT_RETRY_SECONDS = 3.0  # a member whose REST API timed out is asked again after this long
LEASE_POLL_SECONDS = 1.0
# App-wide actions that act on the cluster screen's selection or open an editor over it: refused
# while another screen (history, member detail, help) is on top.
BEHIND_ONLY_ACTIONS = frozenset({"edit_config", "freeze"})
THEMES = ("textual-dark", "textual-light", "ansi-dark", "ansi-light")
LOCAL_ETCD = "127.0.0.1:2379"


# --- messages from threads ----------------------------------------------------------------------
class ClustersChanged(Message):
    """A newer cluster view is waiting in `HatuiApp._pending` (carries no data on purpose)."""


class ConnectionLost(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class PatroniPolled(Message):
    def __init__(self, scope: str, samples: dict[str, PatroniSample]) -> None:
        super().__init__()
        self.scope = scope
        self.samples = samples


class EtcdProbed(Message):
    """The etcd prober's result: answered (error "") or not (the reason)."""

    def __init__(self, error: str = "") -> None:
        super().__init__()
        self.error = error


class LeasePolled(Message):
    def __init__(self, scope: str, remaining: int | None) -> None:
        super().__init__()
        self.scope = scope
        self.remaining = remaining


@dataclass
class RenderRecord:
    revision: int
    received: float
    rendered: float
    painted: float | None = None


# --- data sources -----------------------------------------------------------------------------
class DataSource(Protocol):
    live: bool
    endpoint: str

    def start(self, app: HatuiApp) -> None: ...

    def stop(self) -> None: ...

    def lease_ttl(self, lease_id: int) -> int: ...

    def store(self, scope: str) -> ClusterStore | None: ...


class EtcdSource:
    """The live source: ClusterWatcher in a thread worker; lease reads and writes on the same client."""

    live = True

    def __init__(self, hosts: Sequence[str], namespace: str, scope: str | None) -> None:
        from .etcd.gateway import EtcdGateway

        # The JSON gateway, like the daemon and the CLI: no gRPC import (a quarter second) and
        # less memory for a console that may watch a whole namespace.
        self.etcd: Etcd = EtcdGateway(list(hosts))
        self.hosts = list(hosts)
        self.prober = None
        self.namespace = normalize_namespace(namespace)
        self.scope = scope
        self.endpoint = self.etcd.endpoint_text
        self.watcher: ClusterWatcher | None = None

    def start(self, app: HatuiApp) -> None:
        self.watcher = ClusterWatcher(
            self.etcd,
            self.namespace,
            self.scope,
            on_change=app.submit_snapshot,
            on_error=app.submit_error,
            retry_delay=1.0,
        )
        app.run_worker(self.watcher.run, thread=True, group="watch", name="etcd watch", exit_on_error=False)
        from .probes import EtcdProber

        self.prober = EtcdProber(
            self.hosts,
            on_answer=lambda _t: app.post_message(EtcdProbed()),
            on_error=lambda err: app.post_message(EtcdProbed(err)),
            interval=ETCD_PROBE_INTERVAL,
            timeout=ETCD_PROBE_TIMEOUT,
        )
        app.run_worker(self.prober.run, thread=True, group="probe", name="etcd probe", exit_on_error=False)

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.prober is not None:
            self.prober.stop()
        self.etcd.close()

    def lease_ttl(self, lease_id: int) -> int:
        return self.etcd.lease_ttl(lease_id)

    def store(self, scope: str) -> ClusterStore:
        return ClusterStore(self.etcd, self.namespace, scope)


class EtcdConfigTarget:
    """The console's config writes: compare-and-swap on the revision the editor was opened at."""

    def __init__(self, store: ClusterStore, mod_revision: int) -> None:
        self.store = store
        self.mod_revision = mod_revision

    def write(self, data: dict) -> WriteResult:
        try:
            ok = self.store.write_config(data, self.mod_revision)
        except DCSError as exc:
            return WriteResult(False, message=str(exc))
        if not ok:
            return WriteResult(False, conflict=True, message="config changed in etcd since it was read")
        return WriteResult(True)

    def reload(self) -> tuple[str, dict]:
        from .config import dump_yaml

        cluster = self.store.read()
        data = dict(cluster.config.data) if cluster.config else {}
        self.mod_revision = cluster.config.mod_revision if cluster.config else 0
        return dump_yaml(data), data


@dataclass
class ExtraPanel:
    """The demo's hook: a widget docked on the cluster screen, plus keys for it.

    `build(app)` returns the widget (built once, when the cluster screen is composed). It is
    placed below the cluster view, above the footer (`dock="bottom"`, give it a height in its
    DEFAULT_CSS, e.g. `height: auto`), or to the right of it (`dock="right"`, give it a width).
    Each KeyAction in `keys` binds `key` app-wide to the widget's `action_<action>` method (sync or
    async); the keys show in the footer, help and command palette like the console's own.
    """

    build: Callable[[HatuiApp], Widget]
    keys: Sequence[KeyAction] = ()
    dock: str = "bottom"  # bottom | right


def find_local_etcd(endpoint: str = LOCAL_ETCD, timeout: float = 0.3) -> bool:
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


# --- the app ----------------------------------------------------------------------------------
class HatuiApp(App[None]):
    """The console. Subclass it (or pass `extra_panel`) to add panels; see `ExtraPanel`."""

    # Absolute: a subclass defined in another module (the demo) must still find it.
    CSS_PATH = str(Path(__file__).with_name("hatui.tcss"))
    TITLE = "hatui"
    BINDINGS = bindings_for("app")

    def __init__(
        self,
        etcd_hosts: Sequence[str] | None = None,
        namespace: str = "/service",
        scope: str | None = None,
        read_only: bool = False,
        log_files: dict[str, str] | None = None,
        api_auth: tuple[str, str] | None = None,
        extra_panel: ExtraPanel | None = None,
        *,
        source: DataSource | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
        welcome: bool | None = None,
    ) -> None:
        super().__init__()
        self.namespace = normalize_namespace(namespace)
        self.scope_arg = scope
        self.read_only = read_only
        self.log_files = dict(log_files or {})
        self.extra_panel = extra_panel
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now().astimezone())
        self.mono: Callable[[], float] = monotonic or time.monotonic
        hosts = list(etcd_hosts or [])
        if source is None and not hosts and welcome is None:
            welcome = not find_local_etcd()
            hosts = [LOCAL_ETCD]
        self.welcome = bool(welcome)
        self.source: DataSource | None = source
        if self.source is None and not self.welcome:
            self.source = EtcdSource(hosts, self.namespace, scope)
        self.api = ApiClient(api_auth, timeout=5.0)
        # state
        self.clusters: dict[str, Cluster] = {}
        self.selected_scope: str | None = scope
        self.conn = ConnStatus(state="connecting", endpoint=self.source.endpoint if self.source else "")
        self.patroni: dict[str, dict[str, PatroniSample]] = {}
        self.lease_remaining: dict[str, int | None] = {}
        self.etcd_evidence = EtcdEvidence()
        self.key_changed: dict[tuple[str, str], float] = {}  # (scope, member) -> monotonic
        # Members whose key expired: scope -> name -> (last member data, monotonic last seen). They
        # stay in the table until removed on purpose (forget_member).
        self.departed: dict[str, dict[str, tuple[Member, float]]] = {}
        self.lag_history: dict[tuple[str, str], deque] = {}
        self.events: deque[TimelineEvent] = deque(maxlen=1000)
        self.render_log: deque[RenderRecord] = deque(maxlen=100_000)
        self.frozen = False
        self.held_updates = 0
        self.requested: dict[str, tuple[str, str]] = {}  # scope -> (action, target) awaiting the watch
        self.palette: HealthPalette = palette_for(True, False)
        self._pending: tuple[object, float] | None = None
        self._pending_lock = threading.Lock()
        self._posted = False
        self._stopped = False
        self._started = False
        self._stoppables: list[Any] = []
        self._panel_widget: Widget | None = None
        self.action_table: list[KeyAction] = list(ACTIONS) + list(extra_panel.keys if extra_panel else ())
        if extra_panel:
            for k in extra_panel.keys:
                if k.writes and read_only:
                    continue
                self.bind(
                    k.key,
                    f"panel('{k.action}')",
                    description=k.description,
                    show=k.footer,
                    key_display=k.display,
                )

    # --- screens ------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        if self.welcome:
            from .screens.welcome import WelcomeScreen

            return WelcomeScreen(LOCAL_ETCD)
        from .screens.cluster import ClusterScreen

        return ClusterScreen()

    @property
    def namespace_mode(self) -> bool:
        return self.scope_arg is None

    @property
    def cluster_screen(self):
        """The cluster screen once its widgets exist (None before, and on the welcome screen)."""
        from .screens.cluster import ClusterScreen

        for screen in self.screen_stack:
            if isinstance(screen, ClusterScreen) and screen.ready:
                return screen
        return None

    def on_mount(self) -> None:
        # Thread workers share the loop's default executor (min(32, CPUs + 4) threads). The watch
        # and every log tailer hold a thread for the app's lifetime, so size it for them plus the
        # short-lived pollers and REST calls, or a 2-CPU machine would starve the pollers.
        import asyncio

        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=12 + len(self.log_files), thread_name_prefix="hatui")
        )
        self.sub_title = self._subtitle()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._theme_changed(self.current_theme)

    def _subtitle(self) -> str:
        where = f"{self.namespace}/{self.scope_arg or '*'}"
        src = self.source.endpoint if self.source else "no etcd"
        return f"{where} · {src}" + (" · READ-ONLY" if self.read_only else "")

    def screen_ready(self) -> None:
        """Called once by the cluster screen when its widgets exist: start data and pollers."""
        if self.source is None or self._started:
            return
        self._started = True
        self.source.start(self)
        if self.source.live:
            self.etcd_evidence = EtcdEvidence(started=self.mono())
            self.set_interval(0.25, self._tick)
            self.set_timer(0.2, self._poll_patroni)
            self.set_timer(0.2, self._poll_lease)
            self._start_tailers()

    def _start_tailers(self) -> None:
        from .widgets.log_pane import start_tailers

        screen = self.cluster_screen
        if screen is None or not self.log_files:
            return
        tailers = start_tailers(
            screen.log_panes.panes,
            self.log_files,
            lambda fn, name: self.run_worker(fn, thread=True, group="logs", name=name, exit_on_error=False),
        )
        self._stoppables.extend(tailers)

    def register_stoppable(self, obj: Any) -> None:
        """Anything with .stop(): stopped when the app ends (thread workers must return first)."""
        self._stoppables.append(obj)

    def stop_background(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.source is not None:
            self.source.stop()
        for obj in self._stoppables:
            try:
                obj.stop()
            except Exception:  # noqa: BLE001 - stopping must go on for the others
                log.warning("could not stop %r", obj, exc_info=True)

    def on_unmount(self) -> None:
        self.stop_background()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        # Stop the threads first: no more messages while the screens are being torn down, and the
        # executor's threads must return for the process to end.
        self.stop_background()
        super().exit(*args, **kwargs)

    # --- data in: called from the watch thread ------------------------------------------------
    def submit_snapshot(self, snapshot: object) -> None:
        """Watch thread: keep only the newest view; post one message unless one is in flight."""
        with self._pending_lock:
            self._pending = (snapshot, self.mono())
            if self._posted:
                return
            self._posted = True
        self.post_message(ClustersChanged())

    def submit_error(self, error: str) -> None:
        self.post_message(ConnectionLost(error))

    def on_clusters_changed(self, _: ClustersChanged) -> None:
        if self._stopped:
            return
        with self._pending_lock:
            pending, self._pending = self._pending, None
            self._posted = False
        if pending is not None:
            self.apply_snapshot(pending[0], pending[1])

    def on_connection_lost(self, message: ConnectionLost) -> None:
        if self._stopped:
            return
        now = self.clock()
        if self.conn.state != "lost":
            self.conn = ConnStatus(
                "lost", self.conn.endpoint, now, message.error, self.conn.revision, self.conn.data_as_of
            )
            self.notify(f"etcd connection lost: {message.error}", severity="error", title="etcd")
        else:
            self.conn = ConnStatus(
                "lost",
                self.conn.endpoint,
                self.conn.since,
                message.error,
                self.conn.revision,
                self.conn.data_as_of,
            )
        self.render_view(status_only=True)

    # --- applying data (UI thread) --------------------------------------------------------------
    def apply_snapshot(self, snapshot: object, received: float | None = None) -> None:
        """Take a Cluster or {scope: Cluster} view: events, toasts, then the widgets."""
        received = self.mono() if received is None else received
        if isinstance(snapshot, Cluster):
            clusters = {snapshot.scope: snapshot}
        else:
            clusters = dict(snapshot)  # type: ignore[call-overload]
        now = self.clock()
        previous = self.clusters
        revision = max((c.revision for c in clusters.values()), default=self.conn.revision)
        for scope, cluster in sorted(clusters.items()):
            old = self.clusters.get(scope)
            for event in diff_clusters(old, cluster, now, self.lease_remaining.get(scope)):
                self.events.append(event)
                if old is not None:
                    self._announce(event, cluster)
        for scope in sorted(set(self.clusters) - set(clusters)):
            self.events.append(TimelineEvent(now, scope, "member", "cluster removed from etcd", revision))
        self._remember_departed(clusters)
        for scope, cluster in clusters.items():
            old = self.clusters.get(scope)
            for m in cluster.members:
                before = old.member(m.name) if old is not None else None
                if before is None or before.data != m.data:
                    # A /patroni answer older than this key change must not overrule it.
                    self.key_changed[(scope, m.name)] = received
        self.clusters = clusters
        was = self.conn.state
        state = "ok" if self.source is None or self.source.live else "recorded"
        self.conn = ConnStatus(
            state, self.conn.endpoint, now if was != state else self.conn.since, "", revision, now
        )
        if was == "lost":
            self.notify("etcd is back; the view is current again.", title="etcd")
        if self.namespace_mode and clusters and self.selected_scope not in clusters:
            self.selected_scope = min(clusters)
        self._sample_lag()
        if self.frozen:
            self.held_updates += 1
            self.render_view(status_only=True)
            return
        if self.screen is self.cluster_screen and only_events_changed(previous, clusters):
            return  # a new event alone: nothing on this screen shows it (its revision shows next time)
        self.render_view()
        record = RenderRecord(revision, received, self.mono())
        self.render_log.append(record)
        self.call_after_refresh(self._painted, record)

    def _remember_departed(self, clusters: dict[str, Cluster]) -> None:
        """A member whose key vanished stays known (greyed, probed) until forget_member()."""
        mono = self.mono()
        for scope, cluster in clusters.items():
            old = self.clusters.get(scope)
            gone = self.departed.setdefault(scope, {})
            for m in old.members if old is not None else ():
                if cluster.member(m.name) is None and m.name not in gone:
                    gone[m.name] = (m, mono)
            for name in [n for n in gone if cluster.member(n) is not None]:
                del gone[name]  # its key is back

    def forget_member(self, scope: str, name: str) -> bool:
        """Remove a departed member from the table on purpose; False if it is not departed."""
        if self.departed.get(scope, {}).pop(name, None) is None:
            return False
        self.patroni.get(scope, {}).pop(name, None)
        self.render_view()
        return True

    def _painted(self, record: RenderRecord) -> None:
        record.painted = self.mono()

    def render_record(self, revision: int) -> RenderRecord | None:
        """The first render that showed `revision` or a newer one (None if not rendered yet)."""
        for record in self.render_log:
            if record.revision >= revision:
                return record
        return None

    async def wait_for_revision(self, revision: int, timeout: float = 5.0) -> RenderRecord | None:
        """Wait (in the app's loop, e.g. from a Pilot script) until `revision` was rendered."""
        import asyncio

        deadline = self.mono() + timeout
        while self.mono() < deadline:
            record = self.render_record(revision)
            if record is not None and record.painted is not None:
                return record
            await asyncio.sleep(0.002)
        return self.render_record(revision)

    def apply_patroni(
        self, scope: str, answers: dict[str, dict | None], errors: dict[str, str] | None = None
    ) -> None:
        """Feed /patroni answers directly (the recorded source and tests use this)."""
        now = self.mono()
        samples = {n: PatroniSample(d, now) for n, d in answers.items() if d is not None}
        for n, err in (errors or {}).items():
            samples[n] = PatroniSample(None, now, err)
        self.on_patroni_polled(PatroniPolled(scope, samples), rearm=False)

    def apply_lease(self, scope: str, remaining: int | None) -> None:
        self.on_lease_polled(LeasePolled(scope, remaining), rearm=False)

    def feed_log_lines(self, member: str, lines: Iterable[str]) -> None:
        screen = self.cluster_screen
        if screen is not None and member in screen.log_panes.panes:
            screen.log_panes.panes[member].add_lines(list(lines))

    def _announce(self, event: TimelineEvent, cluster: Cluster) -> None:
        """Toasts for what operators wait for; the watch is the only proof an action worked."""
        requested = self.requested.get(event.scope)
        if event.kind == "leader":
            text = f"{event.scope}: {event.text}"
            if requested and requested[0] in ("switchover", "failover") and cluster.leader_name:
                want = requested[1]
                if cluster.leader_name == want:
                    text = f"{event.scope}: {requested[0]} done, {want} is the leader (seen in etcd)"
                else:
                    text = f"{event.scope}: {cluster.leader_name} took the lead instead of {want}"
                self.requested.pop(event.scope, None)
            self.notify(
                text, title="Leader", severity="warning" if not cluster.leader_name else "information"
            )
        elif event.kind == "pause":
            self.notify(f"{event.scope}: {event.text}", title="Maintenance")
            if requested and requested[0] in ("pause", "resume"):
                self.requested.pop(event.scope, None)

    def _sample_lag(self) -> None:
        scope = self.selected_scope
        cluster = self.clusters.get(scope or "")
        if cluster is None:
            return
        for row in self.rows_for(scope):
            if row.is_leader or row.lag_bytes is None:
                continue
            self.lag_history.setdefault((cluster.scope, row.name), new_history()).append(float(row.lag_bytes))

    def rows_for(self, scope: str | None) -> list[MemberRow]:
        cluster = self.clusters.get(scope or "")
        if cluster is None:
            return []
        return build_rows(
            cluster,
            self.patroni.get(cluster.scope),
            self.clock(),
            self.mono(),
            lease_remaining=self.lease_remaining.get(cluster.scope),
            departed=self.departed.get(cluster.scope),
            key_changed={n: t for (sc, n), t in self.key_changed.items() if sc == cluster.scope},
        )

    @property
    def current_cluster(self) -> Cluster | None:
        return self.clusters.get(self.selected_scope or "")

    def render_view(self, status_only: bool = False) -> None:
        screen = self.cluster_screen
        if screen is None:
            return
        screen.render_state(status_only=status_only)
        top = self.screen
        if top is not screen and not status_only and hasattr(top, "update_from_app"):
            top.update_from_app()

    def select_scope(self, scope: str) -> None:
        if scope == self.selected_scope or scope not in self.clusters:
            return
        self.selected_scope = scope
        screen = self.cluster_screen
        if screen is not None:
            screen.reset_for_scope()
        self.render_view()

    # --- providers for the secondary screens ----------------------------------------------------
    def member_detail_data(
        self, scope: str, member: str
    ) -> tuple[Cluster | None, MemberRow | None, PatroniSample | None]:
        cluster = self.clusters.get(scope)
        row = next((r for r in self.rows_for(scope) if r.name == member), None)
        return cluster, row, self.patroni.get(scope, {}).get(member)

    def history_data(self, scope: str | None) -> tuple[Cluster | None, list[TimelineEvent]]:
        return self.clusters.get(scope or self.selected_scope or ""), list(self.events)

    # --- pollers (thread workers, re-armed after each finished round: never overlapping) --------
    def _poll_patroni(self) -> None:
        cluster = self.current_cluster
        if self._stopped:
            return
        if cluster is None or self.frozen:
            self.set_timer(PATRONI_POLL_SECONDS, self._poll_patroni)
            return
        self._patroni_round(cluster)

    @work(thread=True, group="poll-patroni", exit_on_error=False)
    def _patroni_round(self, cluster: Cluster) -> None:
        from .probes import pg_accepts

        samples: dict[str, PatroniSample] = {}
        gone = [m for m, _ in self.departed.get(cluster.scope, {}).values()]
        members = [m for m in [*cluster.members, *gone] if m.api_url or m.host]
        try:

            previous = dict(self.patroni.get(cluster.scope, {}))

            def one(m):
                pg_up, pg_error = pg_accepts(m.host, m.port, timeout=REST_PROBE_TIMEOUT)
                prior = previous.get(m.name)
                if (prior is not None and prior.error and "timed out" in prior.error
                        and self.mono() - prior.fetched_at < SILENT_RETRY_SECONDS):
                    # A frozen daemon queues every request and answers them all when it resumes,
                    # to clients long gone: ask it less often while it does not answer.
                    return m.name, dataclasses.replace(prior, pg_up=pg_up, pg_error=pg_error)
                if not m.api_url:
                    return m.name, PatroniSample(None, self.mono(), "no REST API address", None, pg_up, pg_error)
                try:
                    data = self.api.get_patroni(m, timeout=REST_PROBE_TIMEOUT)
                    return m.name, PatroniSample(data, self.mono(), None, None, pg_up, pg_error)
                except ApiError as exc:
                    return m.name, PatroniSample(None, self.mono(), str(exc), None, pg_up, pg_error)

            if members:
                with ThreadPoolExecutor(max_workers=min(8, len(members))) as pool:
                    samples = dict(pool.map(one, members))
        finally:
            self.post_message(PatroniPolled(cluster.scope, samples))

    def on_patroni_polled(self, message: PatroniPolled, rearm: bool = True) -> None:
        known = self.patroni.setdefault(message.scope, {})
        for name, sample in message.samples.items():
            old = known.get(name)
            if sample.data is None and old is not None:  # remember when it last answered
                sample = dataclasses.replace(sample, answered_at=old.last_answer)
            known[name] = sample
        if message.scope == self.selected_scope:
            self._sample_lag()
            if not self.frozen:
                self.render_view()
        if rearm and not self._stopped:
            self.set_timer(PATRONI_POLL_SECONDS, self._poll_patroni)

    def _poll_lease(self) -> None:
        # The leader's lease is read from etcd each second (Etcd.lease_ttl) rather than computed
        # from ttl and a renewal time: keepalives do not show up in the watch, so the console
        # cannot see renewals; reading the lease is exact and costs one small request.
        cluster = self.current_cluster
        if self._stopped:
            return
        if cluster is None or cluster.leader is None or not cluster.leader.lease or self.conn.state == "lost":
            if cluster is not None and (cluster.leader is None or not cluster.leader.lease):
                self.lease_remaining[cluster.scope] = None
            self.set_timer(LEASE_POLL_SECONDS, self._poll_lease)
            return
        self._lease_round(cluster.scope, cluster.leader.lease)

    @work(thread=True, group="poll-lease", exit_on_error=False)
    def _lease_round(self, scope: str, lease: int) -> None:
        remaining: int | None = None
        try:
            if self.source is not None:
                remaining = self.source.lease_ttl(lease)
        except DCSError:
            remaining = None
        finally:
            self.post_message(LeasePolled(scope, remaining))

    def on_lease_polled(self, message: LeasePolled, rearm: bool = True) -> None:
        self.lease_remaining[message.scope] = message.remaining
        screen = self.cluster_screen
        if screen is not None and not self.frozen and message.scope == self.selected_scope:
            screen.render_summary()
        if rearm and not self._stopped:
            self.set_timer(LEASE_POLL_SECONDS, self._poll_lease)

    def _tick(self) -> None:
        # Ages move even when nothing arrives: the banner's "answered N s ago", a stall, the
        # lease countdown. Cheap (two Statics, updated only when their text changed), so 4 times a
        # second: a stall is on screen at most a quarter second after it is decided.
        self.render_view(status_only=True)

    def on_etcd_probed(self, message: EtcdProbed) -> None:
        ev = self.etcd_evidence
        if message.error:
            self.etcd_evidence = EtcdEvidence(ev.last_answer, message.error, ev.started)
        else:
            self.etcd_evidence = EtcdEvidence(self.mono(), "", ev.started)

    @property
    def etcd_verdict(self) -> str:
        """'ok' | 'stalled' | 'unknown' (see widgets.health); a recording is always 'ok'."""
        if self.source is None or not self.source.live:
            return "ok"
        return self.etcd_evidence.verdict(self.mono())

    # --- theme ----------------------------------------------------------------------------------
    def _theme_changed(self, theme: Any) -> None:
        self.palette = palette_for(bool(theme.dark), bool(getattr(theme, "ansi", False)))
        screen = self.cluster_screen
        if screen is not None:
            screen.set_palette(self.palette)

    def action_cycle_theme(self) -> None:
        current = self.theme if self.theme in THEMES else THEMES[-1]
        self.theme = THEMES[(THEMES.index(current) + 1) % len(THEMES)]
        self.notify(f"Theme: {self.theme}", title="Theme", timeout=2)

    # --- app-wide actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False: hidden from the footer, and Textual refuses to run it.
        if self.read_only and action in WRITE_ACTIONS:
            return False
        # A screen opened over the cluster view owns the keyboard: the demo's keys and the
        # writes act on the member selected behind it, so they work only on the cluster screen.
        if action in BEHIND_ONLY_ACTIONS or action.startswith("panel"):
            from .screens.cluster import ClusterScreen

            return isinstance(self.screen, ClusterScreen)
        return True

    def refuse_read_only(self, what: str) -> bool:
        if self.read_only:
            self.notify(f"Read-only console: {what} is switched off.", severity="warning", title="Read-only")
            return True
        return False

    def action_help(self) -> None:
        self.push_screen(HelpScreen(visible_actions(self.read_only, self.action_table), self.read_only))

    def action_freeze(self) -> None:
        self.frozen = not self.frozen
        screen = self.cluster_screen
        if screen is not None:
            screen.log_panes.set_frozen(self.frozen)
        if not self.frozen:
            self.held_updates = 0
            self.render_view()
            self.notify("Following live updates again.", title="Display", timeout=2)
        else:
            self.render_view(status_only=True)

    def action_history(self) -> None:
        if isinstance(self.screen, HistoryScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HistoryScreen(self.selected_scope))

    def action_events(self) -> None:
        if isinstance(self.screen, EventsScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(EventsScreen(self.selected_scope))

    async def action_panel(self, name: str) -> None:
        widget = self._panel_widget
        method = getattr(widget, f"action_{name}", None) if widget is not None else None
        if method is None:
            self.notify(f"No panel action {name}", severity="warning")
            return
        result = method()
        if hasattr(result, "__await__"):
            await result

    def build_panel(self) -> Widget | None:
        if self.extra_panel is None:
            return None
        self._panel_widget = self.extra_panel.build(self)
        return self._panel_widget

    # --- write actions (each: pick -> confirm naming member and consequence -> request) -----------
    def action_edit_config(self) -> None:
        if self.refuse_read_only("editing the config"):
            return
        cluster = self.current_cluster
        if cluster is None or self.source is None:
            self.notify("No cluster to edit yet.", severity="warning")
            return
        store = self.source.store(cluster.scope)
        if store is None:
            self.notify("This view is a recording: nothing to write to.", severity="warning")
            return
        from .config import dump_yaml

        data = dict(cluster.config.data) if cluster.config else {}
        revision = cluster.config.mod_revision if cluster.config else 0
        self.push_screen(
            ConfigEditorScreen(
                dump_yaml(data),
                f"Dynamic configuration of {cluster.scope} (config key revision {revision})",
                target=EtcdConfigTarget(store, revision),
                original=data,
            )
        )

    def start_switchover(
        self, scope: str | None = None, candidate: str | None = None, failover: bool = False
    ) -> None:
        kind = "failover" if failover else "switchover"
        if self.refuse_read_only(kind):
            return
        cluster = self.clusters.get(scope or self.selected_scope or "")
        if cluster is None:
            return
        leader = cluster.leader_name
        if not failover and not leader:
            self.notify(
                f"{cluster.scope} has no leader: a switchover needs one. Use failover (F).",
                severity="warning",
                title="Switchover",
            )
            return
        statuses = self.patroni.get(cluster.scope, {})
        now = self.mono()
        cands = []
        for m in cluster.members:
            if m.name == leader:
                continue
            sample = statuses.get(m.name)
            ok, reason = eligibility(
                cluster, m.name, sample.status_for_eligibility(now) if sample else None, action=kind
            )
            cands.append(Candidate(m.name, ok, reason))
        if candidate is not None:
            match = next((c for c in cands if c.name == candidate), None)
            if match is None or not match.eligible:
                why = match.reason if match else "not a replica of this cluster"
                self.notify(f"{candidate} cannot take over: {why}", severity="error", title=kind.title())
                return
            self._confirm_switchover(cluster, candidate, failover)
            return
        title = (
            f"Failover {cluster.scope}: pick the member to promote"
            if failover
            else f"Switchover {cluster.scope}: pick the new leader (now {leader})"
        )
        self.push_screen(
            CandidateScreen(title, cands),
            callback=lambda name: name and self._confirm_switchover(cluster, name, failover),
        )

    def _confirm_switchover(self, cluster: Cluster, candidate: str, failover: bool) -> None:
        leader = cluster.leader_name
        if failover:
            title = f"Failover {cluster.scope} to {candidate}?"
            consequence = (
                f"{candidate} is promoted"
                + (
                    f" and the leader {leader} is demoted"
                    if leader
                    else " although the cluster has no leader"
                )
                + ". Clients of the old leader are disconnected. A planned change should be a "
                "switchover; failover is for when the leader is unhealthy."
            )
        else:
            title = f"Switchover {cluster.scope}: {leader} → {candidate}?"
            consequence = (
                f"{leader} is demoted (PostgreSQL restarted as a replica; its clients are "
                f"disconnected) and {candidate} is promoted. Writes fail for a few seconds. The "
                "console tells you when the leader key moves."
            )
        self.push_screen(
            ConfirmScreen(title, consequence, confirm_label="Failover" if failover else "Switchover"),
            callback=lambda ok: ok and self._send_switchover(cluster, candidate, failover),
        )

    def _send_switchover(self, cluster: Cluster, candidate: str, failover: bool) -> None:
        kind = "failover" if failover else "switchover"
        target = cluster.leader_member or cluster.member(candidate)
        self.requested[cluster.scope] = (kind, candidate)
        self.notify(
            f"{kind.title()} to {candidate} requested; waiting for the leader key to move…",
            title=kind.title(),
        )
        if failover:
            self._rest(kind, lambda: self.api.failover(target, candidate))
        else:
            self._rest(kind, lambda: self.api.switchover(target, cluster.leader_name, candidate))

    def start_restart(self, member_name: str | None) -> None:
        if self.refuse_read_only("restart"):
            return
        cluster = self.current_cluster
        m = cluster.member(member_name) if cluster else None
        if cluster is None or m is None:
            return

        def chosen(choice: RestartChoice | None) -> None:
            if choice is None:
                return
            is_leader = m.name == cluster.leader_name
            effect = (
                "it is the leader: writes fail until PostgreSQL is back (a restart does not fail over)"
                if is_leader
                else "its clients are disconnected; replication resumes when it is back"
            )
            when = {
                "now": "now",
                "scheduled": f"at {choice.schedule}",
                "pending": "now, only if a restart is pending (settings changed)",
            }[choice.mode]
            self.push_screen(
                ConfirmScreen(
                    f"Restart PostgreSQL on {m.name} ({cluster.scope})?",
                    f"PostgreSQL on {m.name} stops and starts again {when}; {effect}.",
                    confirm_label="Restart",
                ),
                callback=lambda ok: ok and self._rest("restart", lambda: self.api.restart(m, choice.body())),
            )

        self.push_screen(RestartScreen(m.name, m.pending_restart), callback=chosen)

    def start_reload(self, member_name: str | None) -> None:
        if self.refuse_read_only("reload"):
            return
        cluster = self.current_cluster
        m = cluster.member(member_name) if cluster else None
        if m is None:
            return
        self.push_screen(
            ConfirmScreen(
                f"Reload {m.name}?",
                f"{m.name} re-reads its configuration file and PostgreSQL reloads its settings "
                "(SIGHUP). Nothing restarts and nobody is disconnected.",
                confirm_label="Reload",
                danger=False,
            ),
            callback=lambda ok: ok and self._rest("reload", lambda: self.api.reload(m)),
        )

    def start_reinit(self, member_name: str | None) -> None:
        if self.refuse_read_only("reinit"):
            return
        cluster = self.current_cluster
        m = cluster.member(member_name) if cluster else None
        if cluster is None or m is None:
            return
        if m.name == cluster.leader_name:
            self.notify(
                f"{m.name} is the leader: only a replica can be reinitialized.",
                severity="error",
                title="Reinit",
            )
            return
        self.push_screen(
            ConfirmScreen(
                f"Reinitialize {m.name} ({cluster.scope})?",
                f"The data directory of {m.name} is DELETED and copied again from the leader "
                f"{cluster.leader_name or '(none!)'}. {m.name} is unavailable until the copy is done.",
                confirm_label="Reinit",
                type_to_confirm=m.name,
            ),
            callback=lambda ok: ok and self._rest("reinit", lambda: self.api.reinitialize(m)),
        )

    def start_pause(self, pause: bool) -> None:
        kind = "pause" if pause else "resume"
        if self.refuse_read_only(kind):
            return
        cluster = self.current_cluster
        if cluster is None:
            return
        if pause == cluster.is_paused:
            self.notify(
                f"{cluster.scope} is {'already paused' if pause else 'not paused'}.", title=kind.title()
            )
            return
        if pause:
            title = f"Pause {cluster.scope} (maintenance mode)?"
            consequence = (
                "No automatic failover and no PostgreSQL start/stop by the HA daemons until you "
                "resume. PostgreSQL keeps running; a dead leader is NOT replaced while paused."
            )
        else:
            title = f"Resume {cluster.scope}?"
            consequence = "The HA daemons manage PostgreSQL again, including automatic failover."
        self.push_screen(
            ConfirmScreen(title, consequence, confirm_label=kind.title(), danger=pause),
            callback=lambda ok: ok and self._send_pause(cluster, pause),
        )

    def _send_pause(self, cluster: Cluster, pause: bool) -> None:
        kind = "pause" if pause else "resume"
        self.requested[cluster.scope] = (kind, cluster.scope)
        members = sorted(cluster.members, key=lambda m: m.name != cluster.leader_name)  # leader first

        def call():
            last: Exception | None = None
            for m in members:
                try:
                    return self.api.patch_config(m, {"pause": True if pause else None})
                except ApiError as exc:
                    last = exc
            raise last or ApiError("no member has a REST API address")

        self._rest(kind, call)

    @work(thread=True, group="rest", exit_on_error=False)
    def _rest(self, what: str, call: Callable[[], Any]) -> None:
        try:
            resp = call()
        except ApiError as exc:
            self.call_from_thread(self.notify, f"{what} failed: {exc}", severity="error", title=what.title())
            return
        from .widgets.toasts import rest_result

        severity = "information" if resp.ok else "error"
        self.call_from_thread(
            self.notify, rest_result(what, resp.status, resp.text), severity=severity, title=what.title()
        )

    # --- command palette --------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        cs = self.cluster_screen
        for a in visible_actions(self.read_only, self.action_table):
            if a.action in ("quit", "command_palette"):
                continue
            yield SystemCommand(a.description, f"key {a.key_label}", self._palette_callback(a))
        cluster = self.current_cluster
        if cluster is None or cs is None:
            return
        for m in cluster.members:
            yield SystemCommand(
                f"show {m.name}",
                f"member detail of {m.name}",
                lambda n=m.name: self.push_screen(MemberDetailScreen(cluster.scope, n)),
            )
        for name in sorted(self.departed.get(cluster.scope, {})):
            yield SystemCommand(
                f"show {name} (gone)",
                f"{name}'s member key expired: what the console still knows",
                lambda n=name: self.push_screen(MemberDetailScreen(cluster.scope, n)),
            )
        if self.read_only:
            return
        for m in cluster.members:
            if m.name != cluster.leader_name and cluster.leader_name:
                yield SystemCommand(
                    f"switchover to {m.name}",
                    f"make {m.name} the leader of {cluster.scope}",
                    lambda n=m.name: self.start_switchover(cluster.scope, n),
                )
            yield SystemCommand(
                f"restart {m.name}", f"restart PostgreSQL on {m.name}", lambda n=m.name: self.start_restart(n)
            )
            yield SystemCommand(
                f"reload {m.name}",
                f"reload the configuration of {m.name}",
                lambda n=m.name: self.start_reload(n),
            )
            if m.name != cluster.leader_name:
                yield SystemCommand(
                    f"reinit {m.name}",
                    f"re-create {m.name} from the leader",
                    lambda n=m.name: self.start_reinit(n),
                )

    def _palette_callback(self, a: KeyAction) -> Callable[[], Any]:
        async def run() -> None:
            if a in ACTIONS and a.where == "screen":
                cs = self.cluster_screen
                if cs is not None:
                    await self.run_action(a.action, cs)
            elif a in ACTIONS:
                await self.run_action(a.action)
            else:
                await self.action_panel(a.action)

        return run


def run_console(
    etcd_hosts: list[str],
    namespace: str,
    scope: str | None,
    read_only: bool = False,
    log_files: dict[str, str] | None = None,
    api_auth: tuple[str, str] | None = None,
    extra_panel: ExtraPanel | None = None,
) -> None:
    """Run the console full-screen until the operator quits.

    With no etcd_hosts it tries 127.0.0.1:2379 and, if nothing answers there, shows how to point
    it at a cluster (or start `hatui demo`) instead of failing.
    """
    HatuiApp(etcd_hosts, namespace, scope, read_only, log_files, api_auth, extra_panel).run()
