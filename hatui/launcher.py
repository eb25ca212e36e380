"""Start a private etcd and a few `hatui daemon` nodes on loopback, and stop exactly those.

Used by `hatui demo`, the benchmark and the integration tests, so all three run the cluster the
same way. Every process is started in its own session and remembered by PID; PostgreSQL servers
are found through the postmaster.pid of the data dirs we created. Nothing else is ever signalled.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_ports(n: int, base: int | None = None) -> list[int]:
    """n free loopback ports: base, base+1... skipping taken ones; or kernel-chosen ones."""
    out: list[int] = []
    if base:
        port = base
        while len(out) < n and port < 65535:
            if port_is_free(port):
                out.append(port)
            port += 1
        return out
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        out.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return out


@dataclass
class Proc:
    """A child in its own session, logging to a file; stopped by PID only."""

    name: str
    args: list[str]
    log_path: Path
    env: dict | None = None
    popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, env=self.env)
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> None:
        if not self.alive:
            return
        assert self.popen is not None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def kill(self) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait()


@dataclass
class LocalNode:
    name: str
    config_path: Path
    data_dir: Path
    api_port: int
    pg_port: int
    log_path: Path
    daemon: Proc | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            if os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) != os.path.realpath(self.data_dir):
                return None
        except OSError:
            return None
        return pid

    def connect(self, **kw: Any):
        """A superuser session on this node's PostgreSQL over TCP (autocommit)."""
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.pg_port, user="postgres", password="zalando",
                               dbname="postgres", autocommit=True, connect_timeout=3, **kw)

    def patroni(self) -> dict:
        """GET /patroni, or {} when the daemon does not answer."""
        status, body = self.rest("/patroni")
        return body if status == 200 and isinstance(body, dict) else {}

    def is_streaming(self) -> bool:
        return self.patroni().get("replication_state") == "streaming"

    def is_writable(self) -> bool:
        """Does PostgreSQL here accept a session that is not in recovery?"""
        import psycopg

        try:
            with self.connect() as conn:
                return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()[0]
        except psycopg.Error:
            return False

    def rest(self, path: str, timeout: float = 2.0) -> tuple[int, Any]:
        import json

        try:
            with urllib.request.urlopen(self.api_url + path, timeout=timeout) as r:
                body = r.read()
                return r.status, json.loads(body) if body[:1] in (b"{", b"[") else body.decode()
        except urllib.error.HTTPError as e:
            body = e.read()
            return e.code, json.loads(body) if body[:1] in (b"{", b"[") else body.decode()
        except OSError:
            return 0, None


