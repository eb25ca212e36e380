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

This module is the app's frame: its state, screens, lifetime, theme and app-wide keys. The rest of
`HatuiApp` lives in `hatui/console/`, one job a module, and the app inherits each part:
`cluster_state` (data in, what is kept, rendering), `pollers` (/patroni, lease, etcd probe),
`write_actions` (switchover, restart, edit-config...), `commands` (the command palette);
`sources` (etcd, or a recording) and `messages` are what the threads use to reach the app.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from textual.app import App
from textual.screen import Screen
from textual.widget import Widget

from .api_client import ApiClient
from .cluster import Cluster, Member
from .console.cluster_state import ClusterState
from .console.commands import PaletteCommands
from .console.messages import (  # noqa: F401 - importable from hatui.app, as before the split
    ClustersChanged,
    ConnectionLost,
    EtcdProbed,
    LeasePolled,
    PatroniPolled,
    RenderRecord,
)
from .console.pollers import Pollers
from .console.sources import (  # noqa: F401 - importable from hatui.app, as before the split
    LOCAL_ETCD,
    DataSource,
    EtcdConfigTarget,
    EtcdSource,
    find_local_etcd,
)
from .console.write_actions import WriteActions
from .etcd.store import normalize_namespace
from .screens.events import EventsScreen
from .screens.help import HelpScreen
from .screens.history import HistoryScreen
from .screens.keymap import ACTIONS, WRITE_ACTIONS, KeyAction, bindings_for, visible_actions
from .widgets.banner import ConnStatus
from .widgets.health import EtcdEvidence
from .widgets.palette import HealthPalette, palette_for
from .widgets.rows import PatroniSample
from .widgets.timeline import TimelineEvent

log = logging.getLogger("hatui.console")

# App-wide actions that act on the cluster screen's selection or open an editor over it: refused
# while another screen (history, member detail, help) is on top.
BEHIND_ONLY_ACTIONS = frozenset({"edit_config", "freeze"})
THEMES = ("textual-dark", "textual-light", "ansi-dark", "ansi-light")


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


# --- the app ----------------------------------------------------------------------------------
class HatuiApp(ClusterState, Pollers, WriteActions, PaletteCommands, App[None]):
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
