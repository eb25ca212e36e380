"""Health from evidence (hatui.widgets.health, hatui.widgets.rows): pure verdicts, no servers."""

from __future__ import annotations

import dataclasses

from hatui.console_events import recorded_clusters
from hatui.widgets.banner import health_line
from hatui.widgets.health import ETCD_STALL_AFTER, EtcdEvidence, lease_renewing
from hatui.widgets.palette import DARK
from hatui.widgets.rows import PatroniSample, build_rows

RUNNING = {"state": "running", "role": "replica", "replication_state": "streaming", "xlog": {}}
LEADER = {"state": "running", "role": "primary", "xlog": {}}


def answers(now: float) -> dict[str, PatroniSample]:
    return {
        "postgresql0": PatroniSample(LEADER, now, pg_up=True),
        "postgresql1": PatroniSample(RUNNING, now, pg_up=True),
        "postgresql2": PatroniSample(RUNNING, now, pg_up=True),
    }


def row(rows, name):
    return next(r for r in rows if r.name == name)


def test_etcd_verdict_needs_a_recent_answer() -> None:
    assert EtcdEvidence().verdict(100.0) == "unknown"
    assert EtcdEvidence(started=100.0).verdict(100.5) == "unknown"
    assert EtcdEvidence(started=100.0).verdict(100.0 + ETCD_STALL_AFTER + 0.1) == "stalled"
    ev = EtcdEvidence(last_answer=200.0, started=100.0)
    assert ev.verdict(200.0 + ETCD_STALL_AFTER - 0.1) == "ok"
    assert ev.verdict(200.0 + ETCD_STALL_AFTER + 0.1) == "stalled"


def test_lease_renewing_from_time_left() -> None:
    assert lease_renewing(None, 30, 10) is None
    assert lease_renewing(29, 30, 10) is True
    assert lease_renewing(20, 30, 10) is True  # renewed one loop_wait ago
    assert lease_renewing(17, 30, 10) is False  # a whole loop plus slack without renewal
    assert lease_renewing(-1, 30, 10) is False


def test_all_answering_is_healthy_and_the_line_says_so() -> None:
    cluster = recorded_clusters()[0]  # no lag, nothing pending yet
    rows = build_rows(cluster, answers(50.0), now_mono=50.5, lease_remaining=28)
    assert {r.health for r in rows} == {"leader", "streaming"}
    assert health_line(cluster, rows, 28, DARK).plain.startswith("● healthy")
    # Without the lease time left the console does not know the leader renews: not healthy.
    assert "● healthy" not in health_line(cluster, rows, None, DARK).plain


def test_leader_rest_silent_shows_the_countdown_and_is_not_healthy() -> None:
    cluster = recorded_clusters()[0]
    samples = answers(50.0)
    samples["postgresql0"] = PatroniSample(None, 51.0, "connection refused", answered_at=50.0, pg_up=True)
    rows = build_rows(cluster, samples, now_mono=51.2, lease_remaining=27)
    leader = row(rows, "postgresql0")
    assert leader.health == "silent"
    assert leader.state_text == "REST silent 1s · lease 27s"
    assert "not healthy" in health_line(cluster, rows, 27, DARK).plain


def test_leader_not_renewing_is_expiring_even_when_it_answers() -> None:
    cluster = recorded_clusters()[0]  # ttl 30, loop_wait 10
    rows = build_rows(cluster, answers(50.0), now_mono=50.5, lease_remaining=12)
    leader = row(rows, "postgresql0")
    assert leader.health == "expiring"
    assert leader.state_text == "not renewing · lease 12s"


def test_postgres_port_refused_is_down_whatever_the_key_says() -> None:
    cluster = recorded_clusters()[0]
    samples = answers(50.0)
    samples["postgresql1"] = PatroniSample(RUNNING, 50.0, pg_up=False, pg_error="Connection refused")
    r = row(build_rows(cluster, samples, now_mono=50.5, lease_remaining=28), "postgresql1")
    assert r.health == "stopped" and r.state_text == "PostgreSQL down"


