"""The event timeline screen (`y`, for "why"): what happened in the cluster and why, newest first.

Read from the `events/` keys of the cluster (events.py), so it shows what every member recorded,
also before this console started; updated live from the watch like every other view.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ..cluster import Cluster
from ..events import LEADER_CHANGES

KIND_STYLE = {k: "bold" for k in LEADER_CHANGES} | {"demote": "bold", "fencing": "bold",
                                                   "switchover_refused": "bold", "pause": "bold"}


def only_events_changed(old: dict[str, Cluster], new: dict[str, Cluster]) -> bool:
    """True when the clusters differ only in their event timelines (a new event key), so the main
    screen, which shows no event, need not be redrawn (events flow while members change)."""
    if old.keys() != new.keys():
        return False
    changed = False
    for scope, cluster in new.items():
        before = old[scope]
        if before is cluster:
            continue
        if before.events == cluster.events:
            return False
        if replace(cluster, events=before.events, revision=before.revision) != before:
            return False
        changed = True
    return changed


class EventsScreen(Screen[None]):
    BINDINGS: ClassVar = [Binding("escape,y", "close", "Back")]
    DEFAULT_CSS = """
    #events-body { height: 1fr; border: round $secondary 60%; border-title-color: $text; }
    #events-title { padding: 0 1; }
    #cluster-events { height: 1fr; }
    #event-detail { height: auto; max-height: 6; padding: 0 1; border-top: solid $secondary 40%; }
    """

    def __init__(self, scope: str | None) -> None:
        super().__init__()
        self.scope = scope
        self._sig: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="events-body"):
            yield Static("", id="events-title")
            yield DataTable(id="cluster-events", cursor_type="row")
            yield Static("", id="event-detail")
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#cluster-events", DataTable)
        t.add_column("Time (UTC)", key="time")
        t.add_column("Event", key="kind")
        t.add_column("Member", key="member")
        t.add_column("What happened and why", key="message")
        self.query_one("#events-body").border_title = "Event timeline (etcd events/ keys, newest first)"
        self.update_from_app()

    def update_from_app(self) -> None:
        clusters = getattr(self.app, "clusters", {})
        self.show(clusters.get(self.scope or ""))

    def show(self, cluster: Cluster | None) -> None:
        title = self.query_one("#events-title", Static)
        events = cluster.events if cluster is not None else ()
        sig = tuple(e.id for e in events)
        if sig == self._sig:
            return
        self._sig = sig
        if cluster is None:
            title.update(Text("no cluster data yet", style="dim"))
        else:
            title.update(Text.assemble((cluster.scope, "bold"), f": {len(events)} event(s) recorded"))
        table = self.query_one("#cluster-events", DataTable)
        table.clear()
        for ev in reversed(events):
            table.add_row(ev.time[:19].replace("T", " "), Text(ev.kind, style=KIND_STYLE.get(ev.kind, "")),
                          ev.member or "", ev.message, key=ev.id)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The whole message and the facts of the selected event (the table cuts long lines)."""
        cluster = getattr(self.app, "clusters", {}).get(self.scope or "")
        ev = next((e for e in (cluster.events if cluster else ()) if event.row_key and e.id == event.row_key.value),
                  None)
        detail = self.query_one("#event-detail", Static)
        if ev is None:
            detail.update("")
            return
        facts = "  ".join(f"{k}={v}" for k, v in ev.facts.items())
        detail.update(Text.assemble((f"{ev.kind} ", "bold"), f"{ev.time}  {ev.member or ''}\n", ev.message,
                                    ("\n" + facts if facts else "", "dim")))

    def action_close(self) -> None:
        self.dismiss(None)
