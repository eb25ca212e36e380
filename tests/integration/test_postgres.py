"""hatui.daemon.postgres and queries against real PostgreSQL servers started by the tests.

Each test gets its own temp dir under /tmp (traversable by the postgres OS user) and free ports on
127.0.0.1; the finalizer stops every server it created and kills leftovers by PID, even when the
test failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest

from hatui.daemon import queries
from hatui.daemon.postgres import Postgres, PostgresError, needs_rewind
from hatui.pgbin import find_bin_dir
from servers import _pid_alive as pid_alive
from servers import free_port, make_tempdir, remove_tree
from servers import process_owner_uid as owner_uid

pytestmark = pytest.mark.integration

try:
    find_bin_dir()
except RuntimeError:  # pragma: no cover - the test machine has PostgreSQL
    pytest.skip("PostgreSQL server binaries not installed", allow_module_level=True)

SUPERUSER = ("postgres", "su-pass")
REPLICATION = ("replicator", "rep-pass")
REWIND = ("rewinder", "rw-pass")


def wait_until(check: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


class Servers:
    """Creates Postgres objects in one temp dir and cleans up after them."""

    def __init__(self) -> None:
        self.base = str(make_tempdir("hatui-pgtest-"))
        self.nodes: list[Postgres] = []
        self.extra_pids: list[int] = []

    def new(self, name: str, **kw) -> Postgres:
        kw.setdefault("superuser", SUPERUSER)
        kw.setdefault("replication", REPLICATION)
        kw.setdefault("rewind", REWIND)
        pg = Postgres(name, os.path.join(self.base, name, "data"), port=free_port(), **kw)
        self.nodes.append(pg)
        return pg

    def primary(self, name: str = "pg0") -> Postgres:
        pg = self.new(name)
        pg.initdb([{"encoding": "UTF8"}, {"locale": "C"}])
        pg.write_config()
        assert pg.start() is True
        queries.setup_roles(pg)
        return pg

    def replica_of(self, primary: Postgres, name: str = "pg1") -> Postgres:
        pg = self.new(name)
        pg.basebackup("127.0.0.1", primary.port, *REPLICATION)
        pg.write_config(standby=pg.standby_config("127.0.0.1", primary.port))
        pg.start()
        wait_until(lambda: queries.fetch_state(pg).replication_state == "streaming", f"{name} to stream")
        return pg

    def cleanup(self) -> None:
        for pg in self.nodes:
            try:
                pg.stop("immediate", timeout=10)
            except Exception:
                pass
        pids = set(self.extra_pids)
        for pg in self.nodes:
            pids.update(pg.data_dir_processes())
            pid = pg.postmaster_pid()
            if pid:
                pids.add(pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        remove_tree(self.base)


@pytest.fixture
def servers():
    s = Servers()
    try:
        yield s
    finally:
        s.cleanup()


def assert_runs_as_server_user(pg: Postgres) -> int:
    pid = pg.postmaster_pid()
    assert pid is not None
    assert owner_uid(pid) == pg.user.uid
    if os.geteuid() == 0:
        assert pg.user.uid != 0
    return pid


def rows(pg: Postgres, query: str) -> list[tuple]:
    return queries.execute(pg, query)


# ---------------------------------------------------------------------------------------------


def test_initdb_start_and_state_as_primary(servers):
    pg = servers.new("pg0")
    assert pg.data_dir_state() == "missing"
    assert pg.sysid() is None
    pg.initdb(["data-checksums"])
    assert pg.data_dir_state() == "valid"
    st = os.stat(pg.data_dir)
    assert (st.st_mode & 0o777, st.st_uid) == (0o700, pg.user.uid)

    assert pg.write_config() is True
    assert pg.write_config() is False  # nothing new to write
    base_conf = Path(pg.data_dir, "postgresql.base.conf").read_text()
    assert "max_connections" in base_conf  # initdb's original file, kept and included
    conf = Path(pg.data_dir, "postgresql.conf").read_text()
    assert "include 'postgresql.base.conf'" in conf and f"port = '{pg.port}'" in conf
    assert pg.can_rewind()

    assert pg.start() is True
    pid = assert_runs_as_server_user(pg)
    assert pg.start() is True and pg.postmaster_pid() == pid  # already running: nothing started
    assert pg.is_running() and pg.is_healthy()
    assert pg.postmaster_status() == "ready"
    # pg_ctl detached the postmaster: not in our session, not our child
    assert os.getsid(pid) != os.getsid(0)
    assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) != os.getpid()

    state = queries.fetch_state(pg)
    assert state.running and state.accepting_connections and state.role == "primary"
    assert state.in_recovery is False and state.timeline == 1 and state.replication_state is None
    assert state.sysid == pg.sysid() and state.sysid.isdigit()
    assert state.server_version == int(rows(pg, "SHOW server_version_num")[0][0])
    assert state.wal_position and state.wal_position > 0
    assert state.pending_restart is False and state.replicas == []
    assert state.postmaster_start_time
    assert queries.settings(pg, ["wal_log_hints", "wal_level", "no_such_setting"]) == {
        "wal_log_hints": "on", "wal_level": "replica", "no_such_setting": None,
    }
    # the superuser got its password: a TCP login with it works
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=pg.port, user=SUPERUSER[0], password=SUPERUSER[1],
                         dbname="postgres") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    assert pg.stop() is True
    assert pg.stop() is False
    assert not pg.is_running()
    assert queries.fetch_state(pg).running is False
    assert pg.cluster_state() == "shut down" and pg.was_cleanly_shut_down()
    assert pg.timeline() == 1

    with pytest.raises(PostgresError, match="not empty"):
        pg.initdb()
    empty = servers.new("empty")
    os.makedirs(empty.data_dir)
    assert empty.data_dir_state() == "empty"
    Path(empty.data_dir, "junk").write_text("x")
    assert empty.data_dir_state() == "invalid"
    first = empty.move_data_dir_aside()
    assert first == empty.data_dir + ".failed" and Path(first, "junk").exists()
    os.makedirs(empty.data_dir)
    second = empty.move_data_dir_aside()
    assert second.startswith(first + ".") and empty.data_dir_state() == "missing"

    assert pg.start() is True
    with pytest.raises(PostgresError, match="running"):
        pg.remove_data_dir()
    pg.stop()
    pg.remove_data_dir()
    assert pg.data_dir_state() == "missing"


def test_replica_promote_divergence_and_rewind(servers):
    old = servers.primary("pg0")
    queries.execute(old, "CREATE TABLE t (id int PRIMARY KEY, note text)")
    queries.execute(old, "INSERT INTO t VALUES (1, 'before the split')")

    new = servers.new("pg1")
    with pytest.raises(PostgresError, match="pg_basebackup"):
        new.basebackup("127.0.0.1", old.port, REPLICATION[0], "wrong password", timeout=60)
    assert new.data_dir_state() == "missing"  # the partial copy is gone

    new.basebackup("127.0.0.1", old.port, *REPLICATION, timeout=120)
    assert new.write_config(standby=new.standby_config("127.0.0.1", old.port)) is True
    assert Path(new.data_dir, "standby.signal").exists()
    new.start()
    assert_runs_as_server_user(new)
    wait_until(lambda: queries.fetch_state(new).replication_state == "streaming", "the replica to stream")
    wait_until(lambda: rows(new, "SELECT note FROM t WHERE id = 1"), "row 1 on the replica")

    rstate = queries.fetch_state(new)
    assert rstate.role == "replica" and rstate.timeline == 1
    assert rstate.sysid == queries.fetch_state(old).sysid
    assert rstate.upstream_port == old.port and rstate.receive_lsn and rstate.replay_lsn
    pstate = queries.fetch_state(old)
    assert [(r["application_name"], r["usename"], r["state"]) for r in pstate.replicas] == [
        ("pg1", "replicator", "streaming")
    ]

    # --- failover: promote the replica, then write on both sides --------------------------------
    assert new.promote() is True
    assert not Path(new.data_dir, "standby.signal").exists()
    wait_until(lambda: queries.fetch_state(new).role == "primary", "the promotion")
    assert queries.fetch_state(new).timeline == 2
    queries.checkpoint(new)  # pg_rewind reads the source's control file: it must show timeline 2
    assert queries.fetch_state(new).checkpoint_after_promote is True
    queries.execute(new, "INSERT INTO t VALUES (2, 'new primary after the split')")
    queries.execute(old, "INSERT INTO t VALUES (3, 'old primary after the split')")
    assert new.write_config(standby=None) is True  # drops primary_conninfo
    assert new.write_config(standby=None) is False

    assert old.stop() is True
    history = new.read_history_file(2)
    assert history == queries.timeline_history(new, 2)
    assert [h[0] for h in history] == [1]
    local_tl, local_end = old.local_wal_end()
    assert local_tl == 1 and local_end > history[0][1]
    assert needs_rewind(local_tl, local_end, history) is True

    # --- rejoin: rewind from the new primary and follow it -------------------------------------
    ok, output = old.rewind(
        old.rewind_conninfo("127.0.0.1", new.port), source_name="pg1",
        standby=old.standby_config("127.0.0.1", new.port),
    )
    assert ok, output
    assert "Done!" in output
    assert Path(old.data_dir, "standby.signal").exists()
    # our config files survived, not the source's copies
    assert f"port = '{old.port}'" in Path(old.data_dir, "postgresql.conf").read_text()
    old.start()
    assert_runs_as_server_user(old)
    wait_until(lambda: queries.fetch_state(old).replication_state == "streaming", "the rewound node")
    queries.execute(new, "INSERT INTO t VALUES (4, 'after the rejoin')")
    wait_until(lambda: rows(old, "SELECT 1 FROM t WHERE id = 4"), "row 4 on the rejoined node")
    assert [r[0] for r in rows(old, "SELECT id FROM t ORDER BY id")] == [1, 2, 4]  # row 3 is gone
    assert queries.fetch_state(old).timeline == 2
    assert [r["application_name"] for r in queries.fetch_state(new).replicas] == ["pg0"]


def test_a_rewound_replica_not_yet_streaming_reports_the_new_timeline(servers):
    """Right after pg_rewind, before its WAL receiver streams, a replica's last checkpoint is the
    common one on timeline 1 while it has replayed past the branch point on timeline 2 (the WAL
    pg_rewind copied). Reported as "timeline 1 past the branch", it looked diverged and the HA
    loop stopped it to rewind again. Its minimum recovery point's timeline says 2."""
    old = servers.primary("pg0")
    queries.execute(old, "CREATE TABLE t (id int PRIMARY KEY)")
    new = servers.replica_of(old, "pg1")
    assert new.promote() is True
    queries.execute(new, "INSERT INTO t SELECT generate_series(1, 20000)")
    queries.checkpoint(new)
    queries.execute(old, "INSERT INTO t VALUES (0)")  # the old primary diverges
    assert old.stop() is True
    history = new.read_history_file(2)
    nowhere = free_port()  # the upstream is unreachable: no receiver, no received timeline
    ok, output = old.rewind(old.rewind_conninfo("127.0.0.1", new.port), source_name="pg1",
                            standby=old.standby_config("127.0.0.1", nowhere))
    assert ok, output
    old.start()
    state = wait_until(lambda: (s := queries.fetch_state(old)).accepting_connections and s, "the rewound node to answer")
    assert state.role == "replica" and state.replication_state is None and state.received_timeline is None
    assert state.checkpoint_timeline == 1 and state.wal_position > history[0][1]  # the case itself
    assert state.timeline == 2
    assert needs_rewind(state.timeline, state.wal_position, history) is False


