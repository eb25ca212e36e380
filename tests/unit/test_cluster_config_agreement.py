"""One source per fact: every reader of the cluster config key sees the same values.

The key is written by people (edit-config, REST PATCH, etcdctl), so it can hold anything. Before,
the daemon's shell (`config.safe_dynamic`) and the cluster model (`cluster.ClusterConfig`, read by
the HA core, the REST API, the CLI and the console) parsed it separately and disagreed:
`pause: "false"` paused the HA core but not the shell, `failsafe_mode: "no"` was on for one and
off for the other, `synchronous_mode: "Quorum"` was off for one and quorum for the other. Here
each hostile value goes to every reader and they must agree.
"""

from __future__ import annotations

from typing import Any

import pytest
from ha_builders import LSN, M, cluster, config_value, decide_for, pg_replica

from hatui.config import safe_dynamic
from hatui.daemon.api_rules import cluster_as_json
from hatui.views import service_info

# What the daemon's shell passes as the local server's parameter names (NodeRuntime.safe_dynamic).
KNOWN = frozenset({"work_mem", "max_connections", "wal_level", "hot_standby"})

BOOLS: list[Any] = ["false", "no", "off", "0", "true", "yes", "on", "1", "FALSE", " On ", 1, 0, 2, "garbage",
                    "", None, [], {}, 1.0, True, False]
HOSTILE: list[tuple[str, Any]] = [
    *[("pause", v) for v in BOOLS],
    *[("failsafe_mode", v) for v in BOOLS],
    *[("check_timeline", v) for v in BOOLS],
    *[("synchronous_mode_strict", v) for v in BOOLS],
    *[("synchronous_mode", v) for v in [*BOOLS, "Quorum", "QUORUM", " quorum ", "quorum", "sync", "remote_apply"]],
    *[("ttl", v) for v in ["30", "sixty", 2.5, -5, 0, 5, 10**20, True, None, [30]]],
    *[("loop_wait", v) for v in ["10", 0, -1, 100, 2.5, False]],
    *[("retry_timeout", v) for v in ["10", 1, 10**12, 0.5]],
    *[("maximum_lag_on_failover", v) for v in ["1MB", "1048576", True, -1, 10**30, 0, 2.0]],
]

# The typed facts: each must read the same in the model and in the shell.
FIELDS = ("ttl", "loop_wait", "retry_timeout", "maximum_lag_on_failover", "pause", "synchronous_mode",
          "synchronous_mode_strict", "failsafe_mode", "check_timeline")


def _views(key: str, value: Any):
    data = config_value()
    if value is None:
        data[key] = None
    else:
        data[key] = value
    members = [M("pg0", role="primary", lsn=LSN), M("pg1", lsn=LSN)]
    view = cluster(members, leader="pg0", config=data, sync=("pg0", ["pg1"]), optime=LSN)
    return data, view


@pytest.mark.parametrize("key,value", HOSTILE, ids=[f"{k}={v!r}" for k, v in HOSTILE])
def test_every_reader_agrees_on_a_hostile_value(key: str, value: Any) -> None:
    data, view = _views(key, value)
    shell, _ = safe_dynamic(data, KNOWN)  # the daemon shell's reading (what it runs with)
    model = view.config  # the cluster model's reading (HA core, REST API, CLI, console)
    assert model is not None
    for name in FIELDS:
        assert getattr(model.typed, name) == getattr(shell, name), name
    # The model's own accessors are views of the same typed values.
    assert (model.ttl, model.loop_wait, model.retry_timeout, model.maximum_lag_on_failover) == (
        shell.ttl, shell.loop_wait, shell.retry_timeout, shell.maximum_lag_on_failover)
    assert (model.is_paused, model.synchronous_mode, model.synchronous_mode_strict, model.failsafe_mode,
            model.check_timeline) == (shell.pause, shell.synchronous_mode, shell.synchronous_mode_strict,
                                      shell.failsafe_mode, shell.check_timeline)
    # The HA core: a paused cluster prefixes every decision's log line.
    assert view.is_paused is shell.pause
    assert decide_for(view, "pg1", pg_replica(following="pg0")).message.startswith("PAUSE: ") is shell.pause
    # The CLI (patronictl list's footer) and, through Cluster.is_paused, the console's banner.
    assert ("Maintenance mode: on" in service_info(view)) is shell.pause
    # The REST API's GET /cluster names pg1 (in the sync key) by the synchronous mode.
    roles = {m["name"]: m["role"] for m in cluster_as_json(view)["members"]}
    assert roles["pg1"] == {"off": "replica", "on": "sync_standby", "quorum": "quorum_standby"}[
        shell.synchronous_mode]


@pytest.mark.parametrize("key,value,expected", [
    ("pause", "false", False),  # the HA core used to read any non-empty string as paused
    ("pause", "true", True),
    ("failsafe_mode", "no", False),
    ("synchronous_mode", "Quorum", "quorum"),  # the shell used to read anything but "quorum" as off
    ("synchronous_mode", "ON", "on"),
    ("check_timeline", "false", False),
    ("ttl", "sixty", 30),
])
def test_the_named_disagreements_have_one_answer(key: str, value: Any, expected: Any) -> None:
    _, view = _views(key, value)
    assert view.config is not None
    field = {"pause": "pause"}.get(key, key)
    assert getattr(view.config.typed, field) == expected


def test_a_key_that_is_not_a_json_object_reads_as_the_defaults() -> None:
    from hatui.cluster import ClusterConfig

    for raw in ("[1, 2]", "not json", '"pause"', "", "null"):
        cfg = ClusterConfig.from_value(raw)
        assert (cfg.ttl, cfg.loop_wait, cfg.is_paused, cfg.synchronous_mode, cfg.failsafe_mode) == (
            30, 10, False, "off", False), raw


def test_the_model_reports_what_it_replaced() -> None:
    _, view = _views("pause", "garbage")
    assert view.config is not None
    assert any("pause" in w for w in view.config.warnings)
