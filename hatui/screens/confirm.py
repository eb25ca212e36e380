"""The confirmation modal every write goes through: it names the member and says what will happen.

The default button is Cancel, so an Enter pressed out of habit never changes the cluster. A
destructive action (reinit deletes a data directory) passes `type_to_confirm`: the operator types
that name, and only the exact name enables the confirm button (`y` does nothing there).
"""

from __future__ import annotations

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True (confirmed) or False."""

    BINDINGS = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y", "confirm", "Confirm"),
    ]

    def __init__(
        self,
        title: str,
        consequence: str,
        confirm_label: str = "Confirm",
        detail: RenderableType | None = None,
        danger: bool = True,
        type_to_confirm: str | None = None,
    ) -> None:
        super().__init__()
        self.type_to_confirm = type_to_confirm
        self.title_text = title
        self.consequence = consequence
        self.confirm_label = confirm_label
        self.detail = detail
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.title_text, id="confirm-title")
            yield Static(self.consequence, id="confirm-consequence")
            if self.detail is not None:
                with VerticalScroll(id="confirm-detail"):
                    yield Static(self.detail)
            if self.type_to_confirm:
                yield Static(f"Type {self.type_to_confirm} to confirm:", id="confirm-type-label")
                yield Input(placeholder=self.type_to_confirm, id="confirm-type")
            with Horizontal(id="confirm-buttons"):
                yield Button(
                    self.confirm_label if self.type_to_confirm else f"{self.confirm_label} (y)",
                    id="confirm-yes",
                    variant="error" if self.danger else "primary",
                    disabled=bool(self.type_to_confirm),
                )
                yield Button("Cancel (n/esc)", id="confirm-no", variant="default")

    def on_mount(self) -> None:
        if self.type_to_confirm:
            self.query_one("#confirm-type", Input).focus()
        else:
            self.query_one("#confirm-no", Button).focus()

    @property
    def typed_ok(self) -> bool:
        return not self.type_to_confirm or self.query_one("#confirm-type", Input).value == self.type_to_confirm

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#confirm-yes", Button).disabled = not self.typed_ok

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.typed_ok:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_confirm(self) -> None:
        if self.type_to_confirm:
            return  # only the typed name confirms a destructive action
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
