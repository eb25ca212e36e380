"""Replica lag over time: one line per replica with a sparkline, the current lag and whether it may
take over (failover eligibility, with the reason when it may not).

Samples are appended by the app each time it learns a new position (a cluster revision or a
/patroni poll), kept in a bounded deque per member.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from .palette import DARK, HealthPalette
from .rows import MemberRow, human_bytes, human_seconds

SAMPLES = 60


class ReplicaLagLine(Horizontal):
    DEFAULT_CSS = """
    ReplicaLagLine { height: auto; }
    ReplicaLagLine > .lag-name { width: 14; }
    ReplicaLagLine > Sparkline { width: 30; height: 1; margin-right: 1; }
    ReplicaLagLine > .lag-text { width: 1fr; height: auto; }
    """

    def __init__(self, row: MemberRow, samples: list[float], pal: HealthPalette) -> None:
        super().__init__()
        self.member = row.name
        self._initial = (row, samples, pal)
        self._text: Text | None = None

    def compose(self) -> ComposeResult:
        row, samples, pal = self._initial
        yield Label(self.member, classes="lag-name")
        yield Sparkline(samples or [0.0], summary_function=max)
        yield Static(self.describe(row, pal), classes="lag-text")

    def set_values(self, row: MemberRow, samples: Iterable[float], pal: HealthPalette) -> None:
        if not self.is_mounted or not self.children:
            self._initial = (row, list(samples), pal)
            return
        data = list(samples) or [0.0]
        spark = self.query_one(Sparkline)
        if spark.data != data:
            spark.data = data
        text = self.describe(row, pal)
        if text != self._text:
            self._text = text
            self.query_one(".lag-text", Static).update(text)

    @staticmethod
    def describe(row: MemberRow, pal: HealthPalette) -> Text:
        text = Text()
        lag = human_bytes(row.lag_bytes) or "unknown"
        text.append(f"{'▲ ' if row.lagging else ''}lag {lag}", pal.bad if row.lagging else "")
        if row.lag_seconds is not None:
            text.append(f" / {human_seconds(row.lag_seconds)}")
        text.append("   failover: ")
        if row.eligible:
            text.append("✓ eligible", pal.ok)
        else:
            text.append(f"✗ not eligible: {row.eligibility_reason or 'unknown'}", pal.bad)
        return text


class LagPanel(Vertical):
    """Holds one ReplicaLagLine per replica; lines are added/removed as replicas come and go."""

    DEFAULT_CSS = """
    LagPanel { height: auto; max-height: 10; }
    LagPanel > .lag-empty { color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.palette: HealthPalette = DARK
        self._lines: dict[str, ReplicaLagLine] = {}
        self._empty: Static | None = None

    def on_mount(self) -> None:
        self.border_title = "Replica lag (bytes behind the leader) and failover eligibility"
        self._empty = Static("no replicas", classes="lag-empty")
        self.mount(self._empty)

    def show(self, rows: Iterable[MemberRow], history: Mapping[str, deque]) -> None:
        replicas = [r for r in rows if not r.is_leader]
        names = {r.name for r in replicas}
        for gone in [n for n in self._lines if n not in names]:
            self._lines.pop(gone).remove()
        for row in replicas:
            line = self._lines.get(row.name)
            samples = list(history.get(row.name, ()))
            if line is None:
                line = ReplicaLagLine(row, samples, self.palette)
                self._lines[row.name] = line
                self.mount(line)
            else:
                line.set_values(row, samples, self.palette)
        if self._empty is not None:
            self._empty.display = not replicas

    def reset(self) -> None:
        for line in self._lines.values():
            line.remove()
        self._lines.clear()


def new_history() -> deque:
    return deque(maxlen=SAMPLES)
