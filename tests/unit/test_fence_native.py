"""The native fencing guard (hatui/daemon/fence_guard.c, built by fence_native.py) through the same
pipe protocol and the same scenarios as the Python guard (tests/unit/test_fence.py), plus what only
it has to prove: its size, and JSON it must read exactly as Python wrote it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from test_fence import (  # noqa: F401 - fixtures
    FakeServer,
    GuardProc,
    frozen_daemon,
    scratch,
    server,
    spawn_postmaster,
    wait,
)

from hatui.daemon.fence_native import guard_binary

BINARY = guard_binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason="no C compiler: the daemon uses the Python guard")


class NativeGuard(GuardProc):
    def __init__(self, base: Path, data_dir: Path, margin: int = 5, watchdog: str | None = None,
                 python: str | None = None, daemon_pid: int | None = None) -> None:
        self.log = base / "guard.log"
        extra = ["--python", python] if python else []
        daemon_pid = daemon_pid or os.getpid()
        self.proc = subprocess.Popen(["hatui.daemon.fence", "--daemon-pid", str(daemon_pid), "--log-file",
                                      str(self.log), *extra], executable=BINARY, stdin=subprocess.PIPE)
        self.track()
        self.send({"op": "config", "daemon_pid": daemon_pid, "name": "n1", "data_dir": str(data_dir),
                   "safety_margin": margin, "leader_key": "/service/x/leader",
                   "etcd": {"hosts": [], "password": 'p"w\\d", "data_dir": "/elsewhere'},
                   "watchdog": {"device": watchdog, "mode": "automatic"} if watchdog else None})


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_daemon_death_while_leader_stops_the_server(scratch: Path, server: FakeServer) -> None:  # noqa: F811
    guard = NativeGuard(scratch, server.data_dir)
    guard.beat(age=0)
    assert rss_kb(guard.proc.pid) < 3 * 1024
    assert guard.close() == 0
    assert not server.alive()
    assert "fencing guard stopped PostgreSQL: the daemon died" in guard.text()


def test_stalled_daemon_is_fenced_and_a_new_beat_rearms(scratch: Path, server: FakeServer) -> None:  # noqa: F811
    guard = NativeGuard(scratch, server.data_dir, margin=5)
    guard.beat(age=14.5)
    assert wait(lambda: not server.alive())
    assert wait(lambda: "the daemon (pid" in guard.text() and "stalled while leader" in guard.text())
    guard.beat(age=0)
    guard.send({"op": "exit"})
    assert guard.close() == 0
    assert "re-armed" in guard.text()


def test_clean_exit_and_replica_leave_the_server_alone(scratch: Path, server: FakeServer) -> None:  # noqa: F811
    guard = NativeGuard(scratch, server.data_dir)
    guard.beat(age=0)
    guard.send({"op": "exit"})
    assert guard.close() == 0
    assert server.alive()
    guard = NativeGuard(scratch, server.data_dir)
    guard.beat(age=0)
    guard.send({"op": "disarm"})
    time.sleep(0.3)
    assert guard.close() == 0
    assert server.alive()
    assert "exited while not leader" in guard.text()


def test_server_of_another_data_dir_is_not_touched(scratch: Path, server: FakeServer) -> None:  # noqa: F811
    other = scratch / "other"
    other.mkdir()
    (other / "postmaster.pid").write_text(f"{server.proc.pid}\n")
    guard = NativeGuard(scratch, other)
    guard.beat(age=0)
    assert guard.close() == 0
    assert server.alive()


def test_watchdog_file_fed_and_closed(scratch: Path, server: FakeServer) -> None:  # noqa: F811
    device = scratch / "wd"
    device.write_bytes(b"")
    guard = NativeGuard(scratch, server.data_dir, watchdog=str(device))
    guard.beat(age=0)
    guard.beat(age=0)
    assert wait(lambda: device.read_bytes() == b"11")
    guard.send({"op": "disarm"})
    assert wait(lambda: device.read_bytes() == b"11V")
    guard.send({"op": "exit"})
    assert guard.close() == 0
    text = guard.text()
    assert f"fencing guard: watchdog {device} activated" in text
    assert "fencing guard could not set the watchdog timeout" in text


def test_data_dir_with_escapes_is_read_as_python_wrote_it(scratch: Path) -> None:  # noqa: F811
    odd = scratch / 'dätä "dir"'
    odd.mkdir()
    srv = FakeServer.__new__(FakeServer)
    srv.data_dir = odd
    binary = scratch / "postgres"
    binary.write_bytes(Path("/bin/sleep").read_bytes())
    binary.chmod(0o755)
    srv.proc = spawn_postmaster(binary, odd)
    (odd / "postmaster.pid").write_text(f"{srv.proc.pid}\n")
    srv.wait_named()
    try:
        assert json.dumps(str(odd)).count("\\u") == 2  # the path travels \\u-escaped
        guard = NativeGuard(scratch, odd)
        guard.beat(age=0)
        assert guard.close() == 0
        assert not srv.alive()
    finally:
        srv.stop()


def test_release_helper_gets_the_exact_lease_after_a_death(scratch: Path, server: FakeServer) -> None:  # noqa: F811
    """The etcd step is the Python helper's: it must get the config and the 64-bit lease intact."""
    recorder = scratch / "python"
    got = scratch / "release-input"
    recorder.write_text(f"#!/bin/sh\necho \"$@\" > {got}.args\ncat > {got}\n")
    recorder.chmod(0o755)
    guard = NativeGuard(scratch, server.data_dir, python=str(recorder))
    lease = 1781633510997919744  # > 2**53: a double would change it
    guard.send({"op": "beat", "t": time.monotonic(), "ttl": 20, "lease": lease})
    assert guard.close() == 0
    assert not server.alive()
    config, state = (json.loads(line) for line in got.read_text().splitlines())
    assert config["op"] == "config" and config["leader_key"] == "/service/x/leader"
    assert state == {"op": "release", "lease": lease, "ttl": 20, "frozen": False}
    assert "-m hatui.daemon.fence --release" in Path(f"{got}.args").read_text()


