"""`hatui demo` with its console, in a real pseudo-terminal, stopped the ways a person stops it:
the quit key, Ctrl-C, SIGTERM from another shell, and closing the terminal (SIGHUP). Each time,
every process the demo recorded is gone and no port it used still listens ("Everything it
starts, it stops")."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from servers import make_tempdir, remove_tree

from hatui.demo import pid_alive, start_time

pytestmark = pytest.mark.integration


class ConsoleDemo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, True)
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "44"}
        env.pop("NO_COLOR", None)
        def controlling_terminal() -> None:  # as a shell in a terminal window sets it up
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hatui", "demo", "--fast", "--port-base", "0", "--dir", str(workdir)],
            stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=controlling_terminal, close_fds=True)
        os.close(slave)
        self.screen = bytearray()
        self.closing = threading.Event()
        self.drainer = threading.Thread(target=self._drain, daemon=True)
        self.drainer.start()

    def _drain(self) -> None:
        # The console blocks if nobody reads the terminal. The master is closed here, by the
        # only thread that uses it: a close while another thread sits in read() would not
        # release the terminal, and the kernel would not hang it up.
        try:
            while not self.closing.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if not ready:
                    continue
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.screen = (self.screen + data)[-200_000:]
        finally:
            os.close(self.master)

    def status(self) -> dict | None:
        res = subprocess.run([sys.executable, "-m", "hatui", "demo", "--dir", str(self.workdir), "status"],
                             capture_output=True, text=True, timeout=60)
        try:
            return json.loads(res.stdout) if res.returncode == 0 else None
        except ValueError:
            return None

    def wait_running(self, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            nodes = (st or {}).get("nodes", [])
            if len(nodes) == 2 and all(n.get("daemon") == "running" and n.get("postgres_pid") for n in nodes) \
                    and any(role(n["api_port"]) == "primary" for n in nodes):
                return st
            assert self.proc.poll() is None, f"the demo exited early:\n{self.screen[-3000:].decode(errors='replace')}"
            time.sleep(0.5)
        raise AssertionError(f"the demo did not come up:\n{self.screen[-3000:].decode(errors='replace')}")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close_terminal(self) -> None:
        """What a terminal window does when it is closed: its side of the pty goes away, and
        the kernel sends SIGHUP (and SIGCONT) to the session it controlled."""
        self.closing.set()
        self.drainer.join(timeout=10)


def role(api_port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/patroni", timeout=2) as r:  # noqa: S310
            return json.loads(r.read()).get("role")
    except Exception:  # noqa: BLE001 - no answer yet
        return None


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ports_of(status: dict) -> set[int]:
    ports = {int(status["etcd"].rsplit(":", 1)[1])}
    for node in status["nodes"]:
        ports |= {int(node["api_port"]), int(node["pg_port"])}
    return ports


@pytest.mark.parametrize("how", ["quit key", "ctrl-c", "sigterm", "terminal closed"])
def test_demo_console_stops_everything(how: str) -> None:
    base = make_tempdir("hatui-demo-pty-")
    demo = ConsoleDemo(base / "demo")
    try:
        status = demo.wait_running()
        time.sleep(1.0)  # the console has drawn and handles keys
        if how == "quit key":
            demo.type(b"q")
        elif how == "ctrl-c":
            demo.type(b"\x03")
        elif how == "sigterm":
            demo.proc.send_signal(signal.SIGTERM)
        else:
            demo.close_terminal()  # the kernel sends SIGHUP to the session
        code = demo.proc.wait(timeout=120)
        status = demo.status() or status  # the last state the demo saved, if any
        recorded = [(int(p), int(s)) for pids in status["pids"].values() for p, s in pids]
        assert len(recorded) >= 5  # etcd, two daemons, two postmasters (and the guards)
        alive = [p for p, started in recorded if pid_alive(p) and start_time(p) == started]
        assert not alive, f"still running after {how}: {alive}"
        assert not [p for p in ports_of(status) if listening(p)]
        assert not (base / "demo" / "data").exists(), "the demo's data was not removed"
        # With its terminal gone, Textual may never return; the demo's reaper then cleans up
        # from its own thread and exits 1. Anything else must end normally.
        assert code == 0 or (how == "terminal closed" and code == 1), code
    finally:
        if demo.proc.poll() is None:  # a failed check: stop it the proper way, so it cleans up
            demo.proc.send_signal(signal.SIGTERM)
            try:
                demo.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                demo.proc.kill()
        remove_tree(base)
