"""Can this member be promoted by a switchover or failover right now, and if not, why?

Patroni's own answer is a bare `412 switchover is not possible: no good candidates have been found`
(patroni/patroni #2744, #2362, #3230). The CLI and the console ask this pure function first and tell
the operator the reason for each member: lag against maximum_lag_on_failover, the nofailover tag,
not running or not answering, outside the synchronous set, or behind on the timeline.

The checks mirror what the leader verifies before it demotes itself (spec section 2.6).
"""

from __future__ import annotations

from typing import Any, Mapping

from .cluster import PRIMARY_ROLES, Cluster, Member


def format_bytes(n: int) -> str:
    """Human size for messages: 512 B, 3.0 kB, 12.5 MB, 1.2 GB (powers of 1024, as PostgreSQL)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - loop always returns


def _status_wal_position(status: Mapping[str, Any]) -> int | None:
    xlog = status.get("xlog")
    if not isinstance(xlog, dict):
        return None
    values = [v for k, v in xlog.items()
              if k in ("location", "received_location", "replayed_location") and isinstance(v, int)
              and not isinstance(v, bool)]
    return max(values) if values else None


def _in_sync_set(cluster: Cluster, name: str) -> bool:
    wanted = name.lower()
    return any(s.lower() == wanted for s in cluster.sync.sync_standby)


def failover_eligibility(
    cluster: Cluster,
    member_name: str,
    patroni_status: Mapping[str, Any] | None = None,
    *,
    action: str = "switchover",
    check_lag: bool = True,
) -> tuple[bool, str]:
    """(eligible, reason). The reason completes "<member> is not eligible: ...".

    patroni_status is the member's GET /patroni answer: None means "not asked" (judge from the DCS
    keys alone); an empty dict means "asked, no answer" (the member is unreachable).
    action is "switchover" or "failover": only a switchover insists on the synchronous set, as
    Patroni lets a failover go to an asynchronous node after a confirmation.
    check_lag=False skips the lag test (a failover of a leaderless cluster to a named candidate).
    """
    member: Member | None = cluster.member(member_name)
    if member is None:
        return False, f"{member_name} is not a member of cluster {cluster.scope}"
    if member.name == cluster.leader_name:
        return False, "it is the current leader"
    if member.nofailover:
        if "failover_priority" in member.tags and not member.tags.get("nofailover"):
            return False, f"its failover_priority is {member.tags.get('failover_priority')}"
        return False, "it is tagged nofailover"
    if not member.api_url:
        return False, "it publishes no REST API address (api_url)"
    if patroni_status is not None and not patroni_status:
        return False, "its REST API did not answer"
    status = patroni_status or {}
    if status.get("watchdog_failed"):
        return False, "its watchdog failed"
    tags = status.get("tags")
    if isinstance(tags, dict) and tags.get("nofailover"):
        return False, "it is tagged nofailover"

    state = status.get("state") or member.state
    if state != "running":
        return False, f"it is not running (state: {state})"
    role = status.get("role") or member.role
    if role in PRIMARY_ROLES:
        return False, "it runs as a primary without holding the leader lock"

    timeline = status.get("timeline") if isinstance(status.get("timeline"), int) else member.timeline
    cluster_tl = cluster.timeline
    if timeline and cluster_tl and timeline < cluster_tl:
        return False, f"its timeline {timeline} is behind the cluster's timeline {cluster_tl}"

    if check_lag:
        position = _status_wal_position(status) if status else None
        if position is None:
            position = member.wal_position
        if position is None:
            return False, "its WAL position is unknown"
        limit = cluster.config.maximum_lag_on_failover if cluster.config else 1048576
        lag = cluster.lag_behind(position)
        if lag is not None and lag > limit:
            return False, (f"it lags {format_bytes(lag)} ({lag} bytes) behind, more than "
                           f"maximum_lag_on_failover ({limit} bytes)")

    config = cluster.config
    if (action == "switchover" and config is not None and config.synchronous_mode != "off"
            and cluster.sync.sync_standby and not _in_sync_set(cluster, member.name)):
        return False, (f"it is not a synchronous standby (synchronous_mode: {config.synchronous_mode}, "
                       f"sync standbys: {', '.join(cluster.sync.sync_standby)})")
    return True, "eligible"


def candidate_report(
    cluster: Cluster,
    statuses: Mapping[str, Mapping[str, Any] | None] | None = None,
    *,
    action: str = "switchover",
    check_lag: bool = True,
) -> list[tuple[str, bool, str]]:
    """(name, eligible, reason) for every member but the leader, in name order."""
    statuses = statuses or {}
    return [
        (m.name, *failover_eligibility(cluster, m.name, statuses.get(m.name), action=action, check_lag=check_lag))
        for m in cluster.members
        if m.name != cluster.leader_name
    ]


def automatic_eligibility(
    cluster: Cluster,
    member_name: str,
    patroni_status: Mapping[str, Any] | None = None,
) -> tuple[bool, str]:
    """Would this member be promoted if the leader died now? (eligible, reason), same words as above.

    Adds the rules that only hold for an automatic failover (ha._unhealthy_cluster): nothing is
    promoted while the cluster is paused, a member missing from /failsafe never leads while
    failsafe mode is on, and under synchronous replication only the sync set may take over.
    """
    config = cluster.config
    if cluster.is_paused:
        return False, "the cluster is paused (no automatic failover; a manual failover still works)"
    if (config is not None and config.failsafe_mode and cluster.failsafe
            and member_name not in cluster.failsafe):
        return False, "it is not in the /failsafe key and failsafe mode is on"
    # The switchover rules include the synchronous set, which an automatic failover honours too.
    return failover_eligibility(cluster, member_name, patroni_status, action="switchover")
