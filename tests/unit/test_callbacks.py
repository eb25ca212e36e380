"""The callback executor (hatui.daemon.callbacks) with real scripts: arguments, replacement, timeout, pre_promote."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from hatui.daemon.callbacks import CallbackRun, CallbackRunner


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def wait_runs(runs: list, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(runs) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(runs) >= n, runs


def test_callback_gets_action_role_scope_and_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HATUI_TEST_MARK", "from-the-daemon")
    rec = script(tmp_path / "rec.sh", 'echo "$@ $HATUI_TEST_MARK"\n')
    runner = CallbackRunner({"on_start": f"{rec} --flag", "on_role_change": rec}, "batman")
    runs: list[CallbackRun] = []
    runner.listeners.append(runs.append)
    runner.started("replica")
    wait_runs(runs, 1)
    assert runs[0].output.strip() == "--flag on_start replica batman from-the-daemon"
    assert runs[0].returncode == 0 and runs[0].kind == "on_start"
    runner.started("promoted")  # a start in another role is a role change; promoted is spelled primary
    wait_runs(runs, 2)
    assert runs[1].output.strip() == "on_role_change primary batman from-the-daemon"


def test_a_newer_event_replaces_a_running_callback(tmp_path: Path) -> None:
    slow = script(tmp_path / "slow.sh", 'echo "begin $1"\nsleep 30\necho "end $1"\n')
    runner = CallbackRunner({"on_start": slow, "on_role_change": slow, "on_reload": slow}, "batman")
    runs: list[CallbackRun] = []
    runner.listeners.append(runs.append)
    runner.fire("on_start", "replica")
    time.sleep(0.5)
    runner.fire("on_reload", "replica")  # its own executor: does not replace on_start
    runner.fire("on_role_change", "primary")
    wait_runs(runs, 1)
    assert runs[0].kind == "on_start" and runs[0].replaced and runs[0].returncode < 0
    assert runs[0].output.strip() == "begin on_start"
    assert runner.wait_idle(0.5) is False  # on_role_change and on_reload still running
    runner.timeout = 0.1  # (applies to runs started later; stop these by hand below)
    for slot in (runner._main, runner._reload):
        with slot.lock:
            if slot.proc is not None:
                os.killpg(slot.proc.pid, 9)
    wait_runs(runs, 3)
    assert {r.kind for r in runs[1:]} == {"on_role_change", "on_reload"}


def test_timeout_kills_the_script_and_its_children(tmp_path: Path) -> None:
    hang = script(tmp_path / "hang.sh", "sleep 60 &\necho $! > " + str(tmp_path / "child") + "\nwait\n")
    runner = CallbackRunner({"on_stop": hang}, "batman", timeout=0.5)
    runs: list[CallbackRun] = []
    runner.listeners.append(runs.append)
    runner.fire("on_stop", "primary")
    wait_runs(runs, 1)
    assert runs[0].timed_out
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split(")")[-1][:3]


def test_pre_promote_exit_code_decides(tmp_path: Path) -> None:
    ok = script(tmp_path / "ok.sh", "exit 0\n")
    bad = script(tmp_path / "bad.sh", "echo no; exit 1\n")
    assert CallbackRunner({}, "s", pre_promote=ok).pre_promote() is True
    assert CallbackRunner({}, "s", pre_promote=bad).pre_promote() is False
    assert CallbackRunner({}, "s", pre_promote=str(tmp_path / "missing")).pre_promote() is False
    assert CallbackRunner({}, "s").pre_promote() is True
    hang = script(tmp_path / "hang.sh", "sleep 30\n")
    assert CallbackRunner({}, "s", pre_promote=hang, timeout=0.3).pre_promote() is False
