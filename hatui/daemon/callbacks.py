"""User scripts run on PostgreSQL events, as Patroni runs them (`postgresql.callbacks`, `pre_promote`, `before_stop`).

- `on_start`, `on_stop`, `on_restart`, `on_reload`, `on_role_change`: the command (split like a
  shell would, no shell) gets three more arguments, Patroni's: the action, the role (`primary` or
  `replica`) and the scope, and the daemon's environment. They run aside, in their own process
  group, and the HA loop never waits for them. A newer event replaces a running one: as in
  Patroni, one executor serves on_start/on_stop/on_restart/on_role_change (a role change kills a
  still-running on_start, so the last event wins) and on_reload has its own. Each run is killed
  after `timeout` seconds; its exit code and the end of its output are logged.
- `pre_promote` runs just before a promotion, with no arguments; a non-zero exit (or a timeout)
  cancels the promotion, and the caller gives the leader lock back. `before_stop` runs before
  PostgreSQL is stopped. Both block their caller (the HA loop keeps its lease meanwhile, see
  `Daemon.lease_kept`), bounded by the timeout.

Every finished run goes through `CallbackRunner.finished`, so other parts (the event timeline)
can record runs by adding a listener to `CallbackRunner.listeners`.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger("hatui.callbacks")

ACTIONS = ("on_start", "on_stop", "on_restart", "on_reload", "on_role_change")
DEFAULT_TIMEOUT = 60.0
_OUTPUT_LIMIT = 2000  # characters of output kept for the log line


@dataclass
class CallbackRun:
    """One run of a user script, finished."""

    kind: str  # on_start ... on_role_change, pre_promote, before_stop
    args: list[str]
    returncode: int | None  # None: could not start; negative: killed by that signal
    output: str
    duration: float
    timed_out: bool = False
    replaced: bool = False  # killed because a newer event of the same kind came


def role_word(role: str | None) -> str:
    """The role Patroni passes: a promoted node is already `primary`; a demoted one a `replica`."""
    if role in ("primary", "promoted", "master"):
        return "primary"
    return "replica" if role in ("replica", "demoted", "standby") else (role or "replica")


class _Slot:
    """One executor: at most one process; starting a new one kills the running one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.replaced: set[int] = set()
        self.fired = 0  # events handed to this executor, in order
        self.started = 0  # the newest event that got to run: an older one arriving late is skipped


