"""Write-unavailability per fault, hatui and Patroni side by side: `./run.sh bench --unavailability`.

For each fault of the fault suite, a client commits a numbered row every 50 ms through a libpq
multi-host connection string (target_session_attrs=read-write), reconnecting after any error,
from before the fault until the cluster is healthy again and writes have gone on for 2 s. The
figure is the time without a successful commit: the longest gap between two commits, minus the
50 ms the client waits between them. Then a seeded random mix of the same faults back to back
(the soak): the total of those gaps. Also counted: committed rows missing afterwards (must be 0
under synchronous_mode) and samples with two writable primaries (must be 0).

Settings: ttl 20, loop_wait 2, retry_timeout 4, synchronous_mode on (where leaderless holes and
needless demotions cost the most), two nodes per system.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import threading
import time
from pathlib import Path

import psycopg
from probes import Writer, rest_post
from systems import System, dsn, ensure_tables, wait, writable

log = logging.getLogger("bench")

DCS = {"ttl": 20, "loop_wait": 2, "retry_timeout": 4, "synchronous_mode": True}
INTERVAL = 0.05
FAULTS = ("host crash", "daemon kill", "daemon frozen past ttl", "etcd frozen 10 s", "switchover")


class SplitMonitor:
    """Counts samples where both nodes take writes."""

    def __init__(self, s: System) -> None:
        self.s, self.samples, self.split = s, 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SplitMonitor:
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            n = sum(1 for node in self.s.cluster.nodes if writable(node.pg_port))
            self.samples += 1
            self.split += n > 1
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(10)


def inject(s: System, fault: str, ttl: int) -> None:
    """One fault on the current leader, then what an operator's tooling would do to heal it."""
    leader = s.wait_healthy(180)
    node = s.node(leader)
    if fault in ("host crash", "daemon kill"):
        if fault == "host crash":
            s.crash_host(leader)
        else:
            s.kill_daemon(leader)
        try:
            wait(lambda: s.leader() not in (None, leader), ttl + 60, f"{s.label}: a new leader", 0.1)
        except TimeoutError:
            # Reported as measured: the gap lasts until the node is back and the cluster healed.
            log.warning("%s %s: no new leader within %d s; starting the node again", s.label, fault, ttl + 60)
        s.cluster.start_node(s.index(leader))
    elif fault == "daemon frozen past ttl":
        node.daemon.signal(signal.SIGSTOP)
        time.sleep(ttl + 5)
        node.daemon.signal(signal.SIGCONT)
    elif fault == "etcd frozen 10 s":
        s.cluster.etcd.signal(signal.SIGSTOP)
        time.sleep(10)
        s.cluster.etcd.signal(signal.SIGCONT)
    elif fault == "switchover":
        status, body = rest_post(node.api_url, "/switchover", {"leader": leader, "candidate": s.other(leader).name})
        if status not in (200, 202, 503):
            raise RuntimeError(f"{s.label}: switchover refused: {status} {body}")
        wait(lambda: s.leader() not in (None, leader), 60, f"{s.label}: the switchover", 0.1)
    else:
        raise ValueError(fault)


def measure(s: System, faults: list[str], ttl: int) -> dict:
    """Run the faults back to back under one writer; gaps, rows lost, split samples."""
    leader = s.wait_healthy(180)
    ensure_tables(s.node(leader).pg_port)
    writer = Writer([n.pg_port for n in s.cluster.nodes], interval=INTERVAL).start()
    monitor = SplitMonitor(s).start()
    gaps = []
    try:
        wait(lambda: len(writer.ok) >= 20, 30, f"{s.label}: the writer to commit", 0.05)
        for fault in faults:
            t0 = time.monotonic()
            inject(s, fault, ttl)
            s.wait_healthy(240)
            wait(lambda: writer.ok and writer.ok[-1][0] > time.monotonic() - 0.2, 60, "writes again", 0.05)
            time.sleep(2.0)
            times = [t for t, _ in writer.ok if t >= t0 - 5]
            gap = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
            gaps.append(max(0.0, gap - INTERVAL))
            log.info("unavailability %-7s %-24s %6.2f s without a commit", s.label, fault, gaps[-1])
    finally:
        writer.stop()
        monitor.stop()
    leader = s.wait_healthy(240)
    with psycopg.connect(dsn(s.node(leader).pg_port, 5), autocommit=True) as conn:
        present = {r[0] for r in conn.execute("SELECT seq FROM bench_writes")}
        conn.execute("TRUNCATE bench_writes")
    return {"faults": faults, "gaps": gaps, "rows_lost": len(writer.committed() - present),
            "split_samples": monitor.split, "samples": monitor.samples}


def run(base: Path, soak_faults: int, seed: int) -> dict:
    from run import ensure_patroni, make_systems

    ensure_patroni()
    systems = make_systems(base, DCS)
    mix = random.Random(seed).choices(FAULTS, k=soak_faults)
    out: dict = {"dcs": DCS, "seed": seed, "mix": mix, "per_fault": {}, "soak": {}}
    try:
        for s in systems:
            s.start()
        for s in systems:
            out["per_fault"][s.label] = measure(s, list(FAULTS), DCS["ttl"])
        for s in systems:
            out["soak"][s.label] = measure(s, mix, DCS["ttl"])
    finally:
        for s in systems:
            s.stop()
    return out


def table(res: dict) -> str:
    h, p = res["per_fault"].get("hatui"), res["per_fault"].get("Patroni")
    lines = ["| fault (synchronous_mode, ttl 20) | hatui: s without a commit | Patroni |", "|---|---|---|"]
    for i, fault in enumerate(FAULTS):
        lines.append(f"| {fault} | {h['gaps'][i]:.2f} | {p['gaps'][i]:.2f} |")
    lines.append(f"| total | {sum(h['gaps']):.2f} | {sum(p['gaps']):.2f} |")
    hs, ps = res["soak"]["hatui"], res["soak"]["Patroni"]
    lines.append(f"| soak, seed {res['seed']}: {', '.join(res['mix'])} | {sum(hs['gaps']):.2f} | {sum(ps['gaps']):.2f} |")
    for label, r in (("hatui", h), ("Patroni", p), ("hatui soak", hs), ("Patroni soak", ps)):
        lines.append(f"| {label}: rows lost / samples with two writable primaries | "
                     f"{r['rows_lost']} / {r['split_samples']} of {r['samples']} | |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a benchmark, run by hand
    import argparse
    import sys
    import tempfile

    sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soak", type=int, default=5, help="faults in the random mix (default 5)")
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    with tempfile.TemporaryDirectory(prefix="hatui-bench-unavail-", dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)  # the postgres OS user must reach the data dirs when we are root
        print(table(run(Path(tmp), args.soak, args.seed)))
