"""The demo's tour walked through with Pilot on real demo clusters, fencing on and off, at 160x45
(every step's whole text on screen, each naming real members, a step keeping its target after its
own action) and at 80x24 (every member row stays visible; the tour is a one-line strip, `v` opens it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import screen_text, wait_for
from demokit import running_demo

from hatui.demo import FAST_DCS, DemoRuntime
from hatui.screens.demo_panel import DemoApp

pytestmark = [pytest.mark.tui, pytest.mark.integration]


@pytest.fixture(params=[True, False], ids=["fencing", "no-fencing"])
def runtime(request) -> Iterator[DemoRuntime]:
    with running_demo("hatui-tour-", dcs=dict(FAST_DCS), fencing=request.param) as rt:
        yield rt


async def started(pilot, app: DemoApp) -> None:
    await wait_for(pilot, lambda: app.cluster_screen is not None
                   and app.cluster_screen.members_table.row_count == 2
                   and app.current_cluster is not None and app.current_cluster.leader_name, 30,
                   "both members and a leader")
    await pilot.pause(0.3)


def assert_step_visible(app: DemoApp) -> None:
    step = app.panel.current_step()
    text = screen_text(app)
    assert step.title in text
    for line in step.lines:
        assert line.strip() in text, f"step {step.key!r}: line not on screen: {line!r}"


async def test_tour_walk_through_at_160x45(runtime: DemoRuntime) -> None:
    app = DemoApp(runtime)
    members = {n.name for n in runtime.cluster.nodes}
    async with app.run_test(size=(160, 45)) as pilot:
        await started(pilot, app)
        panel = app.panel
        leader = app.current_cluster.leader_name
        keys = []
        await pilot.press("t")
        while panel.tour_index is not None:
            await pilot.pause(0.1)
            step = panel.current_step()
            keys.append(step.key)
            assert_step_visible(app)
            if step.key in ("failover", "freeze"):
                assert leader in step.do  # names the member it acts on
            if step.key == "rejoin":
                said = " ".join(step.lines)
                assert ("no pg_rewind" in said) == runtime.fencing and "pg_rewind" in said
            await pilot.press("t")
        assert keys[0] == "cluster" and "end" in keys
        assert all(m in members for m in panel.context().members)

        if not runtime.fencing:
            return
        # With fencing the failover takes seconds: do it from the tour and check the next steps
        # name the old leader, and the failover step keeps its target after the leader moved.
        await pilot.press("t")
        while panel.current_step().key != "failover":
            await pilot.press("t")
        await pilot.press("a")
        new = next(m for m in members if m != leader)
        await wait_for(pilot, lambda: app.current_cluster.leader_name == new, 60, f"{new} to lead")
        await pilot.pause(0.6)
        assert panel.current_step().do == f"kill -9 the daemon of {leader}"  # kept its target
        await pilot.press("t")
        assert panel.current_step().key == "splitbrain"
        assert panel.current_step().do == f"write a row to {leader}"
        assert_step_visible(app)
        await pilot.press("t")
        assert panel.current_step().key == "rejoin" and leader in panel.current_step().do
        assert_step_visible(app)
        await pilot.press("a")
        await wait_for(pilot, lambda: (m := app.current_cluster.member(leader)) is not None
                       and m.role == "replica" and m.state == "running", 90, f"{leader} back as a replica")


async def test_tour_at_80x24_keeps_every_member_row(runtime: DemoRuntime) -> None:
    app = DemoApp(runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        panel = app.panel
        await pilot.press("t", "t")
        await pilot.pause(0.3)
        assert panel.strip
        text = screen_text(app)
        cluster = app.current_cluster
        for m in cluster.members:
            line = next((ln for ln in text.splitlines() if m.name in ln and ("Leader" in ln or "Replica" in ln)), "")
            assert line, f"no row for {m.name} at 80x24"
            assert ("running" in line) or ("streaming" in line) or ("●" in line)
        assert "healthy" in text  # the health line
        assert f"tour 2/{len(panel.steps())} Automatic failover" in text
        await pilot.press("v")  # the whole step, on demand
        await pilot.pause(0.3)
        assert not panel.strip
        step = panel.current_step()
        flat = " ".join(screen_text(app).split())  # lines wrap at 80 columns
        assert " ".join(step.lines[-1].split()) in flat
