"""pgBackRest for real (issue 15, item 3): a repository in a temp dir, archive_command set through the
dynamic configuration, a replica restored from the repository by a `pgbackrest` replica method, and a
new cluster bootstrapped from the backup to a point in time."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from backupkit import PgBackRest, have_pgbackrest, log_text, make, patch_config, query, sysid
from servers import make_tempdir, print_logs, remove_tree

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not have_pgbackrest(), reason="pgbackrest is not installed (./run.sh test installs it)")]


@pytest.fixture(scope="module")
def primary(request: pytest.FixtureRequest) -> Iterator:
    """One primary with archive_mode on, a stanza and a full backup; rows before/after a target time."""
    base = make_tempdir("hatui-pgbr-")
    made: list = []
    ok = False
    try:
        cluster = make(base, 2, dcs={"postgresql": {"use_pg_rewind": True, "parameters": {
            "wal_keep_size": "128MB", "archive_mode": "on"}}})
        made.append(cluster)
        node, second = cluster.nodes
        repo = PgBackRest(base, "batman", node.data_dir, node.pg_port, base / "data" / f"{node.name}-socket")
        # The second node (started by a test) has pgBackRest as its only replica method.
        cluster.per_node[second.name] = {"postgresql": {
            "create_replica_methods": ["pgbackrest"],
            "pgbackrest": {"command": f"{repo.base_cmd} --pg1-path={second.data_dir} --delta restore",
                           "keep_data": True, "no_params": True, "no_leader": True},
            "recovery_conf": {"restore_command": repo.restore_command(second.data_dir)},
        }}
        cluster.write_configs()
        cluster.start_etcd()
        cluster.start_node(0)
        cluster.wait_for(lambda: cluster.leader() is not None, 120, "a leader")
        # archive_command through the dynamic configuration (PATCH /config), applied by reload.
        patch_config(cluster, node.name, {"postgresql": {"parameters": {"archive_command": repo.archive_command}}})
        cluster.wait_for(lambda: query(node, "SHOW archive_command") == [(repo.archive_command,)], 30,
                         "archive_command applied")
        repo.run("stanza-create")
        repo.run("check")
        with node.connect() as conn:
            conn.execute("CREATE TABLE events (id int PRIMARY KEY, what text)")
            conn.execute("INSERT INTO events VALUES (1, 'before the backup')")
        repo.run("backup", "--type=full")
        with node.connect() as conn:
            conn.execute("INSERT INTO events VALUES (2, 'before the target')")
            time.sleep(1.5)
            target = conn.execute("SELECT now()::text").fetchone()[0]
            time.sleep(1.5)
            conn.execute("INSERT INTO events VALUES (3, 'after the target')")
            conn.execute("SELECT pg_switch_wal()")
        repo.run("check")  # waits until the current WAL segment is in the repository
        failed_before = request.session.testsfailed
        yield base, cluster, repo, target, made
        ok = request.session.testsfailed == failed_before
    finally:
        for c in made:
            c.stop()
        if ok:
            remove_tree(base)
        else:
            print_logs([n for c in made for n in c.nodes])
            print(f"logs kept in {base}")


def test_replica_restored_by_a_pgbackrest_method(primary) -> None:
    _base, cluster, repo, _target, _made = primary
    node = cluster.nodes[1]
    cluster.start_node(1)
    cluster.wait_for(node.is_streaming, 120, "postgresql1 streaming")
    assert query(node, "SELECT what FROM events ORDER BY id") is not None
    text = log_text(node)
    assert "replica has been created using pgbackrest" in text
    # The copy is pgBackRest's backup, not a pg_basebackup from the primary.
    label = (node.data_dir / "backup_label.old").read_text()
    assert "pg_basebackup" not in label
    assert "LABEL: pgBackRest backup started at" in label
    assert f"(file {repo.info()[0]['backup'][-1]['archive']['start']})" in label
    # The restore_command pgBackRest wrote into postgresql.auto.conf gave way to recovery_conf's.
    assert "restore_command" not in (node.data_dir / "postgresql.auto.conf").read_text()
    assert f"restore_command = '{repo.restore_command(node.data_dir)}'" in (node.data_dir / "postgresql.conf").read_text()
    cluster.wait_for(lambda: query(node, "SELECT count(*) FROM events") == [(3,)], 60, "all rows streamed")


def test_new_cluster_bootstrapped_from_the_backup_to_a_point_in_time(primary) -> None:
    base, _cluster, repo, target, made = primary
    pitr_base = base / "pitr"
    pitr_base.mkdir()
    new = make(pitr_base, 1, scope="robin")
    made.append(new)
    node = new.nodes[0]
    new.replace_bootstrap = {node.name: {
        "method": "pitr",
        "pitr": {
            "command": f"{repo.base_cmd} --pg1-path={node.data_dir} restore",
            "no_params": True,
            "recovery_conf": {"restore_command": repo.restore_command(node.data_dir), "recovery_target_time": target,
                              "recovery_target_action": "promote", "recovery_target_inclusive": False},
        },
    }}
    new.start()
    rows = query(node, "SELECT id, what FROM events ORDER BY id")
    assert rows == [(1, "before the backup"), (2, "before the target")]
    assert query(node, "SELECT NOT pg_is_in_recovery()") == [(True,)]
    assert new.etcd_get("/service/robin/initialize") == sysid(new, node)
    conf = (node.data_dir / "postgresql.conf").read_text()
    assert "recovery_target_time" not in conf  # the bootstrap's recovery settings are gone afterwards
    assert not (node.data_dir / "recovery.signal").exists()
    text = log_text(node)
    assert "Running custom bootstrap script" in text and "waiting for end of recovery after bootstrap" in text


def test_bootstrap_keeping_pgbackrests_own_recovery_settings(primary) -> None:
    """keep_existing_recovery_conf: pgBackRest writes the target and restore_command itself."""
    base, _cluster, repo, target, made = primary
    new = make(base / "keep", 1, scope="alfred")
    made.append(new)
    node = new.nodes[0]
    new.replace_bootstrap = {node.name: {
        "method": "pgbackrest_pitr",
        "pgbackrest_pitr": {
            "command": f"{repo.base_cmd} --pg1-path={node.data_dir} --type=time --target-action=promote restore",
            "keep_existing_recovery_conf": True,
            "no_params": True,
            "target": target,  # an extra key: passed as --target=<time>, even with no_params
        },
    }}
    new.start()
    assert query(node, "SELECT id FROM events ORDER BY id") == [(1,), (2,)]
    assert query(node, "SELECT NOT pg_is_in_recovery()") == [(True,)]
    text = log_text(node)
    # pgBackRest's own settings were used for the recovery, and removed only after its end.
    assert text.index("end of recovery after bootstrap") < text.index("removed recovery settings")


def test_no_leader_method_restores_a_member_when_no_leader_runs(primary) -> None:
    """The last test of the module: it takes the cluster's leader away."""
    _base, cluster, _repo, _target, _made = primary
    leader, node = cluster.nodes
    if node.daemon is None or not node.daemon.alive:
        cluster.start_node(1)
        cluster.wait_for(node.is_streaming, 120, "postgresql1 streaming")
    node.daemon.stop(timeout=60)
    cluster.kill_node(leader.name)
    cluster.wait_for(lambda: cluster.etcd_get("/service/batman/leader") is None, 60, "no leader key")
    shutil.rmtree(node.data_dir)
    offset = node.log_path.stat().st_size
    cluster.start_node(1)
    cluster.wait_for(node.is_writable, 180, "postgresql1 restored and promoted")
    text = node.log_path.read_text(errors="replace")[offset:]
    assert "trying to bootstrap (without leader)" in text
    assert "replica has been created using pgbackrest" in text
    assert query(node, "SELECT id FROM events ORDER BY id") == [(1,), (2,), (3,)]
    assert cluster.etcd_get("/service/batman/leader") == node.name
