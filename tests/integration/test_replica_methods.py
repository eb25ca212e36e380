"""create_replica_methods and recovery_conf against real etcd and PostgreSQL (issue 15, items 1-2)."""

from __future__ import annotations

import shlex

import pytest
from backupkit import log_text, make, pg_bin, query, script, server_dir, workspace_fixture

pytestmark = pytest.mark.integration


tmp_base = workspace_fixture("hatui-rm-")


def test_custom_method_gets_patronis_arguments_after_a_failing_one(tmp_base) -> None:
    base, made = tmp_base
    record = server_dir(base / "record")
    copy = script(base / "copy-replica.sh", f"""
echo "$@" > {record}/args
for a in "$@"; do case "$a" in --datadir=*) dd="${{a#--datadir=}}";; --connstring=*) cs="${{a#--connstring=}}";; esac; done
exec {shlex.quote(pg_bin('pg_basebackup'))} -D "$dd" -X stream -c fast -d "$cs"
""")
    broken = script(base / "broken.sh", "echo 'no backup here' >&2; exit 3\n")
    methods = {
        "create_replica_methods": ["broken", "custom", "basebackup"],
        "broken": {"command": str(broken)},
        "custom": {"command": str(copy), "extra": "hello"},
    }
    cluster = make(base, 2, per_node={"postgresql1": {"postgresql": methods}})
    made.append(cluster)
    cluster.start()
    replica = cluster.node("postgresql1")
    cluster.wait_for(replica.is_streaming, 90, "postgresql1 streaming")
    args = (record / "args").read_text().split()
    leader = cluster.node("postgresql0")
    assert "--scope=batman" in args
    assert "--role=replica" in args
    assert f"--datadir={replica.data_dir}" in args
    assert "--extra=hello" in args
    conn = " ".join(args[args.index(next(a for a in args if a.startswith("--connstring="))):])
    assert f"host=127.0.0.1 port={leader.pg_port}" in conn and "user=replicator" in conn
    assert "password" not in conn  # the password travels in PGPASSFILE
    text = log_text(replica)
    assert "Error creating replica using method broken" in text and "no backup here" in text
    assert "replica has been created using custom" in text
    assert "replica has been created using basebackup" not in text


def test_basebackup_section_options_reach_pg_basebackup(tmp_base) -> None:
    base, made = tmp_base
    # A label only the basebackup section sets; it survives in backup_label.old on the replica.
    cluster = make(base, 2, per_node={"postgresql1": {"postgresql": {
        "basebackup": [{"label": "from-the-basebackup-section"}, {"max-rate": "100M"}, "verbose", {"pgdata": "/x"}],
    }}})
    made.append(cluster)
    cluster.start()
    replica = cluster.node("postgresql1")
    cluster.wait_for(replica.is_streaming, 90, "postgresql1 streaming")
    label = (replica.data_dir / "backup_label.old").read_text()
    assert "LABEL: from-the-basebackup-section" in label
    assert "basebackup option --pgdata is set by hatui itself" in log_text(replica)


def test_replica_behind_retained_wal_catches_up_from_the_archive(tmp_base) -> None:
    base, made = tmp_base
    archive = server_dir(base / "archive")
    # No replication slots: the primary's slot for the replica would keep the WAL this test needs gone.
    dcs = {"postgresql": {"use_pg_rewind": True, "use_slots": False, "parameters": {
        "wal_keep_size": "16MB", "max_wal_size": "32MB", "min_wal_size": "32MB", "archive_mode": "on",
        "archive_command": f"test ! -f {archive}/%f && cp %p {archive}/%f"}}}
    recovery_conf = {"restore_command": f"cp {archive}/%f %p", "recovery_min_apply_delay": "0",
                     "recovery_target_time": "2000-01-01 00:00:00"}  # a target is dropped on a replica
    cluster = make(base, 2, per_node={"postgresql1": {"postgresql": {"recovery_conf": recovery_conf}}})
    cluster.per_node["postgresql0"] = {"bootstrap": {"dcs": dcs}}
    cluster.per_node["postgresql1"]["bootstrap"] = {"dcs": dcs}
    made.append(cluster)
    cluster.start()
    leader, replica = cluster.node("postgresql0"), cluster.node("postgresql1")
    cluster.wait_for(replica.is_streaming, 90, "postgresql1 streaming")
    conf = (replica.data_dir / "postgresql.conf").read_text()
    assert f"restore_command = 'cp {archive}/%f %p'" in conf
    assert "recovery_target_time = ''" in conf  # blanked: a standby never stops at a target
    # Stop the replica, then write far more WAL than the primary keeps.
    replica.daemon.stop(timeout=60)
    with leader.connect() as conn:
        conn.execute("CREATE TABLE t (id int, pad text)")
        gone = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        for _ in range(6):
            conn.execute("INSERT INTO t SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g")
            conn.execute("SELECT pg_switch_wal()")
            conn.execute("CHECKPOINT")
        conn.execute("INSERT INTO t VALUES (-1, 'the last row')")
        conn.execute("SELECT pg_switch_wal()")
        conn.execute("CHECKPOINT")
    cluster.wait_for(lambda: (archive / gone).exists(), 30, "the segment archived")
    assert not (leader.data_dir / "pg_wal" / gone).exists(), "the primary still keeps the old WAL"
    cluster.start_node(1)
    cluster.wait_for(lambda: query(replica, "SELECT pad FROM t WHERE id = -1") == [("the last row",)], 120,
                     "the last row on the replica")
    assert f'restored log file "{gone}" from archive' in (
        replica.data_dir.parent / "postgresql1-log" / "postgresql.log").read_text()
