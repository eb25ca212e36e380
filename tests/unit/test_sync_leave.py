"""A synchronous standby that stops asks the primary to release it first (sync.leave). Whether it
is the synchronous standby is read from etcd when the stop begins, not from the HA loop's last
view: the primary may have named it in /sync since that read, and PostgreSQL already waits for
it (seen in tests/faults/test_faults_more.py: SIGTERM 0.6 s after /sync named the standby, the
loop's view a cycle old, the standby stopped without asking)."""

from __future__ import annotations

from types import SimpleNamespace

from hatui.cluster import SyncState
from hatui.daemon import sync
from hatui.etcd.store import DCSError


def _cluster(names: tuple[str, ...], leader: str | None = "postgresql0") -> SimpleNamespace:
    return SimpleNamespace(sync=SyncState("postgresql0", names), leader=leader, is_paused=False)


class _Store:
    """etcd as a sequence of reads: the first answers the check, the rest the wait for release."""

    def __init__(self, *reads, error: bool = False) -> None:
        self.reads, self.error, self.count = list(reads), error, 0

    def read(self):
        self.count += 1
        if self.error:
            raise DCSError("etcd is not reachable at 127.0.0.1:2379 (timed out)")
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]


def _daemon(last_view, store: _Store) -> SimpleNamespace:
    touched = []
    return SimpleNamespace(
        name="postgresql1", cluster=last_view, store=store, dcs_ok=True, touched=touched,
        dynamic=SimpleNamespace(is_synchronous=True, loop_wait=1),
        view=SimpleNamespace(role="replica", tags={}), touch_member=lambda force=False: touched.append(force))


def test_named_in_etcd_since_the_last_cycle_asks_to_be_released() -> None:
    store = _Store(_cluster(("postgresql1",)), _cluster(()))
    daemon = _daemon(_cluster(()), store)  # the loop last saw /sync without us
    assert sync.leave(daemon, "shutting down") is True
    assert daemon.view.tags == {"nosync": True} and daemon.touched == [True]
    assert store.count == 2  # the fresh check, then the poll that saw us released


def test_dropped_from_etcd_since_the_last_cycle_stops_without_waiting() -> None:
    store = _Store(_cluster(()))
    daemon = _daemon(_cluster(("postgresql1",)), store)
    assert sync.leave(daemon, "shutting down") is False
    assert daemon.touched == [] and daemon.view.tags == {}


def test_etcd_unreachable_falls_back_on_the_loops_view() -> None:
    daemon = _daemon(_cluster(("postgresql1",)), _Store(error=True))
    assert sync.leave(daemon, "shutting down") is True  # marked nosync; the wait ends at the first failed read
    assert daemon.view.tags == {"nosync": True}
