"""The leader cut off from etcd but not from the replicas (issue 8), in a private network namespace.

etcd listens on two client ports: the leader (postgresql0, which bootstraps the cluster) knows
only port B, the replica only port A. Blackholing port B (netnskit.PortCut) cuts the leader from
etcd while PostgreSQL replication and the REST APIs between the nodes keep working: the case
where failsafe mode makes a difference. synchronous_mode is on, so not one acknowledged commit
may be lost.

Each test runs twice: the outer run re-executes it under `unshare -n` (skipped with the reason
when the machine does not allow a private network namespace) and passes only if the inner run,
which does the work, passed.
"""

from __future__ import annotations

import json
import socket

import pytest
from faultkit import FAST, finish, is_writable, log_has, patroni, start_load, wait_healthy
from netnskit import PortCut, inside, prepare, run_inside

from servers import free_ports

pytestmark = pytest.mark.integration

SYNC = {**FAST, "synchronous_mode": True}
LEADER_KEY = "/service/batman/leader"
FAILSAFE_LINE = "continue to run as a leader because failsafe mode is enabled and all members are accessible"
DEMOTE_LINE = "demoting self because DCS is not accessible and I was a leader"


def partitionable_cluster(fault_cluster, dcs: dict):
    """Two nodes, postgresql0 the leader and reaching etcd only through its own port; returns
    (cluster, leader, replica, cut) with every member streaming and /sync naming the replica."""
    prepare()
    port_b = free_ports(1)[0]
    cluster = fault_cluster(2, dcs=dcs, start=False, etcd_extra_client_ports=[port_b],
                            node_etcd_hosts={"postgresql0": f"127.0.0.1:{port_b}"})
    cluster.start()  # starts postgresql0 alone first and waits for it to lead
    leader, replica = cluster.nodes
    assert wait_healthy(cluster) is leader
    cluster.wait_for(lambda: sync_key(cluster).get("sync_standby") == replica.name, 60, "/sync naming the replica")
    return cluster, leader, replica, PortCut(port_b)


def sync_key(cluster) -> dict:
    raw = cluster.etcd_get("/service/batman/sync")
    return json.loads(raw) if raw else {}


def check_cut(cluster, cut: PortCut, replica) -> None:
    """The fault is the one claimed: the leader's etcd port refuses, etcd still answers on the
    replica's port, and the replica still streams from the leader."""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cut.port), timeout=2).close()
    cluster.etcd_get(LEADER_KEY)  # raises if etcd did not answer on port A
    assert patroni(replica).get("replication_state") == "streaming"


@pytest.mark.xdist_group("partition_port_cut")
def test_port_cut_isolates_one_port_only(request) -> None:
    """The fault injection itself (quick): inside the namespace, the cut port refuses new
    connections and an open connection to it goes silent, another port keeps working, and
    healing restores the cut port."""
    if not inside():
        run_inside(request)
        return
    prepare()
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    try:
        kept, cut_port = (s.getsockname()[1] for s in servers)
        client = socket.create_connection(("127.0.0.1", cut_port), timeout=2)
        accepted, _ = servers[1].accept()
        cut = PortCut(cut_port)
        cut.cut()
        try:
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", cut_port), timeout=2)
            socket.create_connection(("127.0.0.1", kept), timeout=2).close()
            accepted.sendall(b"lost")  # queued by TCP, never delivered while cut
            client.settimeout(1)
            with pytest.raises(TimeoutError):
                client.recv(4)
        finally:
            cut.heal()
        socket.create_connection(("127.0.0.1", cut_port), timeout=2).close()
        client.close()
        accepted.close()
    finally:
        for s in servers:
            s.close()


@pytest.mark.xdist_group("partition_no_failsafe")
def test_leader_cut_from_etcd_demotes_and_replica_takes_over(request, fault_cluster) -> None:
    """failsafe_mode off: the leader cannot renew its key, so it demotes itself; after the lease
    expires the replica takes the lock. Healed, the old leader streams from the new one."""
    if not inside():
        run_inside(request)
        return
    cluster, old, new, cut = partitionable_cluster(fault_cluster, SYNC)
    writer, monitor = start_load(cluster)
    cut.cut()
    try:
        check_cut(cluster, cut, new)
        cluster.wait_for(lambda: not is_writable(old), 60, f"{old.name} to stop taking writes")
        cluster.wait_for(lambda: log_has(old, DEMOTE_LINE), 30, "the demotion's reason in the log")
        assert log_has(old, f"Error communicating with DCS: etcd is not reachable at 127.0.0.1:{cut.port}")
        cluster.wait_for(lambda: is_writable(new), 90, f"{new.name} promoted after the lease expired")
        assert cluster.etcd_get(LEADER_KEY) == new.name
        assert not is_writable(old)
        # The monitor saw the old primary writable, then the new one, never both at one check.
        cluster.wait_for(lambda: monitor.seen_writable[-1:] == [new.name], 30, "the monitor to see the new primary")
        assert monitor.seen_writable == [old.name, new.name]
    finally:
        cut.heal()
    leader = finish(cluster, writer, monitor)  # every acknowledged id on the new leader
    assert leader is new
    assert {writer.acked[i] for i in writer.acked} == {old.pg_port, new.pg_port}
    cluster.wait_for(lambda: sync_key(cluster).get("sync_standby") == old.name, 60,
                     "/sync naming the old leader as the new synchronous standby")


@pytest.mark.slow
@pytest.mark.xdist_group("partition_failsafe")
def test_leader_cut_from_etcd_with_failsafe_stays_primary(request, fault_cluster) -> None:
    """failsafe_mode on: the replica still answers the leader's POST /failsafe, so the leader
    keeps running (and taking writes) long after its lease expired, and the replica, which
    still reaches etcd and sees no leader key, does not race for it. Healed, the same leader."""
    if not inside():
        run_inside(request)
        return
    cluster, old, replica, cut = partitionable_cluster(fault_cluster, {**SYNC, "failsafe_mode": True})
    cluster.wait_for(lambda: set(json.loads(cluster.etcd_get("/service/batman/failsafe") or "{}"))
                     == {old.name, replica.name}, 30, "both members in /failsafe")
    writer, monitor = start_load(cluster)
    cut.cut()
    try:
        check_cut(cluster, cut, replica)
        # The lease ran out: etcd (through the replica's port) has no leader any more.
        cluster.wait_for(lambda: cluster.etcd_get(LEADER_KEY) is None, 90, "the leader key to expire")
        seen = old.log_path.read_text().count(FAILSAFE_LINE)
        assert seen > 0
        cluster.wait_for(lambda: old.log_path.read_text().count(FAILSAFE_LINE) >= seen + 5, 60,
                         "five more failsafe cycles without a leader key")
        assert is_writable(old) and not is_writable(replica)
        assert patroni(old).get("failsafe_mode_is_active") is True
        assert log_has(replica, f"failsafe: {old.name} confirmed itself as primary")
        writer.wait_acks(10)  # the application kept writing, each commit confirmed by the sync standby
    finally:
        cut.heal()
    cluster.wait_for(lambda: cluster.etcd_get(LEADER_KEY) == old.name, 60, "the leader key taken back")
    leader = finish(cluster, writer, monitor)
    assert leader is old
    assert monitor.seen_writable == [old.name]  # the replica was never promoted
    assert set(writer.acked.values()) == {old.pg_port}
    assert not log_has(old, DEMOTE_LINE)
    assert not log_has(old, "fencing guard stopped PostgreSQL")
