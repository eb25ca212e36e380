"""`hatui validate` shows what the daemon reads: the node file with PATRONI_*/HATUI_* variables over it."""

from __future__ import annotations

from click.testing import CliRunner

from hatui.cli.main import cli

NODE = ("scope: batman\nname: pg0\nrestapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
        "etcd3: {hosts: 127.0.0.1:2379}\npostgresql:\n  listen: 127.0.0.1:5432\n  data_dir: /d\n"
        "  connect_address: 127.0.0.1:5432\n"
        "  authentication: {superuser: {username: postgres, password: s3cret}}\n")


def test_merged_result_is_shown_with_variables_marked_and_passwords_hidden(tmp_path) -> None:
    f = tmp_path / "node.yml"
    f.write_text(NODE)
    env = {"PATRONI_NAME": "from-env", "PATRONI_REPLICATION_PASSWORD": "rep"}
    res = CliRunner().invoke(cli, ["validate", str(f), "--show"], env=env)
    assert res.exit_code == 0, res.output
    assert "name: from-env  # from $PATRONI_NAME" in res.output
    assert "s3cret" not in res.output and ": rep" not in res.output and "<hidden>" in res.output
    assert "data_dir: /d" in res.output
    assert f"{f}: valid (0 errors" in res.output and "with $PATRONI_NAME, $PATRONI_REPLICATION_PASSWORD" in res.output


def test_error_names_the_line_or_the_variable_and_exits_1(tmp_path) -> None:
    f = tmp_path / "node.yml"
    f.write_text(NODE.replace("data_dir: /d", "data_dir: [not, a, path]"))
    res = CliRunner().invoke(cli, ["validate", str(f)], env={"PATRONI_RESTAPI_LISTEN": "127.0.0.1:nope"})
    assert res.exit_code == 1
    assert f"{f}:7:" in res.output and "(from $PATRONI_RESTAPI_LISTEN)" in res.output


def test_variables_alone(tmp_path) -> None:
    env = {"PATRONI_SCOPE": "s", "PATRONI_NAME": "n1", "PATRONI_ETCD3_HOSTS": "127.0.0.1:2379",
           "PATRONI_RESTAPI_LISTEN": "127.0.0.1:8008", "PATRONI_POSTGRESQL_LISTEN": "127.0.0.1:5432",
           "PATRONI_POSTGRESQL_DATA_DIR": "/d"}
    res = CliRunner().invoke(cli, ["validate"], env=env)
    assert res.exit_code == 0, res.output
    assert "environment: valid" in res.output
    assert CliRunner().invoke(cli, ["validate"], env={}).exit_code == 1
