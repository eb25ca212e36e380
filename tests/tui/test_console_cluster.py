"""The console against a RUNNING two-node hatui cluster (private etcd, two `hatui daemon` processes
with PostgreSQL; hatui.launcher.LocalCluster), driven with Pilot. No stub node, no hand-written key.

Issue 6's live checks: both members show up soon after start; a killed leader is seen as its lease
counting down and then a new leader, in the same console; a switchover chosen in the console
completes and is shown. One cluster per module (per pytest-xdist worker); every test starts from
a leader with a streaming replica and leaves the cluster that way. No timing assertion: waits are
bounded only so a broken build fails instead of hanging.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import TERMINAL, screen_text, wait_for

from hatui.app import HatuiApp
from hatui.etcd.kv import EtcdHttp
from hatui.launcher import LocalCluster
from hatui.screens.confirm import ConfirmScreen
from hatui.screens.pickers import CandidateScreen
from hatui.widgets.member_table import MemberTable
from servers import healthy_for_each_test, make_tempdir, remove_tree

pytestmark = [pytest.mark.tui, pytest.mark.integration]

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


class Live:
    def __init__(self, cluster: LocalCluster) -> None:
        self.c = cluster
        self.etcd = EtcdHttp([cluster.etcd_endpoint])

    def healthy(self, timeout: float = 180) -> tuple[str, str]:
        """(leader, replica) once etcd shows a running leader and the other member streaming on
        the same timeline; restarts a daemon a test killed."""
        for i, node in enumerate(self.c.nodes):
            if node.daemon is None or not node.daemon.alive:
                self.c.start_node(i)

        def check() -> tuple[str, str] | None:
            try:
                cluster = self.etcd.read_cluster("/service", "batman")
            except Exception:  # noqa: BLE001 - etcd busy for a moment: ask again
                return None
            leader = cluster.leader_member
            others = [m for m in cluster.members if leader is None or m.name != leader.name]
            if leader is None or leader.state != "running" or len(others) != 1:
                return None
            replica = others[0]
            streaming = replica.state == "streaming" or replica.replication_state == "streaming"
            if not streaming or replica.timeline != leader.timeline:
                return None
            return leader.name, replica.name

        return self.c.wait_for(check, timeout, "a leader and a streaming replica")

    def console(self) -> HatuiApp:
        return HatuiApp([self.c.etcd_endpoint], "/service", "batman")


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    base = make_tempdir("hatui-tuic-")
    # kill_node stands for a crash of the leader's machine. hatui's fencing guard is a separate
    # process on that machine and would die with it, so it is off here: as after a real crash, the
    # dead leader's lease is left to run out (with the guard alive it would release the key at once).
    cluster = LocalCluster(base, 2, dcs=dict(FAST), extra_node={"fencing": {"enabled": False}})
    it = None
    try:
        cluster.start()
        it = Live(cluster)
        it.healthy()
        yield it
    finally:
        if it is not None:
            it.etcd.close()
        cluster.stop()
        remove_tree(base)


@pytest.fixture
def cluster(live: Live, request: pytest.FixtureRequest) -> Iterator[Live]:
    yield from healthy_for_each_test(live, request)


def table(app: HatuiApp) -> MemberTable:
    return app.cluster_screen.members_table


def role(app: HatuiApp, member: str) -> str:
    """The member's Role cell; "" while it has no row (its key expired with the dead leader's lease)."""
    try:
        return table(app).get_cell(member, "role").plain
    except Exception:  # noqa: BLE001 - no such row (yet)
        return ""


def shows_leader(app: HatuiApp, member: str) -> bool:
    return app.cluster_screen is not None and "★" in role(app, member)


async def started(pilot, app: HatuiApp, leader: str) -> None:
    await wait_for(pilot, lambda: shows_leader(app, leader) and table(app).row_count == 2, timeout=30,
                   what="both members, the leader marked")


async def test_both_members_shown_with_roles_and_lsns(cluster: Live) -> None:
    leader, replica = cluster.healthy()
    app = cluster.console()
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app, leader)
        assert "★ Leader" in role(app, leader)
        assert role(app, replica) == "Replica"
        # The REST poller fills in live data from each node's GET /patroni.
        await wait_for(pilot, lambda: len(app.patroni.get("batman", {})) == 2, timeout=30, what="/patroni polls")
        samples = app.patroni["batman"]
        assert all(s.data for s in samples.values()), {k: s.error for k, s in samples.items()}
        await wait_for(pilot, lambda: (app.lease_remaining.get("batman") or 0) > 0, timeout=30,
                       what="the leader's lease")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert leader in text and replica in text and "streaming" in text
        assert "connected" in text
        assert " · lease " in text and "of 20s" in text


async def test_killed_leader_lease_counts_down_then_new_leader(cluster: Live) -> None:
    leader, replica = cluster.healthy()
    app = cluster.console()
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app, leader)
        await wait_for(pilot, lambda: (app.lease_remaining.get("batman") or 0) > 0, timeout=30,
                       what="the leader's lease")
        cluster.c.kill_node(leader, postgres_too=True)  # a crash: nobody renews the lease any more

        # While the dead leader's key lives, the console counts its lease down.
        seen: list[int] = []

        def record() -> bool:
            remaining = app.lease_remaining.get("batman")
            if app.current_cluster is not None and app.current_cluster.leader_name == leader and remaining:
                if not seen or remaining != seen[-1]:
                    seen.append(remaining)
            # Three readings in a row going down. (The first ones may predate the kill, or catch a
            # keepalive that was already on its way to etcd.)
            return len(seen) >= 3 and seen[-3] > seen[-2] > seen[-1]

        await wait_for(pilot, record, timeout=40, what="the dead leader's lease counting down")
        assert "★" in role(app, leader)  # still the leader on paper until the key expires
        await pilot.pause(0.1)
        text = screen_text(app)
        assert " · lease " in text and "s of 20s" in text

        # Then the key expires (the dead leader's member key with it: same lease) and the replica
        # takes over: same console, no restart.
        await wait_for(pilot, lambda: shows_leader(app, replica), timeout=90, what="the new leader in the table")
        assert "★" not in role(app, leader)
        await pilot.pause(0.1)
        assert f"{replica}" in screen_text(app)
        kinds = [e.text for e in app.events]
        # Seen as two changes, or as one when the watch coalesced the expiry and the new lock.
        assert any(k in (f"{replica} took the leader lock", f"leader changed: {leader} → {replica}")
                   for k in kinds), kinds
        assert app.current_cluster.leader_name == replica
        # The crashed node restarted: the same console shows it back, as a replica.
        cluster.c.start_node(cluster.c.nodes.index(cluster.c.node(leader)))
        await wait_for(pilot, lambda: role(app, leader) == "Replica", timeout=120, what="the old leader back as replica")
    assert cluster.healthy() == (replica, leader)


async def test_switchover_chosen_in_the_console_completes(cluster: Live) -> None:
    leader, replica = cluster.healthy()
    app = cluster.console()
    async with app.run_test(size=TERMINAL) as pilot:
        await started(pilot, app, leader)
        # Eligibility comes from the replica's own /patroni answer: wait for it.
        await wait_for(pilot, lambda: bool(getattr(app.patroni.get("batman", {}).get(replica), "data", None)),
                       timeout=30, what="the replica's /patroni")
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, CandidateScreen), what="the candidate list")
        await pilot.pause(0.1)
        assert replica in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.pause(0.1)
        assert f"{leader} → {replica}" in screen_text(app)
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: any(f"switchover done, {replica} is the leader" in n.message for n in app._notifications),
            timeout=60,
            what="the toast from the watch",
        )
        await wait_for(pilot, lambda: shows_leader(app, replica), timeout=30, what="the new leader in the table")
        assert "★" not in role(app, leader)
        # The old leader is shown rejoining as a replica, in the same console.
        await wait_for(pilot, lambda: role(app, leader) == "Replica", timeout=90, what="the old leader as replica")
    assert cluster.etcd.read_cluster("/service", "batman").leader_name == replica
    assert cluster.healthy() == (replica, leader)