class CallbackRunner:
    def __init__(self, callbacks: Mapping[str, str] | None, scope: str, pre_promote: str | None = None,
                 before_stop: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.callbacks = {k: v for k, v in (callbacks or {}).items() if k in ACTIONS and isinstance(v, str) and v}
        self.scope = scope
        self.pre_promote_cmd = pre_promote or None
        self.before_stop_cmd = before_stop or None
        self.timeout = timeout
        self.listeners: list[Callable[[CallbackRun], None]] = []
        self.last_role: str | None = None  # the role the last start/role change announced
        self._main = _Slot()
        self._reload = _Slot()

    # ---- events --------------------------------------------------------------------------------
    def started(self, role: str | None) -> None:
        """PostgreSQL came up: on_role_change when it came up in another role than it last had, else on_start."""
        role = role_word(role)
        if self.last_role is not None and self.last_role != role:
            self.fire("on_role_change", role)
        else:
            self.fire("on_start", role)

    def fire(self, action: str, role: str | None) -> None:
        """Run the callback for `action` aside (if one is configured)."""
        role = role_word(role)
        if action in ("on_start", "on_role_change", "on_restart"):
            self.last_role = role
        cmd = self.callbacks.get(action)
        if not cmd:
            return
        try:
            args = [*shlex.split(cmd), action, role, self.scope]
        except ValueError as exc:
            log.error("callback %s: cannot parse the command %r: %s", action, cmd, exc)
            return
        slot = self._reload if action == "on_reload" else self._main
        with slot.lock:
            slot.fired += 1
            seq = slot.fired
        threading.Thread(target=self._run_aside, args=(slot, action, args, seq), daemon=True,
                         name=f"callback-{action}").start()

    def pre_promote(self) -> bool:
        """True when promotion may go on: no pre_promote script, or it exited 0 in time."""
        if not self.pre_promote_cmd:
            return True
        run = self._run_blocking("pre_promote", self.pre_promote_cmd)
        return run.returncode == 0

    def before_stop(self) -> None:
        if self.before_stop_cmd:
            self._run_blocking("before_stop", self.before_stop_cmd)

    def wait_idle(self, timeout: float) -> bool:
        """Daemon exit: give a just-fired on_stop a moment to finish (True when nothing runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._main.lock, self._reload.lock:
                busy = self._main.started < self._main.fired or self._reload.started < self._reload.fired or any(
                    s.proc is not None for s in (self._main, self._reload))
            if not busy:
                return True
            time.sleep(0.05)
        return False

    # ---- running ---------------------------------------------------------------------------------
    def _start(self, args: list[str]) -> subprocess.Popen | None:
        try:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                    env=dict(os.environ), cwd="/", text=True, errors="replace")
        except OSError as exc:
            log.error("callback %s could not start: %s", " ".join(args), exc)
            return None

    def _run_aside(self, slot: _Slot, kind: str, args: list[str], seq: int) -> None:
        with slot.lock:
            if seq < slot.started:
                log.info("callback %s (%s) skipped: a newer event already runs", kind, " ".join(args))
                return
            slot.started = seq
            if slot.proc is not None and slot.proc.poll() is None:
                log.info("callback %s: a newer event replaces the running %s (pid %d)", kind,
                         " ".join(slot.proc.args), slot.proc.pid)
                slot.replaced.add(slot.proc.pid)
                _kill_group(slot.proc)
            started = time.monotonic()
            proc = self._start(args)
            if proc is None:
                self.finished(CallbackRun(kind, args, None, "", 0.0))
                return
            slot.proc = proc
        log.info("callback %s started: %s (pid %d)", kind, " ".join(args), proc.pid)
        self._wait(proc, kind, args, started, slot)

    def _run_blocking(self, kind: str, cmd: str) -> CallbackRun:
        try:
            args = shlex.split(cmd)
        except ValueError as exc:
            log.error("%s: cannot parse the command %r: %s", kind, cmd, exc)
            run = CallbackRun(kind, [cmd], None, str(exc), 0.0)
            self.finished(run)
            return run
        started = time.monotonic()
        proc = self._start(args)
        if proc is None:
            run = CallbackRun(kind, args, None, "", 0.0)
            self.finished(run)
            return run
        log.info("%s started: %s (pid %d)", kind, " ".join(args), proc.pid)
        return self._wait(proc, kind, args, started, None)

    def _wait(self, proc: subprocess.Popen, kind: str, args: list[str], started: float,
              slot: _Slot | None) -> CallbackRun:
        timed_out = False
        try:
            output, _ = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            output, _ = proc.communicate()
        replaced = False
        if slot is not None:
            with slot.lock:
                replaced = proc.pid in slot.replaced
                slot.replaced.discard(proc.pid)
                if slot.proc is proc:
                    slot.proc = None
        run = CallbackRun(kind, args, proc.returncode, (output or "")[-_OUTPUT_LIMIT:],
                          time.monotonic() - started, timed_out, replaced)
        self.finished(run)
        return run

    def finished(self, run: CallbackRun) -> None:
        """Every run ends here: one log line, then the listeners (e.g. an event timeline)."""
        what = f"{run.kind} ({' '.join(run.args)})"
        out = " | ".join(line for line in run.output.strip().splitlines()[-5:])
        tail = f"; output: {out}" if out else ""
        if run.returncode is None:
            log.error("%s could not be run", what)
        elif run.timed_out:
            log.warning("%s did not finish within %gs and was killed%s", what, self.timeout, tail)
        elif run.replaced:
            log.info("%s was replaced by a newer event (exit %d)%s", what, run.returncode, tail)
        elif run.returncode == 0:
            log.info("%s exited with 0 after %.1fs%s", what, run.duration, tail)
        else:
            log.warning("%s exited with %d after %.1fs%s", what, run.returncode, run.duration, tail)
        for listener in list(self.listeners):
            try:
                listener(run)
            except Exception:
                log.exception("callback listener failed")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the script and whatever it started (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
