"""POST /reinitialize decides on etcd as it is when the request comes, as Patroni does, not on the
HA loop's last view (a cycle old): a former leader that demoted and streams again must not answer
"I am the leader" (seen after a switchover in tests/integration/test_rest_ops.py)."""

from __future__ import annotations

from types import SimpleNamespace

from hatui.daemon.api_backend import DaemonBackend
from hatui.etcd.store import DCSError


def _cluster(leader: str | None) -> SimpleNamespace:
    return SimpleNamespace(leader=leader and SimpleNamespace(name=leader), leader_name=leader)


class _Store:
    def __init__(self, cluster=None, error: bool = False) -> None:
        self.cluster, self.error, self.reads = cluster, error, 0

    def read(self):
        self.reads += 1
        if self.error:
            raise DCSError("etcd is not reachable at 127.0.0.1:2379 (timed out)")
        return self.cluster


def _daemon(last_view, store: _Store) -> SimpleNamespace:
    return SimpleNamespace(name="postgresql0", cluster=last_view, store=store,
                           view=SimpleNamespace(state="running"))


def test_the_leader_refusal_comes_from_etcd_now_not_from_the_loops_last_view() -> None:
    # The loop last saw postgresql1 lead; etcd now says postgresql0 (this node) does.
    store = _Store(_cluster("postgresql0"))
    backend = DaemonBackend(_daemon(_cluster("postgresql1"), store))
    assert backend.request_reinitialize(force=True, from_leader=False) == (503, "I am the leader, can not reinitialize")
    assert store.reads == 1


def test_no_leader_in_etcd_now_is_refused_although_the_last_view_had_one() -> None:
    backend = DaemonBackend(_daemon(_cluster("postgresql1"), _Store(_cluster(None))))
    assert backend.request_reinitialize(force=True, from_leader=False) == (
        503, "Cluster has no leader, can not reinitialize")


def test_etcd_unreachable_falls_back_on_the_loops_view() -> None:
    backend = DaemonBackend(_daemon(_cluster("postgresql0"), _Store(error=True)))
    assert backend.request_reinitialize(force=True, from_leader=False) == (503, "I am the leader, can not reinitialize")
