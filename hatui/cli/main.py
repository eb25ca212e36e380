"""The `hatui` command line: patronictl's verbs on the same etcd keys, plus the console, the daemon
and the demo.

`hatui` alone opens the console. Every failure prints one `Error: ...` line on stderr and exits
non-zero; `--debug` shows the traceback instead. This module imports only click and the light
parts of hatui: the console (textual), psycopg and the etcd gRPC client are imported by the verbs
that need them, so `hatui list` starts fast.
"""

from __future__ import annotations

import time
from typing import Any

import click

from .. import __version__
from .common import ROLE_CHOICES, Ctl, CtlError, check_members_exist, get_ctl, members_with_role, timestamp

FORMATS = ["pretty", "tsv", "json", "yaml", "yml"]


def _translate(exc: BaseException) -> CtlError | None:
    """The one-line message for an exception a verb let through (None: let click handle it)."""
    from ..api_client import ApiError
    from .ctlconfig import ConfigError
    from ..etcd.store import DCSError

    if isinstance(exc, (click.ClickException, click.exceptions.Exit)):
        return None
    if isinstance(exc, click.Abort):
        return CtlError("Aborted")
    if isinstance(exc, KeyboardInterrupt):
        return CtlError("Interrupted", exit_code=130)
    if isinstance(exc, (DCSError, ApiError, ConfigError)):
        return CtlError(str(exc))
    if type(exc).__module__.startswith("psycopg"):
        text = str(exc).strip().splitlines()
        return CtlError(f"PostgreSQL: {text[0] if text else type(exc).__name__}")
    if isinstance(exc, OSError):
        return CtlError(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    if isinstance(exc, Exception):
        return CtlError(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return None


class HatuiGroup(click.Group):
    """Turns every failure of a verb into one `Error:` line (unless --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BaseException as exc:  # noqa: BLE001 - translated or re-raised just below
            if ctx.params.get("debug") and not isinstance(exc, (click.ClickException, click.exceptions.Exit)):
                raise
            err = _translate(exc)
            if err is None:
                raise
            obj = ctx.obj
            if type(exc).__name__ == "DCSError" and isinstance(obj, Ctl) and obj.etcd_is_default():
                err.message += "; nothing configured, so the default was tried: use --etcd HOST:PORT, -c FILE or HATUI_ETCD"
            raise err from exc
        finally:
            obj = ctx.obj
            if isinstance(obj, Ctl):
                obj.close()


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


@cli.command("list")
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


@cli.command("topology")
@cluster_argument(nargs=-1)
@click.option("-W", "w", is_flag=True, help="Refresh every 2 seconds")
@click.option("-w", "--watch", type=float, help="Refresh every SECONDS")
def topology_cmd(cluster_names: tuple[str, ...], w: bool, watch: float | None) -> None:
    """Show the replication tree: leader first, replicas under their upstream."""
    _list(get_ctl(), cluster_names, "topology", False, False, w, watch, False)


@cli.command("history")
@cluster_argument()
@option_format
def history_cmd(cluster_name: str | None, fmt: str) -> None:
    """Show the timeline history: failovers and switchovers."""
    from ..views import render_history

    _, cluster = get_ctl().resolve(cluster_name)
    click.echo(render_history(cluster, fmt))


@cli.command("explain")
@cluster_argument()
@click.argument("member", required=False, shell_complete=complete_members)
@click.option("-f", "--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True,
              help="Output format")
def explain_cmd(cluster_name: str | None, member: str | None, fmt: str) -> None:
    """Say why: who leads since when, who could be promoted now and why not, what a switchover would do."""
    from .explain import do_explain

    do_explain(get_ctl(), cluster_name, member, fmt)


@cli.command("events")
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


@cli.command("show-config")
@cluster_argument()
def show_config_cmd(cluster_name: str | None) -> None:
    """Print the dynamic configuration as YAML."""
    from .edit import do_show_config

    do_show_config(get_ctl(), cluster_name)


@cli.command("edit-config")
@cluster_argument()
@click.option("-q", "--quiet", is_flag=True, help="Do not show changes")
@click.option("-s", "--set", "kvpairs", multiple=True, metavar="KEY.PATH=VALUE",
              help="Set a value (YAML; null removes it). Repeatable")
@click.option("-p", "--pg", "pgkvpairs", multiple=True, metavar="GUC=VALUE",
              help="Set a PostgreSQL parameter (postgresql.parameters.GUC). Repeatable")
@click.option("--apply", "apply_filename", metavar="FILE|-", help="Merge a YAML file (- for stdin)")
@click.option("--replace", "replace_filename", metavar="FILE|-", help="Replace with a YAML file (- for stdin)")
@click.option("--editor", "use_editor", is_flag=True, help="Use $EDITOR instead of the in-terminal editor")
@option_force
def edit_config_cmd(cluster_name: str | None, quiet: bool, kvpairs: tuple[str, ...], pgkvpairs: tuple[str, ...],
                    apply_filename: str | None, replace_filename: str | None, use_editor: bool, force: bool) -> None:
    """Change the dynamic configuration; invalid configurations are refused."""
    from .edit import do_edit_config

    do_edit_config(get_ctl(), cluster_name, quiet, kvpairs, pgkvpairs, apply_filename, replace_filename,
                   use_editor, force)


# --- acting verbs ----------------------------------------------------------------------------
@cli.command("switchover")
@cluster_argument()
@click.option("--leader", "--primary", "leader", help="The current leader", shell_complete=complete_members)
@click.option("--candidate", help="The member to promote", shell_complete=complete_members)
@click.option("--scheduled", help="When (ISO 8601, or now)")
@option_force
@click.option("--dry-run", is_flag=True, help="Say whether it would go ahead (or why not) and write nothing")
def switchover_cmd(cluster_name: str | None, leader: str | None, candidate: str | None,
                   scheduled: str | None, force: bool, dry_run: bool) -> None:
    """Hand the leader role to a replica, gracefully."""
    from .actions import do_switchover

    if dry_run:
        from .explain import do_dry_run

        return do_dry_run(get_ctl(), cluster_name, candidate, leader)
    do_switchover(get_ctl(), "switchover", cluster_name, candidate, force, leader, scheduled)


@cli.command("failover")
@cluster_argument()
@click.option("--candidate", help="The member to promote", shell_complete=complete_members)
@option_force
def failover_cmd(cluster_name: str | None, candidate: str | None, force: bool) -> None:
    """Promote a named replica now (also when the cluster has no leader)."""
    from .actions import do_switchover

    do_switchover(get_ctl(), "failover", cluster_name, candidate, force)


@cli.command("restart")
@cluster_argument(required=True)
@members_argument()
@option_role
@click.option("--any", "p_any", is_flag=True, help="Restart a single member only")
@click.option("--scheduled", help="When (ISO 8601, or now)")
@click.option("--pg-version", "version", help="Restart if the PostgreSQL version is less than this (e.g. 15.2)")
@click.option("--pending", is_flag=True, help="Restart only members pending a restart")
@click.option("--timeout", help="Fail (and maybe fail over) when the restart takes longer than this")
@option_force
def restart_cmd(cluster_name: str, member_names: tuple[str, ...], role: str, p_any: bool, scheduled: str | None,
                version: str | None, pending: bool, timeout: str | None, force: bool) -> None:
    """Restart PostgreSQL on members."""
    from .actions import do_restart

    do_restart(get_ctl(), cluster_name, member_names, role, p_any, scheduled, version, pending, timeout, force)


@cli.command("reload")
@cluster_argument(required=True)
@members_argument()
@option_role
@option_force
def reload_cmd(cluster_name: str, member_names: tuple[str, ...], role: str, force: bool) -> None:
    """Reload the configuration of members."""
    from .actions import do_reload

    do_reload(get_ctl(), cluster_name, member_names, role, force)


@cli.command("reinit")
@cluster_argument(required=True)
@members_argument()
@option_force
@click.option("--from-leader", is_flag=True, help="Take the base backup from the leader")
@click.option("--wait", is_flag=True, help="Wait until reinitialization completes")
def reinit_cmd(cluster_name: str, member_names: tuple[str, ...], force: bool, from_leader: bool,
               wait: bool) -> None:
    """Rebuild replicas from scratch."""
    from .actions import do_reinit

    do_reinit(get_ctl(), cluster_name, member_names, force, from_leader, wait)


@cli.command("pause")
@cluster_argument()
@click.option("--wait", is_flag=True, help="Wait until every member has noticed")
def pause_cmd(cluster_name: str | None, wait: bool) -> None:
    """Maintenance mode: no automatic failover."""
    from .actions import do_toggle_pause

    do_toggle_pause(get_ctl(), cluster_name, True, wait)


@cli.command("resume")
@cluster_argument()
@click.option("--wait", is_flag=True, help="Wait until every member has noticed")
def resume_cmd(cluster_name: str | None, wait: bool) -> None:
    """Leave maintenance mode."""
    from .actions import do_toggle_pause

    do_toggle_pause(get_ctl(), cluster_name, False, wait)


@cli.command("demote-cluster")
@cluster_argument()
@option_force
@click.option("--host", help="Address of the remote primary")
@click.option("--port", type=int, help="Port of the remote primary")
@click.option("--restore-command", help="Command to restore WAL from the remote primary's archive")
@click.option("--primary-slot-name", help="Replication slot to use on the remote primary")
def demote_cluster_cmd(cluster_name: str | None, force: bool, host: str | None, port: int | None,
                       restore_command: str | None, primary_slot_name: str | None) -> None:
    """Make this cluster a standby cluster of a remote primary."""
    from .standby import demote_config, do_change_cluster_role

    do_change_cluster_role(get_ctl(), cluster_name, force,
                           demote_config(host, port, restore_command, primary_slot_name))


@cli.command("promote-cluster")
@cluster_argument()
@option_force
def promote_cluster_cmd(cluster_name: str | None, force: bool) -> None:
    """Promote a standby cluster: its standby leader becomes a primary."""
    from .standby import do_change_cluster_role

    do_change_cluster_role(get_ctl(), cluster_name, force, None)


@cli.command("flush")
@cluster_argument(required=True)
@members_argument()
@click.argument("target", type=click.Choice(["restart", "switchover"]))
@option_role
@option_force
def flush_cmd(cluster_name: str, member_names: tuple[str, ...], target: str, role: str, force: bool) -> None:
    """Discard scheduled restarts or a scheduled switchover."""
    from .actions import do_flush

    do_flush(get_ctl(), cluster_name, member_names, target, role, force)


@cli.command("remove")
@cluster_argument(required=True)
@option_format
def remove_cmd(cluster_name: str, fmt: str) -> None:
    """Delete every key of a cluster (asks three times)."""
    from .actions import do_remove

    do_remove(get_ctl(), cluster_name, fmt)


# --- connecting verbs ------------------------------------------------------------------------
def _pick_member(cluster: Any, scope: str, role: str | None, member: str | None) -> Any:
    if role is not None and member is not None:
        raise CtlError("--role and --member are mutually exclusive options")
    if member is not None:
        check_members_exist(cluster, scope, [member])
        return cluster.member(member)
    found = members_with_role(cluster, role or "leader")
    if not found:
        raise CtlError("Can not find a suitable member")
    return found[0]


@cli.command("dsn")
@cluster_argument()
@click.option("-r", "--role", type=click.Choice(ROLE_CHOICES), default=None, help="A member with this role")
@click.option("-m", "--member", help="This member", shell_complete=complete_members)
def dsn_cmd(cluster_name: str | None, role: str | None, member: str | None) -> None:
    """Print a libpq connection string (default: the leader)."""
    if role is not None and member is not None:
        raise CtlError("--role and --member are mutually exclusive options")
    scope, cluster = get_ctl().resolve(cluster_name)
    m = _pick_member(cluster, scope, role, member)
    if not m.host:
        raise CtlError(f"Member {m.name} publishes no connection address")
    click.echo(f"host={m.host} port={m.port}")


@cli.command("query")
@cluster_argument()
@click.option("-c", "--command", help="SQL to run")
@click.option("-f", "--file", "p_file", type=click.File("rb"), help="Run the SQL in this file")
@click.option("-r", "--role", type=click.Choice(ROLE_CHOICES), default=None, help="A member with this role")
@click.option("-m", "--member", help="This member", shell_complete=complete_members)
@click.option("-U", "--username", help="Database user name")
@click.option("--password", is_flag=True, help="Ask for a password")
@click.option("-d", "--dbname", help="Database name")
@click.option("--format", "fmt", type=click.Choice(["tsv", "pretty", "json", "yaml"]), default="tsv",
              show_default=True)
@click.option("--delimiter", default="\t", help="Column delimiter (tsv)")
def query_cmd(cluster_name: str | None, command: str | None, p_file: Any, role: str | None, member: str | None,
              username: str | None, password: bool, dbname: str | None, fmt: str, delimiter: str) -> None:
    """Run SQL on a member (default: the leader) and print the rows."""
    if p_file is not None and command is not None:
        raise CtlError("--file and --command are mutually exclusive options")
    if p_file is None and command is None:
        raise CtlError("You need to specify either --command or --file")
    if role is not None and member is not None:
        raise CtlError("--role and --member are mutually exclusive options")
    sql = command if command is not None else p_file.read().decode("utf-8")
    scope, cluster = get_ctl().resolve(cluster_name)
    m = _pick_member(cluster, scope, role, member)
    if not m.host:
        raise CtlError(f"Member {m.name} publishes no connection address")
    from ..views import render_rows

    params: dict[str, Any] = {"host": m.host, "port": m.port, "connect_timeout": 5,
                              "fallback_application_name": "hatui ctl",
                              "dbname": dbname or _url_dbname(m.conn_url) or "postgres"}
    if username:
        params["user"] = username
    if password:
        params["password"] = click.prompt("Password", hide_input=True, type=str)
    import psycopg

    with psycopg.connect(autocommit=True, **params) as conn:
        if role in ("replica", "standby", "primary", "master", "standby-leader"):
            in_recovery = conn.execute("SELECT pg_catalog.pg_is_in_recovery()").fetchone()[0]
            wants_recovery = role in ("replica", "standby", "standby-leader")
            if bool(in_recovery) != wants_recovery:
                raise CtlError(f"No connection to role {role} is available: {m.name} "
                               f"{'is in recovery' if in_recovery else 'is a primary'}")
        cur = conn.execute(sql)
        columns = [d.name for d in cur.description] if cur.description else None
        rows = [["" if v is None else v for v in row] for row in cur.fetchall()] if cur.description else []
        status = cur.statusmessage or ""
    if columns is None:
        click.echo(status)
        return
    click.echo(render_rows(columns, rows, fmt, delimiter))


def _url_dbname(url: str | None) -> str | None:
    from urllib.parse import urlsplit

    if not url:
        return None
    path = urlsplit(url).path.lstrip("/")
    return path or None


@cli.command("version")
@cluster_argument()
@members_argument()
def version_cmd(cluster_name: str | None, member_names: tuple[str, ...]) -> None:
    """Print hatui's version, and each member's Patroni and PostgreSQL versions."""
    from ..api_client import ApiError
    from ..views import format_pg_version

    click.echo(f"hatui version {__version__}")
    ctl = get_ctl()
    name = cluster_name or ctl.cfg.scope
    if not name:
        return
    click.echo("")
    cluster = ctl.read(name)
    check_members_exist(cluster, name, member_names)
    for m in cluster.members:
        if not m.api_url or (member_names and m.name not in member_names):
            continue
        try:
            data = ctl.api.get_patroni(m)
        except ApiError as exc:
            click.echo(f"{m.name}: failed to get version: {exc}")
            continue
        pg = data.get("server_version")
        pg_text = f" PostgreSQL {format_pg_version(pg)}" if isinstance(pg, int) and pg else ""
        click.echo(f"{m.name}: Patroni {(data.get('patroni') or {}).get('version')}{pg_text}")


@cli.command("validate")
@click.argument("node_yml", type=click.Path(dir_okay=False), required=False)
@click.option("--show", is_flag=True, help="Print the merged configuration (file + PATRONI_*/HATUI_* variables)")
def validate_cmd(node_yml: str | None, show: bool) -> None:
    """Check a node file as the daemon would (Patroni's --validate-config): errors, warnings and the
    settings hatui accepts but does not act on, with PATRONI_*/HATUI_* variables over the file (or
    alone, without NODE_YML). Exits 1 when there is an error."""
    from .validate import validate

    code = validate(node_yml, show)
    if code:
        raise click.exceptions.Exit(code)


# --- the daemon and the demo (thin: their own modules parse their own options) ---------------
@cli.command("daemon", context_settings={"ignore_unknown_options": True})
@click.argument("node_yml", type=click.Path(dir_okay=False), required=False)
def daemon_cmd(node_yml: str | None) -> None:
    """Run a hatui node (Patroni-compatible daemon) from a node YAML file.

    PATRONI_* (or HATUI_*) variables override the file's settings, as with Patroni; without
    NODE_YML they alone configure the node."""
    try:
        from ..daemon.main import run
    except ImportError as exc:
        if exc.name in ("hatui.daemon.main", "hatui.daemon"):
            raise CtlError("hatui daemon is not built yet") from exc
        raise
    code = run(node_yml)
    if code:
        raise click.exceptions.Exit(int(code))


@cli.command("demo", add_help_option=False,
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def demo_cmd(args: tuple[str, ...]) -> None:
    """Start a demo cluster (private etcd + PostgreSQL nodes on loopback)."""
    import importlib

    try:
        # import_module reads sys.modules first: `import hatui.demo as demo` would take the package
        # attribute, which can differ from sys.modules (tests swap the module there).
        demo = importlib.import_module("hatui.demo")
    except ImportError as exc:
        if exc.name == "hatui.demo":
            raise CtlError("hatui demo is not built yet") from exc
        raise
    code = demo.main(list(args))
    if code:
        raise click.exceptions.Exit(int(code))


