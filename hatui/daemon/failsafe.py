"""Failsafe mode (spec 2.9): a primary cut off from etcd keeps running only if every member says so.

Without failsafe, a leader that cannot reach etcd demotes itself (it cannot know whether its
lease is still alive), so an etcd outage alone takes the whole cluster read-only. With
`failsafe_mode: true` the leader publishes `/failsafe` = {name: api_url} of every member while
etcd works; when etcd becomes unreachable it POSTs /failsafe to each member in that last-known
list, and only if *all* of them answer `200 Accepted` (a replica answers so only while it is not a
primary, and then holds back from racing) does it keep running. One member unreachable, and
it demotes as without failsafe.

The fencing guard is told about a confirmation as it is about a lease refresh: the members
accepted us as primary at that moment, which is what a lease refresh stands for.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from ..cluster import Cluster
from ..etcd.store import DCSError
from .ha import Observation, PeerStatus

if TYPE_CHECKING:
    from ..config import DynamicConfig
    from ..etcd.store import ClusterStore
    from .fence import FenceClient
    from .member import NodeView
    from .node import NodeRuntime
    from .slots import SlotKeeper


class FailsafeHost(Protocol):
    """What failsafe mode uses of the daemon (`loop.Daemon` implements it)."""

    name: str
    rt: NodeRuntime  # our addresses and the REST API credentials for the POSTs
    view: NodeView  # view.failsafe_active is set here
    cluster: Cluster | None
    dynamic: DynamicConfig
    store: ClusterStore
    dcs_ok: bool
    lease: int | None
    lease_ttl: int
    fence: FenceClient  # told about a confirmation as about a lease refresh
    slots: SlotKeeper  # the slot positions the leader's failsafe POST carries
    failsafe_leader_seen: tuple[str, float] | None  # (leader, monotonic) a replica last accepted
    failsafe_published: dict[str, str] | None  # what we last wrote to /failsafe


log = logging.getLogger("hatui.ha")

POST_TIMEOUT = 2.0


def published_members(daemon: FailsafeHost, cluster: Cluster) -> dict[str, str]:
    """What the leader keeps in `/failsafe`: every member with a REST URL, and itself."""
    members = {m.name: m.api_url for m in cluster.members if m.api_url}
    members[daemon.name] = daemon.rt.api_url
    return members


def publish(daemon: FailsafeHost, cluster: Cluster | None) -> None:
    """Leader bookkeeping: keep `/failsafe` current while failsafe_mode is on, remove it when off."""
    if cluster is None or not daemon.dcs_ok or cluster.leader_name != daemon.name or daemon.view.role != "primary":
        return
    try:
        if daemon.dynamic.failsafe_mode:
            wanted = published_members(daemon, cluster)
            if dict(cluster.failsafe or {}) != wanted:
                daemon.store.write_failsafe(wanted)
            daemon.failsafe_published = wanted
        elif cluster.failsafe is not None:
            daemon.store.delete_failsafe()
    except DCSError as exc:
        log.warning("could not update the failsafe key: %s", exc)


def confirm(daemon: FailsafeHost, obs: Observation) -> Observation:
    """etcd is unreachable and we run a primary: ask the members. Returns obs, with
    failsafe_confirmed set when every member of the last-known `/failsafe` accepted us."""
    if obs.cluster is not None:
        daemon.view.failsafe_active = False
        return _hold_back(daemon, obs)
    if not (obs.pg.running and obs.pg.role == "primary" and daemon.dynamic.failsafe_mode):
        daemon.view.failsafe_active = False
        return obs
    last = daemon.cluster  # the last cluster view read successfully
    members = members_to_confirm(last.failsafe if last is not None else None, daemon.failsafe_published)
    if daemon.name not in members:
        # Only a leader that published the list may rely on it (a node not listed never leads).
        log.info("failsafe mode is on but I am not in the last known /failsafe key; cannot stay primary")
        daemon.view.failsafe_active = False
        return obs
    started = time.monotonic()
    others = {name: url for name, url in members.items() if name != daemon.name}
    accepted = _post_all(daemon, others)
    confirmed = all(accepted.values())
    if not confirmed:
        refused = sorted(name for name, ok in accepted.items() if not ok)
        log.warning("failsafe: no confirmation from %s; cannot stay primary without etcd", ", ".join(refused))
    elif not daemon.view.failsafe_active:
        log.warning("failsafe: every member (%s) accepted me as primary while etcd is unreachable",
                    ", ".join(sorted(others)) or "none besides me")
    daemon.view.failsafe_active = confirmed
    if confirmed:
        daemon.fence.beat(started, daemon.lease_ttl, daemon.lease)
    return dataclasses.replace(obs, failsafe_confirmed=confirmed)


def members_to_confirm(last_read: dict | None, last_written: dict | None) -> dict[str, str]:
    """Everyone who may be listed in `/failsafe` now: what we last read there, and what we last
    wrote (etcd may have taken a write we never read back). Any of them may race once etcd
    returns, so each must have accepted us; trusting the last read alone once let a member that
    had just joined promote beside a primary that thought nobody else was listed."""
    return {**(last_read or {}), **(last_written or {})}


def _hold_back(daemon: FailsafeHost, obs: Observation) -> Observation:
    """Replica side: a primary that confirmed itself to us over POST /failsafe less than ttl ago
    is alive, whatever etcd says. When etcd comes back after a long outage every lease (the
    leader key and the member keys) may be gone, so a race would not even see that primary to
    probe it; answer for it instead: it is a live primary, and a live primary blocks the race."""
    seen = daemon.failsafe_leader_seen
    cluster = obs.cluster
    if seen is None or cluster is None or cluster.leader is not None or not daemon.dynamic.failsafe_mode:
        return obs
    name, at = seen
    age = time.monotonic() - at
    if name == daemon.name or age > daemon.dynamic.ttl or obs.pg.role == "primary":
        return obs
    log.info("failsafe: %s confirmed itself as primary %.0fs ago (POST /failsafe); not racing for the lock", name, age)
    return dataclasses.replace(obs, peers={name: PeerStatus(name, True, role="primary")})


def _post_all(daemon: FailsafeHost, members: dict[str, str]) -> dict[str, bool]:
    if not members:
        return {}
    # The slot positions, as Patroni sends them (the ones the leader also publishes in /status).
    body = json.dumps({"name": daemon.name, "conn_url": daemon.rt.conn_url, "api_url": daemon.rt.api_url,
                       "slots": daemon.slots.status_fields()[0]}).encode()
    headers = {"Content-Type": "application/json"}
    auth = daemon.rt.node.restapi.authentication
    if auth is not None and auth.username:
        token = base64.b64encode(f"{auth.username}:{auth.password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"

    def post(item: tuple[str, str]) -> tuple[str, bool]:
        name, api_url = item
        url = api_url.rsplit("/", 1)[0] + "/failsafe" if api_url.endswith("/patroni") else api_url + "/failsafe"
        for _attempt in range(2):  # one retry, as Patroni
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=POST_TIMEOUT) as resp:  # noqa: S310 - member URL
                    return name, resp.status == 200
            except urllib.error.HTTPError as exc:
                log.info("failsafe: %s answered %d to POST /failsafe", name, exc.code)
                return name, False
            except OSError as exc:
                log.info("failsafe: POST %s failed: %s", url, getattr(exc, "reason", exc))
        return name, False

    with ThreadPoolExecutor(max_workers=min(8, len(members))) as pool:
        return dict(pool.map(post, members.items()))
