"""The messages the console's threads post to the app, and the record a render leaves for benchmarks.

A thread worker never touches a widget: it posts one of these and the app's handler (on the UI
thread) applies it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ..widgets.rows import PatroniSample


# --- messages from threads ----------------------------------------------------------------------
class ClustersChanged(Message):
    """A newer cluster view is waiting in `HatuiApp._pending` (carries no data on purpose)."""


class ConnectionLost(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class PatroniPolled(Message):
    def __init__(self, scope: str, samples: dict[str, PatroniSample]) -> None:
        super().__init__()
        self.scope = scope
        self.samples = samples


class EtcdProbed(Message):
    """The etcd prober's result: answered (error "") or not (the reason)."""

    def __init__(self, error: str = "") -> None:
        super().__init__()
        self.error = error


class LeasePolled(Message):
    def __init__(self, scope: str, remaining: int | None) -> None:
        super().__init__()
        self.scope = scope
        self.remaining = remaining


@dataclass
class RenderRecord:
    revision: int
    received: float
    rendered: float
    painted: float | None = None
