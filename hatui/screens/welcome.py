"""Shown when no etcd was given and none answers on 127.0.0.1:2379: how to point the console at
a cluster, instead of a traceback."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


def welcome_text(tried: str) -> Text:
    t = Text()
    t.append("No etcd to watch.\n\n", "bold")
    t.append(f"No etcd endpoint was given, and nothing answers on {tried}.\n\n")
    t.append("Point the console at a cluster:\n", "bold")
    t.append("  hatui --etcd 10.0.0.1:2379 -c batman        ", "bold")
    t.append("one cluster (scope batman)\n")
    t.append("  hatui --etcd 10.0.0.1:2379 -n /service       ", "bold")
    t.append("every cluster under a namespace\n")
    t.append("  hatui -c batman --read-only                  ", "bold")
    t.append("look, never write\n\n")
    t.append("Or try it on this machine with a private etcd and two PostgreSQL nodes:\n", "bold")
    t.append("  hatui demo\n\n", "bold")
    t.append("Press q to quit.", "dim")
    return t


class WelcomeScreen(Screen[None]):
    BINDINGS = [Binding("q,escape", "app.quit", "Quit")]

    def __init__(self, tried: str = "127.0.0.1:2379") -> None:
        super().__init__()
        self.tried = tried

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="welcome-box"):
            yield Static(welcome_text(self.tried))
        yield Footer()
