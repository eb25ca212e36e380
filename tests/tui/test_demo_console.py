"""The demo console (DemoApp + demo panel) on a real demo cluster, driven with Pilot.

The cluster is the demo's own (DemoRuntime: private etcd, `hatui daemon` nodes, PostgreSQL) with the
tests' fast timing. The keys are pressed as a person would: select the leader, `k` kills its
daemon, the console shows the new leader; `g` starts it again and it rejoins as a replica.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import screen_text, wait_for
from demokit import running_demo

from hatui.demo import FAST_DCS, DemoRuntime
from hatui.screens.demo_panel import DemoApp

pytestmark = [pytest.mark.tui, pytest.mark.integration]

SIZE = (140, 48)


@pytest.fixture
def runtime() -> Iterator[DemoRuntime]:
    with running_demo("hatui-demo-tui-", dcs=dict(FAST_DCS)) as rt:
        yield rt


def member_role(app: DemoApp, name: str) -> tuple[str, str]:
    cluster = app.current_cluster
    m = cluster.member(name) if cluster is not None else None
    return (m.role, m.state) if m is not None else ("", "")


async def test_panel_kills_leader_daemon_then_restarts_it(runtime: DemoRuntime) -> None:
    app = DemoApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.cluster_screen is not None
                       and app.cluster_screen.members_table.row_count == 2, 30, "both members")
        await wait_for(pilot, lambda: app.current_cluster is not None and app.current_cluster.leader_name, 30,
                       "a leader")
        old = app.current_cluster.leader_name
        new = next(n.name for n in runtime.cluster.nodes if n.name != old)
        panel = app.panel
        assert panel is not None
        text = screen_text(app)
        assert "kill -9 daemon" in text and old in text

        assert app.cluster_screen.members_table.select_member(old)
        await pilot.pause()
        await pilot.press("k")
        await wait_for(pilot, lambda: runtime.node_state(runtime.node(old)).daemon == "killed", 10,
                       "the daemon to be killed")
        await wait_for(pilot, lambda: app.current_cluster.leader_name == new, 90, f"{new} to lead")
        await pilot.pause(0.6)
        assert "killed" in panel.render_text().plain

        # The old leader's key may be gone from the table (its lease was revoked): `g` on the
        # selected, running member starts the stopped one.
        assert app.cluster_screen.members_table.select_member(new)
        await pilot.pause()
        await pilot.press("g")
        await wait_for(pilot, lambda: member_role(app, old) == ("replica", "running")
                       and app.current_cluster.leader_name == new, 120, f"{old} to rejoin as a replica")

        # The tour: `t` opens it (the theme moved to ctrl+t), `t` again goes on.
        theme = app.theme
        await pilot.press("t")
        await pilot.pause(0.1)
        assert panel.tour_index == 0 and app.theme == theme
        assert "tour 1/" in panel.render_text().plain
        await pilot.press("t")
        await pilot.pause(0.1)
        assert "Automatic failover" in panel.render_text().plain
        await pilot.press("ctrl+t")
        await pilot.pause(0.1)
        assert app.theme != theme

        # The write load reaches the leader and counts commits.
        await pilot.press("L")
        await wait_for(pilot, lambda: runtime.load.stats().commits > 5, 30, "commits from the load")
        assert runtime.load.stats().member == new
        await pilot.press("L")
        await pilot.pause(0.2)
        assert not runtime.load.running

        # The tour's "do it" key on the reload step changes the dynamic config through the REST API;
        # the change comes back through the etcd watch.
        for _ in range(10):
            if panel.current_step().key == "reload":
                break
            await pilot.press("t")
        assert panel.current_step().key == "reload"
        await pilot.press("a")

        def work_mem() -> str | None:
            cfg = app.current_cluster.config
            return ((cfg.data.get("postgresql") or {}).get("parameters") or {}).get("work_mem") if cfg else None

        await wait_for(pilot, lambda: work_mem() == "8MB", 30, "work_mem 8MB in the config key")
        await pilot.press("T")
        await pilot.pause(0.1)
        assert panel.current_step().key == "rejoin"
