"""The console's own probes: is etcd answering, does a member's PostgreSQL accept connections.

They run in the console's thread workers and never touch the screen; their answers, with the time
they were taken, feed `hatui.widgets.health`. Nothing here writes anything.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence

from .etcd.store import DCSError


def pg_accepts(host: str | None, port: int | None, timeout: float = 0.5) -> tuple[bool | None, str]:
    """(True, "") when a TCP connection to PostgreSQL's port succeeds; (False, why) when it is
    refused or times out; (None, "") when the member publishes no address.

    A TCP connect is enough to tell "down" from "up": a killed postmaster's port refuses at once,
    and the probe costs PostgreSQL no backend (the connection is closed before the startup packet).
    """
    if not host or not port:
        return None, ""
    if host.startswith("/"):  # a Unix socket directory in conn_url: nothing to probe over TCP
        return None, ""
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True, ""
    except TimeoutError:
        return False, "no answer"
    except OSError as exc:
        return False, exc.strerror or type(exc).__name__


class EtcdProber:
    """Asks etcd a tiny question every `interval` on its own client (own timeout, own socket), so
    a watch that has gone quiet cannot hide a stalled etcd. Reports `on_answer(monotonic)` or
    `on_error(message)` from its thread; `stop()` ends it within one timeout.
    """

    def __init__(
        self,
        hosts: Sequence[str],
        on_answer: Callable[[float], None],
        on_error: Callable[[str], None],
        interval: float,
        timeout: float,
    ) -> None:
        from .etcd.kv import EtcdHttp

        self.client = EtcdHttp(list(hosts), timeout=timeout)
        self.on_answer = on_answer
        self.on_error = on_error
        self.interval = interval
        self._stop = threading.Event()

    def probe_once(self) -> None:
        try:
            self.client.request("/maintenance/status", {}, "status")
        except DCSError as exc:
            self.on_error(str(exc))
            return
        self.on_answer(time.monotonic())

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.probe_once()
            except Exception as exc:  # noqa: BLE001 - a prober thread must survive anything
                self.on_error(f"probe failed: {exc}")
            self._stop.wait(max(0.05, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        self.client.close()
