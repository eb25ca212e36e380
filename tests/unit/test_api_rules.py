"""The pure REST API rules: health-check matrix, lag/tag parameters, request validation, bodies.

The leader/replica statuses and the expected codes are the ones captured from a real Patroni 4.1.5
pair (spec/patroni-observed.md, "REST status codes").
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hatui.cluster import Cluster
from hatui.daemon import api_rules as r
from hatui.daemon.api_rules import NodeView, Refusal, RestartRequest, SwitchoverRequest

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
LSN = 52903928

LEADER_STATUS = {
    "state": "running",
    "postmaster_start_time": "2026-11-25 19:45:40.417338+00:00",
    "role": "primary",
    "server_version": 150018,
    "xlog": {"location": LSN},
    "timeline": 26,
    "replication": [
        {
            "usename": "replicator",
            "application_name": "postgresql0",
            "client_addr": "127.0.0.1",
            "state": "streaming",
            "sync_state": "async",
            "sync_priority": 0,
        }
    ],
    "dcs_last_seen": 1795636005,
    "database_system_identifier": "7712193093952314556",
    "patroni": {"version": "4.1.5", "scope": "batman", "name": "postgresql1"},
}
REPLICA_STATUS = {
    "state": "running",
    "postmaster_start_time": "2026-11-25 19:46:12.577167+00:00",
    "role": "replica",
    "server_version": 150018,
    "xlog": {
        "received_location": LSN,
        "replayed_location": LSN,
        "replayed_timestamp": "2026-11-25 19:46:04.640358+00:00",
        "paused": False,
    },
    "timeline": 26,
    "replication_state": "streaming",
    "dcs_last_seen": 1795636009,
    "database_system_identifier": "7712193093952314556",
    "patroni": {"version": "4.1.5", "scope": "batman", "name": "postgresql0"},
}


def make_cluster(
    config: dict | None = None,
    optime: int = LSN,
    sync: list[str] | None = None,
    extra: list[tuple[str, str]] = (),
) -> Cluster:
    cfg = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_failover": 1048576}
    cfg.update(config or {})
    kvs = [
        ("config", json.dumps(cfg)),
        ("initialize", "7712193093952314556"),
        ("leader", "postgresql1"),
        (
            "members/postgresql1",
            json.dumps(
                {
                    "conn_url": "postgres://127.0.0.1:5433/postgres",
                    "api_url": "http://127.0.0.1:8009/patroni",
                    "state": "running",
                    "role": "primary",
                    "version": "4.1.5",
                    "xlog_location": LSN,
                    "timeline": 26,
                }
            ),
        ),
        (
            "members/postgresql0",
            json.dumps(
                {
                    "conn_url": "postgres://127.0.0.1:5432/postgres",
                    "api_url": "http://127.0.0.1:8008/patroni",
                    "state": "running",
                    "role": "replica",
                    "version": "4.1.5",
                    "xlog_location": LSN,
                    "replay_lsn": LSN,
                    "receive_lsn": LSN,
                    "replication_state": "streaming",
                    "timeline": 26,
                }
            ),
        ),
        ("status", json.dumps({"optime": optime})),
    ]
    if sync is not None:
        kvs.append(
            ("sync", json.dumps({"leader": "postgresql1", "quorum": 0, "sync_standby": ",".join(sync)}))
        )
    kvs += list(extra)
    return Cluster.from_kvs("batman", [(k, v, i + 1, 0) for i, (k, v) in enumerate(kvs)])


def leader(cluster: Cluster | None = None, **status) -> NodeView:
    return NodeView({**LEADER_STATUS, **status}, cluster if cluster is not None else make_cluster(), True)


def replica(cluster: Cluster | None = None, **status) -> NodeView:
    return NodeView({**REPLICA_STATUS, **status}, cluster if cluster is not None else make_cluster(), False)


def code(path: str, view: NodeView, query: str = "") -> int:
    q: dict[str, list[str]] = {}
    for part in filter(None, query.split("&")):
        k, _, v = part.partition("=")
        q.setdefault(k, []).append(v)
    return r.health_code(path, view, q)


# --- units -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1048576", 1048576),
        (1024, 1024),
        ("16kB", 16384),
        ("1MB", 1048576),
        ("64MB", 64 << 20),
        ("1GB", 1 << 30),
        ("1TB", 1 << 40),
        ("1mb", 1048576),
        (" 10 MB ", 10 << 20),
        ("1.5kB", 1536),
        ("0", 0),
        ("-1", -1),
        ("100B", 100),
        ("", None),
        ("abc", None),
        ("1XB", None),
        ("MB", None),
        (None, None),
        (True, None),
        ("1e3", None),
        ("9" * 5000, None),
        (float("inf"), None),
    ],
)
def test_parse_size(text, expected):
    assert r.parse_size(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        (30, 30),
        ("30", 30),
        ("30s", 30),
        ("5min", 300),
        ("1h", 3600),
        ("1d", 86400),
        ("1500ms", 2),
        ("2.5min", 150),
        ("x", None),
        ("5 parsecs", None),
        (None, None),
        ([], None),
    ],
)
def test_parse_seconds(text, expected):
    assert r.parse_seconds(text) == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("on", True),
        ("TRUE", True),
        ("yes", True),
        ("off", False),
        ("no", False),
        ("false", False),
        ("maybe", None),
        (2, None),
        (None, None),
        ([], None),
    ],
)
def test_parse_bool(value, expected):
    assert r.parse_bool(value) is expected


@pytest.mark.parametrize(
    "text,expected", [("15.2", 150002), ("16.10", 160010), ("9.6.24", 90624), ("10.0", 100000)]
)
def test_postgres_version_to_int(text, expected):
    assert r.postgres_version_to_int(text) == expected


@pytest.mark.parametrize("text", ["9.6", "15", "15.x", "", "1.2.3.4", "15.2.1", 15, None, "-1.2.3", "15.200"])
def test_postgres_version_to_int_refuses(text):
    with pytest.raises(ValueError, match="Invalid PostgreSQL version"):
        r.postgres_version_to_int(text)


@given(st.text(max_size=40))
def test_parse_size_never_raises(text):
    value = r.parse_size(text)
    assert value is None or isinstance(value, int)


# --- the observed status table ---------------------------------------------------------------------

OBSERVED = [
    # path, leader, replica  (spec/patroni-observed.md, REST status codes)
    ("", 200, 503),
    ("primary", 200, 503),
    ("leader", 200, 503),
    ("read-write", 200, 503),
    ("master", 200, 503),
    ("replica", 503, 200),
    ("read-only", 200, 200),
    ("health", 200, 200),
    ("async", 503, 200),
    ("asynchronous", 503, 200),
    ("sync", 503, 503),
    ("synchronous", 503, 503),
    ("standby-leader", 503, 503),
    ("standby_leader", 503, 503),
    ("quorum", 503, 503),
    ("read-only-sync", 200, 503),
    ("read-only-quorum", 200, 503),
]


@pytest.mark.parametrize("path,leader_code,replica_code", OBSERVED)
def test_observed_status_table(path, leader_code, replica_code):
    assert code(path, leader()) == leader_code
    assert code(path, replica()) == replica_code


def test_unknown_path_is_unhealthy():
    assert code("nonsense", leader()) == 503
    assert code("nonsense", replica()) == 503


def test_primary_endpoints_follow_the_lock_not_the_postgres_role():
    # Holding the lock while PostgreSQL is still starting: the lock is what counts (Patroni does the same).
    assert code("primary", leader(state="starting", role="replica")) == 200
    # PostgreSQL is a primary but this node lost the lock: not the primary any more.
    lost = NodeView(LEADER_STATUS, make_cluster(), False)
    assert code("primary", lost) == 503
    assert code("leader", lost) == 503
    assert code("read-only", lost) == 503


def test_replica_must_be_running():
    for state in ("starting", "stopped", "crashed", "restarting"):
        assert code("replica", replica(state=state)) == 503
        assert code("health", replica(state=state)) == 503


def test_noloadbalance_tag_takes_a_replica_out():
    view = replica(tags={"noloadbalance": True})
    assert code("replica", view) == 503
    assert code("read-only", view) == 503
    assert code("async", view) == 503
    assert code("health", view) == 200


# --- ?lag= -----------------------------------------------------------------------------------------


def test_lag_parameter_against_cluster_optime():
    behind = make_cluster(optime=LSN + 2 * 1048576)
    view = replica(behind)
    assert code("replica", view) == 200  # no ?lag: no limit
    assert code("replica", view, "lag=1MB") == 503
    assert code("replica", view, "lag=3MB") == 200
    assert code("replica", view, "lag=2097152") == 200  # exactly at the limit is not lagging
    assert code("replica", view, "lag=2097151") == 503
    assert code("replica", view, "lag=16kB") == 503
    assert code("async", view, "lag=1MB") == 503
    assert code("read-only", view, "lag=1MB") == 503
    assert code("replica", view, "lag=lots") == 200  # not understood: ignored, as in Patroni


def test_lag_uses_wal_receiver_position_when_newer():
    view = replica(make_cluster(optime=LSN), latest_end_lsn=LSN + 10 * 1048576)
    assert code("replica", view, "lag=1MB") == 503
    assert code("replica", view, "lag=20MB") == 200


def test_lag_without_dcs_uses_only_the_receiver():
    view = NodeView(REPLICA_STATUS, None, False)
    assert code("replica", view, "lag=1MB") == 200
    view = NodeView({**REPLICA_STATUS, "latest_end_lsn": LSN + 5 * 1048576}, None, False)
    assert code("replica", view, "lag=1MB") == 503


# --- ?tag_ and ?replication_state -----------------------------------------------------------------


def test_tag_filters():
    view = replica(tags={"zone": "a", "nofailover": True, "prio": 3})
    assert code("replica", view, "tag_zone=a") == 200
    assert code("replica", view, "tag_zone=b") == 503
    assert code("replica", view, "tag_zone=A") == 503  # string tags compare as written
    assert code("replica", view, "tag_rack=1") == 503  # a tag the node does not have
    assert code("replica", view, "tag_nofailover=true") == 200  # booleans compare as lower-case text
    assert code("replica", view, "tag_nofailover=True") == 503
    assert code("replica", view, "tag_prio=3") == 200
    assert code("replica", view, "tag_zone=a&tag_prio=4") == 503
    assert code("health", view, "tag_zone=b") == 503
    assert r.tags_match({"tag_zone": ["a"], "lag": ["1"]}, {"zone": "a"})


def test_tag_filters_do_not_apply_to_lock_endpoints():
    view = leader(tags={"zone": "a"})
    for path in ("", "primary", "leader", "read-write"):
        assert code(path, view, "tag_zone=b") == 200
    assert code("read-only", view, "tag_zone=b") == 503


def test_replication_state_filter():
    view = replica()
    assert code("replica", view, "replication_state=streaming") == 200
    assert code("replica", view, "replication_state=in%20archive%20recovery") == 503
    archive = replica(replication_state="in archive recovery")
    assert code("replica", archive, "replication_state=streaming") == 503


# --- sync, standby cluster, pause without DCS -----------------------------------------------------


def test_sync_endpoints_follow_the_sync_key():
    cluster = make_cluster({"synchronous_mode": True}, sync=["postgresql0"])
    view = replica(cluster)
    assert code("sync", view) == 200
    assert code("synchronous", view) == 200
    assert code("async", view) == 503
    assert code("read-only-sync", view) == 200
    assert code("quorum", view) == 503
    # The backend may already say so; without the key the flag comes from the view.
    assert r.sync_flags(view.status, cluster) == {"sync_standby": True}
    assert r.sync_flags(view.status, make_cluster()) == {}


def test_quorum_endpoints():
    cluster = make_cluster({"synchronous_mode": "quorum"}, sync=["postgresql0"])
    view = replica(cluster)
    assert code("quorum", view) == 200
    assert code("read-only-quorum", view) == 200
    assert code("sync", view) == 503
    assert code("async", view) == 503


def test_sync_endpoints_need_the_dcs():
    view = NodeView({**REPLICA_STATUS, "sync_standby": True}, None, False)
    assert code("sync", view) == 503
    assert code("async", view) == 503
    assert code("replica", view) == 200  # plain replica checks work without etcd


def test_standby_cluster_leader():
    cluster = make_cluster({"standby_cluster": {"host": "10.0.0.9", "port": 5432}})
    view = leader(cluster, role="standby_leader", xlog={"received_location": LSN, "replayed_location": LSN})
    assert code("standby-leader", view) == 200
    assert code("standby_leader", view) == 200
    assert code("leader", view) == 200
    assert code("primary", view) == 503
    assert code("replica", view) == 503
    assert code("read-only", view) == 200
    assert r.is_standby_cluster(cluster)
    assert not r.is_standby_cluster(make_cluster({"standby_cluster": {}}))


def test_paused_without_dcs_falls_back_to_postgres_role():
    view = NodeView({**LEADER_STATUS, "pause": True}, None, False)
    assert code("primary", view) == 200
    assert code("leader", view) == 200
    assert code("standby-leader", view) == 503
    not_paused = NodeView(LEADER_STATUS, None, False)
    assert code("primary", not_paused) == 503


# --- liveness / readiness --------------------------------------------------------------------------


def test_liveness():
    now = 1000.0
    assert r.liveness_code(LEADER_STATUS, False, 30, now + 5, now) == 200
    assert r.liveness_code(LEADER_STATUS, False, 30, now - 29, now) == 200
    assert r.liveness_code(LEADER_STATUS, False, 30, now - 31, now) == 503  # primary: ttl
    assert r.liveness_code(REPLICA_STATUS, False, 30, now - 31, now) == 200  # replica: 2 x ttl
    assert r.liveness_code(REPLICA_STATUS, False, 30, now - 61, now) == 503
    assert r.liveness_code(LEADER_STATUS, True, 30, now - 1000, now) == 200  # paused: a stuck loop is fine


def test_readiness():
    assert r.readiness_failure(leader(), {}, 1048576) is None
    assert r.readiness_failure(replica(), {}, 1048576) is None
    behind = replica(make_cluster(optime=LSN + 2 * 1048576))
    assert r.readiness_failure(behind, {}, 1048576) == (
        f"Replication apply lag {2 * 1048576} exceeds maximum allowable 1048576"
    )
    assert r.readiness_failure(behind, {"lag": ["4MB"]}, 1048576) is None
    assert r.readiness_failure(replica(state="starting"), {}, 1048576) == "PostgreSQL is not running"
    assert "not streaming" in r.readiness_failure(
        replica(replication_state="in archive recovery"), {}, 1 << 20
    )
    # mode=write looks at the received position
    half = replica(
        make_cluster(optime=LSN + 2 * 1048576),
        xlog={"received_location": LSN + 2 * 1048576, "replayed_location": LSN},
    )
    assert r.readiness_failure(half, {"mode": ["write"]}, 1048576) is None
    assert r.readiness_failure(half, {"mode": ["apply"]}, 1048576) is not None
    no_dcs = NodeView(REPLICA_STATUS, None, False)
    assert r.readiness_failure(no_dcs, {}, 1048576) == "DCS is not accessible"
    failsafe = NodeView({**REPLICA_STATUS, "failsafe_mode_is_active": True}, None, False)
    assert r.readiness_failure(failsafe, {}, 1048576) is None


# --- POST /switchover and /failover ----------------------------------------------------------------

LATER = (NOW + timedelta(hours=1)).isoformat()
EARLIER = (NOW - timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    "action,body,paused,status,text",
    [
        ("failover", {"leader": ""}, False, 400, "Failover could be performed only to a specific candidate"),
        (
            "switchover",
            {"candidate": "b"},
            False,
            400,
            "Switchover could be performed only from a specific leader",
        ),
        ("failover", {"candidate": "b", "scheduled_at": LATER}, False, 400, "Failover can't be scheduled"),
        (
            "switchover",
            {"leader": "a", "candidate": "b", "scheduled_at": LATER},
            True,
            400,
            "Can't schedule switchover in the paused state",
        ),
        (
            "switchover",
            {"leader": "a"},
            True,
            400,
            "Switchover is possible only to a specific candidate in a paused state",
        ),
        (
            "switchover",
            {"leader": "a", "candidate": "a"},
            False,
            400,
            "Switchover target and source are the same",
        ),
        (
            "failover",
            {"leader": "a", "candidate": "a"},
            False,
            400,
            "Switchover target and source are the same",
        ),
        (
            "switchover",
            {"leader": "a", "scheduled_at": "2026-11-25T21:00:00"},
            False,
            400,
            "Timezone information is mandatory for the scheduled switchover",
        ),
        (
            "switchover",
            {"leader": "a", "scheduled_at": EARLIER},
            False,
            422,
            "Cannot schedule switchover in the past",
        ),
        (
            "switchover",
            {"leader": "a", "scheduled_at": "tomorrow at noon"},
            False,
            422,
            r.UNPARSABLE_SCHEDULE,
        ),
        ("switchover", {"leader": "a", "scheduled_at": 1795636005}, False, 422, r.UNPARSABLE_SCHEDULE),
        ("switchover", {"leader": ["a"]}, False, 400, "leader should be a member name (a string)"),
        ("failover", {"candidate": {"x": 1}}, False, 400, "candidate should be a member name (a string)"),
        ("switchover", {}, False, 400, "Invalid JSON: expected a non-empty object"),
        ("switchover", [], False, 400, "Invalid JSON: expected a non-empty object"),
    ],
)
def test_switchover_refusals(action, body, paused, status, text):
    assert r.validate_switchover(body, action, paused, NOW) == Refusal(status, text)


def test_switchover_accepted():
    assert r.validate_switchover(
        {"leader": "a", "candidate": "b"}, "switchover", False, NOW
    ) == SwitchoverRequest("switchover", "a", "b", None)
    assert r.validate_switchover({"leader": "a"}, "switchover", False, NOW) == SwitchoverRequest(
        "switchover", "a", None, None
    )
    scheduled = r.validate_switchover(
        {"leader": "a", "scheduled_at": "2026-11-25T21:00:00Z"}, "switchover", False, NOW
    )
    assert scheduled == SwitchoverRequest("switchover", "a", None, datetime(2026, 11, 25, 21, tzinfo=UTC))
    # `member` is an alias of `candidate`; a failover naming the leader is a switchover.
    assert r.validate_switchover({"member": "b"}, "failover", False, NOW) == SwitchoverRequest(
        "failover", None, "b", None
    )
    assert r.validate_switchover(
        {"leader": "a", "candidate": "b"}, "failover", False, NOW
    ) == SwitchoverRequest("switchover", "a", "b", None)
    # Paused: allowed to a named candidate, immediately.
    assert r.validate_switchover(
        {"leader": "a", "candidate": "b"}, "switchover", True, NOW
    ) == SwitchoverRequest("switchover", "a", "b", None)
    # A null or empty scheduled_at means "now".
    assert (
        r.validate_switchover({"leader": "a", "scheduled_at": None}, "switchover", False, NOW).scheduled_at
        is None
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
switchover_bodies = (
    st.dictionaries(
        st.sampled_from(["leader", "candidate", "member", "scheduled_at", "other"]),
        json_values
        | st.sampled_from(["a", "b", LATER, EARLIER, "2026-11-25T21:00:00", "9999-12-31T23:59:59-23:59"]),
        max_size=4,
    )
    | json_values
)


@settings(max_examples=400)
@given(switchover_bodies, st.sampled_from(["switchover", "failover"]), st.booleans())
def test_switchover_validation_only_lets_valid_requests_through(body, action, paused):
    result = r.validate_switchover(body, action, paused, NOW)
    if isinstance(result, Refusal):
        assert result.status in (400, 422) and result.text
        return
    assert result.action in ("switchover", "failover")
    for name in (result.leader, result.candidate):
        assert name is None or (isinstance(name, str) and name)
    assert result.leader != result.candidate
    if result.action == "failover":
        assert result.candidate and not result.leader and result.scheduled_at is None
    else:
        assert result.leader
    if paused:
        assert result.candidate and result.scheduled_at is None
    if result.scheduled_at is not None:
        assert result.scheduled_at.tzinfo is not None and result.scheduled_at >= NOW


# --- POST /restart and /reinitialize ---------------------------------------------------------------


def test_restart_accepted():
    assert r.validate_restart({}, False, NOW) == RestartRequest()
    assert r.validate_restart(None, True, NOW) == RestartRequest()
    req = r.validate_restart(
        {
            "schedule": LATER,
            "role": "master",
            "postgres_version": "16.1",
            "restart_pending": True,
            "timeout": "1min",
        },
        False,
        NOW,
    )
    assert req == RestartRequest(datetime.fromisoformat(LATER), "primary", "16.1", True, 60)
    assert req.as_dict() == {
        "schedule": LATER,
        "role": "primary",
        "postgres_version": "16.1",
        "restart_pending": True,
        "timeout": 60,
    }


@pytest.mark.parametrize(
    "body,paused,status,text",
    [
        ({"schedule": LATER}, True, 500, "Can't schedule restart in the paused state"),
        ({"schedule": EARLIER}, False, 422, "Cannot schedule restart in the past"),
        (
            {"schedule": "2026-11-26 10:00"},
            False,
            400,
            "Timezone information is mandatory for the scheduled restart",
        ),
        (
            {"role": "leader"},
            False,
            400,
            "PostgreSQL role should be either primary, standby_leader, or replica",
        ),
        (
            {"postgres_version": "fifteen"},
            False,
            400,
            "Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: fifteen",
        ),
        ({"timeout": 0}, False, 400, "Timeout should be a positive number of seconds"),
        ({"timeout": "soon"}, False, 400, "Timeout should be a positive number of seconds"),
        ({"restart_pending": "perhaps"}, False, 400, "restart_pending should be a boolean"),
        ({"force": True}, False, 400, "Unknown filter for the scheduled restart: force"),
        (["role"], False, 400, "Invalid JSON: expected an object"),
    ],
)
def test_restart_refusals(body, paused, status, text):
    assert r.validate_restart(body, paused, NOW) == Refusal(status, text)


def test_reinitialize_flags():
    assert r.parse_reinitialize({}) == (False, False)
    assert r.parse_reinitialize({"force": True, "from_leader": "true"}) == (True, True)
    assert r.parse_reinitialize({"force": "garbage", "from_leader": 0}) == (False, False)
    assert r.parse_reinitialize(None) == (False, False)


# --- PATCH /config merge ---------------------------------------------------------------------------


def test_merge_patch():
    config = {
        "ttl": 30,
        "pause": True,
        "postgresql": {"parameters": {"max_connections": 100, "work_mem": "4MB"}},
    }
    patched = r.merge_patch(
        config,
        {
            "pause": None,
            "loop_wait": 5,
            "postgresql": {"parameters": {"work_mem": None, "shared_buffers": "1GB"}},
            "tags": {"a": None, "b": 1},
            "missing": None,
        },
    )
    assert patched == {
        "ttl": 30,
        "loop_wait": 5,
        "tags": {"b": 1},
        "postgresql": {"parameters": {"max_connections": 100, "shared_buffers": "1GB"}},
    }
    assert config["pause"] is True  # the input is not modified
    assert r.merge_patch({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert r.merge_patch({"a": {"b": 2}}, {"a": 3}) == {"a": 3}


# --- GET /cluster and /patroni bodies --------------------------------------------------------------


def test_cluster_as_json_matches_patroni():
    body = r.cluster_as_json(make_cluster())
    assert body == {
        "members": [
            {
                "name": "postgresql0",
                "role": "replica",
                "state": "streaming",
                "api_url": "http://127.0.0.1:8008/patroni",
                "host": "127.0.0.1",
                "port": 5432,
                "timeline": 26,
                "receive_lag": 0,
                "receive_lsn": "0/3273FF8",
                "replay_lag": 0,
                "replay_lsn": "0/3273FF8",
                "lag": 0,
                "lsn": "0/3273FF8",
            },
            {
                "name": "postgresql1",
                "role": "leader",
                "state": "running",
                "api_url": "http://127.0.0.1:8009/patroni",
                "host": "127.0.0.1",
                "port": 5433,
                "timeline": 26,
            },
        ],
        "scope": "batman",
    }


def test_cluster_as_json_lag_pause_schedule_and_old_members():
    old = json.dumps(
        {
            "conn_url": "postgres://10.0.0.3:5432/postgres",
            "api_url": "http://10.0.0.3:8008/patroni",
            "state": "running",
            "role": "replica",
            "xlog_location": LSN - 100,
        }
    )
    cluster = make_cluster(
        {"pause": True, "synchronous_mode": True},
        optime=LSN + 1000,
        sync=["postgresql0"],
        extra=[
            ("members/old", old),
            (
                "failover",
                (
                    '{"leader":"postgresql1","member":"postgresql0",'
                    '"scheduled_at":"2026-11-26T10:00:00+00:00"}'
                ),
            ),
        ],
    )
    body = r.cluster_as_json(cluster)
    by_name = {m["name"]: m for m in body["members"]}
    assert by_name["postgresql0"]["role"] == "sync_standby"
    assert by_name["postgresql0"]["lag"] == 1000
    assert by_name["old"]["receive_lsn"] == by_name["old"]["receive_lag"] == "unknown"  # 4.0 member
    assert by_name["old"]["lag"] == 1100
    assert body["pause"] is True
    assert body["scheduled_switchover"] == {
        "at": "2026-11-26T10:00:00+00:00",
        "from": "postgresql1",
        "to": "postgresql0",
    }


def test_public_status_drops_internal_keys_and_adds_derived_ones():
    out = r.public_status({**REPLICA_STATUS, "latest_end_lsn": 5}, None)
    assert "latest_end_lsn" not in out
    assert out["cluster_unlocked"] is True
    out = r.public_status(REPLICA_STATUS, make_cluster({"synchronous_mode": "on"}, sync=["postgresql0"]))
    assert out["sync_standby"] is True and "cluster_unlocked" not in out


# --- /metrics --------------------------------------------------------------------------------------

SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{scope="(?P<scope>[^"]*)",name="(?P<member>[^"]*)"\} '
    r"(?P<value>-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?)$"
)


def parse_metrics(text: str) -> dict[str, str]:
    assert text.endswith("\n")
    samples = {}
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        samples[m["name"]] = m["value"]
    return samples


def test_metrics_leader():
    samples = parse_metrics(r.metrics_text(LEADER_STATUS, make_cluster(), True))
    assert samples["patroni_version"] == "040105"
    assert samples["patroni_primary"] == "1"
    assert samples["patroni_replica"] == "0"
    assert samples["patroni_xlog_location"] == str(LSN)
    assert samples["patroni_postgres_timeline"] == "26"
    assert samples["patroni_postgres_running"] == "1"
    assert samples["patroni_postgres_state"] == "5"
    assert samples["patroni_dcs_last_seen"] == "1795636005"
    assert samples["patroni_cluster_unlocked"] == "0"
    assert samples["hatui_dcs_reachable"] == "1"
    assert float(samples["patroni_postmaster_start_time"]) == pytest.approx(1795635940.417338)
    for name in (
        "patroni_sync_standby",
        "patroni_quorum_standby",
        "patroni_xlog_received_location",
        "patroni_xlog_replayed_location",
        "patroni_pending_restart",
        "patroni_is_paused",
    ):
        assert samples[name] == "0"


def test_metrics_replica_paused_unreachable():
    status = {**REPLICA_STATUS, "pause": True, "pending_restart": True}
    samples = parse_metrics(r.metrics_text(status, None, False))
    assert samples["patroni_replica"] == "1"
    assert samples["patroni_xlog_replayed_location"] == str(LSN)
    assert samples["patroni_postgres_streaming"] == "1"
    assert samples["patroni_is_paused"] == "1"
    assert samples["patroni_pending_restart"] == "1"
    assert samples["patroni_cluster_unlocked"] == "1"
    assert samples["hatui_dcs_reachable"] == "0"
    assert float(samples["patroni_xlog_replayed_timestamp"]) > 1.7e9


def test_metrics_label_escaping_and_unknown_state():
    status = {
        "state": "weird",
        "role": "uninitialized",
        "patroni": {"version": "4.1.5", "scope": 'a"b\\c', "name": "n\nx"},
    }
    text = r.metrics_text(status, None, True)
    assert 'patroni_postgres_state{scope="a\\"b\\\\c",name="n\\nx"} -1' in text
    assert "\n\n" not in text


def test_metrics_failover_priority_and_failsafe_as_patroni_4_1_4() -> None:
    from hatui.cluster import Cluster, ClusterConfig
    from hatui.daemon.api_rules import failover_priority, metrics_text

    assert failover_priority({}) == 1
    assert failover_priority({"failover_priority": 3}) == 3
    assert failover_priority({"nofailover": True, "failover_priority": 3}) == 0
    assert failover_priority({"failover_priority": "junk"}) == 1
    status = {"state": "running", "role": "replica", "timeline": 4, "tags": {"failover_priority": 2},
              "patroni": {"scope": "batman", "name": "pg1", "version": "4.1.5"}}
    cluster = Cluster("batman", config=ClusterConfig({"failsafe_mode": True}), failsafe={"pg1": "http://x"})
    text = metrics_text(status, cluster, True)
    assert 'patroni_failsafe_mode_enabled{scope="batman",name="pg1"} 1' in text
    assert 'patroni_failsafe_member{scope="batman",name="pg1"} 1' in text
    assert 'patroni_failover_priority{scope="batman",name="pg1"} 2' in text
    assert 'patroni_postgres_timeline{scope="batman",name="pg1"} 4' in text
    assert "# TYPE patroni_postgres_timeline gauge" in text
    assert 'patroni_failsafe_mode_enabled{scope="batman",name="pg1"} 0' in metrics_text(status, Cluster("batman"), True)