@dataclass
class LocalCluster:
    """etcd + N hatui nodes under `base_dir` (etcd/, <node>.yml, data/<node>, logs/)."""

    base_dir: Path
    nodes_count: int = 2
    scope: str = "batman"
    port_base: int | None = None
    dcs: dict = field(default_factory=lambda: {"ttl": 30, "loop_wait": 10, "retry_timeout": 10})
    name_prefix: str = "postgresql"
    extra_node: dict = field(default_factory=dict)
    etcd: Proc | None = None
    etcd_port: int = 0
    nodes: list[LocalNode] = field(default_factory=list)
    # Endpoints of an etcd run by the caller (e.g. a 3-member cluster, "h:p,h:p,h:p"): the nodes
    # use it and no private etcd is started; etcd_endpoint/etcd_get then use its first member.
    etcd_hosts: str | None = None
    # More client ports for the private etcd, beside etcd_port (all on 127.0.0.1), and per-node
    # etcd3.hosts overrides ({node name: "h:p,..."}): lets a test cut one node's traffic to etcd
    # by port while the other nodes still reach it (tests/faults/test_partition.py).
    etcd_extra_client_ports: list[int] = field(default_factory=list)
    node_etcd_hosts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir).absolute()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # The postgres OS user must traverse to its data dir when we run as root.
        os.chmod(self.base_dir, 0o755)
        ports = pick_ports(2 + 2 * self.nodes_count, self.port_base)
        self.etcd_port, self.etcd_peer_port = ports[0], ports[1]
        for i in range(self.nodes_count):
            name = f"{self.name_prefix}{i}"
            self.nodes.append(LocalNode(
                name, self.base_dir / f"{name}.yml", self.base_dir / "data" / name,
                ports[2 + 2 * i], ports[3 + 2 * i], self.base_dir / "logs" / f"{name}.log"))

    @property
    def etcd_endpoint(self) -> str:
        if self.etcd_hosts:
            return self.etcd_hosts.split(",")[0]
        return f"127.0.0.1:{self.etcd_port}"

    def etcd_get(self, key: str) -> str | None:
        """One key's value from our etcd (through its JSON gateway), None when absent."""
        import base64
        import json

        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        req = urllib.request.Request(f"http://{self.etcd_endpoint}/v3/kv/range", body)
        with urllib.request.urlopen(req, timeout=3) as r:
            kvs = json.loads(r.read()).get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    # ---- etcd --------------------------------------------------------------------------------
    def start_etcd(self, timeout: float = 30.0) -> None:
        url, peer = f"http://{self.etcd_endpoint}", f"http://127.0.0.1:{self.etcd_peer_port}"
        urls = ",".join([url] + [f"http://127.0.0.1:{p}" for p in self.etcd_extra_client_ports])
        args = [ETCD_BIN, "--name", "hatui-etcd", "--data-dir", str(self.base_dir / "etcd"),
                "--listen-client-urls", urls, "--advertise-client-urls", urls,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"hatui-etcd={peer}", "--initial-cluster-token", f"hatui-{self.etcd_port}",
                "--heartbeat-interval", "20", "--election-timeout", "200"]
        self.etcd = Proc("etcd", args, self.base_dir / "logs" / "etcd.log").start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    if b'"true"' in r.read():
                        return
            except OSError:
                pass
            if not self.etcd.alive:
                break
            time.sleep(0.1)
        raise RuntimeError(f"etcd did not become healthy; see {self.etcd.log_path}")

    # ---- nodes -------------------------------------------------------------------------------
    def node_config(self, node: LocalNode) -> dict:
        cfg: dict[str, Any] = {
            "scope": self.scope,
            "namespace": "/service/",
            "name": node.name,
            "restapi": {"listen": f"127.0.0.1:{node.api_port}", "connect_address": f"127.0.0.1:{node.api_port}"},
            "etcd3": {"hosts": self.node_etcd_hosts.get(node.name) or self.etcd_hosts or self.etcd_endpoint},
            "bootstrap": {
                "dcs": {**self.dcs, "maximum_lag_on_failover": 1048576,
                        "postgresql": {"use_pg_rewind": True, "parameters": {"wal_keep_size": "128MB"}}},
                "initdb": [{"encoding": "UTF8"}, "data-checksums"],
                "pg_hba": ["local all all trust", "host replication replicator 127.0.0.1/32 md5",
                           "host all all 127.0.0.1/32 md5"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.pg_port}",
                "connect_address": f"127.0.0.1:{node.pg_port}",
                "data_dir": str(node.data_dir),
                "authentication": {
                    "replication": {"username": "replicator", "password": "rep-pass"},
                    "superuser": {"username": "postgres", "password": "zalando"},
                    "rewind": {"username": "postgres", "password": "zalando"},
                },
                "use_pg_rewind": True,
                "parameters": {"unix_socket_directories": str(self.base_dir / "data" / f"{node.name}-socket")},
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }
        for key, value in self.extra_node.items():
            cfg[key] = value
        return cfg

    def write_configs(self) -> None:
        yaml = YAML()
        yaml.default_flow_style = False
        (self.base_dir / "data").mkdir(exist_ok=True)
        os.chmod(self.base_dir / "data", 0o755)
        for node in self.nodes:
            if not node.config_path.exists():
                with open(node.config_path, "w") as f:
                    yaml.dump(self.node_config(node), f)

    def start_node(self, i: int) -> LocalNode:
        node = self.nodes[i]
        if node.daemon is not None and node.daemon.alive:
            raise RuntimeError(f"{node.name} is already running (pid {node.daemon.pid})")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        args = [sys.executable, "-m", "hatui.daemon", str(node.config_path)]
        node.daemon = Proc(node.name, args, node.log_path, env=env).start()
        return node

    def start(self) -> "LocalCluster":
        self.write_configs()
        if not self.etcd_hosts and (self.etcd is None or not self.etcd.alive):
            self.start_etcd()
        for i in range(len(self.nodes)):
            self.start_node(i)
            if i == 0:
                self.wait_for(lambda: self._check_alive(self.nodes[0]) and self.leader() is not None, 120, "a leader")
        return self

    # ---- observing ---------------------------------------------------------------------------
    def leader(self) -> str | None:
        for node in self.nodes:
            if node.daemon and node.daemon.alive:
                status, body = node.rest("/cluster", timeout=1.0)
                if status == 200 and isinstance(body, dict):
                    for m in body.get("members", []):
                        if m.get("role") == "leader" and m.get("state") == "running":
                            return m["name"]
        return None

    @staticmethod
    def _check_alive(node: LocalNode) -> bool:
        if node.daemon is not None and not node.daemon.alive:
            tail = node.log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"the daemon of {node.name} exited: " + " | ".join(tail))
        return True

    def node(self, name: str) -> LocalNode:
        return next(n for n in self.nodes if n.name == name)

    @staticmethod
    def wait_for(check, timeout: float, what: str, interval: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")

    # ---- faults ------------------------------------------------------------------------------
    def kill_node(self, name: str, postgres_too: bool = True) -> None:
        """kill -9 the daemon (and, if asked, its postmaster): a crash of the machine or of the daemon."""
        node = self.node(name)
        if node.daemon:
            node.daemon.kill()
        if postgres_too:
            pid = node.postmaster_pid()
            if pid:
                os.kill(pid, signal.SIGKILL)

    # ---- stopping ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every daemon (they stop their PostgreSQL), then any postmaster left in our data
        dirs (a node killed earlier), then etcd."""
        for node in self.nodes:
            if node.daemon:
                node.daemon.stop(timeout=60)
        for node in self.nodes:
            pid = node.postmaster_pid()
            if pid:
                try:
                    os.kill(pid, signal.SIGQUIT)  # immediate shutdown of a server nobody manages
                except ProcessLookupError:
                    continue
                deadline = time.monotonic() + 15
                while node.postmaster_pid() and time.monotonic() < deadline:
                    time.sleep(0.1)
                if node.postmaster_pid():
                    os.kill(pid, signal.SIGKILL)
        if self.etcd:
            self.etcd.stop()
