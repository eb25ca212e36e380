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
This module is the guard process; the daemon's side (`FenceClient`) is in fence_client.py.
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
import time
from typing import Any

# The daemon side lives in fence_client.py; re-exported so `from hatui.daemon.fence import
# FenceClient` keeps working. It imports only the standard library, as the guard does.
from .fence_client import FenceClient, FencedDaemon  # noqa: F401

log = logging.getLogger("hatui.fence")

# Linux watchdog ioctls (linux/watchdog.h): _IOWR('W', 6, int) and _IOR('W', 5, int).
WDIOC_SETTIMEOUT = 0xC0045706
WDIOC_KEEPALIVE = 0x80045705


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
