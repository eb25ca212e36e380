"""use_pg_rewind and the remove_data_directory_* switches: node file, else cluster config, else off (Patroni)."""

from __future__ import annotations

import pytest

from hatui.config import DynamicConfig, parse_node_config
from hatui.daemon.node import NodeRuntime

NODE = """\
scope: batman
name: pg0
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
etcd3: {hosts: 127.0.0.1:2379}
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /tmp/hatui-unit-never-created
"""

KEYS = ("use_pg_rewind", "remove_data_directory_on_rewind_failure", "remove_data_directory_on_diverged_timelines")


def runtime(extra: str = "") -> NodeRuntime:
    try:
        return NodeRuntime(parse_node_config(NODE + extra))
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL binaries on this machine
        pytest.skip(f"NodeRuntime needs the PostgreSQL binaries: {exc}")


def flags(rt: NodeRuntime, dynamic: dict | None) -> tuple:
    s = rt.settings(DynamicConfig.from_dict(dynamic) if dynamic is not None else None)
    return tuple(getattr(s, k) for k in KEYS)


def test_default_is_off_as_in_patroni() -> None:
    assert flags(runtime(), None) == (False, False, False)
    assert flags(runtime(), {}) == (False, False, False)


def test_cluster_config_applies_when_the_node_file_is_silent() -> None:
    dyn = {"postgresql": dict.fromkeys(KEYS, True)}
    assert flags(runtime(), dyn) == (True, True, True)


def test_node_file_wins_over_the_cluster_config() -> None:
    rt = runtime("".join(f"  {k}: false\n" for k in KEYS))
    assert flags(rt, {"postgresql": dict.fromkeys(KEYS, True)}) == (False, False, False)
    rt = runtime("  use_pg_rewind: true\n")
    assert flags(rt, {"postgresql": {"use_pg_rewind": False}}) == (True, False, False)
