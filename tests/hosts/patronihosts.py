"""Patroni on the same topology, for the comparison table (HATUI_HOSTS_SYSTEM=patroni).

The same node YAML as hatui's (hatui reads Patroni's format), plus what Patroni needs and hatui
finds itself (bin_dir, pgpass), as in bench/systems.py; the daemon runs as the `postgres` OS
user (Patroni starts PostgreSQL as whoever runs it), entered into its host's namespace first.
"""

from __future__ import annotations

import os
from pathlib import Path

from hostcluster import HostCluster, HostNode

from hatui.launcher import LocalNode, Proc
from hatui.osuser import server_user

PG_BIN = "/usr/lib/postgresql/15/bin"
PATRONI_VENV = Path(os.environ.get("HATUI_BENCH_PATRONI_VENV", "/tmp/hatui-bench-patroni-venv"))
SYSTEM_ENV = "HATUI_HOSTS_SYSTEM"


def system() -> str:
    return os.environ.get(SYSTEM_ENV, "hatui").lower()


def patroni_missing() -> str | None:
    exe = PATRONI_VENV / "bin" / "patroni"
    return None if os.access(exe, os.X_OK) else f"Patroni is not installed at {exe} (./run.sh bench installs it)"


class PatroniHostCluster(HostCluster):
    def node_config(self, node: LocalNode) -> dict:
        cfg = super().node_config(node)
        cfg["postgresql"]["bin_dir"] = PG_BIN
        cfg["postgresql"]["pgpass"] = str(self.base_dir / "data" / f"{node.name}-socket" / "pgpass")
        return cfg

    def write_configs(self) -> None:
        super().write_configs()
        user = server_user()
        for node in self.nodes:
            for d in (node.data_dir, node.data_dir.parent / f"{node.name}-socket"):
                if not d.exists():
                    user.make_dir(d, 0o700)
            os.chmod(node.config_path, 0o644)

    def start_node(self, i: int) -> LocalNode:
        node = self.nodes[i]
        assert isinstance(node, HostNode) and node.ns is not None
        if node.daemon is not None and node.daemon.alive:
            raise RuntimeError(f"{node.name} is already running (pid {node.daemon.pid})")
        self.topo._check_child(node.ns)
        user = server_user()
        drop = [] if user.is_self else ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
        env = dict(user.env(), PYTHONUNBUFFERED="1")
        args = node.ns.prefix() + drop + [str(PATRONI_VENV / "bin" / "patroni"), str(node.config_path)]
        node.daemon = Proc(node.name, args, node.log_path, env=env).start()
        return node
