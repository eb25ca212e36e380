"""Fixtures of the real-hosts suite (issue 18): a topology of network namespaces inside the
test's own private namespace, with a hatui cluster across it, destroyed by PID and by namespace
whatever happens. Prints every scenario's figures at the end of the outer run."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))  # netnskit, shared with the fault suite

from hostcluster import DCS, HostCluster  # noqa: E402
from lab import FIGURES_ENV, OUT_ENV, Run, out_dir  # noqa: E402
from netnskit import NamespaceHold, inside, run_inside  # noqa: E402
from patronihosts import PatroniHostCluster, patroni_missing, system  # noqa: E402
from topology import NS_FILE_ENV, Topology, skip_reason  # noqa: E402

from servers import make_tempdir, print_logs, remove_tree  # noqa: E402


def pytest_configure(config) -> None:
    # The outer run owns the figures file and the history directory; inner runs inherit both.
    # Only names here: the file and the directory are created when a scenario first writes to them.
    if not inside():
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        os.environ.setdefault(OUT_ENV, f"/tmp/hatui-partitions-{stamp}")
        os.environ.setdefault(FIGURES_ENV, os.path.join(os.environ[OUT_ENV], "figures.jsonl"))


def outer(request: pytest.FixtureRequest, timeout: float = 900) -> None:
    """Run this test again inside a fresh private namespace; afterwards kill by PID anything
    still alive in the child namespaces it made (the inner run normally leaves nothing)."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    fd, ns_file = tempfile.mkstemp(prefix="hatui-hosts-ns-")
    os.close(fd)
    os.environ[NS_FILE_ENV] = ns_file
    held = NamespaceHold().watch(ns_file)  # by id only while held: an id freed may be someone else's
    try:
        run_inside(request, timeout)
    finally:
        left = held.kill_and_release()
        if left:
            print(f"killed processes left in the host namespaces: {left}")
        os.unlink(ns_file)
        os.environ.pop(NS_FILE_ENV, None)


class Lab:
    def __init__(self, topo: Topology, cluster: HostCluster) -> None:
        self.topo, self.cluster = topo, cluster
        self.runs: list[Run] = []

    def run(self, name: str) -> Run:
        run = Run(name, self.cluster, self.topo)
        self.runs.append(run)
        return run.start()


@pytest.fixture
def lab_factory(request: pytest.FixtureRequest) -> Iterator:
    made: list[tuple[Topology, HostCluster | None, Path]] = []
    labs: list[Lab] = []

    def make(dcs: dict | None = None, hosts: int = 3) -> Lab:
        if system() == "patroni" and patroni_missing():
            pytest.skip(patroni_missing())
        base = make_tempdir("hatui-hosts-")
        topo = Topology(hosts)
        made.append((topo, None, base))
        topo.build()
        cls = PatroniHostCluster if system() == "patroni" else HostCluster
        cluster = cls(base, topo, {**DCS, **(dcs or {})})
        made[-1] = (topo, cluster, base)
        cluster.start()
        labs.append(Lab(topo, cluster))
        return labs[-1]

    yield make
    rep = getattr(request.node, "_hatui_rep_call", None)
    for lab in labs:
        for run in lab.runs:
            run.abandon()
    for topo, cluster, base in made:
        try:
            if cluster is not None:
                if rep is not None and (rep.failed or os.environ.get("HATUI_KEEP_HOST_LOGS")):
                    kept = out_dir() / f"{request.node.name}-logs"
                    shutil.copytree(base / "logs", kept, dirs_exist_ok=True)
                    print(f"logs of the failed scenario kept in {kept}")
                    print_logs(cluster.nodes, 60)
                    for member in cluster.etcd_members:
                        print(f"----- {member.name} -----\n" + "\n".join(
                            member.log_path.read_text(errors="replace").splitlines()[-15:]))
                if topo.links:
                    topo.heal()  # lets the daemons stop cleanly (a primary waiting for its standby)
                cluster.stop()
        finally:
            left = topo.destroy()
            if left:
                print(f"killed processes left in the host namespaces: {left}")
            remove_tree(base)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Every scenario's figures, as the closing note and the benchmark show them."""
    path = os.environ.get(FIGURES_ENV)
    if inside() or not path or not os.path.exists(path):
        return
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows:
        return
    terminalreporter.write_sep("-", "real-hosts scenarios")
    head = (f"{'system':<8} {'scenario':<56} {'failover s':>10} {'unavail s':>9} {'acked':>6} {'lost':>5} "
            f"{'2 writable':>10} {'changes':>7}")
    terminalreporter.write_line(head)
    for r in rows:
        fo = "-" if r["failover_s"] is None else f"{r['failover_s']:.1f}"
        terminalreporter.write_line(f"{r.get('system', 'hatui'):<8} {r['scenario']:<56} {fo:>10} "
                                    f"{r['unavailable_s']:>9.1f} {r['acked']:>6} {r['lost']:>5} "
                                    f"{r['split_samples']:>10} {r['leader_changes']:>7}")
    terminalreporter.write_line("failover s: fault -> first write acknowledged by another server; unavail s: every "
                                "gap over 1 s between acknowledged writes after the fault; 2 writable: 1 s samples "
                                "with two hosts taking writes; changes: leader changes seen by the samples")
    terminalreporter.write_line(f"histories: {os.environ.get(OUT_ENV)}")
