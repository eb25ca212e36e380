"""Health from evidence: what the console may call healthy, decided from facts that have an age.

The console never says "healthy" because nothing bad was heard. Every verdict here comes from an
observation with a timestamp (monotonic seconds): the last answer etcd gave to a probe, the leader's
lease time left (read from etcd every second), and each member's own REST API and PostgreSQL port,
probed by the console about every second. An observation that is too old counts as no evidence,
and no evidence is never healthy. Pure functions only: the app feeds them, tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass

# etcd: the probe asks every PROBE_INTERVAL with PROBE_TIMEOUT; no answer for STALL_AFTER seconds
# means stalled (a SIGSTOPped etcd accepts connections and answers nothing, so only the age shows it).
ETCD_PROBE_INTERVAL = 0.25
ETCD_PROBE_TIMEOUT = 1.0
ETCD_STALL_AFTER = 1.0

# Members: a REST answer or PostgreSQL probe older than this is no evidence (the poller re-arms
# about every second; three missed rounds is a member that does not answer).
MEMBER_EVIDENCE_MAX_AGE = 3.0
# A leader renews its lease every loop_wait; this much slack on top covers one slow HA cycle.
RENEW_SLACK = 2.0

HEALTHY_DEFINITION = (
    "Healthy means, all at once and from evidence at most a few seconds old: etcd answered the "
    f"console in the last {ETCD_STALL_AFTER:g} s; a leader holds the lock and renewed its lease "
    f"within loop_wait + {RENEW_SLACK:g} s; every member answered the console's last REST probe "
    f"(about every second, none older than {MEMBER_EVIDENCE_MAX_AGE:g} s) and its PostgreSQL port "
    "accepted a connection; every replica streams with lag under maximum_lag_on_failover; the "
    "cluster is not paused and no restart is pending. Anything unknown is shown as unknown, never "
    "as healthy."
)


@dataclass(frozen=True)
class EtcdEvidence:
    """What the etcd probe saw: when etcd last answered, and the last failure if any."""

    last_answer: float | None = None  # monotonic
    last_error: str = ""
    started: float | None = None  # when probing began (no answer yet is not yet stalled)

    def silent_for(self, now: float) -> float | None:
        since = self.last_answer if self.last_answer is not None else self.started
        return None if since is None else max(0.0, now - since)

    def verdict(self, now: float) -> str:
        """'ok' | 'stalled' | 'unknown' (not probed yet)."""
        silent = self.silent_for(now)
        if silent is None:
            return "unknown"
        if silent > ETCD_STALL_AFTER:
            return "stalled"
        return "ok" if self.last_answer is not None else "unknown"


def answered(answered_at: float | None, now: float) -> bool:
    return answered_at is not None and now - answered_at <= MEMBER_EVIDENCE_MAX_AGE


def lease_renewing(remaining: int | None, ttl: int, loop_wait: int) -> bool | None:
    """None when the lease time left is unknown; False when the leader stopped renewing.

    A leader renews every loop_wait, so its lease never has less than ttl - loop_wait left
    (plus slack for one slow cycle) while it is alive and talking to etcd.
    """
    if remaining is None:
        return None
    if remaining < 0:
        return False
    return remaining >= ttl - loop_wait - RENEW_SLACK


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
