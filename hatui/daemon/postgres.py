"""PostgreSQL process control for the HA daemon.

Everything here is blocking and talks to one local data directory: initdb, pg_basebackup,
pg_ctl start/stop/reload/promote, pg_rewind, single-user crash recovery, and the config files
hatui owns (postgresql.conf, pg_hba.conf, standby.signal). The daemon's loop calls these methods;
the HA decisions live elsewhere. Failures raise `PostgresError` with a message meant for an
operator. When hatui runs as root every PostgreSQL binary runs as the unprivileged server user
(see hatui.osuser).

The pure helpers at the top (LSNs, timeline history, `needs_rewind`, controldata parsing) do no
I/O and are unit-tested on their own.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

from hatui.daemon import recovery
from hatui.osuser import ServerUser, ensure_traversable, server_user
from hatui.pgbin import find_bin_dir
from hatui.pgparams import parameter_names

log = logging.getLogger("hatui.postgres")

DataDirState = Literal["empty", "missing", "valid", "invalid"]
StopMode = Literal["smart", "fast", "immediate"]

CLEAN_SHUTDOWN_STATES = frozenset({"shut down", "shut down in recovery"})
# First line of the postgresql.conf we write; it tells our file from initdb's or a user's.
CONF_MARKER = "# Written by hatui"
BASE_CONF = "postgresql.base.conf"
# Config files pg_rewind would overwrite with the source server's copies.
_REWIND_KEEP = ("postgresql.conf", BASE_CONF, "pg_hba.conf", "pg_ident.conf")


class PostgresError(Exception):
    """A PostgreSQL operation failed; the message says what and, where known, why."""


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


def parse_lsn(text: str) -> int:
    """'0/3000060' -> 50331744. Raises ValueError on anything that is not an LSN."""
    hi, sep, lo = text.strip().partition("/")
    if not sep or not hi or not lo:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(hi, 16) << 32) | int(lo, 16)


def format_lsn(value: int) -> str:
    """50331744 -> '0/3000060' (PostgreSQL's own spelling: upper-case hex, no padding)."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def parse_history(text: str) -> list[tuple[int, int, str]]:
    """Parse a `<TL>.history` file into [(parent_timeline, switch_lsn, reason), ...].

    Each line says: timeline N ended at this LSN (and N+1 began there). Comments and blank
    lines are skipped, as PostgreSQL itself does.
    """
    entries: list[tuple[int, int, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        try:
            entries.append((int(parts[0]), parse_lsn(parts[1]), parts[2].strip() if len(parts) > 2 else ""))
        except ValueError:
            continue
    return entries


def needs_rewind(
    local_tl: int,
    local_lsn: int,
    leader_history: Iterable[Sequence[Any]],
    leader_tl: int | None = None,
) -> bool:
    """Has the local node written WAL that the leader's timeline does not contain?

    `local_lsn` is the END of the local WAL (the first byte the node has not written): for a
    cleanly stopped former primary that is the end of its shutdown checkpoint record (see
    `Postgres.local_wal_end`), for a replica the end of what it replayed, for a running primary
    pg_current_wal_lsn(). `leader_history` is the leader's timeline history, entries
    (timeline, switch_lsn, ...) with LSNs as ints; `leader_tl` defaults to one past the last entry.

    The node diverged when it is on a timeline the leader never had, or when the leader left our
    timeline at a switch point before our end of WAL. A node exactly at the switch point (a clean
    switchover) can simply follow.
    """
    history = [(int(h[0]), int(h[1])) for h in leader_history]
    if leader_tl is None:
        leader_tl = max((tl for tl, _ in history), default=0) + 1
    if local_tl > leader_tl:
        return True
    if local_tl == leader_tl:
        return False
    for tl, switch_lsn in history:
        if tl == local_tl:
            return local_lsn > switch_lsn
    # The leader's lineage skips our timeline: we were promoted on a branch it never followed.
    return True


def parse_controldata(text: str) -> dict[str, str]:
    """pg_controldata output (run with LC_ALL=C) -> {"Database cluster state": "shut down", ...}."""
    data: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            data[key.strip()] = value.strip()
    return data


def conf_value(value: Any) -> str:
    """A GUC value written as a quoted postgresql.conf literal (quotes and backslashes escaped)."""
    if isinstance(value, bool):
        value = "on" if value else "off"
    text = str(value).replace("\\", "\\\\").replace("'", "''")
    return f"'{text}'"


def conninfo_value(value: Any) -> str:
    """A libpq keyword/value conninfo value, quoted when it needs to be."""
    text = str(value)
    if text and not re.search(r"[\s'\\]", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def make_conninfo(**params: Any) -> str:
    """keyword=value conninfo from the non-None params, in the order given."""
    return " ".join(f"{k}={conninfo_value(v)}" for k, v in params.items() if v is not None)


def mask_conninfo(conninfo: str) -> str:
    """The conninfo with any password hidden, for log lines."""
    return re.sub(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", "password=********", conninfo)


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


# libpq connection keywords a Patroni `authentication` section may carry, and their environment names.
LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL", "sslcrldir": "PGSSLCRLDIR", "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING", "sslpassword": None,
}


def libpq_env(options: Mapping[str, Any] | None) -> dict[str, str]:
    """The environment that makes a libpq tool use these connection options."""
    return {LIBPQ_OPTIONS[k]: str(v) for k, v in (options or {}).items() if LIBPQ_OPTIONS.get(k) and v is not None}


def default_pg_hba(replication_user: str) -> list[str]:
    return [
        "local all all trust",
        "local replication all trust",
        f"host replication {replication_user} 127.0.0.1/32 md5",
        "host all all 127.0.0.1/32 md5",
    ]


@dataclass(frozen=True)
class StandbyConfig:
    """Where a standby streams from. application_name defaults to the node's name."""

    host: str
    port: int
    user: str = "replicator"
    password: str | None = None
    application_name: str | None = None
    slot_name: str | None = None
    sslmode: str = "prefer"
    # More libpq keywords from authentication.replication (sslcert, sslkey, sslrootcert, channel_binding...).
    options: tuple[tuple[str, str], ...] = ()
    # Recovery settings beside primary_conninfo (restore_command, ...; see recovery.py).
    recovery: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------------


class Postgres:
    """One local PostgreSQL data directory and the server that runs on it."""

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
        replication: tuple[str, str] = ("replicator", "rep-pass"),
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

    # ---- data directory --------------------------------------------------------------------

    def data_dir_state(self) -> DataDirState:
        path = Path(self.data_dir)
        if not path.exists():
            return "missing"
        if not path.is_dir():
            return "invalid"
        if not [e for e in os.listdir(path) if e != "lost+found"]:
            return "empty"
        if (path / "PG_VERSION").is_file() and (path / "global" / "pg_control").is_file():
            return "valid"
        return "invalid"

    def controldata(self) -> dict[str, str]:
        """pg_controldata of the data directory, parsed."""
        res = self._run([self._bin("pg_controldata"), "-D", self.data_dir], timeout=30)
        if res.returncode != 0:
            raise PostgresError(f"pg_controldata failed for {self.data_dir}: {_output(res)}")
        return parse_controldata(res.stdout)

    def sysid(self) -> str | None:
        """The database system identifier, or None when there is no valid data directory."""
        if self.data_dir_state() != "valid":
            return None
        try:
            return self.controldata().get("Database system identifier")
        except PostgresError as exc:
            log.warning("cannot read the system identifier: %s", exc)
            return None

    def cluster_state(self) -> str | None:
        """'in production', 'shut down', 'shut down in recovery', 'in archive recovery', ..."""
        if self.data_dir_state() != "valid":
            return None
        return self.controldata().get("Database cluster state")

    def was_cleanly_shut_down(self) -> bool:
        return self.cluster_state() in CLEAN_SHUTDOWN_STATES

    def timeline(self) -> int | None:
        """Timeline of the latest checkpoint (meaningful for a stopped server)."""
        if self.data_dir_state() != "valid":
            return None
        return int(self.controldata()["Latest checkpoint's TimeLineID"])

    def can_rewind(self) -> bool:
        """pg_rewind needs wal_log_hints or data checksums on the target, and the binary."""
        if not os.path.exists(self._bin("pg_rewind")) or self.data_dir_state() != "valid":
            return False
        data = self.controldata()
        return data.get("wal_log_hints setting") == "on" or data.get("Data page checksum version", "0") != "0"

    def read_history_file(self, tl: int) -> list[tuple[int, int, str]]:
        """Entries of pg_wal/<TL>.history ([] for timeline 1 or when the file is missing)."""
        try:
            text = Path(self._path("pg_wal", f"{tl:08X}.history")).read_text()
        except FileNotFoundError:
            return []
        return parse_history(text)

    def checkpoint_record_end(self, tl: int, lsn: int) -> int | None:
        """Where the WAL record at `lsn` (a checkpoint) ends, read with pg_waldump; None if unknown."""
        res = self._run(
            [self._bin("pg_waldump"), "-p", self._path("pg_wal"), "-t", str(tl),
             "-s", format_lsn(lsn), "-n", "2"],
            timeout=30,
        )
        found = re.findall(r"lsn: ([0-9A-Fa-f]+/[0-9A-Fa-f]+)", res.stdout)
        if len(found) >= 2:
            return parse_lsn(found[1])  # the next record starts where ours ends
        if len(found) == 1:
            # A clean shutdown leaves nothing after the checkpoint: pg_waldump stops with
            # "invalid record length at X" (or similar) where X is the end of our record.
            ends = [parse_lsn(x) for x in re.findall(r"\bat ([0-9A-Fa-f]+/[0-9A-Fa-f]+)", res.stderr)]
            if ends and ends[-1] > lsn:
                return ends[-1]
        log.debug("pg_waldump could not find the end of the record at %s: %s", format_lsn(lsn), _output(res))
        return None

    def local_wal_end(self) -> tuple[int, int] | None:
        """(timeline, end of local WAL) of a STOPPED server, the inputs `needs_rewind` wants.

        A server stopped in recovery reports its minimum recovery point; a stopped primary the end
        of its shutdown checkpoint record. None when the server did not shut down cleanly (run
        single_user_recovery first).
        """
        if self.is_running():
            raise PostgresError("local_wal_end() reads pg_controldata and needs a stopped server")
        data = self.controldata()
        state = data.get("Database cluster state")
        if state in ("shut down in recovery", "in archive recovery"):
            lsn = parse_lsn(data.get("Minimum recovery ending location", "0/0"))
            tl = int(data.get("Min recovery ending loc's timeline", "0"))
            if lsn and tl:
                return tl, lsn
        elif state != "shut down":
            return None
        tl = int(data["Latest checkpoint's TimeLineID"])
        ckpt = parse_lsn(data["Latest checkpoint location"])
        end = self.checkpoint_record_end(tl, ckpt)
        # Without pg_waldump's answer assume one byte past the checkpoint: a leader that switched
        # exactly at our checkpoint did not get it, so we diverged.
        return tl, end if end is not None else ckpt + 1

    # ---- initdb and config files -----------------------------------------------------------

    def _prepare_dirs(self) -> None:
        """Socket and log dirs owned by the server user; parents reachable by it."""
        for path in (self.socket_dir, self.log_dir):
            ensure_traversable(os.path.dirname(path))
            self.user.make_dir(path, 0o700)

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

    def _write_file(self, name: str, content: str) -> bool:
        """Atomically write a file in the data dir, owned by the server user, 0600; True if changed."""
        path = self._path(name)
        try:
            if Path(path).read_text() == content:
                return False
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        tmp = f"{path}.hatui-tmp"
        with open(tmp, "w") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        self.user.chown(tmp)
        os.replace(tmp, path)
        return True

    def effective_parameters(self, parameters: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The GUCs hatui writes: defaults, then `parameters`, then the ones hatui must control."""
        params: dict[str, Any] = {
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_keep_size": "128MB",
        }
        params.update(self.parameters if parameters is None else parameters)
        # Replication and pg_rewind depend on these; a node-local override would break failover.
        params["wal_level"] = "logical" if str(params.get("wal_level")) == "logical" else "replica"
        params["hot_standby"] = "on"
        params["wal_log_hints"] = "on"
        params["listen_addresses"] = self.listen_host
        params["port"] = str(self.port)
        params["unix_socket_directories"] = self.socket_dir
        params["hba_file"] = self._path("pg_hba.conf")
        for key in ("primary_conninfo", "primary_slot_name", "recovery_target_timeline"):
            params.pop(key, None)  # only the standby section below sets these
        return {k: ("on" if v is True else "off" if v is False else str(v)) for k, v in params.items()}

    def render_config(
        self, parameters: Mapping[str, Any] | None = None, standby: StandbyConfig | None = None
    ) -> str:
        """The postgresql.conf text write_config() would write."""
        lines = [
            f"{CONF_MARKER} for node '{self.name}'. It is rewritten whenever the configuration",
            "# changes: set parameters in hatui's configuration, not here. initdb's original file",
            f"# is kept as {BASE_CONF} and included first.",
            f"include '{BASE_CONF}'",
            "",
        ]
        for key, value in sorted(self.effective_parameters(parameters).items()):
            lines.append(f"{key} = {conf_value(value)}")
        if standby is None and self.bootstrap_recovery:
            lines += ["", "# recovery settings of the custom bootstrap (removed once it is done)"]
            lines += [f"{k} = {conf_value(v)}" for k, v in sorted(self.bootstrap_recovery.items())]
        if standby is not None and not standby.host:
            lines += ["", "# this node is a standby with no upstream yet (read-only, waiting for a leader)"]
        elif standby is not None:
            conninfo = make_conninfo(
                host=standby.host, port=standby.port, user=standby.user, password=standby.password,
                application_name=standby.application_name or self.name, sslmode=standby.sslmode,
                **dict(standby.options),
            )
            lines += ["", "# this node is a standby", f"primary_conninfo = {conf_value(conninfo)}"]
            if standby.slot_name:
                lines.append(f"primary_slot_name = {conf_value(standby.slot_name)}")
            lines.append("recovery_target_timeline = 'latest'")
        if standby is not None and standby.recovery:
            lines += ["", "# recovery settings (postgresql.recovery_conf)"]
            lines += [f"{k} = {conf_value(v)}" for k, v in standby.recovery]
        return "\n".join(lines) + "\n"

    def write_config(
        self,
        parameters: Mapping[str, Any] | None = None,
        pg_hba: list[str] | None = None,
        standby: StandbyConfig | None = None,
    ) -> bool:
        """Write postgresql.conf, pg_hba.conf and standby.signal; True if any of them changed.

        parameters/pg_hba default to the last values written (initially the constructor's). A
        change of standby.signal only takes effect on restart or promote; GUCs on reload.
        """
        if self.data_dir_state() != "valid":
            raise PostgresError(f"cannot write config: no valid data directory at {self.data_dir}")
        if parameters is not None:
            self.parameters = dict(parameters)
        if pg_hba is not None:
            self.pg_hba = list(pg_hba)
        changed = self._keep_base_conf()
        changed |= self._write_file("postgresql.conf", self.render_config(self.parameters, standby))
        if not self.keep_auto_conf_recovery:
            changed |= bool(recovery.strip_auto_conf(self.data_dir, self.user.chown))
        hba = ["# Written by hatui: set postgresql.pg_hba in hatui's configuration instead.", *self.pg_hba]
        changed |= self._write_file("pg_hba.conf", "\n".join(hba) + "\n")
        if self.pg_ident is not None:
            ident = ["# Written by hatui: set postgresql.pg_ident in hatui's configuration instead.", *self.pg_ident]
            changed |= self._write_file("pg_ident.conf", "\n".join(ident) + "\n")
        signal_file = Path(self._path("standby.signal"))
        if standby is not None and not signal_file.exists():
            self._write_file("standby.signal", "")
            changed = True
        elif standby is None and signal_file.exists():
            signal_file.unlink()
            changed = True
        if changed:
            log.info("configuration written for %s (%s)", self.name, "standby" if standby else "primary")
        return changed

    def _keep_base_conf(self) -> bool:
        """Move initdb's postgresql.conf aside as postgresql.base.conf the first time we write ours."""
        conf, base = Path(self._path("postgresql.conf")), Path(self._path(BASE_CONF))
        if base.exists():
            return False
        if conf.exists() and not conf.read_text(errors="replace").startswith(CONF_MARKER):
            os.replace(conf, base)
        else:
            base.write_text("")
            self.user.chown(base)
        return True

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

    # ---- cloning, rewinding, recovering ----------------------------------------------------

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

    def single_user_recovery(self, timeout: float = 600) -> None:
        """Crash recovery for a server that was not shut down cleanly, in single-user mode.

        pg_rewind refuses a target that crashed. Recovery files are removed first because a
        single-user server cannot run as a standby; write_config(standby=...) restores them.
        """
        if self.is_running():
            raise PostgresError("cannot run crash recovery: postgresql is running")
        self._wait_for_orphans()
        for name in ("standby.signal", "recovery.signal"):
            Path(self._path(name)).unlink(missing_ok=True)
        log.info("running crash recovery: postgres --single on %s", self.data_dir)
        # archive_mode on + a failing archive_command: keep every WAL segment, pg_rewind may need them.
        args = [
            self._bin("postgres"), "--single", "-D", self.data_dir,
            "-c", "archive_mode=on", "-c", "archive_command=false", "template1",
        ]
        res = self._run(args, timeout=timeout)
        if res.returncode != 0:
            raise PostgresError(f"crash recovery in single-user mode failed: {_output(res)}")
        log.info("crash recovery done; cluster state is now '%s'", self.cluster_state())

    def rewind(
        self, source_conninfo: str, source_name: str | None = None, standby: StandbyConfig | None = None
    ) -> tuple[bool, str]:
        """Rewind our stopped data directory to the source server's timeline with pg_rewind.

        A server that was not shut down cleanly gets crash recovery first. Our config files are
        kept (pg_rewind would copy the source's). pg_rewind leaves no standby.signal, so the
        server must not be started before write_config(standby=...): pass `standby` to have it
        done here on success. Returns (succeeded, pg_rewind's output).
        """
        if self.is_running():
            raise PostgresError("cannot rewind: postgresql is running; stop it first")
        if not self.was_cleanly_shut_down():
            self.single_user_recovery()
        params = _conninfo_to_dict(source_conninfo)
        env = {}
        if "password" in params:
            # Keep the password out of the argument list, which other local users can read.
            env["PGPASSWORD"] = params.pop("password")
            source_conninfo = make_conninfo(**params)
        log.info("running pg_rewind from %s (%s)", source_name or "the leader", mask_conninfo(source_conninfo))
        saved = self._save_config_files()
        try:
            res = self._run(
                [self._bin("pg_rewind"), f"--target-pgdata={self.data_dir}",
                 f"--source-server={source_conninfo}", "--progress"],
                env=env, timeout=3600,
            )
        finally:
            self._restore_config_files(saved)
        output = (res.stdout + res.stderr).strip()
        log.info("pg_rewind exit code=%d", res.returncode)
        for stream, text in (("stdout", res.stdout), ("stderr", res.stderr)):
            if text.strip():
                log.info(" %s=%s", stream, text.strip())
        ok = res.returncode == 0
        if ok and standby is not None:
            self.write_config(standby=standby)
        return ok, output

    def _save_config_files(self) -> dict[str, bytes]:
        saved = {}
        for name in _REWIND_KEEP:
            try:
                saved[name] = Path(self._path(name)).read_bytes()
            except FileNotFoundError:
                pass
        return saved

    def _restore_config_files(self, saved: dict[str, bytes]) -> None:
        for name, content in saved.items():
            path = Path(self._path(name))
            if not path.exists() or path.read_bytes() != content:
                path.write_bytes(content)
                os.chmod(path, 0o600)
                self.user.chown(path)

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


def _conninfo_to_dict(conninfo: str) -> dict[str, str]:
    import psycopg.conninfo

    try:
        return dict(psycopg.conninfo.conninfo_to_dict(conninfo))
    except psycopg.Error as exc:
        raise PostgresError(f"invalid connection string for pg_rewind: {exc}") from None
