"""systemd integration: Type=notify readiness, STOPPING/RELOADING, the service watchdog, SIGHUP.

The protocol is one datagram per message on the unix socket named by NOTIFY_SOCKET (sd_notify(3));
no library is needed. What hatui tells the service manager:

  READY=1       once the REST API answers and the node knows its role (after its first HA cycles:
                bootstrap, clone or start done). A unit waiting on it (`After=`) therefore starts
                once the node is really part of the cluster.
  STATUS=...    the HA loop's latest decision, when it changes (`systemctl status` shows it).
  RELOADING=1   SIGHUP (or POST /reload) is re-reading the node file; READY=1 again when done.
  STOPPING=1    SIGTERM/SIGINT: the daemon is stopping PostgreSQL and releasing the lock.
  WATCHDOG=1    every WATCHDOG_USEC/2 while the HA loop makes progress (a cycle ended, or a long
                operation keeps the lease alive within ttl). A wedged loop stops the pings and
                systemd restarts the daemon; the fencing guard, a separate process, still fences.

Without NOTIFY_SOCKET every call is a no-op. NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are removed
from the environment so PostgreSQL and the guard never talk to the service manager in our name.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import queue

    from ..config import DynamicConfig
    from .member import NodeView
    from .node import NodeRuntime
    from .requests import Request

log = logging.getLogger("hatui.service")


class ServicedDaemon(Protocol):
    """What the service-manager hooks use of the daemon (`loop.Daemon` implements it; its
    lease_refreshed_at is read too, when there)."""

    view: NodeView
    rt: NodeRuntime
    dynamic: DynamicConfig
    requests: queue.Queue[Request]
    wake: threading.Event
    on_cycle: Callable[[Any], None] | None

    def request_stop(self, *_: object) -> None: ...

# Roles a node has once it is part of the cluster (not "uninitialized" while it waits or clones).
_KNOWN_ROLES = frozenset({"primary", "master", "replica", "standby_leader", "standby-leader", "promoted"})


class Notifier:
    """Sends sd_notify messages; every method is a no-op without NOTIFY_SOCKET."""

    def __init__(self, environ: Any = None) -> None:
        env = os.environ if environ is None else environ
        address = env.pop("NOTIFY_SOCKET", None) or None
        usec = env.pop("WATCHDOG_USEC", None)
        pid = env.pop("WATCHDOG_PID", None)
        self.address: str | None = None
        if address:
            # '@' is the abstract namespace (a leading NUL byte), as sd_notify(3) reads it.
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval: float | None = None
        try:
            usec_value = int(usec) if usec else 0
        except ValueError:
            usec_value = 0
        if usec_value > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = usec_value / 2_000_000  # half the timeout, as systemd advises
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            log.warning("could not notify the service manager (%s): %s", self.address.lstrip("\0"), exc)
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def api_answers(host: str, port: int, tls: bool, timeout: float = 2.0) -> bool:
    """Does our REST API answer? Plain HTTP: any response to GET /liveness. TLS (which may want a
    client certificate we do not have): the listening socket accepts a connection."""
    if host in ("", "*", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            if tls:
                return True
            s.sendall(f"GET /liveness HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            return s.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


class ServiceHooks:
    """Ties a Notifier to a running loop.Daemon: readiness, status, watchdog, stop and reload."""

    def __init__(self, daemon: ServicedDaemon, notifier: Notifier) -> None:
        self.daemon = daemon
        self.notifier = notifier
        self.ready = False
        self.status = ""
        self.last_progress = time.monotonic()
        self._stop = threading.Event()
        self._previous_hook = daemon.on_cycle
        daemon.on_cycle = self.after_cycle

    # ---- readiness and status -----------------------------------------------------------------
    def after_cycle(self, decision: Any) -> None:
        self.last_progress = time.monotonic()
        if self._previous_hook:
            self._previous_hook(decision)
        if not self.notifier.enabled:
            return
        message = str(getattr(decision, "message", "") or "")[:200]
        fields = []
        if message and message != self.status:
            self.status = message
            fields.append(f"STATUS={message}")
        if not self.ready and self.daemon.view.role in _KNOWN_ROLES and self._api_answers():
            self.ready = True
            fields.insert(0, "READY=1")
            log.info("told the service manager: ready (REST API answers, role %s)", self.daemon.view.role)
        if fields:
            self.notifier.send(*fields)

    def _api_answers(self) -> bool:
        node = self.daemon.rt.node
        host, port = node.restapi_listen
        return api_answers(host, port, node.restapi.tls)

    # ---- stop and reload ----------------------------------------------------------------------
    def stopping(self, *_: object) -> None:
        self.notifier.send("STOPPING=1", "STATUS=stopping")
        self._stop.set()
        self.daemon.request_stop()

    def reload(self, *_: object) -> None:
        """SIGHUP: the HA thread re-reads the node file (as POST /reload does); this returns at once
        (a signal handler must not wait), a helper thread says READY again when it is done."""
        from .requests import Request

        req = Request("reload", {"reason": "SIGHUP"})
        self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={_monotonic_usec()}", "STATUS=reloading the node file")
        log.info("SIGHUP: reloading the node file")
        self.daemon.requests.put(req)
        self.daemon.wake.set()

        def finish() -> None:
            req.done.wait()
            self.notifier.send("READY=1", f"STATUS=reloaded: {req.text}")

        threading.Thread(target=finish, name="reload-notify", daemon=True).start()

    # ---- watchdog -----------------------------------------------------------------------------
    def start_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        if not interval:
            return
        log.info("service watchdog: pinging every %.1fs while the HA loop makes progress", interval)
        threading.Thread(target=self._watchdog, args=(interval,), name="sd-watchdog", daemon=True).start()

    def _watchdog(self, interval: float) -> None:
        warned = False
        while not self._stop.wait(interval):
            dynamic = self.daemon.dynamic
            # A long operation (clone, restart) keeps the lease alive from a helper thread: progress too.
            progress = max(self.last_progress, float(getattr(self.daemon, "lease_refreshed_at", 0.0) or 0.0))
            stalled = time.monotonic() - progress
            if stalled <= max(float(dynamic.ttl), float(dynamic.loop_wait) + 2 * float(dynamic.retry_timeout)):
                self.notifier.send("WATCHDOG=1")
                warned = False
            elif not warned:
                log.error("service watchdog: no HA cycle for %.0fs; not pinging, the service manager will act",
                          stalled)
                warned = True


def install(daemon: ServicedDaemon) -> ServiceHooks:
    """Signal handlers (SIGTERM/SIGINT: stop, SIGHUP: reload) and the notify hooks, for `hatui daemon`."""
    import signal

    hooks = ServiceHooks(daemon, Notifier())
    signal.signal(signal.SIGTERM, hooks.stopping)
    signal.signal(signal.SIGINT, hooks.stopping)
    signal.signal(signal.SIGHUP, hooks.reload)
    hooks.start_watchdog()
    return hooks
