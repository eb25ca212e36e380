"""Partitions and bad links between real hosts (issue 18): three network namespaces, each with one
etcd member and one hatui daemon with its PostgreSQL, clients in a fourth, faults per pair and
direction (tests/hosts/topology.py).

Every scenario runs the workload (unique ids, appends to four lists) through a libpq multi-host
connection with target_session_attrs=read-write and ends with the checker (tests/hosts/checker.py):
every acknowledged operation on the final primary (synchronous mode: none lost), nothing present
that was not attempted, lists in order, and no 1 s sample with two writable hosts. A readable
history file per scenario goes to $HATUI_HOSTS_OUT (printed); the figures are printed at the end.

All are `slow` (a cluster of 9 servers per scenario on a 2-core machine): `./run.sh test-faults`
runs the quicker ones; `./run.sh test-partitions` runs all, the ones marked `partitions_only`
(a minute of bad links, flapping, the ten-minute random nemesis...) too.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

import pytest
from conftest import outer
from hostcluster import API_PORT, ETCD_CLIENT, ETCD_PEER, ETCD_PORTS, PG_PORT
from netnskit import inside

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYNC = {"synchronous_mode": True}
DEMOTE_LINE = "demoting self because DCS is not accessible and I was a leader"
CLONE_LINE = "with pg_basebackup"


def other_names(lab, name: str) -> list[str]:
    return [n.name for n in lab.cluster.nodes if n.name != name]


def ns_of(lab, node_name: str) -> str:
    return lab.cluster.node(node_name).ns.name


def until(lab, check, timeout: float, what: str):
    return lab.cluster.wait_for(check, timeout, what, interval=0.5)


def new_primary(lab, old: str, timeout: float = 120) -> str:
    """Wait until a host other than `old` alone takes writes; its name."""
    def found():
        w = lab.cluster.writable()
        return w[0] if len(w) == 1 and w[0] != old else None
    return until(lab, found, timeout, f"a primary other than {old}")


def hold(seconds: float) -> None:
    """Let the fault last (the workload and sampler keep running meanwhile)."""
    time.sleep(seconds)


# ---- leader isolated ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", pytest.param("async", marks=pytest.mark.partitions_only)])
def test_leader_host_isolated(request, lab_factory, mode) -> None:
    """The leader's host loses every link (hosts and clients). Its etcd member is a minority: the
    leader demotes, the other two elect a new leader. Healed, the old leader rejoins. Synchronous:
    nothing acknowledged is lost; asynchronous: the loss is measured, within maximum_lag_on_failover."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC if mode == "sync" else {})
    run = lab.run(f"leader host isolated ({mode})")
    old = run.leader.name
    run.nemesis(lambda: lab.topo.isolate(ns_of(lab, old)), f"isolate {old}'s host from every host and client")
    new = new_primary(lab, old)
    until(lab, lambda: not lab.cluster.node(old).is_writable(), 60, f"{old} to stop taking writes")
    run.wait_acks(10)
    outcome = run.finish(allow_loss=(mode == "async"))
    assert outcome.failover_s is not None and outcome.leader_changes >= 1
    assert lab.cluster.node(new).is_writable()
    if mode == "async":
        # maximum_lag_on_failover is 1 MiB; one acknowledged insert or append is at least ~100
        # bytes of WAL, so more than 10485 lost operations would break the bound.
        print(f"async: {len(outcome.lost)} acknowledged operation(s) lost")
        assert len(outcome.lost) <= 1048576 // 100


def acks_on(run, lab, name: str, since: float) -> int:
    addr = lab.cluster.node(name).addr
    return sum(1 for e in run.acks(since) if e.get("host") == addr)


def writes_continue_on(run, lab, name: str, n: int = 10) -> None:
    """The application keeps committing on `name` during the fault."""
    since = time.time()
    until(lab, lambda: acks_on(run, lab, name, since) >= n, 90, f"{n} writes acknowledged by {name} during the fault")


# ---- leader cut off from etcd, not from the replicas ---------------------------------------------
@pytest.mark.parametrize("failsafe", [pytest.param(False, id="failsafe-off"),
                                      pytest.param(True, id="failsafe-on", marks=pytest.mark.partitions_only)])
