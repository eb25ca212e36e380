"""Console test helpers: snapshot baselines in the top-level snapshots/ folder, recorded apps, and
Patroni-shaped keys written into a real etcd.

pytest-textual-snapshot's `snap_compare` asks syrupy for `snapshot.use_extension(SVGImageExtension)`;
syrupy then stores files under `<test dir>/__snapshots__/<test module>/` (the extension's `dirname`).
We hand `snap_compare` a `snapshot` whose `use_extension` swaps in a subclass whose `dirname` is
`<repo>/snapshots/<test module>/`: same layout, reviewed like code at the top of the repository.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hatui.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT_ROOT = REPO / "snapshots"
TERMINAL = (120, 36)


def _top_level(extension_class: type) -> type:
    class TopLevelSnapshots(extension_class):  # type: ignore[misc, valid-type]
        @classmethod
        def dirname(cls, *, test_location) -> str:
            return str(SNAPSHOT_ROOT / test_location.basename)

    TopLevelSnapshots.__name__ = f"TopLevel{extension_class.__name__}"
    return TopLevelSnapshots


class _TopLevelSnapshot:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def use_extension(self, extension_class: type) -> Any:
        return self._inner.use_extension(_top_level(extension_class))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def snapshot(snapshot):
    return _TopLevelSnapshot(snapshot)


# --- reading the screen as text ------------------------------------------------------------------
def screen_text(app) -> str:
    """What the terminal shows, as plain text (for assertions that do not need a picture)."""
    from rich.console import Console

    update = app.screen._compositor.render_update(full=True)
    console = Console(
        file=io.StringIO(), width=app.size.width, color_system=None, record=True, legacy_windows=False
    )
    console.print(update)
    return console.export_text()


async def wait_for(
    pilot, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Let the app run until predicate() holds (bounded; not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    assert predicate(), f"timed out waiting for {what}"


# --- Patroni-shaped keys in a real etcd ------------------------------------------------------------
def member_json(port: int, api_port: int, role: str, lsn: int = 50331744, **extra: Any) -> str:
    data: dict[str, Any] = {
        "conn_url": f"postgres://127.0.0.1:{port}/postgres",
        "api_url": f"http://127.0.0.1:{api_port}/patroni",
        "state": "running",
        "role": role,
        "version": "4.1.5",
        "xlog_location": lsn,
    }
    if role == "replica":
        data.update(replay_lsn=lsn, receive_lsn=lsn, replication_state="streaming")
    data["timeline"] = 1
    data.update(extra)
    return json.dumps(data, separators=(",", ":"))


CONFIG = {
    "ttl": 30,
    "loop_wait": 10,
    "retry_timeout": 10,
    "maximum_lag_on_failover": 1048576,
    "postgresql": {"use_pg_rewind": True, "parameters": {"max_connections": 100}},
}


def write_batman(etcd_client, prefix: str = "/service/batman/", api_ports: tuple[int, int] = (1, 2)) -> None:
    """The keys of a fresh two-node Patroni 4.1 cluster (spec: patroni-observed.md).

    api_ports default to ports nothing listens on (1 and 2): the console's /patroni poller gets
    "connection refused" at once, which is what a test without nodes should see.
    """
    c = etcd_client
    c.put(prefix + "config", json.dumps(CONFIG, separators=(",", ":")))
    c.put(prefix + "initialize", "7712193093952314556")
    c.put(prefix + "status", '{"optime":50331744,"slots":{"postgresql1":50331744}}')
    lease = c.lease(60)
    c.put(prefix + "leader", "postgresql0", lease=lease)
    c.put(prefix + "members/postgresql0", member_json(5432, api_ports[0], "primary"), lease=lease)
    c.put(prefix + "members/postgresql1", member_json(5433, api_ports[1], "replica"))


def batman_console(etcd):
    """A console (HatuiApp) on `etcd` (the fixture), which holds write_batman's keys."""
    from hatui.app import HatuiApp

    c = etcd.client()
    write_batman(c)
    c.close()
    return HatuiApp([etcd.endpoint], "/service", "batman")


@pytest.fixture
def recorded_cluster() -> Cluster:
    from hatui.console_events import recorded_clusters

    return recorded_clusters()[-1]
