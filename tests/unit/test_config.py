"""Unit tests of hatui.config: node files, the dynamic config, the one validator, editing helpers."""

from __future__ import annotations

import json
import textwrap

import pytest

from hatui.config import (
    DEFAULT_DYNAMIC,
    OWNED_GUCS,
    ConfigError,
    DynamicConfig,
    Issue,
    NodeConfig,
    apply_edits,
    config_diff,
    dump_yaml,
    effective_parameters,
    effective_parameters_report,
    errors,
    load_node_config,
    normalize_namespace,
    parse_duration,
    parse_node_config,
    parse_value,
    parse_yaml_document,
    safe_dynamic,
    set_path,
    split_host_port,
    validate_dynamic,
    validate_dynamic_text,
    validate_node,
)

# The cluster configuration as the talk shows it before its first edit.
TALK_CONFIG = {
    "loop_wait": 10,
    "maximum_lag_on_failover": 1048576,
    "postgresql": {"parameters": {"max_connections": 100}, "use_pg_rewind": True},
    "retry_timeout": 10,
    "ttl": 30,
}

POSTGRES0_YML = """\
scope: batman
#namespace: /service/
name: postgresql0

restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
#  certfile: /etc/ssl/certs/ssl-cert-snakeoil.pem
#  keyfile: /etc/ssl/private/ssl-cert-snakeoil.key
  authentication:
    username: username
    password: password

etcd:
  host: 127.0.0.1:2379

bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters:
        max_connections: 100

  initdb:
  - encoding: UTF8
  - data-checksums

  pg_hba:
  - host replication replicator 127.0.0.1/32 md5
  - host all all 0.0.0.0/0 md5

  users:
    admin:
      password: admin
      options:
        - createrole
        - createdb

postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: data/postgresql0
  pgpass: /tmp/pgpass0
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: zalando
    rewind:
      username: rewind_user
      password: rewind_password
  parameters:
    unix_socket_directories: '.'

tags:
    nofailover: false
    noloadbalance: false
    clonefrom: false
    nosync: false
"""


def messages(issues: list[Issue]) -> list[str]:
    return [i.message for i in issues]


def error_messages(issues: list[Issue]) -> list[str]:
    return [i.message for i in errors(issues)]


def by_path(issues: list[Issue], path: str) -> list[Issue]:
    return [i for i in issues if i.path == path]


# ----------------------------------------------------------------------------------------------------------------
# The talk's edits


def test_talk_config_is_valid():
    assert errors(validate_dynamic(TALK_CONFIG)) == []


def test_talk_adds_work_mem_and_raises_max_connections():
    edited = set_path(TALK_CONFIG, "postgresql.parameters.work_mem", "8MB")
    edited = set_path(edited, "postgresql.parameters.max_connections", "101")
    assert edited["postgresql"]["parameters"] == {"max_connections": 101, "work_mem": "8MB"}
    assert validate_dynamic(edited) == []
    # the original is untouched: set_path returns a new dict
    assert TALK_CONFIG["postgresql"]["parameters"] == {"max_connections": 100}


def test_talk_timing_change_is_valid():
    cfg = {**TALK_CONFIG, "ttl": 60, "loop_wait": 5, "retry_timeout": 27}
    assert errors(validate_dynamic(cfg)) == []


def test_talk_bad_timing_is_refused_with_the_exact_sentence():
    text = textwrap.dedent("""\
        loop_wait: 10
        maximum_lag_on_failover: 1048576
        postgresql:
          parameters:
            work_mem: 8MB
            max_connections: 101
          use_pg_rewind: true
        retry_timeout: 27
        ttl: 5
        """)
    data, issues = validate_dynamic_text(text)
    assert data["ttl"] == 5
    errs = error_messages(issues)
    assert "ttl: 5 must be >= loop_wait + 2 * retry_timeout = 10 + 2 * 27 = 64" in errs
    assert "ttl: 5 must be >= 20" in errs
    timing = next(i for i in issues if i.rule == "timing")
    assert (timing.path, timing.value, timing.severity) == ("ttl", 5, "error")
    assert (timing.line, timing.column) == (9, 6)  # points at the value 5


def test_timing_rule_with_default_ttl_says_so():
    issues = validate_dynamic({"retry_timeout": 27})
    assert error_messages(issues) == [
        "ttl: 30 (the default) must be >= loop_wait + 2 * retry_timeout = 10 + 2 * 27 = 64"
    ]


def test_timing_rule_boundary():
    assert errors(validate_dynamic({"ttl": 30, "loop_wait": 10, "retry_timeout": 10})) == []
    assert errors(validate_dynamic({"ttl": 29, "loop_wait": 10, "retry_timeout": 10})) != []


# ----------------------------------------------------------------------------------------------------------------
# YAML parsing


def test_malformed_yaml_reports_line_and_column():
    data, issues = parse_yaml_document("ttl: 30\nloop_wait: 10\nfoo: bar: baz\n")
    assert data is None
    assert len(issues) == 1
    issue = issues[0]
    assert (issue.line, issue.column, issue.severity) == (3, 9, "error")
    assert issue.message == "YAML syntax error at line 3, column 9: mapping values are not allowed here"


def test_malformed_yaml_through_validate_dynamic_text():
    data, issues = validate_dynamic_text("postgresql:\n  parameters:\n\twork_mem: 8MB\n")
    assert data is None
    assert issues[0].message.startswith("YAML syntax error at line 3, column 1: ")
    assert "'\\t'" in issues[0].message


def test_duplicate_keys_are_a_syntax_error():
    data, issues = parse_yaml_document("ttl: 30\nttl: 40\n")
    assert data is None and issues[0].line == 2
    assert "duplicate key" in issues[0].message


