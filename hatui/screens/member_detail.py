"""Member detail: the member key as stored, the node's live `GET /patroni` answer, its tags and
whether it may take over. Opened with Enter on a row; follows live updates while open."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.json import JSON
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ..cluster import Cluster
from ..slotview import slot_name_from_member_name, slot_rows
from ..widgets.rows import MemberRow, PatroniSample


def _json(data: Mapping[str, Any] | None) -> JSON | Text:
    if data is None:
        return Text("(none)", style="dim")
    return JSON.from_data(dict(data), indent=2, sort_keys=False)


def _tags(tags: Mapping[str, Any]) -> Table | Text:
    if not tags:
        return Text("no tags", style="dim")
    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in sorted(tags.items()):
        t.add_row(str(k), str(v))
    return t


def _slots(cluster: Cluster | None, member: str) -> Table | Text:
    """This member's slot on the leader (and, for the leader, every slot it keeps), with the lag."""
    if cluster is None:
        return Text("")
    mine = slot_name_from_member_name(member)
    rows = [r for r in slot_rows(cluster) if cluster.leader_name == member or r[0] == mine]
    if not rows:
        return Text("no replication slot published for this member", style="dim")
    t = Table(box=None, pad_edge=False)
    for col in ("slot", "type", "for", "position", "lag (bytes)"):
        t.add_column(col, style="bold" if col == "slot" else None, justify="right" if col == "lag (bytes)" else "left")
    for name, kind, owner, pos, lag in rows:
        t.add_row(name, kind, owner, pos, "" if lag is None else f"{lag:,}")
    return t


class MemberDetailScreen(Screen[None]):
    BINDINGS = [Binding("escape,backspace", "close", "Back")]

    def __init__(self, scope: str, member: str) -> None:
        super().__init__()
        self.scope = scope
        self.member = member

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="detail-title")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="detail-member"):
                yield Static("", id="detail-member-json")
            with VerticalScroll(id="detail-patroni"):
                yield Static("", id="detail-patroni-json")
        with VerticalScroll(id="detail-tags"):
            yield Static("", id="detail-tags-table")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-member").border_title = f"members/{self.member} (etcd key)"
        self.query_one("#detail-patroni").border_title = "GET /patroni (live)"
        self.query_one("#detail-tags").border_title = "Tags and replication slots"
        self.app.call_later(self._refresh_from_app)

    def _refresh_from_app(self) -> None:
        provider = getattr(self.app, "member_detail_data", None)
        if provider is not None:
            self.show(*provider(self.scope, self.member))

    def update_from_app(self) -> None:
        """Called by the app after each rendered revision while this screen is open."""
        self._refresh_from_app()

    def show(self, cluster: Cluster | None, row: MemberRow | None, sample: PatroniSample | None) -> None:
        m = cluster.member(self.member) if cluster else None
        title = Text()
        title.append(f"{self.member}", "bold")
        title.append(f" in {self.scope}")
        if m is None:
            title.append(" · no longer in the cluster (member key gone)", "bold red")
            if row is not None:
                title.append(f" · {row.state_text}")
        elif row is not None:
            title.append(f" · {row.marker} {row.role} · {row.state_text}")
            if row.is_leader:
                title.append(" · holds the leader lock")
            elif row.eligible:
                title.append(" · failover: ✓ eligible")
            else:
                title.append(f" · failover: ✗ not eligible: {row.eligibility_reason}")
        self.query_one("#detail-title", Static).update(title)
        self.query_one("#detail-member-json", Static).update(_json(m.data if m else None))
        if sample is None:
            patroni: Any = Text("not fetched yet (the console polls each member's REST API)", style="dim")
        elif sample.error:
            patroni = Text(f"unreachable: {sample.error}", style="bold red")
        else:
            patroni = _json(sample.data)
        self.query_one("#detail-patroni-json", Static).update(patroni)
        self.query_one("#detail-tags-table", Static).update(Group(_tags(m.tags if m else {}),
                                                                  _slots(cluster, self.member)))

    def action_close(self) -> None:
        self.dismiss(None)
