"""The health checks' rules, pure: which endpoint paths exist, what a health check looks at
(`NodeView`), the 200/503 of each path (/primary, /replica, /sync, ?lag, ?tag_*), /liveness,
/readiness, and the /patroni body derived from the node's status and the cluster view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..cluster import Cluster
from .api_rules_values import parse_bool, parse_size

# --------------------------------------------------------------------------------------------------
# Health checks

LEADER_PATHS = frozenset({"leader"})
PRIMARY_PATHS = frozenset({"", "primary", "master", "read-write"})
STANDBY_LEADER_PATHS = frozenset({"standby-leader", "standby_leader"})
# Endpoints that answer about the lock: ?tag_* filters do not apply to them.
LOCK_PATHS = LEADER_PATHS | PRIMARY_PATHS | STANDBY_LEADER_PATHS
SYNC_PATHS = frozenset({"sync", "synchronous"})
ASYNC_PATHS = frozenset({"async", "asynchronous"})
READ_ONLY_SYNC_PATHS = frozenset({"read-only-sync", "read-only-synchronous"})
HEALTH_PATHS = LOCK_PATHS | SYNC_PATHS | ASYNC_PATHS | READ_ONLY_SYNC_PATHS | frozenset(
    {"replica", "read-only", "health", "quorum", "read-only-quorum"}
)


@dataclass(frozen=True)
class NodeView:
    """What a health check looks at.

    status: the GET /patroni dict of this node (may carry the internal `latest_end_lsn`).
    cluster: the cluster view, or None when the DCS view is not current (etcd unreachable).
    is_leader: this node holds the leader lock right now (last lock update less than ttl ago).
    """

    status: Mapping[str, Any]
    cluster: Cluster | None
    is_leader: bool


def _xlog(status: Mapping[str, Any]) -> Mapping[str, Any]:
    xlog = status.get("xlog")
    return xlog if isinstance(xlog, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _first(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def is_standby_cluster(cluster: Cluster | None) -> bool:
    """The dynamic config describes a standby cluster (replicating from a remote primary)."""
    data = cluster.config.data if cluster is not None and cluster.config is not None else {}
    sc = data.get("standby_cluster")
    return isinstance(sc, dict) and any(sc.get(k) for k in ("host", "port", "restore_command"))


def sync_flags(status: Mapping[str, Any], cluster: Cluster | None) -> dict[str, bool]:
    """{"sync_standby": True} or {"quorum_standby": True} when this replica is in `/sync`."""
    if status.get("sync_standby") or status.get("quorum_standby"):
        return {k: True for k in ("sync_standby", "quorum_standby") if status.get(k)}
    if cluster is None or cluster.config is None or status.get("role") != "replica":
        return {}
    mode = cluster.config.synchronous_mode
    me = (status.get("patroni") or {}).get("name") if isinstance(status.get("patroni"), dict) else None
    if mode == "off" or not isinstance(me, str) or not cluster.sync.matches(me):
        return {}
    return {"quorum_standby" if mode == "quorum" else "sync_standby": True}


def public_status(status: Mapping[str, Any], cluster: Cluster | None) -> dict[str, Any]:
    """The /patroni body: the backend's status without internal keys, plus fields derived from the view."""
    out = {k: v for k, v in status.items() if k != "latest_end_lsn"}
    out.update(sync_flags(status, cluster))
    if "cluster_unlocked" not in out and (cluster is None or cluster.leader is None):
        out["cluster_unlocked"] = True
    return out


def tags_match(query: Mapping[str, list[str]], tags: Mapping[str, Any]) -> bool:
    """Every `?tag_<key>=<value>` names a tag this node has, with that value.

    Non-string tag values compare as lower-case text (True -> "true", 1 -> "1"), as in Patroni.
    """
    for key, values in query.items():
        if not key.startswith("tag_") or not values:
            continue
        have = tags.get(key[len("tag_"):])
        if have is None:
            return False
        if not isinstance(have, str):
            have = str(have).lower()
        if have != values[0]:
            return False
    return True


def _leader_optime(view: NodeView) -> int:
    cluster_lsn = (view.cluster.last_lsn or 0) if view.cluster is not None else 0
    return max(cluster_lsn, _int(view.status.get("latest_end_lsn")))


