"""Timeline history: the `history` key (newest first) and the events this console saw."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ..cluster import Cluster, format_lsn
from ..events import cause_of_timeline
from ..widgets.timeline import TimelineEvent

KIND_STYLE = {"leader": "bold", "failover": "bold", "pause": "bold"}


class HistoryScreen(Screen[None]):
    BINDINGS = [Binding("escape,h", "close", "Back")]

    def __init__(self, scope: str | None) -> None:
        super().__init__()
        self.scope = scope
        self._history_sig: tuple | None = None
        self._events_sig: tuple = (0, None)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="history-top"):
            yield Static("", id="history-title")
            yield DataTable(id="history-table", cursor_type="row")
        with Vertical(id="history-events"):
            yield DataTable(id="events-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        ht = self.query_one("#history-table", DataTable)
        ht.add_column("TL", key="tl")
        ht.add_column("LSN", key="lsn")
        ht.add_column("Reason", key="reason")
        ht.add_column("Timestamp", key="ts")
        ht.add_column("New Leader", key="leader")
        ht.add_column("Why (event)", key="cause")
        et = self.query_one("#events-table", DataTable)
        et.add_column("Seen at", key="at")
        et.add_column("Cluster", key="scope")
        et.add_column("Event", key="kind")
        et.add_column("What happened", key="text")
        self.query_one("#history-top").border_title = "Timeline history (history key, newest first)"
        self.query_one("#history-events").border_title = "Events seen by this console (newest first)"
        self.update_from_app()

    def update_from_app(self) -> None:
        provider = getattr(self.app, "history_data", None)
        if provider is not None:
            self.show(*provider(self.scope))

    def show(self, cluster: Cluster | None, events: Sequence[TimelineEvent]) -> None:
        title = self.query_one("#history-title", Static)
        if cluster is None:
            title.update(Text("no cluster data yet", style="dim"))
        else:
            entries = cluster.history.entries if cluster.history else ()
            title.update(
                Text.assemble(
                    (cluster.scope, "bold"),
                    f": current timeline {cluster.timeline}, {len(entries)} past timeline(s)",
                )
            )
            sig = (tuple(entries), tuple(e.id for e in cluster.events))
            if sig != self._history_sig:
                # The history key only changes on a promotion: rebuilding it is cheap and rare.
                self._history_sig = sig
                table = self.query_one("#history-table", DataTable)
                table.clear()
                for e in sorted(entries, key=lambda e: e.timeline, reverse=True):
                    cause = cause_of_timeline(cluster.events, e.timeline + 1)  # the change that ended it
                    table.add_row(
                        Text(str(e.timeline), justify="right"),
                        Text(f"{format_lsn(e.lsn)} ({e.lsn})", justify="right"),
                        e.reason,
                        e.timestamp,
                        e.new_leader,
                        f"{cause.kind}: {cause.facts.get('cause') or cause.message}" if cause else "",
                        key=str(e.timeline),
                    )
        wanted = [e for e in events if self.scope is None or e.scope == self.scope]
        sig = (len(wanted), wanted[-1] if wanted else None)
        if sig != self._events_sig:
            table = self.query_one("#events-table", DataTable)
            table.clear()
            for e in reversed(wanted):
                table.add_row(
                    e.at.strftime("%H:%M:%S"), e.scope, Text(e.kind, style=KIND_STYLE.get(e.kind, "")), e.text
                )
            self._events_sig = sig

    def action_close(self) -> None:
        self.dismiss(None)
