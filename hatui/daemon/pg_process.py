"""The postmaster: finding it (postmaster.pid checked against /proc), its health, and pg_ctl
start/stop/restart/reload/promote, waiting for a killed server's orphans and zombie first.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from hatui.osuser import ensure_traversable

from .pg_server import PostgresBase, PostgresError, StopMode, _output

log = logging.getLogger("hatui.postgres")


class ProcessControl(PostgresBase):
    """The server process on this data directory: start, stop, promote, reload, is it running."""

    def _prepare_dirs(self) -> None:
        """Socket and log dirs owned by the server user; parents reachable by it."""
        for path in (self.socket_dir, self.log_dir):
            ensure_traversable(os.path.dirname(path))
            self.user.make_dir(path, 0o700)

    # ---- the postmaster --------------------------------------------------------------------

    def _read_pid_file(self) -> list[str] | None:
        try:
            return Path(self._path("postmaster.pid")).read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError as exc:
            raise PostgresError(f"cannot read {exc.filename}: permission denied") from None

    def postmaster_pid(self) -> int | None:
        """PID of the postmaster running on this data directory, None if there is none.

        postmaster.pid can outlive its server (kill -9, host reboot) and the PID in it can be
        reused, so the PID must be alive and be a postgres process working in our data dir.
        """
        lines = self._read_pid_file()
        if not lines:
            return None
        try:
            pid = int(lines[0])
        except ValueError:
            return None
        return pid if pid > 0 and self._is_our_postmaster(pid) else None

    def _is_our_postmaster(self, pid: int) -> bool:
        proc = Path(f"/proc/{pid}")
        try:
            stat = (proc / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        fields = stat.rsplit(")", 1)[-1].split()
        if fields[0] in ("Z", "X"):
            return False
        # (pid, start time) names one process for its whole life, and a postmaster never changes
        # its name or working dir: once identified, the HA loop's several checks per cycle need
        # only this one read.
        identity = (pid, fields[19] if len(fields) > 19 else None)
        if identity == getattr(self, "_known_postmaster", None):
            return True
        try:
            comm = (proc / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            return False
        if comm not in ("postgres", "postmaster"):
            return False
        try:
            ours = os.path.realpath(os.readlink(proc / "cwd")) == os.path.realpath(self.data_dir)
        except PermissionError:
            return True  # not ours to inspect (another user); the name matched, trust the pid file
        except (FileNotFoundError, ProcessLookupError):
            return False
        if ours:
            self._known_postmaster = identity
        return ours

    def postmaster_status(self) -> str | None:
        """'starting', 'ready', 'standby' or 'stopping' from postmaster.pid, None if not running."""
        lines = self._read_pid_file()
        if not lines or self.postmaster_pid() is None:
            return None
        return lines[7].strip() if len(lines) > 7 else "starting"

    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    def is_healthy(self) -> bool:
        """Does the server accept a superuser connection and answer SELECT 1?"""
        from . import pgwire as psycopg  # the local socket: the daemon's small client

        try:
            with psycopg.connect(**self.connect_kwargs()) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def data_dir_processes(self) -> list[int]:
        """PIDs of processes working in our data directory (a killed postmaster's orphans)."""
        target = os.path.realpath(self.data_dir)
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                if os.path.realpath(os.readlink(f"/proc/{entry}/cwd")) == target:
                    pids.append(int(entry))
            except OSError:
                continue
        return pids

    def _wait_for_orphans(self, timeout: float = 10.0) -> None:
        """After a postmaster died its backends notice and exit within a moment; starting a new
        server while they still hold shared memory fails, so give them that moment."""
        deadline = time.monotonic() + timeout
        while pids := self.data_dir_processes():
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"processes {pids} of a previous server still use {self.data_dir}; stop them first"
                )
            time.sleep(0.1)
        # A killed postmaster stays a zombie until init reaps it, and PostgreSQL's lock-file check
        # (kill(pid, 0)) takes a zombie for a live postmaster. Reaping can take a second or so.
        while (zombie := self._zombie_postmaster()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if zombie:
            log.warning("the previous postmaster (pid %d) is a zombie not yet reaped by its parent", zombie)

    def _zombie_postmaster(self) -> int | None:
        lines = self._read_pid_file()
        try:
            pid = int(lines[0]) if lines else 0
            stat = Path(f"/proc/{pid}/stat").read_text() if pid > 0 else ""
        except (ValueError, FileNotFoundError, ProcessLookupError):
            return None
        return pid if stat and stat.rsplit(")", 1)[-1].split()[0] == "Z" else None

    def tail_log(self, lines: int = 20) -> str:
        try:
            text = Path(self.log_file).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 60, wait: bool = True) -> bool:
        """Start the server; True once it accepts connections, False if still starting.

        pg_ctl detaches the postmaster into its own session, and we run pg_ctl in a new session
        too: if the daemon is killed, even with SIGKILL to its process group, PostgreSQL keeps
        running (like Patroni), and a restarted daemon finds it through postmaster.pid.
        """
        pid = self.postmaster_pid()
        if pid:
            log.info("postmaster is already running (pid %d)", pid)
            return self.postmaster_status() in ("ready", "standby")
        state = self.data_dir_state()
        if state != "valid":
            raise PostgresError(f"cannot start: data directory {self.data_dir} is {state}")
        self._prepare_dirs()
        self._wait_for_orphans()
        args = [self._bin("pg_ctl"), "start", "-D", self.data_dir, "-l", self.log_file, "-s"]
        args += ["-w", "-t", str(int(timeout))] if wait else ["-W"]
        log.info("starting postgresql %s on port %d", self.name, self.port)
        res = self._run(args, timeout=timeout + 15)
        pid = self.postmaster_pid()
        if res.returncode == 0:
            if wait:
                log.info("postmaster pid=%s, accepting connections", pid)
            return wait
        if pid:
            # pg_ctl gave up waiting (a standby that cannot reach consistency yet): still starting.
            log.warning("postgresql is still starting after %gs (pid %d)", timeout, pid)
            return False
        raise PostgresError(
            f"postgresql failed to start: {_output(res) or 'no output'}; last log lines:\n{self.tail_log()}"
        )

    def wait_ready(self, timeout: float = 60) -> bool:
        """Poll until the server accepts connections (True) or the timeout / its death (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.postmaster_status() in ("ready", "standby") and self.is_healthy():
                return True
            if not self.is_running():
                return False
            time.sleep(0.1)
        return False

    def stop(self, mode: StopMode = "fast", timeout: float = 60) -> bool:
        """Stop the server; True if it was running and stopped, False if it was not running."""
        pid = self.postmaster_pid()
        if pid is None:
            log.info("postgresql %s is not running", self.name)
            return False
        log.info("stopping postgresql %s (mode %s, pid %d)", self.name, mode, pid)
        res = self._run(
            [self._bin("pg_ctl"), "stop", "-D", self.data_dir, "-m", mode,
             "-w", "-t", str(int(timeout))],
            timeout=timeout + 15,
        )
        if self.is_running():
            raise PostgresError(f"postgresql did not stop within {timeout:g}s (mode {mode}; pg_ctl exit code "
                                f"{res.returncode}): {_output(res)}")
        log.info("postgresql %s stopped", self.name)
        return True

    def restart(self, mode: StopMode = "fast", timeout: float = 60, wait: bool = True) -> bool:
        self.stop(mode=mode, timeout=timeout)
        return self.start(timeout=timeout, wait=wait)

    def reload(self) -> None:
        """Make the server re-read its configuration files (SIGHUP through pg_ctl)."""
        if not self.is_running():
            raise PostgresError("cannot reload: postgresql is not running")
        res = self._run([self._bin("pg_ctl"), "reload", "-D", self.data_dir, "-s"], timeout=30)
        if res.returncode != 0:
            raise PostgresError(f"reload failed: {_output(res)}")
        log.info("server signaled")

    def promote(self, wait: bool = True, timeout: float = 60) -> bool:
        """End recovery and become a primary; True once promoted (if waiting).

        pg_ctl's own wait polls ten times a second; every millisecond here is a millisecond
        without a writable primary, so we ask the server itself every 10 ms instead.
        """
        if not self.is_running():
            raise PostgresError("cannot promote: postgresql is not running")
        log.info("server promoting")
        res = self._run([self._bin("pg_ctl"), "promote", "-D", self.data_dir, "-W", "-s"], timeout=30)
        if res.returncode != 0:
            raise PostgresError(f"promote failed: {_output(res)}")
        if not wait:
            return False
        if not self._wait_promoted(timeout):
            raise PostgresError(f"server did not finish promoting within {timeout:g}s")
        log.info("server promoted")
        return True

    def _wait_promoted(self, timeout: float) -> bool:
        from . import pgwire as psycopg  # the local socket: the daemon's small client

        deadline = time.monotonic() + timeout
        conn = None
        try:
            while time.monotonic() < deadline:
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(**self.connect_kwargs())
                    if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                        return True
                except psycopg.Error:
                    conn = None
                    if not self.is_running():
                        return False
                time.sleep(0.01)
            return False
        finally:
            if conn is not None:
                conn.close()
