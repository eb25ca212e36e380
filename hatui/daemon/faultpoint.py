"""Named points where the fault suite can freeze the daemon, to crash a host at an exact step.

A crash "between two steps" of the daemon (say, after PostgreSQL was told to wait for a new
synchronous standby and before `/sync` names it) cannot be hit reliably from outside by timing.
With HATUI_FAULT_POINTS set to a file path, the daemon checks that file at each named point; if a
line of it equals the point's name, it logs that and stops itself with SIGSTOP, and the test then
kills the frozen daemon, its guard and PostgreSQL with -9 (a host crash at that very step).
Without the variable (every real deployment) a point is one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("hatui.ha")


def reached(name: str) -> None:
    path = os.environ.get("HATUI_FAULT_POINTS")
    if not path:
        return
    try:
        with open(path) as f:
            armed = {line.strip() for line in f}
    except OSError:
        return
    if name in armed:
        log.warning("fault point %s reached: the daemon stops itself here (HATUI_FAULT_POINTS test hook)", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGSTOP)
