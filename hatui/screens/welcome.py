"""Shown when no etcd was given and none answers on 127.0.0.1:2379: how to point the console at
a cluster, instead of a traceback."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


# Each suggestion is a command line that works as typed (tests/tui/test_console_safety.py parses
# every one with the real `hatui` option parser).
SUGGESTIONS: tuple[tuple[str, str], ...] = (
    ("hatui --etcd 10.0.0.1:2379", "every cluster under /service on that etcd"),
    ("hatui --etcd 10.0.0.1:2379 --namespace /db", "every cluster under another namespace"),
    ("hatui -c /etc/patroni/postgres0.yml", "the cluster (scope) and etcd of a node's config file"),
    ("hatui --etcd 10.0.0.1:2379 --read-only", "look, never write"),
)


def welcome_text(tried: str) -> Text:
    t = Text()
    t.append("No etcd to watch.\n\n", "bold")
    t.append(f"No etcd endpoint was given, and nothing answers on {tried}.\n\n")
    t.append("Point the console at a cluster:\n", "bold")
    width = max(len(cmd) for cmd, _ in SUGGESTIONS) + 2
    for cmd, what in SUGGESTIONS:
        t.append(f"  {cmd:<{width}}", "bold")
        t.append(f"{what}\n")
    t.append("\nOr try it on this machine with a private etcd and two PostgreSQL nodes:\n", "bold")
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
