"""Log panes: follow each member's log file, one tab per member.

`LogTailer` runs in a thread worker. It watches the file's *directory* with watchfiles (a rotated
log is a new file with the same name, which a watch on the old inode would never see), reads what
was appended, starts over from the top of a new file after rotation, and from the top of the same
file after truncation. Memory stays bounded: the pane keeps the last `max_lines` lines and a
partial line is capped.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, RichLog, Static, TabbedContent, TabPane

from ..logread import readable
from .palette import DARK, HealthPalette

MAX_LINES = 1000
_MAX_PARTIAL = 64 * 1024
_INITIAL_BYTES = 256 * 1024

# Phrases of the HA loop's one-line-per-cycle decisions (Patroni's and ours).
HA_PHRASES = (
    "Lock owner",
    "promoted self",
    "demoting self",
    "no action",
    "acquired session lock",
    "Demoting self",
    "manual failover",
    "switchover",
)


def style_log_line(line: str, pal: HealthPalette = DARK) -> Text:
    """Colour a log line: errors, warnings and HA decisions stand out; the words stay as they were.
    A JSON line (log.type: json) is shown as the plain format would have written it."""
    line = readable(line)
    text = Text(line, end="")
    upper = line[:80].upper()
    if any(w in upper for w in ("ERROR", "FATAL", "PANIC", "CRITICAL")):
        text.stylize(pal.bad)
    elif "WARNING" in upper:
        text.stylize(pal.warn)
    for phrase in HA_PHRASES:
        start = line.find(phrase)
        if start >= 0:
            text.stylize(f"{pal.info} bold", start, len(line))
            break
    return text


class LogTailer:
    """Follows one file. `run()` blocks (call it in a thread); `stop()` ends it within ~0.5 s."""

    def __init__(
        self, path: str | os.PathLike, on_lines: Callable[[list[str]], None], initial_lines: int = 200
    ) -> None:
        self.path = Path(path)
        self.on_lines = on_lines
        self.initial_lines = initial_lines
        self._stop = threading.Event()
        self._file = None
        self._ident: tuple[int, int] | None = None
        self._partial = b""
        self._opened_once = False

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # --- reading ------------------------------------------------------------------------------
    def _open(self, from_start: bool) -> bool:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - stays open between reads; closed by _close()
        except OSError:
            return False
        st = os.fstat(f.fileno())
        self._file, self._ident, self._partial = f, (st.st_dev, st.st_ino), b""
        self._opened_once = True
        if not from_start:
            # First open: show the last lines, not the whole history of the file.
            start = max(0, st.st_size - _INITIAL_BYTES)
            f.seek(start)
            data = f.read()
            lines = data.split(b"\n")
            if start > 0:
                lines = lines[1:]  # the first one is cut
            self._partial = lines.pop() if lines else b""
            self._emit(lines[-self.initial_lines :])
        return True

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._ident = None, None

    def _drain(self) -> None:
        if self._file is None:
            return
        data = self._file.read()
        if not data:
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-_MAX_PARTIAL:]
        self._emit(lines)

    def _emit(self, raw: Iterable[bytes]) -> None:
        lines = [b.decode("utf-8", "replace").rstrip("\r") for b in raw]
        if lines:
            self.on_lines(lines)

    def check(self) -> None:
        """Read whatever changed since the last call (public so tests can step it)."""
        try:
            st = os.stat(self.path)
        except OSError:
            self._drain()  # rotated away and not recreated yet: finish the old file
            return
        if self._file is None:
            # A file that appears after we started (or reappears after rotation) is read whole.
            if self._open(from_start=self._opened_once):
                self._drain()
            return
        if (st.st_dev, st.st_ino) != self._ident:
            self._drain()
            self._close()
            self._open(from_start=True)
            self._drain()
            return
        if st.st_size < self._file.tell():
            self._emit([b"-- log truncated, reading from the start --"])
            self._file.seek(0)
            self._partial = b""
        self._drain()

    def run(self) -> None:
        import watchfiles  # imported here: the CLI and the daemon never need it

        self._open(from_start=False)
        name = self.path.name
        while not self._stop.is_set():
            try:
                for _changes in watchfiles.watch(
                    self.path.parent,
                    watch_filter=lambda _c, p: os.path.basename(p) == name,
                    debounce=200,
                    step=20,
                    stop_event=self._stop,
                    rust_timeout=500,
                    yield_on_timeout=True,
                    recursive=False,
                    raise_interrupt=False,
                ):
                    # Also runs on each timeout: a cheap stat is the safety net for missed events.
                    self.check()
            except (FileNotFoundError, OSError):
                self._stop.wait(1.0)  # the directory does not exist (yet)
        self._close()


class SearchBox(Input):
    BINDINGS = [Binding("escape", "close", "Close search")]

    def action_close(self) -> None:
        self.display = False
        panes = next((a for a in self.ancestors if isinstance(a, LogPanes)), None)
        if panes is not None and panes._searching is not None:
            panes._searching.focus()


# The HA loop's routine lines: one or two every loop_wait while nothing happens. Folded by default
# (a count in the pane's title instead), so what changed is not buried under them.
ROUTINE_PHRASES = ("no action", "Lock owner:")


def routine_key(line: str) -> str | None:
    """The line's message without its timestamp when it is a routine HA line, else None."""
    for phrase in ROUTINE_PHRASES:
        at = line.find(phrase)
        if at >= 0:
            return line[at:]
    return None


