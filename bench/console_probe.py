"""Figure 6, run in a process of its own so its memory is the console's alone.

Starts a private etcd, writes 50 Patroni-shaped clusters of 3 members under /service/, opens the
console on the whole namespace (headless, 120x36, Textual's test driver), then:
  latency  - 100 times: put a member key, await the render that shows its revision; time from
             just before the put to the widgets updated and to the screen painted;
  idle CPU - process CPU seconds over an idle window (watch, lease and /patroni pollers running);
  memory   - resident set of this process afterwards.
With --events N, each cluster also holds N event keys (events.py) and each member key its
published decision (issue 17), and every measured put is preceded by a new event in the watched
cluster: the console then paints with the event timeline flowing.
Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import etcd3

from hatui.app import HatuiApp
from hatui.events import make_event
from hatui.launcher import LocalCluster

EVENTS = 0  # --events: event keys per cluster, and one more before each measured put

CLUSTERS, MEMBERS = 50, 3
CONFIG = {
    "ttl": 30,
    "loop_wait": 10,
    "retry_timeout": 10,
    "maximum_lag_on_failover": 1048576,
    "postgresql": {"use_pg_rewind": True, "parameters": {"max_connections": 100}},
}


def member(i: int, role: str, lsn: int) -> str:
    data = {
        "conn_url": f"postgres://127.0.0.1:{5432 + i}/postgres",
        # Ports nothing listens on: the console's /patroni poller is refused at once, as for a dead node.
        "api_url": f"http://127.0.0.1:{1 + i}/patroni",
        "state": "running" if role == "primary" else "streaming",
        "role": role,
        "version": "4.1.5",
        "xlog_location": lsn,
        "timeline": 1,
    }
    if role == "replica":
        data.update(replay_lsn=lsn, receive_lsn=lsn, replication_state="streaming")
    if EVENTS:
        data["decision"] = {"message": f"no action. I am (postgresql{i}), a secondary, and following a leader "
                            "(postgresql0)", "actions": [], "leader": "postgresql0", "timeline": 1,
                            "eligible": role == "replica", "lag": 0, "lease_ttl": 30,
                            "since": "2026-12-03T18:00:00.000+00:00"}
    return json.dumps(data, separators=(",", ":"))


def put_event(c: etcd3.Etcd3Client, prefix: str, n: int) -> None:
    ev = make_event("config", "postgresql0", f"dynamic configuration changed: ttl: {n} -> {n + 1}",
                    changes=[f"ttl: {n} -> {n + 1}"])
    c.put(prefix + "events/" + ev.id, ev.to_value())


def write_namespace(c: etcd3.Etcd3Client) -> None:
    for k in range(CLUSTERS):
        prefix = f"/service/bench-{k:02d}/"
        c.put(prefix + "config", json.dumps(CONFIG, separators=(",", ":")))
        c.put(prefix + "initialize", str(7712193093952314556 + k))
        c.put(prefix + "status", '{"optime":50331744}')
        lease = c.lease(600)
        c.put(prefix + "leader", "postgresql0", lease=lease)
        for i in range(MEMBERS):
            role = "primary" if i == 0 else "replica"
            c.put(
                prefix + f"members/postgresql{i}", member(i, role, 50331744), lease=lease if i == 0 else None
            )
        for n in range(EVENTS):
            put_event(c, prefix, n)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu() -> float:
    t = os.times()
    return t.user + t.system


async def measure(endpoint: str, c: etcd3.Etcd3Client, writes: int, idle: float) -> dict:
    app = HatuiApp([endpoint], "/service", None)
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 30
        while not (app.render_log and len(app.clusters) == CLUSTERS):
            if time.monotonic() > deadline:
                raise RuntimeError(f"console showed {len(app.clusters)} of {CLUSTERS} clusters")
            await pilot.pause(0.05)
        await pilot.pause(1.0)
        received, rendered, painted = [], [], []
        scope = app.selected_scope
        for i in range(writes):
            if EVENTS:
                put_event(c, f"/service/{scope}/", EVENTS + i)  # events flowing: not the measured write
            t0 = time.monotonic()
            resp = c.put(
                f"/service/{scope}/members/postgresql1", member(1, "replica", 50331744 + 8 * (i + 1))
            )
            record = await app.wait_for_revision(resp.header.revision)
            if record is None or record.painted is None:
                raise RuntimeError(f"revision {resp.header.revision} was not painted")
            received.append(record.received - t0)
            rendered.append(record.rendered - t0)
            painted.append(record.painted - t0)
            await asyncio.sleep(0.05)
        await pilot.pause(1.0)
        c0, t0 = cpu(), time.monotonic()
        await asyncio.sleep(idle)
        idle_cpu = (cpu() - c0) * 60 / (time.monotonic() - t0)
        memory = rss_mb()
    return {
        "received": received,
        "rendered": rendered,
        "painted": painted,
        "idle_cpu_s_per_min": idle_cpu,
        "rss_mb": memory,
        "clusters": CLUSTERS,
        "members": CLUSTERS * MEMBERS,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--events", type=int, default=0, help="event keys per cluster, plus one per measured write")
    args = ap.parse_args()
    global EVENTS
    EVENTS = args.events
    base = tempfile.mkdtemp(prefix="hatui-bench-console-", dir="/tmp")
    etcd = LocalCluster(base, nodes_count=0)
    try:
        etcd.start_etcd()
        host, port = etcd.etcd_endpoint.rsplit(":", 1)
        c = etcd3.client(host=host, port=int(port))
        write_namespace(c)
        result = asyncio.run(measure(etcd.etcd_endpoint, c, args.writes, args.idle))
        c.close()
    finally:
        etcd.stop()
        shutil.rmtree(base, ignore_errors=True)
    p = sorted(result["painted"])
    print(
        f"console: painted median {statistics.median(p) * 1000:.1f} ms, "
        f"p95 {p[int(0.95 * (len(p) - 1))] * 1000:.1f} ms",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
