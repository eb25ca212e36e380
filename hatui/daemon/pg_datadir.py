"""Creating and removing a data directory: initdb (with Patroni's `bootstrap.initdb` options),
a clone with pg_basebackup (a failed copy is removed), moving a broken directory aside.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import datetime
from typing import Any, Iterable, Mapping

from hatui.osuser import ensure_traversable

from .pg_conf import libpq_env
from .pg_server import PostgresBase, PostgresError, _output

log = logging.getLogger("hatui.postgres")


def initdb_args(options: Iterable[str | Mapping[str, Any]] | None) -> list[str]:
    """Patroni's `bootstrap.initdb` list -> initdb flags: "data-checksums" -> --data-checksums,
    {"encoding": "UTF8"} -> --encoding=UTF8. Options hatui controls itself are refused."""
    reserved = {"pgdata", "d", "username", "u", "pwfile", "pwprompt", "w"}
    args: list[str] = []
    for opt in options or []:
        items: Iterable[tuple[str, Any]]
        if isinstance(opt, Mapping):
            items = opt.items()
        else:
            items = [(str(opt), None)]
        for key, value in items:
            key = str(key).lstrip("-")
            if key.lower() in reserved:
                raise PostgresError(f"bootstrap.initdb option {key!r} is set by hatui itself; remove it")
            args.append(f"--{key}" if value is None else f"--{key}={value}")
    return args


class DataDirLifecycle(PostgresBase):
    """A data directory made (initdb, pg_basebackup) or taken away (moved aside, removed)."""

    def initdb(self, options: Iterable[str | Mapping[str, Any]] | None = None) -> None:
        """Create a new cluster in an empty or missing data directory (owned by the server user, 0700)."""
        state = self.data_dir_state()
        if state not in ("missing", "empty"):
            raise PostgresError(f"cannot initdb: data directory {self.data_dir} is {state}, not empty")
        args = [self._bin("initdb"), "-D", self.data_dir, f"--username={self.superuser[0]}",
                *initdb_args(options)]
        if not any(a.startswith(("--encoding", "--locale", "-E")) for a in args[3:]):
            args.append("--encoding=UTF8")
        ensure_traversable(os.path.dirname(self.data_dir))
        self.user.make_dir(self.data_dir, 0o700)
        pwfile = None
        try:
            if self.superuser[1]:
                pwfile = self._private_file(self.superuser[1] + "\n")
                args.append(f"--pwfile={pwfile}")
            log.info("initializing a new cluster in %s", self.data_dir)
            res = self._run(args, timeout=600, messages_in_english=False)
        finally:
            if pwfile:
                os.unlink(pwfile)
        if res.returncode != 0:
            raise PostgresError(f"initdb failed: {_output(res)}")
        log.info("initdb done: new cluster in %s", self.data_dir)

    def _private_file(self, content: str) -> str:
        """A 0600 temp file readable only by the server user (for passwords handed to tools)."""
        fd, path = tempfile.mkstemp(prefix="hatui-", dir=tempfile.gettempdir())
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        os.chmod(path, 0o600)
        self.user.chown(path)
        return path

    def basebackup(
        self,
        source_host: str,
        source_port: int,
        user: str,
        password: str | None,
        timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        """Clone the server at source_host:source_port into our empty data directory.

        `options`: libpq keywords (sslmode, sslcert, ...) passed on in pg_basebackup's environment.
        `extra_args` are extra pg_basebackup arguments (the `basebackup` section); without them the
        copy starts with a fast checkpoint.

        Call write_config() afterwards: the copy carries the source's config files.
        """
        state = self.data_dir_state()
        if state not in ("missing", "empty"):
            raise PostgresError(f"cannot clone: data directory {self.data_dir} is {state}, not empty")
        created = state == "missing"
        ensure_traversable(os.path.dirname(self.data_dir))
        self.user.make_dir(self.data_dir, 0o700)
        env = {"PGAPPNAME": self.name, "PGCONNECT_TIMEOUT": "10"}
        env.update(libpq_env(options))
        if password:
            env["PGPASSWORD"] = password
        args = [
            self._bin("pg_basebackup"), "-D", self.data_dir, "-X", "stream",
            *(extra_args if extra_args is not None else ["-c", "fast"]),
            "-h", source_host, "-p", str(source_port), "-U", user, "-w",
        ]
        extra = " ".join(f"{k}={v}" for k, v in sorted((options or {}).items()) if k != "sslpassword")
        log.info("cloning %s:%s into %s with pg_basebackup%s", source_host, source_port, self.data_dir,
                 f" ({extra})" if extra else "")
        try:
            res = self._run(args, timeout=timeout, env=env)
            if res.returncode != 0:
                raise PostgresError(f"pg_basebackup from {source_host}:{source_port} failed: {_output(res)}")
        except PostgresError as exc:
            log.warning("%s; removing the partial copy in %s", exc, self.data_dir)
            self._clear_data_dir(remove_dir=created)
            raise
        log.info("pg_basebackup from %s:%s done", source_host, source_port)

    def _clear_data_dir(self, remove_dir: bool) -> None:
        if remove_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            return
        for entry in os.scandir(self.data_dir):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)

    def move_data_dir_aside(self) -> str:
        """Rename the data directory to <data_dir>.failed (plus a timestamp if that exists)."""
        if self.is_running():
            raise PostgresError("cannot move the data directory aside: postgresql is running")
        if not os.path.exists(self.data_dir):
            raise PostgresError(f"no data directory at {self.data_dir}")
        target = f"{self.data_dir}.failed"
        if os.path.exists(target):
            target = f"{target}.{datetime.now().strftime('%Y-%m-%d-%H-%M-%S-%f')}"
        os.rename(self.data_dir, target)
        log.info("renamed data directory %s to %s", self.data_dir, target)
        return target

    def remove_data_dir(self) -> None:
        if self.is_running():
            raise PostgresError("cannot remove the data directory: postgresql is running")
        if os.path.islink(self.data_dir):
            os.unlink(self.data_dir)
        elif os.path.exists(self.data_dir):
            shutil.rmtree(self.data_dir)
        log.info("removed data directory %s", self.data_dir)
