"""Figure 5: what an idle daemon costs (memory, CPU) and what one `list` command costs."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from systems import PATRONI_VENV, System, cpu_seconds, descendants, is_postgres, pss_kb, rss_kb

REPO = Path(__file__).resolve().parents[1]


def _helpers(pid: int) -> list[int]:
    return [p for p in descendants(pid) if not is_postgres(p)]


def idle_cost(systems: list[System], seconds: float) -> dict[str, list[dict]]:
    """Per daemon of each system, measured side by side over the same idle window:
    RSS of the daemon and of its helpers (MB), and CPU seconds per minute (daemon + helpers)."""
    procs: dict[str, list[tuple[int, list[int]]]] = {}
    for s in systems:
        s.wait_healthy(120)
        procs[s.label] = [
            (n.daemon.pid, _helpers(n.daemon.pid)) for n in s.cluster.nodes if n.daemon and n.daemon.alive
        ]
    cpu0 = {pid: cpu_seconds(pid) for rows in procs.values() for d, hs in rows for pid in (d, *hs)}
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    out: dict[str, list[dict]] = {}
    for label, rows in procs.items():
        out[label] = []
        for daemon, helpers in rows:
            used = sum(cpu_seconds(p) - cpu0[p] for p in (daemon, *helpers))
            used_helpers = sum(cpu_seconds(p) - cpu0[p] for p in helpers)
            out[label].append(
                {
                    "rss_daemon_mb": rss_kb(daemon) / 1024,
                    "rss_helpers_mb": sum(rss_kb(p) for p in helpers) / 1024,
                    "rss_total_mb": (rss_kb(daemon) + sum(rss_kb(p) for p in helpers)) / 1024,
                    "pss_total_mb": sum(pss_kb(p) for p in (daemon, *helpers)) / 1024,
                    "helpers": len(helpers),
                    "cpu_s_per_min": used * 60 / elapsed,
                    "cpu_helpers_s_per_min": used_helpers * 60 / elapsed,
                }
            )
    return out


def list_commands(etcd_endpoint: str, scope: str, repeats: int) -> dict[str, list[float]]:
    """Whole-process wall time of `hatui list` and `patronictl list` on the same cluster, alternated;
    also their CPU time (user + system, keys "<label> cpu"), which a busy machine inflates far less."""
    hatui = [str(REPO / ".venv" / "bin" / "hatui"), "--etcd", etcd_endpoint, "list", scope]
    if not Path(hatui[0]).exists():
        hatui = [sys.executable, "-m", "hatui", *hatui[1:]]
    patronictl = [
        str(PATRONI_VENV / "bin" / "patronictl"),
        "--dcs-url",
        f"etcd3://{etcd_endpoint}",
        "list",
        scope,
    ]
    env = dict(os.environ)
    env.pop("PATRONICTL_CONFIG_FILE", None)
    env.pop("HATUI_CONFIG_FILE", None)
    times: dict[str, list[float]] = {"hatui": [], "Patroni": [], "hatui cpu": [], "Patroni cpu": []}
    for i in range(repeats + 1):
        for label, args in (("hatui", hatui), ("Patroni", patronictl)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            res = subprocess.run(
                args, check=False, capture_output=True, text=True, timeout=60, env=env, cwd="/tmp"
            )
            took = time.monotonic() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if res.returncode != 0 or "postgresql0" not in res.stdout:
                raise RuntimeError(
                    f"{label} list failed ({res.returncode}): {res.stderr.strip() or res.stdout}"
                )
            if i > 0:  # the first round only warms the page cache
                times[label].append(took)
                times[f"{label} cpu"].append(cpu)
    return times
