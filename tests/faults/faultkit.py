"""The fault suite's tools: a cluster on reserved ports, a writer that records acknowledged
commits, and a monitor that checks "at most one writable primary" all through a scenario.

Every check is about outcomes and order (which writes were acknowledged, which server took
writes while which other one did), never about how long something took.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from hatui.launcher import LocalCluster, LocalNode
from servers import reserve_ports

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
PASSWORD = "zalando"


def make_cluster(base: Path, nodes: int = 2, dcs: dict | None = None, **kw) -> LocalCluster:
    """A LocalCluster whose ports are reserved across pytest-xdist workers (servers.reserve_ports)."""
    return reserve_ports(LocalCluster(base, nodes, dcs=dict(dcs or FAST), **kw))


def connect(node: LocalNode, timeout: int = 2, **kw) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=node.pg_port, user="postgres", password=PASSWORD,
                           dbname="postgres", autocommit=True, connect_timeout=timeout, **kw)


def patroni(node: LocalNode) -> dict:
    return node.patroni()


def is_writable(node: LocalNode) -> bool:
    """Does this server take a write right now? Asking for a transaction id is a write: a
    standby (or a server shutting down) refuses it."""
    try:
        with connect(node, timeout=1, options="-c statement_timeout=2000") as conn:
            conn.execute("SELECT pg_current_xact_id()")
            return True
    except psycopg.Error:
        return False


def healthy(cluster: LocalCluster) -> str | None:
    """The leader's name when there is exactly one writable primary, it holds the leader key,
    and every other member streams from it; else None."""
    writable = [n for n in cluster.nodes if is_writable(n)]
    if len(writable) != 1:
        return None
    leader = writable[0]
    if patroni(leader).get("role") != "primary":
        return None
    for node in cluster.nodes:
        if node is not leader and patroni(node).get("replication_state") != "streaming":
            return None
    status, body = leader.rest("/cluster")
    if status != 200 or not isinstance(body, dict):
        return None
    leaders = [m["name"] for m in body.get("members", []) if m.get("role") == "leader"]
    return leader.name if leaders == [leader.name] else None


def wait_healthy(cluster: LocalCluster, timeout: float = 120) -> LocalNode:
    name = cluster.wait_for(lambda: healthy(cluster), timeout, "one leader with every member streaming")
    return cluster.node(name)


def create_table(node: LocalNode) -> None:
    with connect(node) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS fault_writes (id bigint PRIMARY KEY, port int NOT NULL)")


def ids_on(node: LocalNode) -> set[int]:
    with connect(node, timeout=5) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM fault_writes")}


class Writer(threading.Thread):
    """Inserts 1, 2, 3... through a read-write multi-host connection string (as an application
    would), remembering every id whose COMMIT was acknowledged and the server that took it."""

    def __init__(self, cluster: LocalCluster, pause: float = 0.01) -> None:
        super().__init__(daemon=True, name="fault-writer")
        self.cluster = cluster
        self.pause = pause
        self.acked: dict[int, int] = {}  # id -> port of the server that acknowledged it
        self.ack_times: list[float] = []  # monotonic time of each acknowledgement (gaps = unavailability)
        self.failures = 0
        self._stop_event = threading.Event()
        self._next = 0

    def conninfo(self) -> str:
        hosts = ",".join("127.0.0.1" for _ in self.cluster.nodes)
        ports = ",".join(str(n.pg_port) for n in self.cluster.nodes)
        return (f"host={hosts} port={ports} user=postgres password={PASSWORD} dbname=postgres "
                f"target_session_attrs=read-write connect_timeout=2")

    def run(self) -> None:
        conn = None
        while not self._stop_event.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.conninfo(), autocommit=True)
                    port = conn.info.port
                self._next += 1
                conn.execute("INSERT INTO fault_writes (id, port) VALUES (%s, %s)", (self._next, port))
                self.acked[self._next] = port
                self.ack_times.append(time.monotonic())
            except psycopg.Error:
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
                self._stop_event.wait(0.1)
                continue
            self._stop_event.wait(self.pause)
        if conn is not None:
            conn.close()

    def wait_acks(self, n: int = 20, timeout: float = 60) -> None:
        start = len(self.acked)
        deadline = time.monotonic() + timeout
        while len(self.acked) < start + n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the writer got no {n} new acknowledgements within {timeout:g}s")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


class Monitor(threading.Thread):
    """Checks, over and over, how many servers take writes; remembers every check that found
    more than one (the split brain the suite exists to rule out)."""

    def __init__(self, cluster: LocalCluster, interval: float = 0.1) -> None:
        super().__init__(daemon=True, name="fault-monitor")
        self.cluster = cluster
        self.interval = interval
        self.checks = 0
        self.split: list[list[str]] = []
        self.seen_writable: list[str] = []  # the writable primaries in the order they appeared
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            writable = [n.name for n in self.cluster.nodes if is_writable(n)]
            self.checks += 1
            if len(writable) > 1:
                self.split.append(writable)
            for name in writable:
                if not self.seen_writable or self.seen_writable[-1] != name:
                    self.seen_writable.append(name)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)


def log_has(node: LocalNode, text: str) -> bool:
    try:
        return text in node.log_path.read_text(errors="replace")
    except OSError:
        return False


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def etcd_get(cluster: LocalCluster, key: str) -> str | None:
    return cluster.etcd_get(key)


def sync_key(cluster: LocalCluster) -> dict:
    """The cluster's /sync key ({} while there is none)."""
    raw = etcd_get(cluster, "/service/batman/sync")
    return json.loads(raw) if raw else {}


