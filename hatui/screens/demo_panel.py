"""The demo panel: the console's cluster screen plus keys that break the cluster on purpose.

`DemoApp` is the console (HatuiApp) on the demo's etcd, with a `DemoPanel` docked below the
cluster view through the app's ExtraPanel hook. Every key calls the same `DemoRuntime` method
that `hatui demo ACTION MEMBER` calls over the control socket, on the member selected in the table.
The panel shows each node's processes (daemon, PostgreSQL, fencing guard), the write load and,
while it runs, a step of the guided tour (widgets/demo_tour.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

from ..app import ExtraPanel, HatuiApp
from ..widgets.demo_tour import TourContext, TourStep, build_steps
from .keymap import KeyAction

if TYPE_CHECKING:
    from ..demo.runtime import DemoRuntime

DEMO_KEYS: tuple[KeyAction, ...] = (
    KeyAction("k", "kill_daemon", "Kill -9 daemon", writes=True),
    KeyAction("K", "kill_postgres", "Kill -9 PostgreSQL", writes=True, footer=False),
    KeyAction("z", "freeze", "Freeze/resume daemon", writes=True),
    KeyAction("g", "start", "Start daemon", writes=True),
    KeyAction("d", "write", "Write a row here", writes=True),
    KeyAction("L", "load", "Write load on/off", writes=True),
    KeyAction("t", "tour", "Tour: next step"),
    KeyAction("T", "tour_back", "Tour: previous step", footer=False),
    KeyAction("a", "tour_do", "Tour: do this step", writes=True, footer=False),
    KeyAction("v", "toggle_panel", "Demo panel: one line / full", footer=False),
)
# Below this many terminal rows the panel is a strip (one line per node and one for the tour), so
# every member row stays visible; `v` opens it in full.
STRIP_BELOW_HEIGHT = 40
TALK_TIMING = {"ttl": 60, "loop_wait": 5, "retry_timeout": 27}


class DemoPanel(Static):
    DEFAULT_CSS = """
    DemoPanel {
        dock: bottom;
        height: auto;
        max-height: 16;
        border-top: solid $accent;
        padding: 0 1;
        /* The footer is docked to the bottom too, and docked widgets overlap: without this line
           of margin the footer covered the panel's last line (the end of every tour step). */
        margin-bottom: 1;
    }
    """

    def __init__(self, runtime: DemoRuntime) -> None:
        super().__init__(id="demo-panel")
        self.rt = runtime
        self.tour_index: int | None = None
        self.tour_victim: str | None = None
        self.tour_targets: dict[str, str] = {}  # step key -> the member it was about when shown
        self.last_message = ""
        self.expanded: bool | None = None  # None: by terminal size (STRIP_BELOW_HEIGHT)

    # --- rendering ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.refresh_view()
        self.set_interval(0.5, self.refresh_view)

    def refresh_view(self) -> None:
        self.update(self.render_text())

    @property
    def strip(self) -> bool:
        if self.expanded is not None:
            return not self.expanded
        return self.app.size.height < STRIP_BELOW_HEIGHT

    def action_toggle_panel(self) -> None:
        self.expanded = self.strip
        self.refresh_view()

    def strip_text(self) -> Text:
        """The 80x24 form: one line per node, one for the load or the tour step."""
        t = Text(no_wrap=True, overflow="ellipsis")
        for s in self.rt.states():
            style = {"running": "green", "frozen": "yellow bold", "not started": "dim"}.get(s.daemon, "red bold")
            t.append(f"{s.name} ", "bold")
            t.append(f"daemon {s.daemon}", style)
            t.append(" · PG ")
            t.append("up" if s.postgres_pid else "down", "green" if s.postgres_pid else "dim")
            t.append("   ")
        load = self.rt.load.stats()
        if load.running:
            t.append(f"· load {load.per_second:.0f}/s {load.errors} err", "green" if load.per_second else "red bold")
        step = self.current_step()
        t.append("\n")
        if step is not None and self.tour_index is not None:
            t.append(f"tour {self.tour_index + 1}/{len(self.steps())} {step.title}", "bold reverse")
            t.append(" v: read it · t next" + (f" · a: {step.do}" if step.do else ""), "dim")
        else:
            t.append("demo: k kill daemon · K kill PG · z freeze · g start · d write · L load · t tour · v more",
                     "dim")
        return t

    def render_text(self) -> Text:
        if self.strip:
            return self.strip_text()
        step = self.current_step()
        if step is not None and self.tour_index is not None and self.app.size.height < STRIP_BELOW_HEIGHT:
            # Opened with v on a short terminal: the step's whole text, under the one-line strip.
            t = self.strip_text()
            t.no_wrap = False
            t.append(f"\ntour {self.tour_index + 1}/{len(self.steps())}: {step.title}", "bold reverse")
            t.append(" v: one line" + (f" · a: {step.do}" if step.do else ""), "dim")
            for line in step.lines:
                t.append("\n  " + line)
            return t
        t = Text()
        t.append(" demo ", "bold reverse")
        t.append("  on the selected member: k kill -9 daemon · K kill -9 PostgreSQL · z freeze/resume · "
                 "g start daemon · d write a row   ·   L write load · t tour\n", "dim")
        for s in self.rt.states():
            t.append(f"{s.name:<13}", "bold")
            style = {"running": "green", "frozen": "yellow bold", "not started": "dim"}.get(s.daemon, "red bold")
            t.append("daemon ")
            t.append(f"{s.daemon_pid or '-'} {s.daemon}", style)
            t.append("   PostgreSQL ")
            if s.postgres_pid:
                unmanaged = s.daemon not in ("running", "frozen")
                t.append(f"{s.postgres_pid}" + (" (unmanaged!)" if unmanaged else ""),
                         "red bold" if unmanaged else "green")
            else:
                t.append("down", "dim")
            if s.guard_pids:
                t.append(f"   guard {','.join(map(str, s.guard_pids))}", "dim")
            t.append(f"   :{s.pg_port}  REST :{s.api_port}\n", "dim")
        load = self.rt.load.stats()
        t.append("load ", "bold")
        if load.running:
            t.append(f"{load.per_second:.0f} commits/s", "green" if load.per_second else "red bold")
            t.append(f" · {load.commits} commits · ")
            t.append(f"{load.errors} errors", "red" if load.errors else "")
            t.append(f" · writing to {load.member or '(reconnecting)'}")
            if load.last_error:
                t.append(f" · last error: {load.last_error[:70]}", "dim")
        else:
            t.append("off (L starts it)" + (f" · {load.commits} commits, {load.errors} errors" if load.commits else ""),
                     "dim")
        t.append("\n")
        if self.rt.events:
            t.append("last ", "bold")
            t.append(self.rt.events[-1][1][: max(20, self.size.width - 8)])
        step = self.current_step()
        if step is not None and self.tour_index is not None:
            total = len(self.steps())
            t.append(f"\ntour {self.tour_index + 1}/{total}: {step.title}", "bold reverse")
            t.append("   t next · T back" + (f" · a: {step.do}" if step.do else "")
                     + (" · v: one line" if self.expanded else ""), "dim")
            for line in step.lines:
                t.append("\n  " + line)
        return t

    # --- helpers -----------------------------------------------------------------------------
    def selected(self) -> str | None:
        screen = self.app.cluster_screen  # type: ignore[attr-defined]
        name = screen.selected_member if screen is not None else None
        if name is None:
            self.app.notify("Select a member in the table first.", severity="warning", title="Demo")
        return name

    def _run(self, what: str, fn: Callable[[], str]) -> None:
        """Run a runtime call in a thread (a write may wait for a connect timeout) and say how it went."""
        from ..demo.common import DemoError

        def job() -> None:
            try:
                msg = fn()
                severity = "warning" if "refused" in msg else "information"
            except DemoError as exc:
                msg, severity = str(exc), "error"
            except Exception as exc:  # noqa: BLE001 - show it; the demo must keep running
                msg, severity = f"{type(exc).__name__}: {exc}", "error"
            self.last_message = msg
            self.app.call_from_thread(self.app.notify, msg, title=what, severity=severity)
            self.app.call_from_thread(self.refresh_view)

        self.run_worker(job, thread=True, group="demo", exit_on_error=False)

    def _on_selected(self, what: str, method: Callable[[str], str]) -> None:
        name = self.selected()
        if name is not None:
            self._run(what, lambda: method(name))

    # --- key actions (bound through ExtraPanel: app.action_panel calls these) ---------------------
    def action_kill_daemon(self) -> None:
        self._on_selected("kill -9 daemon", self.rt.kill_daemon)

    def action_kill_postgres(self) -> None:
        self._on_selected("kill -9 PostgreSQL", self.rt.kill_postgres)

    def action_freeze(self) -> None:
        self._on_selected("freeze/resume", self.rt.toggle_freeze)

    def action_start(self) -> None:
        # A member whose daemon died may have left the table (its key went with its lease), so
        # `g` on a member that runs starts a stopped one instead of refusing.
        screen = self.app.cluster_screen  # type: ignore[attr-defined]
        name = screen.selected_member if screen is not None else None
        states = {s.name: s for s in self.rt.states()}
        if name is None or states.get(name) is None or states[name].daemon in ("running", "frozen"):
            name = self._stopped_member() or name
        if name is None:
            self.app.notify("Select a member in the table first.", severity="warning", title="Demo")
            return
        target = name
        self._run("start daemon", lambda: self.rt.start_daemon(target))

    def action_write(self) -> None:
        self._on_selected("write a row", self.rt.write_row)

    def action_load(self) -> None:
        if self.rt.load.running:
            self.rt.load.stop()
            self.app.notify("Write load stopped.", title="load")
        else:
            self.rt.load.start()
            self.app.notify("Write load started: about 50 commits/s to whichever member accepts writes.",
                            title="load")
        self.refresh_view()

    # --- the tour ---------------------------------------------------------------------------------
    def context(self) -> TourContext:
        cluster = self.app.current_cluster  # type: ignore[attr-defined]
        members = [n.name for n in self.rt.cluster.nodes]
        cfg = cluster.config if cluster is not None else None
        return TourContext(
            leader=cluster.leader_name if cluster is not None else None,
            members=members,
            fencing=self.rt.fencing,
            ttl=cfg.ttl if cfg else 30,
            loop_wait=cfg.loop_wait if cfg else 10,
            retry_timeout=cfg.retry_timeout if cfg else 10,
            victim=self.tour_victim,
            config_path=str(self.rt.cluster.nodes[0].config_path),
            stopped=self._stopped_member(),
            targets=dict(self.tour_targets),
        )

    def steps(self) -> list[TourStep]:
        return build_steps(self.context())

    def current_step(self) -> TourStep | None:
        if self.tour_index is None:
            return None
        steps = self.steps()
        return steps[min(self.tour_index, len(steps) - 1)]

    def action_tour(self) -> None:
        total = len(self.steps())
        if self.tour_index is None:
            self.tour_index = 0
        elif self.tour_index + 1 >= total:
            self.tour_index = None
            self.tour_targets.clear()
        else:
            self.tour_index += 1
        self._pin_target()
        self.refresh_view()

    def action_tour_back(self) -> None:
        if self.tour_index:
            self.tour_index -= 1
        self._pin_target()
        self.refresh_view()

    def _pin_target(self) -> None:
        """A step that acts on the leader keeps the member it named when it was first shown."""
        step = self.current_step()
        leader = self.context().leader
        if step is not None and step.key in ("failover", "freeze") and leader and step.key not in self.tour_targets:
            self.tour_targets[step.key] = leader

    def action_tour_do(self) -> None:
        step = self.current_step()
        if step is None or step.do is None:
            self.app.notify("Nothing to do on this step (t: next step).", title="tour")
            return
        self._pin_target()
        c = self.context()
        if step.key == "failover":
            target = c.target("failover")
            if target is None:
                self.app.notify("There is no leader right now; wait for one.", severity="warning", title="tour")
                return
            self.tour_victim = target
            self._run("kill -9 daemon", lambda: self.rt.kill_daemon(target))
        elif step.key == "splitbrain":
            old = c.victim or c.stopped
            if old is None:
                self.app.notify("No old leader yet: do the failover step first.", severity="warning", title="tour")
                return
            self._run("write a row", lambda: self.rt.write_row(old))
        elif step.key == "rejoin":
            target = c.victim or self._stopped_member()
            if target is None:
                self.app.notify("Every daemon is running.", title="tour")
                return
            self._run("start daemon", lambda: self.rt.start_daemon(target))
        elif step.key == "reload":
            self._patch_config({"postgresql": {"parameters": {"work_mem": "8MB"}}})
        elif step.key == "pending":
            self._patch_config({"postgresql": {"parameters": {"max_connections": 101}}})
        elif step.key == "timing":
            self._patch_config(dict(TALK_TIMING))
        elif step.key == "freeze":
            frozen = c.target("freeze")
            if frozen is None:
                self.app.notify("There is no leader right now.", severity="warning", title="tour")
                return
            self._run("freeze/resume", lambda: self.rt.toggle_freeze(frozen))
        elif step.key == "load":
            self.action_load()

    def _stopped_member(self) -> str | None:
        return next((s.name for s in self.rt.states() if s.daemon not in ("running", "frozen")), None)

    def _patch_config(self, patch: dict) -> None:
        app: Any = self.app
        cluster = app.current_cluster
        member = cluster.leader_member if cluster is not None else None
        if member is None and cluster is not None and cluster.members:
            member = cluster.members[0]
        if member is None:
            app.notify("No member to send the change to yet.", severity="warning", title="edit-config")
            return
        app._rest("edit-config", lambda: app.api.patch_config(member, patch))


class DemoApp(HatuiApp):
    """The console on the demo's cluster, with the demo panel; quits when the demo is told to stop."""

    TITLE = "hatui demo"

    def __init__(self, runtime: DemoRuntime, **kwargs: Any) -> None:
        c = runtime.cluster
        super().__init__(
            [c.etcd_endpoint], "/service", c.scope,
            log_files={n.name: str(n.log_path) for n in c.nodes},
            extra_panel=ExtraPanel(build=lambda app: DemoPanel(runtime), keys=DEMO_KEYS),
            **kwargs,
        )
        self.runtime = runtime

    @property
    def panel(self) -> DemoPanel | None:
        widget = self._panel_widget
        return widget if isinstance(widget, DemoPanel) else None

    def on_mount(self) -> None:
        # HatuiApp.on_mount runs too (Textual calls each class's handler along the MRO).
        self.set_interval(0.25, self._check_stop)

    def _check_stop(self) -> None:
        if self.runtime.stop_requested.is_set():
            self.exit()


    def action_help_quit(self) -> None:
        # Ctrl-C in the demo quits (and so stops the cluster), as people expect of a demo.
        self.exit()
