"""`hatui demote-cluster` and `hatui promote-cluster` (Patroni 4.1's verbs).

demote-cluster writes a `standby_cluster` section into the cluster's configuration (through the
leader's PATCH /config), so its primary becomes a standby leader of the remote primary named by
--host/--port (or the archive, --restore-command); promote-cluster removes the section, so the
standby leader is promoted. Both then wait until the leader key's member shows the new role and
state running, printing the progress lines patronictl prints.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import click

from ..api_client import ApiError
from .common import Ctl, CtlError, echo_members, refuse_if_unauthorized

POLL_INTERVAL = 1.0


def demote_config(host: str | None, port: int | None, restore_command: str | None,
                  primary_slot_name: str | None) -> dict[str, Any]:
    if not any((host, port, restore_command)):
        raise CtlError("At least --host, --port or --restore-command should be specified")
    return {k: v for k, v in {"host": host, "port": port, "primary_slot_name": primary_slot_name,
                              "restore_command": restore_command}.items() if v}


def do_change_cluster_role(ctl: Ctl, cluster_name: str | None, force: bool, standby_config: dict | None,
                           timeout: float = 600) -> None:
    demote = bool(standby_config)
    action = "demot" if demote else "promot"
    target_role = "standby_leader" if demote else "primary"
    scope, cluster = ctl.resolve(cluster_name)
    leader = cluster.leader_member
    if cluster.leader_name is None or leader is None:
        raise CtlError(f"Cluster has no leader, {action}ion is not possible")
    if leader.role == target_role:
        raise CtlError("Cluster is already in the required state")
    click.echo("Current cluster topology")
    echo_members(cluster, scope)
    if not force and not click.confirm(f"Are you sure you want to {action}e {scope} cluster?"):
        raise CtlError(f"Aborted cluster {action}ion")
    try:
        resp = ctl.api.patch_config(leader, {"standby_cluster": standby_config})
    except ApiError as exc:
        raise CtlError(f"Failed to {action}e {scope} cluster: {exc}") from None
    refuse_if_unauthorized(ctl, leader.name, resp.status, resp.text)
    if resp.status != 200:
        raise CtlError(f"Failed to {action}e {scope} cluster: /config PATCH status code={resp.status}, ({resp.text})")
    old_leader = leader.name
    deadline = time.monotonic() + timeout
    while True:
        cluster = ctl.read(scope)
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        lm = cluster.leader_member
        role = lm.role if lm else None
        state = lm.state if lm else None
        old = cluster.member(old_leader)
        if cluster.leader_name and role == target_role and state == "running" and \
                (not demote or (old is not None and old.state == "running")):
            click.echo(f"{now} cluster is successfully {action}ed")
            break
        click.echo(f"{now} cluster is unlocked: {cluster.leader_name is None}, leader role: {role}, "
                   f"leader state: {state}")
        if time.monotonic() >= deadline:
            raise CtlError(f"the cluster was not {action}ed within {timeout:g} seconds")
        time.sleep(POLL_INTERVAL)
    echo_members(cluster, scope)
