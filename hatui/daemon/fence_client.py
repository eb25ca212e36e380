"""Self-fencing, the daemon's side: `FenceClient`, the daemon's handle on its guard process.

The guard itself, its pipe protocol and the reasons for it are in fence.py (read its docstring
first); this module holds what runs inside the daemon: building the guard's config from the node
config, starting it (the native guard of fence_native.py, else `python -m hatui.daemon.fence`),
and telling it about every lease refresh, disarm and clean exit. `hatui.daemon.fence` re-exports
`FenceClient` and `FencedDaemon`, so callers may import them from either module.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import subprocess

    from ..etcd.store import ClusterStore
    from .node import NodeRuntime
    from .postgres import Postgres


class FencedDaemon(Protocol):
    """What the guard's set-up reads of the daemon (`loop.Daemon` implements it)."""

    name: str
    rt: NodeRuntime
    pg: Postgres
    store: ClusterStore


log = logging.getLogger("hatui.fence")


# ------------------------------------------------------------------------------- daemon side


class FenceClient:
    """The daemon's handle on its guard. Every method is a no-op when fencing is disabled, and
    none of them ever blocks the HA loop (the pipe is non-blocking; a lost beat only makes the
    guard fire earlier, which is the safe direction)."""

    def __init__(self, config: dict[str, Any] | None, log_file: str | None = None) -> None:
        self.config = config  # None: fencing disabled
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self.armed = False
        self.lease: int | None = None
        self._last_beat: dict[str, Any] | None = None
        # The lease keeper beats from its own thread (lease.py): arming, beating and disarming
        # must not interleave, or a late keepalive could re-arm a guard the loop just disarmed.
        self._mutex = threading.RLock()

    @property
    def enabled(self) -> bool:
        return self.config is not None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @classmethod
    def for_daemon(cls, daemon: FencedDaemon) -> "FenceClient":
        """Build (not start) the guard for a loop.Daemon from its node config."""
        node = daemon.rt.node
        fencing = node.fencing
        if not fencing.enabled:
            log.info("self-fencing is disabled (fencing.enabled: false)")
            return cls(None)
        etcd_auth = dict(daemon.rt.etcd_auth)
        config: dict[str, Any] = {
            "op": "config",
            "daemon_pid": os.getpid(),
            "name": daemon.name,
            "data_dir": os.path.abspath(daemon.pg.data_dir),
            "safety_margin": int(fencing.safety_margin),
            "leader_key": daemon.store.paths.leader,
            "member_key": daemon.store.paths.member(daemon.name),  # goes with the leader key (release_leader)
            "events_prefix": daemon.store.paths.events,  # the guard tells what it did (events.py)
            "etcd": {"hosts": list(daemon.rt.etcd_hosts), "protocol": node.etcd.protocol,
                     "username": etcd_auth.get("username"), "password": etcd_auth.get("password")},
            "watchdog": _watchdog_config(node),
        }
        return cls(config, _daemon_log_file())

    def start(self) -> None:
        if not self.enabled or (self.proc is not None and self.proc.poll() is None):
            return
        import subprocess  # here, not at the top: the guard process itself never needs it

        from .fence_native import guard_binary

        native = guard_binary()  # the C guard (fence_guard.c), < 1 MB; None: this module
        args = [sys.executable, "-m", "hatui.daemon.fence", "--daemon-pid", str(os.getpid())]
        if native:
            # argv[0] names it as the Python guard does, so `ps` and the tests recognise it.
            args = ["hatui.daemon.fence", "--daemon-pid", str(os.getpid()), "--python", sys.executable]
        if self.log_file:
            args += ["--log-file", self.log_file]
        # Own session: a Ctrl-C or a kill of the daemon's process group must not take the guard
        # with it. stdout goes nowhere; stderr is the daemon's (its log when run by the launcher).
        self.proc = subprocess.Popen(args, executable=native, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     start_new_session=True, close_fds=True)
        assert self.proc.stdin is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        self._send(self.config or {}, restart=False)
        if self.proc is None:
            return  # it died at once; the error is logged, the next beat tries again
        log.info("fencing guard started (pid %d): PostgreSQL is stopped if the lease is not refreshed for "
                 "ttl - %d seconds while I am the leader, or if this daemon dies",
                 self.proc.pid, self.config["safety_margin"] if self.config else 0)
        if self._last_beat is not None and self.armed:
            self._send(self._last_beat, restart=False)

    def beat(self, refreshed_at: float, ttl: int, lease: int | None) -> None:
        """The leader refreshed its lease; `refreshed_at` is time.monotonic() taken before the
        keepalive was sent (etcd counts the TTL from when it got it, which is later)."""
        if not self.enabled:
            return
        with self._mutex:
            if self.proc is None:
                self.start()
            if not self.armed:
                log.info("fencing guard armed: I am the leader")
            self.armed = True
            self.lease = lease
            if self._last_beat is not None and self._last_beat.get("lease") == lease:
                refreshed_at = max(refreshed_at, float(self._last_beat["t"]))  # never move the deadline back
            self._last_beat = {"op": "beat", "t": refreshed_at, "ttl": int(ttl), "lease": lease}
            self._send(self._last_beat)

    def refresh(self, refreshed_at: float, ttl: int, lease: int | None, paused: bool = False) -> None:
        """A keepalive was acknowledged (lease keeper thread): move an armed guard's deadline on.
        Never arms it: only the HA loop decides that we are the leader."""
        if not self.enabled or paused:
            return
        with self._mutex:
            if self.armed and self.lease == lease:
                self.beat(refreshed_at, ttl, lease)

    def deadline_passed(self, now: float) -> bool:
        """The armed guard's deadline (last beat + ttl - margin, as Guard.handle computes it) is
        past: it has stopped PostgreSQL, and if this daemon was frozen, released the leader key
        and revoked the lease. A keepalive answer read after that proves nothing (lease.py)."""
        with self._mutex:
            beat = self._last_beat
            if not (self.enabled and self.armed and beat):
                return False
            ttl = int(beat["ttl"])
            margin = float((self.config or {}).get("safety_margin", 5))
            margin = ttl / 2 if margin < 0 or margin >= ttl else margin
            return now >= float(beat["t"]) + ttl - margin

    def disarm(self) -> None:
        if not self.enabled:
            return
        with self._mutex:
            if not self.armed:
                return
            self.armed = False
            self._last_beat = None
            log.info("fencing guard disarmed")
            self._send({"op": "disarm"})

    def after_cycle(self, lock_refreshed: bool, primary: bool, paused: bool) -> None:
        """Disarm when nothing needs guarding: paused, or neither the lock nor a primary.

        A primary whose lock was not refreshed stays guarded: the loop is about to demote it,
        and if it fails to, the guard stops it before the lease can expire.
        """
        if paused or (not lock_refreshed and not primary):
            self.disarm()

    def close(self) -> None:
        """Clean daemon shutdown: the guard exits without touching PostgreSQL or etcd."""
        if self.proc is None:
            return
        try:
            self._write({"op": "exit"})
        except OSError:
            pass
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass
        import subprocess

        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            log.warning("fencing guard (pid %d) did not exit; leaving it", self.proc.pid)
        self.proc = None

    def _write(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        os.write(self.proc.stdin.fileno(), (json.dumps(message) + "\n").encode())

    def _send(self, message: dict[str, Any], restart: bool = True) -> None:
        if self.proc is None:
            return
        try:
            self._write(message)
        except BlockingIOError:
            # The guard is not reading (frozen?): dropping a beat only makes it fire sooner.
            log.warning("fencing guard (pid %d) is not reading its pipe; message dropped", self.proc.pid)
        except (BrokenPipeError, OSError) as exc:
            code = self.proc.poll()
            log.error("fencing guard (pid %d) is gone (exit code %s, %s)%s", self.proc.pid, code, exc,
                      "; starting a new one" if restart else "")
            self.proc = None
            if restart:
                self.start()


def _daemon_log_file() -> str | None:
    for handler in logging.getLogger().handlers:
        name = getattr(handler, "baseFilename", None)
        if name:
            return str(name)
    return None


def _watchdog_config(node: Any) -> dict[str, Any] | None:
    """The watchdog is used only when the node YAML has a `watchdog:` section that is not off and
    the device exists: a misconfigured watchdog reboots the machine, so it is never implied."""
    if "watchdog" not in (node.raw or {}):
        return None
    wd = node.watchdog
    if wd.mode == "off":
        return None
    if not os.path.exists(wd.device):
        level = logging.ERROR if wd.mode == "required" else logging.INFO
        log.log(level, "watchdog device %s does not exist; self-fencing runs without it", wd.device)
        return None
    return {"device": wd.device, "mode": wd.mode}
