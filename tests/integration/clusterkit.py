"""Clusters with edited node files, and small SQL/REST helpers, for the issue-14 integration tests."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from servers import keep_if_failed, make_tempdir

from hatui.launcher import LocalCluster, LocalNode

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
SMALL_WAL = {"wal_keep_size": "16MB", "max_wal_size": "32MB", "min_wal_size": "32MB"}


def build(base: Path, nodes: int, dcs_extra: dict | None = None, params: dict | None = None,
          node_extra: dict | None = None) -> LocalCluster:
    """A cluster whose node files get extra bootstrap.dcs keys, parameters and node keys before the start."""
    cluster = LocalCluster(base, nodes, dcs=dict(FAST))
    cluster.write_configs()
    yaml = YAML()
    for node in cluster.nodes:
        cfg = yaml.load(node.config_path.read_text())
        dcs = cfg["bootstrap"]["dcs"]
        dcs.update(dcs_extra or {})
        dcs["postgresql"]["parameters"].update(params or {})
        for key, value in (node_extra or {}).get(node.name, {}).items():
            section, _, sub = key.partition(".")
            if sub:
                cfg.setdefault(section, {})[sub] = value
            else:
                cfg[key] = value
        with open(node.config_path, "w") as fh:
            yaml.dump(cfg, fh)
    return cluster


def cluster_factory(request: pytest.FixtureRequest) -> Iterator:
    made: list[tuple[LocalCluster, Path]] = []

    def _make(nodes: int = 2, not_streaming: tuple[str, ...] = (), **kw) -> LocalCluster:
        """not_streaming: replicas that only have to be running (a nostream member never streams)."""
        base = make_tempdir("hatui-slots-")
        cluster = build(base, nodes, **kw)
        made.append((cluster, base))
        cluster.start()
        for node in cluster.nodes[1:]:
            if node.name in not_streaming:
                cluster.wait_for(lambda n=node: n.patroni().get("state") == "running", 120, f"{node.name} running")
            else:
                cluster.wait_for(lambda n=node: n.is_streaming(), 120, f"{node.name} streaming")
        return cluster

    yield _make
    for cluster, base in made:
        cluster.stop()
        keep_if_failed(request, base, cluster.nodes, 80)


def split_brain_rewound(cluster: LocalCluster, old: LocalNode, new: LocalNode) -> None:
    """A split brain and its repair: the old primary's daemon dies, `new` is promoted, the old
    primary's PostgreSQL (unmanaged now) takes a write (table splitbrain); started again, its
    daemon makes it a replica of `new` without that write, keeping table before_split (made
    by the caller before the split)."""
    cluster.kill_node(old.name, postgres_too=False)
    cluster.wait_for(lambda: new.is_writable(), 90, f"{new.name} promoted")
    with old.connect() as conn:
        conn.execute("CREATE TABLE splitbrain ()")
    cluster.start_node(cluster.nodes.index(old))
    cluster.wait_for(lambda: old.is_streaming(), 90, "the old primary rejoins as a replica")
    with old.connect() as conn:
        assert conn.execute("SELECT to_regclass('splitbrain')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('before_split')").fetchone() == ("before_split",)


def sql(node: LocalNode, query: str, *args) -> list[tuple]:
    with node.connect() as conn:
        cur = conn.execute(query, args or None)
        return cur.fetchall() if cur.description else []


def slots_on(node: LocalNode) -> dict[str, tuple]:
    """slot name -> (type, active, restart_lsn as bytes)."""
    try:
        rows = sql(node, "SELECT slot_name, slot_type, active, pg_wal_lsn_diff(restart_lsn, '0/0')::bigint "
                         "FROM pg_replication_slots")
    except Exception:  # noqa: BLE001 - a server restarting: ask again
        return {}
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def rest(node: LocalNode, method: str, path: str, body: dict) -> int:
    req = urllib.request.Request(node.api_url + path, json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def host_pids(node: LocalNode) -> list[int]:
    """The daemon, its fencing guard, the postmaster and its children: what a host crash takes down."""
    from servers import live_processes, process_args

    daemon = node.daemon.pid if node.daemon else None
    postmaster = node.postmaster_pid()
    pids = []
    for pid, ppid in live_processes():
        if pid in (daemon, postmaster) or (postmaster and ppid == postmaster) or b"hatui.daemon.fence" in process_args(pid) and str(daemon).encode() in process_args(pid):
            pids.append(pid)
    return pids


def crash_host(node: LocalNode) -> None:
    """SIGKILL to every process of the node at once (SIGSTOP first, so none reacts to another's death)."""
    import os
    import signal

    pids = host_pids(node)
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass  # a short-lived backend that ended on its own
    if node.daemon is not None and node.daemon.popen is not None:
        node.daemon.popen.wait()
