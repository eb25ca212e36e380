"""The two systems under test, behind one shape: a LocalCluster (etcd + two nodes on loopback).

hatui is `hatui.launcher.LocalCluster` as is. Patroni is the same class with three things changed:
the node YAML gains what Patroni needs and hatui finds itself (bin_dir, pgpass), the data dirs are
created for the `postgres` OS user, and the daemon itself runs as that user (Patroni starts
PostgreSQL as whoever runs Patroni). Same etcd command line, same ports logic, same node YAML
otherwise, so the only difference left is the daemon.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from hatui.launcher import LocalCluster, LocalNode, Proc
from hatui.osuser import server_user

PG_BIN = "/usr/lib/postgresql/15/bin"
PATRONI_VENV = Path(os.environ.get("HATUI_BENCH_PATRONI_VENV", "/tmp/hatui-bench-patroni-venv"))
SUPERUSER = ("postgres", "zalando")


def patroni_missing() -> str | None:
    """Why Patroni cannot be run (None when its venv is there)."""
    exe = PATRONI_VENV / "bin" / "patroni"
    return None if os.access(exe, os.X_OK) else f"Patroni is not installed at {exe} (./run.sh bench installs it)"


class PatroniSetup:
    """What a LocalCluster (or a subclass: tests/hosts' HostCluster) changes to run Patroni
    instead of hatui on the same layout: the YAML's extras and the dirs the `postgres` user owns.
    Mixed in before the cluster class; the daemon's start stays the cluster's own."""

    base_dir: Path
    nodes: list[LocalNode]

    def node_config(self, node: LocalNode) -> dict:
        cfg = super().node_config(node)  # type: ignore[misc]
        pg = cfg["postgresql"]
        pg["bin_dir"] = PG_BIN
        pg["pgpass"] = str(self.base_dir / "data" / f"{node.name}-socket" / "pgpass")  # a dir Patroni owns
        return cfg

    def write_configs(self) -> None:
        super().write_configs()  # type: ignore[misc]
        user = server_user()
        for node in self.nodes:
            # Patroni refuses a data dir it cannot own; PostgreSQL needs its socket dir to exist.
            for d in (node.data_dir, node.data_dir.parent / f"{node.name}-socket"):
                if not d.exists():
                    user.make_dir(d, 0o700)
            os.chmod(node.config_path, 0o644)  # read by Patroni as `postgres`, whatever the umask

    def patroni_args(self, node: LocalNode) -> list[str]:
        return [str(PATRONI_VENV / "bin" / "patroni"), str(node.config_path)]


class PatroniCluster(PatroniSetup, LocalCluster):
    """etcd + N Patroni nodes, laid out exactly like hatui's LocalCluster."""

    def start_node(self, i: int) -> LocalNode:
        node = self.nodes[i]
        if node.daemon is not None and node.daemon.alive:
            raise RuntimeError(f"{node.name} is already running (pid {node.daemon.pid})")
        user = server_user()
        kw = user.popen_kwargs()
        env = dict(kw.pop("env", os.environ), PYTHONUNBUFFERED="1")
        args = self.patroni_args(node)
        proc = Proc(node.name, args, node.log_path, env=env)
        node.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(node.log_path, "ab") as log:
            proc.popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                **kw,
            )
        node.daemon = proc
        return node


