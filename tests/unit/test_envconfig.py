"""PATRONI_* / HATUI_* variables as node settings (hatui/envconfig.py), no servers needed."""

from __future__ import annotations

import pytest

from hatui import envconfig
from hatui.config import ConfigError

NODE_ENV = {
    "PATRONI_SCOPE": "batman",
    "PATRONI_NAME": "pg1",
    "PATRONI_ETCD3_HOSTS": "'127.0.0.1:2379','127.0.0.1:2380'",
    "PATRONI_RESTAPI_LISTEN": "127.0.0.1:8008",
    "PATRONI_RESTAPI_CONNECT_ADDRESS": "127.0.0.1:8008",
    "PATRONI_POSTGRESQL_LISTEN": "127.0.0.1:5432",
    "PATRONI_POSTGRESQL_DATA_DIR": "/tmp/data/pg1",
    "PATRONI_REPLICATION_USERNAME": "replicator",
    "PATRONI_REPLICATION_PASSWORD": "rep-pass",
    "PATRONI_SUPERUSER_USERNAME": "postgres",
    "PATRONI_SUPERUSER_PASSWORD": "zalando",
    "PATRONI_LOG_FILE_NUM": "3",
    "PATRONI_LOG_LOGGERS": "hatui.api: WARNING",
    "PATRONI_LOG_DEDUPLICATE_HEARTBEAT_LOGS": "true",
    "HATUI_TAGS": "{nofailover: true}",
    "UNRELATED": "x",
}


def test_patroni_mapping_builds_a_whole_node_without_a_file() -> None:
    env = dict(NODE_ENV)
    node = envconfig.load_node(None, env, pop=True)
    assert (node.scope, node.name) == ("batman", "pg1")
    assert node.etcd_hosts == ["127.0.0.1:2379", "127.0.0.1:2380"]
    assert node.restapi_listen == ("127.0.0.1", 8008)
    assert node.pg_listen == ("127.0.0.1", 5432) and node.data_dir == "/tmp/data/pg1"
    auth = node.raw["postgresql"]["authentication"]
    assert auth["replication"] == {"username": "replicator", "password": "rep-pass"}
    assert auth["superuser"]["password"] == "zalando"
    assert node.raw["log"]["file_num"] == 3 and node.raw["log"]["loggers"] == {"hatui.api": "WARNING"}
    assert node.raw["log"]["deduplicate_heartbeat_logs"] is True
    assert node.tags.nofailover is True
    # Used variables leave the environment (children never see the passwords); others stay.
    assert env == {"UNRELATED": "x"}


def test_a_variable_overrides_the_file_and_hatui_spelling_wins(tmp_path) -> None:
    f = tmp_path / "node.yml"
    f.write_text("scope: batman\nname: from-file\nrestapi: {listen: 127.0.0.1:8008}\n"
                 "etcd3: {hosts: 127.0.0.1:2379}\npostgresql: {listen: 127.0.0.1:5432, data_dir: /d}\n")
    env = {"PATRONI_NAME": "patroni-name", "HATUI_NAME": "hatui-name", "PATRONI_POSTGRESQL_DATA_DIR": "/env"}
    node = envconfig.load_node(f, env)
    assert node.name == "hatui-name" and node.data_dir == "/env"
    assert node.pg_listen == ("127.0.0.1", 5432)  # the file's, untouched
    assert env["PATRONI_NAME"] == "patroni-name"  # pop=False leaves the environment alone


def test_bad_variable_is_named_in_the_error(tmp_path) -> None:
    env = dict(NODE_ENV, PATRONI_RESTAPI_LISTEN="127.0.0.1:notaport")
    with pytest.raises(ConfigError) as err:
        envconfig.load_node(None, env)
    assert "$PATRONI_RESTAPI_LISTEN" in str(err.value)


def test_nothing_at_all_is_one_clear_error() -> None:
    with pytest.raises(ConfigError) as err:
        envconfig.load_node(None, {})
    assert "no node file and no PATRONI_*" in str(err.value)


def test_old_log_names_and_whole_configuration() -> None:
    overlay, _ = envconfig.environment_config({"PATRONI_LOGLEVEL": "DEBUG"})
    assert overlay == {"log": {"level": "DEBUG"}}
    overlay, _ = envconfig.environment_config({"PATRONI_LOGLEVEL": "DEBUG", "PATRONI_LOG_LEVEL": "ERROR"})
    assert overlay == {"log": {"level": "ERROR"}}
    whole = ("scope: s\nname: node1\nrestapi: {listen: 127.0.0.1:8008}\netcd3: {hosts: h:2379}\n"
             "postgresql: {listen: 127.0.0.1:5432, data_dir: /d}\n")
    node = envconfig.load_node(None, {"PATRONI_CONFIGURATION": whole, "PATRONI_NAME": "ignored"})
    assert node.name == "node1"


def test_merge_is_deep() -> None:
    assert envconfig.merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}, "d": 1}
