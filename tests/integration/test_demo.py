"""`hatui demo --no-console` as a person or a script runs it: a real etcd, real daemons, real PostgreSQL.

The faults go through `hatui demo ACTION MEMBER`, which asks the running demo (control socket) to
call the same DemoRuntime method the console's demo panel calls. Timing is the tests' fast set
(`--fast`: ttl 20, loop_wait 1, retry_timeout 3); nothing here asserts a duration.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from servers import make_tempdir, remove_tree

from hatui.demo import pid_alive, start_time

pytestmark = pytest.mark.integration


class Demo:
    """A `hatui demo --no-console` child whose output is collected line by line."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.workdir = workdir
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hatui", "demo", "--no-console", "--fast", "--port-base", "0",
             "--dir", str(workdir), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, pattern: str, timeout: float = 180.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None and not any(re.search(pattern, x) for x in self.lines):
                time.sleep(0.2)  # let the reader drain the pipe
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}; output so far:\n{self.text}")

    def ctl(self, action: str, member: str | None = None) -> tuple[int, str]:
        args = [sys.executable, "-m", "hatui", "demo", "--dir", str(self.workdir), action]
        if member:
            args.append(member)
        res = subprocess.run(args, capture_output=True, text=True, timeout=60)
        return res.returncode, res.stdout + res.stderr

    def status(self) -> dict:
        # Lines read before the snapshot were printed before it: their PIDs must be in it. Later
        # lines (a postmaster restarted after the snapshot, say) can only be checked for being gone.
        self.lines_before_status = len(self.lines)
        code, out = self.ctl("status")
        assert code == 0, out
        return json.loads(out)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def rest(port: int, path: str) -> dict:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return json.loads(r.read())
    except Exception:  # noqa: BLE001 - any failure is "no answer" to a poll
        return {}


def wait_for(check, timeout: float, what: str, demo: Demo):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{demo.text}{log_tails(demo)}")


def log_tails(demo: Demo, lines: int = 30) -> str:
    """The last lines of every node's log: the demo removes them when it stops."""
    logs = ""
    for log in sorted((demo.workdir / "logs").glob("*.log")):
        logs += f"\n----- {log.name} -----\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return logs


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def started(demo: Demo) -> dict:
    demo.wait_line(r"^running; ")
    assert re.search(r"ready in [\d.]+s: postgresql\d is the leader, postgresql\d streams from it", demo.text), demo.text
    return demo.status()


def leader_of(api_ports: dict[str, int]) -> str | None:
    for port in api_ports.values():
        for m in rest(port, "/cluster").get("members", []):
            if m.get("role") == "leader" and m.get("state") == "running":
                return m["name"]
    return None


def assert_all_gone(demo: Demo, status: dict) -> None:
    """Every PID the demo reported (printed or recorded) is gone, and no port it used listens."""
    recorded = [(int(p), int(s)) for pids in status["pids"].values() for p, s in pids]
    before = "\n".join(demo.lines[:demo.lines_before_status])
    printed_before = {int(p) for p in re.findall(r"\bpid (\d+)", before)}
    printed = {int(p) for p in re.findall(r"\bpid (\d+)", demo.text)}
    assert recorded and printed_before
    assert {p for p, _ in recorded} >= printed_before - {status["pid"]}, "a printed PID was not recorded"
    for pid, started_at in recorded:
        assert not (pid_alive(pid) and start_time(pid) == started_at), f"pid {pid} is still running"
    for pid in printed - {p for p, _ in recorded}:  # printed after the snapshot
        assert not (pid_alive(pid) and _ours(pid, demo.workdir, printed)), \
            f"pid {pid} (printed after the status snapshot) is still running"
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", demo.text)]
    ports += [int(p) for p in re.findall(r"peer port (\d+)", demo.text)]
    ports += [int(p) for p in re.findall(r"REST :(\d+)", demo.text)]
    assert len(ports) >= 5
    for port in set(ports):
        assert not listening(port), f"port {port} still listens"


