"""The verbs that change a cluster: switchover, failover, restart, reload, reinit, pause, resume,
flush, remove. Prompts, messages and REST calls follow patronictl 4.1; hatui adds the candidate
check before asking (eligibility.py) and a non-zero exit status whenever something failed.
"""

from __future__ import annotations

import random
import re
import time
from typing import Any

import click

from ..api_client import ApiError
from .common import (
    Ctl,
    CtlError,
    check_members_exist,
    confirm_members_action,
    echo_members,
    is_standby_cluster,
    members_leader_first,
    next_hour_example,
    parse_scheduled,
    probe_members,
    refuse_if_unauthorized,
    select_members,
    timestamp,
)
from ..cluster import Cluster, Failover
from ..eligibility import candidate_report

# Seconds between GET /patroni polls of `reinit --wait` (tests shorten it).
REINIT_POLL_INTERVAL = 2.0
PAUSE_POLL_INTERVAL = 1.0


def _fail_summary(action: str, failed: int, total: int) -> None:
    if failed:
        raise CtlError(f"{action} failed on {failed} of {total} member{'s' if total != 1 else ''}")


# --- switchover / failover -------------------------------------------------------------------
def do_switchover(ctl: Ctl, action: str, cluster_name: str | None, candidate: str | None, force: bool,
                  leader: str | None = None, scheduled: str | None = None) -> None:
    scope, cluster = ctl.resolve(cluster_name)
    store = ctl.store(scope)
    click.echo("Current cluster topology")
    echo_members(cluster, scope)

    cluster_leader = cluster.leader_name
    if action == "switchover":
        if not cluster_leader:
            raise CtlError("This cluster has no leader")
        if leader is None:
            if force:
                leader = cluster_leader
            else:
                prompt = "Standby Leader" if is_standby_cluster(cluster) else "Primary"
                leader = click.prompt(prompt, type=str, default=cluster_leader)
        if leader != cluster_leader:
            raise CtlError(f"Member {leader} is not the leader of cluster {scope}")

    names = sorted(m.name for m in cluster.members if m.name != cluster_leader and not m.nofailover)
    if not names:
        raise CtlError(f"No candidates found to {action} to")

    # Ask every possible candidate before asking the operator, and say why some cannot be promoted.
    statuses = probe_members(ctl, [m for m in cluster.members if m.name in names])
    report = {n: (ok, why) for n, ok, why in candidate_report(
        cluster, statuses, action=action, check_lag=cluster_leader is not None) if n in names}
    if candidate is None and not force:
        # The operator is about to choose: say first who cannot be promoted now, and why.
        for name in names:
            ok, why = report[name]
            if not ok:
                click.echo(f"Candidate {name} is not eligible: {why}")
        candidate = click.prompt("Candidate " + str(names), type=str, default="")
    if action == "failover" and not candidate:
        raise CtlError("Failover could be performed only to a specific candidate")
    if candidate and candidate not in names:
        if candidate == cluster_leader:
            raise CtlError(f"Member {candidate} is already the leader of cluster {scope}")
        if cluster.member(candidate) is None:
            raise CtlError(f"{candidate} is not a member of cluster {scope}")
        raise CtlError(f"Member {candidate} does not exist in cluster {scope} or is tagged as nofailover")

    config = cluster.config
    sync_mode = config is not None and config.synchronous_mode != "off"
    if (not force and action == "failover" and sync_mode and cluster.sync.sync_standby
            and candidate not in cluster.sync.sync_standby):
        if not click.confirm(f"Are you sure you want to failover to the asynchronous node {candidate}?"):
            raise CtlError("Aborting " + action)

    scheduled_at = None
    if action == "switchover":
        if scheduled is None and not force:
            scheduled = click.prompt("When should the switchover take place (e.g. " + next_hour_example() + " ) ",
                                     type=str, default="now")
        scheduled_at = parse_scheduled(scheduled)
        if scheduled_at and cluster.is_paused:
            raise CtlError("Can't schedule switchover in the paused state")

    if scheduled_at is None:
        # Immediate: the leader would refuse an ineligible candidate (412 "no good candidates");
        # refuse here instead, with the reason.
        if candidate:
            ok, why = report[candidate]
            if not ok:
                from .explain import record_refusal

                record_refusal(ctl, scope, action, candidate, why)
                raise CtlError(f"Candidate {candidate} is not eligible: {why}")
        elif not any(ok for ok, _ in report.values()):
            raise CtlError("No candidate can be promoted now: "
                           + "; ".join(f"{n}: {report[n][1]}" for n in names))

    if not force:
        demote = f", demoting current leader {cluster_leader}" if cluster_leader else ""
        if scheduled_at:
            if not click.confirm(f"Are you sure you want to schedule switchover of cluster {scope} at "
                                 f"{scheduled_at.isoformat()}{demote}?"):
                raise CtlError("Aborting scheduled " + action)
        elif not click.confirm(f"Are you sure you want to {action} cluster {scope}{demote}?"):
            raise CtlError("Aborting " + action)

    target = cluster.leader_member if cluster_leader else cluster.member(candidate)
    try:
        if target is None:
            raise ApiError("the leader publishes no member key")
        if action == "switchover":
            resp = ctl.api.switchover(target, leader, candidate or None,
                                      scheduled_at.isoformat() if scheduled_at else None)
        else:
            resp = ctl.api.failover(target, candidate or "")
    except ApiError as exc:
        click.echo(f"{timestamp()} Could not {action} using Patroni api, falling back to DCS")
        click.echo(f"  ({exc})", err=True)
        store.write_failover(Failover(leader if action == "switchover" else None, candidate or None, scheduled_at))
        echo_members(store.read(), scope)
        return
    refuse_if_unauthorized(ctl, target.name, resp.status, resp.text)
    if resp.status in (200, 202):
        click.echo(f"{timestamp()} {resp.text}")
        echo_members(store.read(), scope)
        return
    if "status unknown" in resp.text.lower():
        raise CtlError(f"{action.title()} result unknown, details: {resp.status}, {resp.text}")
    raise CtlError(f"{action.title()} failed, details: {resp.status}, {resp.text}")


