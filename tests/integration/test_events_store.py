"""The event timeline's etcd side against a REAL etcd: the cap drops the oldest keys, and the
namespace watcher rebuilds only the clusters a change touched (event timelines make a namespace
thousands of keys; see bench/console_probe.py --events)."""

from __future__ import annotations

import threading

import pytest

from hatui.etcd.store import ClusterStore, ClusterWatcher
from hatui.etcd.gateway import EtcdGateway
from hatui.etcd.kv import EtcdHttp
from hatui.events import make_event

pytestmark = pytest.mark.integration


def test_append_event_keeps_the_newest_up_to_the_cap(etcd) -> None:
    e = EtcdHttp([etcd.endpoint])
    store = ClusterStore(e, "/service", "batman")
    written = []
    for n in range(14):
        ev = make_event("config", "postgresql0", f"change {n}")
        written.append(ev.id)
        store.append_event(ev, cap=10)
    cluster = store.read()
    assert [ev.message for ev in cluster.events] == [f"change {n}" for n in range(4, 14)]
    assert [ev.id for ev in cluster.events] == written[4:]
    e.close()


def test_namespace_watcher_rebuilds_only_the_touched_cluster(etcd) -> None:
    e = EtcdGateway([etcd.endpoint])  # the JSON gateway client with a watch stream
    for scope in ("alpha", "beta"):
        e.put(f"/service/{scope}/leader", f"{scope}0")
        e.put(f"/service/{scope}/members/{scope}0", '{"role":"primary","state":"running"}')
    seen: list[dict] = []
    changed = threading.Condition()

    def on_change(snapshot: object) -> None:
        with changed:
            seen.append(dict(snapshot))  # type: ignore[call-overload]
            changed.notify_all()

    def wait(predicate) -> dict:
        with changed:
            assert changed.wait_for(lambda: seen and predicate(seen[-1]), timeout=10), seen[-1:]
            return seen[-1]

    watcher = ClusterWatcher(e, "/service", None, on_change).start()
    try:
        first = wait(lambda s: set(s) == {"alpha", "beta"})
        ev = make_event("pause", "alpha0", "automatic failover paused")
        e.put("/service/alpha/events/" + ev.id, ev.to_value())
        second = wait(lambda s: bool(s["alpha"].events))
        assert second["alpha"].events[0].message == "automatic failover paused"
        assert second["beta"] is first["beta"]  # untouched: the same object, not rebuilt
        e.delete_prefix("/service/beta/")
        third = wait(lambda s: "beta" not in s)
        assert third["alpha"] is second["alpha"]
    finally:
        watcher.stop()
        e.close()
