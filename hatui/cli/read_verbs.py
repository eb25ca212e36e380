"""The reading verbs: list, topology, history, explain, events, show-config. None of them writes."""

from __future__ import annotations

import time
from typing import Any

import click

from .common import Ctl, get_ctl, timestamp
from .params import cluster_argument, complete_members, option_format


# --- reading verbs ---------------------------------------------------------------------------
def _lag_detail(ctl: Ctl, cluster: Any) -> dict:
    from .common import probe_members

    replicas = [m for m in cluster.members if m.name != cluster.leader_name]
    statuses = probe_members(ctl, replicas, timeout=1.5)
    return {m.name: (statuses.get(m.name) or None) for m in replicas}


def _warn_if_missing(ctl: Ctl, scope: str, cluster: Any) -> None:
    empty = not cluster.members and cluster.initialize is None and cluster.config is None and cluster.leader is None
    if empty:
        others = sorted(ctl.etcd.read_namespace(ctl.namespace))
        hint = f"clusters there: {', '.join(others)}" if others else "no cluster there at all"
        click.echo(f"Warning: nothing under {ctl.namespace}/{scope}/ on etcd {ctl.cfg.etcd_text} ({hint})",
                   err=True)


def _list(ctl: Ctl, names: tuple[str, ...], fmt: str, extended: bool, ts: bool, w: bool,
          watch: float | None, lag_detail: bool) -> None:
    from ..views import render_members

    interval = watch or (2.0 if w else None)
    targets: list[str | None] = list(names) or [None]
    while True:
        if interval:
            click.clear()
        if ts:
            click.echo(timestamp(0))
        for name in targets:
            scope, cluster = ctl.resolve(name)
            detail = _lag_detail(ctl, cluster) if lag_detail else None
            click.echo(render_members(cluster, fmt, extended, detail, name=scope))
            if name and not interval:
                _warn_if_missing(ctl, scope, cluster)
        if not interval:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


@click.command("list")
@cluster_argument(nargs=-1)
@click.option("-e", "--extended", is_flag=True, help="Show pending restarts, scheduled restarts and tags")
@click.option("-t", "--timestamp", "ts", is_flag=True, help="Print a timestamp first")
@option_format
@click.option("-W", "w", is_flag=True, help="Refresh every 2 seconds")
@click.option("-w", "--watch", type=float, help="Refresh every SECONDS")
@click.option("-x", "--lag-detail", is_flag=True,
              help="hatui: add lag in bytes and the replay delay (asks each replica's REST API)")
def list_cmd(cluster_names: tuple[str, ...], extended: bool, ts: bool, fmt: str, w: bool,
             watch: float | None, lag_detail: bool) -> None:
    """List the members of clusters (default: the configured or only one)."""
    _list(get_ctl(), cluster_names, fmt, extended, ts, w, watch, lag_detail)


@click.command("topology")
@cluster_argument(nargs=-1)
@click.option("-W", "w", is_flag=True, help="Refresh every 2 seconds")
@click.option("-w", "--watch", type=float, help="Refresh every SECONDS")
def topology_cmd(cluster_names: tuple[str, ...], w: bool, watch: float | None) -> None:
    """Show the replication tree: leader first, replicas under their upstream."""
    _list(get_ctl(), cluster_names, "topology", False, False, w, watch, False)


@click.command("history")
@cluster_argument()
@option_format
def history_cmd(cluster_name: str | None, fmt: str) -> None:
    """Show the timeline history: failovers and switchovers."""
    from ..views import render_history

    _, cluster = get_ctl().resolve(cluster_name)
    click.echo(render_history(cluster, fmt))


@click.command("explain")
@cluster_argument()
@click.argument("member", required=False, shell_complete=complete_members)
@click.option("-f", "--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True,
              help="Output format")
def explain_cmd(cluster_name: str | None, member: str | None, fmt: str) -> None:
    """Say why: who leads since when, who could be promoted now and why not, what a switchover would do."""
    from .explain import do_explain

    do_explain(get_ctl(), cluster_name, member, fmt)


@click.command("events")
@cluster_argument()
@click.option("-f", "--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True,
              help="Output format (json: a list; with --follow, one object per line)")
@click.option("--follow", is_flag=True, help="Keep printing new events as they are recorded")
@click.option("-k", "--kind", "kinds", multiple=True, help="Only events of this kind (repeatable)")
@click.option("-n", "--limit", type=click.IntRange(1), help="Only the last N events")
def events_cmd(cluster_name: str | None, fmt: str, follow: bool, kinds: tuple[str, ...], limit: int | None) -> None:
    """The cluster's event timeline: leader changes and why, demotions, rewinds, config changes..."""
    from .explain import do_events
    from ..events import KINDS

    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise click.BadParameter(f"unknown kind {unknown[0]!r}; kinds: {', '.join(KINDS)}", param_hint="--kind")
    do_events(get_ctl(), cluster_name, fmt, follow, kinds, limit)


@click.command("show-config")
@cluster_argument()
def show_config_cmd(cluster_name: str | None) -> None:
    """Print the dynamic configuration as YAML."""
    from .edit import do_show_config

    do_show_config(get_ctl(), cluster_name)
