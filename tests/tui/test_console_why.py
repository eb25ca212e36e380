"""The console's "why" lines and event timeline against a REAL etcd, driven with Pilot.

A replica's member key changes (its daemon publishes that it lags past maximum_lag_on_failover,
or it is tagged nofailover without publishing a decision, as a Patroni node would): the why line
under the members table says so, from the watch. Events written under events/ appear on the event
screen (`y`) while it is open. The time from the etcd write to the painted reason is printed
(shown with -s), never asserted: speed is for bench/.
"""

from __future__ import annotations

import time

import pytest
from conftest import TERMINAL, member_json, screen_text, wait_for, write_batman

from hatui.app import HatuiApp
from hatui.events import make_event
from hatui.screens.events import EventsScreen
from hatui.widgets.why_pane import WhyPane

pytestmark = [pytest.mark.tui, pytest.mark.integration]

PREFIX = "/service/batman/"
LAG_WORDS = "it lags 12.0 MB (12582912 bytes) behind, more than maximum_lag_on_failover (1048576 bytes)"


def why(app: HatuiApp) -> dict[str, tuple[str, str]]:
    pane = app.cluster_screen.query_one(WhyPane)
    return {name: (verdict, detail) for name, verdict, detail in pane.lines}


async def test_reason_for_a_non_eligible_replica_appears_from_the_watch(etcd) -> None:
    c = etcd.client()
    write_batman(c)
    app = HatuiApp([etcd.endpoint], "/service", "batman")
    async with app.run_test(size=TERMINAL) as pilot:
        await wait_for(pilot, lambda: app.cluster_screen is not None and "postgresql1" in why(app),
                       what="the why lines")
        assert why(app)["postgresql0"][0] == "leader"
        assert why(app)["postgresql1"][0] == "yes"

        decision = {"message": "no action. I am (postgresql1), a secondary, and following a leader (postgresql0)",
                    "leader": "postgresql0", "eligible": False, "why_not": LAG_WORDS, "lag": 12582912}
        started = time.monotonic()
        c.put(PREFIX + "members/postgresql1",
              member_json(5433, 2, "replica", lsn=50331744 - 12582912, decision=decision))
        await wait_for(pilot, lambda: why(app)["postgresql1"][0] == "no", what="the lag reason")
        print(f"reason painted {time.monotonic() - started:.3f}s after the etcd write")
        assert why(app)["postgresql1"][1].startswith(LAG_WORDS)
        await pilot.pause()
        assert "✗ not promotable: it lags 12.0 MB" in screen_text(app)

        # A member without a published decision (a Patroni node): the console's own words.
        c.put(PREFIX + "members/postgresql1", member_json(5433, 2, "replica", tags={"nofailover": True}))
        await wait_for(pilot, lambda: why(app)["postgresql1"] == ("no", "it is tagged nofailover"),
                       what="the nofailover reason")
    c.close()


async def test_event_screen_follows_new_events(etcd) -> None:
    c = etcd.client()
    write_batman(c)
    first = make_event("failover", "postgresql0", "postgresql0 took the leader lock: there was no leader",
                       timeline=2)
    c.put(PREFIX + "events/" + first.id, first.to_value())
    app = HatuiApp([etcd.endpoint], "/service", "batman")
    async with app.run_test(size=TERMINAL) as pilot:
        await wait_for(pilot, lambda: app.cluster_screen is not None and "postgresql1" in why(app),
                       what="the cluster")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, EventsScreen), what="the event screen")
        await wait_for(pilot, lambda: "there was no leader" in screen_text(app), what="the first event")
        second = make_event("pause", "postgresql0", "automatic failover paused: the daemons leave PostgreSQL alone")
        c.put(PREFIX + "events/" + second.id, second.to_value())
        await wait_for(pilot, lambda: "automatic failover paused" in screen_text(app), what="the new event")
        text = screen_text(app)
        assert text.index("automatic failover paused") < text.index("there was no leader")  # newest first
        await pilot.press("y")
        await wait_for(pilot, lambda: not isinstance(app.screen, EventsScreen), what="back to the cluster")
    c.close()
