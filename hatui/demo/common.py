"""What every part of the demo shares: names, the working dir, the state file, the control socket."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

SCOPE = "batman"
NAMESPACE = "/service/"
FAST_DCS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
MARKER = ".hatui-demo"
STATE_FILE = "demo.json"
LOCK_FILE = "demo.lock"
SOCKET_FILE = "control.sock"
TALK_ETCD_PORTS = (2379, 2380)
ACTIONS = ("status", "kill-daemon", "kill-postgres", "freeze", "resume", "start", "write", "stop")


class DemoError(Exception):
    """Something the person running the demo can act on; printed as one line."""


# --- where the demo lives ------------------------------------------------------------------------
def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Can `uid` reach `path`: every existing ancestor searchable (x) for that user."""
    for p in [path, *path.parents]:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def default_dir() -> tuple[Path, str | None]:
    """The working dir and, when it is not the usual one, a note saying why."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    preferred = Path(state) / "hatui" / "demo"
    if os.geteuid() != 0:
        return preferred, None
    # As root, PostgreSQL runs as another OS user, who must be able to reach its data dir;
    # root's home is usually mode 700.
    from ..osuser import server_user

    user = server_user()
    if _traversable_by(preferred, user.uid, user.gid):
        return preferred, None
    fallback = Path(f"/var/tmp/hatui-demo-{os.geteuid()}")
    return fallback, (f"{preferred} is not reachable by the OS user {user.name!r} that runs PostgreSQL, "
                      f"so the demo uses {fallback} instead")



def control_socket_path(workdir: Path) -> Path:
    p = Path(workdir).absolute() / SOCKET_FILE
    if len(str(p)) < 100:
        return p
    # AF_UNIX paths are limited to ~107 bytes; a deep --dir gets a short private name instead.
    import hashlib

    digest = hashlib.sha1(str(p).encode()).hexdigest()[:12]
    return Path(f"/tmp/hatui-demo-{os.geteuid()}-{digest}.sock")


def read_state(workdir: Path) -> dict | None:
    try:
        return json.loads((Path(workdir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def all_pids(state: dict) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for pids in (state.get("pids") or {}).values():
        for item in pids:
            if isinstance(item, list) and len(item) == 2:
                out.append((int(item[0]), int(item[1])))
    return out


def already_running_message(workdir: Path) -> str:
    state = read_state(workdir) or {}
    pid = state.get("pid", "?")
    etcd = state.get("etcd")
    lines = [f"a hatui demo is already running in {workdir} (pid {pid}); not starting a second one."]
    if etcd:
        cfg = Path(workdir) / "postgres0.yml"
        lines.append(f"  see it:   hatui -c {cfg} list      (the console: hatui -c {cfg})")
    lines.append(f"  stop it:  hatui demo{dir_arg(workdir)} stop   (or Ctrl-C / q in its terminal)")
    return "\n".join(lines)


def dir_arg(workdir: Path) -> str:
    return "" if Path(workdir) == default_dir()[0] else f" --dir {workdir}"


def send_action(workdir: Path, action: str, member: str | None = None, timeout: float = 30.0) -> tuple[bool, str]:
    """Ask the demo running in `workdir` to do `action` (what `hatui demo ACTION MEMBER` does)."""
    path = control_socket_path(workdir)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        raise DemoError(f"no hatui demo is running in {workdir}") from None
    with s:
        s.sendall(json.dumps({"action": action, "member": member}).encode() + b"\n")
        reply = json.loads(s.makefile("rb").readline() or b"{}")
    return bool(reply.get("ok")), str(reply.get("message", ""))
