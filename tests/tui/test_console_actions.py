"""Write actions end to end: key -> picker -> confirmation naming the member -> REST call, and the
outcome reported only when the leader key moves in a REAL etcd.

The nodes' REST APIs are small recording HTTP servers answering like Patroni's (GET /patroni,
POST /switchover): what is under test is what the console sends and what it claims, not a node.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import pytest
from conftest import TERMINAL, batman_console, member_json, screen_text, wait_for, write_batman

from hatui.app import HatuiApp
from hatui.screens.confirm import ConfirmScreen
from hatui.screens.pickers import CandidateScreen, RestartScreen

pytestmark = [pytest.mark.tui, pytest.mark.integration]

PREFIX = "/service/batman/"


class RecordingNode:
    """Answers GET /patroni as `name` would and records every other request."""

    def __init__(self, name: str, role: str) -> None:
        self.name, self.role = name, role
        self.requests: list[tuple[str, str, dict]] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _reply(self, status: int, body: str, ctype: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                xlog = (
                    {"location": 50331744}
                    if node.role == "primary"
                    else {"received_location": 50331744, "replayed_location": 50331744, "paused": False}
                )
                self._reply(
                    200,
                    json.dumps(
                        {
                            "state": "running",
                            "role": node.role,
                            "timeline": 1,
                            "xlog": xlog,
                            "patroni": {"version": "4.1.5", "scope": "batman", "name": node.name},
                        }
                    ),
                    "application/json",
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                node.requests.append((self.command, self.path, body))
                # Patroni's answer after it saw the new leader; the console must not trust it.
                self._reply(200, f'Successfully switched over to "{body.get("candidate")}"')

            do_PATCH = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_switchover_picks_eligible_confirms_and_waits_for_the_watch(etcd) -> None:
    c = etcd.client()
    with RecordingNode("postgresql0", "primary") as n0, RecordingNode("postgresql1", "replica") as n1:
        write_batman(c, api_ports=(n0.port, n1.port))
        app = HatuiApp([etcd.endpoint], "/service", "batman")
        async with app.run_test(size=TERMINAL) as pilot:
            await wait_for(
                pilot,
                lambda: app.cluster_screen is not None and app.cluster_screen.members_table.row_count == 2,
                what="the table",
            )
            titles = [cmd.title for cmd in app.get_system_commands(app.screen)]
            assert "switchover to postgresql1" in titles and "restart postgresql0" in titles

            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, CandidateScreen), what="the candidate list")
            await pilot.press("enter")  # the only eligible replica is highlighted
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
            await pilot.pause(0.1)
            text = screen_text(app)
            assert "postgresql0 → postgresql1" in text  # names the members
            assert "demoted" in text and "promoted" in text  # and the consequence
            await pilot.press("y")
            await wait_for(pilot, lambda: n0.requests, what="the REST call to the leader")
            assert n0.requests[0] == (
                "POST",
                "/switchover",
                {"leader": "postgresql0", "candidate": "postgresql1", "scheduled_at": None},
            )
            assert not n1.requests
            await pilot.pause(0.2)
            # The node said "Successfully switched over", but etcd has not moved: no success claimed.
            assert not any("switchover done" in n.message for n in app._notifications)
            assert app.current_cluster.leader_name == "postgresql0"

            c.delete(PREFIX + "leader")
            lease = c.lease(60)
            c.put(PREFIX + "members/postgresql1", member_json(5433, n1.port, "primary"), lease=lease)
            c.put(PREFIX + "leader", "postgresql1", lease=lease)
            await wait_for(
                pilot,
                lambda: any(
                    "switchover done, postgresql1 is the leader" in n.message for n in app._notifications
                ),
                what="the toast from the watch",
            )
    c.close()


async def test_pause_patches_config_through_the_leader(etcd) -> None:
    c = etcd.client()
    with RecordingNode("postgresql0", "primary") as n0, RecordingNode("postgresql1", "replica") as n1:
        write_batman(c, api_ports=(n0.port, n1.port))
        app = HatuiApp([etcd.endpoint], "/service", "batman")
        async with app.run_test(size=TERMINAL) as pilot:
            await wait_for(pilot, lambda: app.current_cluster is not None, what="data")
            await pilot.press("p")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
            await pilot.pause(0.1)
            assert "maintenance mode" in screen_text(app)
            await pilot.press("y")
            await wait_for(pilot, lambda: n0.requests, what="the PATCH")
            assert n0.requests[0] == ("PATCH", "/config", {"pause": True})
            assert not n1.requests  # the leader answered: nobody else is asked
    c.close()


async def test_restart_pending_only_and_reload_go_to_the_selected_member(etcd) -> None:
    c = etcd.client()
    with RecordingNode("postgresql0", "primary") as n0, RecordingNode("postgresql1", "replica") as n1:
        write_batman(c, api_ports=(n0.port, n1.port))
        app = HatuiApp([etcd.endpoint], "/service", "batman")
        async with app.run_test(size=TERMINAL) as pilot:
            await wait_for(
                pilot,
                lambda: app.cluster_screen is not None and app.cluster_screen.members_table.row_count == 2,
                what="the table",
            )
            app.cluster_screen.members_table.select_member("postgresql1")
            await pilot.pause()
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, RestartScreen), what="the restart choices")
            await pilot.click("#mode-pending")
            await pilot.click("#restart-next")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
            await pilot.pause(0.1)
            text = screen_text(app)
            assert "Restart PostgreSQL on postgresql1" in text and "only if a restart is" in text
            await pilot.press("y")
            await wait_for(pilot, lambda: n1.requests, what="the restart request")
            assert n1.requests[0] == ("POST", "/restart", {"restart_pending": True})

            await pilot.press("R")
            await wait_for(
                pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the reload confirmation"
            )
            await pilot.press("n")  # cancelled: nothing is sent
            await pilot.pause(0.2)
            assert len(n1.requests) == 1
            await pilot.press("R")
            await wait_for(
                pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the reload confirmation"
            )
            await pilot.press("y")
            await wait_for(pilot, lambda: len(n1.requests) == 2, what="the reload request")
            assert n1.requests[1] == ("POST", "/reload", {})
            assert not n0.requests
    c.close()


async def test_q_quits_and_stops_the_watch(etcd) -> None:
    app = batman_console(etcd)
    async with app.run_test(size=TERMINAL) as pilot:
        await wait_for(pilot, lambda: app.current_cluster is not None, what="data")
        watcher = app.source.watcher
        await pilot.press("q")
        await pilot.pause()
    assert watcher is not None and watcher._stop.is_set()
    assert app._exit_renderables is not None and not app.is_running
