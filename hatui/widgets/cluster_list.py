"""The cluster selector shown when the console watches a whole namespace."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..cluster import Cluster
from .palette import DARK, HealthPalette


def cluster_label(cluster: Cluster, pal: HealthPalette) -> Text:
    if cluster.is_paused:
        return Text.assemble(("❚❚ ", pal.warn), cluster.scope)
    if not cluster.leader_name:
        return Text.assemble(("✗ ", pal.bad), cluster.scope)
    return Text.assemble(("★ ", pal.leader), cluster.scope)


class ClusterList(OptionList):
    DEFAULT_CSS = """
    ClusterList { width: 22; height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._labels: dict[str, str] = {}
        self.palette: HealthPalette = DARK

    def on_mount(self) -> None:
        self.border_title = "Clusters"

    def show(self, clusters: Mapping[str, Cluster], selected: str | None) -> None:
        scopes = sorted(clusters)
        labels = {s: cluster_label(clusters[s], self.palette) for s in scopes}
        if list(self._labels) != scopes:
            self.clear_options()
            self.add_options([Option(labels[s], id=s) for s in scopes])
        else:
            for s in scopes:
                if self._labels[s] != labels[s].markup:
                    self.replace_option_prompt(s, labels[s])
        self._labels = {s: labels[s].markup for s in scopes}
        if selected in clusters:
            index = scopes.index(selected)
            if self.highlighted != index:
                self.highlighted = index