def test_yaml_is_read_as_yaml_1_1_like_patroni():
    data, issues = parse_yaml_document("a: on\nb: off\nc: yes\nd: 8MB\ne: '8MB'\nf: 0.9\n")
    assert issues == []
    assert data == {"a": True, "b": False, "c": True, "d": "8MB", "e": "8MB", "f": 0.9}
    assert all(type(v) in (bool, str, float) for v in data.values())
    assert json.loads(json.dumps(data)) == data


def test_yaml_is_converted_to_plain_types():
    data, _ = parse_yaml_document("a: &x [1, {b: 2}]\nc: *x\nd: 2018-01-18\ne: !custom text\nf: 0x10\n")
    assert data == {"a": [1, {"b": 2}], "c": [1, {"b": 2}], "d": "2018-01-18", "e": "text", "f": 16}
    assert data["a"] is not data["c"]  # aliases are expanded into independent copies
    assert type(data["f"]) is int and type(data["a"]) is list and type(data["a"][1]) is dict
    json.dumps(data)


def test_empty_document_is_an_empty_config():
    assert parse_yaml_document("") == ({}, [])
    assert parse_yaml_document("# only a comment\n") == ({}, [])
    assert validate_dynamic_text("")[1] == []


def test_alias_bomb_is_an_error_not_an_explosion():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    data, issues = parse_yaml_document("\n".join(lines) + "\n")
    assert data is None
    assert issues[0].rule == "size" and "aliases" in issues[0].message


def test_multiple_documents_are_refused():
    data, issues = parse_yaml_document("a: 1\n---\nb: 2\n")
    assert data is None
    assert "expected a single document" in issues[0].message and issues[0].line == 2


def test_non_utf8_bytes():
    data, issues = parse_yaml_document(b"ttl: \xff\xfe\n")
    assert data is None and "UTF-8" in issues[0].message


# ----------------------------------------------------------------------------------------------------------------
# Validator: structure, types, ranges


def test_wrong_top_level_type_is_one_clear_error():
    for value in ([1, 2], "ttl: 30", 42, None, True):
        issues = validate_dynamic(value)
        assert len(issues) == 1 and issues[0].severity == "error" and issues[0].path == ""
        assert "must be a mapping" in issues[0].message
    _, issues = validate_dynamic_text("- ttl: 30\n")
    assert messages(issues) == [
        "the configuration must be a mapping of settings (key: value lines), not a list"
    ]


def test_unknown_key_is_a_warning_with_position_and_suggestion():
    _data, issues = validate_dynamic_text("ttl: 30\nloop_wiat: 10\n")
    assert errors(issues) == []
    [issue] = issues
    assert (issue.path, issue.rule, issue.severity, issue.line, issue.column) == (
        "loop_wiat",
        "unknown_key",
        "warning",
        2,
        1,
    )
    assert "did you mean loop_wait?" in issue.message


def test_node_settings_in_cluster_config_are_warned_about():
    issues = validate_dynamic({"scope": "batman", "postgresql": {"data_dir": "/x", "parameters": {}}})
    assert errors(issues) == []
    assert {i.path for i in issues} == {"scope", "postgresql.data_dir"}
    assert all(i.rule == "misplaced" for i in issues)


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("ttl", "30", "ttl: '30' must be an integer, not a string"),
        ("ttl", 30.5, "ttl: 30.5 must be an integer, not a number"),
        ("loop_wait", True, "loop_wait: true must be an integer, not a boolean"),
        ("retry_timeout", [1], "retry_timeout: a list must be an integer, not a list"),
        ("maximum_lag_on_failover", "1MB", "maximum_lag_on_failover: '1MB' must be an integer, not a string"),
        ("check_timeline", "yes", "check_timeline: 'yes' must be true or false, not a string"),
        ("failsafe_mode", 1, "failsafe_mode: 1 must be true or false, not an integer"),
        ("pause", "true", "pause: 'true' must be true or false, not a string"),
        ("postgresql", [], "postgresql: must be a mapping (key: value lines), not a list"),
    ],
)
def test_wrong_types(key, value, expected):
    assert expected in error_messages(validate_dynamic({key: value}))


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("ttl", 19, "ttl: 19 must be >= 20"),
        ("loop_wait", 0, "loop_wait: 0 must be >= 1"),
        ("retry_timeout", 2, "retry_timeout: 2 must be >= 3"),
        ("synchronous_node_count", 0, "synchronous_node_count: 0 must be >= 1"),
        ("primary_start_timeout", -1, "primary_start_timeout: -1 must be >= 0"),
    ],
)
def test_minimums(key, value, expected):
    assert expected in error_messages(validate_dynamic({key: value}))


def test_huge_values_are_errors_not_crashes():
    issues = validate_dynamic({"ttl": 2**31, "loop_wait": 10**100, "retry_timeout": 10})
    assert "ttl: 2147483648 is too large (the maximum is 2147483647)" in error_messages(issues)
    assert any(i.path == "loop_wait" and i.rule == "maximum" for i in errors(issues))
    big = "x" * (1024 * 1024 + 1)
    issues = validate_dynamic({"postgresql": {"parameters": {"application_name": big}}})
    assert [i.rule for i in errors(issues)] == ["size"]
    assert errors(validate_dynamic({"maximum_lag_on_failover": float("inf")}))
    issues = validate_dynamic({"postgresql": {"parameters": {"work_mem": 10**40}}})
    assert any("out of range" in m for m in error_messages(issues))


