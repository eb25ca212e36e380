"""Fault injection against real etcd and PostgreSQL (issue 8).

Each scenario runs a private cluster (ttl 20, loop_wait 1, retry_timeout 3), a writer that
records every acknowledged commit, and a monitor that checks over and over how many servers
take writes. After the fault, each test waits for recovery (one leader, every member streaming)
and then checks: every acknowledged id is on the surviving primary, and no check ever found two
writable primaries. The fencing-off scenario is the exception on purpose: it reproduces the
talk's split brain to show what the guard prevents.

Fast scenarios run in the default suite; the ones that wait out a TTL are marked `slow`
(`./run.sh test-faults`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from faultkit import (FAST, connect, create_table, etcd_get, finish, ids_on, is_writable, log_has,
                      patroni, start_load, wait_healthy)

from servers import live_processes, process_args

pytestmark = pytest.mark.integration

FENCING_OFF = {"fencing": {"enabled": False}}


def test_kill9_leader_daemon_with_fencing(fault_cluster) -> None:
    """The guard stops the orphaned primary and hands the lock over: no split brain, no TTL wait."""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    new = next(n for n in cluster.nodes if n is not old)
    cluster.kill_node(old.name, postgres_too=False)
    cluster.wait_for(lambda: is_writable(new), 60, f"{new.name} promoted")
    # Order, not time: by the moment the replica took writes, the old primary had stopped.
    assert old.postmaster_pid() is None
    assert log_has(old, f"fencing guard stopped PostgreSQL: the daemon died (pid {old.daemon.pid}) while leader")
    assert log_has(old, "fencing guard released the leader key")
    # The monitor saw the old primary writable, then the new one, never both at one check.
    cluster.wait_for(lambda: monitor.seen_writable[-1:] == [new.name], 30, "the monitor to see the new primary")
    assert monitor.seen_writable[-2:] == [old.name, new.name]
    cluster.start_node(cluster.nodes.index(old))
    leader = finish(cluster, writer, monitor)
    assert leader is new
    assert {writer.acked[i] for i in writer.acked} == {old.pg_port, new.pg_port}


@pytest.mark.slow
def test_kill9_leader_daemon_without_fencing_split_brain(fault_cluster) -> None:
    """Fencing off (Patroni's behaviour): after the TTL the replica is promoted while the old
    primary still takes writes; when the old node comes back, pg_rewind throws those away."""
    cluster = fault_cluster(2, extra_node=FENCING_OFF)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    new = next(n for n in cluster.nodes if n is not old)
    with connect(old) as orphan:  # an application still connected to the old primary
        cluster.kill_node(old.name, postgres_too=False)
        cluster.wait_for(lambda: is_writable(new), 90, f"{new.name} promoted after the lease expired")
        orphan.execute("CREATE TABLE splitbrain (note text)")
        orphan.execute("INSERT INTO splitbrain VALUES ('accepted by the old primary after the failover')")
        assert is_writable(old) and is_writable(new)  # two writable primaries: the split brain
    writer.stop()
    cluster.start_node(cluster.nodes.index(old))
    leader = wait_healthy(cluster, 180)
    assert leader is new
    with connect(old) as conn:
        assert conn.execute("SELECT to_regclass('splitbrain')").fetchone() == (None,)
    assert log_has(old, "pg_rewind")
    monitor.stop()
    assert monitor.split, "the monitor should have seen both primaries writable"
    # Writes the writer got acknowledged by the old primary after the promotion are gone too.
    lost = set(writer.acked) - ids_on(leader)
    assert all(writer.acked[i] == old.pg_port for i in lost)


def test_kill9_leader_postgres_only(fault_cluster) -> None:
    """The daemon restarts its crashed primary in place: same leader, same timeline."""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    timeline = patroni(old).get("timeline")
    pid = old.postmaster_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    cluster.wait_for(lambda: old.postmaster_pid() not in (None, pid) and is_writable(old), 90,
                     f"{old.name} restarted")
    leader = finish(cluster, writer, monitor)
    assert leader is old
    assert patroni(old).get("timeline") == timeline
    # The decision is logged when the start action returns: pg_ctl start -w notices the server is
    # ready only at its next poll, so the server (and all finish() waits on) can be ahead of the log.
    cluster.wait_for(lambda: log_has(old, "starting primary after failure"), 30,
                     f"{old.name}'s log saying why it started")


@pytest.mark.slow
def test_etcd_suspended(fault_cluster) -> None:
    """etcd frozen: the primary turns read-only (it cannot know whether it still holds the
    lock); once etcd is back there is one leader again and nothing acknowledged is lost."""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    assert cluster.etcd is not None
    cluster.etcd.signal(signal.SIGSTOP)
    try:
        cluster.wait_for(lambda: not any(is_writable(n) for n in cluster.nodes), 60, "no writable primary")
        assert log_has(old, "demoting self because DCS is not accessible and I was a leader")
    finally:
        cluster.etcd.signal(signal.SIGCONT)
    finish(cluster, writer, monitor)


def test_all_nodes_restarted_at_once(fault_cluster) -> None:
    """Every daemon stopped at the same moment (SIGTERM, as a host-wide service restart), then
    all started together: one leader again, every member streaming, the writes intact."""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    for node in cluster.nodes:
        assert node.daemon is not None
        node.daemon.signal(signal.SIGTERM)
    for node in cluster.nodes:
        assert node.daemon is not None and node.daemon.popen is not None
        node.daemon.popen.wait(60)
    assert all(n.postmaster_pid() is None for n in cluster.nodes)
    for i in range(len(cluster.nodes)):
        cluster.start_node(i)
    finish(cluster, writer, monitor, async_tail_loss=True)


@pytest.mark.slow
def test_power_cut_of_every_node(fault_cluster) -> None:
    """kill -9 of every daemon and every PostgreSQL at once, then all start together."""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    for node in cluster.nodes:
        cluster.kill_node(node.name, postgres_too=True)
    cluster.wait_for(lambda: all(n.postmaster_pid() is None for n in cluster.nodes), 30, "everything down")
    for i in range(len(cluster.nodes)):
        cluster.start_node(i)
    finish(cluster, writer, monitor, async_tail_loss=True)


def test_second_daemon_with_a_running_name_refuses_to_start(fault_cluster) -> None:
    cluster = fault_cluster(2)
    leader = wait_healthy(cluster)
    pid = leader.postmaster_pid()
    res = subprocess.run([sys.executable, "-m", "hatui.daemon", str(leader.config_path)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode != 0
    assert f"there is already a node named '{leader.name}' running" in res.stderr
    # The running node was not disturbed: same postmaster, still the leader, nobody else writable.
    assert leader.postmaster_pid() == pid
    assert wait_healthy(cluster) is leader


@pytest.mark.slow
def test_lagging_replica_is_not_promoted(fault_cluster) -> None:
    """A replica more than maximum_lag_on_failover behind does not take over when the leader
    dies; the reason is in its log; the old leader, restarted, leads again with every write."""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    replica = next(n for n in cluster.nodes if n is not old)
    with connect(replica) as conn:
        receiver = conn.execute("SELECT pid FROM pg_stat_wal_receiver").fetchone()
    assert receiver, "the replica has no WAL receiver"
    os.kill(receiver[0], signal.SIGSTOP)  # the replica stops receiving, as over a slow link
    try:
        with connect(old) as conn:  # > maximum_lag_on_failover (1 MB) of WAL
            conn.execute("CREATE TABLE lag_filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
            lsn = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").fetchone()[0]
        # The replicas judge their lag against the optime the leader publishes every cycle.
        cluster.wait_for(lambda: (etcd_status_optime(cluster) or 0) >= lsn, 30, "the leader's optime in etcd")
        writer.stop()
        cluster.kill_node(old.name, postgres_too=True)
        cluster.wait_for(lambda: log_has(replica, "My wal position exceeds maximum replication lag"), 90,
                         "the replica refusing to race")
        assert not is_writable(replica)
        assert etcd_get(cluster, "/service/batman/leader") is None
        # The receiver stays frozen until the old leader leads again: WAL the dead primary had
        # already sent still sits in the socket buffer, and reading it would legitimately make
        # the replica fit to take over.
        cluster.start_node(cluster.nodes.index(old))
        cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/leader") == old.name, 120, "the old leader back")
    finally:
        try:
            os.kill(receiver[0], signal.SIGCONT)
        except ProcessLookupError:
            pass
    leader = wait_healthy(cluster, 180)
    assert leader is old
    monitor.stop()
    missing = set(writer.acked) - ids_on(leader)
    assert not missing
    assert not monitor.split


def etcd_status_optime(cluster) -> int | None:
    import json

    raw = etcd_get(cluster, "/service/batman/status")
    try:
        return int(json.loads(raw)["optime"]) if raw else None
    except (ValueError, KeyError, TypeError):
        return None



FAILSAFE = {**FAST, "failsafe_mode": True}


@pytest.mark.slow
def test_etcd_suspended_with_failsafe_keeps_the_primary(fault_cluster) -> None:
    """failsafe_mode on: every member confirms the primary over REST, so an etcd outage longer
    than the TTL does not take the cluster read-only, and the fencing guard does not fire."""
    cluster = fault_cluster(2, dcs=FAILSAFE)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/failsafe"), 30, "the /failsafe key")
    assert cluster.etcd is not None
    cluster.etcd.signal(signal.SIGSTOP)
    line = "continue to run as a leader because failsafe mode is enabled and all members are accessible"
    try:
        # Enough cycles without etcd that the lease (ttl 20) and the guard's deadline are long past.
        cluster.wait_for(lambda: old.log_path.read_text().count(line) >= 8, 120, "eight failsafe cycles")
        assert is_writable(old)
        assert patroni(old).get("failsafe_mode_is_active") is True
        writer.wait_acks(10)  # the application kept writing all along
    finally:
        cluster.etcd.signal(signal.SIGCONT)
    assert not log_has(old, "fencing guard stopped PostgreSQL")
    assert not log_has(old, "demoting self because DCS is not accessible")
    leader = finish(cluster, writer, monitor)
    assert leader is old


@pytest.mark.slow
def test_etcd_suspended_with_failsafe_and_a_member_down_demotes(fault_cluster) -> None:
    """failsafe_mode on, but one member cannot confirm: the primary demotes as without failsafe."""
    cluster = fault_cluster(3, dcs=FAILSAFE)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    cluster.wait_for(lambda: len(json.loads(etcd_get(cluster, "/service/batman/failsafe") or "{}")) == 3, 30,
                     "all three members in /failsafe")
    down = next(n for n in cluster.nodes if n is not old)
    cluster.kill_node(down.name, postgres_too=False)  # its REST API is gone; its replica keeps streaming
    assert cluster.etcd is not None
    cluster.etcd.signal(signal.SIGSTOP)
    try:
        cluster.wait_for(lambda: not any(is_writable(n) for n in cluster.nodes), 60, "no writable primary")
        assert log_has(old, f"failsafe: no confirmation from {down.name}")
    finally:
        cluster.etcd.signal(signal.SIGCONT)
    cluster.start_node(cluster.nodes.index(down))
    finish(cluster, writer, monitor)


def test_kill9_replica_node_rejoins(fault_cluster) -> None:
    """A replica's daemon and PostgreSQL killed together (its host crashed), then restarted:
    it streams again from the same leader and the primary never noticed."""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    leader = cluster.node(cluster.leader())
    replica = next(n for n in cluster.nodes if n is not leader)
    cluster.kill_node(replica.name, postgres_too=True)
    writer.wait_acks(20)
    cluster.start_node(cluster.nodes.index(replica))
    assert finish(cluster, writer, monitor) is leader


SYNC = {**FAST, "synchronous_mode": True}


def sync_key(cluster) -> dict:
    raw = etcd_get(cluster, "/service/batman/sync")
    return json.loads(raw) if raw else {}


def test_sync_mode_leader_crash_loses_no_acknowledged_commit(fault_cluster) -> None:
    """synchronous_mode on: the leader's host dies (daemon and PostgreSQL, kill -9) under write
    load; the synchronous standby takes over with every acknowledged commit."""
    cluster = fault_cluster(2, dcs=SYNC)
    leader = wait_healthy(cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    cluster.wait_for(lambda: sync_key(cluster).get("sync_standby") == replica.name, 60, "/sync naming the replica")
    with connect(leader) as conn:
        assert conn.execute("SHOW synchronous_standby_names").fetchone()[0] == f'"{replica.name}"'
    writer, monitor = start_load(cluster)
    cluster.kill_node(leader.name, postgres_too=True)
    cluster.wait_for(lambda: is_writable(replica), 60, f"{replica.name} promoted")
    cluster.start_node(cluster.nodes.index(leader))
    assert finish(cluster, writer, monitor) is replica  # strict: no acknowledged id may be missing
    cluster.wait_for(lambda: sync_key(cluster) == {"leader": replica.name, "quorum": 0, "sync_standby": leader.name},
                     60, "/sync naming the old leader as the new synchronous standby")


@pytest.mark.slow
def test_sync_strict_with_the_replica_down_commits_wait(fault_cluster) -> None:
    """synchronous_mode_strict: with no standby left, a commit waits (no silent fall back to
    asynchronous); it is acknowledged once a standby is back."""
    cluster = fault_cluster(2, dcs={**SYNC, "synchronous_mode_strict": True})
    leader = wait_healthy(cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    cluster.wait_for(lambda: sync_key(cluster).get("sync_standby") == replica.name, 60, "/sync naming the replica")
    create_table(leader)
    warning = "synchronous_mode_strict is requested. Commits will be delayed"
    before = leader.log_path.read_text().count(warning)  # also logged at bootstrap, before any replica
    cluster.kill_node(replica.name, postgres_too=True)
    cluster.wait_for(lambda: leader.log_path.read_text().count(warning) > before, 60, "the strict-mode warning")
    assert sync_key(cluster).get("sync_standby") is None  # /sync dropped the replica before the GUC did
    result: dict = {}

    def insert() -> None:
        with connect(leader) as conn:
            conn.execute("INSERT INTO fault_writes (id, port) VALUES (-1, 0)")
            result["acked"] = True

    import threading

    t = threading.Thread(target=insert, daemon=True)
    t.start()

    def waiting_for_sync_rep() -> bool:
        with connect(leader) as conn:
            return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
                        .fetchone()[0])

    cluster.wait_for(waiting_for_sync_rep, 30, "a commit waiting for a synchronous standby")
    assert "acked" not in result
    cluster.start_node(cluster.nodes.index(replica))
    t.join(120)
    assert result.get("acked") is True
    assert -1 in ids_on(replica)
    assert wait_healthy(cluster) is leader


def _node_pids(node) -> list[int]:
    """The daemon, its fencing guard, the postmaster and every PostgreSQL child: a whole host."""
    daemon = node.daemon.pid if node.daemon else None
    postmaster = node.postmaster_pid()
    pids = []
    for pid, ppid in live_processes():
        if pid in (daemon, postmaster) or (postmaster and ppid == postmaster):
            pids.append(pid)
        elif b"hatui.daemon.fence" in process_args(pid) and str(daemon).encode() in process_args(pid):
            pids.append(pid)
    return pids


def _freeze_node(node) -> list[int]:
    """SIGSTOP every process of the node; the pids stopped. A backend may end between the listing
    and its signal (a client's session closing; seen once in CI): it is gone, not running, so it
    is skipped. The daemon, its guard and the postmaster must be there. A second listing catches a
    child forked just before the postmaster stopped."""
    essential = {node.daemon.pid, node.postmaster_pid()}
    stopped: list[int] = []
    try:
        for _ in range(2):
            for pid in _node_pids(node):
                if pid in stopped:
                    continue
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    assert pid not in essential, f"process {pid} of {node.name} vanished"
                    continue
                stopped.append(pid)
    except BaseException:
        # Never leave a stopped process behind: stopped backends cannot notice their postmaster's
        # end, and would outlive the test (seen after the failure this helper was written for).
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        raise
    return stopped


@pytest.mark.slow
def test_whole_leader_node_frozen_then_resumed(fault_cluster) -> None:
    """SIGSTOP of the leader's daemon, guard and PostgreSQL together (a VM pause) past the TTL;
    the replica takes over; on SIGCONT the old node is fenced and rejoins through pg_rewind.

    A frozen host cannot fence itself while frozen: in the instant after it resumes, before
    the guard (also just resumed) stops it, the old primary completes the commit that was in
    flight and may take a few more from a client still connected to it (a few tens of ms on a
    busy machine). Those are rewound away. So the only loss allowed here is a tail of the old
    primary's acknowledgements; in Patroni without a watchdog that window lasts until the
    daemon wakes up and demotes."""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    new = next(n for n in cluster.nodes if n is not old)
    frozen = _freeze_node(old)
    assert len(frozen) >= 4  # daemon, guard, postmaster, its children
    try:
        cluster.wait_for(lambda: is_writable(new), 90, f"{new.name} promoted after the lease expired")
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    leader = wait_healthy(cluster, 180)
    assert leader is new
    writer.wait_acks(10)
    writer.stop()
    monitor.stop()
    present = ids_on(leader)
    lost = sorted(set(writer.acked) - present)
    assert all(writer.acked[i] == old.pg_port for i in lost), lost
    survived_from_old = [i for i in present if writer.acked.get(i) == old.pg_port]
    assert not lost or not survived_from_old or max(survived_from_old) < lost[0], "a loss that is not a tail"
    print(f"whole-node freeze: {len(lost)} acknowledged id(s) taken by the old primary after it resumed: {lost}")
    assert log_has(old, "pg_rewind")
