"""Settings accepted but not acted on (hatui.notbuilt) and `hatui validate` (Patroni's --validate-config)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hatui.cli.main import cli
from hatui.notbuilt import NOT_ACTED_ON, dynamic_findings, node_findings

NODE = """\
scope: batman
name: pg0
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
etcd3: {hosts: 127.0.0.1:2379}
zookeeper: {hosts: [127.0.0.1:2181]}
citus: {group: 0, database: citus}
bootstrap:
  method: initdb
  post_bootstrap: /usr/local/bin/setup.sh
  dcs:
    ttl: 30
    standby_cluster: {host: 10.0.0.1, port: 5432}
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /var/lib/hatui/pg0
  create_replica_methods: [basebackup]
  pgpass: /tmp/pgpass
"""


def test_each_setting_found_once_with_its_key() -> None:
    from ruamel.yaml import YAML

    found = {i.path: i for i in node_findings(YAML(typ="safe").load(NODE))}
    # post_bootstrap and standby_cluster are acted on since issue 15: no warning for them.
    assert set(found) == {"zookeeper", "citus", "postgresql.pgpass"}
    # initdb as the method and basebackup as the only replica method are what hatui does: no warning.
    assert all(i.severity == "warning" and "accepted but not acted on" in i.message for i in found.values())


def test_dynamic_findings() -> None:
    issues = dynamic_findings({"standby_cluster": {"host": "x"}, "primary_stop_timeout": 0,
                               "postgresql": {"recovery_conf": {"a": 1}}, "primary_race_backoff": 3})
    assert [i.path for i in issues] == ["primary_race_backoff"]


def test_validate_prints_findings_and_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "node.yml"
    path.write_text(NODE)
    res = CliRunner().invoke(cli, ["validate", str(path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[-1] == f"{path}: valid (0 errors, 3 warnings)"
    assert f"{path}:18:11: warning: postgresql.pgpass: accepted but not acted on" in res.output
    assert sum("zookeeper" in line for line in lines) == 1  # the validator's own warning, not a second one
    path.write_text(NODE.replace("ttl: 30", "ttl: 5"))
    res = CliRunner().invoke(cli, ["validate", str(path)])
    assert res.exit_code == 1 and "error: bootstrap.dcs.ttl" in res.output
    assert res.output.splitlines()[-1].endswith("not valid (2 errors, 3 warnings)")  # ttl range + timing rule
    res = CliRunner().invoke(cli, ["validate", str(tmp_path / "missing.yml")])
    assert res.exit_code == 1 and "cannot read" in res.output


def test_readme_lists_every_setting_not_acted_on() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("### Settings accepted but not acted on"):]
    for entry in NOT_ACTED_ON:
        assert f"`{'.'.join(entry.path)}`" in section, entry.path
