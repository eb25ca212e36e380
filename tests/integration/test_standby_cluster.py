"""Standby clusters against real etcd and PostgreSQL (issue 15, item 5).

Cluster `batman` (one node, its own etcd) is the primary cluster. Cluster `robin` (two nodes, its
own etcd) is a standby cluster of it: `standby_cluster` in its bootstrap configuration. Its first
node copies batman's primary and becomes the standby leader, the second cascades from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from backupkit import cluster_workspace, log_text, make, query, server_dir

pytestmark = pytest.mark.integration


def hatui_cli(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hatui", "--etcd", cluster.etcd_endpoint, *args],
                          check=False, capture_output=True, text=True, timeout=300)


def patronictl(cluster, *args: str) -> subprocess.CompletedProcess:
    from test_patronictl import _install_patronictl  # the shared venv (skips without network)

    home = cluster.base_dir / "ctl-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATRONI", "DCS_URL"))}
    env.update(HOME=str(home), LANG="C.UTF-8")
    return subprocess.run([str(_install_patronictl()), "--dcs-url", f"etcd3://{cluster.etcd_endpoint}", *args],
                          check=False, capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)


def role_of(node) -> str | None:
    return node.patroni().get("role")


def member_state(cluster, node) -> str | None:
    member = json.loads(cluster.etcd_get(f"/service/robin/members/{node.name}") or "{}")
    return member.get("replication_state")


def has_row(node, i: int) -> bool:
    return query(node, "SELECT id FROM rows WHERE id = %s", i) == [(i,)]


@pytest.fixture
def two_clusters(request: pytest.FixtureRequest) -> Iterator:
    with cluster_workspace(request, "hatui-sc-") as (base, made):
        main = make(base / "main", 1)
        made.append(main)
        main.start()
        remote = main.nodes[0]
        standby = make(base / "standby", 2, scope="robin", dcs={"standby_cluster": {
            "host": "127.0.0.1", "port": remote.pg_port}})
        made.append(standby)
        standby.write_configs()
        standby.start_etcd()
        yield main, standby


def test_standby_cluster_follows_survives_its_leader_and_is_promoted(two_clusters) -> None:
    main, standby = two_clusters
    remote = main.nodes[0]
    s0, s1 = standby.nodes
    standby.start_node(0)
    standby.wait_for(lambda: role_of(s0) == "standby_leader", 120, "robin's standby leader")
    standby.start_node(1)
    standby.wait_for(s1.is_streaming, 120, "postgresql1 of robin streaming")
    assert standby.etcd_get("/service/robin/leader") == "postgresql0"
    assert "clone from remote member 127.0.0.1:" in log_text(s0)

    # A row written on the primary cluster reaches both members of the standby cluster.
    with remote.connect() as conn:
        conn.execute("CREATE TABLE rows (id int PRIMARY KEY)")
        conn.execute("INSERT INTO rows VALUES (1)")
    for node in (s0, s1):
        standby.wait_for(lambda n=node: has_row(n, 1), 60, f"row 1 on {node.name}")
    # The standby leader streams from the remote primary, the other member from the standby leader.
    assert query(s0, "SELECT sender_port FROM pg_stat_wal_receiver") == [(remote.pg_port,)]
    assert query(s1, "SELECT sender_port FROM pg_stat_wal_receiver") == [(s0.pg_port,)]
    assert query(s0, "SELECT pg_is_in_recovery()") == [(True,)]
    # With use_slots, the standby leader keeps a physical slot for the member cascading from it.
    assert query(s0, "SELECT active FROM pg_replication_slots WHERE slot_name = 'postgresql1'") == [(True,)]

    # `list` shows the member keys, which each daemon publishes once per loop; the REST API that
    # is_streaming asked reads PostgreSQL live and can be a loop ahead of them.
    for node in (s0, s1):
        standby.wait_for(lambda n=node: member_state(standby, n) == "streaming", 60,
                         f"{node.name}'s member key saying streaming")
    listing = hatui_cli(standby, "list", "robin")
    assert listing.returncode == 0, listing.stderr
    line0 = next(line for line in listing.stdout.splitlines() if "postgresql0" in line)
    assert "Standby Leader" in line0 and "streaming" in line0

    # The real patronictl lists it as Patroni would.
    ctl = patronictl(standby, "list", "robin")
    assert ctl.returncode == 0, ctl.stdout + ctl.stderr
    row0 = next(line for line in ctl.stdout.splitlines() if "postgresql0" in line)
    row1 = next(line for line in ctl.stdout.splitlines() if "postgresql1" in line)
    assert "| Standby Leader | streaming" in row0 and "| Replica        | streaming" in row1
    assert line0.split("|")[1:5] == row0.split("|")[1:5]  # hatui list: the same name/host/role/state

    # Kill the standby leader: the other member becomes the standby leader, never a primary.
    standby.kill_node("postgresql0")
    standby.wait_for(lambda: role_of(s1) == "standby_leader", 90, "postgresql1 standby leader")
    with remote.connect() as conn:
        conn.execute("INSERT INTO rows VALUES (2)")
    standby.wait_for(lambda: has_row(s1, 2), 60, "row 2 on postgresql1")
    assert query(s1, "SELECT pg_is_in_recovery()") == [(True,)]
    assert query(s1, "SELECT sender_port FROM pg_stat_wal_receiver") == [(remote.pg_port,)]
    # The decision is logged at the end of the loop that made it, maybe after the REST API said so.
    standby.wait_for(lambda: "promoted self to a standby leader by acquiring session lock" in log_text(s1), 30,
                     "postgresql1's log saying why it leads")

    # promote-cluster: the standby leader becomes the primary of a cluster of its own.
    res = hatui_cli(standby, "promote-cluster", "robin", "--force")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cluster is successfully promoted" in res.stdout
    standby.wait_for(s1.is_writable, 60, "postgresql1 writable")
    with s1.connect() as conn:
        conn.execute("INSERT INTO rows VALUES (3)")
    assert query(remote, "SELECT id FROM rows WHERE id = 3") == []
    standby.wait_for(lambda: role_of(s1) == "primary", 30, "postgresql1's REST role primary")


def test_demote_cluster_and_back(two_clusters) -> None:
    """demote-cluster turns a primary into a standby leader that keeps the leader key (here it
    restores from an archive, empty so far); promote-cluster makes it a primary again."""
    _main, standby = two_clusters
    archive = server_dir(standby.base_dir / "archive")
    standby.dcs_extra = {}  # robin starts as a cluster of its own
    for node in standby.nodes:
        node.config_path.unlink()
    standby.write_configs()
    s0 = standby.nodes[0]
    standby.start_node(0)
    standby.wait_for(lambda: role_of(s0) == "primary", 120, "robin's primary")
    res = hatui_cli(standby, "demote-cluster", "robin", "--force")
    assert res.returncode != 0 and "At least --host, --port or --restore-command should be specified" in res.stderr
    res = hatui_cli(standby, "promote-cluster", "robin", "--force")
    assert res.returncode != 0 and "Cluster is already in the required state" in res.stderr

    res = hatui_cli(standby, "demote-cluster", "robin", "--force", "--restore-command", f"cp {archive}/%f %p")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cluster is successfully demoted" in res.stdout
    standby.wait_for(lambda: role_of(s0) == "standby_leader", 30, "postgresql0's REST role standby_leader")
    assert standby.etcd_get("/service/robin/leader") == "postgresql0"
    assert query(s0, "SELECT pg_is_in_recovery()") == [(True,)]
    assert f"restore_command = 'cp {archive}/%f %p'" in (s0.data_dir / "postgresql.conf").read_text()
    standby.wait_for(lambda: "demoting to a standby cluster" in log_text(s0), 30, "postgresql0's log saying why")

    res = hatui_cli(standby, "promote-cluster", "robin", "--force")
    assert res.returncode == 0, res.stdout + res.stderr
    standby.wait_for(s0.is_writable, 60, "postgresql0 writable again")
