"""eligibility.failover_eligibility: who can be promoted now, and the reason when not."""

from __future__ import annotations

import json

from hatui.cluster import Cluster
from hatui.eligibility import candidate_report, failover_eligibility, format_bytes

MB = 1048576
LEADER_POS = 100 * MB


def member(**data) -> str:
    base = {"conn_url": "postgres://127.0.0.1:5432/postgres", "api_url": "http://127.0.0.1:8008/patroni",
            "state": "running", "role": "replica", "version": "4.1.5", "timeline": 3}
    base.update(data)
    return json.dumps(base)


def replica(pos: int = LEADER_POS, **data) -> str:
    return member(replication_state="streaming", receive_lsn=pos, replay_lsn=pos, xlog_location=pos, **data)


def cluster(config: dict | None = None, sync: dict | None = None, **members: str) -> Cluster:
    kvs = [("initialize", "1", 1, 0), ("leader", "leader", 2, 0),
           ("members/leader", member(role="primary", xlog_location=LEADER_POS), 3, 0),
           ("status", json.dumps({"optime": LEADER_POS}), 4, 0),
           ("config", json.dumps(config if config is not None else {"maximum_lag_on_failover": MB}), 5, 0)]
    if sync is not None:
        kvs.append(("sync", json.dumps(sync), 6, 0))
    kvs += [(f"members/{name}", value, 10 + i, 0) for i, (name, value) in enumerate(members.items())]
    return Cluster.from_kvs("batman", kvs)


def test_a_healthy_streaming_replica_is_eligible() -> None:
    assert failover_eligibility(cluster(a=replica()), "a") == (True, "eligible")


def test_leader_and_unknown_members_are_not() -> None:
    c = cluster(a=replica())
    assert failover_eligibility(c, "leader") == (False, "it is the current leader")
    assert failover_eligibility(c, "zz") == (False, "zz is not a member of cluster batman")


def test_nofailover_and_failover_priority_zero() -> None:
    c = cluster(a=replica(tags={"nofailover": True}), b=replica(tags={"failover_priority": 0}))
    assert failover_eligibility(c, "a") == (False, "it is tagged nofailover")
    assert failover_eligibility(c, "b") == (False, "its failover_priority is 0")


def test_lag_over_maximum_lag_on_failover_names_both_numbers() -> None:
    c = cluster(a=replica(LEADER_POS - 2 * MB))
    ok, why = failover_eligibility(c, "a")
    assert not ok
    assert why == ("it lags 2.0 MB (2097152 bytes) behind, more than maximum_lag_on_failover (1048576 bytes)")
    # exactly at the limit is fine, as in Patroni (lag > maximum is refused)
    assert failover_eligibility(cluster(a=replica(LEADER_POS - MB)), "a")[0]
    # a failover of a leaderless cluster to a named member skips the lag test
    assert failover_eligibility(c, "a", check_lag=False)[0]


def test_fresh_rest_status_wins_over_a_stale_member_key() -> None:
    c = cluster(a=replica(LEADER_POS - 5 * MB))
    status = {"state": "running", "role": "replica", "timeline": 3,
              "xlog": {"received_location": LEADER_POS, "replayed_location": LEADER_POS - 10}}
    assert failover_eligibility(c, "a", status) == (True, "eligible")


def test_unreachable_stopped_or_primary_members() -> None:
    c = cluster(a=replica(), b=replica(state="stopped"), c=replica(role="primary"), d=replica(api_url=None))
    assert failover_eligibility(c, "a", {}) == (False, "its REST API did not answer")
    assert failover_eligibility(c, "b") == (False, "it is not running (state: stopped)")
    assert failover_eligibility(c, "a", {"state": "starting", "role": "replica"}) == (
        False, "it is not running (state: starting)")
    assert failover_eligibility(c, "c") == (False, "it runs as a primary without holding the leader lock")
    assert failover_eligibility(c, "d") == (False, "it publishes no REST API address (api_url)")


def test_timeline_behind_the_cluster() -> None:
    c = cluster(a=replica(timeline=2))
    assert failover_eligibility(c, "a") == (False, "its timeline 2 is behind the cluster's timeline 3")


def test_synchronous_mode_switchover_only_to_the_sync_set() -> None:
    config = {"synchronous_mode": True, "maximum_lag_on_failover": MB}
    c = cluster(config, {"leader": "leader", "sync_standby": "a"}, a=replica(), b=replica())
    assert failover_eligibility(c, "a") == (True, "eligible")
    ok, why = failover_eligibility(c, "b")
    assert not ok and why == "it is not a synchronous standby (synchronous_mode: on, sync standbys: a)"
    # a failover may go to an asynchronous member (the CLI asks for a confirmation)
    assert failover_eligibility(c, "b", action="failover") == (True, "eligible")


def test_candidate_report_covers_every_non_leader_in_name_order() -> None:
    c = cluster(b=replica(tags={"nofailover": True}), a=replica())
    assert candidate_report(c, {"a": None}) == [("a", True, "eligible"), ("b", False, "it is tagged nofailover")]


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 kB"
    assert format_bytes(3 * MB) == "3.0 MB"
