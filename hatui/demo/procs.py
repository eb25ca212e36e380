"""Processes by PID: liveness, identity (PID + start time), children, stopping one and waiting."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat fields after the command name: [state, ppid, ..., starttime at index 19]."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return []


def pid_alive(pid: int) -> bool:
    st = _stat(pid)
    return bool(st) and st[0] not in ("Z", "X")


def start_time(pid: int) -> int | None:
    """Clock ticks since boot when `pid` started: with the PID, it names one process for good."""
    st = _stat(pid)
    return int(st[19]) if len(st) > 19 else None


def same_process(pid: int, started: int | None) -> bool:
    """Is `pid` still the process we recorded (PIDs are reused: never signal a number alone)?"""
    return pid_alive(pid) and started is not None and start_time(pid) == started


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if len(st) > 1 and st[1] == str(pid):
                out.append(int(entry))
    return out


def pid_stopped(pid: int) -> bool:
    """SIGSTOPped (state T), as `^Z` leaves a process."""
    st = _stat(pid)
    return bool(st) and st[0] == "T"


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cwd(pid: int) -> str:
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return ""


def postmasters_under(data: Path) -> list[int]:
    out = []
    if not data.is_dir():
        return out
    for pidfile in data.glob("*/postmaster.pid"):
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            continue
        if _cwd(pid) == os.path.realpath(pidfile.parent) and pid_alive(pid):
            out.append(pid)
    return out


def terminate(pid: int, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signal one process we own and wait for it to go; SIGKILL if it will not."""
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_path(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def processes_naming(workdir: Path) -> list[int]:
    """Live etcd and `hatui daemon` processes whose arguments point inside `workdir` (etcd's data
    dir, a daemon's config file): what a demo starts and nothing else does. Daemons first."""
    root = os.path.realpath(workdir) + os.sep
    daemons, others = [], []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        argv = _argv(int(entry))
        if not argv or not any(a.startswith(root) or ("=" + root) in a for a in argv):
            continue
        is_daemon = argv[1:3] == ["-m", "hatui.daemon"]
        is_etcd = os.path.basename(argv[0]) == "etcd"
        if (is_daemon or is_etcd) and pid_alive(int(entry)):
            (daemons if is_daemon else others).append(int(entry))
    return daemons + others
