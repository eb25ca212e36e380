"""Bad input written by someone else (issue 8): the `config` key replaced in etcd directly,
bypassing every validator, with values that are not JSON, of the wrong types, out of range, huge,
or unknown. The daemons keep running and keep their roles, PostgreSQL keeps the settings it had
(nothing invalid reaches its configuration files), and a valid config written afterwards is
applied as usual."""

from __future__ import annotations

import json

import pytest
from faultkit import connect, hatui_cli, is_writable, wait_healthy

from hatui.etcd.kv import EtcdHttp

pytestmark = pytest.mark.integration

CONFIG_KEY = "/service/batman/config"

HOSTILE = [
    "{{{ not json",
    json.dumps(["a", "list", "not", "an", "object"]),
    json.dumps({"ttl": "abc", "loop_wait": -5, "retry_timeout": None, "maximum_lag_on_failover": "x",
                "synchronous_mode": 42, "pause": "maybe", "failsafe_mode": [1],
                "postgresql": {"parameters": {"max_connections": "lots", "work_mem": "9" * 10_000,
                                              "shared_buffers": {"nested": True}, "no_such_guc": 1}},
                "unknown_key": {"deep": ["x" * 1000]}}),
    json.dumps({"ttl": 20, "loop_wait": 1, "retry_timeout": 3, "blob": "x" * 1_000_000,
                "postgresql": {"parameters": {"no_such_guc": "on"}}}),
]


def setting(node, name: str) -> str:
    with connect(node) as conn:
        return conn.execute(f"SHOW {name}").fetchone()[0]


def test_hostile_config_key_changes_nothing(fault_cluster) -> None:
    cluster = fault_cluster(2)
    leader = wait_healthy(cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    before = {n.name: (setting(n, "max_connections"), setting(n, "work_mem")) for n in cluster.nodes}
    etcd = EtcdHttp(cluster.etcd_endpoint)
    try:
        for value in HOSTILE:
            etcd.put(CONFIG_KEY, value)
            marker = f"hostile-{HOSTILE.index(value)}"
            # Two HA cycles with the bad value in place (an invalid loop_wait means the default, 10 s).
            seen = leader.log_path.read_text().count("Lock owner")
            cluster.wait_for(lambda seen=seen: leader.log_path.read_text().count("Lock owner") >= seen + 2, 60,
                             f"two cycles with {marker}")
            assert leader.daemon.alive and replica.daemon.alive, marker
            assert cluster.leader() == leader.name, marker
            assert is_writable(leader) and not is_writable(replica), marker
            assert replica.is_streaming(), marker
            # "pause": "maybe" is not a boolean: every reader keeps the default (not paused); the HA
            # core used to read it as paused, which is partly why this test passed.
            recent = [line for line in leader.log_path.read_text().splitlines()[-20:]
                      if "the leader with the lock" in line]
            assert recent and not any("PAUSE: " in line for line in recent), (marker, recent)
            for n in cluster.nodes:
                assert (setting(n, "max_connections"), setting(n, "work_mem")) == before[n.name], marker
                # PostgreSQL would refuse to start with an unknown parameter in its files.
                assert "no_such_guc" not in (n.data_dir / "postgresql.conf").read_text(), marker
        # With the last hostile value still in place, PostgreSQL restarts as usual.
        restart = hatui_cli(cluster, "restart", "batman", replica.name, "--force")
        assert restart.returncode == 0, restart.stdout + restart.stderr
        cluster.wait_for(replica.is_streaming, 60, f"{replica.name} streaming after its restart")
        # The operator writes a sane config again: it is applied as usual.
        etcd.put(CONFIG_KEY, json.dumps({"ttl": 20, "loop_wait": 1, "retry_timeout": 3,
                                         "postgresql": {"parameters": {"work_mem": "8MB"}}}))
        for n in cluster.nodes:
            cluster.wait_for(lambda n=n: setting(n, "work_mem") == "8MB", 60, f"work_mem 8MB on {n.name}")
    finally:
        etcd.close()
    assert cluster.leader() == leader.name
    text = leader.log_path.read_text()
    assert "Traceback" not in text and "Unexpected exception" not in text
    assert "postgresql parameter no_such_guc is not known to this PostgreSQL, leaving it out" in text
