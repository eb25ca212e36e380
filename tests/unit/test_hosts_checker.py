"""The real-hosts checker (tests/hosts/checker.py) on hand-written histories: each violation it
exists to find is found, and a clean failover history passes with the right figures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hosts"))

from checker import check, interleavings, render  # noqa: E402

A, B = "10.77.0.1", "10.77.0.2"


def op(t, kind, f, i, host=A, **kw):
    return {"t": t, "op": kind, "f": f, "id": i, "host": host, **kw}


def write(t, i, host=A, result="ok"):
    return [op(t, "invoke", "write", i, host), op(t + 0.01, result, "write", i, host)]


def append(t, i, key, host=A, result="ok"):
    return [op(t, "invoke", "append", i, host, key=key), op(t + 0.01, result, "append", i, host, key=key)]


def sample(t, *writable, leader=None):
    return {"t": t, "op": "sample", "writable": list(writable), "leader": leader}


def failover_history():
    ev = write(1, 1) + write(2, 2) + append(2.5, 100, 0) + [sample(2, "pg0")]
    ev += [{"t": 3, "op": "nemesis", "text": "isolate host0"}]
    ev += [op(3.1, "invoke", "write", 3, A), op(8, "info", "write", 3, A, error="timed out")]
    ev += [sample(5), sample(6, "pg1")]
    ev += write(10, 4, B) + append(10.5, 101, 0, B) + [sample(11, "pg1")]
    return ev


def test_clean_failover_passes_with_its_figures() -> None:
    out = check(failover_history(), {1, 2, 4}, {0: [100, 101]})
    assert out.violations() == []
    assert out.acked == 5 and out.lost == [] and out.indeterminate == 1
    assert out.leader_changes == 1 and out.samples == 4
    assert round(out.failover_s, 2) == 7.01  # nemesis at 3, first acknowledgement by B at 10.01
    assert out.unavailable_s > 7


def test_an_indeterminate_write_may_be_present() -> None:
    assert check(failover_history(), {1, 2, 3, 4}, {0: [100, 101]}).violations() == []


def test_lost_acknowledged_write_and_append() -> None:
    out = check(failover_history(), {1, 4}, {0: [101]})
    assert out.lost == [2, 100]
    assert any("lost" in v for v in out.violations())
    assert out.violations(allow_loss=True) == []


def test_phantom_values_are_found() -> None:
    out = check(failover_history(), {1, 2, 4, 99}, {0: [100, 101, 555]})
    assert out.phantom == [99, 555]
    assert any("no client attempted" in v for v in out.violations())


def test_list_duplicates_and_order() -> None:
    out = check(failover_history(), {1, 2, 4}, {0: [101, 100, 101]})
    assert any("twice" in e for e in out.list_errors)
    assert any("out of the order" in e for e in out.list_errors)
    # A value in another list than the one it was appended to is a phantom there.
    assert check(failover_history(), {1, 2, 4}, {0: [100], 1: [101]}).phantom == [101]


def test_two_writable_hosts_in_one_sample() -> None:
    out = check(failover_history() + [sample(7, "pg0", "pg1")], {1, 2, 4}, {0: [100, 101]})
    assert len(out.split_samples) == 1
    assert any("two writable" in v for v in out.violations())


def test_interleaved_acknowledgements_from_two_servers() -> None:
    oks = [{"t": t, "host": h} for t, h in [(1, A), (2, B), (3, A), (4, B)]]
    assert len(interleavings(oks)) == 1
    # Two failovers (A, B, A) are not a split brain.
    assert interleavings(oks[:3]) == []


def test_render_is_readable() -> None:
    ev = failover_history()
    text = render(ev, check(ev, {1, 2, 4}, {0: [100, 101]}), "t")
    assert "nemesis   isolate host0" in text
    assert "ok     id=4 on 10.77.0.2" in text
    assert "# no violation" in text
