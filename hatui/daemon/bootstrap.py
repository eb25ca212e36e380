"""Making a new cluster's first data directory: initdb or a custom `bootstrap.method`.

`bootstrap.method: <name>` with a `bootstrap.<name>.command` runs that command instead of initdb,
with Patroni's arguments `--scope` and `--datadir` (none with `no_params`) and every other key of
the section as `--key=value`. Typically it restores a backup (pgBackRest, Barman). Afterwards:
`recovery_conf` given: its settings are written into postgresql.conf with a recovery.signal (or
standby.signal for `standby_mode: on`), and those a backup tool left in postgresql.auto.conf are
removed; `keep_existing_recovery_conf: true`: the tool's own settings and signal files are kept;
otherwise every recovery setting and signal file is removed. The server is started, recovery
runs to its end (a target with `recovery_target_action: promote`), and the cluster is a primary.

Then, for either method, the roles are created and `post_bootstrap` (or `post_init`) runs once,
given a connection string to the new primary. Any failure raises BootstrapError with the reason;
the loop then removes the `initialize` key so that another node may try (Patroni's behaviour).
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import recovery
from .postgres import PostgresError

if TYPE_CHECKING:
    import threading

    from ..config import BootstrapConfig
    from .node import NodeRuntime
    from .postgres import Postgres

log = logging.getLogger("hatui.bootstrap")



class BootstrapHost(Protocol):
    """What a bootstrap uses of the daemon (`loop.Daemon` implements it)."""

    pg: Postgres
    rt: NodeRuntime
    stopping: threading.Event  # a stop request ends the wait for the end of recovery

_RESERVED = frozenset({"command", "no_params", "keep_existing_recovery_conf", "recovery_conf", "scope", "datadir"})


class BootstrapError(Exception):
    """The new cluster could not be made; the message says why."""


def method_section(bootstrap: Mapping[str, Any]) -> tuple[str, dict | None]:
    """(method name, its section) for a custom method with a command, else ("initdb", None)."""
    method = bootstrap.get("method") or "initdb"
    section = bootstrap.get(method) if method != "initdb" else None
    if isinstance(section, Mapping) and section.get("command"):
        return str(method), dict(section)
    return "initdb", None


def configured_method(bootstrap: BootstrapConfig) -> tuple[str, dict | None]:
    """method_section of the node file's (typed) bootstrap section."""
    b = bootstrap
    return method_section({"method": b.method, b.method: b.method_settings} if b.method else {})


def custom_command(section: Mapping[str, Any], scope: str, data_dir: str) -> list[str]:
    """The argument list Patroni runs for a custom bootstrap method."""
    params = [] if section.get("no_params") else [f"--scope={scope}", f"--datadir={data_dir}"]
    params += [f"--{k}={v}" for k, v in section.items() if k not in _RESERVED]
    return shlex.split(str(section["command"])) + params


def initialize(d: BootstrapHost) -> str:
    """Create, start and prepare the data directory of a new cluster; returns the method used."""
    rt, pg = d.rt, d.pg
    dyn = rt.bootstrap_dynamic()
    method, section = configured_method(rt.boot_conf)
    try:
        if section is None:
            pg.initdb(rt.initdb_options)
            pg.write_config(rt.effective_parameters(dyn), rt.pg_hba(dyn), None)
            pg.start(timeout=120)
        else:
            _custom(d, method, section)
        rt.create_users()
    except PostgresError as exc:
        raise BootstrapError(str(exc)) from None
    post_bootstrap(d)
    return method


