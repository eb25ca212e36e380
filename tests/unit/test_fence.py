"""The fencing guard process (hatui/daemon/fence.py), driven through its real pipe protocol.

The "postmaster" here is a copy of /bin/sleep named `postgres` running in a scratch data dir
with a postmaster.pid: the guard identifies a postmaster by name, liveness and working dir and
stops it with signals, so this exercises the guard's real code paths. The daemon side against a
real PostgreSQL and etcd is in tests/faults/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hatui.daemon.fence import Guard, _is_stopped


def _default_stop_signals() -> None:
    """In the fake postmaster, before exec: SIGINT and SIGQUIT back to their default (terminate).

    A real postmaster installs its own handlers for both (fast and immediate shutdown), whatever
    it inherited. /bin/sleep installs none and keeps an inherited SIG_IGN: a shell starts a
    background job (`./run.sh test ... &`, a job runner) with SIGINT and SIGQUIT ignored, pytest
    and this fake server inherit that, and the guard's fast and immediate shutdowns then did
    nothing: it got through only by SIGKILL after 12.5 s (stall) or 20 s (death), past every wait."""
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def spawn_postmaster(binary: Path, data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([str(binary), "600"], cwd=data_dir, preexec_fn=_default_stop_signals)


def ignored_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigIgn line for pid {pid}")


class FakeServer:
    def __init__(self, base: Path) -> None:
        self.data_dir = base / "data"
        self.data_dir.mkdir()
        binary = base / "postgres"
        shutil.copy("/bin/sleep", binary)
        self.proc = spawn_postmaster(binary, self.data_dir)
        (self.data_dir / "postmaster.pid").write_text(f"{self.proc.pid}\n{self.data_dir}\n")
        self.wait_named()

    def wait_named(self) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if Path(f"/proc/{self.proc.pid}/comm").read_text().strip() == "postgres":
                    return
            except OSError:
                pass
            time.sleep(0.01)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()


_guards: list[subprocess.Popen] = []


class GuardProc:
    def __init__(self, base: Path, data_dir: Path, margin: int = 5, daemon_pid: int | None = None) -> None:
        self.log = base / "guard.log"
        daemon_pid = daemon_pid or os.getpid()
        self.proc = subprocess.Popen([sys.executable, "-m", "hatui.daemon.fence", "--daemon-pid", str(daemon_pid),
                                      "--log-file", str(self.log)], stdin=subprocess.PIPE)
        self.track()
        self.send({"op": "config", "daemon_pid": daemon_pid, "name": "n1", "data_dir": str(data_dir),
                   "safety_margin": margin, "leader_key": "/service/x/leader", "etcd": {"hosts": []},
                   "watchdog": None})

    def track(self) -> None:
        """Killed by the scratch fixture if a test fails before close(): a guard left running would
        act and log (on stderr, its log dir gone) in the middle of the next tests."""
        _guards.append(self.proc)

    def send(self, message: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def beat(self, age: float, ttl: int = 20) -> None:
        self.send({"op": "beat", "t": time.monotonic() - age, "ttl": ttl, "lease": 7})

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(20)

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="hatui-fence-"))
    try:
        yield d
    finally:
        while _guards:
            proc = _guards.pop()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(scratch: Path) -> Iterator[FakeServer]:
    s = FakeServer(scratch)
    try:
        yield s
    finally:
        s.stop()


def wait(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_daemon_death_while_leader_stops_the_server(scratch: Path, server: FakeServer) -> None:
    guard = GuardProc(scratch, server.data_dir)
    guard.beat(age=0)
    assert guard.close() == 0  # EOF without "exit": the daemon died
    assert not server.alive()
    assert "fencing guard stopped PostgreSQL: the daemon died" in guard.text()


def test_stalled_daemon_is_fenced_and_a_new_beat_rearms(scratch: Path, server: FakeServer) -> None:
    guard = GuardProc(scratch, server.data_dir, margin=5)
    guard.beat(age=14.5)  # ttl 20 - margin 5 = 15 s without a refresh: fires half a second later
    assert wait(lambda: not server.alive())
    assert wait(lambda: "the daemon (pid" in guard.text() and "stalled while leader" in guard.text())
    guard.beat(age=0)
    guard.send({"op": "exit"})
    assert guard.close() == 0
    assert "re-armed" in guard.text()


@pytest.fixture
def frozen_daemon() -> Iterator[int]:
    """A process stopped with SIGSTOP, standing for a frozen daemon (the guard reads its state in /proc)."""
    proc = subprocess.Popen(["sleep", "600"])
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        assert wait(lambda: _is_stopped(proc.pid), 5)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_stalled_but_running_daemon_keeps_its_key(scratch: Path, server: FakeServer) -> None:
    guard = GuardProc(scratch, server.data_dir, margin=5)
    guard.beat(age=14.5)
    assert wait(lambda: "is running (slow, not frozen)" in guard.text())
    assert not server.alive()
    assert "releasing its leader key" not in guard.text()
    guard.send({"op": "exit"})
    assert guard.close() == 0


def test_frozen_daemon_is_fenced_then_its_key_released(scratch: Path, server: FakeServer,
                                                       frozen_daemon: int) -> None:
    guard = GuardProc(scratch, server.data_dir, margin=5, daemon_pid=frozen_daemon)
    guard.beat(age=14.5)
    assert wait(lambda: "is frozen: releasing its leader key now" in guard.text())
    assert not server.alive()  # stopped first: the key goes only once PostgreSQL is down
    assert guard.text().index("stalled while leader") < guard.text().index("releasing its leader key")
    guard.send({"op": "exit"})
    assert guard.close() == 0


def test_fake_postmaster_obeys_shutdown_signals_its_parent_ignores(scratch: Path) -> None:
    """Like a real postmaster, the fake one stops on SIGINT and SIGQUIT even when pytest was
    started as a background job (SIGINT and SIGQUIT ignored, inherited through exec)."""
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        server = FakeServer(scratch)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    try:
        ignored = ignored_signals(server.proc.pid)
        for sig in (signal.SIGINT, signal.SIGQUIT):
            assert not ignored & 1 << (sig - 1), f"the fake postmaster ignores {sig.name}"
        os.kill(server.proc.pid, signal.SIGINT)
        assert wait(lambda: not server.alive())
        assert server.proc.returncode == -signal.SIGINT
    finally:
        server.stop()


def test_stopped_process_state_is_read_from_proc(frozen_daemon: int) -> None:
    assert _is_stopped(frozen_daemon)
    assert not _is_stopped(os.getpid())
    assert not _is_stopped(2**22 + 12345)  # no such process


def test_clean_exit_leaves_the_server_alone(scratch: Path, server: FakeServer) -> None:
    guard = GuardProc(scratch, server.data_dir)
    guard.beat(age=0)
    guard.send({"op": "exit"})
    assert guard.close() == 0
    assert server.alive()


def test_replica_is_never_fenced(scratch: Path, server: FakeServer) -> None:
    guard = GuardProc(scratch, server.data_dir)
    guard.beat(age=0)
    guard.send({"op": "disarm"})
    time.sleep(0.3)
    assert guard.close() == 0  # the daemon dies while not leader
    assert server.alive()
    assert "exited while not leader" in guard.text()


def test_never_armed_guard_ignores_old_beats_it_never_got(scratch: Path, server: FakeServer) -> None:
    guard = GuardProc(scratch, server.data_dir)
    time.sleep(0.3)
    assert guard.close() == 0
    assert server.alive()


def test_margin_rules() -> None:
    g = Guard(1)
    g.config = {"safety_margin": 5}
    assert g.margin(20) == 5
    g.config = {"safety_margin": 30}
    assert g.margin(20) == 10  # a margin as long as the TTL would fire on every beat
    g.config = {"safety_margin": -1}
    assert g.margin(20) == 10  # Patroni's -1: half the TTL


def test_server_of_another_data_dir_is_not_touched(scratch: Path, server: FakeServer) -> None:
    other = scratch / "other"
    other.mkdir()
    (other / "postmaster.pid").write_text(f"{server.proc.pid}\n")  # a stale pid file naming a reused pid
    guard = GuardProc(scratch, other)
    guard.beat(age=0)
    assert guard.close() == 0
    assert server.alive()


def test_release_helper_dismissed_without_a_state_line_does_nothing(scratch: Path) -> None:
    """The native guard starts the helper early and closes its pipe after the config line when
    there is nothing to release: it must exit at once, quietly, without touching etcd."""
    log = scratch / "helper.log"
    config = {"op": "config", "name": "n1", "leader_key": "/service/x/leader", "etcd": {"hosts": ["127.0.0.1:9"]}}
    res = subprocess.run([sys.executable, "-m", "hatui.daemon.fence", "--release", "--daemon-pid", str(os.getpid()),
                          "--log-file", str(log)], input=json.dumps(config) + "\n", text=True, timeout=60)
    assert res.returncode == 0
    assert log.read_text() == ""
