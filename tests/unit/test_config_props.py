"""Property tests of hatui.config: the validator never crashes, and what it accepts is safe to run."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hatui.config import (
    DynamicConfig,
    Issue,
    config_diff,
    dump_yaml,
    errors,
    parse_yaml_document,
    safe_dynamic,
    set_path,
    validate_dynamic,
    validate_dynamic_text,
    validate_node,
)

KEYS = [
    "ttl",
    "loop_wait",
    "retry_timeout",
    "synchronous_node_count",
    "synchronous_mode",
    "pause",
    "maximum_lag_on_failover",
    "postgresql",
    "parameters",
    "work_mem",
    "max_connections",
    "tags",
    "slots",
    "standby_cluster",
    "member_slots_ttl",
    "nofailover",
    "restapi",
    "listen",
    "etcd3",
    "hosts",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)),
    max_leaves=30,
)

# Values that make the timing keys often valid, so the "accepted" branch is exercised too.
timing_value = st.one_of(
    st.integers(min_value=-5, max_value=80),
    st.integers(),
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    st.floats(),
)
timing_dicts = st.fixed_dictionaries(
    {},
    optional={
        "ttl": timing_value,
        "loop_wait": timing_value,
        "retry_timeout": timing_value,
        "synchronous_node_count": timing_value,
        "postgresql": st.fixed_dictionaries(
            {},
            optional={
                "parameters": st.dictionaries(
                    st.sampled_from(["max_connections", "work_mem", "checkpoint_timeout", "fsync", "x.y"]),
                    scalars,
                    max_size=3,
                )
            },
        ),
    },
)

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_issue_list(issues):
    assert isinstance(issues, list)
    for issue in issues:
        assert isinstance(issue, Issue)
        assert issue.severity in ("error", "warning")
        assert isinstance(issue.message, str) and issue.message
        assert isinstance(issue.path, str) and isinstance(issue.rule, str)


def assert_timing_ok(dyn: DynamicConfig):
    assert dyn.ttl >= 20 and dyn.loop_wait >= 1 and dyn.retry_timeout >= 3
    assert dyn.ttl >= dyn.loop_wait + 2 * dyn.retry_timeout
    assert dyn.synchronous_node_count >= 1


@PROPS
@given(json_like)
def test_validators_never_raise(data):
    assert_issue_list(validate_dynamic(data))
    assert_issue_list(validate_node(data))


@PROPS
@given(st.dictionaries(keys, json_like, max_size=6))
def test_validators_never_raise_on_mappings(data):
    assert_issue_list(validate_dynamic(data))
    assert_issue_list(validate_node(data))
    assert_issue_list(validate_node({"bootstrap": {"dcs": data}, "postgresql": data, "tags": data}))


@PROPS
@given(st.one_of(timing_dicts, st.dictionaries(keys, json_like, max_size=6)))
def test_accepted_configs_satisfy_the_rules(data):
    issues = validate_dynamic(data)
    if errors(issues):
        return
    for key in ("ttl", "loop_wait", "retry_timeout"):
        assert data.get(key) is None or (type(data[key]) is int)
    assert_timing_ok(DynamicConfig.from_dict(data))


@PROPS
@given(st.one_of(timing_dicts, json_like))
def test_safe_dynamic_always_satisfies_the_rule(data):
    dyn, warnings = safe_dynamic(data)
    assert all(isinstance(w, str) and w for w in warnings)
    assert_timing_ok(dyn)
    # and what it produces passes the validator's timing checks
    fixed = {"ttl": dyn.ttl, "loop_wait": dyn.loop_wait, "retry_timeout": dyn.retry_timeout}
    assert errors(validate_dynamic(fixed)) == []


@PROPS
@given(st.text(max_size=200))
def test_text_validation_never_raises(text):
    _data, issues = validate_dynamic_text(text)
    assert_issue_list(issues)
    for issue in issues:
        if issue.line is not None:
            assert issue.line >= 1 and (issue.column is None or issue.column >= 1)


finite_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


@PROPS
@given(st.dictionaries(st.text(max_size=10), finite_json, max_size=5))
def test_dump_then_parse_gives_the_same_data(data):
    text = dump_yaml(data)
    parsed, issues = parse_yaml_document(text)
    assert issues == []
    assert parsed == data
    assert config_diff(data, parsed) == ""


@PROPS
@given(
    st.dictionaries(st.text(max_size=10), finite_json, max_size=5),
    st.lists(st.text(alphabet="abcxyz_", min_size=1, max_size=6), min_size=1, max_size=4),
    st.one_of(st.integers(), st.text(min_size=1, max_size=10), st.booleans()),
)
def test_set_path_then_read_back(data, path, value):
    out = set_path(data, ".".join(path), value, parse=False)
    node = out
    for key in path:
        node = node[key]
    assert node == value
    removed = set_path(out, ".".join(path), None)
    node = removed
    for key in path[:-1]:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    assert path[-1] not in node


def test_float_values_are_checked_for_finiteness():
    assert errors(validate_dynamic({"postgresql": {"parameters": {"x": math.inf}}}))
