"""Self-fencing: a small guard process that keeps a leaderless primary from taking writes.

Why: in Patroni, killing or freezing the leader's daemon leaves its PostgreSQL accepting writes
while a replica is promoted once the lease expires (the talk's `splitbrain` table). A hardware
watchdog closes that window by rebooting the machine; most machines have none. The guard closes
it in software: it is a separate process (it survives `kill -9` and SIGSTOP of the daemon) that
the daemon tells, after every successful lease refresh while it is the leader, "the lease was
refreshed at monotonic time T and lives TTL seconds". If no such beat arrives for
`ttl - safety_margin` seconds, or the daemon dies while leader, the guard stops the local
PostgreSQL at once (immediate shutdown), so the old primary is down *before* the lease can expire
and another member can be promoted. When the daemon has died (not merely stalled) and PostgreSQL
is down, the guard also deletes the leader key (compare on value and lease) and revokes the dead
daemon's lease, so a replica takes over in seconds instead of waiting out the TTL: safe, because
the old primary can no longer accept a write. It does the same when it stopped PostgreSQL for a
daemon that is frozen (SIGSTOP: process state T), instead of leaving the key until the lease
expires `safety_margin` seconds later; the daemon, once resumed, finds its lease revoked (or its
keepalive answered past the guard's deadline, lease.py) and rejoins as a replica.

Protocol: JSON lines on the guard's stdin (a pipe; EOF = the daemon is gone):
  {"op": "config", ...}                      once, first: daemon pid, data dir, etcd, leader key
  {"op": "beat", "t": T, "ttl": S, "lease": ID}  armed: deadline = T + S - safety_margin
  {"op": "disarm"}                           not leader (or paused): never fire
  {"op": "exit"}                             clean daemon shutdown: exit without acting

`time.monotonic()` is CLOCK_MONOTONIC on Linux, shared by every process, so T measured by the
daemon *before* it sent the keepalive is a conservative start of the lease on the guard's clock.

The guard (`python -m hatui.daemon.fence`) imports only the standard library while it waits
(about 12 MB resident); hatui.etcd.kv is imported only to release the key after a death.
An optional Linux watchdog device is opened while armed and fed on every beat, so a guard that
is itself frozen still cannot leave a writable primary behind.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import sys
import threading
import time
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

# Linux watchdog ioctls (linux/watchdog.h): _IOWR('W', 6, int) and _IOR('W', 5, int).
WDIOC_SETTIMEOUT = 0xC0045706
WDIOC_KEEPALIVE = 0x80045705


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


# ------------------------------------------------------------------------------- guard side


class Guard:
    """The state machine of the guard process: idle -> armed -> (fired) -> idle/exit."""

    def __init__(self, daemon_pid: int) -> None:
        self.daemon_pid = daemon_pid
        self.config: dict[str, Any] = {}
        self.state = "idle"  # idle | armed | fired
        self.deadline = float("inf")
        self.ttl = 0
        self.lease: int | None = None
        self.watchdog: int | None = None  # fd
        self.exit_requested = False
        self.fd: int | None = None  # the daemon's pipe (run_guard), to see whether a message waits

    # ---- messages ---------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "config":
            self.config = message
        elif op == "beat":
            self.ttl = int(message.get("ttl") or 0)
            self.lease = message.get("lease") or self.lease
            margin = self.margin(self.ttl)
            self.deadline = float(message["t"]) + self.ttl - margin
            if self.state == "fired":
                log.info("fencing guard: the daemon (pid %d) refreshed the lease again; re-armed", self.daemon_pid)
            self.state = "armed"
            self._watchdog_feed()
        elif op == "disarm":
            self.state = "idle"
            self.deadline = float("inf")
            self._watchdog_close()
        elif op == "exit":
            self.exit_requested = True

    def margin(self, ttl: int) -> float:
        margin = float(self.config.get("safety_margin", 5))
        # A margin that eats the whole TTL would fire on every beat; Patroni's -1 means ttl/2.
        return ttl / 2 if margin < 0 or margin >= ttl else margin

    def hard_deadline(self) -> float:
        """The latest moment PostgreSQL may still run: half the margin before the lease can expire."""
        return self.deadline + self.margin(self.ttl) / 2

    def timeout(self) -> float | None:
        if self.state != "armed":
            return None
        return max(0.0, self.deadline - time.monotonic())

    def check_deadline(self) -> None:
        if self.state == "armed" and time.monotonic() >= self.deadline:
            late = time.monotonic() - self.deadline
            # Past the hard deadline (this machine was frozen?) there is no time for a fast shutdown.
            stopped = self.stop_postgres(fast_for=max(0.0, self.hard_deadline() - time.monotonic()))
            log.warning("fencing guard: no lease refresh from the daemon (pid %d) for %gs (ttl %d - safety_margin "
                        "%g) while it is the leader: PostgreSQL must not take writes once another member may be "
                        "promoted",
                        self.daemon_pid, self.ttl - self.margin(self.ttl), self.ttl, self.margin(self.ttl))
            if late > 1:
                log.warning("fencing guard: it acted %.1fs after its deadline (was this machine or the guard frozen?)",
                            late)
            self.state = "fired"
            self.deadline = float("inf")
            if stopped:
                log.warning("fencing guard stopped PostgreSQL: the daemon (pid %d) stalled while leader",
                            self.daemon_pid)
                self._watchdog_close()
                if self.daemon_frozen():
                    log.warning("fencing guard: the daemon (pid %d) is frozen: releasing its leader key now, not "
                                "when its lease runs out", self.daemon_pid)
                    self.release_leader(frozen=True)
                else:
                    log.info("fencing guard: the daemon (pid %d) is running (slow, not frozen): it decides about "
                             "its lease itself", self.daemon_pid)

    def daemon_gone(self) -> None:
        """EOF on the pipe without an `exit`: the daemon died."""
        if self.exit_requested:
            self._watchdog_close()
            return
        if self.state == "idle":
            log.info("fencing guard: the daemon (pid %d) exited while not leader; nothing to do", self.daemon_pid)
            return
        if self.state == "armed":
            log.warning("fencing guard: the daemon (pid %d) died while leader; stopping PostgreSQL", self.daemon_pid)
            # The leader key stays until PostgreSQL is down, so nobody can be promoted before
            # the lease expires: a fast shutdown may use the time up to half the margin before it.
            if not self.stop_postgres(fast_for=min(10.0, self.hard_deadline() - time.monotonic())):
                log.error("fencing guard could not stop PostgreSQL; the leader key is left to expire")
                return
            log.warning("fencing guard stopped PostgreSQL: the daemon died (pid %d) while leader", self.daemon_pid)
        elif not self.postgres_pid():
            log.warning("fencing guard: the daemon (pid %d) died after a stall; PostgreSQL is already stopped",
                        self.daemon_pid)
        else:
            # Fired, then someone started PostgreSQL again (the daemon, after SIGCONT): stop it.
            if not self.stop_postgres(fast_for=min(10.0, self.hard_deadline() - time.monotonic())):
                return
        self._watchdog_close()
        self.release_leader()

    # ---- PostgreSQL -------------------------------------------------------------------------
    def postgres_pid(self) -> int | None:
        data_dir = self.config.get("data_dir")
        if not data_dir:
            return None
        try:
            with open(os.path.join(data_dir, "postmaster.pid")) as f:
                pid = int(f.readline().strip() or 0)
        except (OSError, ValueError):
            return None
        return pid if pid > 0 and _is_postmaster_of(pid, data_dir) else None

    def stop_postgres(self, fast_for: float = 0.0) -> bool:
        """Stop PostgreSQL: a fast shutdown for up to `fast_for` seconds, then immediate.

        Both stop writes at once: a fast shutdown ends every session and refuses new ones right
        away, and it also streams the shutdown checkpoint to the replicas before exiting, so a
        replica promoted next has every commit the client saw acknowledged. When there is no
        time left (fast_for 0) it is immediate: what `pg_ctl stop -m immediate` does, SIGQUIT to
        the postmaster. The signals are sent directly: no fork, no user switch, no binary to look
        up at the worst moment. If even that hangs, SIGKILL the postmaster and every process
        working in the data dir (a backend outliving its postmaster could still commit)."""
        pid = self.postgres_pid()
        if pid is None:
            log.info("fencing guard: PostgreSQL is not running")
            return True
        data_dir = self.config["data_dir"]

        def gone_within(seconds: float) -> bool:
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                if not _is_postmaster_of(pid, data_dir) and not _data_dir_processes(data_dir):
                    return True
                time.sleep(0.05)
            return False

        for sig, seconds, mode in ((signal.SIGINT, fast_for, "fast"), (signal.SIGQUIT, 10.0, "immediate")):
            if seconds <= 0:
                continue
            try:
                os.kill(pid, sig)  # first, then the log line: every millisecond may be a write
            except ProcessLookupError:
                return gone_within(2.0)
            except PermissionError as exc:
                log.error("fencing guard cannot signal the postmaster (pid %d): %s", pid, exc)
                return False
            log.warning("fencing guard: %s shutdown of PostgreSQL (postmaster pid %d)", mode, pid)
            if gone_within(seconds):
                return True
        log.error("fencing guard: the postmaster (pid %d) ignored the immediate shutdown; killing it", pid)
        for victim in [pid, *_data_dir_processes(data_dir)]:
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass
        return gone_within(2.0)

    def daemon_frozen(self) -> bool:
        """The daemon is stopped (SIGSTOP, a debugger) and nothing it wrote before is unread.

        Only then may the guard give its key away early: a frozen daemon acts on nothing until it
        resumes, and then its keepalive fails (the lease is revoked) or comes back later than the
        guard's deadline, which makes it take a new lease (lease.py) and decide afresh. A daemon
        that is merely slow keeps its key until the lease runs out, as before."""
        if self.fd is not None and select.select([self.fd], [], [], 0)[0]:
            return False  # a beat (or EOF) is waiting: handle it first
        return _is_stopped(self.daemon_pid)

    # ---- etcd -------------------------------------------------------------------------------
    def release_leader(self, frozen: bool = False) -> None:
        """Delete the leader key if it still names us on the dead daemon's lease, then revoke the
        lease (our member key goes too: nobody runs that member now). Retried until the lease
        would have expired on its own anyway. `frozen`: the daemon is stopped, not dead; each
        attempt first checks that it still is (once it runs again, the key is its business)."""
        name, key, lease = self.config.get("name"), self.config.get("leader_key"), self.lease
        etcd_cfg = self.config.get("etcd") or {}
        if not (name and key and etcd_cfg.get("hosts")):
            return
        from ..etcd.kv import EtcdHttp, _b64

        etcd = EtcdHttp(etcd_cfg["hosts"], timeout=2.0, protocol=etcd_cfg.get("protocol"),
                        username=etcd_cfg.get("username"), password=etcd_cfg.get("password"))
        compare = [{"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(name)}]
        if lease:
            compare.append({"key": _b64(key), "target": "LEASE", "result": "EQUAL", "lease": str(lease)})
        # The member key goes in the same transaction: a replica woken by the leader key's
        # deletion must not find the frozen member's key and wait for its REST API (which accepts
        # the connection and never answers) before it may take over; the revoke comes after.
        success = [{"request_delete_range": {"key": _b64(k)}} for k in (key, self.config.get("member_key")) if k]
        body = {"compare": compare, "success": success, "failure": []}
        give_up = time.monotonic() + max(5, self.ttl or 30)
        while True:
            if frozen and not _is_stopped(self.daemon_pid):
                log.info("fencing guard: the daemon (pid %d) runs again; the leader key is left to it", self.daemon_pid)
                return
            try:
                result = etcd.request("/kv/txn", body, "leader key release")
                if result.get("succeeded"):
                    log.warning("fencing guard released the leader key %s of %s (PostgreSQL is stopped): a replica "
                                "can take over now", key, name)
                    what = "is frozen" if frozen else "died"
                    self._record(etcd, "fencing", f"the daemon of {name} {what} while leader: its fencing guard "
                                 "stopped PostgreSQL and released the leader key, so a replica can take over",
                                 action="stopped postgres, released leader key")
                else:
                    log.info("fencing guard: the leader key no longer names %s on lease %s; left alone", name, lease)
                if lease:
                    etcd.request("/lease/revoke", {"ID": str(lease)}, "lease revoke")
                    log.info("fencing guard revoked lease %x of the %s daemon", int(lease),
                             "frozen" if frozen else "dead")
                return
            except Exception as exc:  # noqa: BLE001 - etcd errors of any kind: retry, then give up
                if "not found" in str(exc).lower():
                    return  # the lease expired meanwhile: nothing left to release
                if time.monotonic() >= give_up:
                    log.error("fencing guard could not release the leader key: %s", exc)
                    return
                time.sleep(0.5)

    def _record(self, etcd: Any, kind: str, message: str, **facts: Any) -> None:
        """One event in the cluster's timeline (best effort: the guard's job is done already)."""
        prefix = self.config.get("events_prefix")
        if not prefix:
            return
        from ..events import make_event

        ev = make_event(kind, self.config.get("name"), message, **facts)
        try:
            etcd.put(prefix + ev.id, ev.to_value())
        except Exception as exc:  # noqa: BLE001 - only the record is lost
            log.info("fencing guard could not record the event: %s", exc)

    # ---- watchdog ---------------------------------------------------------------------------
    def _watchdog_feed(self) -> None:
        wd = self.config.get("watchdog")
        if not wd:
            return
        if self.watchdog is None:
            try:
                self.watchdog = os.open(wd["device"], os.O_WRONLY)
            except OSError as exc:
                log.error("fencing guard cannot open watchdog %s: %s", wd["device"], exc)
                self.config["watchdog"] = None
                return
            # Between the guard's own deadline and the lease expiry: the guard gets the first
            # chance; a machine where even the guard is frozen is reset before a promotion.
            timeout = max(1, int(self.ttl - self.margin(self.ttl) / 2))
            try:
                import fcntl
                import struct

                fcntl.ioctl(self.watchdog, WDIOC_SETTIMEOUT, struct.pack("i", timeout))
            except OSError as exc:
                log.warning("fencing guard could not set the watchdog timeout to %ds: %s", timeout, exc)
            log.info("fencing guard: watchdog %s activated (timeout %ds)", wd["device"], timeout)
        try:
            os.write(self.watchdog, b"1")
        except OSError as exc:
            log.error("fencing guard could not feed the watchdog: %s", exc)

    def _watchdog_close(self) -> None:
        if self.watchdog is None:
            return
        try:
            os.write(self.watchdog, b"V")  # the magic close: disarm instead of a reset
            os.close(self.watchdog)
            log.info("fencing guard: watchdog disabled")
        except OSError as exc:
            log.error("fencing guard could not disable the watchdog: %s", exc)
        self.watchdog = None


def _is_postmaster_of(pid: int, data_dir: str) -> bool:
    """pid is alive (not a zombie), named postgres, and works in data_dir (pids get reused)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        return False
    if comm not in ("postgres", "postmaster") or stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) == os.path.realpath(data_dir)
    except PermissionError:
        return True
    except OSError:
        return False


