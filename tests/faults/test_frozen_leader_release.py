"""A frozen leader's daemon (SIGSTOP) under synchronous_mode: its fencing guard stops PostgreSQL,
then, because the daemon is frozen (not merely slow), releases the leader key and revokes the lease
at once (hatui/daemon/fence.py) instead of leaving them to expire `safety_margin` seconds later. The
replica takes over while the old daemon is still frozen; on SIGCONT the old daemon finds its lease
gone and rejoins as a replica of the new leader without starting its old primary again. Nothing
acknowledged is lost and no check ever finds two writable primaries. The times are printed, not
asserted (`./run.sh bench --unavailability` compares them with Patroni).
"""

from __future__ import annotations

import base64
import json
import signal
import time
import urllib.request

import pytest
from faultkit import FAST, finish, is_writable, log_has, start_load, sync_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _etcd(cluster, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://{cluster.etcd_endpoint}/v3{path}", json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - the test's own loopback etcd
        return json.loads(resp.read())


def _leader_lease(cluster) -> int:
    key = base64.b64encode(b"/service/batman/leader").decode()
    kvs = _etcd(cluster, "/kv/range", {"key": key}).get("kvs") or []
    assert kvs, "no leader key"
    return int(kvs[0].get("lease") or 0)


def _lease_ttl(cluster, lease: int) -> int:
    """Seconds etcd still gives the lease; -1 once it is revoked or expired."""
    return int(_etcd(cluster, "/lease/timetolive", {"ID": str(lease)}).get("TTL", -1))


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[-1].split()[0]


def test_frozen_leader_daemon_gives_the_key_away_once_fenced(fault_cluster) -> None:
    cluster = fault_cluster(2, dcs={**FAST, "synchronous_mode": True})
    writer, monitor = start_load(cluster)
    old = cluster.node(cluster.leader())
    new = next(n for n in cluster.nodes if n is not old)
    assert old.daemon is not None
    # Synchronous mode lets the standby take over only once /sync names it (seen: frozen 0.3 s
    # after the leader had set synchronous_standby_names, nobody could be promoted, rightly).
    cluster.wait_for(lambda: sync_key(cluster).get("leader") == old.name
                     and sync_key(cluster).get("sync_standby") == new.name, 120, f"/sync naming {new.name}")
    lease = _leader_lease(cluster)
    assert lease and _lease_ttl(cluster, lease) > 0
    t0 = time.monotonic()
    old.daemon.signal(signal.SIGSTOP)
    try:
        cluster.wait_for(lambda: old.postmaster_pid() is None, 60, "the guard stops the frozen leader's PostgreSQL")
        stopped = time.monotonic() - t0
        cluster.wait_for(lambda: is_writable(new), 90, f"{new.name} promoted")
        promoted = time.monotonic() - t0
        # All of it happened while the old daemon could do nothing: its guard acted alone.
        assert _state(old.daemon.pid) == "T"
        assert old.postmaster_pid() is None
        assert log_has(old, "is frozen: releasing its leader key now")
        assert log_has(old, "fencing guard released the leader key")
        assert _lease_ttl(cluster, lease) == -1  # revoked, not left to run out
        assert cluster.etcd_get("/service/batman/leader") == new.name
        thawed_at = old.log_path.stat().st_size
    finally:
        old.daemon.signal(signal.SIGCONT)
    leader = finish(cluster, writer, monitor)  # old streams from new; nothing lost; never two primaries
    assert leader is new
    after = old.log_path.read_text()[thawed_at:]
    for line in ("starting primary after failure", "promoted self to leader", "acquired session lock"):
        assert line not in after, f"the thawed daemon acted as leader: {line!r}"
    assert "taking a new one" in after  # its lease was gone: it knew it was no longer the leader
    print(f"frozen leader daemon (ttl {FAST['ttl']}): PostgreSQL stopped {stopped:.1f}s after the freeze, "
          f"{new.name} writable {promoted:.1f}s after it (the lease would have run out at about {FAST['ttl']}s)")
