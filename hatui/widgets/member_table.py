"""The members table: one row per member, keyed by member name, updated cell by cell.

A new cluster revision changes only the cells whose text or style changed (`update_cell`), rows
are added/removed only when members join/leave (or the filter hides them), and the cursor is put
back on the member it was on, so a live update never moves the operator's selection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from .palette import DARK, HealthPalette
from .rows import MemberRow, format_lsn, format_tags, human_bytes, human_seconds

# (key, label). Keys double as the sort column names.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("member", "Member"),
    ("host", "Host"),
    ("role", "Role"),
    ("state", "State"),
    ("tl", "TL"),
    ("receive_lsn", "Receive\nLSN"),
    ("replay_lsn", "Replay\nLSN"),
    ("lag", "Lag"),
    ("lag_time", "Lag\ntime"),
    ("pending", "Pending\nrestart"),
    ("failover", "Failover"),
    ("tags", "Tags"),
)
COLUMN_KEYS = tuple(k for k, _ in COLUMNS)
# Below NARROW_WIDTH columns (80x24 first) the table keeps what an operator needs in an incident;
# host, LSNs, timeline, lag time and tags are in the member detail view (Enter).
NARROW_WIDTH = 120
NARROW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("member", "Member"),
    ("role", "Role"),
    ("state", "State"),
    ("lag", "Lag"),
    ("pending", "⟳"),
    ("failover", "Failover"),
)
NARROW_STATE_WIDTH = 28


class Cell(Text):
    """A Text that carries the value to sort by (numbers sort as numbers, blanks last)."""

    sort_key: tuple = (1, "")


def _cell(text: str, style: str = "", sort: Any = None, justify: str | None = None) -> Cell:
    c = Cell(text, style=style, end="", justify=justify)  # type: ignore[arg-type]
    c.sort_key = (1, "") if sort is None else (0, sort)
    return c


def row_cells(row: MemberRow, pal: HealthPalette) -> dict[str, Cell]:
    health_style = pal.for_health(row.health)
    role = f"★ {row.role}" if row.is_leader else row.role
    # The leader's role cell carries its star; its state cell gets a marker only when the
    # console's own evidence overrules the key (REST silent, lease not renewed, PostgreSQL down).
    state_text = (
        f"{row.marker} {row.state_text}" if not row.is_leader or row.health != "leader" else row.state_text
    )
    lag_text = human_bytes(row.lag_bytes)
    if row.lagging:
        lag_text = f"▲ {lag_text}"
    if row.is_leader:
        failover = _cell("", sort=None)
    elif row.eligible:
        failover = _cell("✓ yes", pal.ok, sort=0)
    else:
        failover = _cell("✗ no", pal.bad, sort=1)
    tags = format_tags(row.tags)
    if row.gone:
        failover = _cell("✗ no", pal.muted, sort=2)
    return {
        "member": _cell(row.name, pal.leader if row.is_leader else (pal.muted if row.gone else ""), sort=row.name),
        "host": _cell(row.host, sort=row.host),
        "role": _cell(role, pal.leader if row.is_leader else "", sort=(0 if row.is_leader else 1, row.role)),
        "state": _cell(state_text, health_style, sort=row.state_text),
        "tl": _cell("" if row.timeline is None else str(row.timeline), sort=row.timeline, justify="right"),
        "receive_lsn": _cell(format_lsn(row.receive_lsn), sort=row.receive_lsn, justify="right"),
        "replay_lsn": _cell(format_lsn(row.replay_lsn), sort=row.replay_lsn, justify="right"),
        "lag": _cell(lag_text, pal.bad if row.lagging else "", sort=row.lag_bytes, justify="right"),
        "lag_time": _cell(human_seconds(row.lag_seconds), sort=row.lag_seconds, justify="right"),
        "pending": _cell(
            "⟳ *" if row.pending_restart else "",
            pal.warn if row.pending_restart else "",
            sort=0 if row.pending_restart else None,
        ),
        "failover": failover,
        "tags": _cell(tags, pal.muted if not tags else "", sort=tags or None),
    }


class _Descending:
    """Inverts the order of one sort value (so blanks can stay last when sorting descending)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and other.value == self.value


def _signature(cell: Cell) -> tuple:
    return (cell.plain, str(cell.style))


