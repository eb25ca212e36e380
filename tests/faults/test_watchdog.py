"""The fencing guard's watchdog path (issue 8: "a Linux watchdog device is used when present and
configured"), with a real daemon, guard, etcd and PostgreSQL.

No machine here has a watchdog device, and a real one would reset the test machine. The device
is therefore a regular file the guard is told to use: that exercises every step the guard takes
with a device (open when armed, a write per lease refresh, the magic close 'V' when disarmed);
the ioctl that sets the timeout fails on a file and is logged, which the test checks too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import hatui_cli as hatui, log_has, wait_healthy

from servers import make_tempdir, remove_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def device() -> Iterator[Path]:
    home = make_tempdir("hatui-watchdog-")
    try:
        yield Path(home) / "watchdog"
    finally:
        remove_tree(home)


def test_watchdog_fed_while_leader_and_closed_when_not(fault_cluster, device: Path) -> None:
    device.write_bytes(b"")
    cluster = fault_cluster(1, start=False, extra_node={"watchdog": {"mode": "automatic", "device": str(device)}})
    cluster.start()
    leader = wait_healthy(cluster)
    cluster.wait_for(lambda: device.read_bytes().count(b"1") >= 3, 30, "three keepalives written to the device")
    assert b"V" not in device.read_bytes()
    assert log_has(leader, f"fencing guard: watchdog {device} activated")
    assert log_has(leader, "fencing guard could not set the watchdog timeout")  # a file has no ioctl

    # Paused: nothing is guarded, so the device is closed with the magic character.
    assert hatui(cluster, "pause", "batman", "--wait").returncode == 0
    cluster.wait_for(lambda: device.read_bytes().endswith(b"V"), 30, "the magic close on pause")
    written = len(device.read_bytes())
    assert hatui(cluster, "resume", "batman", "--wait").returncode == 0
    cluster.wait_for(lambda: device.read_bytes()[written:].count(b"1") >= 2, 30, "fed again after resume")

    # A clean stop of the node: PostgreSQL stops, the guard closes the device instead of letting
    # it reset the machine.
    cluster.stop()
    data = device.read_bytes()
    assert data.endswith(b"V"), data[-20:]
