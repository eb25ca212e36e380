"""The event model (events.py), the automatic-failover reasons (eligibility.py) and the daemon's
narrator (daemon/decisions.py): pure logic, no servers."""

from __future__ import annotations

import json
from types import SimpleNamespace

from hatui.cluster import Cluster
from hatui.daemon.decisions import Narrator, _config_diff, metrics_lines
from hatui.daemon.ha import Action, Decision
from hatui.daemon.member import NodeView, member_data
from hatui.eligibility import automatic_eligibility
from hatui.events import Event, cause_of_timeline, event_line, make_event

MB = 1048576


def member(**data) -> str:
    base = {"conn_url": "postgres://127.0.0.1:5432/postgres", "api_url": "http://127.0.0.1:8008/patroni",
            "state": "running", "role": "replica", "version": "4.1.5", "timeline": 1,
            "xlog_location": 100, "receive_lsn": 100, "replay_lsn": 100, "replication_state": "streaming"}
    base.update(data)
    return json.dumps(base)


def cluster(config: dict | None = None, leader: str | None = "p", extra: list | None = None, **members: str) -> Cluster:
    kvs = [("initialize", "1", 1, 0), ("status", json.dumps({"optime": 100}), 4, 0),
           ("config", json.dumps(config if config is not None else {}), 5, 0),
           ("members/p", member(role="primary"), 3, 0)]
    if leader:
        kvs.append(("leader", leader, 2, 0))
    kvs += [(f"members/{n}", v, 10 + i, 0) for i, (n, v) in enumerate(members.items())]
    return Cluster.from_kvs("batman", kvs + (extra or []), 50)


def test_events_round_trip_in_revision_order_and_hostile_values_are_skipped() -> None:
    a, b = make_event("failover", "r", "r took the lock", timeline=2, lsn=None), make_event("pause", "p", "paused")
    c = cluster(extra=[("events/" + b.id, b.to_value(), 30, 0), ("events/" + a.id, a.to_value(), 20, 0),
                       ("events/junk", "not json", 25, 0), ("events/list", "[1,2]", 26, 0),
                       ("events/nokind", json.dumps({"message": "x"}), 27, 0)])
    assert [e.kind for e in c.events] == ["failover", "pause"]
    assert c.events[0].facts == {"timeline": 2}  # None facts are left out
    assert c.events[0].revision == 20 and c.members and c.leader_name == "p"
    assert cause_of_timeline(c.events, 2) == c.events[0] and cause_of_timeline(c.events, 3) is None
    assert "failover" in event_line(c.events[0]) and "r: r took the lock" in event_line(c.events[0])
    assert Event.from_value("x", b"\xff\xfe") is None


def test_automatic_eligibility_says_paused_failsafe_and_lag() -> None:
    assert automatic_eligibility(cluster(r=member()), "r") == (True, "eligible")
    ok, why = automatic_eligibility(cluster({"pause": True}, r=member()), "r")
    assert not ok and why.startswith("the cluster is paused")
    c = cluster({"failsafe_mode": True}, extra=[("failsafe", json.dumps({"p": "http://x"}), 7, 0)], r=member())
    assert automatic_eligibility(c, "r") == (False, "it is not in the /failsafe key and failsafe mode is on")
    ok, why = automatic_eligibility(cluster({"maximum_lag_on_failover": 10}, r=member(xlog_location=50,
                                                                                       receive_lsn=50,
                                                                                       replay_lsn=50)), "r")
    assert not ok and "maximum_lag_on_failover (10 bytes)" in why
    assert automatic_eligibility(cluster(r=member(tags={"nofailover": True})), "r") == \
        (False, "it is tagged nofailover")


def _daemon(name: str) -> SimpleNamespace:
    view = NodeView(name, "batman", "postgres://x", "http://x/patroni", state="running", role="replica",
                    timeline=1, xlog_location=100)
    return SimpleNamespace(view=view, dynamic=SimpleNamespace(ttl=30), name=name)


def test_decision_record_keeps_since_while_unchanged_and_is_published() -> None:
    recorded: list = []
    n = Narrator("r", lambda kind, msg, **f: recorded.append((kind, msg, f)))
    d = _daemon("r")
    c = cluster(r=member())
    dec = Decision("no action. I am (r), a secondary, and following a leader (p)")
    first = n.decision_record(d, dec, c)
    assert first["eligible"] is True and first["leader"] == "p" and first["lag"] == 0
    again = n.decision_record(d, dec, c)
    assert again == first  # nothing changed: the member JSON is the same, so no etcd write
    d.view.decision = again
    assert member_data(d.view)["decision"] == again
    paused = n.decision_record(d, Decision("PAUSE: no action."), cluster({"pause": True}, r=member()))
    assert paused["eligible"] is False and paused["why_not"].startswith("the cluster is paused")


