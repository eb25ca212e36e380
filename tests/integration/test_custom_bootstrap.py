"""Custom bootstrap (`bootstrap.method`), post_bootstrap, and a failed bootstrap (issue 15, item 4)."""

from __future__ import annotations

import shlex

import pytest
from backupkit import log_text, make, pg_bin, query, script, server_dir, sysid, workspace_fixture

pytestmark = pytest.mark.integration


tmp_base = workspace_fixture("hatui-cb-")


def test_custom_method_and_post_bootstrap_run_once(tmp_base) -> None:
    base, made = tmp_base
    record = server_dir(base / "record")
    make_cluster = script(base / "make-cluster.sh", f"""
echo "$@" > {record}/bootstrap-args
for a in "$@"; do case "$a" in --datadir=*) dd="${{a#--datadir=}}";; esac; done
exec {shlex.quote(pg_bin('initdb'))} -D "$dd" --username=postgres --encoding=UTF8 >/dev/null
""")
    post = script(base / "post.sh", f"""
echo "$1" >> {record}/post-bootstrap
exec {shlex.quote(pg_bin('psql'))} "$1" -qc "CREATE TABLE made_by_post_bootstrap (x int)"
""")
    cluster = make(base, 2)
    cluster.replace_bootstrap = {"postgresql0": {
        "method": "scripted", "scripted": {"command": str(make_cluster), "origin": "scripted-test"},
        "post_bootstrap": str(post),
    }}
    made.append(cluster)
    cluster.start()
    leader, replica = cluster.node("postgresql0"), cluster.node("postgresql1")
    cluster.wait_for(replica.is_streaming, 90, "postgresql1 streaming")
    args = (record / "bootstrap-args").read_text().split()
    assert args == ["--scope=batman", f"--datadir={leader.data_dir}", "--origin=scripted-test"]
    # post_bootstrap got a connection string to the new primary (password in PGPASSFILE) and ran once.
    calls = (record / "post-bootstrap").read_text().splitlines()
    assert len(calls) == 1 and "user=postgres" in calls[0] and f"port={leader.pg_port}" in calls[0]
    assert "password" not in calls[0]
    cluster.wait_for(lambda: query(replica, "SELECT count(*) FROM made_by_post_bootstrap") == [(0,)], 30,
                     "post_bootstrap's table on the replica")
    assert cluster.etcd_get("/service/batman/initialize") == sysid(cluster, leader)
    # A restart of the leader's daemon is not a new bootstrap.
    leader.daemon.stop(timeout=60)
    cluster.start_node(0)
    cluster.wait_for(lambda: cluster.leader() is not None and leader.patroni().get("state") == "running", 90,
                     "postgresql0 running again")
    assert len((record / "post-bootstrap").read_text().splitlines()) == 1
    assert "Running custom bootstrap script" in log_text(leader)


def test_failed_bootstrap_leaves_no_initialize_key_and_the_next_node_bootstraps(tmp_base) -> None:
    base, made = tmp_base
    broken = script(base / "restore.sh", "echo 'backup repository unreachable' >&2; exit 2\n")
    cluster = make(base, 2)
    cluster.replace_bootstrap = {"postgresql0": {"method": "restore", "restore": {"command": str(broken)}}}
    made.append(cluster)
    cluster.write_configs()
    cluster.start_etcd()
    first, second = cluster.nodes
    cluster.start_node(0)
    cluster.wait_for(lambda: not first.daemon.alive, 60, "postgresql0's daemon to give up")
    text = log_text(first)
    assert ("bootstrap failed: custom bootstrap method 'restore' failed: "
            f"{broken} exited with code=2: backup repository unreachable") in text
    assert "removing initialize key after failed attempt to bootstrap the cluster" in text
    assert first.daemon.popen.returncode == 1
    assert cluster.etcd_get("/service/batman/initialize") is None
    assert cluster.etcd_get("/service/batman/leader") is None
    # The next node (initdb) may try, and does.
    cluster.start_node(1)
    cluster.wait_for(lambda: cluster.leader() == "postgresql1", 120, "postgresql1 leading")
    assert cluster.etcd_get("/service/batman/initialize") == sysid(cluster, second)
