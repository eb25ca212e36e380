"""The "why" lines under the members table: for each member, why it would or would not be promoted
now, and its daemon's last decision in the words of its log line.

The reason a replica cannot be promoted comes first from what its own daemon published (the
`decision` field of its member key, daemon/decisions.py): that is what the daemon will do if the
leader dies. Members without one (Patroni nodes, old hatui) get the console's own answer, from the
same function and in the same words (eligibility.py). Repainted only when a line changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..cluster import Cluster
from .palette import DARK, HealthPalette
from .rows import MemberRow


def why_lines(cluster: Cluster | None, rows: Sequence[MemberRow]) -> list[tuple[str, str, str]]:
    """(member, verdict, detail) per row: verdict is "leader", "yes", "no" or "?"."""
    out: list[tuple[str, str, str]] = []
    if cluster is None:
        return out
    for row in rows:
        m = cluster.member(row.name)
        dec: dict[str, Any] = dict(m.data.get("decision") or {}) if m is not None and isinstance(
            m.data.get("decision"), dict) else {}
        message = str(dec.get("message") or "")
        if row.is_leader:
            out.append((row.name, "leader", message or "holds the leader lock"))
            continue
        if dec.get("eligible") is False or row.eligible is False:
            why = str(dec.get("why_not") or row.eligibility_reason or "not eligible")
            out.append((row.name, "no", why + (f" · {message}" if message else "")))
        elif dec.get("eligible") is True or row.eligible:
            out.append((row.name, "yes", "could be promoted" + (f" · {message}" if message else "")))
        else:
            out.append((row.name, "?", message or "no decision published"))
    return out


class WhyPane(Static):
    DEFAULT_CSS = """
    WhyPane { height: auto; max-height: 8; border: round $primary-darken-2; padding: 0 1;
              text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.palette: HealthPalette = DARK
        self._sig: tuple | None = None
        self.lines: list[tuple[str, str, str]] = []

    def on_mount(self) -> None:
        self.border_title = "Why (each member's last decision) · y: event timeline"

    def show(self, cluster: Cluster | None, rows: Sequence[MemberRow], force: bool = False) -> None:
        lines = why_lines(cluster, rows)
        sig = (tuple(lines), self.palette)
        if sig == self._sig and not force:
            return
        self._sig = sig
        self.lines = lines
        pal = self.palette
        width = max((len(n) for n, _, _ in lines), default=0)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (name, verdict, detail) in enumerate(lines):
            if i:
                text.append("\n")
            text.append(name.ljust(width) + "  ", pal.leader if verdict == "leader" else "")
            mark, style = {"leader": ("★ leader:", pal.leader), "yes": ("✓", pal.ok),
                           "no": ("✗ not promotable:", pal.bad)}.get(verdict, ("?", pal.muted))
            text.append(mark + " ", style)
            text.append(detail)
        self.update(text)
