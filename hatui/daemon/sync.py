"""Synchronous replication (spec 2.8): the leader keeps synchronous_standby_names and `/sync`.

Two modes, one promise: with synchronous replication on, a failover never loses an acknowledged
commit, because a member may be promoted automatically only when it provably has every one.

`synchronous_mode: on` (priority): commits wait for `synchronous_node_count` named standbys, and
`/sync` lists exactly the standbys that have every acknowledged commit. Only they (and the old
leader) may be promoted automatically (ha.py's _sync_allowed). The order of updates keeps `/sync`
true at every instant:

* adding a standby: first the GUC (and reload), and only once pg_stat_replication reports it as
  `sync` is it written to `/sync`;
* removing one: first `/sync`, then the GUC.

`synchronous_mode: quorum`: commits wait for ANY k of all the eligible standbys S (k =
synchronous_node_count), so no single standby is known to have a given commit. `/sync` then holds
the voters V and a number q such that any q + 1 members of V include one that has every
acknowledged commit; a candidate must see q + 1 voters (itself included) at or behind its own WAL
position before it may promote (ha.py's _quorum_votes). For a GUC `ANY k (S)` with S within V
that holds when q >= |V| - k. Changes go through a state safe for both the old and the new GUC:
first `/sync` widens to the union of both sets with the larger q, then the GUC changes, and once
PostgreSQL reports the new set as `quorum`, `/sync` narrows to it.

`synchronous_mode_strict: true` never falls back to asynchronous commits: with no standby to
choose, the GUC names a placeholder nobody has, and commits wait.

`maximum_lag_on_syncnode` (> 0) keeps a standby lagging more than that many bytes out of the sync
set, so that a slow standby does not slow every commit; the reference is the most advanced
standby when there are several, the primary's own position when there is one.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Protocol

from ..cluster import Cluster, SyncState
from ..etcd.store import DCSError
from . import faultpoint, queries
from .postgres import PostgresError

if TYPE_CHECKING:
    from ..config import DynamicConfig
    from ..etcd.store import ClusterStore
    from .member import NodeView
    from .node import NodeRuntime
    from .postgres import Postgres


class SyncHost(Protocol):
    """What synchronous replication uses of the daemon (`loop.Daemon` implements it)."""

    name: str
    pg: Postgres
    rt: NodeRuntime  # rt.sync_standby_names: the GUC value this module chooses
    view: NodeView
    cluster: Cluster | None
    dynamic: DynamicConfig
    store: ClusterStore
    dcs_ok: bool
    wake: threading.Event  # an early next cycle, to confirm a new sync standby sooner
    sync_confirm_from: int | None  # WAL position new sync standbys must pass (set here)

    def touch_member(self, force: bool = False) -> None: ...


log = logging.getLogger("hatui.ha")

STRICT_PLACEHOLDER = "__patroni_strict_sync_replica_placeholder__"


def standby_names_value(names: list[str], count: int, strict: bool, quorum: bool = False) -> str:
    """The GUC: `"a"`, `2 ("a","b")`, `ANY 1 ("a","b")`, the strict placeholder, or '' (asynchronous)."""
    if not names:
        return f'"{STRICT_PLACEHOLDER}"' if strict else ""
    # ANY k: the order means nothing, so a sorted list keeps the value (and reloads) stable.
    quoted = ",".join(f'"{n}"' for n in (sorted(names) if quorum else names))
    k = min(count, len(names))
    if quorum:
        return f"ANY {k} ({quoted})"
    return quoted if len(names) == 1 else f"{k} ({quoted})"


_COUNT = re.compile(r"^\s*(?:ANY\s+|FIRST\s+)?(\d+)\s*\(", re.IGNORECASE)


def guc_state(value: str | None) -> tuple[int, frozenset[str]]:
    """(k, S) of a synchronous_standby_names value we wrote: commits wait for k of S.
    The strict placeholder and '' both mean that no standby can acknowledge anything: (0, {})."""
    names = frozenset(_names_in(value))
    if not names:
        return 0, frozenset()
    match = _COUNT.match(value or "")
    return (min(int(match.group(1)), len(names)) if match else 1), names


def quorum_needed(k: int, synced: frozenset[str], voters: frozenset[str]) -> int:
    """The smallest q that makes `/sync` (q, voters) safe while PostgreSQL runs with ANY k (synced):
    every set of k standbys that may acknowledge a commit meets every q + 1 voters a candidate
    could see. An acknowledging set has at least k - |synced - voters| voters in it, so a view
    can avoid it only while q + 1 <= |voters| - that many. With k = 0 (asynchronous, or the
    strict placeholder) nothing but the leader has the latest commits: q = |voters|, no view is
    ever enough."""
    inside = max(0, k - len(synced - voters))
    return len(voters) - inside


def quorum_is_safe(k: int, synced: frozenset[str], q: int, voters: frozenset[str]) -> bool:
    return q >= quorum_needed(k, synced, voters)


def choose(cluster: Cluster, me: str, replication: list[dict], current: list[str], count: int,
           max_lag: int = -1, my_lsn: int | None = None) -> list[str]:
    """Up to `count` streaming members fit to be synchronous, keeping the current ones first
    (changing the sync set needlessly only opens windows), then by sync_priority (higher first).
    A standby lagging more than max_lag bytes (when max_lag > 0) is not fit."""
    rows = []
    for row in replication:
        name = row.get("application_name")
        member = cluster.member(name) if isinstance(name, str) else None
        if member is None or name == me or row.get("state") != "streaming" or member.nofailover or member.nosync:
            continue
        if _sync_priority(member.tags) <= 0:
            continue
        rows.append((name, row.get("flush_lsn"), _sync_priority(member.tags)))
    if max_lag > 0 and rows:
        positions = [lsn for _n, lsn, _p in rows if isinstance(lsn, int)]
        reference = max(positions) if len(rows) > 1 and positions else my_lsn
        if reference is not None:
            fit = []
            for name, lsn, prio in rows:
                if isinstance(lsn, int) and reference - lsn > max_lag:
                    if name in current:
                        log.info("%s lags %d bytes behind, more than maximum_lag_on_syncnode (%d): "
                                 "not synchronous while it catches up", name, reference - lsn, max_lag)
                    continue
                fit.append((name, lsn, prio))
            rows = fit
    streaming = {name: prio for name, _lsn, prio in rows}
    keep = [n for n in current if n in streaming]
    rest = sorted((n for n in streaming if n not in keep), key=lambda n: (-streaming[n], n))
    return (keep + rest)[:count]


def _sync_priority(tags: dict) -> int:
    value = tags.get("sync_priority", 1)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


Sync = tuple[int, frozenset[str]]  # (k, S) of a GUC, or (q, V) of the /sync key


def next_step(guc: Sync, dcs: Sync, want: Sync, confirmed: frozenset[str]) -> tuple[str, Sync] | None:
    """One step from the running GUC and `/sync` towards `want`, never through an unsafe state.

    ("dcs", (q, V)): write `/sync`; ("guc", want): set the GUC and wait for PostgreSQL to report
    it; None: nothing to do. `dcs` (q, V) covers every GUC PostgreSQL may still run with, so when
    it widens it grows q by the voters it adds: the guarantee holds for those older GUCs too.
    `/sync` narrows only once PostgreSQL reports every standby of `want` as synchronous."""
    (k_g, s_g), (q_d, v_d), (k_w, s_w) = guc, dcs, want
    if guc != want and s_g and s_w and s_g <= confirmed and not s_g <= v_d:
        # PostgreSQL waits for standbys /sync does not name yet, and they have every commit:
        # record that before moving on, or a crash during the next change has nobody to promote.
        return ("dcs", (quorum_needed(k_g, s_g, s_g), s_g))
    if guc != want:
        if quorum_is_safe(k_g, s_g, q_d, v_d) and quorum_is_safe(k_w, s_w, q_d, v_d):
            return ("guc", want)
        if not s_w and v_d:
            return ("dcs", (0, frozenset()))  # no voters: only the leader may lead, safe for any GUC
        wide = v_d | s_g | s_w
        q = max(q_d + len(wide - v_d), quorum_needed(k_g, s_g, wide), quorum_needed(k_w, s_w, wide))
        return ("dcs", (q, wide))
    if k_w == 0 or s_w <= confirmed:
        target = (quorum_needed(k_w, s_w, s_w), s_w)
        if target != dcs:
            return ("dcs", target)
    return None


def manage(daemon: SyncHost, cluster: Cluster | None) -> None:
    """Once per cycle, after the HA actions."""
    rt = daemon.rt
    if daemon.view.role != "primary":
        # Only a primary uses the GUC; drop it from the next config we write as anything else.
        rt.sync_standby_names = None
        return
    if cluster is None or not daemon.dcs_ok or cluster.leader_name != daemon.name or not daemon.pg.is_running():
        return  # keep what PostgreSQL runs with until we know more
    dyn = daemon.dynamic
    me = daemon.name
    try:
        if not dyn.is_synchronous:
            if rt.sync_standby_names is not None:
                _set_guc(daemon, None)
                log.info("Disabled synchronous replication")
            if cluster.sync.leader is not None:
                daemon.store.delete_sync()
            return
        quorum = dyn.synchronous_mode == "quorum"
        replication = daemon.view.replication or []
        count = dyn.synchronous_node_count
        # Quorum commit lists every fit standby and waits for ANY `count` of them.
        names = choose(cluster, me, replication, _names_in(rt.sync_standby_names),
                       max(count, len(replication)) if quorum else count,
                       dyn.maximum_lag_on_syncnode, daemon.view.xlog_location)
        value = standby_names_value(names, count, dyn.synchronous_mode_strict, quorum)
        want = guc_state(value)
        guc_now = guc_state(rt.sync_standby_names)
        listed = (cluster.sync.quorum, frozenset(state_names(cluster.sync, me)))
        if guc_now[1] and listed != (quorum_needed(*guc_now, guc_now[1]), guc_now[1]):
            # /sync is not settled on what PostgreSQL runs with: ask PostgreSQL now (and briefly
            # wait), so that /sync follows within this cycle, not a loop_wait later.
            confirmed = _await_confirmation(daemon, guc_now[1])
        else:
            confirmed = frozenset(r.get("application_name") for r in replication
                                  if r.get("sync_state") in ("sync", "quorum"))
        if cluster.sync.leader == me:
            state = cluster.sync
        else:
            # A new leader claims /sync first, naming nobody: until its own standbys are
            # confirmed, only it may lead, whatever the previous leader had written.
            state = _write(daemon, SyncState(me), cluster.sync.mod_revision)
        for _ in range(4):
            step = next_step(guc_state(rt.sync_standby_names), (state.quorum, frozenset(state.sync_standby)),
                             want, confirmed)
            if step is None:
                break
            kind, (n, members) = step
            if kind == "guc":
                _apply_guc(daemon, value, names)
                faultpoint.reached(f"sync-guc-set:{','.join(sorted(names))}")
                daemon.sync_confirm_from = None  # a new GUC: its standbys must catch up from now
                # From the moment PostgreSQL waits for a standby, that standby may be the only
                # member with the latest commits: record it in /sync in this very cycle (the
                # leaderless hole of issue 16 was a whole loop_wait between the two).
                confirmed = _await_confirmation(daemon, want[1])
                if not want[1] <= confirmed:
                    _wake_soon(daemon)
                    return
                continue
            before = list(state.sync_standby)
            state = _write(daemon, SyncState(me, tuple(sorted(members)), n), state.mod_revision)
            faultpoint.reached(f"sync-written:{','.join(sorted(members))}")
            if members == want[1] and n == quorum_needed(*want, members):
                note = f" (quorum {n}: any {n + 1} of them include one with every commit)" if quorum and members else ""
                log.info("Synchronous standby status assigned to %s%s", sorted(members), note)
            else:
                log.info("Updating /sync key temporarily from %s to %s (quorum %d)",
                         before, sorted(members), n)
        if value != rt.sync_standby_names:  # same standbys, other spelling (or first enabling)
            _apply_guc(daemon, value, names)
    except DCSError as exc:
        log.warning("could not update the /sync key: %s", exc)


CONFIRM_WAIT = 2.0  # seconds one cycle waits for PostgreSQL to report new standbys as synchronous

_CONFIRM_SQL = """
SELECT application_name, sync_state, pg_wal_lsn_diff(flush_lsn, '0/0')::bigint FROM pg_stat_replication
"""
_LSN_SQL = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"


def state_names(sync: SyncState, me: str) -> list[str]:
    """The standbys `/sync` lists for us as leader (none when it is another leader's)."""
    return list(sync.sync_standby) if sync.leader == me else []


def _await_confirmation(daemon: SyncHost, names: frozenset[str]) -> frozenset[str]:
    """Which of `names` PostgreSQL provably waits for now, polling for up to CONFIRM_WAIT.

    `sync_state` alone is not enough: commits acknowledged before the GUC named a standby were
    not waited for, so the standby has every acknowledged commit only once it has flushed past
    the primary's WAL position read just after the reload (every commit acknowledged before
    lies below it; one PostgreSQL may still have acknowledged without waiting, in the instant
    before its checkpointer applied the reload, is a remaining gap of milliseconds)."""
    deadline = time.monotonic() + CONFIRM_WAIT
    while True:
        try:
            if daemon.sync_confirm_from is None:
                daemon.sync_confirm_from = queries.execute(daemon.pg, _LSN_SQL)[0][0]
            mark = daemon.sync_confirm_from
            rows = queries.execute(daemon.pg, _CONFIRM_SQL)
        except (PostgresError, IndexError) as exc:
            log.warning("could not read pg_stat_replication: %s", exc)
            return frozenset()
        confirmed = frozenset(name for name, state, flush in rows
                              if state in ("sync", "quorum") and flush is not None and flush >= mark)
        if names <= confirmed or time.monotonic() >= deadline:
            if not names <= confirmed:
                log.info("waiting for %s to be reported as synchronous and caught up (from LSN %d)",
                         sorted(names - confirmed), mark)
            return confirmed
        time.sleep(0.05)


def _wake_soon(daemon: SyncHost) -> None:
    """Run the next cycle in a second rather than a loop_wait: /sync is behind PostgreSQL."""
    timer = threading.Timer(1.0, daemon.wake.set)
    timer.daemon = True
    timer.start()


def claim(daemon: SyncHost, cluster: Cluster | None) -> None:
    """Before a promotion: `/sync` names us with no standby, so that until our own standbys are
    confirmed nobody but us may be promoted. The old leader's list is stale the moment we accept
    a commit: its standbys never saw it."""
    if cluster is None or not daemon.dynamic.is_synchronous or cluster.sync.leader == daemon.name:
        return
    try:
        _write(daemon, SyncState(daemon.name), cluster.sync.mod_revision)
    except DCSError as exc:
        log.warning("could not claim the /sync key before promoting: %s", exc)


def leave(daemon: SyncHost, why: str) -> bool:
    """A synchronous standby about to stop (shutdown, restart) first asks the primary to choose
    another standby, so that commits do not wait for one that is going away (spec 2.8). It marks
    itself nosync in its member key and waits up to 2 x loop_wait for `/sync` to drop it.
    Returns True when it marked itself (the caller clears the mark after a restart)."""
    cluster = daemon.cluster
    if (cluster is None or not daemon.dcs_ok or not daemon.dynamic.is_synchronous or cluster.is_paused
            or daemon.view.role == "primary"):
        return False
    try:
        # Fresh from etcd, not the loop's view: the primary may have named us in /sync since the
        # last cycle read it (up to a loop_wait ago), and PostgreSQL already waits for us.
        cluster = daemon.store.read()
    except DCSError:
        pass  # etcd is not answering: the last view is the best we know
    if not cluster.sync.matches(daemon.name):
        return False
    log.info("Waiting for primary to release us from synchronous standby (%s)", why)
    daemon.view.tags = {**daemon.view.tags, "nosync": True}
    daemon.touch_member(force=True)
    deadline = time.monotonic() + 2 * daemon.dynamic.loop_wait + 1
    while time.monotonic() < deadline:
        try:
            now = daemon.store.read()
        except DCSError:
            break
        if not now.sync.matches(daemon.name):
            log.info("released from synchronous standby by the primary")
            return True
        if now.leader is None:
            break  # no primary to release us (the whole cluster may be stopping)
        time.sleep(0.2)
    log.warning("the primary did not release us from synchronous standby in time; going on (%s)", why)
    return True


def rejoin(daemon: SyncHost) -> None:
    """After a restart: fit to be synchronous again."""
    daemon.view.tags = dict(daemon.rt.member_tags)
    daemon.touch_member(force=True)


def _apply_guc(daemon: SyncHost, value: str, names: list[str]) -> None:
    if daemon.rt.sync_standby_names is None:
        log.info("Enabled synchronous replication")
    if not names and daemon.dynamic.synchronous_mode_strict:
        log.warning("No active replication connections from Patroni members and "
                    "synchronous_mode_strict is requested. Commits will be delayed.")
    _set_guc(daemon, value)


def _names_in(value: str | None) -> list[str]:
    if not value:
        return []
    inner = value.split("(", 1)[1].rstrip(")") if "(" in value else value
    names = [n.strip().strip('"') for n in inner.split(",")]
    return [n for n in names if n and n != STRICT_PLACEHOLDER]


def _write(daemon: SyncHost, sync: SyncState, revision: int) -> SyncState:
    """Compare-and-swap on the revision we read (0: only if absent); the stored state back."""
    if not daemon.store.write_sync(sync, revision):
        raise DCSError("the /sync key changed under us; trying again next cycle")
    fresh = daemon.store.read().sync
    return fresh if fresh.leader == daemon.name else sync


def _set_guc(daemon: SyncHost, value: str | None) -> None:
    daemon.rt.sync_standby_names = value
    daemon.pg.write_config(daemon.rt.effective_parameters(daemon.dynamic), daemon.rt.pg_hba(daemon.dynamic), None)
    daemon.pg.reload()
    log.info("synchronous_standby_names set to %r", value or "")
