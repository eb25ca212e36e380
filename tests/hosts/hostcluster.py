"""A hatui cluster spread over the topology's hosts: on each host one etcd member (a 3-member
etcd across the hosts) and one `hatui daemon` with its PostgreSQL, every process started in its
host's namespace and stopped by PID.

Each host listens on its own address with the usual ports (etcd 2379/2380, PostgreSQL 5432,
REST 8008): the namespaces have separate port spaces, as separate machines would.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topology import SUBNET, Namespace, Topology

from hatui.launcher import ETCD_BIN, LocalCluster, LocalNode, Proc

ETCD_CLIENT, ETCD_PEER, PG_PORT, API_PORT = 2379, 2380, 5432, 8008
ETCD_PORTS = (ETCD_CLIENT, ETCD_PEER)
PASSWORD = "zalando"
# Realistic timings for hosts on a LAN (Patroni's defaults are 30/10/10; the benchmark uses 20/2/4):
# retry_timeout 8 leaves room for a slow etcd request on a loaded 2-core machine.
DCS = {"ttl": 20, "loop_wait": 2, "retry_timeout": 8}
# etcd on real hosts: heartbeat 250 ms, election after 2.5 s without one (etcd's guidance: about
# the round trip, and ten times that), and pre-vote, as etcd 3.5 and later run by default. Without it
# (3.4's default) a member cut off from its peers keeps raising its term, and when the link heals
# it makes the healthy leader step down: the whole etcd cluster had no leader for 10 s right after
# the heal in tests/hosts (terms 7 to 10 in a row, its log too old to win), longer than a hatui or
# Patroni leader can go without renewing its lease, so the new primary demoted itself just after.
ETCD_TIMING = ("--heartbeat-interval", "250", "--election-timeout", "2500", "--pre-vote")


@dataclass
class HostNode(LocalNode):
    addr: str = ""
    ns: Namespace | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.addr}:{self.api_port}"

    def connect(self, **kw: Any):
        import psycopg

        kw.setdefault("connect_timeout", 3)
        return psycopg.connect(host=self.addr, port=self.pg_port, user="postgres", password=PASSWORD,
                               dbname="postgres", autocommit=True, **kw)

    def is_writable(self) -> bool:
        """Does this server take a write right now? (a transaction id is a write: a standby, or a
        server shutting down, refuses it)."""
        import psycopg

        try:
            with self.connect(connect_timeout=1, options="-c statement_timeout=1500") as conn:
                conn.execute("SELECT pg_current_xact_id()")
                return True
        except psycopg.Error:
            return False

    def log_count(self, text: str) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(text)
        except OSError:
            return 0


class HostCluster(LocalCluster):
    """LocalCluster's daemons and configs, but one node per host namespace and a 3-member etcd."""

    def __init__(self, base: Path, topo: Topology, dcs: dict | None = None) -> None:
        self.topo = topo
        self.etcd_members: list[Proc] = []
        endpoints = ",".join(f"{ns.addr}:{ETCD_CLIENT}" for ns in topo.hosts)
        super().__init__(base, len(topo.hosts), dcs=dict(dcs or DCS), etcd_hosts=endpoints)
        self.nodes = [HostNode(n.name, n.config_path, n.data_dir, API_PORT, PG_PORT, n.log_path, addr=ns.addr, ns=ns)
                      for n, ns in zip(self.nodes, topo.hosts)]

    # ---- etcd ------------------------------------------------------------------------------------
    def start_etcd_members(self, timeout: float = 60) -> None:
        initial = ",".join(f"etcd{i}=http://{ns.addr}:{ETCD_PEER}" for i, ns in enumerate(self.topo.hosts))
        for i, ns in enumerate(self.topo.hosts):
            client, peer = f"http://{ns.addr}:{ETCD_CLIENT}", f"http://{ns.addr}:{ETCD_PEER}"
            args = [ETCD_BIN, "--name", f"etcd{i}", "--data-dir", str(self.base_dir / f"etcd{i}"),
                    "--listen-client-urls", client, "--advertise-client-urls", client,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", initial, "--initial-cluster-token", "hatui-hosts", *ETCD_TIMING]
            self.topo._check_child(ns)
            self.etcd_members.append(Proc(f"etcd{i}", ns.prefix() + args, self.base_dir / "logs" / f"etcd{i}.log").start())
        self.wait_for(lambda: all(self.etcd_healthy(i) for i in range(len(self.topo.hosts))), timeout,
                      "every etcd member healthy")

    def etcd_healthy(self, i: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.topo.hosts[i].addr}:{ETCD_CLIENT}/health", timeout=2) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def etcd_get(self, key: str) -> str | None:
        """The key from the first member that answers a linearizable read (a member cut off from
        the majority cannot, and is skipped); raises when none can."""
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        errors = []
        for ns in self.topo.hosts:
            req = urllib.request.Request(f"http://{ns.addr}:{ETCD_CLIENT}/v3/kv/range", body)
            try:
                with urllib.request.urlopen(req, timeout=1.5) as r:
                    kvs = json.loads(r.read()).get("kvs") or []
                return base64.b64decode(kvs[0]["value"]).decode() if kvs else None
            except (OSError, ValueError) as exc:
                errors.append(f"{ns.addr}: {exc}")
        raise OSError("no etcd member answered: " + "; ".join(errors))

    # ---- nodes -----------------------------------------------------------------------------------
    def node_config(self, node: LocalNode) -> dict:
        assert isinstance(node, HostNode)
        cfg = super().node_config(node)
        here = f"{node.addr}:{ETCD_CLIENT}"
        cfg["etcd3"] = {"hosts": ",".join([here] + [h for h in self.etcd_hosts.split(",") if h != here])}
        cfg["restapi"] = {"listen": f"{node.addr}:{API_PORT}", "connect_address": f"{node.addr}:{API_PORT}"}
        cfg["postgresql"]["listen"] = f"{node.addr}:{PG_PORT}"
        cfg["postgresql"]["connect_address"] = f"{node.addr}:{PG_PORT}"
        cfg["bootstrap"]["pg_hba"] = ["local all all trust", f"host replication replicator {SUBNET}.0/24 md5",
                                      f"host all all {SUBNET}.0/24 md5"]
        return cfg

    def start_node(self, i: int) -> LocalNode:
        node = self.nodes[i]
        assert isinstance(node, HostNode) and node.ns is not None
        if node.daemon is not None and node.daemon.alive:
            raise RuntimeError(f"{node.name} is already running (pid {node.daemon.pid})")
        self.topo._check_child(node.ns)
        args, env = self.daemon_command(node)
        node.daemon = Proc(node.name, node.ns.prefix() + args, node.log_path, env=env).start()
        return node

    def daemon_command(self, node: HostNode) -> tuple[list[str], dict]:
        """The daemon's command line (run in its host's namespace) and environment."""
        import os

        return [sys.executable, "-m", "hatui.daemon", str(node.config_path)], dict(os.environ, PYTHONUNBUFFERED="1")

    def start(self) -> "HostCluster":
        self.start_etcd_members()
        return super().start()

    def stop(self) -> None:
        super().stop()
        for member in self.etcd_members:
            member.stop()

    # ---- observing -------------------------------------------------------------------------------
    def writable(self) -> list[str]:
        return [n.name for n in self.nodes if n.is_writable()]

    def streaming_replicas(self, leader: HostNode) -> list[str]:
        return [n.name for n in self.nodes if n is not leader and n.is_streaming()]

    def healthy_leader(self) -> HostNode | None:
        """The leader when exactly one server takes writes, holds the leader key, and every
        other member streams from it."""
        writable = self.writable()
        if len(writable) != 1:
            return None
        leader = self.node(writable[0])
        try:
            if self.etcd_get("/service/batman/leader") != leader.name:
                return None
        except OSError:
            return None
        if len(self.streaming_replicas(leader)) != len(self.nodes) - 1:
            return None
        return leader  # type: ignore[return-value]

    def wait_healthy(self, timeout: float = 180) -> HostNode:
        return self.wait_for(self.healthy_leader, timeout, "one leader with every member streaming", interval=0.5)

    def wait_for_sync(self, timeout: float = 90) -> dict:
        def sync() -> dict:
            try:
                raw = self.etcd_get("/service/batman/sync")
            except OSError:
                return {}
            value = json.loads(raw) if raw else {}
            return value if value.get("sync_standby") else {}

        return self.wait_for(sync, timeout, "/sync to name a synchronous standby", interval=0.5)