def test_clean_switchover_needs_no_rewind(servers):
    old = servers.primary("pg0")
    new = servers.replica_of(old, "pg1")
    queries.execute(old, "CREATE TABLE t AS SELECT 1 AS id")

    assert old.stop() is True  # a fast shutdown sends the shutdown checkpoint to the replica
    local_tl, local_end = old.local_wal_end()
    wait_until(lambda: (queries.fetch_state(new).receive_lsn or 0) >= local_end, "the shutdown checkpoint")
    new.promote()
    history = new.read_history_file(2)
    assert history[0][:2] == (1, local_end)  # the new timeline starts right after our last record
    assert needs_rewind(local_tl, local_end, history) is False

    old.write_config(standby=old.standby_config("127.0.0.1", new.port))
    old.start()
    wait_until(lambda: queries.fetch_state(old).replication_state == "streaming", "the old primary to stream")
    assert queries.fetch_state(old).timeline == 2
    assert rows(old, "SELECT id FROM t") == [(1,)]


def test_reload_and_pending_restart(servers):
    pg = servers.primary("pg0")
    assert queries.settings(pg, ["work_mem"]) == {"work_mem": "4MB"}

    assert pg.write_config(parameters={"work_mem": "8MB"}) is True
    pg.reload()
    wait_until(lambda: queries.settings(pg, ["work_mem"])["work_mem"] == "8MB", "work_mem after reload")
    assert queries.fetch_state(pg).pending_restart is False

    assert pg.write_config(parameters={"work_mem": "8MB", "max_connections": 150}) is True
    pg.reload()
    state = wait_until(
        lambda: (s := queries.fetch_state(pg)).pending_restart and s, "pending_restart after reload"
    )
    assert state.pending_restart_reason == {"max_connections": {"old_value": "100", "new_value": "150"}}
    assert queries.settings(pg, ["max_connections"]) == {"max_connections": "100"}

    assert pg.restart() is True
    state = queries.fetch_state(pg)
    assert state.pending_restart is False and state.pending_restart_reason == {}
    assert queries.settings(pg, ["max_connections", "work_mem"]) == {
        "max_connections": "150", "work_mem": "8MB",
    }

    # a value PostgreSQL rejects: start fails and says why (from the server log)
    pg.write_config(parameters={"shared_buffers": "lots"})
    pg.stop()
    with pytest.raises(PostgresError, match="shared_buffers"):
        pg.start(timeout=20)
    assert not pg.is_running()


