"""What hatui writes for PostgreSQL and its tools, pure: postgresql.conf literals, libpq conninfo
strings (and their masked form for logs), libpq options as environment, the default pg_hba lines,
and `StandbyConfig` (where a standby streams from). No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

# First line of the postgresql.conf we write; it tells our file from initdb's or a user's.
CONF_MARKER = "# Written by hatui"
BASE_CONF = "postgresql.base.conf"


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


_PAIR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)+)?")


def parse_conninfo(conninfo: str) -> dict[str, str] | None:
    """keyword=value conninfo back to its params, by libpq's rules (a value bare or in single quotes,
    a backslash escaping the next character); None for what is not that form (a URI), which the
    caller leaves to libpq. The daemon's own strings need no libpq (and its 16 MB) to be read."""
    params: dict[str, str] = {}
    pos, text = 0, conninfo.rstrip()
    while pos < len(text):
        m = _PAIR.match(text, pos)
        if m is None or m.end() == pos:
            return None
        value = m.group(2) or ""
        if value.startswith("'"):
            value = value[1:-1]
        params[m.group(1)] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
        if pos < len(text) and not text[pos].isspace():
            return None
    return params


def mask_conninfo(conninfo: str) -> str:
    """The conninfo with any password hidden, for log lines."""
    return re.sub(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", "password=********", conninfo)


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