def _is_stopped(pid: int) -> bool:
    """pid is stopped by a signal (SIGSTOP, SIGTSTP) or a tracer: state T or t in /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


def _data_dir_processes(data_dir: str) -> list[int]:
    target = os.path.realpath(data_dir)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.path.realpath(os.readlink(f"/proc/{entry}/cwd")) == target:
                with open(f"/proc/{entry}/stat") as f:
                    if f.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X"):
                        pids.append(int(entry))
        except OSError:
            continue
    return pids


def run_guard(daemon_pid: int, fd: int = 0) -> int:
    """The guard's main loop: read messages from fd until EOF, firing on deadlines."""
    guard = Guard(daemon_pid)
    guard.fd = fd
    buffer = b""
    while True:
        ready, _, _ = select.select([fd], [], [], guard.timeout())
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                guard.daemon_gone()
                return 0
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    message = json.loads(line)
                except ValueError:
                    log.error("fencing guard: ignoring a malformed message")
                    continue
                if isinstance(message, dict):
                    guard.handle(message)
        guard.check_deadline()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hatui.daemon.fence",
                                     description="hatui's self-fencing guard (started by the daemon)")
    parser.add_argument("--daemon-pid", type=int, required=True)
    parser.add_argument("--log-file")
    parser.add_argument("--release", action="store_true",
                        help="only release the dead daemon's leader key (run by the native guard)")
    args = parser.parse_args(argv)
    handler: logging.Handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # The guard outlives the daemon on purpose: terminal and hang-up signals must not stop it.
    # A SIGTERM aimed at the whole service (the daemon gets it too) is answered by the daemon's
    # clean `exit`, so the guard only notes it.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: log.info("fencing guard: SIGTERM ignored; it exits with the daemon"))
    if args.release:
        return release_from_native(args.daemon_pid)
    try:
        return run_guard(args.daemon_pid)
    except KeyboardInterrupt:
        return 1


def release_from_native(daemon_pid: int) -> int:
    """The native guard's one Python step: its config line, then {"lease", "ttl", "frozen"}, on stdin.

    The guard starts this while PostgreSQL is still stopping, so the imports happen first, then
    the wait for the state line; a pipe closed without one means: nothing to release."""
    from .. import events  # noqa: F401 - imported now, while the guard waits for PostgreSQL
    from ..etcd import kv  # noqa: F401

    guard = Guard(daemon_pid)
    lines = sys.stdin.read().splitlines()
    if len(lines) < 2:
        return 0  # the guard decided not to release (a slow daemon, PostgreSQL would not stop, a beat came)
    try:
        guard.config = json.loads(lines[0])
        state = json.loads(lines[1])
    except (IndexError, ValueError):
        log.error("fencing guard: the leader key release got no usable state")
        return 1
    guard.lease = int(state.get("lease") or 0) or None
    guard.ttl = int(state.get("ttl") or 0)
    guard.release_leader(frozen=bool(state.get("frozen")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
