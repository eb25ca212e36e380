"""The demo cluster: LocalCluster with node configs made from demo/postgres0.yml and postgres1.yml."""

from __future__ import annotations

import copy
import io
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..launcher import LocalCluster, LocalNode, port_is_free
from .common import TALK_ETCD_PORTS, DemoError


def find_templates() -> list[Path]:
    """demo/postgres0.yml and postgres1.yml: from the checkout, or a copy packaged with hatui."""
    here = Path(__file__).resolve().parent
    for d in (here.parent.parent / "demo", here.parent / "demo_configs"):
        paths = [d / "postgres0.yml", d / "postgres1.yml"]
        if all(p.is_file() for p in paths):
            return paths
    raise DemoError("demo/postgres0.yml and demo/postgres1.yml were not found next to the hatui package")


def yaml_rt():
    from ruamel.yaml import YAML

    y = YAML()  # round trip: the copies keep the templates' comments, quotes and layout
    y.default_flow_style = False
    y.preserve_quotes = True  # "on" stays a string for YAML 1.1 readers too
    y.indent(mapping=2, sequence=4, offset=2)
    return y


@dataclass
class DemoCluster(LocalCluster):
    """LocalCluster whose node configs are the demo templates with ports and paths rewritten.

    talk_ports: use the templates' ports (etcd 2379, REST 8008.., PostgreSQL 5432..) where they are
    free, so the talk's commands work as printed; any taken one is replaced by a free one.
    """

    templates: list = field(default_factory=list)
    talk_ports: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.talk_ports:
            self._prefer_talk_ports()
        for i, node in enumerate(self.nodes):
            node.config_path = self.base_dir / f"postgres{i}.yml"  # the talk's file names

    def _template(self, i: int) -> Any:
        return self.templates[min(i, len(self.templates) - 1)]

    def _prefer_talk_ports(self) -> None:
        used = {self.etcd_port, self.etcd_peer_port} | {p for n in self.nodes for p in (n.api_port, n.pg_port)}

        def want(port: int, current: int) -> int:
            if port not in used and port_is_free(port):
                used.add(port)
                return port
            return current

        self.etcd_port = want(TALK_ETCD_PORTS[0], self.etcd_port)
        self.etcd_peer_port = want(TALK_ETCD_PORTS[1], self.etcd_peer_port)
        for i, node in enumerate(self.nodes):
            tpl = self._template(i)
            api = int(str(tpl["restapi"]["listen"]).rpartition(":")[2]) + max(0, i - len(self.templates) + 1)
            pg = int(str(tpl["postgresql"]["listen"]).rpartition(":")[2]) + max(0, i - len(self.templates) + 1)
            node.api_port = want(api, node.api_port)
            node.pg_port = want(pg, node.pg_port)

    def node_config(self, node: LocalNode) -> dict:
        i = self.nodes.index(node)
        cfg = copy.deepcopy(self._template(i))
        cfg["scope"] = self.scope
        cfg["name"] = node.name
        addr = f"127.0.0.1:{node.api_port}"
        cfg["restapi"]["listen"] = addr
        cfg["restapi"]["connect_address"] = addr
        cfg.pop("etcd", None)
        cfg.setdefault("etcd3", {})
        cfg["etcd3"]["hosts"] = self.etcd_endpoint
        dcs = cfg.setdefault("bootstrap", {}).setdefault("dcs", {})
        for key, value in self.dcs.items():
            dcs[key] = value
        pg = cfg["postgresql"]
        pg["listen"] = f"127.0.0.1:{node.pg_port}"
        pg["connect_address"] = f"127.0.0.1:{node.pg_port}"
        pg["data_dir"] = str(node.data_dir)
        pg["pgpass"] = str(self.base_dir / "data" / f"pgpass{i}")
        for key, value in self.extra_node.items():
            cfg[key] = value
        return cfg

    def write_configs(self) -> None:
        (self.base_dir / "data").mkdir(exist_ok=True)
        os.chmod(self.base_dir / "data", 0o755)
        y = yaml_rt()
        for i, node in enumerate(self.nodes):
            buf = io.StringIO()
            y.dump(self.node_config(node), buf)
            src = "postgres0.yml" if i == 0 else "postgres1.yml"
            head = (f"# Written by `hatui demo` from demo/{src}: ports, data_dir and etcd3.hosts rewritten.\n"
                    f"# Run by hand with: hatui daemon {node.config_path}\n")
            node.config_path.write_text(head + buf.getvalue())

    def signal_daemons_to_stop(self) -> None:
        """SIGTERM to every daemon at once (a frozen one is continued first), so a replica does not
        take over from a leader that is merely being stopped one node at a time."""
        for node in self.nodes:
            if node.daemon is not None and node.daemon.alive:
                node.daemon.signal(signal.SIGCONT)
                node.daemon.signal(signal.SIGTERM)
