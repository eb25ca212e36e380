"""The dynamic-config editor, shared by the console (`e`) and `hatui edit-config`.

Every edit is validated (debounced) by the one shared validator, `hatui.config.validate_dynamic_text`;
errors are listed under the text with their key path and line. Save stays disabled while the text
is invalid, shows a diff to confirm, then either hands the text back (`edit_config_interactive`,
the CLI does its own compare-and-swap) or writes it through a `ConfigTarget` (the console), which
writes with compare-and-swap on the revision that was read and reports a conflict instead of
overwriting someone else's change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Header, Static, TextArea

from .confirm import ConfirmScreen

VALIDATE_DELAY = 0.15  # seconds of typing quiet before validating again


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    conflict: bool = False
    message: str = ""


class ConfigTarget(Protocol):
    """Where the console's editor writes. Both calls block: they run in a thread worker."""

    def write(self, data: dict) -> WriteResult: ...

    def reload(self) -> tuple[str, dict]: ...


def _validator():
    from functools import partial

    from ..config import validate_dynamic_text
    from ..pgparams import parameter_names

    # With a PostgreSQL binary on this machine, parameter names are checked against it too.
    return partial(validate_dynamic_text, known_parameters=parameter_names())


def _diff_text(old: dict, new: dict) -> str:
    from ..config import config_diff

    diff = config_diff(old, new)
    if isinstance(diff, (list, tuple)):
        diff = "\n".join(str(line).rstrip("\n") for line in diff)
    return str(diff or "")


def timing_numbers(text: str) -> tuple[Any, Any, Any] | None:
    """ttl, loop_wait, retry_timeout as written (defaults 30/10/10), for the rule line only.

    The verdict comes from the shared validator; this just shows the operator the arithmetic
    even while the text is invalid for other reasons.
    """
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe").load(text)
    except Exception:  # noqa: BLE001 - any YAML error just means "no numbers to show"
        return None
    if not isinstance(data, dict):
        return None
    return data.get("ttl", 30), data.get("loop_wait", 10), data.get("retry_timeout", 10)


def rule_line(text: str) -> Text:
    nums = timing_numbers(text)
    out = Text("Rule ttl ≥ loop_wait + 2 × retry_timeout: ", style="bold")
    if nums is None:
        out.append("(cannot read the YAML yet)", "dim")
        return out
    ttl, lw, rt = nums
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in nums):
        out.append(f"ttl {ttl!r}, loop_wait {lw!r}, retry_timeout {rt!r} (must be integers)", "bold red")
        return out
    need = lw + 2 * rt
    ok = ttl >= need
    out.append(f"{ttl} {'≥' if ok else '<'} {lw} + 2 × {rt} = {need}  ")
    out.append("✓ holds" if ok else "✗ violated", "green" if ok else "bold red")
    return out


def issue_text(issue: Any) -> Text:
    severity = str(getattr(issue, "severity", "error")).lower()
    is_error = severity.startswith("err")
    line = getattr(issue, "line", None)
    col = getattr(issue, "column", None)
    path = getattr(issue, "path", "") or ""
    if isinstance(path, (list, tuple)):
        path = ".".join(str(p) for p in path)
    where = f"line {line}" + (f":{col}" if col else "") if line else "(no line)"
    out = Text()
    out.append("✗ error   " if is_error else "! warning ", "bold red" if is_error else "bold yellow")
    out.append(f"{where:<10} ")
    message = str(getattr(issue, "message", issue))
    if path and message.startswith(f"{path}: "):
        out.append(path, "bold")  # the validator's sentence already names the key
        out.append(message[len(path) :])
    else:
        if path:
            out.append(f"{path}: ", "bold")
        out.append(message)
    return out


def is_error(issue: Any) -> bool:
    return str(getattr(issue, "severity", "error")).lower().startswith("err")


