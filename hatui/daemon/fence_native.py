"""The native fencing guard (fence_guard.c): found, or built with the system C compiler on first use.

Why native: the guard must be a separate process (it outlives a killed or frozen daemon), and a
second Python interpreter costs 13.5 MB resident for a program that waits on a pipe. The C program
does the same in well under 1 MB. It is built once per source version into a cache directory the
daemon's user owns (systemd's $CACHE_DIRECTORY, else $XDG_CACHE_HOME/hatui or ~/.cache/hatui) and
reused by every daemon; two daemons building at once each rename a finished binary into place.

When no compiler is there (or HATUI_FENCE_GUARD=python), guard_binary() returns None and the daemon
runs the Python guard (`python -m hatui.daemon.fence`): same protocol, same behaviour. HATUI_FENCE_GUARD
may also name a prebuilt binary (a package that compiled it at install time).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger("hatui.fence")

SOURCE = Path(__file__).with_name("fence_guard.c")
_built: dict[str, str | None] = {}


def cache_dir() -> Path:
    for var in ("CACHE_DIRECTORY", "XDG_CACHE_HOME"):
        value = os.environ.get(var, "").split(":")[0]
        if value:
            return Path(value) / ("hatui" if var == "XDG_CACHE_HOME" else "")
    return Path.home() / ".cache" / "hatui"


def _safe_dir(d: Path) -> bool:
    """A directory we may execute from: ours, and writable by nobody else."""
    try:
        st = d.stat()
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def guard_binary() -> str | None:
    """Path of the native guard, building it if needed; None: use the Python guard."""
    choice = os.environ.get("HATUI_FENCE_GUARD", "")
    if choice == "python":
        return None
    if choice:
        return choice if os.access(choice, os.X_OK) else None
    try:
        source = SOURCE.read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(source).hexdigest()[:16]
    if digest in _built:
        return _built[digest]
    _built[digest] = path = _build(source, digest)
    return path


def _build(source: bytes, digest: str) -> str | None:
    d = cache_dir()
    target = d / f"fence-guard-{digest}"
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        log.info("fencing guard: cannot use %s for the native guard (%s); using the Python guard", d, exc)
        return None
    if not _safe_dir(d):
        log.warning("fencing guard: %s is not private to this user; using the Python guard", d)
        return None
    if os.access(target, os.X_OK):
        return str(target)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        log.info("fencing guard: no C compiler (Debian: apt-get install gcc libc6-dev); using the Python guard "
                 "(about 13 MB more resident)")
        return None
    fd, tmp = tempfile.mkstemp(prefix=".fence-guard-", dir=d)
    os.close(fd)
    try:
        c_file = tmp + ".c"
        Path(c_file).write_bytes(source)
        res = subprocess.run([cc, "-O2", "-Wall", "-o", tmp, c_file, "-lm"], capture_output=True, text=True,
                             timeout=120, check=False)
        os.unlink(c_file)
        if res.returncode != 0:
            log.warning("fencing guard: building the native guard failed (%s); using the Python guard",
                        (res.stderr.strip().splitlines() or ["no output"])[-1])
            return None
        os.chmod(tmp, 0o700)
        os.replace(tmp, target)
        log.info("fencing guard: native guard built at %s", target)
        return str(target)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("fencing guard: building the native guard failed (%s); using the Python guard", exc)
        return None
    finally:
        for leftover in (tmp, tmp + ".c"):
            try:
                os.unlink(leftover)
            except OSError:
                pass
