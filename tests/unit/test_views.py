"""views.py renders exactly what patronictl 4.1 prints for the same etcd keys.

The keys and the expected table are the ones captured from a real Patroni 4.1.5 cluster
(spec/patroni-observed.md); the 3.x shapes (role `master`, no receive/replay LSN) come from the
compatibility spec, section 1.6.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hatui.cluster import Cluster
from hatui.views import (
    cluster_title,
    format_duration,
    format_pg_version,
    history_rows,
    member_rows,
    render_history,
    render_members,
    render_table,
    render_topology,
    service_info,
)

OBSERVED_KEYS = {
    "config": '{"ttl":30,"loop_wait":10,"retry_timeout":10,"maximum_lag_on_failover":1048576,"postgresql":'
              '{"use_pg_rewind":true,"use_slots":true,"parameters":{"wal_level":"replica","hot_standby":"on",'
              '"wal_log_hints":"on","max_wal_senders":10,"max_replication_slots":10,"wal_keep_size":"128MB"}}}',
    "initialize": "7712193093952314556",
    "leader": "postgresql0",
    "members/postgresql0": '{"conn_url":"postgres://127.0.0.1:5432/postgres","api_url":"http://127.0.0.1:8008/patroni",'
                           '"state":"running","role":"primary","version":"4.1.5","xlog_location":50331744,"timeline":1}',
    "members/postgresql1": '{"conn_url":"postgres://127.0.0.1:5433/postgres","api_url":"http://127.0.0.1:8009/patroni",'
                           '"state":"running","role":"replica","version":"4.1.5","xlog_location":50331744,'
                           '"replay_lsn":50331744,"receive_lsn":50331744,"replication_state":"streaming","timeline":1}',
    "status": '{"optime":50331744,"slots":{"postgresql1":50331744,"postgresql0":50331744},'
              '"retain_slots":["postgresql0","postgresql1"]}',
}

OBSERVED_TABLE = """\
+ Cluster: batman (7712193093952314556) -+-----------+----+-------------+-----+------------+-----+
| Member      | Host           | Role    | State     | TL | Receive LSN | Lag | Replay LSN | Lag |
+-------------+----------------+---------+-----------+----+-------------+-----+------------+-----+
| postgresql0 | 127.0.0.1:5432 | Leader  | running   |  1 |             |     |            |     |
| postgresql1 | 127.0.0.1:5433 | Replica | streaming |  1 |   0/3000060 |   0 |  0/3000060 |   0 |
+-------------+----------------+---------+-----------+----+-------------+-----+------------+-----+"""

OBSERVED_JSON = (
    '[{"Cluster": "batman", "Member": "postgresql0", "Host": "127.0.0.1:5432", "Role": "Leader", "State": "running", '
    '"TL": 1}, {"Cluster": "batman", "Member": "postgresql1", "Host": "127.0.0.1:5433", "Role": "Replica", '
    '"State": "streaming", "TL": 1, "Receive LSN": "0/3000060", "Receive Lag": 0, "Replay LSN": "0/3000060", '
    '"Replay Lag": 0}]'
)


def build(keys: dict[str, str], scope: str = "batman") -> Cluster:
    return Cluster.from_kvs(scope, [(k, v, i + 1, 0) for i, (k, v) in enumerate(keys.items())])


def member(**data) -> str:
    return json.dumps(data, separators=(",", ":"))


def test_observed_cluster_renders_exactly_like_patronictl() -> None:
    text = render_members(build(OBSERVED_KEYS))
    assert text.splitlines() == OBSERVED_TABLE.splitlines()


def test_observed_cluster_json_matches_patronictl() -> None:
    assert render_members(build(OBSERVED_KEYS), "json") == OBSERVED_JSON


def test_yaml_output_has_sorted_keys_and_omits_empty_cells() -> None:
    text = render_members(build(OBSERVED_KEYS), "yaml")
    assert text.splitlines()[:7] == [
        "- Cluster: batman",
        "  Host: 127.0.0.1:5432",
        "  Member: postgresql0",
        "  Role: Leader",
        "  State: running",
        "  TL: 1",
        "- Cluster: batman",
    ]
    assert "  Replay Lag: 0" in text.splitlines()
    assert text.endswith("\n")  # patronictl echoes the dump with its own newline: a blank last line


def test_empty_cluster_and_history_in_yaml_are_empty_lists() -> None:
    assert render_members(build({}), "yaml") == "[]\n"
    assert render_members(build({}), "json") == "[]"
    assert render_history(build({}), "yaml") == "[]\n"


def test_tsv_keeps_the_cluster_column_and_full_lag_titles() -> None:
    lines = render_members(build(OBSERVED_KEYS), "tsv").splitlines()
    assert lines[0].split("\t") == ["Cluster", "Member", "Host", "Role", "State", "TL",
                                    "Receive LSN", "Receive Lag", "Replay LSN", "Replay Lag"]
    assert lines[1] == "batman\tpostgresql0\t127.0.0.1:5432\tLeader\trunning\t1\t\t\t\t"
    assert lines[2] == "batman\tpostgresql1\t127.0.0.1:5433\tReplica\tstreaming\t1\t0/3000060\t0\t0/3000060\t0"


def test_extended_adds_the_four_columns_even_when_empty() -> None:
    columns, rows = member_rows(build(OBSERVED_KEYS), extended=True)
    assert columns[-4:] == ["Pending restart", "Pending restart reason", "Scheduled restart", "Tags"]
    header = render_members(build(OBSERVED_KEYS), extended=True).splitlines()[1]
    assert header.endswith("| Pending restart | Pending restart reason | Scheduled restart | Tags |")


def test_patroni_3x_cluster_master_role_and_xlog_location_only() -> None:
    keys = {
        "initialize": "7277694203142172922",
        "leader": "postgresql0",
        "members/postgresql0": member(conn_url="postgres://127.0.0.1:5432/postgres",
                                      api_url="http://127.0.0.1:8008/patroni", state="running", role="master",
                                      version="3.3.2", xlog_location=50331744, timeline=5),
        # 1 MiB + a bit behind, streaming: patronictl 4.1 fills the Receive columns from xlog_location
        "members/postgresql1": member(conn_url="postgres://127.0.0.1:5433/postgres",
                                      api_url="http://127.0.0.1:8009/patroni", state="running", role="replica",
                                      version="3.3.2", xlog_location=50331744 - 1048576 - 600000,
                                      replication_state="streaming", timeline=5),
        # not streaming (archive recovery): the Replay columns
        "members/postgresql2": member(conn_url="postgres://127.0.0.1:5434/postgres",
                                      api_url="http://127.0.0.1:8010/patroni", state="running", role="replica",
                                      version="3.3.2", xlog_location=50331744 - 3 * 1048576,
                                      replication_state="in archive recovery", timeline=5),
        "status": '{"optime":50331744,"slots":{}}',
    }
    lines = render_members(build(keys)).splitlines()
    assert lines[0].startswith("+ Cluster: batman (7277694203142172922) -")
    assert lines[3] == "| postgresql0 | 127.0.0.1:5432 | Leader  | running             |  5 |             |     |            |     |"
    assert lines[4] == "| postgresql1 | 127.0.0.1:5433 | Replica | streaming           |  5 |   0/2E6D8A0 |   2 |    unknown |     |"
    assert lines[5] == "| postgresql2 | 127.0.0.1:5434 | Replica | in archive recovery |  5 |     unknown |     |  0/2D00060 |   3 |"


def test_uninitialized_and_initializing_titles() -> None:
    assert cluster_title(build({})) == " Cluster: batman (uninitialized) "
    assert cluster_title(build({"initialize": ""})) == " Cluster: batman (initializing) "
    lines = render_members(build({})).splitlines()
    assert lines[0] == "+ Cluster: batman (uninitialized) --+-------------+-----+------------+-----+"
    # prettytable with no rows: the header rule and the bottom rule, twice the same line
    assert lines[2] == lines[3] == "+--------+------+------+-------+----+-------------+-----+------------+-----+"
    assert len(lines) == 4


def test_title_is_cut_to_the_table_width() -> None:
    text = render_table(["A"], [["x"]], title=" Cluster: a-very-long-name (7712193093952314556) ")
    top = text.splitlines()[0]
    assert top == "+ Cl+"  # the border is 5 wide: its first and last characters stay
    assert len(top) == len(text.splitlines()[1])


def test_pending_restart_columns_appear_when_a_member_has_one() -> None:
    keys = dict(OBSERVED_KEYS)
    keys["members/postgresql1"] = member(
        conn_url="postgres://127.0.0.1:5433/postgres", api_url="http://127.0.0.1:8009/patroni", state="running",
        role="replica", version="4.1.5", xlog_location=50331744, replay_lsn=50331744, receive_lsn=50331744,
        replication_state="streaming", timeline=1, pending_restart=True,
        pending_restart_reason={"max_connections": {"old_value": "100", "new_value": "101"},
                                "shared_preload_libraries": {"old_value": "pg_stat_statements,auto_explain",
                                                             "new_value": "pg_stat_statements,auto_explain,pgaudit"}})
    columns, rows = member_rows(build(keys))
    assert columns[-2:] == ["Pending restart", "Pending restart reason"]
    assert "Scheduled restart" not in columns and "Tags" not in columns
    assert rows[1][-2:] == ["*", "max_connections: 100->101\nshared_preload_libraries: [hidden - too long]"]
    lines = render_members(build(keys)).splitlines()
    # a two-line cell: rules between all rows, and the second line of the cell on its own row
    assert lines[4] == lines[2]
    assert lines[5].endswith("|   0 | *               | max_connections: 100->101                     |")
    assert lines[6] == ("|             |                |         |           |    |             |     |"
                        "            |     |                 | shared_preload_libraries: [hidden - too long] |")
    # machine formats keep the full text
    _, rows = member_rows(build(keys), fmt="json")
    assert "pgaudit" in rows[1][-1]


def test_host_without_port_when_all_default_and_distinct() -> None:
    keys = {
        "initialize": "1", "leader": "a",
        "members/a": member(conn_url="postgres://10.0.0.1:5432/postgres", state="running", role="primary", timeline=2),
        "members/b": member(conn_url="postgres://10.0.0.2/postgres", state="running", role="replica",
                            replication_state="streaming", receive_lsn=100, replay_lsn=100, timeline=2),
    }
    _, rows = member_rows(build(keys))
    assert [r[2] for r in rows] == ["10.0.0.1", "10.0.0.2"]


def test_lag_is_rounded_half_to_even_in_mb_and_never_negative() -> None:
    mb = 1048576
    keys = {
        "initialize": "1", "leader": "a", "status": json.dumps({"optime": 100 * mb}),
        "members/a": member(conn_url="postgres://h1:5432/p", state="running", role="primary", xlog_location=100 * mb),
        "members/b": member(conn_url="postgres://h2:5432/p", state="running", role="replica",
                            replication_state="streaming", receive_lsn=100 * mb - int(2.5 * mb),
                            replay_lsn=100 * mb - int(1.5 * mb)),
        "members/c": member(conn_url="postgres://h3:5432/p", state="running", role="replica",
                            replication_state="streaming", receive_lsn=101 * mb, replay_lsn=101 * mb),
    }
    _, rows = member_rows(build(keys))
    assert rows[1][7] == 2 and rows[1][9] == 2  # 2.5 -> 2, 1.5 -> 2
    assert rows[2][7] == 0 and rows[2][9] == 0


def test_tags_as_yaml_block_in_pretty_and_flow_in_tsv() -> None:
    keys = dict(OBSERVED_KEYS)
    keys["members/postgresql1"] = member(
        conn_url="postgres://127.0.0.1:5433/postgres", state="running", role="replica",
        replication_state="streaming", receive_lsn=50331744, replay_lsn=50331744, timeline=1,
        tags={"nofailover": True, "zone": "b"})
    pretty = render_members(build(keys)).splitlines()
    assert pretty[1].endswith("| Tags             |")
    assert pretty[4] == pretty[2]
    assert pretty[5].endswith("| nofailover: true |")
    assert pretty[6].endswith("| zone: b          |")
    tsv = render_members(build(keys), "tsv").splitlines()
    assert tsv[2].endswith("\t{nofailover: true, zone: b}")
    assert json.loads(render_members(build(keys), "json"))[1]["Tags"] == {"nofailover": True, "zone": "b"}


def test_topology_puts_cascaded_replicas_under_their_upstream() -> None:
    keys = {
        "initialize": "1", "leader": "c",
        "members/a": member(conn_url="postgres://h:5001/p", state="running", role="replica",
                            replication_state="streaming", receive_lsn=1, replay_lsn=1, tags={"replicatefrom": "b"}),
        "members/b": member(conn_url="postgres://h:5002/p", state="running", role="replica",
                            replication_state="streaming", receive_lsn=1, replay_lsn=1),
        "members/c": member(conn_url="postgres://h:5003/p", state="running", role="primary", xlog_location=1),
    }
    lines = render_topology(build(keys)).splitlines()
    assert [line.split("|")[1].rstrip() for line in lines[3:6]] == [" c", " + b", "   + a"]
    # tags in topology are flow style
    assert "{replicatefrom: b}" in lines[5]


def test_footer_lines_for_pause_and_scheduled_switchover() -> None:
    keys = dict(OBSERVED_KEYS)
    keys["config"] = '{"ttl":30,"pause":true}'
    keys["failover"] = '{"leader":"postgresql0","member":"postgresql1","scheduled_at":"2026-11-26T10:00:00+00:00"}'
    cluster = build(keys)
    assert service_info(cluster)[0] == "Maintenance mode: on"
    lines = render_members(cluster).splitlines()
    assert lines[-4:] == [
        " Maintenance mode: on",
        " Switchover scheduled at: 2026-11-26T10:00:00+00:00",
        "                    from: postgresql0",
        "                      to: postgresql1",
    ]
    assert "Maintenance" not in render_members(cluster, "json")


def test_history_table_has_no_title_and_right_aligned_numbers() -> None:
    keys = {"history": '[[1,50331808,"no recovery target specified","2026-11-25T19:45:40+00:00","postgresql1"],'
                       '[2,83886240,"no recovery target specified"]]'}
    cluster = build(keys)
    columns, rows = history_rows(cluster)
    assert columns == ["TL", "LSN", "Reason", "Timestamp", "New Leader"]
    assert rows[1] == [2, 83886240, "no recovery target specified", "", ""]
    lines = render_history(cluster).splitlines()
    assert lines[0] == "+----+----------+------------------------------+---------------------------+-------------+"
    assert lines[1] == "| TL |      LSN | Reason                       | Timestamp                 | New Leader  |"
    assert lines[3] == "|  1 | 50331808 | no recovery target specified | 2026-11-25T19:45:40+00:00 | postgresql1 |"
    assert json.loads(render_history(cluster, "json"))[1] == {
        "TL": 2, "LSN": 83886240, "Reason": "no recovery target specified", "Timestamp": "", "New Leader": ""}


def test_lag_detail_adds_bytes_and_replay_delay() -> None:
    keys = dict(OBSERVED_KEYS)
    keys["status"] = '{"optime":50331744}'
    keys["members/postgresql1"] = member(
        conn_url="postgres://127.0.0.1:5433/postgres", state="running", role="replica",
        replication_state="streaming", receive_lsn=50331744, replay_lsn=50331744 - 4096, timeline=1)
    now = datetime(2026, 11, 25, 19, 46, 10, 140358, tzinfo=timezone.utc)
    status = {"xlog": {"replayed_timestamp": "2026-11-25 19:46:04.640358+00:00", "paused": False}}
    columns, rows = member_rows(build(keys), lag_detail={"postgresql1": status}, now=now)
    assert columns[10:13] == ["Receive Bytes", "Replay Bytes", "Replay Delay"]
    assert rows[1][10:13] == [0, 4096, "5.5s"]
    _, rows = member_rows(build(keys), lag_detail={"postgresql1": None}, now=now)
    assert rows[1][12] == ""  # REST API not reachable: no time, bytes still known
    # the default output is untouched by the option's existence
    assert render_members(build(OBSERVED_KEYS)).splitlines() == OBSERVED_TABLE.splitlines()


def test_small_formatters() -> None:
    assert format_pg_version(150018) == "15.18"
    assert format_pg_version(90624) == "9.6.24"
    assert format_duration(5.04) == "5.0s"
    assert format_duration(185) == "3m05s"
    assert format_duration(7500) == "2h05m"
