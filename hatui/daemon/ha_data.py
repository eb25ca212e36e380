"""The HA core's data: what `ha.decide` takes (`Observation`, made of `NodeSettings`,
`LocalPostgres`, the cluster view and `PeerStatus` answers) and what it returns (`Decision`, an
ordered tuple of `Action`s and the log line that explains them). All frozen, no behaviour beyond
a few read-only properties; importable from `hatui.daemon.ha` as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from ..cluster import Cluster

# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalPostgres:
    """What the loop found out about the local PostgreSQL this cycle."""

    data_dir: str = "valid"  # "empty" | "missing" | "valid" | "invalid"
    running: bool = False
    # primary / replica while running; when stopped, what pg_control says it was.
    role: str | None = None
    timeline: int | None = None
    wal_position: int | None = None
    sysid: str | None = None
    crashed: bool = False  # stopped without a clean shutdown (needs crash recovery before rewind)
    following: str | None = None  # member whose address primary_conninfo points at
    pending_restart: bool = False


@dataclass(frozen=True)
class PeerStatus:
    """One other member's answer to GET /patroni during a leader race (None fields = unknown)."""

    name: str
    reachable: bool
    role: str | None = None
    wal_position: int | None = None
    failover_priority: int = 1
    nofailover: bool = False


@dataclass(frozen=True)
class NodeSettings:
    name: str
    nofailover: bool = False
    failover_priority: int = 1
    can_bootstrap: bool = True  # has a bootstrap section
    use_pg_rewind: bool = True
    remove_data_directory_on_rewind_failure: bool = False
    remove_data_directory_on_diverged_timelines: bool = False
    replicatefrom: str | None = None
    # A create_replica_methods entry works with no running member to copy from (no_leader).
    clone_without_leader: bool = False


@dataclass(frozen=True)
class Observation:
    settings: NodeSettings
    pg: LocalPostgres
    cluster: Cluster | None  # None: etcd could not be read within retry_timeout
    # The leader key names us and the lease was kept alive this cycle.
    lock_refreshed: bool = False
    peers: Mapping[str, PeerStatus] | None = None  # filled after a probe_peers action
    rewind_failed: bool = False  # the last pg_rewind against the current leader failed
    failsafe_confirmed: bool = False  # every member accepted our failsafe heartbeat
    now: datetime | None = None  # wall clock, only for scheduled switchovers
    # The last attempt to start PostgreSQL here failed (pg_ctl gave up, the server exited).
    start_failed: bool = False
    # Leader only (lease.py): seconds it may go on serving before it must stop, from the send time
    # of the last keepalive etcd acknowledged; None when we do not hold the lock.
    lease_left: float | None = None
    # The dynamic config makes this a standby cluster (standby_cluster.decide rewrites decisions).
    standby_cluster: bool = False

    @property
    def name(self) -> str:
        return self.settings.name


# --- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    kind: str
    target: str | None = None  # member name the action is about (follow, clone, rewind, candidate)
    mode: str | None = None  # stop/demote mode, start role
    # Logged when a conditional action fails; the rest of the decision is then skipped.
    fail_message: str | None = None


@dataclass(frozen=True)
class Decision:
    message: str
    actions: tuple[Action, ...] = ()
    level: str = "info"  # "info" | "warning" | "error"
    notes: tuple[str, ...] = field(default_factory=tuple)  # extra lines logged before the message

    @property
    def kinds(self) -> list[str]:
        return [a.kind for a in self.actions]

    def has(self, kind: str) -> bool:
        return kind in self.kinds


# Action kinds, for readers of the loop:
#   bootstrap              race `initialize`, initdb, start, create users, write config + leader
#   clone(target)          create_replica_methods from target (None: no_leader methods only), start as replica
#   reinit(target)         wipe the data dir and clone again
#   crash_recovery         single-user recovery so that pg_control is consistent
#   rewind(target)         pg_rewind from target (checkpoints it first if needed)
#   start(mode, target)    mode primary | replica; replica follows target (None: no primary_conninfo)
#   stop(mode)             pg_ctl stop -m mode
#   demote(mode, target)   stop in mode and come back as a replica of target (None: read-only, no upstream)
#   follow(target)         point primary_conninfo at target (reload)
#   promote                pg_ctl promote, then CHECKPOINT and history
#   acquire_lock           create the leader key on our lease (conditional)
#   release_lock           compare-on-value delete of the leader key
#   probe_peers            GET /patroni of every other member, then decide again
#   set_initialize         claim `initialize` with our sysid (adopting an existing data dir)
#   clear_failover         write `{}` to the failover key
#   switchover_demote(target) graceful stop; release the lock once target has our WAL
#   fatal                  stop the daemon with the message