def test_takeover_causes_and_config_events() -> None:
    recorded: list = []
    n = Narrator("r", lambda kind, msg, **f: recorded.append((kind, msg, f)))
    d = _daemon("r")
    n.after_cycle(d, Decision("following"), None, cluster(r=member()), True)  # sees p lead
    gone = Cluster.from_kvs("batman", [(k, v, 1, 0) for k, v in [("members/r", member()), ("initialize", "1")]])
    n.after_cycle(d, Decision("promoted self to leader by acquiring session lock",
                              (Action("acquire_lock"), Action("promote"))), None, gone, True)
    kind, _, facts = recorded[-1]
    assert kind == "failover" and facts["previous"] == "p" and "vanished" in facts["cause"]
    # As the leader it tells config changes and pause/resume, once each.
    recorded.clear()
    n2 = Narrator("p", lambda kind, msg, **f: recorded.append((kind, msg, f)))
    dp = _daemon("p")
    n2.after_cycle(dp, Decision("no action."), None, cluster({"ttl": 30}), True)
    c2 = Cluster.from_kvs("batman", [("leader", "p", 2, 0), ("members/p", member(role="primary"), 3, 0),
                                     ("config", json.dumps({"ttl": 40, "pause": True}), 9, 0)])
    n2.after_cycle(dp, Decision("PAUSE: no action."), None, c2, True)
    kinds = [k for k, _, _ in recorded]
    assert kinds == ["pause", "config"] and recorded[1][2]["changes"] == ["ttl: 30 -> 40"]
    n2.after_cycle(dp, Decision("PAUSE: no action."), None, c2, True)
    assert len(recorded) == 2


def test_config_diff_names_parameters_and_metrics_are_counters() -> None:
    old = {"postgresql": {"parameters": {"work_mem": "4MB"}, "use_pg_rewind": True}, "ttl": 30}
    new = {"postgresql": {"parameters": {"work_mem": "8MB"}, "use_pg_rewind": False}, "ttl": 30}
    assert _config_diff(old, new) == ["postgresql.parameters.work_mem: '4MB' -> '8MB'",
                                      "postgresql.use_pg_rewind changed"]
    text = metrics_lines("batman", "p", {"failover": 2, "switchover": 1})
    assert 'hatui_failovers_total{scope="batman",name="p"} 2' in text
    assert "# TYPE hatui_switchovers_total counter" in text


def test_etcd_lost_and_regained_are_told_once_each() -> None:
    recorded: list = []
    n = Narrator("r", lambda kind, msg, **f: recorded.append((kind, msg, f)))
    d = _daemon("r")
    c = cluster(r=member())
    n.after_cycle(d, Decision("following"), None, c, True)
    for _ in range(3):
        n.after_cycle(d, Decision("DCS is not accessible"), None, None, True)
    assert [k for k, _, _ in recorded] == ["etcd_lost"]
    assert d.view.decision["etcd"] == "unreachable"
    n.after_cycle(d, Decision("following"), None, c, True)
    n.after_cycle(d, Decision("following"), None, c, True)
    assert [k for k, _, _ in recorded] == ["etcd_lost", "etcd_regained"]
    assert recorded[1][2]["lost_at"]


def test_only_events_changed_lets_the_main_screen_skip_a_redraw() -> None:
    from hatui.screens.events import only_events_changed

    ev = make_event("pause", "p", "paused")
    base = cluster(r=member())
    with_event = cluster(extra=[("events/" + ev.id, ev.to_value(), 30, 0)], r=member())
    moved = cluster(extra=[("events/" + ev.id, ev.to_value(), 30, 0)], r=member(xlog_location=90))
    assert only_events_changed({"batman": base}, {"batman": with_event})
    assert not only_events_changed({"batman": base}, {"batman": base})  # nothing changed at all
    assert not only_events_changed({"batman": base}, {"batman": moved})  # a member changed too
    assert not only_events_changed({"batman": base}, {"batman": with_event, "robin": base})
