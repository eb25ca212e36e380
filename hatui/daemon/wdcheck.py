"""`watchdog.mode: required` (Patroni): no leader lock without a usable watchdog device.

The fencing guard opens and feeds the device while this node leads (hatui/daemon/fence.py). In
`required` mode the daemon first checks that there is a device it can open for writing; if not,
it does not bootstrap and does not take the leader lock, as Patroni refuses to promote when it
cannot activate the watchdog. The check does not open the device: opening a real watchdog arms
it, and only the guard may do that.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("hatui.ha")


def unusable_required_watchdog(node: Any) -> str | None:
    """Why the required watchdog cannot be used, or None (not required, or usable)."""
    if "watchdog" not in (node.raw or {}) or node.watchdog.mode != "required":
        return None
    device = node.watchdog.device
    if not os.path.exists(device):
        return f"watchdog device {device} does not exist"
    if not os.access(device, os.W_OK):
        return f"watchdog device {device} is not writable by this user"
    return None


def may_lead(node: Any, what: str) -> bool:
    """False (with the reason logged) when `watchdog.mode: required` forbids `what`."""
    reason = unusable_required_watchdog(node)
    if reason is None:
        return True
    log.error("watchdog.mode is required but %s: not %s", reason, what)
    return False
