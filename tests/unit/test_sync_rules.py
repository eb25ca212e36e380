"""Pure parts of synchronous replication management (hatui/daemon/sync.py)."""

from __future__ import annotations

from hatui.cluster import Cluster, Member
from hatui.daemon.sync import STRICT_PLACEHOLDER, _names_in, choose, standby_names_value


def _cluster(*members: Member) -> Cluster:
    return Cluster(scope="batman", members=tuple(members))


def _member(name: str, **tags) -> Member:
    return Member(name=name, data={"tags": tags} if tags else {})


def test_guc_formats() -> None:
    assert standby_names_value([], 1, strict=False) == ""
    assert standby_names_value([], 1, strict=True) == f'"{STRICT_PLACEHOLDER}"'
    assert standby_names_value(["a"], 1, strict=False) == '"a"'
    assert standby_names_value(["a", "b"], 2, strict=False) == '2 ("a","b")'


def test_names_round_trip() -> None:
    for names in ([], ["a"], ["a", "b"]):
        assert _names_in(standby_names_value(names, len(names) or 1, strict=True)) == names


def test_choose_keeps_current_and_skips_unfit() -> None:
    cluster = _cluster(_member("pg0"), _member("pg1"), _member("pg2"), _member("pg3", nosync=True),
                       _member("pg4", nofailover=True))
    rows = [{"application_name": n, "state": "streaming"} for n in ("pg1", "pg2", "pg3", "pg4", "stranger")]
    assert choose(cluster, "pg0", rows, [], 1) == ["pg1"]
    assert choose(cluster, "pg0", rows, ["pg2"], 1) == ["pg2"]  # no needless change of the sync standby
    assert choose(cluster, "pg0", rows, [], 5) == ["pg1", "pg2"]
    catching_up = [{"application_name": "pg1", "state": "catchup"}]
    assert choose(cluster, "pg0", catching_up, ["pg1"], 1) == []


def test_choose_leaves_out_a_standby_lagging_over_maximum_lag_on_syncnode() -> None:
    cluster = _cluster(_member("pg0"), _member("pg1"), _member("pg2"))
    rows = [{"application_name": "pg1", "state": "streaming", "flush_lsn": 1_000},
            {"application_name": "pg2", "state": "streaming", "flush_lsn": 50_000}]
    # Several standbys: the reference is the most advanced one; pg1 is 49000 bytes behind it.
    assert choose(cluster, "pg0", rows, ["pg1"], 1, max_lag=10_000, my_lsn=60_000) == ["pg2"]
    assert choose(cluster, "pg0", rows, ["pg1"], 1, max_lag=100_000, my_lsn=60_000) == ["pg1"]
    assert choose(cluster, "pg0", rows, ["pg1"], 1, max_lag=-1, my_lsn=60_000) == ["pg1"]  # off
    # One standby: the reference is the primary's own position.
    assert choose(cluster, "pg0", rows[1:], ["pg2"], 1, max_lag=5_000, my_lsn=60_000) == []
    assert choose(cluster, "pg0", rows[1:], ["pg2"], 1, max_lag=20_000, my_lsn=60_000) == ["pg2"]


def test_choose_prefers_higher_sync_priority_and_skips_zero() -> None:
    cluster = _cluster(_member("pg0"), _member("pg1", sync_priority=1), _member("pg2", sync_priority=5),
                       _member("pg3", sync_priority=0))
    rows = [{"application_name": n, "state": "streaming"} for n in ("pg1", "pg2", "pg3")]
    assert choose(cluster, "pg0", rows, [], 1) == ["pg2"]
    assert choose(cluster, "pg0", rows, [], 5) == ["pg2", "pg1"]
    assert choose(cluster, "pg0", rows, ["pg1"], 1) == ["pg1"]  # the current one stays