def health_code(path: str, view: NodeView, query: Mapping[str, list[str]]) -> int:
    """200 or 503 for GET/HEAD/OPTIONS on a health endpoint (`path` is the first path segment).

    Unknown paths answer 503, like Patroni: a typo in a load balancer check must not mark a node healthy.
    """
    st = view.status
    role, state = st.get("role"), st.get("state")
    tags = st.get("tags") if isinstance(st.get("tags"), dict) else {}
    cluster = view.cluster

    max_lag = parse_size(_first(query, "lag"))
    optime = _leader_optime(view)
    replayed = _int(_xlog(st).get("replayed_location"))
    lagging = max_lag is not None and optime > 0 and optime > replayed + max_lag
    wanted_state = _first(query, "replication_state")
    replica_ok = (
        not parse_bool(tags.get("noloadbalance"))
        and not lagging
        and role == "replica"
        and state == "running"
        and (not wanted_state or st.get("replication_state") == wanted_state)
    )

    if cluster is None and st.get("pause"):
        # Paused and etcd unreachable: nobody will change roles, so the PostgreSQL role is the truth.
        primary_ok = role in ("primary", "master")
        standby_ok = role == "standby_leader"
        leader_ok = primary_ok or standby_ok
    elif view.is_leader:
        leader_ok = True
        if is_standby_cluster(cluster) or role == "standby_leader":
            primary_ok = replica_ok = False
            standby_ok = role in ("replica", "standby_leader")
        else:
            primary_ok, standby_ok = True, False
    else:
        leader_ok = primary_ok = standby_ok = False

    if path in STANDBY_LEADER_PATHS:
        return 200 if standby_ok else 503
    if path in LEADER_PATHS:
        return 200 if leader_ok else 503
    if path in PRIMARY_PATHS:
        return 200 if primary_ok else 503

    if path == "replica":
        ok = replica_ok
    elif path == "read-only":
        ok = primary_ok or standby_ok or replica_ok
    elif path == "health":
        ok = state == "running"
    elif cluster is None:
        ok = False  # sync/async/quorum answers need the DCS view
    else:
        flags = sync_flags(st, cluster)
        is_sync, is_quorum = bool(flags.get("sync_standby")), bool(flags.get("quorum_standby"))
        if path in SYNC_PATHS:
            ok = is_sync and replica_ok
        elif path == "quorum":
            ok = is_quorum and replica_ok
        elif path in ASYNC_PATHS:
            ok = not is_sync and not is_quorum and replica_ok
        elif path in READ_ONLY_SYNC_PATHS:
            ok = primary_ok or standby_ok or (is_sync and replica_ok)
        elif path == "read-only-quorum":
            ok = primary_ok or standby_ok or (is_quorum and replica_ok)
        else:
            ok = False
    return 200 if ok and tags_match(query, tags) else 503


def liveness_code(status: Mapping[str, Any], paused: bool, ttl: int, next_run: float, now: float) -> int:
    """200 while the HA loop keeps its schedule: next cycle due + ttl (2 x ttl off the primary) > now."""
    running_primary = status.get("role") in ("primary", "master") and status.get("state") == "running"
    threshold = ttl if running_primary else 2 * ttl
    return 200 if paused or next_run + threshold > now else 503


def readiness_failure(view: NodeView, query: Mapping[str, list[str]], max_lag_default: int) -> str | None:
    """None when ready to take traffic, else the reason (logged at DEBUG, never sent)."""
    if view.is_leader:
        return None
    st = view.status
    if st.get("state") != "running":
        return "PostgreSQL is not running"
    if st.get("replication_state") != "streaming":
        return "PostgreSQL replication state is not streaming"
    latest_end_lsn = _int(st.get("latest_end_lsn"))
    if view.cluster is None and not latest_end_lsn:
        return None if st.get("failsafe_mode_is_active") else "DCS is not accessible"
    mode = "write" if _first(query, "mode") == "write" else "apply"
    position = _int(_xlog(st).get("received_location" if mode == "write" else "replayed_location"))
    lag = _leader_optime(view) - position
    max_lag = parse_size(_first(query, "lag"))
    if max_lag is None:
        max_lag = max_lag_default
    if lag > max_lag:
        return f"Replication {mode} lag {lag} exceeds maximum allowable {max_lag}"
    return None
