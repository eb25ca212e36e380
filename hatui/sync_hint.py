"""What to tell an operator when synchronous mode leaves the cluster without a leader on purpose.

With `synchronous_mode` on, only the members `/sync` lists (enough of them, in quorum mode) may
take over automatically: anyone else may lack acknowledged commits. When none of those is alive,
nobody will be promoted until one comes back, or an operator accepts the risk and names a member
explicitly. `hatui list` and the console print the command that does that, so the way out is on
the screen, not only in the daemon's log. Pure: it reads the cluster model, nothing else.
"""

from __future__ import annotations

from .cluster import Cluster


def automatic_candidates(cluster: Cluster) -> list[str] | None:
    """The running members that may take over on their own, or None when synchronous mode does
    not restrict who may (off, or no `/sync` key yet)."""
    cfg, sync = cluster.config, cluster.sync
    if not (cfg and cfg.synchronous_mode != "off" and sync.leader):
        return None
    running = {m.name for m in cluster.members if m.is_running and not m.nofailover}
    if sync.leader in running:
        return [sync.leader]
    voters = sorted(set(sync.sync_standby) & running)
    return voters if len(voters) >= sync.quorum + 1 else []


def leaderless_command(cluster: Cluster, scope: str | None = None) -> str | None:
    """The explicit command that would promote a member of a cluster kept leaderless, or None."""
    if leaderless_hint(cluster, scope) is None:
        return None
    others = sorted(m.name for m in cluster.members if m.is_running and not m.nofailover)
    return f"hatui failover {scope or cluster.scope} --candidate {others[0]}" if others else None


def leaderless_hint(cluster: Cluster, scope: str | None = None) -> str | None:
    """One line for a leaderless cluster that synchronous mode keeps leaderless, else None."""
    if cluster.leader_name:
        return None
    auto = automatic_candidates(cluster)
    if auto is None or auto:
        return None  # no restriction, or a member that may take over is alive: it will
    others = sorted(m.name for m in cluster.members if m.is_running and not m.nofailover)
    listed = ", ".join(cluster.sync.sync_standby) or "no standby"
    why = (f"no leader: synchronous mode lets only members holding every acknowledged commit take over "
           f"(/sync: {listed}; old leader {cluster.sync.leader}), and none of them is running")
    if not others:
        return why
    name = scope or cluster.scope
    return (f"{why}. To promote one anyway (it may lack acknowledged commits): "
            f"hatui failover {name} --candidate {others[0]}"
            + (f" (or {', '.join(others[1:])})" if others[1:] else ""))
