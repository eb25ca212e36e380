"""The README's on_role_change example (examples/vip.sh) moves its address, run as hatui runs a
callback (action, role, scope), inside a private network namespace so the host is not touched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "examples" / "vip.sh"


def test_readme_shows_the_tested_script() -> None:
    assert SCRIPT.read_text() in (ROOT / "README.md").read_text()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
                    reason="needs root, unshare and ip (iproute2) for a private network namespace")
def test_vip_follows_the_primary_role() -> None:
    steps = ("on_start replica batman", "on_role_change primary batman", "on_role_change primary batman",
             "on_role_change replica batman", "on_role_change primary batman", "on_stop primary batman")
    shell = "ip link set lo up; " + "; ".join(
        f"{SCRIPT} {s}; echo \"{s}: $(ip -o -4 addr show dev lo | grep -c 10.0.0.100/32)\"" for s in steps)
    res = subprocess.run(["unshare", "-n", "sh", "-c", shell], capture_output=True, text=True, timeout=60,
                         check=False)
    if res.returncode != 0 and "Operation not permitted" in res.stderr:
        pytest.skip(f"no private network namespace here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"{s}: {n}" for s, n in zip(steps, (0, 1, 1, 0, 1, 0), strict=True)]
