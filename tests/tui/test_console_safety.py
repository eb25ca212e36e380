"""Safety on a console against a real etcd: a screen on top owns the keyboard, unsaved edits are
not thrown away by one key, and a destructive action needs the member's name typed."""

from __future__ import annotations

import pytest
from conftest import TERMINAL, batman_console, wait_for
from textual.widgets import Input, TextArea

from hatui.app import HatuiApp
from hatui.screens.config_editor import ConfigEditorScreen
from hatui.screens.confirm import ConfirmScreen
from hatui.screens.history import HistoryScreen

pytestmark = [pytest.mark.tui, pytest.mark.integration]


async def ready(pilot, app: HatuiApp) -> None:
    await wait_for(pilot, lambda: app.cluster_screen is not None
                   and app.cluster_screen.members_table.row_count == 2, what="both members")


async def test_keys_behind_the_editor_do_nothing_and_unsaved_edits_ask(etcd) -> None:
    app = batman_console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await ready(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigEditorScreen), what="the editor")
        editor = app.screen
        await wait_for(pilot, lambda: editor.query_one(TextArea).has_focus, what="the text focused")
        # The first Esc leaves the text (TextArea's own key); from then on the console's keys
        # used to act behind the editor: freeze, history, theme, quit.
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is editor and not editor.query_one(TextArea).has_focus
        theme = app.theme
        for key in ("f", "h", "t", "e", "w", "p", "q"):
            await pilot.press(key)
            await pilot.pause()
        assert app.screen is editor and app.is_running
        assert not app.frozen and app.theme == theme
        assert not any(isinstance(s, HistoryScreen) for s in app.screen_stack)

        # With unsaved changes, Esc asks; "n" keeps the edits, "y" throws them away.
        area = editor.query_one(TextArea)
        area.focus()
        area.insert("# a note\n", (0, 0))
        await pilot.pause()
        area.blur()
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the discard question")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is editor, what="back in the editor")
        assert area.text.startswith("# a note\n")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the discard question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is app.cluster_screen, what="the editor closed")


async def test_reinit_needs_the_member_name_typed(etcd) -> None:
    app = batman_console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await ready(pilot, app)
        app.start_reinit("postgresql1")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the reinit confirmation")
        confirm = app.screen
        await pilot.press("y")  # one key is not enough to delete a data directory
        await pilot.pause()
        assert app.screen is confirm
        await pilot.press(*"postgresql0")  # the wrong name does not enable it either
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is confirm
        confirm.query_one(Input).value = ""
        await pilot.press(*"postgresql1", "enter")
        await wait_for(pilot, lambda: app.screen is app.cluster_screen, what="the confirmation accepted")


def test_welcome_suggestions_parse_as_typed() -> None:
    """Every command the welcome screen suggests is accepted by the real option parser (the old
    `-c batman` named a config file that does not exist, `-n /service` an option that does not)."""
    import shlex

    from hatui.cli.main import cli
    from hatui.screens.welcome import SUGGESTIONS, welcome_text

    text = welcome_text("127.0.0.1:2379").plain
    for cmd, _ in SUGGESTIONS:
        assert cmd in text
        args = shlex.split(cmd)[1:]
        ctx = cli.make_context("hatui", list(args), resilient_parsing=False)
        assert ctx.params is not None
        if "-c" in args:
            assert args[args.index("-c") + 1].endswith((".yml", ".yaml"))  # a file, not a scope
