"""The main screen: connection banner, cluster summary, members table, replica lag, log panes.

It renders what the app holds (`render_state`) and turns keys into app actions; it never talks to
etcd or to a node itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, OptionList

from ..widgets.banner import ClusterSummary, ConnectionBanner
from ..widgets.cluster_list import ClusterList
from ..widgets.lag_sparkline import LagPanel
from ..widgets.log_pane import LogPanes
from ..widgets.member_table import NARROW_WIDTH, MemberTable
from ..widgets.palette import HealthPalette
from ..widgets.why_pane import WhyPane
from .keymap import WRITE_ACTIONS, bindings_for
from .member_detail import MemberDetailScreen

if TYPE_CHECKING:
    from .console_app import ConsoleApp


SHORT_HEIGHT = 32  # below this many rows the lag panel hides (the Lag column stays in the table)


class FilterInput(Input):
    BINDINGS = [Binding("escape", "clear_filter", "Clear filter")]

    def action_clear_filter(self) -> None:
        self.value = ""
        self.screen.close_filter()  # type: ignore[attr-defined]


class ClusterScreen(Screen[None]):
    BINDINGS = bindings_for("screen")

    app: ConsoleApp
    ready = False  # widgets composed and mounted: the app may render into them

    def compose(self) -> ComposeResult:
        panel = self.app.build_panel()  # the demo's hook (see app.ExtraPanel)
        dock = self.app.extra_panel.dock if self.app.extra_panel else ""
        yield Header()
        yield ConnectionBanner(id="banner")
        with Horizontal(id="main"):
            if self.app.namespace_mode:
                yield ClusterList(id="cluster-list")
            with Vertical(id="cluster-body"):
                yield ClusterSummary(id="summary")
                yield FilterInput(
                    placeholder="filter: name, host, role, state or tag (Enter keeps it, Esc clears)",
                    id="filter",
                )
                yield MemberTable(id="members")
                yield WhyPane(id="why")  # issue 17: why each member would (not) be promoted
                yield LagPanel(id="lag")
                yield LogPanes(sorted(self.app.log_files) or self._recorded_log_members(), id="logs")
            if panel is not None and dock == "right":
                yield panel
        if panel is not None and dock != "right":
            yield panel
        yield Footer()

    def on_unmount(self) -> None:
        self.ready = False

    # 80x24 first: below these sizes the screen drops what it can show elsewhere.
    @property
    def narrow(self) -> bool:
        return self.size.width < NARROW_WIDTH

    @property
    def short(self) -> bool:
        return self.size.height < SHORT_HEIGHT

    def on_resize(self, _event) -> None:
        self.set_class(self.narrow, "-narrow")
        self.set_class(self.short, "-short")
        if self.ready:
            self.members_table.set_narrow(self.narrow)
            self.render_summary()

    def _recorded_log_members(self) -> list[str]:
        # A recorded source carries its own log lines: one pane per member it has lines for.
        src = self.app.source
        if src is not None and not src.live:
            from ..console_events import recorded_logs

            return sorted(recorded_logs())
        return []

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.set_class(self.narrow, "-narrow")
        self.set_class(self.short, "-short")
        self.members_table.set_narrow(self.narrow)
        self.ready = True
        self.set_palette(self.app.palette)
        self.members_table.focus()
        self.app.screen_ready()

    # --- widgets ----------------------------------------------------------------------------------
    @property
    def members_table(self) -> MemberTable:
        return self.query_one(MemberTable)

    @property
    def log_panes(self) -> LogPanes:
        return self.query_one(LogPanes)

    @property
    def selected_member(self) -> str | None:
        return self.members_table.selected_member

    def set_palette(self, pal: HealthPalette) -> None:
        if not self.ready:
            return
        self.members_table.set_palette(pal)
        for why in self.query(WhyPane):
            why.palette = pal
        lag = self.query_one(LagPanel)
        lag.palette = pal
        self.log_panes.set_palette(pal)
        for cl in self.query(ClusterList):
            cl.palette = pal
        self.render_state()

    # --- rendering ----------------------------------------------------------------------------------
    def render_state(self, status_only: bool = False) -> None:
        if not self.ready:
            return
        try:
            self._render_state(status_only)
        except NoMatches:
            # Shutting down: Textual removes a screen's widgets before the screen's own unmount,
            # and a watch or poll message handled in between finds them gone. Nothing to draw.
            return

    def _render_state(self, status_only: bool) -> None:
        app = self.app
        stale = app.conn.stale or app.etcd_verdict == "stalled"
        ev = app.etcd_evidence
        self.query_one(ConnectionBanner).show(
            app.conn,
            app.clock(),
            app.frozen,
            app.held_updates,
            app.palette,
            etcd=app.etcd_verdict,
            silent_for=ev.silent_for(app.mono()) if app.source is not None and app.source.live else None,
            probe_error=ev.last_error,
        )
        table = self.members_table
        table.set_class(stale, "-stale")
        self.update_table_title()
        self.render_summary()
        if status_only:
            return
        cluster = app.current_cluster
        for cl in self.query(ClusterList):
            cl.show(app.clusters, app.selected_scope)
        if cluster is None:
            return
        rows = app.rows_for(cluster.scope)
        table.show(rows)
        for why in self.query(WhyPane):
            why.show(cluster, rows)
        history = {name: h for (scope, name), h in app.lag_history.items() if scope == cluster.scope}
        self.query_one(LagPanel).show(rows, history)

    def render_summary(self) -> None:
        if not self.ready:
            return
        app = self.app
        cluster = app.current_cluster
        remaining = app.lease_remaining.get(cluster.scope) if cluster else None
        stale = app.conn.stale or app.etcd_verdict == "stalled"
        rows = app.rows_for(cluster.scope) if cluster else None
        for summary in self.query(ClusterSummary):  # none while shutting down (see render_state)
            summary.show(
                cluster, remaining, app.palette, stale=stale, rows=rows, compact=self.short, narrow=self.narrow
            )

    def reset_for_scope(self) -> None:
        self.members_table.reset()
        self.query_one(LagPanel).reset()

    # --- events --------------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, MemberTable):
            event.stop()
            self.action_member_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if isinstance(event.data_table, MemberTable) and event.row_key is not None:
            self.log_panes.show_member(str(event.row_key.value))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if isinstance(event.option_list, ClusterList) and event.option.id:
            self.app.select_scope(event.option.id)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.members_table.filter_text = event.value.strip()
            self.render_state()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.close_filter()

    def close_filter(self) -> None:
        self.query_one("#filter").display = False
        self.update_table_title()
        self.members_table.focus()

    def update_table_title(self) -> None:
        table = self.members_table
        parts = ["Members"]
        if self.app.conn.stale:
            parts.append("STALE (etcd lost)")
        elif self.app.etcd_verdict == "stalled":
            parts.append("STALE (etcd stalled)")
        if table.filter_text:
            parts.append(f"filter: {table.filter_text}")
        parts.append(table.sort_label)
        table.border_title = " · ".join(parts)

    # --- actions ---------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.app.read_only and action in WRITE_ACTIONS)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_sort(self) -> None:
        self.members_table.next_sort_column()
        self.update_table_title()

    def action_sort_reverse(self) -> None:
        t = self.members_table
        t.sort_by(t.sort_column, reverse=not t.sort_reverse)
        self.update_table_title()

    def action_member_detail(self) -> None:
        cluster = self.app.current_cluster
        name = self.selected_member
        if cluster is None or name is None:
            return
        self.app.push_screen(MemberDetailScreen(cluster.scope, name))

    def action_next_log(self) -> None:
        self.log_panes.next_pane()

    def action_next_cluster(self) -> None:
        scopes = sorted(self.app.clusters)
        if len(scopes) < 2:
            self.notify("Only one cluster is watched.", timeout=2)
            return
        current = self.app.selected_scope
        nxt = scopes[(scopes.index(current) + 1) % len(scopes)] if current in scopes else scopes[0]
        self.app.select_scope(nxt)

    def action_forget_member(self) -> None:
        """Drop a gone (greyed) member from the table: the only way such a row leaves."""
        cluster = self.app.current_cluster
        name = self.selected_member
        if cluster is None or name is None:
            return
        if self.app.forget_member(cluster.scope, name):
            self.notify(f"{name} is no longer shown.", timeout=3)
        else:
            self.notify(f"{name} still has a member key: only a gone member can be forgotten.", timeout=3)

    def action_switchover(self) -> None:
        self.app.start_switchover()

    def action_failover(self) -> None:
        self.app.start_switchover(failover=True)

    def action_restart(self) -> None:
        self.app.start_restart(self.selected_member)

    def action_reload(self) -> None:
        self.app.start_reload(self.selected_member)

    def action_reinit(self) -> None:
        self.app.start_reinit(self.selected_member)

    def action_pause(self) -> None:
        self.app.start_pause(True)

    def action_resume(self) -> None:
        self.app.start_pause(False)