# --- restart / reload / reinit ---------------------------------------------------------------
_PG_VERSION = re.compile(r"^\d+(\.\d+){1,2}$")


def do_restart(ctl: Ctl, cluster_name: str, member_names: tuple[str, ...], role: str, p_any: bool,
               scheduled: str | None, version: str | None, pending: bool, timeout: str | None,
               force: bool) -> None:
    cluster = ctl.read(cluster_name)
    members = select_members(ctl, cluster, cluster_name, member_names, role, force, "restart", False)
    if scheduled is None and not force:
        scheduled = click.prompt("When should the restart take place (e.g. " + next_hour_example() + ") ",
                                 type=str, default="now")
    scheduled_at = parse_scheduled(scheduled)

    content: dict[str, Any] = {}
    if pending:
        content["restart_pending"] = True
        # A scheduled restart decides at its time which members still need it.
        if not scheduled_at:
            members = [m for m in members if m.pending_restart]
            if not members:
                click.echo("No member is pending restart")
                return
    if p_any:
        random.shuffle(members)
        members = members[:1]
    confirm_members_action(members, force, "restart", scheduled_at, pending)

    if version is None and not force:
        version = click.prompt("Restart if the PostgreSQL version is less than provided (e.g. 9.5.2) ",
                               type=str, default="")
    if version:
        if not _PG_VERSION.match(version.strip()):
            raise CtlError(f"{version} is not a PostgreSQL version (expected e.g. 15.2 or 9.6.24)")
        content["postgres_version"] = version.strip()
    if scheduled_at:
        if cluster.is_paused:
            raise CtlError("Can't schedule restart in the paused state")
        content["schedule"] = scheduled_at.isoformat()
    if timeout is not None:
        content["timeout"] = timeout

    failed = 0
    for member in members:
        try:
            if "schedule" in content and force and member.scheduled_restart:
                ctl.api.delete_restart(member)
            resp = ctl.api.restart(member, content)
        except ApiError as exc:
            click.echo(f"Failed: restart for member {member.name}, {exc.detail}")
            failed += 1
            continue
        refuse_if_unauthorized(ctl, member.name, resp.status, resp.text)
        if resp.status == 200:
            click.echo(f"Success: restart on member {member.name}")
        elif resp.status == 202:
            click.echo(f"Success: restart scheduled on member {member.name}")
        elif resp.status == 409:
            click.echo(f"Failed: another restart is already scheduled on member {member.name}")
            failed += 1
        else:
            click.echo(f"Failed: restart for member {member.name}, status code={resp.status}, ({resp.text})")
            failed += 1
    _fail_summary("restart", failed, len(members))


