"""Log panes outside the demo: which file is whose (--logs, the node file), following a rotated
file, search with `/`, wrap, and the repeated routine HA lines folded. Real etcd for the console;
the log files are real files written by the test."""

from __future__ import annotations

import os

import pytest
from conftest import TERMINAL, wait_for, write_batman

from hatui.app import HatuiApp
from hatui.console_logs import LogSpecError, resolve_log_files

pytestmark = [pytest.mark.tui, pytest.mark.integration]


def test_log_files_from_dirs_files_pairs_and_the_node_file(tmp_path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    (d / "postgresql0.log").write_text("")
    (d / "postgresql1.log").write_text("")
    (d / "notes.txt").write_text("")
    other = tmp_path / "pg2.log"
    other.write_text("")
    node = {"name": "postgresql9", "log": {"dir": "/var/log/hatui"}}
    files = resolve_log_files([str(d), f"postgresql2={other}"], node)
    assert files == {"postgresql9": "/var/log/hatui/postgresql9.log", "postgresql0": str(d / "postgresql0.log"),
                     "postgresql1": str(d / "postgresql1.log"), "postgresql2": str(other)}
    (tmp_path / "empty").mkdir()
    for bad in (str(tmp_path / "nope"), "=x", str(tmp_path / "empty")):
        with pytest.raises(LogSpecError):
            resolve_log_files([bad])


def test_cli_refuses_a_bad_logs_value_in_one_line(tmp_path) -> None:
    from click.testing import CliRunner

    from hatui.cli.main import cli

    result = CliRunner().invoke(cli, ["--etcd", "127.0.0.1:1", "--logs", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: --logs {tmp_path / 'missing'}: no such file or "
                                                  "directory (or use MEMBER=PATH)"]


async def test_pane_folds_searches_wraps_and_follows_rotation(etcd, tmp_path) -> None:
    c = etcd.client()
    write_batman(c)
    c.close()
    log = tmp_path / "postgresql0.log"
    routine = ["INFO: Lock owner: postgresql0; I am postgresql0",
               "INFO: no action. I am (postgresql0), the leader with the lock"]
    lines = [f"2026-12-03 10:00:{i:02d},000 {routine[i % 2]}" for i in range(20)]
    lines.insert(10, "2026-12-03 10:00:09,500 ERROR: could not receive data from WAL stream " + "x" * 150)
    log.write_text("\n".join(lines) + "\n")
    app = HatuiApp([etcd.endpoint], "/service", "batman", log_files={"postgresql0": str(log)})
    async with app.run_test(size=TERMINAL) as pilot:
        await wait_for(pilot, lambda: app.cluster_screen is not None, what="the cluster screen")
        pane = app.cluster_screen.log_panes.panes["postgresql0"]
        await wait_for(pilot, lambda: len(pane.all_lines) == 21, what="the file read")
        # Folded: the first Lock owner / no action pair, the error, the next pair; the rest counted.
        assert len(pane.shown) == 5 and pane.folded == 16
        assert "16 repeated routine lines folded" in str(pane.border_subtitle)
        pane.focus()
        await pilot.press("A")
        assert len(pane.shown) == 21 and not pane.fold
        await pilot.press("A")
        assert len(pane.shown) == 5

        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"wal stream", "enter")
        await pilot.pause()
        assert pane.search_text == "wal stream" and pane.matches() == [2] and pane.has_focus

        await pilot.press("W")
        await pilot.pause()
        assert pane.wrap

        # Rotation: the file is renamed and a new one appears under the same name.
        os.rename(log, tmp_path / "postgresql0.log.1")
        log.write_text("2026-12-03 10:01:00,000 WARNING: after rotation\n")
        await wait_for(pilot, lambda: any("after rotation" in ln for ln in pane.shown), 15, "the new file's line")