def test_kill9_postmaster_then_single_user_crash_recovery(servers):
    pg = servers.primary("pg0")
    queries.execute(pg, "CREATE TABLE t AS SELECT generate_series(1, 1000) AS id")
    pid = assert_runs_as_server_user(pg)

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid) and not pg.data_dir_processes(), "the killed server's processes")
    assert pg.is_running() is False  # postmaster.pid is still there, but stale
    assert Path(pg.data_dir, "postmaster.pid").exists()
    assert pg.cluster_state() == "in production" and not pg.was_cleanly_shut_down()
    assert pg.local_wal_end() is None  # not usable before crash recovery

    pg.single_user_recovery()
    assert pg.cluster_state() == "shut down" and pg.was_cleanly_shut_down()
    assert pg.local_wal_end()[0] == 1

    assert pg.start() is True
    assert rows(pg, "SELECT count(*) FROM t") == [(1000,)]


def test_postmaster_survives_sigkill_of_the_daemon(servers):
    pg = servers.new("pg0")
    pg.initdb()
    pg.write_config()
    # A stand-in daemon in its own process group: it starts PostgreSQL and then waits.
    daemon = textwrap.dedent(f"""
        import sys, time
        from hatui.daemon.postgres import Postgres
        pg = Postgres("pg0", {pg.data_dir!r}, port={pg.port})
        pg.start()
        print(pg.postmaster_pid(), flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", daemon], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    servers.extra_pids.append(proc.pid)
    pid = int(proc.stdout.readline())
    assert pid == pg.postmaster_pid()

    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the daemon's whole process group
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert pid_alive(pid) and pg.postmaster_pid() == pid
    assert pg.is_healthy()
    assert owner_uid(pid) == pg.user.uid


def test_sessions_to_other_nodes_use_libpq_only_when_tls_is_there(servers):
    """queries.connect_other: the built-in client for a server that does not offer TLS and no TLS
    option set (a rewind's CHECKPOINT or a switchover's position check then costs no psycopg in
    the daemon's memory); psycopg, encrypted as libpq's sslmode=prefer would be, for a server with
    ssl on; psycopg with the options as given when any is set."""
    from test_etcd_tls import make_certificates

    from hatui.daemon import pgwire

    kw = dict(host="127.0.0.1", user=SUPERUSER[0], password=SUPERUSER[1], dbname="postgres",
              connect_timeout=3, autocommit=True)
    encrypted = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    plain = servers.primary("pg0")
    with queries.connect_other({}, port=plain.port, **kw) as conn:
        assert isinstance(conn, pgwire.Connection)
        assert conn.execute(encrypted).fetchone() == (False,)

    tls = servers.primary("pg1")
    _, cert, key = make_certificates(Path(tls.data_dir).parent)
    for path in (cert, key):
        tls.user.chown(path)
    tls.write_config({"ssl": "on", "ssl_cert_file": str(cert), "ssl_key_file": str(key)})
    tls.restart()
    with queries.connect_other({}, port=tls.port, **kw) as conn:
        assert not isinstance(conn, pgwire.Connection)
        assert conn.execute(encrypted).fetchone() == (True,)
    with queries.connect_other({"sslmode": "disable"}, port=tls.port, **kw) as conn:
        assert not isinstance(conn, pgwire.Connection)
        assert conn.execute(encrypted).fetchone() == (False,)
