"""The console against a REAL etcd holding Patroni-shaped keys, driven with Pilot."""

from __future__ import annotations

import json

import pytest
from conftest import CONFIG, TERMINAL, screen_text, wait_for, write_batman
from textual.widgets import Button, TextArea

from hatui.app import HatuiApp
from hatui.config import dump_yaml
from hatui.screens.config_editor import ConfigEditorScreen
from hatui.screens.confirm import ConfirmScreen
from hatui.widgets.member_table import MemberTable

pytestmark = [pytest.mark.tui, pytest.mark.integration]

PREFIX = "/service/batman/"


def console(etcd, **kwargs) -> HatuiApp:
    return HatuiApp([etcd.endpoint], "/service", "batman", **kwargs)


def table(app: HatuiApp) -> MemberTable:
    return app.cluster_screen.members_table


def role_cell(app: HatuiApp, member: str) -> str:
    return table(app).get_cell(member, "role").plain


async def started(pilot, app: HatuiApp) -> None:
    await wait_for(
        pilot,
        lambda: app.cluster_screen is not None and table(app).row_count == 2,
        what="both members in the table",
    )
    await pilot.pause(0.1)  # let the screen repaint before reading it


async def test_both_members_visible(etcd) -> None:
    c = etcd.client()
    write_batman(c)
    app = console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app)
        text = screen_text(app)
        assert "postgresql0" in text and "postgresql1" in text
        assert "★ Leader" in role_cell(app, "postgresql0")
        assert role_cell(app, "postgresql1") == "Replica"
        assert "connected" in text
    c.close()


async def test_leader_change_updates_in_place_and_keeps_cursor(etcd) -> None:
    c = etcd.client()
    write_batman(c)
    app = console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app)
        t = table(app)
        assert t.select_member("postgresql1")
        await pilot.pause()
        assert t.selected_member == "postgresql1"
        cells_before = t.update_count
        renders_before = len(app.render_log)

        c.delete(PREFIX + "leader")
        await wait_for(pilot, lambda: "★" not in role_cell(app, "postgresql0"), what="leader key deletion")
        assert "NO LEADER" in screen_text(app)
        lease = c.lease(60)
        c.put(PREFIX + "leader", "postgresql1", lease=lease)
        c.put(
            PREFIX + "members/postgresql1",
            json.dumps(
                {
                    "conn_url": "postgres://127.0.0.1:5433/postgres",
                    "api_url": "http://127.0.0.1:2/patroni",
                    "state": "running",
                    "role": "primary",
                    "version": "4.1.5",
                    "xlog_location": 50331800,
                    "timeline": 2,
                }
            ),
            lease=lease,
        )
        await wait_for(pilot, lambda: "★" in role_cell(app, "postgresql1"), what="new leader in the table")

        assert t is table(app)  # same widget, not rebuilt
        assert t.row_count == 2
        assert t.selected_member == "postgresql1"  # the cursor stayed on its member
        assert len(app.render_log) > renders_before
        # In place: a few cells rewritten, far fewer than re-adding both rows per revision.
        written = t.update_count - cells_before
        assert 0 < written < 2 * 12 * (len(app.render_log) - renders_before)
        kinds = [e.text for e in app.events]
        assert any("leader lock released by postgresql0" in k for k in kinds)
        assert any("postgresql1 took the leader lock" in k for k in kinds)
    c.close()