def test_synchronous_mode_values():
    for ok in (True, False, "on", "off", "quorum", "true", "Quorum"):
        assert errors(validate_dynamic({"synchronous_mode": ok})) == [], ok
    issues = validate_dynamic({"synchronous_mode": "sometimes"})
    assert error_messages(issues) == [
        "synchronous_mode: 'sometimes' must be one of: off, on, quorum (or true/false)"
    ]
    assert errors(validate_dynamic({"synchronous_mode": 2}))


def test_null_values_warn_and_defaults_apply():
    issues = validate_dynamic({"ttl": None, "pause": None})
    assert errors(issues) == []
    assert messages(issues) == ["ttl: has no value; the default 30 applies"]


def test_old_names_are_accepted():
    issues = validate_dynamic({"master_start_timeout": 60})
    assert errors(issues) == [] and issues[0].rule == "old_name"
    assert DynamicConfig.from_dict({"master_start_timeout": 60}).primary_start_timeout == 60


def test_slots_and_standby_cluster():
    good = {
        "slots": {"logical_slot": {"type": "logical", "database": "app", "plugin": "pgoutput"}, "phys": None},
        "ignore_slots": [{"name": "ignored", "type": "physical"}],
        "standby_cluster": {"host": "10.0.0.1", "port": 5432, "primary_slot_name": "standby"},
    }
    assert validate_dynamic(good) == []
    bad = {"slots": {"Bad-Name": {"type": "logical"}}, "standby_cluster": {"port": 70000}}
    paths = {i.path for i in errors(validate_dynamic(bad))}
    assert paths == {
        "slots.Bad-Name",
        "slots.Bad-Name.database",
        "slots.Bad-Name.plugin",
        "standby_cluster.port",
    }


def test_member_slots_ttl_accepts_durations():
    assert validate_dynamic({"member_slots_ttl": "30min"}) == []
    assert DynamicConfig.from_dict({"member_slots_ttl": "30min"}).member_slots_ttl == 1800
    assert DynamicConfig.from_dict({"member_slots_ttl": 0}).member_slots_ttl == 0
    assert errors(validate_dynamic({"member_slots_ttl": "soon"}))


# ----------------------------------------------------------------------------------------------------------------
# Validator: PostgreSQL parameters


def params_issues(**params) -> list[Issue]:
    return validate_dynamic({"postgresql": {"parameters": params}})


@pytest.mark.parametrize("value", ["8MB", "8 MB", "512kB", "1GB", "1.5GB", "1TB", 8192, "8192", "-1", "100B"])
def test_memory_units_valid(value):
    assert params_issues(work_mem=value, autovacuum_work_mem=value) == []


@pytest.mark.parametrize("value", ["8 MiB", "lots", "8mb", "8M", "MB", "8 MB extra", True, "", [8]])
def test_memory_units_invalid(value):
    issues = params_issues(shared_buffers=value)
    assert [i.path for i in errors(issues)] == ["postgresql.parameters.shared_buffers"]


def test_memory_message_is_for_people():
    [issue] = params_issues(work_mem="8 MiB")
    assert issue.message == (
        "postgresql.parameters.work_mem: '8 MiB' is not a valid amount of memory: "
        "use an integer with an optional unit (B, kB, MB, GB, TB), e.g. 8MB"
    )
    assert issue.rule == "syntax" and issue.value == "8 MiB"


@pytest.mark.parametrize("value", ["30s", "5min", "1h", "1d", "250ms", "100us", 0, "60", "1.5s"])
def test_time_units_valid(value):
    assert params_issues(statement_timeout=value, checkpoint_timeout=value, deadlock_timeout=value) == []


@pytest.mark.parametrize("value", ["30 seconds", "5m", "1hour", "forever", "10 sec"])
def test_time_units_invalid(value):
    issues = params_issues(checkpoint_timeout=value)
    assert [i.path for i in errors(issues)] == ["postgresql.parameters.checkpoint_timeout"]
    assert "is not a valid duration" in issues[0].message


def test_any_timeout_name_is_a_duration():
    assert errors(params_issues(my_idle_timeout="soon"))  # *_timeout follows PostgreSQL's naming
    assert params_issues(some_extension_setting="soon") == []  # unknown GUCs are not guessed at


@pytest.mark.parametrize(
    "value", ["on", "off", "true", "false", "yes", "no", "1", "0", True, False, 1, 0, "ON"]
)
def test_boolean_gucs_valid(value):
    assert params_issues(hot_standby_feedback=value, enable_seqscan=value) == []


@pytest.mark.parametrize("value", ["maybe", 2, "enabled", 1.0])
def test_boolean_gucs_invalid(value):
    issues = params_issues(fsync=value)
    assert [i.path for i in errors(issues)] == ["postgresql.parameters.fsync"]


def test_integer_gucs():
    assert params_issues(max_parallel_workers="8", autovacuum_max_workers=3) == []
    assert errors(params_issues(max_parallel_workers="eight"))
    assert errors(params_issues(autovacuum_max_workers=2.5))
    assert errors(params_issues(max_parallel_workers=2**31))


def test_enum_and_real_gucs():
    assert (
        params_issues(
            synchronous_commit="remote_apply",
            archive_mode="always",
            random_page_cost=1.1,
            checkpoint_completion_target="0.9",
            wal_level="logical",
        )
        == []
    )
    assert errors(params_issues(synchronous_commit="sometimes"))
    assert errors(params_issues(random_page_cost="fast"))
    assert errors(params_issues(wal_level="minimal"))  # replication needs replica or logical


