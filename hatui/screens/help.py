"""The `?` screen: every key from the action table, and what the markers in the tables mean."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.health import HEALTHY_DEFINITION
from .keymap import KeyAction

MARKERS = (
    ("★", "leader (holds the leader lock)"),
    ("●", "running / streaming replica"),
    ("⚠", "its REST API does not answer the console (time since its last answer shown)"),
    ("⏳", "leader not renewing its lease (the countdown to its expiry shown)"),
    ("○", "gone: its member key expired; kept, greyed, with what its probes still say"),
    ("▲", "lagging more than maximum_lag_on_failover"),
    ("◌", "starting, stopping, restarting or being re-created"),
    ("✗", "stopped or crashed; in Failover: may not take over (reason shown below the table)"),
    ("⟳ *", "pending restart (a changed setting needs a PostgreSQL restart)"),
    ("❚❚", "paused: maintenance mode, no automatic failover"),
    ("STALE", "etcd is unreachable or stalled: the figures are the last ones received"),
)


def help_table(actions: Sequence[KeyAction], read_only: bool) -> Table:
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold", expand=False)
    table.add_column("Key", style="bold", no_wrap=True)
    table.add_column("Does")
    table.add_column("", no_wrap=True)
    for a in actions:
        table.add_row(a.key_label, a.description, "writes" if a.writes else "")
    if read_only:
        table.add_row("", Text("read-only console: actions that write are switched off", style="italic"), "")
    return table


def marker_table() -> Table:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(no_wrap=True, style="bold")
    table.add_column()
    for marker, meaning in MARKERS:
        table.add_row(marker, meaning)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, actions: Sequence[KeyAction], read_only: bool) -> None:
        super().__init__()
        self.actions = actions
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("hatui console: keys", style="bold"), classes="help-heading")
            yield Static(help_table(self.actions, self.read_only))
            yield Static(
                Text("\nMarkers (colour is only a second cue)", style="bold"), classes="help-heading"
            )
            yield Static(marker_table())
            yield Static(Text("\nWhat \"healthy\" means", style="bold"), classes="help-heading")
            yield Static(Text(HEALTHY_DEFINITION))
            yield Static(
                Text(
                    "\nctrl+p opens the command palette: every action above, plus "
                    "'switchover to <member>' and 'restart <member>'. Esc closes this help.",
                    style="dim",
                )
            )

    def action_close(self) -> None:
        self.dismiss(None)