def test_rest_answer_newer_than_the_key_wins_older_does_not() -> None:
    cluster = recorded_clusters()[0]
    samples = answers(50.0)
    samples["postgresql1"] = PatroniSample(dict(RUNNING, state="starting"), 50.0, pg_up=True)
    newer = build_rows(cluster, samples, now_mono=50.5, lease_remaining=28, key_changed={"postgresql1": 49.0})
    older = build_rows(cluster, samples, now_mono=50.5, lease_remaining=28, key_changed={"postgresql1": 50.2})
    assert row(newer, "postgresql1").state == "starting"
    assert row(older, "postgresql1").state == "streaming"


def test_departed_member_stays_greyed_with_last_seen() -> None:
    full = recorded_clusters()[0]
    gone = full.member("postgresql2")
    cluster = dataclasses.replace(full, members=tuple(m for m in full.members if m.name != "postgresql2"))
    samples = answers(50.0)
    samples["postgresql2"] = PatroniSample(None, 50.0, "connection refused", answered_at=20.0, pg_up=True)
    rows = build_rows(cluster, samples, now_mono=50.5, lease_remaining=28, departed={"postgresql2": (gone, 38.0)})
    r = row(rows, "postgresql2")
    assert r.gone and r.health == "gone" and r.eligible is False
    assert r.state_text == "gone, last seen 12s ago · PG up"
    assert [x.name for x in rows] == ["postgresql0", "postgresql1", "postgresql2"]
    assert "not healthy" in health_line(cluster, rows, 28, DARK).plain
    # A departed name whose key is back is not shown twice.
    rows = build_rows(full, samples, now_mono=50.5, lease_remaining=28, departed={"postgresql2": (gone, 38.0)})
    assert [x.name for x in rows].count("postgresql2") == 1


# --- events in exact words (widgets/timeline.py) ----------------------------------------------------
def _without_leader(cluster, drop_member: bool):
    members = tuple(m for m in cluster.members if not (drop_member and m.name == "postgresql0"))
    return dataclasses.replace(cluster, leader=None, members=members, revision=cluster.revision + 1)


def _events(old, new, lease_left=None):
    from datetime import UTC, datetime

    from hatui.widgets.timeline import diff_clusters

    return [e.text for e in diff_clusters(old, new, datetime(2026, 1, 1, tzinfo=UTC), lease_left)]


def test_leader_key_released_expired_or_revoked_in_exact_words() -> None:
    c = recorded_clusters()[0]
    assert "leader lock released by postgresql0: no leader" in _events(c, _without_leader(c, False))
    assert "leader lease of postgresql0 expired (not renewed for ttl): no leader" in _events(
        c, _without_leader(c, True), lease_left=1)
    assert any("revoked with 17s left" in e for e in _events(c, _without_leader(c, True), lease_left=17))


def test_timeline_events_only_for_a_real_new_timeline() -> None:
    c = recorded_clusters()[0]  # every member on timeline 3
    gone = _without_leader(c, True)
    assert not any(e.startswith("timeline") for e in _events(c, gone))  # was "3 → 2" from the history
    assert not any(e.startswith("timeline") for e in _events(gone, c))
    r1 = gone.member("postgresql1")
    promoted = dataclasses.replace(
        gone, members=tuple(dataclasses.replace(m, data=dict(m.data, timeline=4, role="primary"))
                            if m.name == "postgresql1" else m for m in gone.members))
    assert r1 is not None
    assert "timeline 3 → 4" in _events(gone, promoted)


def test_toasts_are_one_sentence_never_a_json_dump() -> None:
    from hatui.widgets.toasts import rest_result

    body = '{"loop_wait": 10, "ttl": 30, "postgresql": {"parameters": {"work_mem": "8MB"}}}'
    assert rest_result("resume", 200, body) == "Resume: accepted (HTTP 200)."
    assert rest_result("switchover", 200, 'Successfully switched over to "pg1"') == "Switchover: accepted (HTTP 200)."
    assert rest_result("reinit", 503, "Cluster has no leader, can not reinitialize\n") == (
        "Reinit refused (HTTP 503): Cluster has no leader, can not reinitialize.")
    assert rest_result("restart", 412, '{"message": "restart conditions are not satisfied"}') == (
        "Restart refused (HTTP 412): restart conditions are not satisfied.")
    assert rest_result("reload", 500, "") == "Reload refused (HTTP 500)."
