"""sd_notify pieces without a daemon: environment parsing, and READY withheld while the REST API
does not answer (real sockets: a datagram receiver, a closed and a listening TCP port)."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

from hatui.config import NodeConfig
from hatui.daemon import nodereload
from hatui.daemon.sdnotify import Notifier, ServiceHooks, api_answers


def test_environment_is_read_and_removed() -> None:
    env = {"NOTIFY_SOCKET": "@hatui", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    n = Notifier(env)
    assert n.address == "\0hatui" and n.watchdog_interval == 15.0 and env == {}
    other = Notifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None  # the watchdog is another process's
    assert not Notifier({}).enabled and Notifier({}).send("READY=1") is False


def _daemon(port: int, role: str) -> SimpleNamespace:
    node = NodeConfig.from_dict({"scope": "s", "name": "n", "restapi": {"listen": f"127.0.0.1:{port}"}})
    return SimpleNamespace(on_cycle=None, view=SimpleNamespace(role=role), rt=SimpleNamespace(node=node))


def test_ready_waits_for_the_api_and_a_role(tmp_path) -> None:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "n.sock"))
    receiver.settimeout(2)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    decision = SimpleNamespace(message="no action. I am (n), the leader with the lock")
    try:
        daemon = _daemon(port, "primary")
        hooks = ServiceHooks(daemon, Notifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock")}))
        hooks.after_cycle(decision)  # port bound but not listening: no answer, no READY
        assert receiver.recv(4096).decode() == f"STATUS={decision.message}"
        assert not hooks.ready
        listener.listen()
        assert api_answers("127.0.0.1", port, tls=True)
        daemon.rt.node = NodeConfig.from_dict({"scope": "s", "name": "n", "restapi": {
            "listen": f"127.0.0.1:{port}", "certfile": "/x"}})
        daemon.view.role = "uninitialized"
        hooks.after_cycle(decision)  # answers now, but no role yet
        assert not hooks.ready
        daemon.view.role = "replica"
        hooks.after_cycle(decision)
        assert hooks.ready and receiver.recv(4096).decode() == "READY=1"
    finally:
        receiver.close()
        listener.close()


def test_reload_names_what_needs_a_restart() -> None:
    old = {"restapi": {"listen": "a:1"}, "postgresql": {"data_dir": "/d", "parameters": {"work_mem": "1MB"}}}
    new = {"restapi": {"listen": "a:2"}, "postgresql": {"data_dir": "/d", "parameters": {"work_mem": "2MB"}}}
    assert nodereload.needs_restart(old, new) == ["restapi"]
    assert nodereload.needs_restart(old, old) == []
