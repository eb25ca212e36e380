"""PostgreSQL process control for the HA daemon.

Everything here is blocking and talks to one local data directory: initdb, pg_basebackup,
pg_ctl start/stop/reload/promote, pg_rewind, single-user crash recovery, and the config files
hatui owns (postgresql.conf, pg_hba.conf, standby.signal). The daemon's loop calls these methods;
the HA decisions live elsewhere. Failures raise `PostgresError` with a message meant for an
operator. When hatui runs as root every PostgreSQL binary runs as the unprivileged server user
(see hatui.osuser).

`Postgres` is composed of one part per job, each in its own module:
  pg_server        the base: paths, connection details, running binaries as the server user
  pg_process       the postmaster: start, stop, restart, reload, promote, is it running
  pg_inspect       reading a stopped data directory: pg_controldata, timelines, end of local WAL
  pg_config_files  postgresql.conf, pg_hba.conf, pg_ident.conf, standby.signal
  pg_datadir       initdb, pg_basebackup, moving aside and removing a data directory
  pg_rewind        pg_rewind and the single-user crash recovery it needs first
The pure helpers (pg_wal: LSNs, timeline history, `needs_rewind`, controldata parsing; pg_conf:
conf literals, conninfo, `StandbyConfig`) do no I/O and are unit-tested on their own. Callers keep
importing everything from here.
"""

from __future__ import annotations

from .pg_conf import (
    BASE_CONF,
    CONF_MARKER,
    LIBPQ_OPTIONS,
    StandbyConfig,
    conf_value,
    conninfo_value,
    default_pg_hba,
    libpq_env,
    make_conninfo,
    mask_conninfo,
)
from .pg_config_files import ConfigFiles
from .pg_datadir import DataDirLifecycle, initdb_args
from .pg_inspect import CLEAN_SHUTDOWN_STATES, DataDirInspection
from .pg_process import ProcessControl
from .pg_rewind import Rewind
from .pg_server import DataDirState, PostgresError, StopMode
from .pg_wal import format_lsn, needs_rewind, parse_controldata, parse_history, parse_lsn

__all__ = [
    "BASE_CONF", "CLEAN_SHUTDOWN_STATES", "CONF_MARKER", "LIBPQ_OPTIONS", "DataDirState", "Postgres",
    "PostgresError", "StandbyConfig", "StopMode", "conf_value", "conninfo_value", "default_pg_hba",
    "format_lsn", "initdb_args", "libpq_env", "make_conninfo", "mask_conninfo", "needs_rewind",
    "parse_controldata", "parse_history", "parse_lsn",
]


class Postgres(ProcessControl, DataDirInspection, ConfigFiles, DataDirLifecycle, Rewind):
    """One local PostgreSQL data directory and the server that runs on it."""