def sync_roles(cluster: LocalCluster) -> tuple[LocalNode, LocalNode, LocalNode]:
    """A healthy synchronous-mode cluster of three: its leader, the standby /sync names (once it
    names one), and the other replica."""
    leader = wait_healthy(cluster)
    others = [n for n in cluster.nodes if n is not leader]
    cluster.wait_for(lambda: sync_key(cluster).get("sync_standby") in {n.name for n in others}, 60,
                     "/sync naming a standby")
    sync = cluster.node(sync_key(cluster)["sync_standby"])
    return leader, sync, next(n for n in others if n is not sync)


def start_load(cluster) -> tuple[Writer, Monitor]:
    leader = wait_healthy(cluster)
    create_table(leader)
    writer, monitor = Writer(cluster), Monitor(cluster)
    writer.start()
    monitor.start()
    writer.wait_acks(20)
    return writer, monitor


def finish(cluster, writer: Writer, monitor: Monitor, allow_split: bool = False, async_tail_loss: bool = False):
    """Recovery, then the scenario's invariants. Returns the surviving leader.

    async_tail_loss: every server went down at once, so with asynchronous replication the last
    commits acknowledged by the old primary may not have reached the member that wins (within
    maximum_lag_on_failover, as in Patroni; only synchronous mode rules that out). Then the only
    loss allowed is a tail: no acknowledged id missing before one that survived."""
    leader = wait_healthy(cluster, 180)
    writer.wait_acks(10)  # the application writes again through the new leader
    writer.stop()
    monitor.stop()
    present = ids_on(leader)
    missing = sorted(set(writer.acked) - present)
    if async_tail_loss and missing:
        before_fault = [i for i in writer.acked if i < missing[0]]
        after = [i for i in writer.acked if i > missing[-1]]
        assert set(before_fault) <= present and set(after) <= present
        assert [i for i in sorted(writer.acked) if missing[0] <= i <= missing[-1]] == missing, "a gap, not a tail"
        assert all(writer.acked[i] == writer.acked[missing[0]] for i in missing), "lost ids from two servers"
        print(f"asynchronous replication: {len(missing)} acknowledged id(s) lost at the tail: {missing}")
        missing = []
    assert not missing, f"acknowledged ids missing on {leader.name}: {missing[:20]} ({len(missing)} in all)"
    if not allow_split:
        assert not monitor.split, f"two writable primaries at some checks: {monitor.split[:5]}"
    assert monitor.checks > 0
    return leader


def hatui_cli(cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `hatui --etcd <the cluster's etcd> ARGS` as an operator would; output captured."""
    return subprocess.run([sys.executable, "-m", "hatui", "--etcd", cluster.etcd_endpoint, *args],
                          capture_output=True, text=True, timeout=120)
