"""The live part of GET /patroni and the health checks: PostgreSQL asked when the request comes.

Why: the HA loop observes PostgreSQL once per cycle (loop_wait, 10 s by default). Answering WAL
positions from that observation made a healthy streaming replica look up to a loop behind the
leader's optime (`hatui explain` said "lagging 32 MB, not promotable" right after two WAL switches,
and `/replica?lag=1MB` could answer 503 for a loop). Patroni 4.x (patroni/api.py,
`RestApiHandler.get_postgresql_status`) runs one query per request instead, on a connection of the
REST API's own (`RestApiServer.query`, the pool's "restapi" connection: connect_timeout 3,
statement_timeout 2 s), and answers the loop's state and role only, with `state: unknown` for a
running server that did not answer, when the query fails.

This module does the same with the daemon's small client (pgwire): one session, opened at the
first request and kept (never the HA thread's session: a session serves one thread at a time),
shared by the API's threads under a lock, a 3 s connect and read timeout and a 2 s statement
timeout. No request, no query. What the query cannot know (state, pending restart, tags, the
last decision, ...) still comes from the loop's view.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from . import pgwire

log = logging.getLogger("hatui.api")

# The states in which Patroni queries PostgreSQL for the REST API; in any other it answers state
# and role only, without asking.
LIVE_STATES = frozenset({"running", "restarting", "starting"})

CONNECT_TIMEOUT = 3.0  # seconds, Patroni's DEFAULT_CONNECT_TIMEOUT
READ_TIMEOUT = 3.0  # seconds a reply may take before the session is given up (a frozen server)
STATEMENT_TIMEOUT_MS = 2000  # Patroni's "-c statement_timeout=2000" for its own sessions

# One round trip for everything GET /patroni shows that PostgreSQL knows better than the last loop.
# pg_stat_get_wal_receiver() yields one all-NULL row when no WAL receiver runs, so the statement
# always returns exactly one row (Patroni selects FROM it the same way).
STATUS_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint END,
       CASE WHEN pg_is_in_recovery() THEN GREATEST((pg_control_checkpoint()).timeline_id,
                                                   (pg_control_recovery()).min_recovery_end_timeline)
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint,
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
       pg_last_xact_replay_timestamp(),
       pg_postmaster_start_time(),
       wr.status,
       wr.received_tli,
       pg_wal_lsn_diff(wr.latest_end_lsn, '0/0')::bigint,
       pg_wal_lsn_diff(wr.written_lsn, '0/0')::bigint,
       current_setting('restore_command'),
       (SELECT json_agg(r) FROM (
            SELECT usename, application_name, host(client_addr) AS client_addr, state, sync_state, sync_priority
              FROM pg_stat_replication ORDER BY application_name, pid) r)
  FROM pg_stat_get_wal_receiver() AS wr
"""

_COLUMNS = ("in_recovery", "flush_lsn", "timeline", "receive_lsn", "replay_lsn", "replay_paused",
            "replay_timestamp", "postmaster_start_time", "receiver_status", "received_tli",
            "latest_end_lsn", "written_lsn", "restore_command", "replication")

# Keys of the /patroni dict that come from a query: without an answer from PostgreSQL, none is sent.
QUERIED_KEYS = ("postmaster_start_time", "server_version", "xlog", "timeline", "replication",
                "replication_state", "latest_end_lsn")


class LiveStatus:
    """The REST API's own PostgreSQL session and the one query it runs per status request."""

    def __init__(self, connect_kwargs: Callable[[], dict[str, Any]]) -> None:
        self._connect_kwargs = connect_kwargs
        self._lock = threading.Lock()
        self._conn: pgwire.Connection | None = None
        self._failing = False  # logged once per outage, not once per health check

    def query(self) -> dict[str, Any] | None:
        """The live row as a dict, or None when PostgreSQL did not answer (the reason is logged)."""
        with self._lock:
            reused = self._conn is not None and not self._conn.closed
            try:
                row = self._run()
            except (pgwire.Error, OSError) as exc:
                self._drop()
                if not reused:
                    return self._failed(exc)
                # The kept session died (the server restarted since): once more, on a new one.
                try:
                    row = self._run()
                except (pgwire.Error, OSError) as exc2:
                    self._drop()
                    return self._failed(exc2)
        if self._failing:
            log.info("REST API: PostgreSQL answers the status query again")
            self._failing = False
        return row

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _run(self) -> dict[str, Any]:
        if self._conn is None or self._conn.closed:
            kw = {**self._connect_kwargs(), "connect_timeout": CONNECT_TIMEOUT, "application_name": "hatui restapi"}
            conn = pgwire.connect(**kw)
            try:
                conn._sock.settimeout(READ_TIMEOUT)  # pgwire leaves a session blocking: bound every reply
                conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        row = self._conn.execute(STATUS_SQL).fetchone()
        if row is None:  # cannot happen (see STATUS_SQL); a clear error if a server version differs
            raise pgwire.Error("the status query returned no row")
        return dict(zip(_COLUMNS, row, strict=True))

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            text = str(exc).strip().splitlines()
            log.warning("REST API: PostgreSQL did not answer the status query, answering without it: %s",
                        text[0] if text else type(exc).__name__)
            self._failing = True
        return None


