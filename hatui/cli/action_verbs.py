"""The verbs that change a cluster: edit-config, switchover, failover, restart, reload, reinit,
pause, resume, demote-cluster, promote-cluster, flush, remove. Their work lives in `actions.py`,
`edit.py`, `explain.py` (the dry run) and `standby.py`; here are their options.
"""

from __future__ import annotations

import click

from .common import get_ctl
from .params import cluster_argument, complete_members, members_argument, option_force, option_format, option_role


@click.command("edit-config")
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
@click.command("switchover")
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


@click.command("failover")
@cluster_argument()
@click.option("--candidate", help="The member to promote", shell_complete=complete_members)
@option_force
def failover_cmd(cluster_name: str | None, candidate: str | None, force: bool) -> None:
    """Promote a named replica now (also when the cluster has no leader)."""
    from .actions import do_switchover

    do_switchover(get_ctl(), "failover", cluster_name, candidate, force)


@click.command("restart")
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


@click.command("reload")
@cluster_argument(required=True)
@members_argument()
@option_role
@option_force
def reload_cmd(cluster_name: str, member_names: tuple[str, ...], role: str, force: bool) -> None:
    """Reload the configuration of members."""
    from .actions import do_reload

    do_reload(get_ctl(), cluster_name, member_names, role, force)


@click.command("reinit")
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


@click.command("pause")
@cluster_argument()
@click.option("--wait", is_flag=True, help="Wait until every member has noticed")
def pause_cmd(cluster_name: str | None, wait: bool) -> None:
    """Maintenance mode: no automatic failover."""
    from .actions import do_toggle_pause

    do_toggle_pause(get_ctl(), cluster_name, True, wait)


@click.command("resume")
@cluster_argument()
@click.option("--wait", is_flag=True, help="Wait until every member has noticed")
def resume_cmd(cluster_name: str | None, wait: bool) -> None:
    """Leave maintenance mode."""
    from .actions import do_toggle_pause

    do_toggle_pause(get_ctl(), cluster_name, False, wait)


@click.command("demote-cluster")
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


@click.command("promote-cluster")
@cluster_argument()
@option_force
def promote_cluster_cmd(cluster_name: str | None, force: bool) -> None:
    """Promote a standby cluster: its standby leader becomes a primary."""
    from .standby import do_change_cluster_role

    do_change_cluster_role(get_ctl(), cluster_name, force, None)


@click.command("flush")
@cluster_argument(required=True)
@members_argument()
@click.argument("target", type=click.Choice(["restart", "switchover"]))
@option_role
@option_force
def flush_cmd(cluster_name: str, member_names: tuple[str, ...], target: str, role: str, force: bool) -> None:
    """Discard scheduled restarts or a scheduled switchover."""
    from .actions import do_flush

    do_flush(get_ctl(), cluster_name, member_names, target, role, force)


@click.command("remove")
@cluster_argument(required=True)
@option_format
def remove_cmd(cluster_name: str, fmt: str) -> None:
    """Delete every key of a cluster (asks three times)."""
    from .actions import do_remove

    do_remove(get_ctl(), cluster_name, fmt)
