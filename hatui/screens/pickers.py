"""Small modals that collect what an action needs before the confirmation: a switchover/failover
candidate, or how to restart a member."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class Candidate:
    name: str
    eligible: bool
    reason: str = ""


class CandidateScreen(ModalScreen[str | None]):
    """Pick a candidate. Only eligible members can be chosen; the others are listed, greyed, with
    the reason, so the operator sees why a member is missing instead of guessing."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, candidates: list[Candidate]) -> None:
        super().__init__()
        self.title_text = title
        self.candidates = candidates

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static(self.title_text, id="picker-title")
            options = []
            for c in self.candidates:
                if c.eligible:
                    options.append(Option(f"✓ {c.name}", id=c.name))
                else:
                    options.append(Option(f"✗ {c.name}: {c.reason}", id=c.name, disabled=True))
            yield OptionList(*options, id="picker-list")
            if not any(c.eligible for c in self.candidates):
                yield Static("No member can take over right now.", id="picker-none")
            yield Static("Enter picks · Esc cancels", classes="picker-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class RestartChoice:
    mode: str  # now | scheduled | pending
    schedule: str | None = None  # ISO 8601 with a timezone

    def body(self) -> dict:
        out: dict = {}
        if self.mode == "scheduled" and self.schedule:
            out["schedule"] = self.schedule
        if self.mode == "pending":
            out["restart_pending"] = True
        return out


def parse_schedule(text: str, now: datetime | None = None) -> str | None:
    """'14:30' (today, or tomorrow if past) or a full ISO time -> ISO with tz; None if unreadable."""
    now = now or datetime.now().astimezone()
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) <= 5 and ":" in text:
            h, m = (int(x) for x in text.split(":"))
            at = now.replace(hour=h, minute=m, second=0, microsecond=0)
            if at <= now:
                at += timedelta(days=1)
            return at.isoformat()
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=now.tzinfo)  # Patroni requires a timezone; assume the local one
    return at.isoformat()


class RestartScreen(ModalScreen[RestartChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, member: str, pending: bool) -> None:
        super().__init__()
        self.member = member
        self.pending = pending

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static(f"Restart PostgreSQL on {self.member}", id="picker-title")
            with RadioSet(id="restart-mode"):
                yield RadioButton("now", value=True, id="mode-now")
                yield RadioButton("scheduled (time below)", id="mode-scheduled")
                yield RadioButton(
                    "only if a restart is pending" + (" (it is)" if self.pending else " (none pending now)"),
                    id="mode-pending",
                )
            yield Input(placeholder="HH:MM or 2026-11-25T22:00+00:00", id="restart-at")
            yield Static("", id="restart-error")
            with Horizontal(id="confirm-buttons"):
                yield Button("Next", id="restart-next", variant="primary")
                yield Button("Cancel", id="restart-cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "restart-cancel":
            self.dismiss(None)
            return
        pressed = self.query_one(RadioSet).pressed_button
        mode = (pressed.id or "mode-now").removeprefix("mode-") if pressed else "now"
        schedule = None
        if mode == "scheduled":
            schedule = parse_schedule(self.query_one("#restart-at", Input).value)
            if schedule is None:
                self.query_one("#restart-error", Static).update("Give a time as HH:MM or ISO 8601.")
                return
        self.dismiss(RestartChoice(mode, schedule))

    def action_cancel(self) -> None:
        self.dismiss(None)
