"""Asking the other members over REST during a leader race or a switchover check."""

from __future__ import annotations

import json
import logging
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from ..cluster import Cluster
from .ha import PeerStatus

log = logging.getLogger("hatui.ha")

PROBE_TIMEOUT = 2.0


def _wal_position(status: dict) -> int | None:
    xlog = status.get("xlog")
    if not isinstance(xlog, dict):
        return None
    values = [xlog.get(k) for k in ("location", "received_location", "replayed_location")]
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return max(ints) if ints else None


def probe_one(name: str, url: str, timeout: float = PROBE_TIMEOUT) -> tuple[PeerStatus, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - member URLs from our DCS
            body = json.loads(resp.read(1 << 20) or b"{}")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable" for the race
        log.warning("Request failed to %s: GET %s (%s)", name, url, getattr(exc, "reason", exc))
        return PeerStatus(name, False), None
    if not isinstance(body, dict):
        return PeerStatus(name, False), None
    tags = body.get("tags") if isinstance(body.get("tags"), dict) else {}
    role = body.get("role")
    prio = tags.get("failover_priority", 0 if tags.get("nofailover") else 1)
    status = PeerStatus(
        name=name,
        reachable=True,
        role="primary" if role in ("primary", "master") else (role if isinstance(role, str) else None),
        wal_position=_wal_position(body),
        failover_priority=prio if isinstance(prio, int) else 1,
        nofailover=bool(tags.get("nofailover")) or (isinstance(prio, int) and prio <= 0),
    )
    log.info("Got response from %s %s: %s", name, url, json.dumps(body, separators=(",", ":"))[:400])
    return status, body


def probe_members(cluster: Cluster, me: str, timeout: float = PROBE_TIMEOUT) -> dict[str, PeerStatus]:
    """GET /patroni of every other member with an api_url, in parallel, no retries."""
    targets = [(m.name, m.api_url) for m in cluster.members if m.name != me and m.api_url]
    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        results = list(pool.map(lambda t: probe_one(t[0], t[1], timeout)[0], targets))
    return {p.name: p for p in results}
