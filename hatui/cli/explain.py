"""`hatui explain`, `hatui events` and `hatui switchover --dry-run`: the cluster's "why" in words.

Everything here reads: the cluster keys (with each member's published decision and the event
timeline, see daemon/decisions.py and events.py), each member's GET /patroni, and the leader's
lease time left. Nothing is written. The reasons come from eligibility.py, the one source of the
words the daemons, the switchover command and the console use.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click

from .common import Ctl, CtlError, probe_members
from ..cluster import Cluster, Member
from ..eligibility import automatic_eligibility, failover_eligibility, format_bytes
from ..events import Event, event_line, leader_changes, since_text

LAST_EVENTS = 8


def _lease_left(ctl: Ctl, cluster: Cluster) -> int | None:
    """Seconds left on the leader key's lease, from etcd (None: no leader or unknown)."""
    if cluster.leader is None or not cluster.leader.lease:
        return None
    try:
        result = ctl.etcd.request("/lease/timetolive", {"ID": str(cluster.leader.lease)}, "lease read")
    except Exception:  # noqa: BLE001 - a number for people; its absence is said as "unknown"
        return None
    ttl = int(result.get("TTL") or -1)
    return ttl if ttl >= 0 else None


def _lag(cluster: Cluster, m: Member, status: dict) -> int | None:
    xlog = status.get("xlog") if isinstance(status.get("xlog"), dict) else {}
    pos = max([v for k, v in xlog.items() if k.endswith("location") and isinstance(v, int)], default=None)
    return cluster.lag_behind(pos if pos is not None else m.wal_position)


def _leader_since(cluster: Cluster) -> tuple[str | None, Event | None]:
    leader = cluster.leader_name
    for ev in reversed(leader_changes(cluster.events)):
        if ev.member == leader:
            return ev.time, ev
    m = cluster.leader_member
    dec = m.data.get("decision") if m is not None else None
    return (dec.get("since") if isinstance(dec, dict) else None), None


def switchover_preflight(cluster: Cluster, name: str, status: dict | None) -> dict[str, Any]:
    """What `hatui switchover --candidate NAME` would do now: refused and why, or what to expect."""
    leader = cluster.leader_name
    if leader is None:
        return {"allowed": False, "why": "the cluster has no leader: a switchover needs one (use failover)"}
    ok, why = failover_eligibility(cluster, name, status, action="switchover")
    if not ok:
        return {"allowed": False, "why": why}
    m = cluster.member(name)
    lag = _lag(cluster, m, status or {}) if m is not None else None
    tl = cluster.timeline
    expected = (f"{leader} stops with a shutdown checkpoint, waits until {name} has received it, then releases "
                f"the lock; {name} promotes" + (f" to timeline {tl + 1}" if tl else "")
                + (f" (it is {format_bytes(lag)} behind now)" if lag is not None else "")
                + f"; {leader} then follows {name}. Writes pause while {leader} shuts down.")
    return {"allowed": True, "why": "eligible", "expected": expected, "lag": lag}


def explain_data(ctl: Ctl, scope: str, cluster: Cluster, only: str | None = None) -> dict[str, Any]:
    statuses = probe_members(ctl, cluster.members)
    leader = cluster.leader_name
    since, cause = _leader_since(cluster) if leader else (None, None)
    out: dict[str, Any] = {
        "scope": scope,
        "read_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "paused": cluster.is_paused,
        "timeline": cluster.timeline,
        "leader": None,
        "members": [],
        "events": [e.to_json() for e in cluster.events[-LAST_EVENTS:]],
    }
    if leader:
        lm = cluster.leader_member
        out["leader"] = {
            "name": leader,
            "since": since,
            "lease_time_left": _lease_left(ctl, cluster),
            "lease_ttl": cluster.config.ttl if cluster.config else None,
            "how": cause.message if cause else None,
            "how_kind": cause.kind if cause else None,
            "decision": (lm.data.get("decision") if lm is not None else None),
        }
    for m in cluster.members:
        if m.name == leader or (only and m.name != only):
            continue
        status = statuses.get(m.name) if m.api_url else {}
        status = status if status is not None else {}
        ok, why = automatic_eligibility(cluster, m.name, status)
        dec = status.get("decision") if isinstance(status.get("decision"), dict) else m.data.get("decision")
        out["members"].append({
            "name": m.name,
            "role": status.get("role") or m.role,
            "state": status.get("state") or m.state,
            "reachable": bool(status),
            "lag": _lag(cluster, m, status),
            "promotable": ok,
            "why": why,
            "switchover": switchover_preflight(cluster, m.name, status),
            "decision": dec if isinstance(dec, dict) else None,
        })
    if only and only != leader and not out["members"]:
        raise CtlError(f"{only} is not a member of cluster {scope}")
    return out