@dataclass
class System:
    """One system under test: its label and its running cluster."""

    label: str  # "hatui" or "Patroni"
    cluster: LocalCluster
    watch: Any = None  # probes.LeaderWatch on this cluster's leader key, while it runs
    _orphans: list[int] = field(default_factory=list)

    @property
    def scope(self) -> str:
        return self.cluster.scope

    def start(self) -> System:
        from probes import LeaderWatch

        self.cluster.start()
        self.wait_healthy(180)
        self.watch = LeaderWatch(self.cluster.etcd_endpoint, self.scope)
        return self

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None
        self.cluster.stop()
        # Helpers a daemon spawned (e.g. a fencing guard) that outlived it: ours by ancestry.
        for pid in self._orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ---- observing -------------------------------------------------------------------------------
    def members(self) -> list[dict]:
        for node in self.cluster.nodes:
            if node.daemon and node.daemon.alive:
                status, body = node.rest("/cluster", timeout=1.0)
                if status == 200 and isinstance(body, dict):
                    return body.get("members", [])
        return []

    def leader(self) -> str | None:
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                return m["name"]
        return None

    def healthy(self) -> str | None:
        """The leader's name when one leader runs and every other member streams from it."""
        members = self.members()
        leader = [m for m in members if m.get("role") == "leader" and m.get("state") == "running"]
        if len(leader) != 1 or len(members) != len(self.cluster.nodes):
            return None
        if not all(m.get("state") == "streaming" for m in members if m is not leader[0]):
            return None
        if not writable(self.node(leader[0]["name"]).pg_port):
            return None
        return leader[0]["name"]

    def wait_healthy(self, timeout: float = 120) -> str:
        return self.cluster.wait_for(
            self.healthy, timeout, f"{self.label}: a leader and streaming replicas", 0.2
        )

    def node(self, name: str) -> LocalNode:
        return self.cluster.node(name)

    def other(self, name: str) -> LocalNode:
        return next(n for n in self.cluster.nodes if n.name != name)

    def index(self, name: str) -> int:
        return next(i for i, n in enumerate(self.cluster.nodes) if n.name == name)

    # ---- processes -------------------------------------------------------------------------------
    def daemon_processes(self, name: str) -> tuple[int | None, list[int]]:
        """(daemon pid, pids of its helper descendants that are not PostgreSQL)."""
        node = self.node(name)
        if not node.daemon or not node.daemon.alive:
            return None, []
        pid = node.daemon.pid
        return pid, [p for p in descendants(pid) if not is_postgres(p)]

    def crash_host(self, name: str) -> None:
        """kill -9 everything the node runs: daemon, its helpers, PostgreSQL (a power cut)."""
        _, helpers = self.daemon_processes(name)
        postmaster = self.node(name).postmaster_pid()
        pg_children = descendants(postmaster) if postmaster else []
        self.cluster.kill_node(name, postgres_too=True)
        for pid in helpers + pg_children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_daemon(self, name: str) -> list[int]:
        """kill -9 the daemon only; its helpers (a fencing guard) live on, as they would. Returns them."""
        _, helpers = self.daemon_processes(name)
        self.cluster.kill_node(name, postgres_too=False)
        self._orphans.extend(helpers)
        return helpers


# ---- /proc helpers -----------------------------------------------------------------------------------
def _ppid_map() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        out[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(pid: int) -> list[int]:
    parents = _ppid_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out.extend(kids)
        todo.extend(kids)
    return out


def is_postgres(pid: int) -> bool:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return os.path.basename(exe) in ("postgres", "pg_ctl", "pg_rewind", "pg_basebackup", "initdb", "psql")


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time of one process (all its threads, exited ones included, not its children), in ns
    resolution: Linux's process CPU clock of that pid (clock_getcpuclockid). /proc/<pid>/schedstat,
    used before, is the main thread's alone (a daemon's watch, REST API and lease threads were not
    counted, for either system); the clock-tick counters in /proc/<pid>/stat are too coarse for an
    idle daemon."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


# ---- SQL ------------------------------------------------------------------------------------------------
def dsn(port: int, timeout: float = 1.0) -> str:
    return (
        f"host=127.0.0.1 port={port} user={SUPERUSER[0]} password={SUPERUSER[1]} dbname=postgres "
        f"connect_timeout={max(1, int(timeout))}"
    )


def writable(port: int) -> bool:
    try:
        with psycopg.connect(dsn(port), autocommit=True) as conn:
            return not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    except psycopg.Error:
        return False


def try_write(port: int, table: str = "bench_probe") -> bool:
    """One INSERT on a fresh connection; True when it committed."""
    try:
        with psycopg.connect(dsn(port), autocommit=True) as conn:
            conn.execute(f"INSERT INTO {table} (at) VALUES (now())")
            return True
    except psycopg.Error:
        return False


def ensure_tables(port: int) -> None:
    with psycopg.connect(dsn(port, 5), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (id bigserial PRIMARY KEY, at timestamptz)")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_writes (seq bigint PRIMARY KEY, at timestamptz)")


def pg_ctl(node: LocalNode, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    from hatui.osuser import run_as

    return run_as(
        server_user(),
        [f"{PG_BIN}/pg_ctl", "-D", str(node.data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait(pred, timeout: float, what: str, interval: float = 0.02):
    """The launcher's polling loop, at the benchmark's finer default interval."""
    return LocalCluster.wait_for(pred, timeout, what, interval)
