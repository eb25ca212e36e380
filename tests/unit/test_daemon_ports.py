"""The daemon's parts see it through small typed interfaces (typing.Protocol), one per consumer.

A Protocol is only checked by a type checker; this test checks at run time that `loop.Daemon`
really has every attribute and method each interface names, so an interface cannot drift from
the daemon (a renamed attribute would otherwise surface as an AttributeError in a running node).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from hatui.config import load_node_config
from hatui.daemon.bootstrap import BootstrapHost
from hatui.daemon.decisions import NarratedDaemon
from hatui.daemon.failsafe import FailsafeHost
from hatui.daemon.fence import FencedDaemon
from hatui.daemon.lease import LeaseHolder
from hatui.daemon.loop import Daemon
from hatui.daemon.node import NodeRuntime
from hatui.daemon.requests import DaemonPort
from hatui.daemon.sdnotify import ServicedDaemon
from hatui.daemon.slots import Daemon as SlotsHost
from hatui.daemon.sync import SyncHost

PORTS = [BootstrapHost, NarratedDaemon, FailsafeHost, FencedDaemon, LeaseHolder, DaemonPort, ServicedDaemon,
         SlotsHost, SyncHost]
DEMO = Path(__file__).resolve().parents[2] / "hatui" / "demo_configs" / "postgres0.yml"


def _members(port: type) -> tuple[set[str], set[str]]:
    attrs = set(port.__dict__.get("__annotations__", {}))
    methods = {n for n, v in port.__dict__.items() if inspect.isfunction(v) and not n.startswith("__")}
    return attrs, methods


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Daemon:
    # Building the daemon opens no connection: etcd and PostgreSQL are reached only in run().
    node = load_node_config(DEMO)
    d = Daemon(NodeRuntime(node))
    yield d
    d.etcd.close()
    d.keeper.etcd.close()


@pytest.mark.parametrize("port", PORTS, ids=lambda p: f"{p.__module__}.{p.__name__}")
def test_the_daemon_has_everything_each_interface_names(daemon: Daemon, port: type) -> None:
    attrs, methods = _members(port)
    assert attrs or methods
    missing = sorted(n for n in attrs if not hasattr(daemon, n))
    assert not missing, f"{port.__name__} names attributes the daemon lacks: {missing}"
    for name in methods:
        assert callable(getattr(daemon, name, None)), f"{port.__name__}.{name} is not a method of the daemon"
        assert not name.startswith("_"), f"{port.__name__}.{name}: an interface names no private method"


def test_no_part_reaches_into_the_daemon_privately() -> None:
    """Outside the daemon class's own modules, nothing calls `daemon._x` or types the daemon as Any."""
    own = {"loop", "etcdio", "observe", "clone_actions", "rejoin_actions", "leader_actions", "restarts", "dynconfig"}
    pkg = Path(__file__).resolve().parents[2] / "hatui"
    offenders = []
    for path in sorted(pkg.rglob("*.py")):
        if path.parent.name == "daemon" and path.stem in own:
            continue
        text = path.read_text()
        for needle in ("daemon: Any", "daemon._", "self.d._", "self.daemon._"):
            if needle in text:
                offenders.append(f"{path.relative_to(pkg)}: {needle}")
    assert not offenders, offenders
