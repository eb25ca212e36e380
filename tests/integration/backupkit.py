"""Helpers for the backup, bootstrap and standby-cluster tests: node configs with extra sections,
directories the PostgreSQL OS user may write, scripts, and a real pgBackRest repository."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from servers import keep_if_failed, make_tempdir

from hatui.launcher import LocalCluster
from hatui.osuser import run_as, server_user
from hatui.pgbin import find_bin_dir

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Cluster(LocalCluster):
    """LocalCluster whose node configs take per-node additions ({node name: {section: ...}})."""

    per_node: dict[str, dict]
    replace_bootstrap: dict[str, dict]

    def node_config(self, node) -> dict:
        cfg = super().node_config(node)
        extra = getattr(self, "per_node", {}).get(node.name) or {}
        cfg = deep_merge(cfg, extra)
        cfg["bootstrap"]["dcs"] = deep_merge(cfg["bootstrap"]["dcs"], getattr(self, "dcs_extra", {}))
        if node.name in getattr(self, "replace_bootstrap", {}):
            cfg["bootstrap"] = deep_merge(cfg["bootstrap"], self.replace_bootstrap[node.name])
        return cfg


def make(base: Path, nodes: int, per_node: dict | None = None, dcs: dict | None = None, **kw: Any) -> Cluster:
    """`dcs` is deep-merged into every node's bootstrap.dcs."""
    c = Cluster(base, nodes, dcs=dict(FAST), **kw)
    c.dcs_extra = dcs or {}
    c.per_node = per_node or {}
    c.replace_bootstrap = {}
    return c


@contextmanager
def cluster_workspace(request: pytest.FixtureRequest, prefix: str) -> Iterator[tuple[Path, list]]:
    """A temp dir and a list for the clusters a test makes in it. Afterwards every cluster is
    stopped; after a failed test their logs are printed and the dir is kept, else it is removed."""
    base = make_tempdir(prefix)
    made: list = []
    try:
        yield base, made
    finally:
        for cluster in made:
            cluster.stop()
        keep_if_failed(request, base, [n for c in made for n in c.nodes])


def workspace_fixture(prefix: str):
    """A module's `tmp_base` fixture: (temp dir, list of the clusters made in it), as cluster_workspace."""

    @pytest.fixture
    def tmp_base(request: pytest.FixtureRequest) -> Iterator[tuple[Path, list]]:
        with cluster_workspace(request, prefix) as base_and_made:
            yield base_and_made

    return tmp_base


def server_dir(path: Path) -> Path:
    """A directory the PostgreSQL OS user owns (archives, repositories, script records)."""
    server_user().make_dir(path, 0o755)
    return path


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def pg_bin(program: str) -> str:
    return os.path.join(find_bin_dir(None), program)


def patch_config(cluster: LocalCluster, node_name: str, body: dict) -> dict:
    node = cluster.node(node_name)
    req = urllib.request.Request(node.api_url + "/config", json.dumps(body).encode(), method="PATCH",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def log_text(node) -> str:
    return node.log_path.read_text(errors="replace") if node.log_path.exists() else ""


def query(node, sql: str, *args: Any):
    import psycopg

    try:
        with node.connect() as conn:
            return conn.execute(sql, args or None).fetchall()
    except psycopg.Error:
        return None


class PgBackRest:
    """A pgBackRest repository in a temp dir, with one stanza for a cluster's primary."""

    def __init__(self, base: Path, stanza: str, pg_data: Path, pg_port: int, socket_dir: Path) -> None:
        self.stanza = stanza
        root = server_dir(base / "pgbackrest")
        for sub in ("repo", "log", "lock", "spool"):
            server_dir(root / sub)
        self.conf = root / "pgbackrest.conf"
        self.conf.write_text(
            "[global]\n"
            f"repo1-path={root / 'repo'}\nlog-path={root / 'log'}\nlock-path={root / 'lock'}\n"
            f"spool-path={root / 'spool'}\nlog-level-console=warn\nlog-level-file=detail\nstart-fast=y\n"
            "compress-type=none\n\n"
            f"[{stanza}]\npg1-path={pg_data}\npg1-port={pg_port}\npg1-socket-path={socket_dir}\npg1-user=postgres\n"
        )
        os.chmod(self.conf, 0o644)

    @property
    def base_cmd(self) -> str:
        return f"{shutil.which('pgbackrest') or 'pgbackrest'} --config={self.conf} --stanza={self.stanza}"

    @property
    def archive_command(self) -> str:
        return f"{self.base_cmd} archive-push %p"

    def restore_command(self, pg_data: Path) -> str:
        # archive-get checks that it runs in the data directory named by pg1-path.
        return f'{self.base_cmd} --pg1-path={pg_data} archive-get %f "%p"'

    def run(self, *args: str, timeout: float = 300) -> str:
        res = run_as(server_user(), [*self.base_cmd.split(), *args], capture_output=True, text=True,
                     timeout=timeout, cwd="/", env=dict(os.environ))
        if res.returncode != 0:
            raise RuntimeError(f"pgbackrest {' '.join(args)} failed ({res.returncode}): {res.stdout}{res.stderr}")
        return res.stdout

    def info(self) -> list[dict]:
        return json.loads(self.run("info", "--output=json"))


def have_pgbackrest() -> bool:
    return shutil.which("pgbackrest") is not None



def sysid(cluster: LocalCluster, node) -> str:
    """The node's database system identifier, read from the server (waits out a busy moment)."""
    rows = cluster.wait_for(lambda: query(node, "SELECT system_identifier::text FROM pg_control_system()"), 30,
                            f"{node.name} answering")
    return rows[0][0]