def do_reload(ctl: Ctl, cluster_name: str, member_names: tuple[str, ...], role: str, force: bool) -> None:
    cluster = ctl.read(cluster_name)
    members = select_members(ctl, cluster, cluster_name, member_names, role, force, "reload")
    loop_wait = cluster.config.loop_wait if cluster.config else 10
    failed = 0
    for member in members:
        try:
            resp = ctl.api.reload(member)
        except ApiError as exc:
            click.echo(f"Failed: reload for member {member.name}, {exc.detail}")
            failed += 1
            continue
        refuse_if_unauthorized(ctl, member.name, resp.status, resp.text)
        if resp.status == 200:
            click.echo(f"No changes to apply on member {member.name}")
        elif resp.status == 202:
            click.echo(f"Reload request received for member {member.name} and will be processed "
                       f"within {loop_wait} seconds")
        else:
            click.echo(f"Failed: reload for member {member.name}, status code={resp.status}, ({resp.text})")
            failed += 1
    _fail_summary("reload", failed, len(members))


def do_reinit(ctl: Ctl, cluster_name: str, member_names: tuple[str, ...], force: bool, from_leader: bool,
              wait: bool) -> None:
    cluster = ctl.read(cluster_name)
    check_members_exist(cluster, cluster_name, member_names)
    for name in member_names:
        if name == cluster.leader_name:
            raise CtlError(f"Member {name} is the leader of cluster {cluster_name}: only replicas can be "
                           "reinitialized")
    members = select_members(ctl, cluster, cluster_name, member_names, "replica", force, "reinitialize")
    waiting = []
    failed = 0
    for member in members:
        body_force = force
        while True:
            try:
                resp = ctl.api.reinitialize(member, force=body_force, from_leader=from_leader)
            except ApiError as exc:
                click.echo(f"Failed: reinitialize for member {member.name}, {exc.detail}")
                failed += 1
                break
            refuse_if_unauthorized(ctl, member.name, resp.status, resp.text)
            if resp.status < 400:
                click.echo(f"Success: reinitialize for member {member.name}")
                if wait:
                    waiting.append(member)
                break
            click.echo(f"Failed: reinitialize for member {member.name}, status code={resp.status}, ({resp.text})")
            if resp.text.endswith(" already in progress") and not body_force \
                    and click.confirm("Do you want to cancel it and reinitialize anyway?"):
                body_force = True
                continue
            failed += 1
            break
    shown: list[str] = []
    while waiting:
        names = [m.name for m in waiting]
        if names != shown:
            click.echo(f"Waiting for reinitialize to complete on: {', '.join(names)}")
            shown = names
        time.sleep(REINIT_POLL_INTERVAL)
        for member in list(waiting):
            try:
                state = ctl.api.get_patroni(member).get("state")
            except ApiError:
                continue  # restarting PostgreSQL may make the API slow for a moment: keep waiting
            if state != "creating replica":
                click.echo(f"Reinitialize is completed on: {member.name}")
                waiting.remove(member)
    _fail_summary("reinitialize", failed, len(members))


# --- pause / resume --------------------------------------------------------------------------
def _wait_pause(ctl: Ctl, scope: str, paused: bool, old: Cluster) -> None:
    click.echo(f"'{'pause' if paused else 'resume'}' request sent, waiting until it is recognized by all nodes")
    versions = {m.name: m.mod_revision for m in old.members if m.api_url}
    loop_wait = old.config.loop_wait if old.config else 10
    deadline = time.monotonic() + loop_wait + 1
    cluster = old
    while True:
        cluster = ctl.read(scope)
        if all(m.paused == paused for m in cluster.members if m.name in versions):
            click.echo(f"Success: cluster management is {'paused' if paused else 'resumed'}")
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(PAUSE_POLL_INTERVAL)
    # Members whose key changed since the request but still show the old flag did not take it in.
    remaining = [m.name for m in cluster.members
                 if m.paused != paused and m.name in versions and versions[m.name] != m.mod_revision]
    if remaining:
        raise CtlError(f"{', '.join(remaining)} members didn't recognize pause state after {loop_wait} seconds")
    click.echo(f"Success: cluster management is {'paused' if paused else 'resumed'}")


