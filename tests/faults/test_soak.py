"""A seeded random mix of faults under synchronous_mode (issue 16), back to back on one cluster.

Faults: kill -9 of the leader's daemon; a host crash (daemon, fencing guard and PostgreSQL
killed -9); SIGSTOP of the leader's daemon past the ttl; SIGSTOP of etcd for 10 s; a switchover.
A client writes all along. After each fault the cluster must heal by itself (the killed node is
started again, as a supervisor would); at the end every acknowledged commit is on the leader and
no sample ever found two writable primaries. The seed is HATUI_SOAK_SEED (default 16), the
number of faults HATUI_SOAK_FAULTS (default 6); the time without a successful commit per fault is
printed, not asserted.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import time

import pytest
from faultkit import FAST, finish, hatui_cli, start_load, sync_key, wait_healthy
from test_sync_crash_steps import crash_host

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULTS = ("kill daemon", "host crash", "freeze daemon past ttl", "freeze etcd", "switchover")


def _gap_since(writer, t0: float) -> float:
    times = [t for t in list(writer.ack_times) if t >= t0 - 5]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def test_seeded_mixed_fault_soak_under_synchronous_mode(fault_cluster) -> None:
    seed = int(os.environ.get("HATUI_SOAK_SEED", "16"))
    count = int(os.environ.get("HATUI_SOAK_FAULTS", "6"))
    mix = random.Random(seed).choices(FAULTS, k=count)
    cluster = fault_cluster(2, dcs={**FAST, "synchronous_mode": True})
    writer, monitor = start_load(cluster)
    report = []
    for fault in mix:
        leader = wait_healthy(cluster, 240)
        other = next(n for n in cluster.nodes if n is not leader)
        # Each fault expects the standby to take over, which synchronous mode allows only once
        # /sync names it (before that it may lack acknowledged commits, and is rightly refused:
        # seen once in CI, the leader crashed 2 s after dropping a standby still catching up).
        cluster.wait_for(lambda lo=leader, o=other: sync_key(cluster).get("leader") == lo.name
                         and sync_key(cluster).get("sync_standby") == o.name, 120, f"/sync naming {other.name}")
        t0 = time.monotonic()
        if fault == "kill daemon":
            cluster.kill_node(leader.name, postgres_too=False)
            cluster.wait_for(lambda o=other: cluster.leader() == o.name, 120, f"{other.name} taking over")
            cluster.start_node(cluster.nodes.index(leader))
        elif fault == "host crash":
            crash_host(cluster, leader)
            cluster.wait_for(lambda o=other: cluster.leader() == o.name, 120, f"{other.name} taking over")
            cluster.start_node(cluster.nodes.index(leader))
        elif fault == "freeze daemon past ttl":
            leader.daemon.signal(signal.SIGSTOP)
            time.sleep(FAST["ttl"] + 3)
            leader.daemon.signal(signal.SIGCONT)
        elif fault == "freeze etcd":
            cluster.etcd.signal(signal.SIGSTOP)
            time.sleep(10)
            cluster.etcd.signal(signal.SIGCONT)
        else:
            out = hatui_cli(cluster, "switchover", "batman", "--leader", leader.name, "--candidate", other.name,
                            "--force")
            assert out.returncode == 0, out.stdout + out.stderr
        wait_healthy(cluster, 240)
        writer.wait_acks(10)
        report.append((fault, _gap_since(writer, t0)))
    lines = [f"soak seed {seed}:"] + [f"  {fault:<24} {gap:6.2f}s without a commit" for fault, gap in report]
    lines.append(f"  total {sum(g for _, g in report):.2f}s")
    print("\n".join(lines))
    finish(cluster, writer, monitor)  # nothing acknowledged lost, never two writable primaries
