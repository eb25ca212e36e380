"""Synchronous replication (spec 2.8): the leader keeps synchronous_standby_names and `/sync`.

With `synchronous_mode: on` a commit is acknowledged only once a synchronous standby has it, and
only the members listed in `/sync` (plus the leader) may be promoted automatically (ha.py's
_sync_allowed). The two are kept in an order that makes `/sync` always safe to believe:

* adding a standby: first the GUC (and reload), and only once pg_stat_replication reports it as
  `sync` is it written to `/sync`;
* removing one: first `/sync`, then the GUC.

So whoever `/sync` names has every acknowledged commit, and a failover to it loses none.
`synchronous_mode_strict: true` never falls back to asynchronous commits: with no standby to
choose, the GUC names a placeholder nobody has, and commits wait.

`quorum` mode is treated as `on` (one priority list of synchronous_node_count standbys): safe,
though not Patroni's ANY-N semantics.
"""

from __future__ import annotations

import logging
from typing import Any

from ..cluster import Cluster, SyncState
from ..dcs import DCSError

log = logging.getLogger("hatui.ha")

STRICT_PLACEHOLDER = "__patroni_strict_sync_replica_placeholder__"


def standby_names_value(names: list[str], count: int, strict: bool) -> str:
    """The GUC: `"a"`, `2 ("a","b")`, the strict placeholder, or '' (asynchronous)."""
    if not names:
        return f'"{STRICT_PLACEHOLDER}"' if strict else ""
    quoted = ",".join(f'"{n}"' for n in names)
    return quoted if len(names) == 1 else f"{min(count, len(names))} ({quoted})"


def choose(cluster: Cluster, me: str, replication: list[dict], current: list[str], count: int) -> list[str]:
    """Up to `count` streaming members fit to be synchronous, keeping the current ones first
    (changing the sync set needlessly only opens windows)."""
    streaming = []
    for row in replication:
        name = row.get("application_name")
        member = cluster.member(name) if isinstance(name, str) else None
        if member is None or name == me or row.get("state") != "streaming" or member.nofailover or member.nosync:
            continue
        streaming.append(name)
    keep = [n for n in current if n in streaming]
    rest = sorted(n for n in streaming if n not in keep)
    return (keep + rest)[:count]


def manage(daemon: Any, cluster: Cluster | None) -> None:
    """Once per cycle, after the HA actions."""
    rt = daemon.rt
    if daemon.view.role != "primary":
        # Only a primary uses the GUC; drop it from the next config we write as anything else.
        rt.sync_standby_names = None
        return
    if cluster is None or not daemon.dcs_ok or cluster.leader_name != daemon.name or not daemon.pg.is_running():
        return  # keep what PostgreSQL runs with until we know more
    dyn = daemon.dynamic
    mine = cluster.sync if cluster.sync.leader == daemon.name else SyncState(daemon.name)
    revision = cluster.sync.mod_revision
    try:
        if not dyn.is_synchronous:
            if rt.sync_standby_names is not None:
                _set_guc(daemon, None)
                log.info("Disabled synchronous replication")
            if cluster.sync.leader is not None:
                daemon.store.delete_sync()
            return
        guc_names = _names_in(rt.sync_standby_names)
        desired = choose(cluster, daemon.name, daemon.view.replication or [], guc_names,
                         dyn.synchronous_node_count)
        # 1. Removals reach /sync before the GUC: /sync never names a standby we stopped waiting for.
        kept = tuple(n for n in mine.sync_standby if n in desired)
        if kept != mine.sync_standby or cluster.sync.leader != daemon.name:
            if mine.sync_standby and kept != mine.sync_standby:
                log.info("Updating /sync key temporarily from %s to %s", list(mine.sync_standby), list(kept))
            mine = _write(daemon, SyncState(daemon.name, kept), revision)
            revision = mine.mod_revision
        # 2. The GUC.
        value = standby_names_value(desired, dyn.synchronous_node_count, dyn.synchronous_mode_strict)
        if value != rt.sync_standby_names:
            if rt.sync_standby_names is None:
                log.info("Enabled synchronous replication")
            if not desired and dyn.synchronous_mode_strict:
                log.warning("No active replication connections from Patroni members and "
                            "synchronous_mode_strict is requested. Commits will be delayed.")
            _set_guc(daemon, value)
            return  # pg_stat_replication shows the new sync_state next cycle
        # 3. Additions reach /sync only once PostgreSQL reports them synchronous.
        confirmed = {r.get("application_name") for r in daemon.view.replication or []
                     if r.get("sync_state") in ("sync", "quorum")}
        new = tuple(n for n in desired if n in mine.sync_standby or n in confirmed)
        if new != mine.sync_standby:
            log.info("Synchronous standby status assigned to %s", list(new))
            _write(daemon, SyncState(daemon.name, new), revision)
    except DCSError as exc:
        log.warning("could not update the /sync key: %s", exc)


def _names_in(value: str | None) -> list[str]:
    if not value:
        return []
    inner = value.split("(", 1)[1].rstrip(")") if "(" in value else value
    names = [n.strip().strip('"') for n in inner.split(",")]
    return [n for n in names if n and n != STRICT_PLACEHOLDER]


def _write(daemon: Any, sync: SyncState, revision: int) -> SyncState:
    """Compare-and-swap on the revision we read (0: only if absent); the stored state back."""
    if not daemon.store.write_sync(sync, revision):
        raise DCSError("the /sync key changed under us; trying again next cycle")
    fresh = daemon.store.read().sync
    return fresh if fresh.leader == daemon.name else sync


def _set_guc(daemon: Any, value: str | None) -> None:
    daemon.rt.sync_standby_names = value
    daemon.pg.write_config(daemon.rt.effective_parameters(daemon.dynamic), daemon.rt.pg_hba(daemon.dynamic), None)
    daemon.pg.reload()
    log.info("synchronous_standby_names set to %r", value or "")
