"""Who runs PostgreSQL.

PostgreSQL refuses to start as root. When hatui itself runs as root (CI, containers), every
PostgreSQL binary (initdb, pg_ctl, postgres, pg_basebackup, pg_rewind, pg_controldata) is run as
an unprivileged OS user instead, and the directories it needs are handed to that user. As a
normal user nothing changes: the server runs as whoever started hatui.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERVER_USER = "postgres"


@dataclass(frozen=True)
class ServerUser:
    name: str
    uid: int
    gid: int
    home: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()

    def popen_kwargs(self) -> dict:
        """Keyword arguments for subprocess that run the child as this user."""
        if self.is_self:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "env": self.env()}

    def env(self, base: dict | None = None) -> dict:
        env = dict(os.environ if base is None else base)
        env.update({"HOME": self.home, "USER": self.name, "LOGNAME": self.name})
        return env

    def chown(self, path: str | os.PathLike) -> None:
        if not self.is_self:
            os.chown(path, self.uid, self.gid)

    def make_dir(self, path: str | os.PathLike, mode: int = 0o700) -> Path:
        """Create a directory (and parents) owned by this user with the given mode."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        os.chmod(p, mode)
        self.chown(p)
        return p


def server_user(name: str | None = None) -> ServerUser:
    """The OS user PostgreSQL runs as: ourselves unless we are root, else `name` (default postgres)."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return ServerUser(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)
    wanted = name or os.environ.get("HATUI_PG_USER") or DEFAULT_SERVER_USER
    try:
        pw = pwd.getpwnam(wanted)
    except KeyError:
        raise RuntimeError(
            f"running as root, but the OS user {wanted!r} that should run PostgreSQL does not exist; "
            f"create it (useradd --system {wanted}) or set postgresql.os_user"
        ) from None
    if pw.pw_uid == 0:
        raise RuntimeError(f"postgresql.os_user {wanted!r} is root; PostgreSQL refuses to run as root")
    return ServerUser(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)


def run_as(user: ServerUser, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run as the server user; the caller's env (if any) is kept with HOME/USER fixed."""
    kw = user.popen_kwargs()
    if "env" in kwargs:
        kw["env"] = user.env(kwargs.pop("env"))
    kw.update(kwargs)
    return subprocess.run(args, **kw)


def ensure_traversable(path: str | os.PathLike) -> None:
    """Make every parent of `path` searchable (o+x) so the server user can reach it.

    Only parents we own are touched; a tmp dir such as /tmp/pytest-of-root (mode 700) is the
    typical reason PostgreSQL cannot open its own data directory when started by root.
    """
    p = Path(path).resolve()
    for parent in [p, *p.parents]:
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == os.geteuid() and not st.st_mode & 0o001:
            os.chmod(parent, st.st_mode | 0o011)