def test_owned_guc_minimums():
    issues = params_issues(
        max_connections=10,
        max_wal_senders=2,
        max_replication_slots=1,
        max_locks_per_transaction=16,
        max_worker_processes=1,
        wal_keep_size="8MB",
    )
    by = {i.path.rsplit(".", 1)[1]: i for i in errors(issues)}
    assert set(by) == {
        "max_connections",
        "max_wal_senders",
        "max_replication_slots",
        "max_locks_per_transaction",
        "max_worker_processes",
        "wal_keep_size",
    }
    assert by["max_connections"].message == "postgresql.parameters.max_connections: 10 must be >= 25"
    assert by["max_connections"].rule == "minimum"
    assert params_issues(max_connections="101", wal_keep_size="1GB", wal_keep_segments=64) == []


def test_owned_gucs_that_must_stay_on():
    issues = params_issues(hot_standby="off", wal_log_hints=False)
    assert {i.rule for i in errors(issues)} == {"always_on"}
    assert params_issues(hot_standby="on", wal_log_hints=True) == []


def test_listen_port_cluster_name_in_parameters_are_ignored_with_a_warning():
    issues = params_issues(port=5433, listen_addresses="*", cluster_name="x")
    assert errors(issues) == [] and len(issues) == 3
    assert all(i.rule == "misplaced" for i in issues)


def test_dotted_extension_gucs_are_accepted():
    assert params_issues(**{"auto_explain.log_min_duration": "1s", "pg_stat_statements.max": 10000}) == []


def test_parameter_positions_point_at_the_value():
    text = "postgresql:\n  parameters:\n    work_mem: lots\n"
    _, issues = validate_dynamic_text(text)
    [issue] = issues
    assert (issue.path, issue.line, issue.column) == ("postgresql.parameters.work_mem", 3, 15)


def test_owned_gucs_table():
    assert OWNED_GUCS["max_connections"].default == "100" and OWNED_GUCS["max_connections"].minimum == 25
    assert OWNED_GUCS["max_locks_per_transaction"].minimum == 32
    assert OWNED_GUCS["max_worker_processes"].minimum == 2
    assert OWNED_GUCS["max_wal_senders"].minimum == 3
    assert OWNED_GUCS["max_replication_slots"].minimum == 4
    assert OWNED_GUCS["wal_keep_size"].default == "128MB"
    assert OWNED_GUCS["hot_standby"].default == "on" and OWNED_GUCS["wal_log_hints"].default == "on"


# ----------------------------------------------------------------------------------------------------------------
# DynamicConfig


def test_dynamic_defaults():
    dyn = DynamicConfig.from_dict({})
    assert (dyn.ttl, dyn.loop_wait, dyn.retry_timeout) == (30, 10, 10)
    assert dyn.maximum_lag_on_failover == 1048576 and dyn.maximum_lag_on_syncnode == -1
    assert dyn.primary_start_timeout == 300 and dyn.primary_stop_timeout == 0
    assert dyn.synchronous_mode == "off" and dyn.synchronous_node_count == 1
    assert dyn.use_slots is True and dyn.use_pg_rewind is False and dyn.pause is False
    assert dyn.parameters == {} and dyn.data == {}
    assert dyn.merged == DEFAULT_DYNAMIC
    assert DEFAULT_DYNAMIC["ttl"] == 30 and DEFAULT_DYNAMIC["member_slots_ttl"] == 1800


def test_dynamic_from_talk_config():
    dyn = DynamicConfig.from_dict({**TALK_CONFIG, "pause": True, "synchronous_mode": "quorum"})
    assert dyn.use_pg_rewind is True and dyn.parameters == {"max_connections": 100}
    assert dyn.pause and dyn.is_paused and dyn.synchronous_mode == "quorum"
    assert dyn.data["postgresql"]["use_pg_rewind"] is True
    assert dyn.merged["postgresql"]["use_slots"] is True  # default kept under the stored postgresql section


@pytest.mark.parametrize(
    "value,expected",
    [
        (True, "on"),
        (False, "off"),
        ("on", "on"),
        ("off", "off"),
        ("quorum", "quorum"),
        ("true", "on"),
        (None, "off"),
        (3, "off"),
    ],
)
def test_synchronous_mode_normalised(value, expected):
    assert DynamicConfig.from_dict({"synchronous_mode": value}).synchronous_mode == expected


def test_dynamic_from_dict_never_raises_on_bad_types():
    dyn = DynamicConfig.from_dict({"ttl": "x", "loop_wait": None, "postgresql": "nope", "pause": "yes"})
    assert dyn.ttl == 30 and dyn.loop_wait == 10 and dyn.parameters == {} and dyn.pause is True
    assert DynamicConfig.from_dict(None).ttl == 30
    assert DynamicConfig.from_dict([1, 2]).ttl == 30  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------------
# safe_dynamic: Patroni's adjustments (spec §3.2)


def test_safe_dynamic_raises_minimums_and_adjusts_both():
    dyn, warnings = safe_dynamic({"ttl": 5, "loop_wait": 10, "retry_timeout": 27})
    assert warnings == [
        "ttl=5 can't be smaller than 20, adjusting...",
        (
            'Violated the rule "loop_wait + 2*retry_timeout <= ttl", where ttl=20. '
            "Adjusting loop_wait from 10 to 1 and retry_timeout from 27 to 9"
        ),
    ]
    assert (dyn.ttl, dyn.loop_wait, dyn.retry_timeout) == (20, 1, 9)
    assert dyn.data == {"ttl": 5, "loop_wait": 10, "retry_timeout": 27}  # the stored value is not rewritten


def test_safe_dynamic_adjusts_loop_wait_only():
    dyn, warnings = safe_dynamic({"ttl": 30, "loop_wait": 15, "retry_timeout": 10})
    assert warnings == [
        (
            'Violated the rule "loop_wait + 2*retry_timeout <= ttl", where ttl=30 and retry_timeout=10. '
            "Adjusting loop_wait from 15 to 10"
        )
    ]
    assert (dyn.ttl, dyn.loop_wait, dyn.retry_timeout) == (30, 10, 10)


