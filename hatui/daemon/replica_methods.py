"""Replica creation methods: `create_replica_methods`, as Patroni 4.1 runs them.

Each method in the list is tried in order until one exits 0. `basebackup` is pg_basebackup with
the options of the `basebackup` section; any other name is a command taken from the method's own
section (`postgresql.<method>.command`, else the name itself), given Patroni's arguments
(`--scope`, `--role=replica`, `--datadir`, `--connstring`) plus every other key of the section as
`--key=value`, unless the section says `no_params`. The data directory is emptied before a method
runs (and after it fails) unless the section says `keep_data`. With no running member to copy from,
only methods whose section says `no_leader` (or `no_master`) are tried.

Commands run as the PostgreSQL OS user (they write its data directory), with the replication
password in a private pgpass file named by PGPASSFILE, so it never appears in an argument list.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .postgres import Postgres, PostgresError

log = logging.getLogger("hatui.replica")

# pg_basebackup options hatui sets itself (Patroni refuses the same ones).
BASEBACKUP_NOT_ALLOWED = frozenset({
    "pgdata", "format", "wal-method", "xlog-method", "gzip", "version", "dbname", "host", "port",
    "username", "password",
})
# Section keys that steer hatui and are not passed to the command when no_params is set.
_CONTROL_KEYS = ("no_params", "no_leader", "no_master", "keep_data")


@dataclass(frozen=True)
class CloneSource:
    """The running server a replica is copied from (a member of this cluster, or a remote primary)."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str = "postgres"
    options: tuple[tuple[str, str], ...] = ()  # libpq keywords of authentication.replication (sslmode...)

    @property
    def connstring(self) -> str:
        """Patroni's --connstring: keyword=value, without the password (that is in PGPASSFILE)."""
        extra = "".join(f" {k}={v}" for k, v in self.options if k not in ("password", "sslpassword"))
        return f"dbname={self.dbname} user={self.user} host={self.host} port={self.port}{extra}"


def works_without_leader(method: str, settings: Mapping[str, Mapping[str, Any]]) -> bool:
    section = settings.get(method) or {}
    return bool(section.get("no_leader") or section.get("no_master"))


def usable_methods(methods: list[str], settings: Mapping[str, Mapping[str, Any]], has_source: bool) -> list[str]:
    """The methods to try, in order: all of them with a source, else only the no_leader ones."""
    methods = list(methods) or ["basebackup"]
    if has_source:
        return methods
    return [m for m in methods if m != "basebackup" and works_without_leader(m, settings)]


def basebackup_options(options: Any) -> tuple[list[str], list[str]]:
    """The `basebackup` section (list of "flag" / {"key": value}, or a mapping) -> (args, refused)."""
    items: list[Any] = []
    if isinstance(options, Mapping):
        items = [{k: v} for k, v in options.items()]
    elif isinstance(options, (list, tuple)):
        items = list(options)
    args: list[str] = []
    refused: list[str] = []
    for item in items:
        pairs = list(item.items()) if isinstance(item, Mapping) else [(item, None)]
        for key, value in pairs:
            name = str(key).lstrip("-")
            if name in BASEBACKUP_NOT_ALLOWED:
                refused.append(name)
                continue
            args.append(f"--{name}" if value is None else f"--{name}={value}")
    return args, refused


def method_command(
    method: str, section: Mapping[str, Any] | None, scope: str, data_dir: str, connstring: str
) -> list[str]:
    """The argument list Patroni would run for a custom method."""
    cfg = dict(section or {})
    cmd = str(cfg.pop("command", method))
    if cfg.get("no_params"):
        for key in _CONTROL_KEYS:
            cfg.pop(key, None)
    else:
        cfg.update({"scope": scope, "role": "replica", "datadir": data_dir, "connstring": connstring})
    return shlex.split(cmd) + [f"--{k}={_arg(v)}" for k, v in cfg.items()]


def _arg(value: Any) -> str:
    # Patroni formats with str(): True stays "True"; keep that so scripts see the same text.
    return str(value)


