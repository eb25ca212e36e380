"""Pictures of every console screen, fed by the recorded event stream (no etcd, frozen clocks).

Baselines live in snapshots/test_snapshots/. After an intended change:
    .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update
and review the SVGs like code.
"""

from __future__ import annotations

import pytest
from conftest import TERMINAL, wait_for

from hatui.app import ConnectionLost, HatuiApp
from hatui.config import dump_yaml
from hatui.console_events import CONFIG, START, RecordedSource
from hatui.screens.config_editor import ConfigEditorScreen

pytestmark = pytest.mark.tui


def recorded_app(namespace: bool = False, read_only: bool = False) -> HatuiApp:
    return HatuiApp(
        scope=None if namespace else "batman",
        read_only=read_only,
        source=RecordedSource(namespace=namespace),
        clock=lambda: START,
        monotonic=lambda: 1000.0,
    )


def _editor(text: str) -> ConfigEditorScreen:
    return ConfigEditorScreen(
        text,
        "Dynamic configuration of batman (config key revision 83)",
        original=dict(CONFIG),
        cursor_blink=False,  # a blinking cursor would make the picture depend on timing
    )


async def settle(pilot) -> None:
    """Wait until the recorded stream has been rendered (the cluster screen feeds it on mount)."""
    await wait_for(pilot, lambda: len(pilot.app.render_log) > 0, what="the recorded stream")
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def _quiet_editor(pilot) -> None:
    from textual.widgets import TextArea

    area = pilot.app.screen.query_one(TextArea)
    await wait_for(pilot, lambda: area.has_focus, what="the editor to take focus")
    await pilot.pause()


def test_cluster_screen(snap_compare) -> None:
    assert snap_compare(recorded_app(), terminal_size=TERMINAL, run_before=settle)


def test_cluster_screen_80x24(snap_compare) -> None:
    """80x24 first: every member row with its role, state and lag, and the health line."""
    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=settle)


def test_cluster_screen_200x50(snap_compare) -> None:
    assert snap_compare(recorded_app(), terminal_size=(200, 50), run_before=settle)


async def test_80x24_shows_every_member_role_state_and_lag() -> None:
    """The same picture, read as text: what the 80x24 snapshot must keep."""
    from conftest import screen_text

    app = recorded_app()

    def member_rows() -> dict[str, str]:
        return {ln.split()[1]: ln for ln in screen_text(app).splitlines()
                if ln.startswith("│ postgresql") and ("Replica" in ln or "Leader" in ln)}

    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # The narrow columns are set up on mount; wait for the repaint rather than one read.
        await wait_for(pilot, lambda: len(member_rows()) == 3, what="three member rows")
        text = screen_text(app)
        rows = member_rows()
    assert "★ Leader" in rows["postgresql0"] and "running" in rows["postgresql0"]
    assert "Replica" in rows["postgresql1"] and "streaming" in rows["postgresql1"] and "0 B" in rows["postgresql1"]
    assert "▲ 3.0 MB" in rows["postgresql2"] and "✗ no" in rows["postgresql2"]
    assert "pending restart: postgresql1" in text  # the status line (the health line when all is well)
    assert "^p palette" in text.splitlines()[-1]  # the footer is not cut off


def test_cluster_screen_namespace(snap_compare) -> None:
    assert snap_compare(recorded_app(namespace=True), terminal_size=TERMINAL, run_before=settle)


def test_cluster_screen_read_only(snap_compare) -> None:
    assert snap_compare(recorded_app(read_only=True), terminal_size=TERMINAL, run_before=settle)


def test_cluster_screen_etcd_lost(snap_compare) -> None:
    async def lose(pilot) -> None:
        await settle(pilot)
        app = pilot.app
        app.on_connection_lost(ConnectionLost("etcd is not reachable at 127.0.0.1:2379 (connection refused)"))
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=TERMINAL, run_before=lose)


def test_history_screen(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["h"], terminal_size=TERMINAL, run_before=settle)


def test_events_screen(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["y"], terminal_size=TERMINAL, run_before=settle)


def test_member_detail(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["down", "enter"], terminal_size=TERMINAL, run_before=settle)


def test_help_screen(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["question_mark"], terminal_size=TERMINAL, run_before=settle)


def test_switchover_candidates(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["w"], terminal_size=TERMINAL, run_before=settle)


def test_confirm_switchover(snap_compare) -> None:
    async def confirm(pilot) -> None:
        await settle(pilot)
        pilot.app.start_switchover("batman", "postgresql1")
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=TERMINAL, run_before=confirm)


def test_config_editor_valid(snap_compare) -> None:
    async def open_editor(pilot) -> None:
        await settle(pilot)
        await pilot.app.push_screen(_editor(dump_yaml(CONFIG)))
        await pilot.pause()
        await _quiet_editor(pilot)

    assert snap_compare(recorded_app(), terminal_size=TERMINAL, run_before=open_editor)


def test_config_editor_invalid(snap_compare) -> None:
    bad = dict(CONFIG, ttl=5, loop_wait=10, retry_timeout=27)

    async def open_editor(pilot) -> None:
        await settle(pilot)
        await pilot.app.push_screen(_editor(dump_yaml(bad)))
        await pilot.pause()
        await _quiet_editor(pilot)

    assert snap_compare(recorded_app(), terminal_size=TERMINAL, run_before=open_editor)