def test_safe_dynamic_each_minimum():
    dyn, warnings = safe_dynamic({"ttl": 10, "loop_wait": 0, "retry_timeout": 1})
    assert warnings[:3] == [
        "ttl=10 can't be smaller than 20, adjusting...",
        "loop_wait=0 can't be smaller than 1, adjusting...",
        "retry_timeout=1 can't be smaller than 3, adjusting...",
    ]
    assert (dyn.ttl, dyn.loop_wait, dyn.retry_timeout) == (20, 1, 3)


def test_safe_dynamic_valid_config_is_unchanged():
    dyn, warnings = safe_dynamic({**TALK_CONFIG, "ttl": 60, "loop_wait": 5, "retry_timeout": 27})
    assert warnings == []
    assert (dyn.ttl, dyn.loop_wait, dyn.retry_timeout) == (60, 5, 27)


def test_safe_dynamic_non_integers_keep_defaults():
    dyn, warnings = safe_dynamic({"ttl": "sixty", "loop_wait": 2.5, "retry_timeout": 10})
    assert (dyn.ttl, dyn.loop_wait, dyn.retry_timeout) == (30, 10, 10)
    assert warnings == [
        "ttl='sixty' is not an integer, keeping the default 30",
        "loop_wait=2.5 is not an integer, keeping the default 10",
    ]


def test_safe_dynamic_non_mapping():
    dyn, warnings = safe_dynamic(["ttl", 30])
    assert dyn == DynamicConfig.from_dict({}) and len(warnings) == 1


def test_safe_dynamic_parameters():
    dyn, warnings = safe_dynamic(
        {"postgresql": {"parameters": {"max_connections": 10, "work_mem": "lots", "shared_buffers": "128MB"}}}
    )
    assert dyn.parameters == {"max_connections": "100", "shared_buffers": "128MB"}
    assert "postgresql parameter max_connections=10 failed validation, defaulting to 100" in warnings
    assert any(w.startswith("postgresql parameter work_mem=lots failed validation") for w in warnings)


# ----------------------------------------------------------------------------------------------------------------
# effective_parameters


def test_effective_parameters_merge():
    node = parse_node_config(POSTGRES0_YML)
    dyn = DynamicConfig.from_dict(
        {"postgresql": {"parameters": {"max_connections": 101, "work_mem": "8MB", "shared_buffers": "64MB"}}}
    )
    params = effective_parameters(dyn, node)
    assert params["max_connections"] == "101"
    assert params["work_mem"] == "8MB" and params["shared_buffers"] == "64MB"
    assert params["unix_socket_directories"] == "."  # node parameter
    assert (
        params["wal_level"] == "replica" and params["hot_standby"] == "on" and params["wal_log_hints"] == "on"
    )
    assert params["listen_addresses"] == "127.0.0.1" and params["port"] == "5432"
    assert params["cluster_name"] == "batman"
    assert params["max_wal_senders"] == "10" and params["wal_keep_size"] == "128MB"
    assert "wal_keep_segments" not in params  # gone in PostgreSQL 13
    assert all(isinstance(v, str) for v in params.values())


def test_effective_parameters_node_overrides_cluster_except_owned():
    text = POSTGRES0_YML.replace(
        "    unix_socket_directories: '.'",
        "    unix_socket_directories: '.'\n    work_mem: 16MB\n    max_connections: 500",
    )
    node = parse_node_config(text)
    assert [w.path for w in node.warnings] == ["postgresql.parameters.max_connections"]
    params, warnings = effective_parameters_report({"postgresql": {"parameters": {"work_mem": "8MB"}}}, node)
    assert params["work_mem"] == "16MB"  # the node file wins for ordinary GUCs
    assert params["max_connections"] == "100"  # owned: only the cluster config counts
    assert any("max_connections in the node file is ignored" in w for w in warnings)


def test_effective_parameters_invalid_owned_defaults():
    params, warnings = effective_parameters_report(
        {"postgresql": {"parameters": {"max_connections": 5, "hot_standby": "off"}}}
    )
    assert params["max_connections"] == "100" and params["hot_standby"] == "on"
    assert "postgresql parameter max_connections=5 failed validation, defaulting to 100" in warnings
    assert "listen_addresses" not in params  # no node given


def test_effective_parameters_old_versions_and_segments():
    params = effective_parameters({"postgresql": {"parameters": {"wal_keep_segments": 32}}}, None, 120000)
    assert params["wal_keep_segments"] == "32" and "wal_keep_size" not in params
    params = effective_parameters({"postgresql": {"parameters": {"wal_keep_segments": 32}}}, None, 150000)
    assert params["wal_keep_size"] == "512MB"


def test_effective_parameters_booleans_become_on_off():
    params = effective_parameters({"postgresql": {"parameters": {"archive_mode": True, "fsync": False}}})
    assert params["archive_mode"] == "on" and params["fsync"] == "off"


# ----------------------------------------------------------------------------------------------------------------
# Node files