def render_explain(data: dict[str, Any]) -> str:
    lines = [f"Cluster {data['scope']}" + (f", timeline {data['timeline']}" if data.get("timeline") else "")
             + (" (PAUSED: no automatic failover)" if data.get("paused") else "")]
    ld = data.get("leader")
    if ld is None:
        lines.append("No leader: nobody holds the leader lock now.")
    else:
        left = ld.get("lease_time_left")
        lines.append(f"Leader: {ld['name']}, since {since_text(ld.get('since')) or 'unknown'}; "
                     f"its lease has {left if left is not None else '?'}s of {ld.get('lease_ttl') or '?'}s left.")
        if ld.get("how"):
            lines.append(f"  How it got there ({ld.get('how_kind')}): {ld['how']}")
        dec = ld.get("decision") or {}
        if dec.get("message"):
            lines.append(f"  Its last decision: {dec['message']}")
    for m in data["members"]:
        lag = format_bytes(m["lag"]) if isinstance(m.get("lag"), int) else "unknown"
        lines.append("")
        lines.append(f"{m['name']} ({m['role']}, {m['state']}, lag {lag}"
                     + ("" if m["reachable"] else ", REST API not answering") + ")")
        if m["promotable"]:
            lines.append("  If the leader failed now: it could be promoted.")
        else:
            lines.append(f"  If the leader failed now: it would NOT be promoted: {m['why']}.")
        so = m["switchover"]
        if so["allowed"]:
            lines.append(f"  Switchover to it: would go ahead. {so['expected']}")
        else:
            lines.append(f"  Switchover to it: refused: {so['why']}.")
        dec = m.get("decision") or {}
        if dec.get("message"):
            lines.append(f"  Its last decision: {dec['message']}" + (f" (since {since_text(dec.get('since'))})"
                                                                    if dec.get("since") else ""))
    events = data.get("events") or []
    lines.append("")
    lines.append("Last events:" if events else "No events recorded yet.")
    for ev in events:
        lines.append("  " + event_line(Event(ev["id"], ev["kind"], ev["time"], ev["member"], ev["message"],
                                             ev["facts"], ev["revision"])))
    return "\n".join(lines)


def do_explain(ctl: Ctl, cluster_name: str | None, member: str | None, fmt: str) -> None:
    scope, cluster = ctl.resolve(cluster_name)
    if member is None and cluster_name and not cluster.members:
        # `hatui explain NAME`: NAME is no cluster, but may be a member of the default one.
        try:
            scope2, cluster2 = ctl.resolve(None)
        except CtlError:
            scope2, cluster2 = scope, cluster
        if cluster2.member(cluster_name) is not None:
            scope, cluster, member = scope2, cluster2, cluster_name
        else:
            raise CtlError(f"{cluster_name} is neither a cluster nor a member of cluster {scope2}")
    if member and cluster.member(member) is None:
        raise CtlError(f"{member} is not a member of cluster {scope}")
    data = explain_data(ctl, scope, cluster, member)
    click.echo(json.dumps(data, indent=2, default=str) if fmt == "json" else render_explain(data))


def do_dry_run(ctl: Ctl, cluster_name: str | None, candidate: str | None, leader: str | None) -> None:
    """`switchover --dry-run`: the pre-flight for one candidate; writes nothing. Exit 1 when refused."""
    scope, cluster = ctl.resolve(cluster_name)
    if leader and leader != cluster.leader_name:
        raise CtlError(f"Member {leader} is not the leader of cluster {scope}")
    if not candidate:
        raise CtlError("--dry-run needs --candidate")
    if cluster.member(candidate) is None:
        raise CtlError(f"{candidate} is not a member of cluster {scope}")
    m = cluster.member(candidate)
    status = probe_members(ctl, [m]).get(candidate, {}) if m is not None and m.api_url else {}
    so = switchover_preflight(cluster, candidate, status)
    click.echo(f"Dry run: switchover of cluster {scope} from {cluster.leader_name or '(no leader)'} to {candidate}; "
               "nothing is written.")
    if so["allowed"]:
        click.echo(f"Would go ahead: {so['expected']}")
        return
    raise CtlError(f"Would be refused: {candidate} is not eligible: {so['why']}")


def _events_json(ev: Event, scope: str) -> str:
    return json.dumps({"scope": scope, **ev.to_json()}, default=str)


def do_events(ctl: Ctl, cluster_name: str | None, fmt: str, follow: bool, kinds: tuple[str, ...],
              limit: int | None) -> None:
    scope, cluster = ctl.resolve(cluster_name)
    events = [e for e in cluster.events if not kinds or e.kind in kinds]
    if limit:
        events = events[-limit:]
    if fmt == "json" and not follow:
        click.echo(json.dumps([e.to_json() for e in events], indent=2, default=str))
    else:
        for ev in events:
            click.echo(_events_json(ev, scope) if fmt == "json" else event_line(ev))
    if not follow:
        return
    # Follow: poll the events prefix (cheap: the CLI reads through etcd's JSON gateway, one range
    # read a second); a console or daemon watches instead.
    seen = max((e.revision for e in cluster.events), default=0)
    try:
        while True:
            time.sleep(1.0)
            cluster = ctl.read(scope)
            for ev in cluster.events:
                if ev.revision > seen and (not kinds or ev.kind in kinds):
                    click.echo(_events_json(ev, scope) if fmt == "json" else event_line(ev))
            seen = max([seen] + [e.revision for e in cluster.events])
    except KeyboardInterrupt:
        return


def record_refusal(ctl: Ctl, scope: str, action: str, candidate: str, why: str) -> None:
    """Put a refused switchover/failover in the event timeline: who asked, for whom, and why not."""
    import getpass
    import socket

    from ..events import DEFAULT_CAP, make_event

    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # noqa: BLE001 - a name for people only
        who = "unknown"
    ev = make_event("switchover_refused", None, f"{action} to {candidate} refused (hatui {action}, by {who}): "
                    f"{candidate} is not eligible: {why}", action=action, candidate=candidate, why=why, by=who)
    try:
        ctl.store(scope).append_event(ev, DEFAULT_CAP)
    except Exception as exc:  # noqa: BLE001 - the refusal itself is what the operator must see
        click.echo(f"(the refusal could not be recorded in the event timeline: {exc})", err=True)

