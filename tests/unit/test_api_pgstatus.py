"""api_pgstatus.apply_live: the loop's /patroni dict combined with the live query's row (pure)."""

from __future__ import annotations

from hatui.daemon.api_pgstatus import QUERIED_KEYS, apply_live
from hatui.daemon.member import NodeView, patroni_status

STARTED = "2026-12-03 10:00:00+00:00"


def _view(**kw) -> NodeView:
    v = NodeView(name="n1", scope="batman", conn_url="postgres://127.0.0.1:5432/postgres",
                 api_url="http://127.0.0.1:8008/patroni", state="running", role="replica", timeline=2,
                 xlog_location=100, receive_lsn=100, replay_lsn=100, replication_state="streaming",
                 server_version=150004, postmaster_start_time=STARTED, sysid="7000", tags={"a": "b"})
    for k, val in kw.items():
        setattr(v, k, val)
    return v


def _row(**kw) -> dict:
    row = {"in_recovery": True, "flush_lsn": None, "timeline": 1, "receive_lsn": 5000, "replay_lsn": 4000,
           "replay_paused": False, "replay_timestamp": "2026-12-03 10:05:00+00:00",
           "postmaster_start_time": STARTED, "receiver_status": "streaming", "received_tli": 2,
           "latest_end_lsn": 6000, "written_lsn": 5500, "restore_command": "", "replication": None}
    row.update(kw)
    return row


def _apply(v: NodeView, row: dict | None) -> dict:
    return apply_live(patroni_status(v), row, v.role, v.timeline, v.postmaster_start_time)


def test_replica_positions_come_from_the_row() -> None:
    out = _apply(_view(), _row())
    assert out["xlog"] == {"received_location": 5500, "replayed_location": 4000,
                           "replayed_timestamp": "2026-12-03 10:05:00+00:00", "paused": False}
    assert out["timeline"] == 2 and out["replication_state"] == "streaming" and out["latest_end_lsn"] == 6000
    assert out["role"] == "replica" and out["state"] == "running" and out["server_version"] == 150004
    assert out["tags"] == {"a": "b"} and out["database_system_identifier"] == "7000"
    assert list(out)[:5] == ["state", "postmaster_start_time", "role", "server_version", "xlog"]


def test_received_location_falls_back_as_patroni_does() -> None:
    assert _apply(_view(), _row(written_lsn=None))["xlog"]["received_location"] == 5000
    assert _apply(_view(), _row(written_lsn=None, receive_lsn=None))["xlog"]["received_location"] == 4000


def test_replica_timeline_never_goes_back_while_the_postmaster_runs() -> None:
    # The loop saw timeline 3 from this postmaster; the receiver stopped, the checkpoint says 2.
    v = _view(timeline=3)
    assert _apply(v, _row(timeline=2, received_tli=None, receiver_status=None))["timeline"] == 3
    # Another postmaster (restarted since): the loop's memory does not apply.
    assert _apply(v, _row(timeline=2, received_tli=None, postmaster_start_time="2026-12-03 11:00:00+00:00"))[
        "timeline"] == 2


def test_replication_state_as_patroni_names_it() -> None:
    assert "replication_state" not in _apply(_view(), _row(receiver_status=None, restore_command=""))
    assert _apply(_view(), _row(receiver_status=None, restore_command="cp %f %p"))[
        "replication_state"] == "in archive recovery"


def test_standby_leader_keeps_its_role() -> None:
    assert _apply(_view(role="standby_leader"), _row())["role"] == "standby_leader"


def test_primary() -> None:
    row = _row(in_recovery=False, flush_lsn=9000, timeline=4, receiver_status=None, received_tli=None,
               latest_end_lsn=None, written_lsn=None, receive_lsn=None, replay_lsn=None,
               replication='[{"usename": "replicator", "application_name": "n2", "client_addr": "127.0.0.1", '
                           '"state": "streaming", "sync_state": "async", "sync_priority": 0}]')
    out = _apply(_view(role="primary", receive_lsn=None, replay_lsn=None), row)
    assert out["role"] == "primary" and out["xlog"] == {"location": 9000} and out["timeline"] == 4
    assert out["replication"][0]["application_name"] == "n2"
    assert "replication_state" not in out and "latest_end_lsn" not in out


def test_no_answer_state_and_role_only() -> None:
    out = _apply(_view(), None)
    assert out["state"] == "unknown" and out["role"] == "replica"
    assert not set(QUERIED_KEYS) & set(out)
    assert out["tags"] == {"a": "b"} and out["patroni"]["name"] == "n1"


def test_not_running_keeps_the_loops_state() -> None:
    out = _apply(_view(state="stopped"), None)
    assert out["state"] == "stopped" and "postmaster_start_time" not in out and "server_version" not in out
    assert _apply(_view(state="starting"), None)["state"] == "starting"
