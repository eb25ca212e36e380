"""SQL the daemon runs against its local PostgreSQL.

Every function takes either an open (pgwire) connection or a `Postgres` (then a short-lived
superuser connection over the node's unix socket is opened: connect_timeout 3, autocommit).
LSNs come back as ints. Failures raise `PostgresError`.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

# The daemon's own small client (pgwire.py), not psycopg: the same API for what is used here,
# at a fraction of psycopg's resident memory.
from hatui.daemon import pgwire as psycopg
from hatui.daemon.pgwire import sql

from hatui.daemon.postgres import Postgres, PostgresError, parse_history

log = logging.getLogger("hatui.postgres")

@dataclass
class PgState:
    """What the local server looks like right now (one observation for the HA loop).

    `running` is about the postmaster; `accepting_connections` False with `error` set means it
    runs but could not be queried (starting up, shutting down, broken auth).
    """

    running: bool
    accepting_connections: bool = False
    error: str | None = None
    in_recovery: bool = False
    timeline: int | None = None
    # Timeline of the last checkpoint. On a fresh primary it trails `timeline` until the
    # checkpoint after promotion is done; pg_rewind against it is useless before that.
    checkpoint_timeline: int | None = None
    wal_position: int | None = None
    receive_lsn: int | None = None
    replay_lsn: int | None = None
    replication_state: str | None = None
    received_timeline: int | None = None
    upstream_host: str | None = None
    upstream_port: int | None = None
    replicas: list[dict[str, Any]] = field(default_factory=list)
    pending_restart: bool = False
    pending_restart_reason: dict[str, dict[str, str | None]] = field(default_factory=dict)
    server_version: int | None = None
    postmaster_start_time: str | None = None
    sysid: str | None = None
    replay_paused: bool = False
    last_replay_timestamp: str | None = None

    @property
    def role(self) -> str | None:
        if not self.accepting_connections:
            return None
        return "replica" if self.in_recovery else "primary"

    @property
    def checkpoint_after_promote(self) -> bool | None:
        """Primary only: has a checkpoint been written on the current timeline?"""
        if not self.accepting_connections or self.in_recovery:
            return None
        return self.checkpoint_timeline == self.timeline


def connect(pg: Postgres, dbname: str | None = None) -> psycopg.Connection:
    try:
        return psycopg.connect(**pg.connect_kwargs(dbname))
    except psycopg.Error as exc:
        raise PostgresError(
            f"cannot connect to postgresql {pg.name} on port {pg.port}: {_first_line(exc)}"
        ) from None


def connect_other(libpq_options: dict[str, str], **kwargs: Any) -> Any:
    """A session to another node's PostgreSQL (psycopg.connect's keywords).

    The built-in client when nothing needs libpq: no TLS (or other libpq) option is set and the
    server does not offer TLS (asked first, as libpq's default sslmode=prefer does). Otherwise
    psycopg, imported only then: once loaded it stays resident, about 16 MB with its libpq, and a
    daemon that rewound or handed over the lock grew from 29 to 45 MB for one short session."""
    if not libpq_options:
        try:
            return psycopg.connect(**kwargs, refuse_tls_servers=True)
        except psycopg.TLSOffered:
            pass
    import psycopg as libpq  # the real one (this module's `psycopg` is the built-in client)

    return libpq.connect(**kwargs, **libpq_options)


@contextmanager
def _session(target: Any) -> Iterator[psycopg.Connection]:
    if isinstance(target, psycopg.Connection):
        yield target
        return
    if _shared(target):
        conn = _state_session(target)
        try:
            yield conn
        finally:
            if conn.closed:  # lost (the server went away): the next call opens a new one
                target._state_session = None
        return
    with connect(target) as conn:
        yield conn


def _shared(pg: Any) -> bool:
    """The HA thread keeps one session to its server for every cycle's queries; other threads
    (the REST API, helpers) open their own, since a session serves one thread at a time."""
    return threading.current_thread() is threading.main_thread() and hasattr(pg, "connect_kwargs")


def _state_session(pg: Postgres) -> psycopg.Connection:
    conn = getattr(pg, "_state_session", None)
    if conn is None or conn.closed:
        conn = pg._state_session = connect(pg)
    return conn


_STATE_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
       (pg_control_checkpoint()).timeline_id,
       (pg_control_recovery()).min_recovery_end_timeline,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint END,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint,
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
       pg_last_xact_replay_timestamp(),
       current_setting('server_version_num')::int,
       pg_postmaster_start_time(),
       (pg_control_system()).system_identifier::text,
       current_setting('restore_command')
"""

_RECEIVER_SQL = "SELECT status, received_tli, sender_host, sender_port FROM pg_stat_wal_receiver"

_REPLICAS_SQL = """
SELECT usename, application_name, host(client_addr), state, sync_state, sync_priority,
       pg_wal_lsn_diff(flush_lsn, '0/0')::bigint, pg_wal_lsn_diff(replay_lsn, '0/0')::bigint
  FROM pg_stat_replication ORDER BY application_name, pid
"""

# Old value as the server shows it (with units); new value as the config files say it, from the
# last line that sets it (the one that wins). That line carries the error "setting could not be
# applied", which is exactly the pending restart, so errors are not filtered out.
# Recovery settings are left out, as Patroni does: a promoted node's config drops
# recovery_target_timeline (postmaster context), which PostgreSQL flags as pending although it
# means nothing on a primary. A setting removed from the files restarts with its default
# (boot_val): never report a null new value, patronictl list crashes on it.
_PENDING_SQL = """
SELECT s.name, current_setting(s.name), COALESCE(f.setting, s.boot_val, '')
  FROM pg_settings s
  LEFT JOIN LATERAL (SELECT setting FROM pg_file_settings f
                      WHERE f.name = s.name ORDER BY f.seqno DESC LIMIT 1) f ON true
 WHERE s.pending_restart
   AND s.name NOT IN ('primary_conninfo', 'primary_slot_name', 'restore_command', 'archive_cleanup_command',
                      'recovery_end_command', 'recovery_min_apply_delay', 'promote_trigger_file',
                      'recovery_target', 'recovery_target_lsn', 'recovery_target_name', 'recovery_target_time',
                      'recovery_target_xid', 'recovery_target_timeline', 'recovery_target_inclusive',
                      'recovery_target_action')
 ORDER BY s.name
"""

_REPLICA_KEYS = (
    "usename", "application_name", "client_addr", "state", "sync_state", "sync_priority",
    "flush_lsn", "replay_lsn",
)


def fetch_state(pg: Postgres) -> PgState:
    """Observe the local server. Never raises for a down or unreachable server: that is a state.

    The session is kept open from one HA cycle to the next (as Patroni does): a new session each
    cycle costs the daemon and the server more than the queries themselves. A session that broke
    (the server restarted since) is replaced once, at once."""
    if not pg.is_running():
        _drop_state_session(pg)
        return PgState(running=False)
    if not _shared(pg):
        try:
            with connect(pg) as conn:
                return _query_state(conn)
        except (PostgresError, psycopg.Error) as exc:
            return PgState(running=pg.is_running(), error=_first_line(exc))
    conn = getattr(pg, "_state_session", None)
    reused = conn is not None and not conn.closed
    try:
        return _query_state(_state_session(pg))
    except (PostgresError, psycopg.Error) as exc:
        _drop_state_session(pg)
        if reused:
            return fetch_state(pg)
        return PgState(running=pg.is_running(), error=_first_line(exc))


def _drop_state_session(pg: Postgres) -> None:
    conn = getattr(pg, "_state_session", None)
    pg._state_session = None
    if conn is not None:
        conn.close()


def replica_timeline(seen: tuple[str | None, int] | None,
                     st: PgState) -> tuple[int | None, tuple[str | None, int] | None]:
    """(the standby's timeline, what to remember for the next call).

    A running standby's timeline is its walreceiver's `received_tli` while it streams, else its
    last checkpoint's. After its upstream switched timelines the checkpoint lags until the next
    restartpoint, so the moment the upstream stops (the leader's PostgreSQL fenced or killed) the
    timeline seemed to fall back from 2 to 1, and the HA core, seeing a WAL position past the
    switch to 2 on "timeline 1", stopped a healthy replica to rewind it just before it would be
    promoted. A standby never goes back to an older timeline while its postmaster runs: keep the
    newest one seen for this postmaster (its start time tells a restart).
    """
    if not st.in_recovery or st.timeline is None:
        return st.timeline, None
    if seen is not None and seen[0] == st.postmaster_start_time and seen[1] > st.timeline:
        return seen[1], seen
    return st.timeline, (st.postmaster_start_time, st.timeline)


def _query_state(conn: psycopg.Connection) -> PgState:
    (in_recovery, wal_tli, ckpt_tli, min_recovery_tli, flush, receive, replay, paused, replay_ts,
     version, started, sysid, restore_command) = conn.execute(_STATE_SQL).fetchone()
    st = PgState(
        running=True, accepting_connections=True, in_recovery=in_recovery, checkpoint_timeline=ckpt_tli,
        receive_lsn=receive, replay_lsn=replay, replay_paused=bool(paused),
        last_replay_timestamp=str(replay_ts) if replay_ts is not None else None,
        server_version=version, postmaster_start_time=str(started), sysid=sysid,
    )
    receiver = conn.execute(_RECEIVER_SQL).fetchone()
    if receiver:
        status, st.received_timeline, st.upstream_host, st.upstream_port = receiver
    else:
        status = None
    if in_recovery:
        # The checkpoint timeline lags after the upstream switched timelines; what the receiver
        # has flushed is newer, and so is the minimum recovery point's timeline. That last one
        # matters after pg_rewind: the last checkpoint is the common one on the old timeline
        # while the replay is already past the branch point on the new one, and until the
        # receiver streams, "timeline 1 past the branch" looked diverged and the HA core
        # stopped the freshly rewound replica to rewind it again (tests/integration/test_demo.py).
        st.timeline = max(ckpt_tli or 0, st.received_timeline or 0, min_recovery_tli or 0) or None
        st.wal_position = max((x for x in (receive, replay) if x is not None), default=None)
        # As Patroni (replication_state_from_parameters): "in archive recovery" only when there is
        # an archive to recover from; a standby neither streaming nor restoring says nothing, and
        # `list` shows it "running", as the REST API's live answer (api_pgstatus.py) does.
        st.replication_state = ("streaming" if status == "streaming"
                                else "in archive recovery" if restore_command else None)
    else:
        st.timeline = wal_tli
        st.wal_position = flush
    st.replicas = [dict(zip(_REPLICA_KEYS, row)) for row in conn.execute(_REPLICAS_SQL).fetchall()]
    for name, old, new in conn.execute(_PENDING_SQL).fetchall():
        st.pending_restart_reason[name] = {"old_value": old, "new_value": new}
    st.pending_restart = bool(st.pending_restart_reason)
    return st


def settings(conn: Any, names: Iterable[str]) -> dict[str, str | None]:
    """Current values of the named settings as SHOW prints them (None for unknown names)."""
    rows = execute(conn, "SELECT n, current_setting(n, true) FROM unnest(%s::text[]) AS n", (list(names),))
    return dict(rows)


_FLUSH_SQL = ("SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
              "ELSE pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint END")


def primary_flush_position(pg: Any) -> int | None:
    """A primary's WAL flush position now (None on a standby or when the server does not answer)."""
    try:
        rows = execute(pg, _FLUSH_SQL)
    except PostgresError:
        return None
    return rows[0][0] if rows else None


def checkpoint(pg: Any) -> None:
    """CHECKPOINT (a restartpoint on a standby)."""
    execute(pg, "CHECKPOINT")


def execute(pg: Any, query: str | sql.Composable, params: Any = None) -> list[tuple]:
    """Run one statement; its rows if it returns any, else []."""
    reused = _shared(pg) and getattr(pg, "_state_session", None) is not None
    try:
        with _session(pg) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []
    except psycopg.Error as exc:
        if reused and getattr(pg, "_state_session", None) is None:
            return execute(pg, query, params)  # the kept session was gone: once more on a new one
        raise PostgresError(f"query failed: {_first_line(exc)}") from None


def create_role(
    pg: Any, user: str, password: str | None, replication: bool = False, superuser: bool = False
) -> bool:
    """Create the login role, or bring an existing one to these options; True if it was created."""
    opts = [sql.SQL("LOGIN"), sql.SQL("REPLICATION" if replication else "NOREPLICATION"),
            sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER")]
    if password is not None:
        opts.append(sql.SQL("PASSWORD {}").format(sql.Literal(password)))
    try:
        with _session(pg) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
            conn.execute(sql.SQL("{} {} WITH {}").format(verb, sql.Identifier(user), sql.SQL(" ").join(opts)))
    except psycopg.Error as exc:
        raise PostgresError(f"cannot create or update role {user!r}: {_first_line(exc)}") from None
    log.info("%s role %s", "updated" if exists else "created", user)
    return not exists


# Functions pg_rewind calls on the source; granting them avoids making the rewind user a superuser.
_REWIND_FUNCTIONS = (
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
)


def grant_rewind(pg: Any, user: str) -> None:
    """Let a non-superuser role serve as pg_rewind's source login."""
    for fn in _REWIND_FUNCTIONS:
        execute(pg, sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(fn), sql.Identifier(user)))


def setup_roles(pg: Postgres) -> None:
    """After bootstrap: superuser password, replication role, rewind role (with its grants)."""
    su, su_pass = pg.superuser
    if su_pass:
        create_role(pg, su, su_pass, replication=True, superuser=True)
    create_role(pg, pg.replication[0], pg.replication[1], replication=True)
    if pg.rewind_user and pg.rewind_user[0] != su:
        create_role(pg, pg.rewind_user[0], pg.rewind_user[1])
        grant_rewind(pg, pg.rewind_user[0])


def timeline_history(pg: Any, tl: int) -> list[tuple[int, int, str]]:
    """The history of timeline `tl` read from a running server ([] on timeline 1)."""
    if tl <= 1:
        return []
    rows = execute(pg, "SELECT pg_read_file(%s, 0, 1048576, true)", (f"pg_wal/{tl:08X}.history",))
    return parse_history(rows[0][0] or "") if rows else []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