def _ours(pid: int, workdir: Path, pids: set[int]) -> bool:
    """Is this live PID one of the demo's processes, not a stranger that reused the number (PIDs
    wrap quickly on a busy machine)? Its command line or working dir names the demo's dir, or it
    is a fencing guard of one of the demo's daemons."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    if str(workdir) in " ".join(args) or cwd.startswith(str(workdir)):
        return True
    if "hatui.daemon.fence" in args and "--daemon-pid" in args:
        i = args.index("--daemon-pid")
        return i + 1 < len(args) and args[i + 1].isdigit() and int(args[i + 1]) in pids
    return False


@pytest.fixture
def workdir() -> Iterator[Path]:
    base = make_tempdir("hatui-demo-test-")
    try:
        yield base / "demo"
    finally:
        remove_tree(base)


def test_talk_failover_splitbrain_rewind_rejoin_and_clean_stop(workdir: Path) -> None:
    """The talk without fencing: kill -9 the leader's daemon, failover after ttl, a row written to
    the unmanaged old primary, then its daemon again: pg_rewind and rejoin. SIGTERM stops all."""
    demo = Demo(workdir, "--no-fencing")
    status: dict = {}
    try:
        status = started(demo)
        api = {n["name"]: n["api_port"] for n in status["nodes"]}
        pg = {n["name"]: n["pg_port"] for n in status["nodes"]}
        old = leader_of(api)
        assert old is not None
        new = next(n for n in api if n != old)
        assert rest(api[new], "/patroni").get("replication_state") == "streaming"

        code, out = demo.ctl("kill-daemon", old)
        assert code == 0 and "killed the daemon of " + old in out, out
        wait_for(lambda: leader_of(api) == new, 120, f"{new} to take over", demo)
        assert rest(api[new], "/patroni").get("timeline") == 2

        # Split brain: the old primary, unmanaged, still accepts a write.
        code, out = demo.ctl("write", old)
        assert code == 0 and "accepted" in out, out

        code, out = demo.ctl("start", old)
        assert code == 0 and "started the daemon of " + old in out, out

        def rejoined() -> bool:
            p = rest(api[old], "/patroni")
            return p.get("role") == "replica" and p.get("state") == "running" and p.get("timeline") == 2 \
                and p.get("replication_state") == "streaming"

        wait_for(rejoined, 180, f"{old} to rewind and follow {new}", demo)
        log = (workdir / "logs" / f"{old}.log").read_text(errors="replace")
        assert "pg_rewind" in log or "rewind" in log.lower()
        # The diverged row is gone: the old primary's extra WAL was rewound away.
        try:
            with psycopg.connect(host="127.0.0.1", port=pg[old], user="postgres", password="zalando",
                                 dbname="postgres", connect_timeout=3) as conn:
                assert conn.execute("SELECT to_regclass('splitbrain')").fetchone()[0] is None
        except psycopg.OperationalError as exc:
            raise AssertionError(f"{old} answered streaming but refused a connection: {exc}{log_tails(demo, 80)}") from exc
        status = demo.status()
    finally:
        code = demo.stop()
    assert code == 0, demo.text
    assert "stopping everything it started" in demo.text
    if status:
        assert_all_gone(demo, status)
    assert not workdir.exists(), "without --keep the working dir is removed"


def test_fenced_failover_second_demo_refused_and_keep(workdir: Path) -> None:
    """hatui's default (fencing guard): killing the leader's daemon stops its PostgreSQL and fails
    over; a second demo on the same dir refuses to start; --keep leaves the data."""
    demo = Demo(workdir, "--keep")
    status: dict = {}
    try:
        status = started(demo)
        api = {n["name"]: n["api_port"] for n in status["nodes"]}
        old = leader_of(api)
        assert old is not None
        new = next(n for n in api if n != old)

        second = subprocess.run([sys.executable, "-m", "hatui", "demo", "--no-console", "--dir", str(workdir)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "already running" in second.stderr and str(workdir) in second.stderr

        code, out = demo.ctl("kill-daemon", old)
        assert code == 0, out
        wait_for(lambda: leader_of(api) == new, 120, f"{new} to take over", demo)
        # The guard stopped the old primary: a direct write finds nobody to accept it.
        code, out = demo.ctl("write", old)
        assert code != 0 and "failed" in out, out

        code, out = demo.ctl("start", old)
        assert code == 0, out
        wait_for(lambda: rest(api[old], "/patroni").get("replication_state") == "streaming", 180,
                 f"{old} to follow {new}", demo)
        status = demo.status()
    finally:
        code = demo.stop()
    assert code == 0, demo.text
    if status:
        assert_all_gone(demo, status)
    assert (workdir / "data" / "postgresql0" / "PG_VERSION").exists(), "--keep keeps the data dirs"
    assert (workdir / "logs").is_dir()