async def test_config_editor_rule_then_cas_write(etcd) -> None:
    c = etcd.client()
    write_batman(c)
    app = console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigEditorScreen), what="the editor")
        editor: ConfigEditorScreen = app.screen  # type: ignore[assignment]
        _, meta = c.get(PREFIX + "config")
        revision_before = meta.mod_revision

        bad = dict(CONFIG, ttl=5, loop_wait=10, retry_timeout=27)
        editor.query_one(TextArea).load_text(dump_yaml(bad))
        await wait_for(
            pilot, lambda: editor.data is None and editor.issues, what="validation of the bad config"
        )
        # The state is set before the screen is painted: wait for the paint, then read it.
        await wait_for(pilot, lambda: "10 + 2 * 27 = 64" in screen_text(app), what="the issues painted")
        text = screen_text(app)
        assert "5 < 10 + 2 × 27 = 64" in text  # the rule line, with the numbers
        assert "10 + 2 * 27 = 64" in text  # the shared validator's sentence
        assert editor.query_one("#editor-save", Button).disabled
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfigEditorScreen)  # refused: no confirmation was offered
        _, meta = c.get(PREFIX + "config")
        assert meta.mod_revision == revision_before

        good = dict(CONFIG, ttl=64, loop_wait=10, retry_timeout=27)
        editor.query_one(TextArea).load_text(dump_yaml(good))
        await wait_for(pilot, lambda: editor.data is not None, what="validation of the fixed config")
        assert not editor.query_one("#editor-save", Button).disabled
        assert "64 ≥ 10 + 2 × 27 = 64" in screen_text(app)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the diff confirmation")
        assert "+ttl: 64" in screen_text(app)
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: not isinstance(app.screen, (ConfigEditorScreen, ConfirmScreen)),
            what="the editor to close after the write",
        )
        value, meta = c.get(PREFIX + "config")
        stored = json.loads(value)
        assert stored["ttl"] == 64 and stored["retry_timeout"] == 27
        assert meta.mod_revision > revision_before
        # ...and the console shows it through the watch, not by assuming it.
        await wait_for(
            pilot, lambda: app.current_cluster.config.ttl == 64, what="the new config via the watch"
        )
    c.close()


async def test_config_cas_conflict_offers_reload(etcd) -> None:
    c = etcd.client()
    write_batman(c)
    app = console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigEditorScreen), what="the editor")
        editor: ConfigEditorScreen = app.screen  # type: ignore[assignment]

        # Another operator writes the config after we opened the editor.
        theirs = dict(CONFIG, maximum_lag_on_failover=2097152)
        c.put(PREFIX + "config", json.dumps(theirs))

        mine = dict(CONFIG, loop_wait=5)
        editor.query_one(TextArea).load_text(dump_yaml(mine))
        await wait_for(
            pilot, lambda: editor.data is not None and editor.data.get("loop_wait") == 5, what="validation"
        )
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the diff confirmation")
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ConfirmScreen) and "Someone else changed" in screen_text(app),
            what="the conflict dialog",
        )
        stored = json.loads(c.get(PREFIX + "config")[0])
        assert stored == theirs  # nothing of ours was written
        await pilot.press("y")  # reload
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, ConfigEditorScreen) and "2097152" in editor.query_one(TextArea).text
            ),
            what="the reloaded config",
        )
        assert "loop_wait: 10" in editor.query_one(TextArea).text
    c.close()


async def test_etcd_lost_banner(etcd) -> None:
    c = etcd.client()
    write_batman(c)
    c.close()
    app = console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app)
        etcd.stop()
        await wait_for(pilot, lambda: app.conn.state == "lost", timeout=20, what="the lost connection")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "etcd LOST since" in text
        assert "STALE" in text
        assert table(app).has_class("-stale")
        assert table(app).row_count == 2  # the last data stays on screen, marked stale

        etcd.start().wait_ready()  # same data dir: the keys are still there
        # Two witnesses must see etcd back: the watch (conn) and the prober (whose last answer
        # decides "stalled"); the prober asks on its own interval, so it may answer after the watch.
        await wait_for(pilot, lambda: app.conn.state == "ok" and app.etcd_verdict == "ok", timeout=30,
                       what="the watch to reconnect and the prober to hear etcd")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "connected" in text and "STALE" not in text
        assert not table(app).has_class("-stale")


async def test_read_only_hides_and_refuses_writes(etcd) -> None:
    c = etcd.client()
    write_batman(c)
    app = console(etcd, read_only=True)
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app)
        keys = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "switchover" not in keys and "restart" not in keys and "pause" not in keys
        assert "edit_config" not in keys
        assert "history" in keys and "filter" in keys  # reading still works
        footer = screen_text(app).splitlines()[-1]
        assert "Switchover" not in footer and "Restart" not in footer
        stack = len(app.screen_stack)
        for key in ("w", "r", "p", "e", "R", "i", "F", "u"):
            await pilot.press(key)
            await pilot.pause()
        assert len(app.screen_stack) == stack  # nothing opened
        titles = [cmd.title for cmd in app.get_system_commands(app.screen)]
        assert not any(t.startswith(("switchover", "restart", "reload", "reinit")) for t in titles)
        assert "show postgresql1" in titles
        app.start_switchover("batman", "postgresql1")  # a direct call is refused too
        await pilot.pause()
        assert len(app.screen_stack) == stack
    c.close()
