"""systemd's notify protocol against a running daemon (issue 20): the test plays the service manager
with its own unix datagram socket (NOTIFY_SOCKET), as systemd does for a Type=notify unit."""

from __future__ import annotations

import signal
import socket
import time

import pytest
from ruamel.yaml import YAML
from servers import make_tempdir, print_logs, remove_tree

from hatui.launcher import LocalCluster

pytestmark = pytest.mark.integration

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


class FakeManager:
    """The receiving end of NOTIFY_SOCKET: every datagram, parsed into its KEY=VALUE fields."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages: list[dict[str, str]] = []

    def receive(self, timeout: float) -> dict[str, str] | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append(fields)
        return fields

    def wait_for(self, key: str, timeout: float, value: str = "1") -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fields = self.receive(max(0.1, deadline - time.monotonic()))
            if fields is not None and fields.get(key) == value:
                return fields
        raise TimeoutError(f"no {key}={value} within {timeout}s; got {self.messages[-5:]}")


def test_ready_only_when_the_api_answers_then_watchdog_reload_and_stopping(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    base = make_tempdir("hatui-notify-")
    manager = FakeManager(str(base / "notify.sock"))
    cluster = LocalCluster(base, 1, dcs=dict(FAST))
    node = cluster.nodes[0]
    try:
        cluster.write_configs()
        cluster.start_etcd()
        monkeypatch.setenv("NOTIFY_SOCKET", str(base / "notify.sock"))
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # a ping every second
        cluster.start_node(0)
        monkeypatch.delenv("NOTIFY_SOCKET")
        monkeypatch.delenv("WATCHDOG_USEC")
        ready = manager.wait_for("READY", 120)
        # The moment READY arrives, the REST API answers and says what the node is.
        status, body = node.rest("/patroni")
        assert status == 200 and body["role"] == "primary" and body["state"] == "running"
        assert "STATUS" in ready
        before = manager.messages[:-1]
        assert all("READY" not in m for m in before)
        manager.wait_for("WATCHDOG", 10)
        manager.wait_for("WATCHDOG", 10)  # repeatedly, not once

        # SIGHUP: the node file is re-read; a parameter applies at once, a fencing change needs a restart.
        yaml = YAML()
        data = yaml.load(node.config_path.read_text())
        data["postgresql"]["parameters"]["work_mem"] = "7MB"
        data["fencing"] = {"safety_margin": 4}
        with open(node.config_path, "w") as f:
            yaml.dump(data, f)
        node.daemon.signal(signal.SIGHUP)
        reloading = manager.wait_for("RELOADING", 20)
        assert int(reloading["MONOTONIC_USEC"]) > 0
        after = manager.wait_for("READY", 30)
        assert after["STATUS"].startswith("reloaded")
        cluster.wait_for(lambda: node.connect().execute("SHOW work_mem").fetchone()[0] == "7MB", 20,
                         "work_mem applied")
        log_text = node.log_path.read_text()
        assert "take effect only after a restart of the daemon: fencing" in log_text
        assert node.daemon.alive

        node.daemon.signal(signal.SIGTERM)
        manager.wait_for("STOPPING", 20)
        node.daemon.popen.wait(60)
    except BaseException:
        print_logs(cluster.nodes)
        raise
    finally:
        cluster.stop()
        manager.sock.close()
        rep = getattr(request.node, "_hatui_rep_call", None)
        if rep is None or not rep.failed:
            remove_tree(base)