class ConfigEditorScreen(Screen[str | None]):
    """Dismisses with the saved YAML text, or None when cancelled.

    It owns the keyboard like a modal (`is_modal`): no app or console key reaches the screen behind
    it, even after Esc has moved the focus out of the text. Leaving with unsaved changes asks.
    """

    @property
    def is_modal(self) -> bool:
        return True

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self,
        initial_yaml: str,
        title: str,
        target: ConfigTarget | None = None,
        original: dict | None = None,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        self.cursor_blink = cursor_blink  # False for snapshots: a blinking cursor is a coin toss
        self.initial_yaml = initial_yaml
        self.title_text = title
        self.target = target
        self.original = original
        self.data: dict | None = None
        self.issues: list = []
        self._timer: Timer | None = None
        self.saving = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.title_text, id="editor-title")
        editor = TextArea.code_editor(self.initial_yaml, language="yaml", theme="css", id="editor")
        editor.cursor_blink = self.cursor_blink
        yield editor
        yield Static("", id="editor-rule")
        with VerticalScroll(id="editor-issues"):
            yield Static("", id="editor-issues-text")
        with Horizontal(id="editor-buttons"):
            yield Button("Save (ctrl+s)", id="editor-save", variant="primary")
            yield Button("Cancel (esc)", id="editor-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#editor-issues").border_title = "Validation"
        if self.original is None:
            data, _ = _validator()(self.initial_yaml)
            self.original = dict(data) if isinstance(data, dict) else {}
        self.validate_now()
        self.query_one(TextArea).focus()

    # --- validation ---------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self.query_one(TextArea).text

    def set_text(self, text: str) -> None:
        self.query_one(TextArea).load_text(text)
        self.validate_now()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_DELAY, self.validate_now)

    def validate_now(self) -> None:
        self._timer = None
        text = self.text
        data, issues = _validator()(text)
        self.issues = list(issues or [])
        errors = [i for i in self.issues if is_error(i)]
        self.data = dict(data) if isinstance(data, dict) and not errors else None
        self.query_one("#editor-rule", Static).update(rule_line(text))
        if self.issues:
            body = Text("\n").join(issue_text(i) for i in self.issues)
        else:
            body = Text("✓ valid", style="green")
        self.query_one("#editor-issues-text", Static).update(body)
        box = self.query_one("#editor-issues")
        box.border_title = (
            f"Validation: {len(errors)} error(s), save disabled" if errors else "Validation: ok"
        )
        box.set_class(bool(errors), "-invalid")
        self.query_one("#editor-save", Button).disabled = self.data is None or self.saving

    @property
    def can_save(self) -> bool:
        return self.data is not None and not self.saving

    # --- saving -------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "editor-save":
            self.action_save()
        else:
            self.action_cancel()

    @property
    def changed(self) -> bool:
        return self.text != self.initial_yaml

    def action_cancel(self) -> None:
        if not self.changed:
            self.dismiss(None)
            return
        self.app.push_screen(
            ConfirmScreen(
                "Discard your changes?",
                "You edited the configuration and did not save it. Leaving throws the edits away; "
                "nothing is written.",
                confirm_label="Discard",
            ),
            callback=lambda ok: ok and self.dismiss(None),
        )

    def action_save(self) -> None:
        if self._timer is not None:  # the text may have changed since the last validation
            self._timer.stop()
            self.validate_now()
        if not self.can_save:
            errors = [i for i in self.issues if is_error(i)]
            self.notify(
                f"Not saved: {len(errors)} validation error(s); fix them first.",
                severity="error",
                title="Config",
            )
            return
        new = dict(self.data or {})
        if new == (self.original or {}):
            self.notify("Not changed.", title="Config")
            return
        diff = _diff_text(self.original or {}, new)
        where = "etcd (compare-and-swap on the revision you opened)" if self.target else "the cluster"
        self.app.push_screen(
            ConfirmScreen(
                "Apply these changes?",
                f"The new dynamic configuration is written to {where}. Every member applies it on its "
                "next HA cycle; settings that need a restart show up as 'pending restart'.",
                confirm_label="Apply",
                detail=Syntax(diff, "diff", theme="ansi_dark", background_color="default") if diff else None,
                danger=False,
            ),
            callback=lambda ok: self._confirmed(ok, new),
        )

    def _confirmed(self, ok: bool | None, data: dict) -> None:
        if not ok:
            return
        if self.target is None:
            self.dismiss(self.text)
            return
        self.saving = True
        self.query_one("#editor-save", Button).disabled = True
        self._write(data, self.text)

    @work(thread=True, exclusive=True, group="config-write")
    def _write(self, data: dict, text: str) -> None:
        try:
            result = self.target.write(data) if self.target else WriteResult(True)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, never a traceback
            result = WriteResult(False, message=str(exc))
        self.app.call_from_thread(self._written, result, text)

    def _written(self, result: WriteResult, text: str) -> None:
        self.saving = False
        if result.ok:
            self.notify("Configuration changed (compare-and-swap succeeded).", title="Config")
            self.dismiss(text)
            return
        self.validate_now()
        if result.conflict:
            self.app.push_screen(
                ConfirmScreen(
                    "Someone else changed the config",
                    "The config in etcd changed after you opened it, so nothing was written "
                    "(compare-and-swap). Reload the current config? Your edits in this editor are "
                    "replaced by what is in etcd now.",
                    confirm_label="Reload",
                    danger=False,
                ),
                callback=self._reload_answer,
            )
        else:
            self.notify(f"Not saved: {result.message}", severity="error", title="Config")

    def _reload_answer(self, ok: bool | None) -> None:
        if ok:
            self._reload()

    @work(thread=True, exclusive=True, group="config-write")
    def _reload(self) -> None:
        try:
            text, data = self.target.reload() if self.target else (self.initial_yaml, self.original or {})
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.notify, f"Reload failed: {exc}", severity="error", title="Config")
            return
        self.app.call_from_thread(self._reloaded, text, data)

    def _reloaded(self, text: str, data: dict) -> None:
        self.original = dict(data)
        self.set_text(text)
        self.notify("Reloaded the current config from etcd.", title="Config")


class _EditorApp(App[str | None]):
    CSS_PATH = str(Path(__file__).parent.parent / "hatui.tcss")
    TITLE = "hatui edit-config"

    def __init__(self, initial_yaml: str, title: str) -> None:
        super().__init__()
        self._initial = initial_yaml
        self._title = title

    def on_mount(self) -> None:
        self.push_screen(ConfigEditorScreen(self._initial, self._title), callback=self.exit)


def edit_config_interactive(initial_yaml: str, title: str) -> str | None:
    """Run the editor full-screen; the saved YAML text, or None when cancelled.

    The caller (hatui edit-config) does the compare-and-swap write itself.
    """
    return _EditorApp(initial_yaml, title).run()
