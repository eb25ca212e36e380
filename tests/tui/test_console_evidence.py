"""Health from evidence, against real servers: the console never says healthy without proof.

- etcd SIGSTOPped: the watch just goes quiet, but the console's own probe gets no answer, so the
  banner says STALLED (and the cluster is not called healthy) until etcd answers again.
- The demo cluster with fencing off: a replica's PostgreSQL killed with -9 shows as down from the
  console's own probe of its port, before its daemon notices; the leader's daemon killed with -9
  stops being "healthy" as soon as its REST API stops answering, with its lease counting down; once
  its member key expires it stays in the table, greyed, and `g` on that row starts it again.

How long each took is printed (the benchmark's business); the tests assert what is shown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import TERMINAL, batman_console, screen_text, wait_for
from demokit import running_demo

from hatui.app import HatuiApp
from hatui.demo import DemoRuntime
from hatui.screens.demo_panel import DemoApp

pytestmark = [pytest.mark.tui, pytest.mark.integration]


def state_cell(app: HatuiApp, member: str) -> str:
    table = app.cluster_screen.members_table
    try:
        return table.get_cell(member, "state").plain
    except Exception:  # noqa: BLE001 - the row is not there (yet)
        return ""


async def test_stalled_etcd_is_shown_as_stalled(etcd) -> None:
    app = batman_console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await wait_for(pilot, lambda: "connected" in screen_text(app) and app.etcd_verdict == "ok",
                       what="the console connected, etcd answering")
        etcd.suspend()
        try:
            t0 = time.monotonic()
            await wait_for(pilot, lambda: "etcd STALLED" in screen_text(app), 15, "the banner to say stalled")
            print(f"etcd SIGSTOP -> banner says STALLED after {time.monotonic() - t0:.2f} s")
            text = screen_text(app)
            assert "● healthy" not in text
            assert "STALE (etcd stalled)" in text
        finally:
            etcd.resume()
        await wait_for(pilot, lambda: app.etcd_verdict == "ok" and "etcd STALLED" not in screen_text(app), 15,
                       "the banner back to connected")


@pytest.fixture
def unfenced() -> Iterator[DemoRuntime]:
    # loop_wait 5: a daemon notices its dead PostgreSQL only at its next cycle, so the console's
    # own probe is what shows it first. ttl 20 >= 5 + 2 * 3.
    dcs = {"ttl": 20, "loop_wait": 5, "retry_timeout": 3}
    with running_demo("hatui-evidence-", fencing=False, dcs=dcs) as rt:
        yield rt


async def test_dead_postgres_and_dead_leader_daemon_are_never_healthy(unfenced: DemoRuntime) -> None:
    rt = unfenced
    app = DemoApp(rt)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.cluster_screen is not None
                       and app.cluster_screen.members_table.row_count == 2, 30, "both members")
        await wait_for(pilot, lambda: "● healthy" in screen_text(app), 30, "a healthy cluster to start from")
        leader = app.current_cluster.leader_name
        replica = next(n.name for n in rt.cluster.nodes if n.name != leader)

        # 1. The replica's PostgreSQL killed: its row says so from the console's own probe.
        t0 = time.monotonic()
        rt.kill_postgres(replica)
        await wait_for(pilot, lambda: "PostgreSQL down" in state_cell(app, replica), 10,
                       f"{replica}'s row to say PostgreSQL down")
        print(f"replica PostgreSQL kill -9 -> row says down after {time.monotonic() - t0:.2f} s")
        assert "● healthy" not in screen_text(app)
        await wait_for(pilot, lambda: "● healthy" in screen_text(app), 60, "the replica back, healthy again")

        # 2. The leader's daemon killed (fencing off: its PostgreSQL goes on): no longer healthy,
        # and its row shows its lease counting down.
        t0 = time.monotonic()
        rt.kill_daemon(leader)
        await wait_for(pilot, lambda: "REST silent" in state_cell(app, leader), 10,
                       f"{leader}'s row to stop saying healthy")
        print(f"leader daemon kill -9 -> row not healthy after {time.monotonic() - t0:.2f} s")
        await wait_for(pilot, lambda: "lease " in state_cell(app, leader), 5, "the lease countdown on the row")
        first = state_cell(app, leader)
        assert "● healthy" not in screen_text(app)
        await wait_for(pilot, lambda: state_cell(app, leader) != first and "lease" in state_cell(app, leader), 5,
                       "the countdown to move")

        # 3. Its key expires: the member stays in the table, greyed, and can be started from it.
        await wait_for(pilot, lambda: app.current_cluster.member(leader) is None, 60, f"{leader}'s key to expire")
        await wait_for(pilot, lambda: "gone, last seen" in state_cell(app, leader), 5, "the gone row")
        assert app.cluster_screen.members_table.select_member(leader)
        await pilot.pause()
        await pilot.press("g")
        await wait_for(pilot, lambda: rt.node_state(rt.node(leader)).daemon == "running", 20, "the daemon started")
        await wait_for(pilot, lambda: app.current_cluster.member(leader) is not None, 60,
                       f"{leader}'s key back in etcd")
        await wait_for(pilot, lambda: "gone" not in state_cell(app, leader), 10, "the row no longer gone")
