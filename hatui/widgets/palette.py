"""Health colours per theme kind. Colour is a second cue only: every state also has a text marker.

Truecolour themes get colours chosen for contrast on their background; ANSI themes get the basic
named colours, which a 16-colour terminal maps to its own palette (and the user's choices).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HealthPalette:
    ok: str
    warn: str
    bad: str
    leader: str
    muted: str
    info: str

    def for_health(self, health: str) -> str:
        return {
            "leader": self.leader,
            "streaming": self.ok,
            "running": self.ok,
            "lagging": self.bad,
            "starting": self.warn,
            "stopped": self.bad,
            "silent": self.bad,
            "expiring": self.bad,
            "gone": self.muted,
        }.get(health, self.muted)


DARK = HealthPalette(
    ok="#4EBF71", warn="#ffa62b", bad="bold #ff6b81", leader="bold #5fb3ff", muted="dim", info="#c792ea"
)
LIGHT = HealthPalette(
    ok="#1a7f37", warn="#9a6700", bad="bold #cf222e", leader="bold #0550ae", muted="dim", info="#8250df"
)
ANSI_DARK = HealthPalette(
    ok="green", warn="yellow", bad="bold red", leader="bold cyan", muted="dim", info="magenta"
)
ANSI_LIGHT = HealthPalette(
    ok="green", warn="bold magenta", bad="bold red", leader="bold blue", muted="dim", info="magenta"
)


def palette_for(dark: bool, ansi: bool) -> HealthPalette:
    if ansi:
        return ANSI_DARK if dark else ANSI_LIGHT
    return DARK if dark else LIGHT
