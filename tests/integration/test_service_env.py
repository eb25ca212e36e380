"""A node configured by PATRONI_* variables alone, with no node file, joins a running cluster
(issue 20: environment configuration), against real etcd and PostgreSQL."""

from __future__ import annotations

import os
import sys

import pytest
from servers import make_tempdir, print_logs, process_environ, remove_tree

from hatui.launcher import LocalCluster, Proc

pytestmark = pytest.mark.integration

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


def node_environment(cluster: LocalCluster, i: int) -> dict[str, str]:
    """What a container would be given: Patroni's variable names, nothing else about the node."""
    node = cluster.nodes[i]
    return {
        "PATRONI_SCOPE": cluster.scope,
        "PATRONI_NAMESPACE": "/service/",
        "PATRONI_NAME": node.name,
        "PATRONI_ETCD3_HOSTS": f"'{cluster.etcd_endpoint}'",
        "PATRONI_RESTAPI_LISTEN": f"127.0.0.1:{node.api_port}",
        "PATRONI_RESTAPI_CONNECT_ADDRESS": f"127.0.0.1:{node.api_port}",
        "PATRONI_POSTGRESQL_LISTEN": f"127.0.0.1:{node.pg_port}",
        "PATRONI_POSTGRESQL_CONNECT_ADDRESS": f"127.0.0.1:{node.pg_port}",
        "PATRONI_POSTGRESQL_DATA_DIR": str(node.data_dir),
        "PATRONI_REPLICATION_USERNAME": "replicator",
        "PATRONI_REPLICATION_PASSWORD": "rep-pass",
        "PATRONI_SUPERUSER_USERNAME": "postgres",
        "PATRONI_SUPERUSER_PASSWORD": "zalando",
        "PATRONI_LOG_LEVEL": "INFO",
        "HATUI_TAGS": "{nofailover: true}",
    }


def test_daemon_from_variables_alone_joins_the_cluster(request: pytest.FixtureRequest) -> None:
    base = make_tempdir("hatui-envnode-")
    cluster = LocalCluster(base, 2, dcs=dict(FAST))
    try:
        cluster.write_configs()
        cluster.start_etcd()
        cluster.start_node(0)
        cluster.wait_for(lambda: cluster.leader() == "postgresql0", 120, "postgresql0 leading")
        node = cluster.nodes[1]
        node.config_path.unlink()  # no node file at all
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PATRONI_", "HATUI_"))}
        env.update(node_environment(cluster, 1), PYTHONUNBUFFERED="1")
        node.daemon = Proc(node.name, [sys.executable, "-m", "hatui.daemon"], node.log_path, env=env).start()
        cluster.wait_for(node.is_streaming, 120, "postgresql1 streaming from postgresql0")
        status = node.patroni()
        assert status["role"] == "replica" and status["patroni"]["scope"] == "batman"
        assert status.get("tags", {}).get("nofailover") is True
        # /cluster is postgresql0's view of etcd, read once per loop, while is_streaming asked
        # postgresql1's PostgreSQL live: the new member may not be in that view yet.
        def listed() -> dict | None:
            status, body = cluster.nodes[0].rest("/cluster")
            members = body.get("members", []) if status == 200 and isinstance(body, dict) else []
            return next((m for m in members if m.get("name") == "postgresql1"), None)
        member = cluster.wait_for(listed, 30, "postgresql1 in postgresql0's /cluster")
        assert member["api_url"] == f"http://127.0.0.1:{node.api_port}/patroni"
        # The variables were consumed: the daemon's children (its PostgreSQL) do not inherit the passwords.
        assert b"PATRONI_" not in process_environ(node.postmaster_pid())
        assert b"zalando" not in process_environ(node.postmaster_pid())
    except BaseException:
        print_logs(cluster.nodes)
        raise
    finally:
        cluster.stop()
        if getattr(request.node, "_hatui_rep_call", None) is None or not request.node._hatui_rep_call.failed:
            remove_tree(base)