def test_load_patroni_style_node_file(tmp_path):
    path = tmp_path / "postgres0.yml"
    path.write_text(POSTGRES0_YML)
    node = load_node_config(path)
    assert isinstance(node, NodeConfig) and node.source == str(path)
    assert (node.scope, node.name, node.namespace) == ("batman", "postgresql0", "/service")
    assert node.etcd_hosts == ["127.0.0.1:2379"] and node.etcd.section == "etcd"
    assert node.restapi_listen == ("127.0.0.1", 8008)
    assert node.restapi_connect_address == "127.0.0.1:8008"
    assert node.api_url == "http://127.0.0.1:8008/patroni"
    assert node.restapi.authentication.username == "username"
    assert node.restapi.auth_get is False
    assert node.pg_listen == ("127.0.0.1", 5432) and node.pg_connect_address == ("127.0.0.1", 5432)
    assert node.conn_url == "postgres://127.0.0.1:5432/postgres"
    assert node.data_dir == "data/postgresql0"
    pg = node.postgresql
    assert pg.superuser.username == "postgres" and pg.replication.password == "rep-pass"
    assert pg.rewind.username == "rewind_user" and pg.pgpass == "/tmp/pgpass0"
    assert pg.database == "postgres" and pg.use_pg_rewind is None
    assert node.bootstrap.initdb == [{"encoding": "UTF8"}, "data-checksums"]
    assert node.bootstrap.initdb_args() == ["--encoding=UTF8", "--data-checksums"]
    assert node.bootstrap.pg_hba[0] == "host replication replicator 127.0.0.1/32 md5"
    assert node.bootstrap.users["admin"]["options"] == ["createrole", "createdb"]
    assert node.bootstrap_dynamic.use_pg_rewind is True and node.bootstrap_dynamic.ttl == 30
    assert node.tags_for_member() == {}  # all predefined booleans false
    assert node.tags.can_failover
    assert node.fencing.enabled is True and node.fencing.safety_margin == 5
    assert node.watchdog.mode == "automatic" and node.log.level == "INFO"
    assert node.raw["restapi"]["listen"] == "127.0.0.1:8008"
    assert node.warnings == []


def test_node_file_hatui_extensions_and_etcd3():
    text = textwrap.dedent("""\
        scope: batman
        namespace: service/
        name: pg1
        restapi:
          listen: 0.0.0.0:8009
          certfile: /etc/cert.pem
          auth_get: true
        etcd3:
          hosts: 127.0.0.1:2379, http://127.0.0.2:2380
        postgresql:
          listen: '*:5433'
          data_dir: /tmp/pg1
          database: app
          os_user: postgres
          use_pg_rewind: true
        tags:
          nofailover: true
          failover_priority: 0
          nosync: false
          sync_priority: 2
          clonefrom: true
          noloadbalance: false
          replicatefrom: pg0
          zone: eu-1
        watchdog:
          mode: off
        log:
          level: debug
          dir: /var/log/hatui
        fencing:
          enabled: false
          safety_margin: 3
        """)
    node = parse_node_config(text, source="pg1.yml")
    assert node.namespace == "/service"
    assert node.etcd_hosts == ["127.0.0.1:2379", "127.0.0.2:2380"] and node.etcd.section == "etcd3"
    assert node.restapi.auth_get is True
    assert node.restapi_listen == ("0.0.0.0", 8009)
    assert node.restapi_connect_address == "127.0.0.1:8009"  # derived from a wildcard listen
    assert node.api_url == "https://127.0.0.1:8009/patroni"
    assert node.pg_listen == ("*", 5433) and node.pg_connect_address == ("127.0.0.1", 5433)
    assert node.conn_url == "postgres://127.0.0.1:5433/app"
    assert node.postgresql.os_user == "postgres" and node.postgresql.use_pg_rewind is True
    assert node.tags_for_member() == {
        "nofailover": True,
        "failover_priority": 0,
        "nosync": False,
        "sync_priority": 2,
        "clonefrom": True,
        "replicatefrom": "pg0",
        "zone": "eu-1",
    }
    assert node.tags.custom == {"zone": "eu-1"} and not node.tags.can_failover
    assert node.watchdog.mode == "off"  # YAML 1.1 reads `off` as false
    assert node.log.level == "DEBUG" and node.log.dir == "/var/log/hatui"
    assert node.fencing.enabled is False and node.fencing.safety_margin == 3
    assert {w.path for w in node.warnings} == {"restapi.connect_address", "postgresql.connect_address"}


def test_tags_filtering_spec_1_2():
    node = NodeConfig.from_dict(
        {
            "scope": "s",
            "name": "n",
            "tags": {
                "nofailover": False,
                "noloadbalance": False,
                "clonefrom": False,
                "nosync": False,
                "nostream": False,
                "custom_false": False,
                "custom_none": None,
            },
        }
    )
    assert node.tags_for_member() == {"custom_false": False, "custom_none": None}
    node = NodeConfig.from_dict(
        {"scope": "s", "name": "n", "tags": {"nofailover": False, "failover_priority": 1}}
    )
    assert node.tags_for_member() == {"nofailover": False, "failover_priority": 1}


def test_node_tag_validation():
    base = {
        "scope": "s",
        "name": "n",
        "restapi": {"listen": ":8008", "connect_address": "h:8008"},
        "etcd3": {"host": "127.0.0.1:2379"},
        "postgresql": {"listen": "127.0.0.1:5432", "connect_address": "127.0.0.1:5432", "data_dir": "/x"},
    }
    assert validate_node(base) == []
    issues = validate_node(
        {
            **base,
            "tags": {
                "nofailover": "yes",
                "failover_priority": "high",
                "sync_priority": -1,
                "nosync": 1,
                "replicatefrom": 5,
                "clonefrom": True,
            },
        }
    )
    assert {i.path for i in errors(issues)} == {
        "tags.nofailover",
        "tags.failover_priority",
        "tags.sync_priority",
        "tags.nosync",
        "tags.replicatefrom",
    }
    issues = validate_node({**base, "tags": {"nofailover": True, "failover_priority": 1}})
    assert errors(issues) == []
    [warning] = issues
    assert warning.path == "tags.failover_priority" and warning.rule == "conflict"
    assert "conflicts with nofailover: true" in warning.message


