"""The base of the PostgreSQL adapter: one local data directory, its paths and connection
details, and running PostgreSQL's programs as the server's OS user (see hatui.osuser).
`PostgresError` is the one error every part of the adapter raises. The parts (pg_process,
pg_inspect, pg_config_files, pg_datadir, pg_rewind) build on `PostgresBase`; `postgres.Postgres`
composes them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from typing import Any, Literal, Mapping

from hatui.osuser import ServerUser, server_user
from hatui.pgbin import find_bin_dir
from hatui.pgparams import parameter_names

from .pg_conf import StandbyConfig, default_pg_hba, make_conninfo

log = logging.getLogger("hatui.postgres")

DataDirState = Literal["empty", "missing", "valid", "invalid"]
StopMode = Literal["smart", "fast", "immediate"]


class PostgresError(Exception):
    """A PostgreSQL operation failed; the message says what and, where known, why."""


class PostgresBase:
    """One local PostgreSQL data directory: paths, connection details, running its binaries."""

    def __init__(
        self,
        name: str,
        data_dir: str | os.PathLike,
        bin_dir: str | None = None,
        listen_host: str = "127.0.0.1",
        port: int = 5432,
        connect_host: str = "127.0.0.1",
        parameters: Mapping[str, Any] | None = None,
        pg_hba: list[str] | None = None,
        superuser: tuple[str, str | None] = ("postgres", None),
        replication: tuple[str, str | None] = ("replicator", None),  # no well-known default password
        rewind: tuple[str, str] | None = None,
        os_user: str | None = None,
        socket_dir: str | os.PathLike | None = None,
        database: str = "postgres",
        log_dir: str | os.PathLike | None = None,
    ) -> None:
        self.name = name
        self.data_dir = os.path.abspath(os.fspath(data_dir))
        try:
            self.bin_dir = find_bin_dir(bin_dir)
            self.user: ServerUser = server_user(os_user)
        except RuntimeError as exc:
            raise PostgresError(str(exc)) from None
        self.listen_host = listen_host
        self.port = int(port)
        self.connect_host = connect_host
        self.superuser = superuser
        self.replication = replication
        self.rewind_user = rewind
        self.database = database
        parent = os.path.dirname(self.data_dir)
        self.socket_dir = os.path.abspath(os.fspath(socket_dir or os.path.join(parent, f"{name}-socket")))
        self.log_dir = os.path.abspath(os.fspath(log_dir or os.path.join(parent, f"{name}-log")))
        # What write_config() uses when called without arguments: the last values written.
        self.parameters: dict[str, Any] = dict(parameters or {})
        self.pg_hba: list[str] = list(pg_hba) if pg_hba else default_pg_hba(replication[0])
        self.pg_ident: list[str] | None = None  # postgresql.pg_ident lines; None: leave initdb's file
        # A custom bootstrap's recovery_conf, written while it recovers (bootstrap.py); and whether
        # the recovery settings a backup tool left in postgresql.auto.conf must be kept.
        self.bootstrap_recovery: dict[str, str] = {}
        self.keep_auto_conf_recovery = False

    def __repr__(self) -> str:
        return f"Postgres({self.name!r}, {self.data_dir!r}, port={self.port})"

    # ---- paths and connection details ------------------------------------------------------

    @property
    def log_file(self) -> str:
        return os.path.join(self.log_dir, "postgresql.log")

    @property
    def conn_url(self) -> str:
        return f"postgres://{self.connect_host}:{self.port}/{self.database}"

    def connect_kwargs(self, dbname: str | None = None) -> dict[str, Any]:
        """psycopg.connect() keywords for a local superuser session over the unix socket."""
        kw: dict[str, Any] = {
            "host": self.socket_dir,
            "port": self.port,
            "user": self.superuser[0],
            "dbname": dbname or self.database,
            "connect_timeout": 3,
            "application_name": "hatui",
            "autocommit": True,
        }
        if self.superuser[1]:
            kw["password"] = self.superuser[1]
        return kw

    def standby_config(self, host: str, port: int, slot_name: str | None = None) -> StandbyConfig:
        """How this node follows the server at host:port, with our replication credentials."""
        return StandbyConfig(
            host=host, port=int(port), user=self.replication[0], password=self.replication[1],
            application_name=self.name, slot_name=slot_name,
        )

    def rewind_conninfo(self, host: str, port: int) -> str:
        """conninfo pg_rewind uses to read from the server at host:port (rewind user, else superuser)."""
        user, password = self.rewind_user or self.superuser
        return make_conninfo(host=host, port=port, user=user, password=password, dbname=self.database)

    def _path(self, *parts: str) -> str:
        return os.path.join(self.data_dir, *parts)

    def _bin(self, program: str) -> str:
        return os.path.join(self.bin_dir, program)

    def parameter_names(self) -> frozenset[str] | None:
        """The parameters this PostgreSQL build accepts in postgresql.conf (hatui.pgparams)."""
        return parameter_names(self.bin_dir)

    # ---- running the binaries --------------------------------------------------------------

    def _run(
        self,
        args: list[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        messages_in_english: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program as the server user, in its own session, stdin closed.

        Its own session so that a timeout can kill the whole process group (pg_basebackup forks a
        WAL streaming child) and so that our terminal's signals never reach a server it spawns.
        """
        full_env = dict(os.environ)
        if messages_in_english:
            # We parse pg_controldata/pg_waldump output and show errors to operators.
            full_env["LC_ALL"] = "C"
        full_env.update(env or {})
        kw = self.user.popen_kwargs()
        kw["env"] = self.user.env(full_env)
        program = os.path.basename(args[0])
        log.debug("running %s", " ".join(args))
        try:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, start_new_session=True, cwd="/", **kw,
            )
        except OSError as exc:
            raise PostgresError(f"cannot run {program}: {exc}") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            raise PostgresError(f"{program} did not finish within {timeout:g}s and was killed") from None
        return subprocess.CompletedProcess(args, proc.returncode, out, err)

    def run_tool(
        self, args: list[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run an operator's command (replica method, bootstrap script) as the server user."""
        return self._run(args, timeout=timeout, env=env, messages_in_english=False)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _output(res: subprocess.CompletedProcess) -> str:
    text = " ".join(f"{res.stderr or ''} {res.stdout or ''}".split())
    if res.returncode < 0:
        text = f"killed by signal {-res.returncode}; {text}"
    return text