class MemberTable(DataTable):
    """DataTable of members. Call `show(rows)` with every new cluster revision."""

    DEFAULT_CSS = """
    MemberTable { height: auto; max-height: 14; }
    """

    def __init__(self, **kwargs: Any) -> None:
        # Two-line headers: the labels are wider than most values, and width is what we lack.
        super().__init__(cursor_type="row", zebra_stripes=False, header_height=2, **kwargs)
        self.palette: HealthPalette = DARK
        self.filter_text: str = ""
        self.sort_column: str = "member"
        self.sort_reverse: bool = False
        self._signatures: dict[str, dict[str, tuple]] = {}
        self._rows: dict[str, MemberRow] = {}
        self.update_count = 0  # cells written since mount: tests use it to prove updates are in place
        self.narrow = False
        self.columns_shown: tuple[tuple[str, str], ...] = COLUMNS

    @property
    def column_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.columns_shown)

    def on_mount(self) -> None:
        for key, label in self.columns_shown:
            self.add_column(label, key=key)

    def set_narrow(self, narrow: bool) -> None:
        """Switch between the full and the narrow column set (rows are rebuilt, cursor kept)."""
        if narrow == self.narrow:
            return
        selected = self.selected_member
        self.narrow = narrow
        self.columns_shown = NARROW_COLUMNS if narrow else COLUMNS
        self.header_height = 1 if narrow else 2  # the narrow labels fit on one line
        rows = list(self._rows.values())
        self.clear(columns=True)
        self._signatures.clear()
        self._rows.clear()
        for key, label in self.columns_shown:
            self.add_column(label, key=key)
        if self.sort_column not in self.column_keys:
            self.sort_column, self.sort_reverse = "member", False
        if rows:
            self.show(rows)
        if selected is not None:
            self.select_member(selected)

    # --- selection ------------------------------------------------------------------------------
    @property
    def selected_member(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - an empty or resizing table has no valid cursor
            return None
        return key.value

    def select_member(self, name: str) -> bool:
        try:
            index = self.get_row_index(name)
        except RowDoesNotExist:
            return False
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False)
        return True

    # --- data -----------------------------------------------------------------------------------
    def show(self, rows: Iterable[MemberRow], force: bool = False) -> None:
        """Bring the table to `rows` with the fewest changes; keep the cursor on its member."""
        selected = self.selected_member
        rows = [r for r in rows if not self.filter_text or self.filter_text.lower() in r.search_text()]
        wanted = {r.name: r for r in rows}
        resort = False
        for name in [n for n in self._signatures if n not in wanted]:
            self.remove_row(name)
            del self._signatures[name]
            self._rows.pop(name, None)
        keys = self.column_keys
        for row in rows:
            cells = row_cells(row, self.palette)
            if self.narrow and cells["state"].cell_len > NARROW_STATE_WIDTH:
                cells["state"].truncate(NARROW_STATE_WIDTH, overflow="ellipsis")
            sigs = {k: _signature(c) for k, c in cells.items()}
            old = self._signatures.get(row.name)
            if old is None:
                self.add_row(*(cells[k] for k in keys), key=row.name)
                self.update_count += len(keys)
                resort = True
            else:
                for key in keys:
                    if force or old[key] != sigs[key]:
                        # Re-measure the column only when the text got wider (a layout pass).
                        wider = cells[key].cell_len > self.columns[key].content_width
                        self.update_cell(row.name, key, cells[key], update_width=wider)
                        self.update_count += 1
                        if key == self.sort_column:
                            resort = True
            self._signatures[row.name] = sigs
            self._rows[row.name] = row
        if resort:
            self._apply_sort()
        if selected is not None and selected in wanted:
            self.select_member(selected)

    def row_for(self, name: str | None) -> MemberRow | None:
        return self._rows.get(name) if name else None

    def reset(self) -> None:
        """Forget everything (another cluster was selected)."""
        self.clear()
        self._signatures.clear()
        self._rows.clear()

    def set_palette(self, palette: HealthPalette) -> None:
        self.palette = palette
        rows = list(self._rows.values())
        if rows:
            self.show(rows, force=True)

    # --- sorting --------------------------------------------------------------------------------
    def _apply_sort(self) -> None:
        selected = self.selected_member
        reverse = self.sort_reverse

        def key(cell: Any) -> tuple:
            blank, value = getattr(cell, "sort_key", (1, ""))
            # Blank cells (the leader's lag, a missing LSN) stay last in both directions.
            return (blank, _Descending(value) if reverse and not blank else value)

        self.sort(self.sort_column, key=key)
        if selected is not None:
            self.select_member(selected)
        self.refresh()

    @property
    def sort_label(self) -> str:
        """'sorted by Member ▲' for the border title (column labels keep their width)."""
        label = dict(COLUMNS)[self.sort_column].replace("\n", " ")
        return f"sorted by {label} {'▼' if self.sort_reverse else '▲'}"

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in self.column_keys:
            return
        if reverse is None:
            reverse = (not self.sort_reverse) if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._apply_sort()

    def next_sort_column(self) -> str:
        keys = self.column_keys
        i = keys.index(self.sort_column) if self.sort_column in keys else -1
        self.sort_by(keys[(i + 1) % len(keys)], reverse=False)
        return self.sort_column

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_key.value)
        update = getattr(self.screen, "update_table_title", None)
        if update is not None:
            update()
