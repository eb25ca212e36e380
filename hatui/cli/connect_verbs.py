"""The verbs that reach a member itself: dsn (how to connect), query (run SQL; psycopg is imported
only here, and only when it runs) and version (each member's Patroni and PostgreSQL versions).
"""

from __future__ import annotations

from typing import Any

import click

from .. import __version__
from .common import ROLE_CHOICES, CtlError, check_members_exist, get_ctl, members_with_role
from .params import cluster_argument, complete_members, members_argument


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


@click.command("dsn")
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


@click.command("query")
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


@click.command("version")
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
