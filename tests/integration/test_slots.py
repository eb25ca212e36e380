"""Member replication slots against real etcd and PostgreSQL (issue 14, item 1).

A small max_wal_size and wal_keep_size 16MB (the least allowed) make PostgreSQL recycle WAL as soon as nothing holds it:
only the member slot keeps what a stopped replica still needs.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from servers import make_tempdir, print_logs, remove_tree

from hatui.launcher import LocalCluster, LocalNode

pytestmark = pytest.mark.integration

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


@pytest.fixture
def make(request: pytest.FixtureRequest) -> Iterator:
    made: list[tuple[LocalCluster, Path]] = []

    def _make(nodes: int = 2, **kw) -> LocalCluster:
        base = make_tempdir("hatui-slots-")
        cluster = build(base, nodes, **kw)
        made.append((cluster, base))
        cluster.start()
        for node in cluster.nodes[1:]:
            cluster.wait_for(lambda n=node: n.is_streaming(), 120, f"{node.name} streaming")
        return cluster

    yield _make
    failed = getattr(request.node, "_hatui_rep_call", None)
    for cluster, base in made:
        cluster.stop()
        if failed is not None and failed.failed:
            print_logs(cluster.nodes, 80)
            print(f"logs kept in {base}")
        else:
            remove_tree(base)


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


def test_member_slots_keep_wal_for_a_stopped_replica_and_follow_a_switchover(make) -> None:
    cluster = make(3, params=SMALL_WAL)
    p0, p1, p2 = cluster.nodes
    # The primary holds an active physical slot per replica, named after the member.
    cluster.wait_for(lambda: {k: v[1] for k, v in slots_on(p0).items()} == {"postgresql1": True,
                                                                            "postgresql2": True},
                     30, "active slots postgresql1 and postgresql2 on the primary")
    assert sql(p1, "SHOW primary_slot_name") == [("postgresql1",)]
    # Each replica keeps a slot for every other member (Patroni 4.1 with member_slots_ttl > 0).
    cluster.wait_for(lambda: set(slots_on(p1)) == {"postgresql0", "postgresql2"}, 30, "member slots on a replica")
    status = json.loads(cluster.etcd_get("/service/batman/status"))
    assert {"postgresql0", "postgresql1", "postgresql2"} <= set(status["slots"])
    assert status["retain_slots"] == ["postgresql0", "postgresql1", "postgresql2"]

    # Stop postgresql2 (daemon and PostgreSQL), write far more WAL than the primary keeps on its own.
    marker = p2.data_dir / "hatui-test-marker"
    marker.write_text("not re-cloned")
    p2.daemon.stop(timeout=60)
    cluster.wait_for(lambda: not p2.postmaster_pid(), 30, "postgresql2 stopped")
    stopped_at = sql(p0, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")[0][0]
    sql(p0, "CREATE TABLE big (id int, pad text)")
    for i in range(4):
        sql(p0, "INSERT INTO big SELECT g, repeat('x', 900) FROM generate_series(1, 40000) g")
        sql(p0, "CHECKPOINT")
    written = sql(p0, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")[0][0] - stopped_at
    assert written > (16 + 3 * 32) * 1024 * 1024, "the test must write more WAL than max_wal_size keeps"
    # The slot of the gone member is still there (member_slots_ttl), holding its WAL.
    slot = slots_on(p0)["postgresql2"]
    assert slot[1] is False and slot[2] <= stopped_at
    log_before = len(p2.log_path.read_text())
    cluster.start_node(2)
    cluster.wait_for(lambda: p2.is_streaming(), 120, "postgresql2 streaming again")
    assert marker.read_text() == "not re-cloned"
    assert "pg_basebackup" not in p2.log_path.read_text()[log_before:]
    cluster.wait_for(lambda: sql(p2, "SELECT count(*) FROM big") == [(160000,)], 60, "all rows on postgresql2")

    # Switchover to postgresql1: it already has slots for the others, none for itself.
    assert rest(p0, "POST", "/switchover", {"leader": "postgresql0", "candidate": "postgresql1"}) == 200
    cluster.wait_for(lambda: cluster.leader() == "postgresql1", 60, "postgresql1 leading")
    cluster.wait_for(lambda: {k: v[1] for k, v in slots_on(p1).items()} == {"postgresql0": True,
                                                                            "postgresql2": True},
                     60, "the new primary streaming to both through their slots")
    cluster.wait_for(lambda: p0.is_streaming(), 60, "old primary streaming")
    assert sql(p0, "SHOW primary_slot_name") == [("postgresql0",)]
    # The old primary no longer holds a slot of its own new upstream's name... it keeps copies for
    # the others, not one for itself.
    cluster.wait_for(lambda: set(slots_on(p0)) == {"postgresql1", "postgresql2"}, 30, "slots on the old primary")

    # member_slots_ttl: a member gone longer than that loses its slot.
    assert rest(p1, "PATCH", "/config", {"member_slots_ttl": 3}) == 200
    p2.daemon.stop(timeout=60)
    cluster.wait_for(lambda: "postgresql2" not in slots_on(p1), 60, "the gone member's slot dropped after 3 s")
    assert "for absent cluster member is expired after 3 sec" in p1.log_path.read_text()
