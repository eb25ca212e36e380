"""The console's one action table: keys, footer hints, the help screen and the command palette all
come from `ACTIONS`, so a key can never be documented in one place and bound differently in another.

`writes=True` marks an action that changes the cluster (REST call or etcd write). With
`--read-only` those bindings are hidden from the footer, left out of help and the palette, and
refused if invoked anyway (see `HatuiApp.check_action`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class KeyAction:
    key: str  # Textual key name ("question_mark", "slash", "W", "ctrl+p")
    action: str  # action name, resolved on `where` ("app" or "screen")
    description: str
    writes: bool = False
    footer: bool = True  # shown in the footer (help and palette always list it)
    where: str = "app"  # "app": works on every screen; "screen": only on the cluster screen
    display: str | None = None  # key as printed in help when the key name is not what you type
    short: str | None = None  # the footer's label, when the description is too long for 80 columns

    @property
    def key_label(self) -> str:
        return self.display or self.key


ACTIONS: tuple[KeyAction, ...] = (
    KeyAction("q", "quit", "Quit"),
    KeyAction("question_mark", "help", "Help", display="?"),
    KeyAction("f", "freeze", "Freeze display", display="f", short="Freeze"),
    KeyAction("slash", "filter", "Filter", where="screen", display="/"),
    KeyAction("s", "sort", "Sort (next column)", where="screen", short="Sort"),
    KeyAction("S", "sort_reverse", "Reverse sort", footer=False, where="screen"),
    KeyAction("enter", "member_detail", "Member detail", where="screen"),
    KeyAction("h", "history", "Timeline history", short="History"),
    KeyAction("y", "events", "Event timeline (what happened and why)", footer=False, short="Events"),
    KeyAction("l", "next_log", "Next log pane", footer=False, where="screen"),
    KeyAction("c", "next_cluster", "Next cluster", footer=False, where="screen"),
    KeyAction("delete", "forget_member", "Forget a gone member (greyed row)", footer=False, where="screen", display="del"),
    # ctrl+t, not t: one meaning per key in the console and the demo, where t is the tour.
    KeyAction("ctrl+t", "cycle_theme", "Theme (dark/light/16 colours)", footer=False, display="ctrl+t"),
    KeyAction("e", "edit_config", "Edit config", writes=True),
    KeyAction("w", "switchover", "Switchover", writes=True, where="screen"),
    KeyAction("F", "failover", "Failover", writes=True, footer=False, where="screen"),
    KeyAction("r", "restart", "Restart member", writes=True, where="screen", short="Restart"),
    KeyAction("R", "reload", "Reload member", writes=True, footer=False, where="screen"),
    KeyAction("i", "reinit", "Reinit member", writes=True, footer=False, where="screen"),
    KeyAction("p", "pause", "Pause (maintenance mode)", writes=True, where="screen", short="Pause"),
    KeyAction("u", "resume", "Resume (leave maintenance)", writes=True, footer=False, where="screen"),
    KeyAction("ctrl+p", "command_palette", "Command palette", footer=False, display="ctrl+p"),
)

WRITE_ACTIONS = frozenset(a.action for a in ACTIONS if a.writes)


def bindings_for(where: str, actions: Iterable[KeyAction] = ACTIONS) -> list[Binding]:
    """Textual bindings for one place ("app" or "screen") from the table."""
    out = []
    for a in actions:
        if a.where != where or a.action == "command_palette":
            continue  # the palette key is the App's own COMMAND_PALETTE_BINDING
        out.append(Binding(a.key, a.action, a.short or a.description, show=a.footer, key_display=a.display))
    return out


def visible_actions(read_only: bool, actions: Sequence[KeyAction] = ACTIONS) -> list[KeyAction]:
    """The rows the help screen and palette show: write actions disappear in read-only mode."""
    return [a for a in actions if not (read_only and a.writes)]
