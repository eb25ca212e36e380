"""Fixtures of the fault suite: one private cluster per test, stopped by PID whatever happens."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from faultkit import FAST, make_cluster, tail

from hatui.launcher import LocalCluster
from servers import live_processes, make_tempdir, process_args, process_environ, remove_tree


def _guard_pids(base: str) -> list[int]:
    """Fencing guards of this cluster's daemons still alive (they normally exit with them)."""
    marker = f"HATUI_FAULT_BASE={base}".encode()
    return [pid for pid, _ppid in live_processes()
            if b"hatui.daemon.fence" in process_args(pid) and marker in process_environ(pid)]


@pytest.fixture
def fault_cluster(request: pytest.FixtureRequest) -> Iterator:
    made: list[tuple[LocalCluster, object]] = []

    def make(nodes: int = 2, dcs: dict | None = None, start: bool = True, **kw) -> LocalCluster:
        base = make_tempdir("hatui-fault-")
        cluster = make_cluster(base, nodes, dcs or FAST, **kw)
        made.append((cluster, base))
        # Marks the daemons' environment (inherited by their guards) so cleanup finds them.
        os.environ["HATUI_FAULT_BASE"] = str(base)
        if start:
            cluster.start()
        return cluster

    yield make
    rep = getattr(request.node, "_hatui_rep_call", None)
    for cluster, base in made:
        try:
            if rep is not None and rep.failed:
                for node in cluster.nodes:
                    print(f"----- {node.name} daemon log -----\n{tail(node.log_path)}")
            cluster.stop()
        finally:
            for pid in _guard_pids(str(base)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            remove_tree(base)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line per fault scenario with its outcome and duration, for the closing notes."""
    rows = []
    for outcome in ("passed", "failed", "skipped", "error"):
        for rep in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(rep, "nodeid", "")
            if "tests/faults/" in nodeid and getattr(rep, "when", "call") == "call":
                rows.append((nodeid.split("::")[-1], outcome, getattr(rep, "duration", 0.0),
                             getattr(rep, "capstdout", "") if outcome == "passed" else ""))
    if rows:
        terminalreporter.write_sep("-", "fault scenarios")
        for name, outcome, duration, printed in sorted(rows):
            terminalreporter.write_line(f"{name:<60} {outcome:<8} {duration:6.1f}s")
            # What a passing scenario printed (its figures): under xdist, -s shows nothing else.
            for line in printed.splitlines():
                terminalreporter.write_line(f"    {line}")
