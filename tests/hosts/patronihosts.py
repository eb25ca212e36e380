"""Patroni on the same topology, for the comparison table (HATUI_HOSTS_SYSTEM=patroni).

The same node YAML as hatui's (hatui reads Patroni's format) plus what Patroni needs and hatui
finds itself: bench/systems.py's PatroniSetup, shared with the benchmark. The daemon runs as the
`postgres` OS user (Patroni starts PostgreSQL as whoever runs it), entered into its host's
namespace first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # systems.py, shared with the benchmark

from hostcluster import HostCluster, HostNode  # noqa: E402
from systems import PatroniSetup, patroni_missing  # noqa: E402,F401 - patroni_missing: for conftest

from hatui.osuser import server_user  # noqa: E402

SYSTEM_ENV = "HATUI_HOSTS_SYSTEM"


def system() -> str:
    return os.environ.get(SYSTEM_ENV, "hatui").lower()


class PatroniHostCluster(PatroniSetup, HostCluster):
    def daemon_command(self, node: HostNode) -> tuple[list[str], dict]:
        user = server_user()
        # nsenter needs root: the switch to `postgres` comes after it, inside the namespace.
        drop = [] if user.is_self else ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
        return drop + self.patroni_args(node), dict(user.env(), PYTHONUNBUFFERED="1")