def test_node_file_errors_with_lines():
    text = textwrap.dedent("""\
        scope: batman
        name: pg0
        restapi:
          listen: 127.0.0.1:80800
        etcd3:
          hosts: [127.0.0.1:2379]
        postgresql:
          listen: 127.0.0.1:5432
          connect_address: 127.0.0.1:5432
          data_dir: /x
          use_pg_rewind: maybe
          parameters:
            work_mem: 8 MiB
        bootstrap:
          dcs:
            ttl: 5
            loop_wait: 10
            retry_timeout: 27
        unknown_thing: 1
        """)
    with pytest.raises(ConfigError) as info:
        parse_node_config(text, source="pg0.yml")
    err = info.value
    found = {(i.path, i.line) for i in err.issues}
    assert ("restapi.listen", 4) in found
    assert ("postgresql.use_pg_rewind", 11) in found
    assert ("postgresql.parameters.work_mem", 13) in found
    assert ("bootstrap.dcs.ttl", 16) in found
    assert ("unknown_thing", 19) in found
    assert (
        "pg0.yml:16:10: error: bootstrap.dcs.ttl: 5 must be >= loop_wait + 2 * retry_timeout = 10 + 2 * 27 = 64"
        in str(err).splitlines()
    )
    assert next(i for i in err.issues if i.path == "unknown_thing").severity == "warning"


def test_node_file_missing_essentials():
    issues = validate_node({})
    assert {i.path for i in errors(issues)} == {"scope", "name", "restapi", "postgresql", "etcd3"}
    issues = validate_node({"scope": "a/b", "name": "n", "restapi": {}, "etcd3": {}, "postgresql": {}})
    assert {i.path for i in errors(issues)} == {
        "scope",
        "restapi.listen",
        "etcd3",
        "postgresql.listen",
        "postgresql.data_dir",
    }


def test_node_file_wrong_top_level_and_syntax():
    with pytest.raises(ConfigError) as info:
        parse_node_config("- a\n- b\n")
    assert len(info.value.issues) == 1 and "must be a mapping" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_node_config("scope: batman\nname: [unclosed\n", source="x.yml")
    assert str(info.value).startswith("x.yml:")


def test_node_file_cluster_settings_at_top_level_warn():
    issues = validate_node(
        {
            "scope": "s",
            "name": "n",
            "ttl": 30,
            "restapi": {"listen": ":8008", "connect_address": "h:8008"},
            "etcd": {"host": "h"},
            "postgresql": {"listen": ":5432", "connect_address": "h:5432", "data_dir": "/d"},
        }
    )
    assert [(i.path, i.rule) for i in issues] == [("ttl", "misplaced")]


def test_load_node_config_missing_file(tmp_path):
    with pytest.raises(OSError):
        load_node_config(tmp_path / "absent.yml")


@pytest.mark.parametrize(
    "ns,expected",
    [
        (None, "/service"),
        ("service", "/service"),
        ("/service/", "/service"),
        ("/", "/service"),
        ("a//b/", "/a/b"),
        ("", "/service"),
    ],
)
def test_normalize_namespace(ns, expected):
    assert normalize_namespace(ns) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("127.0.0.1:5432", ("127.0.0.1", 5432)),
        ("[::1]:5433", ("::1", 5433)),
        ("http://h:2379/", ("h", 2379)),
        ("*:5432", ("*", 5432)),
        ("a,b:5432", ("a,b", 5432)),
        (":8008", ("", 8008)),
        ("h", ("h", 9)),
        ("::1", ("::1", 9)),
    ],
)
def test_split_host_port(text, expected):
    assert split_host_port(text, 9) == expected


@pytest.mark.parametrize("text", ["h:0", "h:70000", "h:port", "[::1"])
def test_split_host_port_invalid(text):
    with pytest.raises(ValueError):
        split_host_port(text, 9)


def test_parse_duration():
    assert parse_duration("30min") == 1800 and parse_duration(30) == 30 and parse_duration("2h") == 7200
    assert parse_duration("soon") is None and parse_duration(True) is None


# ----------------------------------------------------------------------------------------------------------------
# show-config / edit-config helpers


def test_dump_yaml_sorted_block_style():
    text = dump_yaml(
        {
            "ttl": 30,
            "loop_wait": 10,
            "postgresql": {
                "use_pg_rewind": True,
                "parameters": {"work_mem": "8MB", "max_connections": 100, "archive_mode": "on"},
            },
            "pg_hba": ["host all all 0.0.0.0/0 md5"],
        }
    )
    assert text == textwrap.dedent("""\
        loop_wait: 10
        pg_hba:
        - host all all 0.0.0.0/0 md5
        postgresql:
          parameters:
            archive_mode: 'on'
            max_connections: 100
            work_mem: 8MB
          use_pg_rewind: true
        ttl: 30
        """)
    assert parse_yaml_document(text)[0]["postgresql"]["parameters"]["archive_mode"] == "on"  # stays a string
    assert dump_yaml({}) == "{}\n"


def test_config_diff_like_the_talk():
    new = set_path(TALK_CONFIG, "postgresql.parameters.work_mem", "8MB")
    assert config_diff(TALK_CONFIG, new) == textwrap.dedent("""\
        --- \n\
        +++ \n\
        @@ -3,6 +3,7 @@
         postgresql:
           parameters:
             max_connections: 100
        +    work_mem: 8MB
           use_pg_rewind: true
         retry_timeout: 10
         ttl: 30
        """)
    assert config_diff(TALK_CONFIG, dict(TALK_CONFIG)) == ""