class LogPane(RichLog):
    """One member's log. Lines arrive as messages from the tailer thread.

    Keys while it has the focus (tab to it): `/` search, `n` next match, `W` wrap long lines,
    `A` show every line (unfold the repeated "no action" / "Lock owner" lines) or fold them again.
    """

    BINDINGS = [
        Binding("slash", "search", "Search log", key_display="/"),
        Binding("n", "next_match", "Next match", show=False),
        Binding("W", "toggle_wrap", "Wrap"),
        Binding("A", "toggle_fold", "All lines / fold"),
    ]

    class Lines(Message):
        def __init__(self, lines: list[str]) -> None:
            super().__init__()
            self.lines = lines

    def __init__(self, member: str, max_lines: int = MAX_LINES, **kwargs) -> None:
        super().__init__(max_lines=max_lines, wrap=False, markup=False, highlight=False, **kwargs)
        self.member = member
        self.palette: HealthPalette = DARK
        self.frozen = False
        self._held: deque[str] = deque(maxlen=max_lines)
        self.all_lines: deque[str] = deque(maxlen=max_lines)  # every line, for search and unfold
        self.shown: list[str] = []  # the lines written to the screen, in order
        self.fold = True
        self.folded = 0
        self._recent_routine: deque[str] = deque(maxlen=2)
        self.search_text = ""
        self._match = -1

    def add_lines(self, lines: Iterable[str]) -> None:
        if self.frozen:
            self._held.extend(lines)
            return
        for line in lines:
            self.all_lines.append(line)
            self._show(line)
        self._title()

    def _show(self, line: str) -> None:
        key = routine_key(line)
        if self.fold and key is not None and key in self._recent_routine:
            self.folded += 1
            self._last_folded = line[:23]
            return
        if key is not None:
            self._recent_routine.append(key)
        else:
            self._recent_routine.clear()
        self.shown.append(line)
        if len(self.shown) > self.max_lines:  # type: ignore[operator]
            del self.shown[: len(self.shown) - self.max_lines]  # type: ignore[operator]
        self.write(style_log_line(line, self.palette))

    def _title(self) -> None:
        parts = []
        if self.fold and self.folded:
            parts.append(f"{self.folded} repeated routine lines folded, last {getattr(self, '_last_folded', '')}"
                         " (A: all)")
        if self.wrap:
            parts.append("wrap")
        if self.search_text:
            parts.append(f"/{self.search_text}")
        self.border_subtitle = " · ".join(parts)

    def redraw(self) -> None:
        self.clear()
        self.shown.clear()
        self.folded = 0
        self._recent_routine.clear()
        for line in self.all_lines:
            self._show(line)
        self._title()

    def action_toggle_fold(self) -> None:
        self.fold = not self.fold
        self.redraw()

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.redraw()

    def action_search(self) -> None:
        panes = next((a for a in self.ancestors if isinstance(a, LogPanes)), None)
        if panes is not None:
            panes.open_search(self)

    def matches(self) -> list[int]:
        needle = self.search_text.lower()
        return [i for i, line in enumerate(self.shown) if needle and needle in line.lower()]

    def search(self, text: str) -> int:
        """Jump to the first match of `text` from the end (newest first); the number of matches."""
        self.search_text = text
        self._match = -1
        self._title()
        return self.action_next_match()

    def action_next_match(self) -> int:
        found = self.matches()
        if not found:
            if self.search_text:
                self.notify(f"Not in this log: {self.search_text}", timeout=2)
            return 0
        # Newest first: start at the last match, then go up.
        older = [i for i in found if self._match < 0 or i < self._match]
        self._match = (older or found)[-1]
        self.auto_scroll = False
        self.scroll_to(y=self._line_y(self._match), animate=False)
        return len(found)

    def _line_y(self, index: int) -> int:
        if not self.wrap:
            return index
        width = max(1, self.scrollable_content_region.width)
        return sum(max(1, -(-len(line) // width)) for line in self.shown[:index])

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        self.auto_scroll = True
        if not frozen and self._held:
            held = list(self._held)
            self._held.clear()
            self.add_lines(held)

    def on_log_pane_lines(self, message: LogPane.Lines) -> None:
        message.stop()
        self.add_lines(message.lines)


class LogPanes(Vertical):
    """A tab per member; `log_files` maps member name -> path. Tailers are started by the app."""

    DEFAULT_CSS = """
    LogPanes { height: 1fr; min-height: 6; }
    LogPanes TabbedContent { height: 1fr; }
    LogPanes TabPane { padding: 0; }
    """

    def __init__(self, members: Iterable[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.members = list(members)
        self.panes: dict[str, LogPane] = {}
        self._searching: LogPane | None = None

    def open_search(self, pane: LogPane) -> None:
        box = self.query_one("#log-search", Input)
        self._searching = pane
        box.value = pane.search_text
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "log-search":
            return
        event.stop()
        event.input.display = False
        pane = self._searching
        if pane is not None:
            pane.focus()
            n = pane.search(event.value.strip())
            if n:
                self.notify(f"{n} line(s) match; n: next (older) match.", timeout=2)

    def compose(self) -> ComposeResult:
        search = SearchBox(placeholder="search this log (Enter; Esc closes)", id="log-search")
        search.display = False
        yield search
        with TabbedContent(id="log-tabs"):
            if not self.members:
                with TabPane("logs", id="log-none"):
                    yield Static(
                        "No log files: start the console with --logs DIR (a directory of <member>.log "
                        "files), --logs FILE or --logs MEMBER=PATH; -c with a node file on this machine "
                        "adds that node's log."
                    )
                return
            for i, member in enumerate(self.members):
                pane = LogPane(member)
                self.panes[member] = pane
                with TabPane(member, id=f"log-{i}"):
                    yield pane

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one(TabbedContent)

    @property
    def active_member(self) -> str | None:
        active = self.tabs.active
        if active.startswith("log-") and active[4:].isdigit():
            return self.members[int(active[4:])]
        return None

    def next_pane(self) -> str | None:
        if not self.members:
            return None
        ids = [f"log-{i}" for i in range(len(self.members))]
        current = self.tabs.active
        nxt = ids[(ids.index(current) + 1) % len(ids)] if current in ids else ids[0]
        self.tabs.active = nxt
        return self.members[ids.index(nxt)]

    def show_member(self, member: str) -> None:
        if member in self.members and self.is_mounted:
            self.tabs.active = f"log-{self.members.index(member)}"

    def set_frozen(self, frozen: bool) -> None:
        for pane in self.panes.values():
            pane.set_frozen(frozen)

    def set_palette(self, pal: HealthPalette) -> None:
        for pane in self.panes.values():
            pane.palette = pal


def start_tailers(
    panes: Mapping[str, LogPane],
    log_files: Mapping[str, str],
    run_thread: Callable[[Callable[[], None], str], object],
) -> list[LogTailer]:
    """Start one tailer per pane through `run_thread(fn, name)` (the app's thread-worker runner)."""
    tailers = []
    for member, pane in panes.items():
        path = log_files.get(member)
        if not path:
            continue
        tailer = LogTailer(path, lambda lines, p=pane: p.post_message(LogPane.Lines(lines)))
        tailers.append(tailer)
        run_thread(tailer.run, f"tail {member}")
    return tailers