def test_leader_cut_from_etcd_not_replicas(request, lab_factory, failsafe) -> None:
    """Only etcd's ports are cut between the leader's host and the others (its own etcd member is
    then a minority); PostgreSQL and the REST APIs still connect. failsafe off: the leader demotes
    and the synchronous standby takes over. failsafe on: both replicas answer the leader's POST
    /failsafe, so it stays primary past its lease and nobody else is promoted."""
    if not inside():
        outer(request)
        return
    lab = lab_factory({**SYNC, "failsafe_mode": failsafe})
    run = lab.run(f"leader cut from etcd, not replicas (failsafe {'on' if failsafe else 'off'})")
    old = run.leader.name
    if failsafe:
        until(lab, lambda: set(json.loads(lab.cluster.etcd_get("/service/batman/failsafe") or "{}"))
              == {n.name for n in lab.cluster.nodes}, 60, "every member in /failsafe")
    run.nemesis(lambda: lab.topo.isolate(ns_of(lab, old), ports=ETCD_PORTS,
                                         others=[ns_of(lab, n) for n in other_names(lab, old)]),
                f"cut etcd ports {ETCD_CLIENT},{ETCD_PEER} between {old}'s host and the other hosts")
    if not failsafe:
        new_primary(lab, old)
        until(lab, lambda: lab.cluster.node(old).log_count(DEMOTE_LINE) > 0, 60, "the demotion's reason in the log")
        outcome = run.finish()
        assert outcome.leader_changes >= 1 and outcome.failover_s is not None
        return
    # The lease runs out (etcd's majority side deletes the key) and the leader carries on.
    until(lab, lambda: _leader_key(lab) is None, 90, "the leader key to expire")
    hold(10)
    writes_continue_on(run, lab, old)
    assert lab.cluster.writable() == [old]
    assert lab.cluster.node(old).patroni().get("failsafe_mode_is_active") is True
    outcome = run.finish()
    assert outcome.leader_changes == 0 and outcome.failover_s is None
    # Healed, it took its lapsed key back as the primary it still was: it never stopped to
    # demote (it once did, judging a replica ahead from a WAL position read before the replicas').
    assert lab.cluster.node(old).log_count("event demote") == 0
    assert lab.cluster.node(old).log_count("event lock_retaken") == 1


def _leader_key(lab):
    try:
        return lab.cluster.etcd_get("/service/batman/leader") or None
    except OSError:
        return "unreadable"


# ---- leader cut off from the replicas, not from etcd ---------------------------------------------
@pytest.mark.partitions_only
def test_leader_cut_from_replicas_not_etcd(request, lab_factory) -> None:
    """PostgreSQL and REST ports cut between the leader's host and the replicas; etcd still works
    everywhere. The leader keeps its lock, so nobody is promoted; the lost synchronous standby is
    dropped from the sync set so commits go on; healed, both replicas stream again."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC)
    run = lab.run("leader cut from replicas, not etcd")
    old = run.leader.name
    run.nemesis(lambda: lab.topo.isolate(ns_of(lab, old), ports=(PG_PORT, API_PORT),
                                         others=[ns_of(lab, n) for n in other_names(lab, old)]),
                f"cut PostgreSQL and REST ports between {old}'s host and the replicas' hosts")
    hold(30)  # past ttl: a replica that wrongly raced for the lock would have been promoted by now
    writes_continue_on(run, lab, old)
    assert lab.cluster.writable() == [old]
    outcome = run.finish()
    assert outcome.leader_changes == 0 and outcome.failover_s is None


# ---- one-way links between the leader and etcd -----------------------------------------------------
@pytest.mark.parametrize("direction", ["etcd-deaf", pytest.param("leader-deaf", marks=pytest.mark.partitions_only)])
def test_one_way_link_leader_etcd(request, lab_factory, direction) -> None:
    """etcd-deaf: the leader's host hears etcd, etcd does not hear it (its packets to the other
    hosts' etcd ports are dropped). leader-deaf: the reverse. Either way TCP to etcd breaks and
    the leader's own etcd member loses the majority: it demotes, a replica takes over, nothing
    acknowledged is lost."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC)
    run = lab.run(f"one-way link, {direction}")
    old = run.leader.name
    me = ns_of(lab, old)

    def cut() -> None:
        for other in other_names(lab, old):
            a, b = (me, ns_of(lab, other)) if direction == "etcd-deaf" else (ns_of(lab, other), me)
            lab.topo.cut(a, b, ports=ETCD_PORTS, both=False)

    run.nemesis(cut, f"one-way cut of etcd traffic ({direction}) between {old}'s host and the others")
    new_primary(lab, old)
    outcome = run.finish()
    assert outcome.leader_changes >= 1


