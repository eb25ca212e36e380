"""Two members of a new cluster race for `initialize` (issue 16): the loser says it lost the race
and clones from the winner; it never logs that a bootstrap failed, nor that it initialized one.

Both daemons are frozen just before the race by a fault point (hatui/daemon/faultpoint.py) and
released together, so that both really race: without that, the second one usually sees the key
already taken and never tries.
"""

from __future__ import annotations

import signal

import pytest
from servers import make_tempdir, print_logs, process_state, remove_tree, reserve_ports

from hatui.launcher import LocalCluster

pytestmark = pytest.mark.integration

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


def test_the_member_that_loses_the_bootstrap_race_says_so(monkeypatch, tmp_path) -> None:
    points = tmp_path / "points"
    points.write_text("bootstrap-race\n")
    monkeypatch.setenv("HATUI_FAULT_POINTS", str(points))
    base = make_tempdir("hatui-race-")
    cluster = reserve_ports(LocalCluster(base, 2, dcs=dict(FAST)))
    ok = False
    try:
        cluster.write_configs()
        cluster.start_etcd()
        for i in range(2):
            cluster.start_node(i)
        for node in cluster.nodes:
            cluster.wait_for(lambda n=node: process_state(n.daemon.pid) == "T", 90,
                             f"{node.name} frozen before the race")
        points.write_text("")
        for node in cluster.nodes:
            node.daemon.signal(signal.SIGCONT)
        cluster.wait_for(cluster.leader, 120, "a leader")
        winner = cluster.node(cluster.leader())
        loser = next(n for n in cluster.nodes if n is not winner)
        cluster.wait_for(loser.is_streaming, 120, f"{loser.name} streaming from {winner.name}")
        # The REST API reads PostgreSQL live, so it can say "streaming" a moment before the daemon's
        # loop logs the clone's outcome: wait for that line rather than read the log too early.
        cluster.wait_for(lambda: "bootstrapped from leader" in loser.log_path.read_text(), 30,
                         f"{loser.name} logging how it bootstrapped")
        won, lost = winner.log_path.read_text(), loser.log_path.read_text()
        assert "initialized a new cluster" in won
        assert "failed to acquire initialize lock" in lost
        assert ("lost the bootstrap race: another member is initializing the cluster; cloning from it instead"
                in lost)
        assert f"bootstrapped from leader '{winner.name}'" in lost
        assert "initialized a new cluster" not in lost
        assert "action failed" not in lost and "ERROR" not in lost, lost
        ok = True
    finally:
        cluster.stop()
        if ok:
            remove_tree(base)
        else:
            print_logs(cluster.nodes)
            print(f"logs kept in {base}")
