"""Seen from the console (issue 21): after a switchover and then a freeze of the new leader's
daemon, the surviving replica restarted its PostgreSQL ("stopping to rewind: my timeline 1
diverged") just before promoting itself. Its walreceiver had gone with the fenced leader, and its
timeline fell back to its last checkpoint's, from before the switch (queries.replica_timeline).

A real demo cluster (etcd, two `hatui daemon` nodes, PostgreSQL, fencing on, the fast timing):
switchover pg0 -> pg1, freeze pg1's daemon, and the old leader must be promoted without its
PostgreSQL being stopped or rewound on the way.
"""

from __future__ import annotations

import time

import pytest
from demokit import running_demo

from hatui.api_client import ApiClient
from hatui.demo import FAST_DCS
from hatui.etcd.gateway import EtcdGateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_replica_is_not_restarted_before_it_is_promoted_after_switchover_then_freeze() -> None:
    with running_demo("hatui-swfreeze-", dcs=dict(FAST_DCS), fencing=True) as rt:
        c = rt.cluster
        old = c.leader()
        new = next(n.name for n in c.nodes if n.name != old)
        etcd = EtcdGateway([c.etcd_endpoint])
        view = etcd.read_cluster("/service", c.scope)
        resp = ApiClient(None, timeout=60).switchover(view.leader_member, old, new)
        assert resp.status == 200, resp.text
        c.wait_for(lambda: c.leader() == new, 60, f"{new} to lead")
        # Let the old leader follow the new timeline for a while (it streams, so its timeline is 2).
        c.wait_for(lambda: (m := etcd.read_cluster("/service", c.scope).member(old)) is not None
                   and m.role == "replica" and m.timeline == 2 and m.replication_state == "streaming",
                   60, f"{old} streaming on timeline 2")
        log = rt.node(old).log_path
        mark = len(log.read_text())
        rt.freeze(new)
        c.wait_for(lambda: c.leader() == old, 90, f"{old} promoted after {new} froze")
        time.sleep(1)
        after = log.read_text()[mark:]
        assert "promoted self to leader" in after
        assert "stopping to rewind" not in after, after
        assert "stopping postgresql" not in after, after
        assert "pg_rewind" not in after, after
        rt.resume(new)
        etcd.close()