def test_set_path_values_are_yaml():
    assert set_path({}, "ttl", "60") == {"ttl": 60}
    assert set_path({}, "synchronous_mode", "quorum") == {"synchronous_mode": "quorum"}
    assert set_path({}, "pause", "true") == {"pause": True}
    assert set_path({}, "postgresql.pg_hba", "[host all all 0.0.0.0/0 md5]") == {
        "postgresql": {"pg_hba": ["host all all 0.0.0.0/0 md5"]}
    }
    assert set_path({}, "ttl", "60", parse=False) == {"ttl": "60"}
    # text that is not YAML on its own stays a string
    assert set_path({}, "postgresql.parameters.log_line_prefix", "%m [%p] ") == {
        "postgresql": {"parameters": {"log_line_prefix": "%m [%p] "}}
    }


def test_set_path_dotted_guc_names_are_kept_intact():
    out = set_path({}, "postgresql.parameters.auto_explain.log_min_duration", "1s")
    assert out == {"postgresql": {"parameters": {"auto_explain.log_min_duration": "1s"}}}
    out = set_path(out, "postgresql.parameters.auto_explain.log_min_duration", "null")
    assert out == {}  # emptied mappings are dropped, like patronictl


def test_set_path_null_removes():
    cfg = {"ttl": 30, "pause": True, "postgresql": {"parameters": {"work_mem": "8MB", "a": 1}}}
    assert set_path(cfg, "pause", "null") == {
        "ttl": 30,
        "postgresql": {"parameters": {"work_mem": "8MB", "a": 1}},
    }
    assert set_path(cfg, "postgresql.parameters.work_mem", None) == {
        "ttl": 30,
        "pause": True,
        "postgresql": {"parameters": {"a": 1}},
    }
    assert set_path(cfg, "absent.deep.key", "null") == cfg
    assert set_path(cfg, "ttl", "") == {"pause": True, "postgresql": cfg["postgresql"]}  # empty = YAML null
    assert cfg["pause"] is True  # input untouched


def test_set_path_replaces_scalars_on_the_way():
    assert set_path({"standby_cluster": "x"}, "standby_cluster.host", "h") == {
        "standby_cluster": {"host": "h"}
    }
    with pytest.raises(ValueError):
        set_path({}, "a..b", "1")


def test_apply_edits_like_edit_config_options():
    out = apply_edits(
        TALK_CONFIG,
        sets=["ttl=60", "loop_wait=5", "retry_timeout=27"],
        pgs=["work_mem=8MB", "max_connections=101", "auto_explain.log_analyze=on"],
    )
    assert out["ttl"] == 60 and out["loop_wait"] == 5 and out["retry_timeout"] == 27
    assert out["postgresql"]["parameters"] == {
        "max_connections": 101,
        "work_mem": "8MB",
        "auto_explain.log_analyze": True,
    }
    assert errors(validate_dynamic(out)) == []
    with pytest.raises(ValueError):
        apply_edits({}, sets=["ttl"])


def test_parse_value():
    assert parse_value("8MB") == "8MB" and parse_value("101") == 101 and parse_value("null") is None
    assert parse_value("{a: 1}") == {"a": 1} and parse_value("{}") == {} and parse_value("'on'") == "on"


def test_client_only_config():
    text = "scope: batman\nnamespace: /service/\netcd3:\n  hosts: [127.0.0.1:2379]\n"
    with pytest.raises(ConfigError):
        parse_node_config(text)
    node = parse_node_config(text, local=False)
    assert node.scope == "batman" and node.etcd_hosts == ["127.0.0.1:2379"] and node.name == ""
    with pytest.raises(ConfigError):
        parse_node_config("namespace: x\n", local=False)  # scope and etcd are still needed


def test_safe_dynamic_warnings_stay_one_short_line_for_huge_values():
    # A config key written by someone else may carry megabytes in one value: the operator's log
    # gets one readable line per problem, not the value.
    dyn, warnings = safe_dynamic({"postgresql": {"parameters": {"work_mem": "9" * 10_000, "x" * 5000: "1",
                                                                "max_connections": "y" * 100_000}}})
    assert warnings and all(len(w) < 300 and "\n" not in w for w in warnings)
    assert any("(10000 characters)" in w for w in warnings)
    assert "work_mem" not in dyn.parameters and dyn.parameters.get("max_connections") in (None, 100, "100")


def test_safe_dynamic_leaves_out_parameters_the_server_does_not_know():
    known = {"work_mem", "max_connections"}
    dyn, warnings = safe_dynamic({"postgresql": {"parameters": {"work_mem": "8MB", "shared_buffer": "1GB",
                                                                "pg_stat_statements.max": 100}}}, known)
    assert dyn.parameters == {"work_mem": "8MB", "pg_stat_statements.max": 100}
    assert warnings == ["postgresql parameter shared_buffer is not known to this PostgreSQL, leaving it out"]
    # Without the server's list (the CLI, the console) nothing is dropped for its name.
    dyn, warnings = safe_dynamic({"postgresql": {"parameters": {"shared_buffer": "1GB"}}})
    assert dyn.parameters == {"shared_buffer": "1GB"} and warnings == []


def test_validator_refuses_a_parameter_the_local_server_does_not_know():
    from hatui.pgparams import parameter_names

    known = parameter_names()
    if known is None:
        pytest.skip("no PostgreSQL server binary on this machine")
    assert {"shared_buffers", "work_mem", "application_name", "jit_debugging_support"} <= known
    issues = validate_dynamic({"postgresql": {"parameters": {"shared_buffer": "1GB", "pg_stat_statements.max": 5,
                                                             "work_mem": "4MB"}}}, known)
    assert [i.format() for i in issues] == ["error: postgresql.parameters.shared_buffer: is not a parameter of "
                                            "the local PostgreSQL (did you mean shared_buffers?)"]
    assert validate_dynamic({"postgresql": {"parameters": {"shared_buffer": "1GB"}}}) == []  # no list: no check
