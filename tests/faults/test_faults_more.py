"""More fault scenarios of issue 8: a 3-member etcd losing members, a leader PostgreSQL that
cannot restart, and synchronous mode losing the primary and its sync standby together.

Same rules as test_faults.py: private clusters (ttl 20, loop_wait 1, retry_timeout 3), a writer
recording acknowledged commits, a monitor checking there is never more than one writable
primary, and checks about outcomes and order only (no timing assertions).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from faultkit import (FAST, connect, etcd_get, finish, hatui_cli, is_writable, log_has, patroni, start_load,
                      sync_key, sync_roles, wait_healthy)

from servers import EtcdCluster, make_tempdir, remove_tree

pytestmark = pytest.mark.integration

SYNC = {**FAST, "synchronous_mode": True}
DEMOTION_LINES = ("demoting self", "demoted self", "fencing guard stopped PostgreSQL")


@pytest.fixture
def etcd3() -> Iterator[EtcdCluster]:
    """A 3-member etcd cluster. Requested before fault_cluster, so it is torn down after the
    nodes (which need etcd to shut down cleanly)."""
    base = make_tempdir("hatui-fault-etcd3-")
    etcd = EtcdCluster(base / "etcd", 3)
    try:
        etcd.start().wait_ready()
        yield etcd
    finally:
        etcd.stop()
        remove_tree(base)


def log_count(node, text: str) -> int:
    try:
        return node.log_path.read_text(errors="replace").count(text)
    except OSError:
        return 0


def demotion_lines(node) -> list[str]:
    try:
        lines = node.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if any(d in line for d in DEMOTION_LINES)]


# ---- 1. a 3-member etcd cluster losing members ---------------------------------------------------


@pytest.mark.slow
def test_etcd_cluster_losing_one_then_two_members(etcd3, fault_cluster) -> None:
    """One etcd member down: quorum holds, nothing happens (same leader, still writable, no
    demotion). Two down: no quorum, the leader demotes to read-only. Members back: one leader,
    every member streaming, no acknowledged write lost."""
    cluster = fault_cluster(2, etcd_hosts=",".join(etcd3.endpoints))
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    steady = f"no action. I am ({old.name}), the leader with the lock"

    # The test reads etcd through member 0 (etcd_endpoint), so members 2 then 1 go down.
    etcd3.kill_member(2)
    before = log_count(old, steady)
    # Many HA cycles (well past retry_timeout) with one member gone.
    cluster.wait_for(lambda: log_count(old, steady) >= before + 10, 120, "ten steady cycles of the leader")
    writer.wait_acks(20)
    assert is_writable(old)
    assert cluster.leader() == old.name
    assert etcd_get(cluster, "/service/batman/leader") == old.name
    assert all(not demotion_lines(n) for n in cluster.nodes), [demotion_lines(n) for n in cluster.nodes]

    etcd3.kill_member(1)  # quorum lost: no lease can be renewed, no key read linearizably
    print(f"etcd quorum lost at {datetime.now(timezone.utc):%H:%M:%S.%f} UTC")
    cluster.wait_for(lambda: not any(is_writable(n) for n in cluster.nodes), 90, "no writable primary")
    # When the lease could not be kept, the only such line is the decision "demoted self because
    # failed to update leader lock in DCS", logged once the demote action has stopped PostgreSQL
    # (pg_ctl stop -w polls), a moment after the server stopped taking writes: wait for it.
    cluster.wait_for(lambda: any("DCS is not accessible" in line or "failed to update leader lock" in line
                                 for line in demotion_lines(old)), 30,
                     f"{old.name}'s log saying it demoted because of etcd")
    print(f"{old.name} after the quorum loss: {demotion_lines(old)[:2]}")

    etcd3.start_member(1)
    etcd3.start_member(2)
    finish(cluster, writer, monitor)


# ---- 2. a leader PostgreSQL that cannot restart --------------------------------------------------


def test_leader_postgres_that_cannot_restart(fault_cluster) -> None:
    """A setting that stops PostgreSQL from starting (ALTER SYSTEM naming a preload library that
    does not exist, a classic operator slip) takes effect when the leader's PostgreSQL crashes.
    The daemon's restart in place fails; it must let go of the lock so the replica takes over
    (Patroni, spec 2.2 item 7: 'removed leader key after trying and failing to start postgres').

    (This test found that hatui used to retry the start every cycle while keeping the lock.)"""
    cluster = fault_cluster(2)
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    new = next(n for n in cluster.nodes if n is not old)
    with connect(old) as conn:
        # postgresql.auto.conf is not replicated and the daemon does not rewrite it.
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'hatui_no_such_library'")
    pid = old.postmaster_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    cluster.wait_for(lambda: is_writable(new), 120, f"{new.name} promoted")
    assert log_has(old, "removed leader key after trying and failing to start postgres")
    assert log_has(old, "failed to start postgres")
    assert not is_writable(old)
    # The operator repairs the setting; the old leader rejoins as a replica.
    auto = old.data_dir / "postgresql.auto.conf"
    auto.write_text("".join(line for line in auto.read_text().splitlines(keepends=True)
                            if "hatui_no_such_library" not in line))
    leader = finish(cluster, writer, monitor, async_tail_loss=True)
    assert leader is new


# ---- 3. synchronous mode: primary and sync standby lost together ---------------------------------


def test_sync_mode_primary_and_sync_standby_lost_together(fault_cluster) -> None:
    """synchronous_mode on, 3 nodes: the primary and its synchronous standby die together. The
    asynchronous replica may lack acknowledged commits, so it must not be promoted; once the
    synchronous standby is back, it (or the old leader) leads with every acknowledged write."""
    cluster = fault_cluster(3, dcs=SYNC)
    leader, sync, lone = sync_roles(cluster)
    writer, monitor = start_load(cluster)
    assert sync_key(cluster).get("sync_standby") == sync.name  # the same standby under load
    cluster.kill_node(leader.name, postgres_too=True)
    cluster.kill_node(sync.name, postgres_too=True)
    reason = f"{lone.name} is not a synchronous standby and synchronous mode is on"
    cluster.wait_for(lambda: log_has(lone, reason), 90, f"{lone.name} refusing to race")
    # Let the lease expire fully and a few more cycles run: still nobody may take over.
    cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/leader") is None, 60, "the leader key gone")
    seen = log_count(lone, reason)
    cluster.wait_for(lambda: log_count(lone, reason) >= seen + 5, 60, "five more cycles")
    assert not is_writable(lone)
    assert patroni(lone).get("role") != "primary"
    assert etcd_get(cluster, "/service/batman/leader") is None
    # The synchronous standby's host comes back: it holds every acknowledged commit.
    cluster.start_node(cluster.nodes.index(sync))
    cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/leader") == sync.name, 120,
                     f"{sync.name} taking over")
    cluster.start_node(cluster.nodes.index(leader))
    assert finish(cluster, writer, monitor) is sync


def test_sync_mode_lost_pair_explicit_failover(fault_cluster) -> None:
    """The same loss of the primary and its synchronous standby, but the operator decides that
    availability matters more than the commits the asynchronous replica may lack: an explicit
    `hatui failover --candidate <async replica>` is the one thing that may promote it. The other
    two members, started again, rejoin it (rewound where they had diverged)."""
    cluster = fault_cluster(3, dcs=SYNC)
    leader, sync, lone = sync_roles(cluster)
    writer, monitor = start_load(cluster)
    cluster.kill_node(leader.name, postgres_too=True)
    cluster.kill_node(sync.name, postgres_too=True)
    reason = f"{lone.name} is not a synchronous standby and synchronous mode is on"
    cluster.wait_for(lambda: log_has(lone, reason), 90, f"{lone.name} refusing to race")
    cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/leader") is None, 60, "the leader key gone")
    assert not is_writable(lone)

    cli = hatui_cli(cluster, "failover", "batman", "--candidate", lone.name, "--force")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/leader") == lone.name, 60,
                     f"{lone.name} promoted by the operator")
    cluster.wait_for(lambda: is_writable(lone), 30, f"{lone.name} writable")
    cluster.wait_for(lambda: log_has(lone, "promoted self to leader by acquiring session lock"), 30,
                     "the promotion logged")
    # /sync now names the new leader (claimed before its promotion): the old pair's claim is gone.
    assert sync_key(cluster).get("leader") == lone.name
    cluster.start_node(cluster.nodes.index(sync))
    cluster.start_node(cluster.nodes.index(leader))
    # The operator accepted the loss of what only the dead pair had: a tail at most, never a gap.
    assert finish(cluster, writer, monitor, async_tail_loss=True) is lone


def test_quorum_mode_leader_and_one_voter_lost(fault_cluster) -> None:
    """synchronous_mode quorum, 3 nodes: commits wait for ANY 1 of the two replicas, so neither
    alone is known to have them all. The leader and one replica die together under load: the
    other replica must not promote (it cannot see a second voter); once the lost replica's host
    is back, one of the two takes over with every acknowledged commit."""
    cluster = fault_cluster(3, dcs={**FAST, "synchronous_mode": "quorum"})
    leader = wait_healthy(cluster)
    others = [n for n in cluster.nodes if n is not leader]
    names = ",".join(sorted(n.name for n in others))
    cluster.wait_for(lambda: sync_key(cluster) == {"leader": leader.name, "quorum": 1, "sync_standby": names}, 60,
                     "/sync listing both replicas as voters, quorum 1")
    with connect(leader) as conn:
        guc = conn.execute("SHOW synchronous_standby_names").fetchone()[0]
        states = {r[0]: r[1] for r in conn.execute("SELECT application_name, sync_state FROM pg_stat_replication")}
    assert guc == "ANY 1 (" + ",".join(f'"{n}"' for n in sorted(n.name for n in others)) + ")"
    assert states == {n.name: "quorum" for n in others}
    listing = hatui_cli(cluster, "list", "batman")
    assert listing.stdout.count("Quorum Standby") == 2, listing.stdout

    writer, monitor = start_load(cluster)
    lost, lone = others
    cluster.kill_node(leader.name, postgres_too=True)
    cluster.kill_node(lost.name, postgres_too=True)
    reason = "Quorum requirement 2 can't be reached"
    cluster.wait_for(lambda: log_has(lone, reason), 90, f"{lone.name} refusing to promote without a second voter")
    seen = log_count(lone, reason)
    cluster.wait_for(lambda: log_count(lone, reason) >= seen + 3, 60, "three more cycles")
    assert not is_writable(lone)
    assert etcd_get(cluster, "/service/batman/leader") is None
    cluster.start_node(cluster.nodes.index(lost))
    cluster.wait_for(lambda: etcd_get(cluster, "/service/batman/leader") in (lost.name, lone.name), 120,
                     "a voter taking over once it sees the other")
    cluster.start_node(cluster.nodes.index(leader))
    new = finish(cluster, writer, monitor)  # strict: no acknowledged id may be missing
    assert new in (lost, lone)


@pytest.mark.slow
def test_leader_restart_longer_than_ttl_keeps_the_lock(fault_cluster) -> None:
    """A restart of the leader's PostgreSQL that takes longer than ttl (here its postmaster is
    frozen, so the shutdown hangs) must not cost the lock: the daemon keeps its lease alive while
    the restart runs, the replica never takes over, and the leader comes back on the same
    timeline with every acknowledged commit."""
    import threading
    import time
    import urllib.request

    cluster = fault_cluster(2)
    leader = wait_healthy(cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    writer, monitor = start_load(cluster)
    writer.wait_acks(20)
    postmaster = leader.postmaster_pid()
    assert postmaster is not None
    answer: dict = {}

    def restart() -> None:
        req = urllib.request.Request(f"{leader.api_url}/restart", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - loopback test node
                answer["status"] = resp.status
        except urllib.error.HTTPError as exc:
            answer["status"] = exc.code

    os.kill(postmaster, signal.SIGSTOP)
    try:
        t = threading.Thread(target=restart, daemon=True)
        t.start()
        cluster.wait_for(lambda: log_has(leader, "restarting PostgreSQL"), 30, "the restart started")
        frozen_until = time.monotonic() + FAST["ttl"] + 8  # well past the lease's ttl
        while time.monotonic() < frozen_until:
            assert etcd_get(cluster, "/service/batman/leader") == leader.name
            time.sleep(0.5)
    finally:
        os.kill(postmaster, signal.SIGCONT)
    t.join(90)
    assert answer.get("status") == 200, answer
    assert etcd_get(cluster, "/service/batman/leader") == leader.name
    assert not log_has(replica, "promoted self to leader")
    assert finish(cluster, writer, monitor) is leader
    assert patroni(leader).get("timeline") == 1


def test_sync_standby_leaves_the_sync_set_before_it_stops(fault_cluster) -> None:
    """synchronous_mode on, 3 nodes: the synchronous standby is stopped cleanly (SIGTERM) under
    write load. It first asks the primary to choose the other replica, and only once `/sync` no
    longer names it does it stop its PostgreSQL: commits never wait on a standby that is going
    away. Nothing acknowledged is lost, and the stopped node rejoins as an asynchronous replica."""
    cluster = fault_cluster(3, dcs=SYNC)
    leader = wait_healthy(cluster)
    cluster.wait_for(lambda: sync_key(cluster).get("sync_standby") in {n.name for n in cluster.nodes}, 60,
                     "/sync naming a standby")
    sync = cluster.node(sync_key(cluster)["sync_standby"])
    other = next(n for n in cluster.nodes if n is not leader and n is not sync)
    writer, monitor = start_load(cluster)
    writer.wait_acks(20)
    sync.daemon.signal(signal.SIGTERM)
    sync.daemon.popen.wait(timeout=60)
    lines = sync.log_path.read_text().splitlines()
    asked = next(i for i, line in enumerate(lines) if "Waiting for primary to release us from synchronous standby" in line)
    released = next(i for i, line in enumerate(lines) if "released from synchronous standby by the primary" in line)
    stopping = next(i for i, line in enumerate(lines) if "stopping PostgreSQL before releasing the lock" in line)
    assert asked < released < stopping
    assert sync_key(cluster).get("sync_standby") == other.name
    writer.wait_acks(20)  # commits go on, acknowledged by the other standby
    cluster.start_node(cluster.nodes.index(sync))
    assert finish(cluster, writer, monitor) is leader
    cluster.wait_for(lambda: cluster.node(sync.name).is_streaming(), 60, f"{sync.name} streaming again")
    assert sync_key(cluster).get("sync_standby") == other.name  # no needless change back
