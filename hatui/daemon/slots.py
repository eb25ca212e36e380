"""Replication slots, kept as Patroni 4.1 keeps them (`use_slots`, `member_slots_ttl`, `slots`, `ignore_slots`).

Every member (PostgreSQL running, etcd reachable) runs `SlotKeeper.sync` once per HA cycle:

- The primary keeps one physical slot per member that may stream from it (the name comes from
  the member name: `slot_name_from_member_name`), the permanent slots of the `slots` setting
  (physical and logical), and the slots of members that went away, for `member_slots_ttl`
  seconds (their names travel in the `retain_slots` list of the `/status` key). It publishes the
  position of every slot it keeps in `/status` (`slots`), plus its own name at its WAL position.
- A replica keeps the same physical slots (for every member but itself, when
  `member_slots_ttl > 0`), advanced to the positions the primary published, so that after a
  failover the new primary already holds a slot for each member at a position that member still
  has. Permanent logical slots are copied from the primary (its `pg_replslot/<name>/state` file,
  read with pg_read_binary_file, written here while PostgreSQL is stopped) and then advanced
  with pg_replication_slot_advance to the `confirmed_flush_lsn` the primary published, never
  past what this replica replayed: a consumer that resumes on the new primary after a failover
  gets every change it had not confirmed.
- Slots nobody wants any more are dropped (unless `ignore_slots` matches them, or they are in
  use). `use_slots: false` turns all of this off, as in Patroni.

The pure part (`wanted_slots`, `is_ignored`, `slot_name_from_member_name`) does no I/O and is
unit-tested on its own; SlotKeeper does the SQL.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from ..cluster import Cluster, Member
from ..slotview import slot_name_from_member_name
from .postgres import format_lsn

if TYPE_CHECKING:
    from ..config import DynamicConfig
    from .member import NodeView
    from .node import NodeRuntime
    from .postgres import Postgres


class Daemon(Protocol):
    """What the slot keeper uses of the daemon (`loop.Daemon` implements it; importing the loop
    here would be an import circle)."""

    name: str
    pg: Postgres
    view: NodeView
    rt: NodeRuntime
    dynamic: DynamicConfig
    dcs_ok: bool

    def lease_kept(self, what: str) -> AbstractContextManager[None]: ...

log = logging.getLogger("hatui.slots")

SLOTS_QUERY = (
    "SELECT slot_name, slot_type, database, plugin, active,"
    " pg_wal_lsn_diff(restart_lsn, '0/0')::bigint, pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint,"
    " catalog_xmin::text"
    " FROM pg_replication_slots WHERE NOT temporary ORDER BY slot_name"
)
_VALID = re.compile(r"^[a-z0-9_]{1,63}$")


@dataclass(frozen=True)
class SlotRow:
    """One row of pg_replication_slots."""

    name: str
    type: str
    database: str | None = None
    plugin: str | None = None
    active: bool = False
    restart_lsn: int | None = None
    confirmed_flush_lsn: int | None = None
    catalog_xmin: str | None = None

    @property
    def lsn(self) -> int | None:
        """The position the slot holds for its consumer: confirmed_flush_lsn (logical) or restart_lsn."""
        return self.confirmed_flush_lsn if self.type == "logical" else self.restart_lsn


@dataclass(frozen=True)
class Want:
    """A slot this node should have."""

    type: str = "physical"
    database: str | None = None
    plugin: str | None = None
    lsn: int | None = None  # where the primary says it is (feedback), if known
    expected_active: bool = False  # a consumer streams from it here: never advance it ourselves
    permanent: bool = False

    def matches(self, row: SlotRow) -> bool:
        if row.type != self.type:
            return False
        return self.type == "physical" or (row.database == self.database and row.plugin == self.plugin)


def _tags(m: Member) -> dict:
    return m.tags if isinstance(m.tags, dict) else {}


def _nostream(m: Member) -> bool:
    return _tags(m).get("nostream") is True


def permanent_slots(slots: Mapping[str, Any]) -> dict[str, Want]:
    """The `slots` setting as Want objects; a bare name (None value) is a physical slot."""
    out: dict[str, Want] = {}
    for name, spec in (slots or {}).items():
        if not isinstance(name, str) or not _VALID.match(name):
            continue
        spec = spec if isinstance(spec, Mapping) else {}
        kind = spec.get("type", "physical")
        if kind == "logical":
            if not spec.get("database") or not spec.get("plugin"):
                continue
            out[name] = Want("logical", str(spec["database"]), str(spec["plugin"]), permanent=True)
        elif kind == "physical":
            out[name] = Want("physical", permanent=True)
    return out


def wanted_slots(cluster: Cluster, me: str, role: str, nofailover: bool, use_slots: bool,
                 member_slots_ttl: int, slots: Mapping[str, Any]) -> dict[str, Want]:
    """The slots this node should hold, Patroni 4.1's rules (`Cluster.get_replication_slots`).

    role is "primary" (the leader) or "replica". With member_slots_ttl > 0 every node keeps a
    slot for every other streaming member (a replica with nofailover only for those that
    cascade from it); otherwise only for the members that stream from it.
    """
    if not use_slots:
        return {}
    status = dict(cluster.status.slots) if cluster.status else {}
    members = [m for m in cluster.members if m.name != me and not _nostream(m)]
    names = {m.name for m in cluster.members}

    def leader_filter(m: Member) -> bool:
        rf = m.replicatefrom
        return rf is None or rf == me or rf not in names

    def replica_filter(m: Member) -> bool:
        return m.replicatefrom == me and m.name != cluster.leader_name

    expected = leader_filter if role == "primary" else replica_filter
    if member_slots_ttl > 0:
        members = [m for m in members if not nofailover or m.replicatefrom == me]
    else:
        members = [m for m in members if expected(m)]
    out: dict[str, Want] = {}
    for m in members:
        name = slot_name_from_member_name(m.name)
        lsn = _int(status.get(name)) or 0
        if m.replicatefrom:
            # The leader's slot for a cascading member is not the one it streams from, so the
            # member's own reported position is the better feedback.
            lsn = max(m.xlog_location or 0, lsn)
        out[name] = Want("physical", lsn=lsn or None, expected_active=expected(m))
    mine = slot_name_from_member_name(me)
    if not nofailover:
        for name in cluster.status.retain_slots if cluster.status else ():
            if name not in out and name != mine:
                out[name] = Want("physical", lsn=_int(status.get(name)))
    for name, want in permanent_slots(slots).items():
        if name == mine or (name in out and want.type == "logical"):
            continue  # a member's own slot name, or a logical slot clashing with a member slot
        if role != "primary" and want.type == "logical" and nofailover:
            continue  # a node that never becomes primary needs no copy
        out[name] = Want(want.type, want.database, want.plugin, lsn=_int(status.get(name)), permanent=True,
                         expected_active=role == "primary")
    return out


def is_ignored(row: SlotRow, rules: Iterable[Any]) -> bool:
    """`ignore_slots`: a rule matches when each attribute it names (name, type, database, plugin) is equal."""
    for rule in rules or ():
        if not isinstance(rule, Mapping) or not rule:
            continue
        if all(str(getattr(row, key, None)) == str(value) for key, value in rule.items()
               if key in ("name", "type", "database", "plugin")):
            return True
    return False


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


class SlotKeeper:
    """The I/O half: reads and changes the local slots, once per HA cycle (in the HA thread)."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.rows: dict[str, SlotRow] = {}
        self.published: dict[str, int] = {}  # slot -> lsn, what the leader puts in /status
        self.retained: dict[str, float] = {}  # member slot -> wall time it was last backed by a member
        self._was_leader = False
        self._advancing: threading.Thread | None = None
        self._warned: set[str] = set()
        # Copied logical slots whose catalog rows the primary does not yet keep for us (see _check_ready).
        self.unready: set[str] = set()

    # ---- what the loop calls -----------------------------------------------------------------
    def sync(self, cluster: Cluster | None) -> None:
        d = self.d
        if cluster is None or not d.dcs_ok or d.view.state != "running" or \
                d.view.role not in ("primary", "replica", "standby_leader"):
            return
        dyn = d.dynamic
        # A standby cluster's leader keeps its members' physical slots, as a primary does (Patroni).
        leader = cluster.leader_name == d.name and d.view.role in ("primary", "standby_leader")
        role = "primary" if leader else "replica"
        if role == "replica" and d.view.role == "primary":
            return  # a primary without the lock is being demoted; leave its slots alone
        try:
            self.rows = self.read()
            wants = wanted_slots(cluster, d.name, role, d.rt.settings().nofailover, dyn.use_slots,
                                 dyn.member_slots_ttl, dyn.slots)
            if d.view.role == "standby_leader":  # PostgreSQL 15 makes no logical slot on a standby
                wants = {n: w for n, w in wants.items() if w.type == "physical"}
            if not dyn.use_slots:
                self.published = {}
                return
            self._drop_unwanted(wants, dyn.ignore_slots)
            self._ensure_physical(wants, role)
            if role == "primary":
                self._ensure_logical_primary(wants)
            else:
                self._ensure_logical_replica(wants, cluster)
            self.rows = self.read()
            if leader:
                self._publish(cluster, wants)
        except Exception as exc:  # noqa: BLE001 - slots must never stop the HA cycle
            log.warning("replication slots not synchronised this cycle: %s", exc)
        finally:
            if not leader:
                self._was_leader = False

    def status_fields(self) -> tuple[dict[str, int], tuple[str, ...]]:
        """(slots, retain_slots) for the leader's /status key."""
        return dict(self.published), tuple(sorted(self.retained))

    # ---- SQL ---------------------------------------------------------------------------------
    def _sql(self, query: str, params: Any = None, dbname: str | None = None, timeout_ms: int = 0) -> list[tuple]:
        from . import queries

        if dbname is None and not timeout_ms:
            return queries.execute(self.d.pg, query, params)
        with queries.connect(self.d.pg, dbname) as conn:
            if timeout_ms:
                conn.execute(f"SET statement_timeout = {int(timeout_ms)}")
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def read(self) -> dict[str, SlotRow]:
        rows = {}
        for r in self._sql(SLOTS_QUERY):
            rows[r[0]] = SlotRow(r[0], r[1], r[2], r[3], bool(r[4]), _int(r[5]), _int(r[6]), r[7])
        return rows

    def _drop(self, name: str, why: str) -> None:
        try:
            dropped = self._sql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                "WHERE slot_name = %s AND NOT active", (name,))
        except Exception as exc:  # noqa: BLE001
            log.warning("could not drop replication slot '%s': %s", name, exc)
            return
        if dropped:
            log.info("Dropped replication slot '%s' (%s)", name, why)
            self.rows.pop(name, None)

    def _drop_unwanted(self, wants: Mapping[str, Want], ignore: Iterable[Any]) -> None:
        for name, row in list(self.rows.items()):
            if is_ignored(row, ignore):
                continue
            want = wants.get(name)
            if want is None:
                self._drop(name, "no member or permanent slot needs it")
            elif not want.matches(row):
                self._drop(name, f"it is {row.type} {row.database or ''} {row.plugin or ''} but the configuration "
                                 f"wants {want.type} {want.database or ''} {want.plugin or ''}".replace("  ", " "))

    def _ensure_physical(self, wants: Mapping[str, Want], role: str) -> None:
        replay = self.d.view.replay_lsn if role == "replica" else None
        for name, want in wants.items():
            if want.type != "physical":
                continue
            row = self.rows.get(name)
            if row is None:
                try:
                    self._sql("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
                    log.info("Created physical replication slot '%s'", name)
                except Exception as exc:  # noqa: BLE001
                    log.warning("could not create physical replication slot '%s': %s", name, exc)
                continue
            if want.expected_active or row.active or not want.lsn:
                continue
            target = min(want.lsn, replay) if replay else want.lsn
            if row.restart_lsn is not None and target > row.restart_lsn:
                try:
                    self._sql("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (name, format_lsn(target)))
                except Exception as exc:  # noqa: BLE001
                    log.warning("could not advance physical replication slot '%s': %s", name, exc)

    def _ensure_logical_primary(self, wants: Mapping[str, Want]) -> None:
        for name, want in wants.items():
            if want.type != "logical" or name in self.rows:
                continue
            try:
                # Creating a logical slot waits for running transactions: a bounded wait, so
                # one long transaction cannot hold the HA cycle.
                self._sql("SELECT pg_create_logical_replication_slot(%s, %s)", (name, want.plugin),
                          dbname=want.database, timeout_ms=5000)
                log.info("Created logical replication slot '%s' (database %s, plugin %s)", name, want.database,
                         want.plugin)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not create logical replication slot '%s': %s", name, exc)

    def _ensure_logical_replica(self, wants: Mapping[str, Want], cluster: Cluster) -> None:
        missing = [n for n, w in wants.items() if w.type == "logical" and n not in self.rows and w.lsn]
        if missing and cluster.leader_name and cluster.leader_name != self.d.name:
            self._copy_from_leader(missing, wants, cluster)
            self.rows = self.read()
        self.unready &= {n for n, r in self.rows.items() if r.type == "logical"}
        if self.unready:
            self._check_ready(cluster)
        replay = self.d.view.replay_lsn
        todo: dict[str, list[tuple[str, int]]] = {}
        for name, want in wants.items():
            row = self.rows.get(name)
            if want.type != "logical" or row is None or not want.lsn or replay is None:
                continue
            target = min(want.lsn, replay)  # never past what this replica has replayed
            if row.confirmed_flush_lsn is None or target > row.confirmed_flush_lsn:
                todo.setdefault(str(want.database), []).append((name, target))
        if todo and (self._advancing is None or not self._advancing.is_alive()):
            # Advancing decodes WAL and can take a while: aside, so the HA cycle goes on.
            self._advancing = threading.Thread(target=self._advance_logical, args=(todo,), daemon=True,
                                               name="slot-advance")
            self._advancing.start()

    def _advance_logical(self, todo: Mapping[str, list[tuple[str, int]]]) -> None:
        for database, items in todo.items():
            for name, target in items:
                try:
                    self._sql("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (name, format_lsn(target)),
                              dbname=database)
                    log.debug("advanced logical replication slot '%s' to %s", name, format_lsn(target))
                except Exception as exc:  # noqa: BLE001
                    log.warning("could not advance logical replication slot '%s': %s", name, exc)
                    if "has already been removed" in str(exc):
                        # The copy cannot be decoded here any more: drop it, copy it again later.
                        self._drop(name, "its WAL is gone on this replica; it will be copied again")

    def _copy_from_leader(self, names: list[str], wants: Mapping[str, Want], cluster: Cluster) -> None:
        """Copy logical slots from the primary: their state files, written here while PostgreSQL
        is stopped (a slot cannot be created by SQL on a PostgreSQL 15 standby)."""
        import psycopg

        leader = cluster.member(cluster.leader_name) if cluster.leader_name else None
        if leader is None or not leader.host:
            return
        user, password = self.d.rt.superuser
        copies: dict[str, bytes] = {}
        try:
            with psycopg.connect(host=leader.host, port=leader.port, user=user, password=password or None,
                                 dbname=self.d.pg.database, connect_timeout=3, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT slot_name, datname, plugin, pg_read_binary_file('pg_replslot/' || slot_name || '/state'),"
                    " pg_wal_lsn_diff(restart_lsn, '0/0')::bigint"
                    " FROM pg_replication_slots JOIN pg_database ON datoid = oid"
                    " WHERE slot_type = 'logical' AND NOT pg_is_in_recovery() AND slot_name = ANY(%s)",
                    (names,)).fetchall()
            oldest = self._oldest_local_wal()
        except Exception as exc:  # noqa: BLE001
            log.warning("could not read logical slots %s from %s: %s", names, cluster.leader_name, exc)
            return
        for name, datname, plugin, data, restart_lsn in rows:
            want = wants[name]
            if oldest is None or restart_lsn is None or int(restart_lsn) < oldest:
                # A copy needs the WAL from the slot's restart_lsn on, and this replica starts
                # later (it was cloned after the slot was made). The slot moves there once its
                # consumer confirms something newer; copy then, not a useless slot now.
                key = f"{name}@{restart_lsn}"
                if key not in self._warned:
                    log.info("logical slot '%s' not copied yet: on %s it needs WAL from %s, this replica has WAL "
                             "from %s on", name, cluster.leader_name,
                             format_lsn(int(restart_lsn)) if restart_lsn is not None else "?",
                             format_lsn(oldest) if oldest is not None else "?")
                    self._warned.add(key)
                continue
            if (datname, plugin) != (want.database, want.plugin):
                if name not in self._warned:
                    log.warning("will not copy logical slot '%s': on %s it is %s/%s, the configuration says %s/%s",
                                name, cluster.leader_name, datname, plugin, want.database, want.plugin)
                    self._warned.add(name)
                continue
            copies[name] = bytes(data)
        if not copies:
            return
        pg = self.d.pg
        log.info("copying logical replication slots %s from %s (PostgreSQL restarts to load them)",
                 sorted(copies), cluster.leader_name)
        with self.d.lease_kept("slot copy"):
            pg.stop("fast")
            try:
                slot_dir = os.path.join(pg.data_dir, "pg_replslot")
                for name, data in copies.items():
                    final = os.path.join(slot_dir, name)
                    tmp = final + ".tmp"
                    shutil.rmtree(tmp, ignore_errors=True)
                    os.mkdir(tmp, 0o700)
                    path = os.path.join(tmp, "state")
                    with open(path, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.chmod(path, 0o600)
                    pg.user.chown(path)
                    pg.user.chown(tmp)
                    shutil.rmtree(final, ignore_errors=True)
                    os.rename(tmp, final)
                    self.unready.add(name)
                _fsync_dir(slot_dir)
            finally:
                pg.start(timeout=60)

    def _check_ready(self, cluster: Cluster) -> None:
        """A copied logical slot is safe once the primary keeps the catalog rows it needs for us:
        our physical slot there (fed by hot_standby_feedback) holds a catalog_xmin no newer than
        the logical slot's. Until then a promotion warns, as Patroni does."""
        import psycopg

        leader = cluster.member(cluster.leader_name) if cluster.leader_name else None
        if leader is None or not leader.host:
            return
        user, password = self.d.rt.superuser
        try:
            with psycopg.connect(host=leader.host, port=leader.port, user=user, password=password or None,
                                 dbname=self.d.pg.database, connect_timeout=3, autocommit=True,
                                 **self.d.rt.superuser_options) as conn:
                rows = conn.execute(
                    "SELECT l.slot_name FROM pg_replication_slots l, pg_replication_slots p"
                    " WHERE p.slot_name = %s AND l.slot_name = ANY(%s) AND p.catalog_xmin IS NOT NULL"
                    " AND age(p.catalog_xmin) >= age(l.catalog_xmin)",
                    (slot_name_from_member_name(self.d.name), sorted(self.unready))).fetchall()
        except Exception as exc:  # noqa: BLE001 - asked again next cycle
            log.debug("could not check logical slot readiness on %s: %s", cluster.leader_name, exc)
            return
        for (name,) in rows:
            log.info("logical replication slot '%s' is ready: %s keeps its catalog rows for us", name,
                     cluster.leader_name)
            self.unready.discard(name)

    def on_promote(self) -> None:
        if self.unready:
            log.warning("Logical replication slots that might be unsafe to use after promote: %s",
                        ", ".join(sorted(self.unready)))
        self.unready.clear()

    def _oldest_local_wal(self) -> int | None:
        """The first LSN of the oldest WAL segment in our pg_wal."""
        rows = self._sql("SELECT min(name), (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')"
                         " FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'")
        if not rows or rows[0][0] is None:
            return None
        name, seg_size = rows[0]
        return (int(name[8:16], 16) << 32) + int(name[16:24], 16) * int(seg_size)

    # ---- the leader's /status ------------------------------------------------------------------
    def _publish(self, cluster: Cluster, wants: Mapping[str, Want]) -> None:
        d = self.d
        now = time.time()
        if not self._was_leader:
            # A new leader takes over the retention list its predecessor published.
            self.retained = {name: now for name in cluster.status.retain_slots} if cluster.status else {}
            self._was_leader = True
        published = {name: row.lsn for name, row in self.rows.items() if name in wants and row.lsn is not None}
        if d.view.xlog_location is not None:
            # Our own name at our WAL position: the replicas keep a slot for us there, ready for
            # when we come back as a replica after a failover.
            published[slot_name_from_member_name(d.name)] = d.view.xlog_location
        self.published = {k: int(v) for k, v in published.items()}
        if d.dynamic.member_slots_ttl > 0:
            members = {slot_name_from_member_name(m.name) for m in cluster.members if not _nostream(m)}
            members.add(slot_name_from_member_name(d.name))
            permanent = set(permanent_slots(d.dynamic.slots))
            for name in self.published:
                if name in members and name not in permanent:
                    self.retained[name] = now
        for name, seen in list(self.retained.items()):
            if seen + d.dynamic.member_slots_ttl <= now:
                log.info("Replication slot '%s' for absent cluster member is expired after %d sec.", name,
                         d.dynamic.member_slots_ttl)
                del self.retained[name]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
