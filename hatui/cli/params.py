"""What the verbs' declarations share: the output formats, the cluster and member arguments (with
shell completion from etcd), and the --force, --format and --role options.
"""

from __future__ import annotations

from typing import Any

import click

from .common import ROLE_CHOICES, Ctl

FORMATS = ["pretty", "tsv", "json", "yaml", "yml"]


# --- shell completion ------------------------------------------------------------------------
def _completion_ctl(ctx: click.Context) -> Ctl:
    root = ctx.find_root()
    options = dict(root.params)
    options["etcd_timeout"] = 0.5
    return Ctl(options)


def complete_clusters(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    try:
        ctl = _completion_ctl(ctx)
        try:
            names = sorted(ctl.etcd.read_namespace(ctl.namespace))
        finally:
            ctl.close()
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []
    return [click.shell_completion.CompletionItem(n) for n in names if n.startswith(incomplete)]


def complete_members(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    try:
        ctl = _completion_ctl(ctx)
        try:
            name = ctx.params.get("cluster_name")
            _, cluster = ctl.resolve(name if isinstance(name, str) else None)
        finally:
            ctl.close()
    except Exception:  # noqa: BLE001
        return []
    return [click.shell_completion.CompletionItem(n) for n in cluster.member_names if n.startswith(incomplete)]


def cluster_argument(required: bool = False, nargs: int = 1) -> Any:
    return click.argument("cluster_names" if nargs == -1 else "cluster_name", required=required, nargs=nargs,
                          shell_complete=complete_clusters)


def members_argument() -> Any:
    return click.argument("member_names", nargs=-1, shell_complete=complete_members)


option_force = click.option("--force", is_flag=True, help="Do not ask for confirmation at any point")
option_format = click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="pretty",
                             show_default=True, help="Output format")
option_role = click.option("-r", "--role", type=click.Choice(ROLE_CHOICES), default="any", show_default=True,
                           help="Only members with this role")
