"""Builders for HA-core tests: cluster views made from Patroni-4.1-shaped etcd keys.

Every view goes through `Cluster.from_kvs`, the same parser the daemon uses, so the tests
exercise the real key formats (member JSON, plain leader name, history list, failover, sync and
status objects) rather than hand-made model objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Mapping

from hatui.cluster import Cluster
from hatui.daemon.ha import Decision, LocalPostgres, NodeSettings, Observation, PeerStatus, decide

SCOPE = "batman"
SYSID = "7712193093952314556"
OTHER_SYSID = "7000000000000000001"
LSN = 50331744  # 0/3000060, the position a fresh cluster reports
MB = 1048576


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class M:
    """One member key. `lsn` is the member's WAL position; replicas publish it as receive/replay."""

    name: str
    role: str = "replica"
    state: str = "running"
    lsn: int | None = LSN
    receive: int | None = None  # replicas: defaults to lsn
    replay: int | None = None  # replicas: defaults to lsn
    timeline: int | None = 1
    tags: Mapping[str, Any] = field(default_factory=dict)
    version: str = "4.1.5"
    replication_state: str | None = "streaming"
    checkpoint_after_promote: bool | None = None  # False right after a promotion
    index: int | None = None  # port offset; derived from the name's trailing digits otherwise

    def port_offset(self) -> int:
        if self.index is not None:
            return self.index
        digits = "".join(ch for ch in self.name if ch.isdigit())
        return int(digits) if digits else 0

    def value(self) -> dict:
        """The member JSON in Patroni's key order (spec 1.2)."""
        i = self.port_offset()
        data: dict[str, Any] = {
            "conn_url": f"postgres://127.0.0.1:{5432 + i}/postgres",
            "api_url": f"http://127.0.0.1:{8008 + i}/patroni",
            "state": self.state,
            "role": self.role,
            "version": self.version,
        }
        if self.checkpoint_after_promote is False:
            data["checkpoint_after_promote"] = False
        if self.tags:
            data["tags"] = dict(self.tags)
        if self.state in ("running", "restarting", "starting"):
            primary = self.role in ("primary", "master")
            if primary:
                if self.lsn is not None:
                    data["xlog_location"] = self.lsn
            else:
                receive = self.receive if self.receive is not None else self.lsn
                replay = self.replay if self.replay is not None else self.lsn
                known = [v for v in (receive, replay) if v is not None]
                if known:
                    data["xlog_location"] = max(known)
                if replay is not None:
                    data["replay_lsn"] = replay
                if receive is not None:
                    data["receive_lsn"] = receive
                if self.replication_state:
                    data["replication_state"] = self.replication_state
            if self.timeline is not None:
                data["timeline"] = self.timeline
        return data


def primary(name: str, lsn: int | None = LSN, timeline: int | None = 1, **kw: Any) -> M:
    return M(name, role="primary", lsn=lsn, timeline=timeline, replication_state=None, **kw)


def replica(name: str, lsn: int | None = LSN, timeline: int | None = 1, **kw: Any) -> M:
    return M(name, role="replica", lsn=lsn, timeline=timeline, **kw)


def config_value(ttl: int = 30, loop_wait: int = 10, retry_timeout: int = 10,
                 maximum_lag_on_failover: int = MB, pause: bool | None = None,
                 synchronous_mode: Any = None, **extra: Any) -> dict:
    """The dynamic config as `bootstrap.dcs` writes it (spec 3.1), plus optional keys."""
    data: dict[str, Any] = {"ttl": ttl, "loop_wait": loop_wait, "retry_timeout": retry_timeout,
                            "maximum_lag_on_failover": maximum_lag_on_failover,
                            "postgresql": {"use_pg_rewind": True, "use_slots": True}}
    if pause is not None:
        data["pause"] = pause
    if synchronous_mode is not None:
        data["synchronous_mode"] = synchronous_mode
    data.update(extra)
    return data


