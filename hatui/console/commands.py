"""The console's command palette: every key action, plus per-member entries (show, switchover,
restart, reload, reinit) for the selected cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from textual.app import SystemCommand
from textual.screen import Screen

from ..screens.keymap import ACTIONS, KeyAction, visible_actions
from ..screens.member_detail import MemberDetailScreen


class PaletteCommands:
    """The app's `get_system_commands`."""

    # A part of HatuiApp (hatui/app.py), which inherits it: `self` is the app, and the state
    # used here is set up in HatuiApp.__init__.

    # --- command palette --------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        cs = self.cluster_screen
        for a in visible_actions(self.read_only, self.action_table):
            if a.action in ("quit", "command_palette"):
                continue
            yield SystemCommand(a.description, f"key {a.key_label}", self._palette_callback(a))
        cluster = self.current_cluster
        if cluster is None or cs is None:
            return
        for m in cluster.members:
            yield SystemCommand(
                f"show {m.name}",
                f"member detail of {m.name}",
                lambda n=m.name: self.push_screen(MemberDetailScreen(cluster.scope, n)),
            )
        for name in sorted(self.departed.get(cluster.scope, {})):
            yield SystemCommand(
                f"show {name} (gone)",
                f"{name}'s member key expired: what the console still knows",
                lambda n=name: self.push_screen(MemberDetailScreen(cluster.scope, n)),
            )
        if self.read_only:
            return
        for m in cluster.members:
            if m.name != cluster.leader_name and cluster.leader_name:
                yield SystemCommand(
                    f"switchover to {m.name}",
                    f"make {m.name} the leader of {cluster.scope}",
                    lambda n=m.name: self.start_switchover(cluster.scope, n),
                )
            yield SystemCommand(
                f"restart {m.name}", f"restart PostgreSQL on {m.name}", lambda n=m.name: self.start_restart(n)
            )
            yield SystemCommand(
                f"reload {m.name}",
                f"reload the configuration of {m.name}",
                lambda n=m.name: self.start_reload(n),
            )
            if m.name != cluster.leader_name:
                yield SystemCommand(
                    f"reinit {m.name}",
                    f"re-create {m.name} from the leader",
                    lambda n=m.name: self.start_reinit(n),
                )

    def _palette_callback(self, a: KeyAction) -> Callable[[], Any]:
        async def run() -> None:
            if a in ACTIONS and a.where == "screen":
                cs = self.cluster_screen
                if cs is not None:
                    await self.run_action(a.action, cs)
            elif a in ACTIONS:
                await self.run_action(a.action)
            else:
                await self.action_panel(a.action)

        return run
