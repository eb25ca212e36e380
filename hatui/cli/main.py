"""The `hatui` command line: patronictl's verbs on the same etcd keys, plus the console, the daemon
and the demo.

`hatui` alone opens the console. Every failure prints one `Error: ...` line on stderr and exits
non-zero; `--debug` shows the traceback instead. This module imports only click and the light
parts of hatui: the console (textual), psycopg and the etcd gRPC client are imported by the verbs
that need them, so `hatui list` starts fast.

Here: the group (its global options, the console when no verb is given) and the list of verbs.
The verbs' options live by family in `read_verbs.py`, `action_verbs.py`, `connect_verbs.py` and
`run_verbs.py`; `group.py` is the group's error handling, `params.py` the arguments they share.
"""

from __future__ import annotations

from typing import Any

import click

from .. import __version__
from .action_verbs import (
    demote_cluster_cmd,
    edit_config_cmd,
    failover_cmd,
    flush_cmd,
    pause_cmd,
    promote_cluster_cmd,
    reinit_cmd,
    reload_cmd,
    remove_cmd,
    restart_cmd,
    resume_cmd,
    switchover_cmd,
)
from .common import Ctl, CtlError
from .connect_verbs import dsn_cmd, query_cmd, version_cmd
from .group import HatuiGroup
from .read_verbs import events_cmd, explain_cmd, history_cmd, list_cmd, show_config_cmd, topology_cmd
from .run_verbs import daemon_cmd, demo_cmd, validate_cmd


# --- the group -------------------------------------------------------------------------------
@click.group(cls=HatuiGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config-file", metavar="FILE",
              help="patronictl.yaml or a node config (default: $HATUI_CONFIG_FILE, $PATRONICTL_CONFIG_FILE, "
                   "~/.config/patroni/patronictl.yaml)")
@click.option("--etcd", multiple=True, metavar="HOST:PORT",
              help="etcd endpoint, repeatable (default: $HATUI_ETCD, the config file, 127.0.0.1:2379)")
@click.option("-d", "--dcs-url", "--dcs", "dcs_url", envvar="DCS_URL", metavar="URL",
              help="etcd3://host:port/namespace, patronictl style")
@click.option("--namespace", metavar="NS", help="Key namespace (default: the config's, else /service)")
@click.option("-k", "--insecure", is_flag=True, help="Do not verify the REST API's TLS certificates")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors")
@click.option("--read-only", is_flag=True, help="Console only: watch, never act")
@click.option("--logs", multiple=True, metavar="DIR|FILE|MEMBER=PATH",
              help="Console only: members' log files to follow (a directory of <member>.log files, a file, "
                   "or MEMBER=PATH; repeatable). A node file given with -c adds its own log.")
@click.version_option(__version__, "--version", prog_name="hatui", message="%(prog)s version %(version)s")
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """PostgreSQL high availability on etcd, compatible with Patroni.

    Without a command, opens the console. The commands are patronictl's, on the same keys.
    """
    ctx.obj = Ctl(options)
    if ctx.invoked_subcommand is None:
        _run_console(ctx.obj)


def _run_console(ctl: Ctl) -> None:
    try:
        from ..app import run_console
    except ImportError as exc:
        raise CtlError(f"the console is not available: {exc}") from exc
    cfg = ctl.cfg
    # Nothing configured: an empty list lets the console try the default and explain how to point it
    # at a cluster when nothing answers there.
    hosts = [] if cfg.etcd_source == "default" else list(cfg.etcd_hosts)
    from ..console_logs import LogSpecError, resolve_log_files

    try:
        log_files = resolve_log_files(ctl.options.get("logs") or (), cfg.raw)
    except LogSpecError as exc:
        raise CtlError(str(exc)) from exc
    result = run_console(etcd_hosts=hosts, namespace=ctl.namespace, scope=cfg.scope, read_only=ctl.read_only,
                         api_auth=cfg.rest_auth, log_files=log_files)
    if isinstance(result, int) and result:
        raise click.exceptions.Exit(result)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="hatui")


# --- the verbs, one module per family, all on the one group -------------------------------------
for _command in (
    list_cmd,
    topology_cmd,
    history_cmd,
    explain_cmd,
    events_cmd,
    show_config_cmd,
    edit_config_cmd,
    switchover_cmd,
    failover_cmd,
    restart_cmd,
    reload_cmd,
    reinit_cmd,
    pause_cmd,
    resume_cmd,
    demote_cluster_cmd,
    promote_cluster_cmd,
    flush_cmd,
    remove_cmd,
    dsn_cmd,
    query_cmd,
    version_cmd,
    validate_cmd,
    daemon_cmd,
    demo_cmd,
):
    cli.add_command(_command)
