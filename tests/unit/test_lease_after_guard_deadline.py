"""A keepalive answer read after the fencing guard's deadline is not trusted (hatui/daemon/lease.py).

The guard of a frozen daemon revokes its lease once PostgreSQL is stopped; an answer etcd gave
before the revoke but the daemon reads only after it thawed would otherwise make the daemon
believe it still holds a valid lease. The keepalive itself is the keeper's own logic under test
here (the etcd round trip is tests/faults/test_frozen_leader_release.py's job, against real etcd).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from hatui.daemon.fence import FenceClient
from hatui.daemon.lease import LeaseKeeper


class _AnsweringEtcd:
    """Answers every keepalive: the answer etcd gave before the daemon froze."""

    timeout = 1.0

    def keepalive(self, lease: int) -> None:
        return None


def _armed_client(beat_t: float) -> FenceClient:
    client = FenceClient({"safety_margin": 5})
    client.armed = True
    client.lease = 7
    client._last_beat = {"op": "beat", "t": beat_t, "ttl": 20, "lease": 7}
    return client


def test_guard_deadline_is_last_beat_plus_ttl_minus_margin() -> None:
    client = _armed_client(100.0)
    assert not client.deadline_passed(114.9)
    assert client.deadline_passed(115.0)
    client.armed = False
    assert not client.deadline_passed(200.0)  # a disarmed guard never fires
    assert not FenceClient(None).deadline_passed(200.0)  # fencing disabled


def _daemon(refreshed_at: float) -> SimpleNamespace:
    return SimpleNamespace(lease=7, lease_ttl=20, lease_refreshed_at=refreshed_at, cluster=None,
                           dynamic=SimpleNamespace(loop_wait=1), fence=_armed_client(refreshed_at),
                           fence_margin=lambda: 5.0)


def test_answer_read_after_the_guard_deadline_drops_the_lease() -> None:
    now = time.monotonic()
    d = _daemon(now - 16)  # the guard fired a second ago
    keeper = LeaseKeeper(d, _AnsweringEtcd())
    keeper._in_flight = 1
    keeper._keepalive(7, now - 15.5)  # sent before the freeze, read after it
    assert keeper.expired == 7  # the loop takes a new lease and decides on what etcd holds
    assert d.lease_refreshed_at == now - 16  # the lease view did not move on


def test_answer_read_in_time_moves_the_lease_on(monkeypatch) -> None:
    now = time.monotonic()
    d = _daemon(now - 2)
    beats = []
    # The armed guard's deadline is 13 s away; the beat to the (not started) guard is recorded.
    monkeypatch.setattr(d.fence, "refresh", lambda t, ttl, lease, paused=False: beats.append((t, lease)))
    keeper = LeaseKeeper(d, _AnsweringEtcd())
    keeper._in_flight = 1
    sent = now - 0.01
    keeper._keepalive(7, sent)
    assert keeper.expired is None
    assert d.lease_refreshed_at == sent
    assert beats == [(sent, 7)]