def _custom(d: BootstrapHost, method: str, section: dict) -> None:
    rt, pg = d.rt, d.pg
    dyn = rt.bootstrap_dynamic()
    if pg.data_dir_state() not in ("missing", "empty"):
        raise BootstrapError(f"data directory {pg.data_dir} is not empty")
    pg.user.make_dir(pg.data_dir, 0o700)
    args = custom_command(section, rt.scope, pg.data_dir)
    log.info("Running custom bootstrap script: %s", section["command"])
    res = pg.run_tool(args, timeout=None)
    if res.returncode != 0:
        raise BootstrapError(f"custom bootstrap method {method!r} failed: {args[0]} exited with code="
                             f"{res.returncode}{_last_line(res)}")
    if pg.data_dir_state() != "valid":
        raise BootstrapError(f"custom bootstrap method {method!r} exited 0 but left no PostgreSQL data "
                             f"directory in {pg.data_dir}")
    Path(pg.data_dir, "promote").unlink(missing_ok=True)  # a leftover trigger file would promote at once
    keep_signal = None
    if "recovery_conf" in section and isinstance(section["recovery_conf"], Mapping):
        params, signal = recovery.bootstrap_params(section["recovery_conf"])
        recovery.remove_signal_files(pg.data_dir)
        pg.bootstrap_recovery = params
        keep_signal = signal
    elif section.get("keep_existing_recovery_conf"):
        pg.keep_auto_conf_recovery = True
        keep_signal = next((n for n in ("standby.signal", "recovery.signal") if Path(pg.data_dir, n).exists()), None)
    else:
        recovery.remove_signal_files(pg.data_dir)
    pg.write_config(rt.effective_parameters(dyn), rt.pg_hba(dyn), None)  # removes standby.signal
    if keep_signal:
        Path(pg.data_dir, keep_signal).touch()
        pg.user.chown(Path(pg.data_dir, keep_signal))
    pg.start(timeout=600)
    _wait_end_of_recovery(d)
    # Recovery is over: the bootstrap's recovery settings go, the cluster's own config stays.
    pg.bootstrap_recovery = {}
    pg.keep_auto_conf_recovery = False
    recovery.remove_signal_files(pg.data_dir)
    if pg.write_config(rt.effective_parameters(dyn), rt.pg_hba(dyn), None):
        pg.reload()


def _wait_end_of_recovery(d: BootstrapHost) -> None:
    from . import queries

    pg = d.pg
    said = False
    while True:
        if not pg.is_running():
            raise BootstrapError("PostgreSQL stopped while recovering the custom bootstrap's data: "
                                 + " | ".join(pg.tail_log(5).splitlines()[-3:]))
        s = queries.fetch_state(pg)
        if s.accepting_connections and not s.in_recovery:
            log.info("end of recovery after bootstrap: the new cluster is a primary on timeline %s", s.timeline)
            return
        if not said:
            log.info("waiting for end of recovery after bootstrap")
            said = True
        if d.stopping.is_set():
            raise BootstrapError("stopped while waiting for the end of recovery after bootstrap")
        time.sleep(1)


def post_bootstrap(d: BootstrapHost) -> None:
    """Run bootstrap.post_bootstrap (or post_init) once, with a connection string to the new primary."""
    rt, pg = d.rt, d.pg
    cmd = rt.boot_conf.post_bootstrap  # or post_init, its old name
    if not cmd:
        return
    user, password = rt.superuser
    connstring = f"dbname={pg.database} user={user} host={pg.socket_dir} port={pg.port}"
    env = {"PGOPTIONS": "-c synchronous_commit=local -c statement_timeout=0"}
    pgpass = None
    if password:
        fd, pgpass = tempfile.mkstemp(prefix="hatui-pgpass-")
        with os.fdopen(fd, "w") as f:
            esc = str(password).replace("\\", "\\\\").replace(":", "\\:")
            f.write(f"*:*:*:{user}:{esc}\n")
        os.chmod(pgpass, 0o600)
        pg.user.chown(pgpass)
        env["PGPASSFILE"] = pgpass
    log.info("running post_bootstrap script %s", cmd)
    try:
        res = pg.run_tool(shlex.split(str(cmd)) + [connstring], env=env, timeout=None)
    except PostgresError as exc:
        raise BootstrapError(f"post_bootstrap script {cmd} failed: {exc}") from None
    finally:
        if pgpass:
            os.unlink(pgpass)
    if res.returncode != 0:
        raise BootstrapError(f"post_bootstrap script {cmd} returned non-zero code {res.returncode}{_last_line(res)}")


def _last_line(res: Any) -> str:
    lines = (res.stderr or res.stdout or "").strip().splitlines()
    return f": {lines[-1]}" if lines else ""