def apply_live(status: dict[str, Any], row: dict[str, Any] | None, view_role: str,
               view_timeline: int | None, view_started: str | None) -> dict[str, Any]:
    """`status` (member.patroni_status of the loop's view) with what PostgreSQL said just now.

    row None: PostgreSQL was not asked (state not in LIVE_STATES) or did not answer. Then, as
    Patroni, the answer has no queried field, and a server the loop saw running is "unknown".
    """
    state = status.get("state")
    if row is None:
        out = {k: v for k, v in status.items() if k not in QUERIED_KEYS}
        if state == "running":
            out["state"] = "unknown"
        return _reordered(out)
    live: dict[str, Any] = {}
    if row["postmaster_start_time"] is not None:
        live["postmaster_start_time"] = str(row["postmaster_start_time"])
    if row["in_recovery"]:
        # A standby leader is a replica to PostgreSQL; the role is the loop's (Patroni: postgresql.role).
        live["role"] = "standby_leader" if view_role == "standby_leader" else "replica"
        replay = row["replay_lsn"]
        live["xlog"] = {
            # Patroni: what the receiver wrote, else what it flushed, else what was replayed.
            "received_location": _first_int(row["written_lsn"], row["receive_lsn"], replay),
            "replayed_location": replay,
            "replayed_timestamp": str(row["replay_timestamp"]) if row["replay_timestamp"] is not None else None,
            "paused": bool(row["replay_paused"]),
        }
        # The checkpoint's timeline lags after the upstream switched; the receiver's is newer. A
        # standby never goes back while its postmaster runs: keep the loop's if it is newer (queries.replica_timeline).
        tl = max(row["timeline"] or 0, row["received_tli"] or 0)
        if view_timeline and view_started is not None and view_started == live.get("postmaster_start_time"):
            tl = max(tl, view_timeline)
        timeline = tl or None
        if row["receiver_status"] == "streaming":
            live["replication_state"] = "streaming"
        elif row["restore_command"]:
            live["replication_state"] = "in archive recovery"
        if row["latest_end_lsn"]:
            live["latest_end_lsn"] = row["latest_end_lsn"]
    else:
        live["role"] = "primary"
        live["xlog"] = {"location": row["flush_lsn"]}
        timeline = row["timeline"]
        replication = _json_list(row["replication"])
        if replication:
            live["replication"] = replication
    if timeline is not None:
        live["timeline"] = timeline
    out = {k: v for k, v in status.items() if k not in QUERIED_KEYS and k != "role"}
    out.update(live)
    if "server_version" in status:
        out["server_version"] = status["server_version"]
    return _reordered(out)


# Patroni's key order (get_postgresql_status, then _write_status_response): tools diffing the JSON
# of a hatui node against a Patroni one see the same text.
_ORDER = ("state", "postmaster_start_time", "role", "server_version", "xlog", "sync_standby", "quorum_standby",
          "timeline", "latest_end_lsn", "replication_state", "replication")


def _reordered(out: dict[str, Any]) -> dict[str, Any]:
    head = {k: out[k] for k in _ORDER if k in out}
    return {**head, **{k: v for k, v in out.items() if k not in head}}


def _first_int(*values: Any) -> int | None:
    for v in values:
        if isinstance(v, int) and v:
            return v
    return next((v for v in values if isinstance(v, int)), None)


def _json_list(value: Any) -> list:
    if value is None:
        return []
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return []
    return data if isinstance(data, list) else []