def cluster(members: Iterable[M] = (), *, leader: str | None = None, initialize: str | None = SYSID,
            config: Mapping[str, Any] | None = None, pause: bool | None = None,
            synchronous_mode: Any = None, maximum_lag_on_failover: int | None = None,
            history: Iterable[Iterable[Any]] | None = None,
            failover: Mapping[str, Any] | None = None,
            sync: tuple[str | None, Iterable[str]] | None = None, sync_quorum: int = 0,
            optime: int | None = None, leader_lease: int = 7001,
            extra_kvs: Iterable[tuple[str, str]] = ()) -> Cluster:
    """Build a view from etcd-shaped keys. `config=None` writes the default bootstrap config;
    pass `config={}`-like mappings to write exactly that; pause/sync/lag override config fields.
    `history` rows are [tl, lsn, reason(, timestamp, new_leader)]; `failover` is the key's JSON
    object ({"leader":..,"member":..,"scheduled_at":..}); `sync` is (leader, [standbys]).
    """
    kvs: list[tuple[str, str, int, int]] = []
    rev = 10

    def put(key: str, value: str, lease: int = 0) -> None:
        nonlocal rev
        rev += 1
        kvs.append((key, value, rev, lease))

    if initialize is not None:
        put("initialize", initialize)
    cfg = dict(config) if config is not None else config_value()
    if pause is not None:
        cfg["pause"] = pause
    if synchronous_mode is not None:
        cfg["synchronous_mode"] = synchronous_mode
    if maximum_lag_on_failover is not None:
        cfg["maximum_lag_on_failover"] = maximum_lag_on_failover
    put("config", _compact(cfg))
    for m in members:
        lease = leader_lease if m.name == leader else 8000 + m.port_offset()
        put(f"members/{m.name}", _compact(m.value()), lease)
    if leader is not None:
        put("leader", leader, leader_lease)
    if history is not None:
        put("history", _compact([list(row) for row in history]))
    if failover is not None:
        put("failover", _compact(dict(failover)))
    if sync is not None:
        sync_leader, standbys = sync
        names = sorted(standbys)
        put("sync", _compact({"leader": sync_leader, "quorum": sync_quorum,
                              "sync_standby": ",".join(names) if names else None}))
    if optime is not None:
        put("status", _compact({"optime": optime, "slots": {}, "retain_slots": []}))
    for key, value in extra_kvs:
        put(key, value)
    return Cluster.from_kvs(SCOPE, kvs, revision=rev)


# --- local state and observations --------------------------------------------------------------

def pg_primary(lsn: int | None = LSN, timeline: int | None = 1, **kw: Any) -> LocalPostgres:
    return LocalPostgres(data_dir="valid", running=True, role="primary", timeline=timeline,
                         wal_position=lsn, sysid=kw.pop("sysid", SYSID), **kw)


def pg_replica(lsn: int | None = LSN, timeline: int | None = 1, following: str | None = None,
               **kw: Any) -> LocalPostgres:
    return LocalPostgres(data_dir="valid", running=True, role="replica", timeline=timeline,
                         wal_position=lsn, sysid=kw.pop("sysid", SYSID), following=following, **kw)


def pg_stopped(role: str = "replica", lsn: int | None = LSN, timeline: int | None = 1,
               crashed: bool = False, **kw: Any) -> LocalPostgres:
    return LocalPostgres(data_dir="valid", running=False, role=role, timeline=timeline,
                         wal_position=lsn, sysid=kw.pop("sysid", SYSID), crashed=crashed, **kw)


def pg_empty(data_dir: str = "empty", running: bool = False) -> LocalPostgres:
    return LocalPostgres(data_dir=data_dir, running=running)


def observe(c: Cluster | None, name: str, pg: LocalPostgres, *, settings: NodeSettings | None = None,
            lock_refreshed: bool | None = None, peers: Mapping[str, PeerStatus] | None = None,
            **kw: Any) -> Observation:
    """An observation for `name`. lock_refreshed defaults to "the leader key names me"."""
    if lock_refreshed is None:
        lock_refreshed = c is not None and c.leader_name == name
    return Observation(settings or NodeSettings(name), pg, c, lock_refreshed, peers, **kw)


def decide_for(c: Cluster | None, name: str, pg: LocalPostgres, **kw: Any) -> Decision:
    return decide(observe(c, name, pg, **kw))


def peer(name: str, lsn: int | None = LSN, role: str = "replica", reachable: bool = True,
         failover_priority: int = 1, nofailover: bool = False) -> PeerStatus:
    return PeerStatus(name, reachable, role if reachable else None, lsn if reachable else None,
                      failover_priority, nofailover)


def peers(*items: PeerStatus) -> dict[str, PeerStatus]:
    return {p.name: p for p in items}


def settings(name: str, **kw: Any) -> NodeSettings:
    return NodeSettings(name, **kw)


def with_settings(obs: Observation, **kw: Any) -> Observation:
    return replace(obs, settings=replace(obs.settings, **kw))


def iso(dt: datetime) -> str:
    return dt.isoformat()
