"""Operations under faults' rules (issue 8): a switchover under write load, and pause mode with
a dead leader PostgreSQL. Same harness as test_faults.py: a writer recording acknowledged
commits, a monitor checking that never two servers take writes, recovery checked at the end.
"""

from __future__ import annotations

import os
import signal

import pytest
from faultkit import etcd_get, finish, hatui_cli as hatui, is_writable, log_has, patroni, start_load, wait_healthy

pytestmark = pytest.mark.integration


def test_switchover_under_write_load(fault_cluster) -> None:
    """A planned switchover while a client writes: the client sees a short gap, no acknowledged
    commit is lost, at no check are two servers writable, and the old leader follows the new."""
    cluster = fault_cluster(2)
    old = wait_healthy(cluster)
    new = next(n for n in cluster.nodes if n is not old)
    writer, monitor = start_load(cluster)
    writer.wait_acks(50)
    result = hatui(cluster, "switchover", "batman", "--leader", old.name, "--candidate", new.name, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'Successfully switched over to "{new.name}"' in result.stdout
    assert etcd_get(cluster, "/service/batman/leader") == new.name
    assert finish(cluster, writer, monitor) is new
    assert {writer.acked[i] for i in writer.acked} == {old.pg_port, new.pg_port}  # writes went to both
    assert patroni(new).get("timeline") == 2


@pytest.mark.slow
def test_pause_mode_nothing_automatic(fault_cluster) -> None:
    """Paused, the leader's PostgreSQL dies (kill -9 of the postmaster): nothing restarts it and
    nobody is promoted, however long the cluster waits; the lock stays where it was. Resumed,
    one leader is back with every acknowledged commit."""
    cluster = fault_cluster(2)
    leader = wait_healthy(cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    result = hatui(cluster, "pause", "batman", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    cluster.wait_for(lambda: patroni(replica).get("pause") is True, 30, "members reporting pause")
    writer, monitor = start_load(cluster)
    writer.wait_acks(20)
    pid = leader.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    cluster.wait_for(lambda: not is_writable(leader), 30, "the leader's PostgreSQL gone")
    # Past the TTL and many cycles: still nothing automatic.
    cluster.wait_for(lambda: log_has(replica, "PAUSE:"), 30, "PAUSE lines on the replica")
    cluster.wait_for(lambda: leader.log_path.read_text().count("PAUSE:") >= 30, 90, "thirty paused cycles")
    assert leader.postmaster_pid() is None
    assert not is_writable(replica) and patroni(replica).get("role") != "primary"
    assert etcd_get(cluster, "/service/batman/leader") in (leader.name, None)
    assert not log_has(replica, "promoted self to leader")
    result = hatui(cluster, "resume", "batman", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    # Resumed, the HA loop acts again: the old leader starts its server, or (its key released
    # while its PostgreSQL was down, as Patroni does) the replica wins the race and the old
    # leader follows it. Replication is asynchronous and the old primary crashed, so as in any
    # failover the commits it had not yet sent may be lost: a tail at most, never a gap.
    new = finish(cluster, writer, monitor, async_tail_loss=True)
    assert patroni(new).get("timeline") == (1 if new is leader else 2)
