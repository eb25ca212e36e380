"""The leader's keepalive gives each etcd endpoint a share of what is left of the lease
(hatui/daemon/lease.py): one member that holds requests (cut off from its peers, etcd answers
"no leader" only after its own timeout) must leave time to reach the others. The round trip
against real etcd members is tests/hosts' etcd minority partition of the leader's member."""

from __future__ import annotations

import time
from types import SimpleNamespace

from hatui.daemon.fence import FenceClient
from hatui.daemon.lease import LeaseKeeper


class _RecordingEtcd:
    def __init__(self, endpoints: int) -> None:
        self.endpoints = [("10.0.0.%d" % i, 2379) for i in range(1, endpoints + 1)]
        self.timeout = 99.0
        self.seen: list[float] = []

    def keepalive(self, lease: int) -> None:
        self.seen.append(self.timeout)


def _daemon(refreshed_at: float) -> SimpleNamespace:
    return SimpleNamespace(lease=7, lease_ttl=20, lease_refreshed_at=refreshed_at, cluster=None,
                           dynamic=SimpleNamespace(loop_wait=2), fence=FenceClient(None), fence_margin=lambda: 5.0)


def _timeout(endpoints: int, refreshed_ago: float) -> float:
    now = time.monotonic()
    etcd = _RecordingEtcd(endpoints)
    keeper = LeaseKeeper(_daemon(now - refreshed_ago), etcd)
    keeper._in_flight = 1
    keeper._keepalive(7, now)
    return etcd.seen[0]


def test_three_endpoints_share_what_is_left_of_the_lease() -> None:
    # 18 s of lease left: 6 s each, so the third member is still asked in time.
    assert 5.5 < _timeout(3, 2.0) <= 6.0


def test_one_endpoint_gets_all_of_it() -> None:
    assert 17.5 < _timeout(1, 2.0) <= 18.0  # a slow but single etcd is waited for (tests/faults/test_slow_etcd.py)


def test_never_below_a_second() -> None:
    assert _timeout(3, 25.0) == 1.0  # the lease view is already past: still a real try