# ---- a replica isolated, then healed -----------------------------------------------------------
@pytest.mark.partitions_only
def test_replica_isolated_then_healed(request, lab_factory) -> None:
    """The synchronous standby's host loses every link for 40 s: no failover, commits go on (the
    other replica becomes the synchronous standby); healed, it streams again from the WAL its
    member slot on the primary kept (use_slots, on by default), without being cloned again."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC)
    run = lab.run("replica isolated then healed")
    leader = run.leader.name
    sync = lab.cluster.wait_for_sync()["sync_standby"]
    replica = lab.cluster.node(sync)
    clones = replica.log_count(CLONE_LINE)
    with run.leader.connect() as conn:
        slots = {r[0] for r in conn.execute("SELECT slot_name FROM pg_replication_slots "
                                            "WHERE slot_type = 'physical'")}
    assert sync in slots, f"no member slot for {sync} on the primary: {slots}"
    run.nemesis(lambda: lab.topo.isolate(replica.ns.name), f"isolate {sync}'s host (the synchronous standby)")
    hold(40)
    writes_continue_on(run, lab, leader)
    assert lab.cluster.writable() == [leader]
    run.heal()
    until(lab, replica.is_streaming, 120, f"{sync} streaming again")
    outcome = run.finish()
    assert outcome.leader_changes == 0
    assert replica.log_count(CLONE_LINE) == clones, "the replica was cloned again instead of resuming streaming"


# ---- etcd partitions -------------------------------------------------------------------------------
@pytest.mark.parametrize("whose", ["replica", pytest.param("leader", marks=pytest.mark.partitions_only)])
def test_etcd_minority_partition(request, lab_factory, whose) -> None:
    """One etcd member (on a replica's host, or on the leader's) is cut from the other two (peer
    port only; clients still reach every member). The majority carries on; the daemons whose
    first endpoint is the cut member go to another one. Nothing changes hands, writes go on."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC)
    run = lab.run(f"etcd minority partition ({whose}'s member)")
    leader = run.leader.name
    name = leader if whose == "leader" else other_names(lab, leader)[0]
    run.nemesis(lambda: lab.topo.isolate(ns_of(lab, name), ports=(ETCD_PEER,),
                                         others=[ns_of(lab, n) for n in other_names(lab, name)]),
                f"cut {name}'s etcd member from the other members (peer port {ETCD_PEER})")
    hold(30)
    writes_continue_on(run, lab, leader)
    assert lab.cluster.writable() == [leader]
    outcome = run.finish()
    assert outcome.leader_changes == 0 and outcome.failover_s is None


@pytest.mark.partitions_only
def test_etcd_majority_partition(request, lab_factory) -> None:
    """Every etcd member cut from every other (no quorum anywhere): the leader cannot renew and
    demotes (failsafe off), so at some sample no host takes writes; healed, one leader, nothing
    acknowledged lost."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC)
    run = lab.run("etcd majority partition")
    names = [ns.name for ns in lab.topo.hosts]

    def cut() -> None:
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                lab.topo.cut(a, b, ports=(ETCD_PEER,))

    run.nemesis(cut, "cut every etcd member from every other (peer port)")
    until(lab, lambda: lab.cluster.writable() == [], 90, "no host taking writes without an etcd quorum")
    hold(5)
    outcome = run.finish()
    assert any(e.get("op") == "sample" and not e["writable"] for e in run.events)
    assert outcome.unavailable_s > 0


# ---- bad links ---------------------------------------------------------------------------------
@pytest.mark.partitions_only
def test_packet_loss_for_a_minute(request, lab_factory) -> None:
    """5 % packet loss on every link between the hosts, both ways, for a minute: TCP retransmits,
    nobody loses the lease, no failover, commits go on."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC)
    run = lab.run("5% loss between all hosts, 1 min")
    leader = run.leader.name
    since = run.nemesis(lambda: lab.topo.degrade([ns.name for ns in lab.topo.hosts], loss=5),
                        "5% loss on every link between the hosts")
    hold(60)
    assert acks_on(run, lab, leader, since) >= 30
    assert lab.cluster.writable() == [leader]
    outcome = run.finish()
    assert outcome.leader_changes == 0 and outcome.failover_s is None


PROBE = """
import sys, time, urllib.error, urllib.request
for url in sys.argv[1:]:
    began = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            status = r.status
    except urllib.error.HTTPError as exc:  # an answer all the same: it crossed the link
        status = exc.code
    print(f"{url} {status} {time.monotonic() - began:.2f}")
"""