def do_toggle_pause(ctl: Ctl, cluster_name: str | None, paused: bool, wait: bool) -> None:
    scope, cluster = ctl.resolve(cluster_name)
    if cluster.is_paused == paused:
        raise CtlError(f"Cluster is {'already' if paused else 'not'} paused")
    for member in members_leader_first(cluster):
        try:
            resp = ctl.api.patch_config(member, {"pause": True if paused else None})
        except ApiError as exc:
            click.echo(f"Member {member.name} is not accessible: {exc}", err=True)
            continue
        refuse_if_unauthorized(ctl, member.name, resp.status, resp.text)
        if resp.status == 200:
            if wait:
                _wait_pause(ctl, scope, paused, cluster)
            else:
                click.echo(f"Success: cluster management is {'paused' if paused else 'resumed'}")
            return
        raise CtlError(f"Failed: {'pause' if paused else 'resume'} cluster management status "
                       f"code={resp.status}, ({resp.text})")
    raise CtlError("Can not find accessible cluster member")


# --- flush -----------------------------------------------------------------------------------
def do_flush(ctl: Ctl, cluster_name: str, member_names: tuple[str, ...], target: str, role: str,
             force: bool) -> None:
    cluster = ctl.read(cluster_name)
    if target == "restart":
        failed = 0
        members = select_members(ctl, cluster, cluster_name, member_names, role, force, "flush")
        for member in members:
            if not member.scheduled_restart:
                click.echo(f"No scheduled restart for member {member.name}")
                continue
            try:
                resp = ctl.api.delete_restart(member)
            except ApiError as exc:
                click.echo(f"Failed: flush scheduled restart for member {member.name}, {exc.detail}")
                failed += 1
                continue
            refuse_if_unauthorized(ctl, member.name, resp.status, resp.text)
            if resp.status >= 400:
                click.echo(f"Failed: flush scheduled restart for member {member.name}, "
                           f"status code={resp.status}, ({resp.text})")
                failed += 1
            else:
                click.echo(f"Success: flush scheduled restart for member {member.name}")
        _fail_summary("flush", failed, len(members))
        return

    check_members_exist(cluster, cluster_name, member_names)
    failover = cluster.failover
    if failover is None or failover.scheduled_at is None:
        click.echo("No pending scheduled switchover")
        return
    for member in members_leader_first(cluster):
        try:
            resp = ctl.api.delete_switchover(member)
        except ApiError as exc:
            click.echo(f"Member {member.name} is not accessible: {exc}", err=True)
            continue
        refuse_if_unauthorized(ctl, member.name, resp.status, resp.text)
        if resp.status == 200:
            click.echo(f"Success: {resp.text}")
            return
        if resp.status == 404:
            raise CtlError(f"Failed: {resp.text}")
        click.echo(f"Failed: member={member.name}, status_code={resp.status}, ({resp.text})")
    click.echo(f"{timestamp()} Could not find any accessible member of cluster {cluster_name}")
    if not ctl.store(cluster_name).write_failover(Failover(), cluster.failover_revision):
        raise CtlError("The scheduled switchover changed meanwhile; nothing flushed, look again")


# --- remove ----------------------------------------------------------------------------------
def do_remove(ctl: Ctl, cluster_name: str, fmt: str) -> None:
    store = ctl.store(cluster_name)
    rows, _ = ctl.etcd.get_prefix(store.paths.prefix)
    if not rows:
        raise CtlError(f"Cluster {cluster_name} does not exist under {ctl.namespace} "
                       f"(nothing under {store.paths.prefix})")
    cluster = store.read()
    echo_members(cluster, cluster_name, fmt)
    if click.prompt("Please confirm the cluster name to remove", type=str) != cluster_name:
        raise CtlError("Cluster names specified do not match")
    message = "Yes I am aware"
    answer = click.prompt(f'You are about to remove all information in DCS for {cluster_name}, '
                          f'please type: "{message}"', type=str)
    if answer != message:
        raise CtlError(f'You did not exactly type "{message}"')
    if cluster.leader_name:
        answer = click.prompt("This cluster currently is healthy. Please specify the leader name to continue")
        if answer != cluster.leader_name:
            raise CtlError("You did not specify the current leader of the cluster")
    store.delete_cluster()