def create_replica(
    pg: Postgres,
    scope: str,
    methods: list[str],
    settings: Mapping[str, Mapping[str, Any]],
    basebackup: Any,
    source: CloneSource | None,
    timeout: float = 3600,
) -> str:
    """Make pg's data directory a copy, trying each method in turn; returns the one that worked."""
    todo = usable_methods(methods, settings, source is not None)
    if not todo:
        raise PostgresError(
            "no running member to copy from and no replica method with no_leader set "
            f"(create_replica_methods: {', '.join(methods or ['basebackup'])})")
    errors: list[str] = []
    # No replication password configured: no pgpass of ours either, so the tools find the OS
    # user's own .pgpass (or trust, or a certificate), as libpq would for the daemon itself.
    pgpass = _write_pgpass(pg, source) if source is not None and source.password is not None else None
    try:
        env = {"PGPASSFILE": pgpass} if pgpass else {}
        for method in todo:
            try:
                if method == "basebackup":
                    _run_basebackup(pg, source, basebackup, timeout)  # type: ignore[arg-type]
                else:
                    _run_custom(pg, scope, method, dict(settings.get(method) or {}), source, env, timeout)
            except PostgresError as exc:
                log.error("Error creating replica using method %s: %s", method, exc)
                errors.append(f"{method}: {exc}")
                continue
            log.info("replica has been created using %s", method)
            return method
    finally:
        if pgpass:
            os.unlink(pgpass)
    raise PostgresError("every replica creation method failed (" + "; ".join(errors) + ")")


def _run_basebackup(pg: Postgres, source: CloneSource, options: Any, timeout: float) -> None:
    args, refused = basebackup_options(options)
    for name in refused:
        log.error("basebackup option --%s is set by hatui itself; ignoring it", name)
    if not any(a.startswith(("--checkpoint", "-c")) for a in args):
        args.insert(0, "--checkpoint=fast")  # hatui's default: do not wait for a spread checkpoint
    last: PostgresError | None = None
    for attempt in (1, 2):  # Patroni tries pg_basebackup twice
        if pg.data_dir_state() not in ("missing", "empty"):
            pg.remove_data_dir()
        try:
            pg.basebackup(source.host, source.port, source.user, source.password, timeout=timeout,
                          options=dict(source.options), extra_args=args)
            return
        except PostgresError as exc:
            last = exc
            if attempt == 1:
                log.warning("pg_basebackup failed; trying again")
    assert last is not None
    raise last


def _run_custom(
    pg: Postgres, scope: str, method: str, section: dict[str, Any], source: CloneSource | None,
    env: dict[str, str], timeout: float,
) -> None:
    keep = bool(section.get("keep_data"))
    state = pg.data_dir_state()
    if state not in ("missing", "empty"):
        if keep:
            log.info("Leaving data directory uncleaned")
        else:
            pg.remove_data_dir()
    pg.user.make_dir(pg.data_dir, 0o700)
    args = method_command(method, section, scope, pg.data_dir, source.connstring if source else "")
    log.info("creating replica using method %s: %s", method, shlex.split(str(section.get("command", method)))[0])
    res = pg.run_tool(args, env=env, timeout=timeout)
    if res.returncode != 0:
        if not keep and pg.data_dir_state() not in ("missing", "empty"):
            pg.remove_data_dir()
        detail = (res.stderr or res.stdout or "").strip().splitlines()
        raise PostgresError(f"{args[0]} exited with code={res.returncode}"
                            + (f": {detail[-1]}" if detail else ""))
    if pg.data_dir_state() != "valid":
        raise PostgresError(f"{args[0]} exited 0 but left no valid data directory in {pg.data_dir}")


def _write_pgpass(pg: Postgres, source: CloneSource) -> str:
    """A pgpass file readable only by the server user, with the replication credentials."""
    def esc(v: Any) -> str:
        return str(v).replace("\\", "\\\\").replace(":", "\\:")

    fd, path = tempfile.mkstemp(prefix="hatui-pgpass-")
    with os.fdopen(fd, "w") as f:
        f.write(":".join(esc(x) for x in (source.host, source.port, "*", source.user, source.password or "")) + "\n")
    os.chmod(path, 0o600)
    pg.user.chown(path)
    return path