@pytest.mark.partitions_only
def test_latency_and_loss_for_a_minute(request, lab_factory) -> None:
    """300 ms each way plus 5 % loss between the hosts for a minute: no failover, writes go on
    (an acknowledged write in every 10 s of the minute), the leader alone takes writes. The
    latency is the topology's delaying proxy (no netem here): the test shows it delayed etcd's
    peer and client traffic, replication and the REST API between the hosts."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC)
    run = lab.run("300 ms latency + 5% loss between all hosts, 1 min")
    leader = run.leader.name
    since = run.nemesis(lambda: lab.topo.degrade([ns.name for ns in lab.topo.hosts], loss=5, delay_ms=300),
                        "300 ms latency and 5% loss on every link between the hosts")
    # A replica's host asks the leader's REST API and etcd member, as a peer would.
    replica = lab.cluster.node(other_names(lab, leader)[0])
    addr = lab.cluster.node(leader).addr
    run.note(f"{replica.name}'s host -> {leader}'s, through the delayed link (url, status, seconds): " + ", ".join(
        lab.topo.run_in(replica.ns, sys.executable, "-c", PROBE, f"http://{addr}:{API_PORT}/patroni",
                        f"http://{addr}:{ETCD_CLIENT}/version").split("\n")).strip(", "))
    hold(max(0.0, since + 60 - time.time()))
    acks = [e["t"] for e in run.acks(since) if e.get("host") == addr]
    run.note(f"acknowledged by {leader} during the minute: {len(acks)}")
    for w in range(6):
        assert any(since + 10 * w <= t < since + 10 * (w + 1) for t in acks), \
            f"no write acknowledged between {10 * w} and {10 * (w + 1)} s into the fault"
    assert lab.cluster.writable() == [leader]
    run.heal()  # stops the proxies: their counts are complete
    delayed = lab.topo.delayed_ports()
    run.note(f"chunks delayed per TCP port: {delayed}")
    outcome = run.finish()
    assert outcome.leader_changes == 0 and outcome.failover_s is None
    for port, what in ((ETCD_PEER, "etcd peer"), (ETCD_CLIENT, "etcd client"), (PG_PORT, "PostgreSQL"),
                       (API_PORT, "REST API")):
        assert delayed.get(port, 0) > 0, f"no {what} traffic went through the delay ({delayed})"


@pytest.mark.partitions_only
def test_flapping_partition(request, lab_factory) -> None:
    """The leader's host cut off for 4 s and healed for 6 s, six times: never long enough to lose
    the lease (ttl 20, retry_timeout 8), so no real loss and no leader change: no flip-flop."""
    if not inside():
        outer(request)
        return
    lab = lab_factory(SYNC)
    run = lab.run("flapping partition of the leader (4 s cut / 6 s healed x 6)")
    leader = run.leader.name
    me = ns_of(lab, leader)
    for _ in range(6):
        run.nemesis(lambda: lab.topo.isolate(me), f"isolate {leader}'s host")
        hold(4)
        run.heal()
        hold(6)
    outcome = run.finish()
    assert outcome.leader_changes == 0, "the leader changed although no cut outlasted retry_timeout"


# ---- the random nemesis ------------------------------------------------------------------------
@pytest.mark.partitions_only
def test_random_nemesis(request, lab_factory) -> None:
    """All of the above, chosen at random (seed HATUI_NEMESIS_SEED, default 18) for
    HATUI_NEMESIS_SECONDS (default 600): each fault lasts 5-40 s, then everything heals for
    10-20 s. At the end: every invariant, nothing acknowledged lost (synchronous mode)."""
    seconds = float(os.environ.get("HATUI_NEMESIS_SECONDS", "600"))
    if not inside():
        outer(request, timeout=seconds + 900)
        return
    seed = int(os.environ.get("HATUI_NEMESIS_SEED", "18"))
    rng = random.Random(seed)
    lab = lab_factory(SYNC)
    run = lab.run(f"random nemesis, seed {seed}, {seconds:g} s")
    topo = lab.topo
    hosts = [ns.name for ns in topo.hosts]

    def leader_host() -> str:
        w = lab.cluster.writable()
        return lab.cluster.node(w[0]).ns.name if len(w) == 1 else rng.choice(hosts)

    faults = {
        "isolate a host": lambda: topo.isolate(rng.choice(hosts)),
        "isolate the leader": lambda: topo.isolate(leader_host()),
        "cut the leader from etcd": lambda: (lambda h: topo.isolate(
            h, ports=ETCD_PORTS, others=[x for x in hosts if x != h]))(leader_host()),
        "cut the leader from the replicas": lambda: (lambda h: topo.isolate(
            h, ports=(PG_PORT, API_PORT), others=[x for x in hosts if x != h]))(leader_host()),
        "one-way cut between two hosts": lambda: topo.cut(*rng.sample(hosts, 2), both=False),
        "etcd member cut from its peers": lambda: (lambda h: topo.isolate(
            h, ports=(ETCD_PEER,), others=[x for x in hosts if x != h]))(rng.choice(hosts)),
        "5% loss everywhere": lambda: topo.degrade(hosts, loss=5),
    }
    end = time.monotonic() + seconds
    steps = 0
    while time.monotonic() < end:
        name = rng.choice(sorted(faults))
        run.nemesis(faults[name], f"random fault: {name}")
        hold(rng.uniform(5, 40))
        run.heal()
        hold(rng.uniform(10, 20))
        steps += 1
    outcome = run.finish(recover_timeout=300)
    print(f"random nemesis: {steps} faults, {outcome.leader_changes} leader changes")