def _recorder(base: Path) -> tuple[Path, Path]:
    recorder, got = base / "python", base / "release-input"
    recorder.write_text(f"#!/bin/sh\necho \"$@\" > {got}.args\ncat > {got}\n")
    recorder.chmod(0o755)
    return recorder, got


def test_frozen_daemon_is_fenced_then_its_key_released(scratch: Path, server: FakeServer,  # noqa: F811
                                                       frozen_daemon: int) -> None:  # noqa: F811
    recorder, got = _recorder(scratch)
    guard = NativeGuard(scratch, server.data_dir, python=str(recorder), daemon_pid=frozen_daemon)
    guard.send({"op": "beat", "t": time.monotonic() - 14.5, "ttl": 20, "lease": 77})
    assert wait(lambda: got.exists() and len(got.read_text().splitlines()) == 2)
    assert not server.alive()
    assert json.loads(got.read_text().splitlines()[1]) == {"op": "release", "lease": 77, "ttl": 20, "frozen": True}
    assert "is frozen: releasing its leader key now" in guard.text()
    guard.send({"op": "exit"})
    assert guard.close() == 0


def test_stalled_but_running_daemon_keeps_its_key(scratch: Path, server: FakeServer) -> None:  # noqa: F811
    recorder, got = _recorder(scratch)
    guard = NativeGuard(scratch, server.data_dir, python=str(recorder))
    guard.send({"op": "beat", "t": time.monotonic() - 14.5, "ttl": 20, "lease": 77})
    assert wait(lambda: "is running (slow, not frozen)" in guard.text())
    assert not server.alive()
    guard.send({"op": "exit"})
    assert guard.close() == 0
    # The helper was started (to warm up) but dismissed: its config line, never a state line.
    assert [json.loads(line)["op"] for line in got.read_text().splitlines()] == ["config"]


def test_helper_prewarmed_near_the_deadline_is_sent_away_by_a_beat(scratch: Path, server: FakeServer) -> None:  # noqa: F811
    """No beat for ttl - margin - 3 s: the guard starts the release helper ahead of time; a beat
    that comes after all sends it away, and nothing is stopped or released."""
    recorder, got = _recorder(scratch)
    guard = NativeGuard(scratch, server.data_dir, python=str(recorder))
    guard.send({"op": "beat", "t": time.monotonic() - 10.0, "ttl": 20, "lease": 77})  # deadline in 5 s
    assert wait(lambda: got.exists() and got.read_text().count("\n") == 1)  # started, config line only
    guard.send({"op": "beat", "t": time.monotonic(), "ttl": 20, "lease": 77})
    assert wait(lambda: Path(f"{got}.args").exists())
    time.sleep(3.0)  # past the first deadline
    assert server.alive()
    assert [json.loads(line)["op"] for line in got.read_text().splitlines()] == ["config"]
    guard.send({"op": "exit"})
    assert guard.close() == 0
    assert server.alive()
