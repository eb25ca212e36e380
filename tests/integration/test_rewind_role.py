"""The daemon's bootstrap creates the rewind role with only what pg_rewind needs, and pg_rewind
works with it: real etcd, real PostgreSQL, a split brain rewound away by a non-superuser.

Before, the daemon's bootstrap asked for a role helper that did not exist and fell back to
making the rewind user a SUPERUSER; the tested `queries.setup_roles` is now the one it runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from clusterkit import split_brain_rewound
from hatui.launcher import LocalCluster
from servers import keep_if_failed, make_tempdir

pytestmark = pytest.mark.integration

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
REWIND_USER, REWIND_PASSWORD = "rewinder", "rewind-pass"


def _write_configs(cluster: LocalCluster) -> None:
    """The launcher's node files with a rewind role of its own (not the superuser), and every
    connection logged so the test can see whom pg_rewind logged in as."""
    yaml = YAML()
    (cluster.base_dir / "data").mkdir(exist_ok=True)
    cluster.base_dir.joinpath("data").chmod(0o755)
    for node in cluster.nodes:
        cfg = cluster.node_config(node)
        cfg["postgresql"]["authentication"]["rewind"] = {"username": REWIND_USER, "password": REWIND_PASSWORD}
        cfg["postgresql"]["parameters"]["log_connections"] = "on"
        with open(node.config_path, "w") as f:
            yaml.dump(cfg, f)


def _server_logs(cluster: LocalCluster, name: str) -> str:
    log_dir = Path(cluster.base_dir) / "data" / f"{name}-log"
    return "".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("*")) if p.is_file())


@pytest.fixture
def cluster(request: pytest.FixtureRequest):
    base = make_tempdir("hatui-rewind-role-")
    c = LocalCluster(base, 2, dcs=dict(FAST), extra_node={"fencing": {"enabled": False}})
    try:
        _write_configs(c)
        c.start()
        c.wait_for(lambda: c.nodes[1].is_streaming(), 90, "postgresql1 streaming")
        yield c
    finally:
        c.stop()
        keep_if_failed(request, base, c.nodes)


def test_rewind_role_is_not_superuser_and_pg_rewind_works_with_it(cluster) -> None:
    old, new = cluster.node("postgresql0"), cluster.node("postgresql1")
    with old.connect() as conn:
        row = conn.execute("SELECT rolsuper, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = %s",
                           (REWIND_USER,)).fetchone()
        assert row == (False, False, True), f"rewind role attributes (super, replication, login): {row}"
        for fn in ("pg_catalog.pg_ls_dir(text, boolean, boolean)", "pg_catalog.pg_stat_file(text, boolean)",
                   "pg_catalog.pg_read_binary_file(text)",
                   "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)"):
            granted = conn.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (REWIND_USER, fn))
            assert granted.fetchone() == (True,), fn
        conn.execute("CREATE TABLE before_split (id int)")

    # A split brain: the old primary's daemon dies, its PostgreSQL keeps taking writes.
    split_brain_rewound(cluster, old, new)
    assert "pg_rewind exit code=0" in old.log_path.read_text()
    # pg_rewind read the new leader's files as the rewind role, not as the superuser.
    assert f"user={REWIND_USER}" in _server_logs(cluster, new.name)
