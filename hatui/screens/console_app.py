"""What the screens may ask of the console app: a narrow interface, so a screen never imports
`hatui.app` (which imports the screens) and the app can change behind it.

`HatuiApp` implements it; a screen declares `app: ConsoleApp` and calls only these.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..cluster import Cluster
from ..widgets.palette import HealthPalette


class ConsoleApp(Protocol):
    # state the screens render
    clusters: dict[str, Cluster]
    selected_scope: str | None
    read_only: bool
    log_files: dict[str, Any]
    extra_panel: Any  # app.ExtraPanel | None: the demo's hook
    source: Any  # the data source (etcd, or a recording)
    palette: HealthPalette
    conn: Any  # app.ConnStatus
    etcd_evidence: Any  # widgets.health.EtcdEvidence: when etcd last answered the console's probe

    @property
    def namespace_mode(self) -> bool: ...

    @property
    def current_cluster(self) -> Cluster | None: ...

    @property
    def etcd_verdict(self) -> str: ...  # ok | stalled | unknown (widgets.health)

    def mono(self) -> float: ...

    def forget_member(self, scope: str, name: str) -> bool: ...

    # what the screens tell the app
    def build_panel(self) -> Any: ...

    def screen_ready(self) -> None: ...

    def select_scope(self, scope: str) -> None: ...

    def push_screen(self, screen: Any, *args: Any, **kwargs: Any) -> Any: ...

    def start_switchover(self, scope: str | None = None, candidate: str | None = None,
                         failover: bool = False) -> None: ...

    def start_restart(self, member_name: str | None) -> None: ...

    def start_reload(self, member_name: str | None) -> None: ...

    def start_reinit(self, member_name: str | None) -> None: ...

    def start_pause(self, pause: bool) -> None: ...
