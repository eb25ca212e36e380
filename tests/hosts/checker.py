"""The checker: from a run's history and the final primary's contents, what went wrong and the
figures people compare (pure functions, unit-tested in tests/unit/test_hosts_checker.py).

A history is a list of events (dicts with a wall-clock `t`):
- client operations: `op` invoke / ok / fail / info, `f` write or append, `id`, `key` (append),
  `host` (the server the connection was on);
- samples, once a second, from the controller: `op` sample, `writable` (hosts taking writes),
  `leader` (the leader key, None when absent or unreadable);
- nemesis notes: `op` nemesis, `text`; the first one is the fault's start.

The checks (Jepsen's, for this workload):
- every acknowledged write and append is on the final primary (lost = acknowledged, absent);
- nothing is there that was not attempted (phantom);
- every list holds each value at most once, in the order the single appender sent them;
- no sample saw two hosts taking writes, and acknowledgements from two servers never interleave
  (x, y, x, y in time: both were taking writes at once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Outcome:
    acked_writes: int = 0
    acked_appends: int = 0
    lost: list[int] = field(default_factory=list)
    phantom: list[int] = field(default_factory=list)
    list_errors: list[str] = field(default_factory=list)
    split_samples: list[dict] = field(default_factory=list)
    interleaved: list[str] = field(default_factory=list)
    samples: int = 0
    leader_changes: int = 0
    failover_s: float | None = None
    unavailable_s: float = 0.0
    longest_gap_s: float = 0.0
    indeterminate: int = 0

    @property
    def acked(self) -> int:
        return self.acked_writes + self.acked_appends

    def violations(self, allow_loss: bool = False) -> list[str]:
        out = []
        if self.lost and not allow_loss:
            out.append(f"{len(self.lost)} acknowledged operation(s) lost: {self.lost[:10]}")
        if self.phantom:
            out.append(f"{len(self.phantom)} value(s) present that no client attempted: {self.phantom[:10]}")
        out += self.list_errors[:10]
        if self.split_samples:
            out.append(f"{len(self.split_samples)} sample(s) with two writable hosts: {self.split_samples[:3]}")
        out += self.interleaved[:5]
        if not self.samples:
            out.append("no sample was taken")
        return out

    def figures(self) -> dict:
        return {"failover_s": None if self.failover_s is None else round(self.failover_s, 1),
                "unavailable_s": round(self.unavailable_s, 1), "acked": self.acked, "lost": len(self.lost),
                "split_samples": len(self.split_samples), "leader_changes": self.leader_changes,
                "indeterminate": self.indeterminate}


def check(events: list[dict], final_writes: set[int], final_lists: dict[int, list[int]]) -> Outcome:
    events = sorted(events, key=lambda e: e["t"])
    out = Outcome()
    invoked = {"write": set(), "append": {}}
    acked_writes: list[dict] = []
    acked_appends: list[dict] = []
    completed: set[tuple[str, int]] = set()
    for e in events:
        op, f = e.get("op"), e.get("f")
        if op == "invoke" and f == "write":
            invoked["write"].add(e["id"])
        elif op == "invoke" and f == "append":
            invoked["append"][e["id"]] = e["key"]
        elif op == "ok":
            (acked_writes if f == "write" else acked_appends).append(e)
        if op in ("ok", "fail") and f in ("write", "append"):
            completed.add((f, e["id"]))
    out.indeterminate = (sum(1 for i in invoked["write"] if ("write", i) not in completed)
                         + sum(1 for i in invoked["append"] if ("append", i) not in completed))
    out.acked_writes, out.acked_appends = len(acked_writes), len(acked_appends)

    # Lost and phantom writes.
    out.lost = sorted(e["id"] for e in acked_writes if e["id"] not in final_writes)
    out.phantom = sorted(final_writes - invoked["write"])
    # Lists: acknowledged appends present, nothing unattempted, no duplicate, sent order kept.
    for e in acked_appends:
        if e["id"] not in final_lists.get(e["key"], []):
            out.lost.append(e["id"])
    for key, elems in sorted(final_lists.items()):
        if len(set(elems)) != len(elems):
            out.list_errors.append(f"list {key} holds a value twice: {elems}")
        strangers = [v for v in elems if invoked["append"].get(v) != key]
        out.phantom += strangers
        if elems != sorted(elems):
            out.list_errors.append(f"list {key} is out of the order the appender sent: {elems}")

    # Samples: two writable hosts at once, leader changes.
    last = None
    for e in events:
        if e.get("op") != "sample":
            continue
        out.samples += 1
        writable = e.get("writable") or []
        if len(writable) > 1:
            out.split_samples.append({"t": e["t"], "writable": writable})
        if len(writable) == 1:
            if last is not None and writable[0] != last:
                out.leader_changes += 1
            last = writable[0]

    oks = [e for e in events if e.get("op") == "ok"]
    out.interleaved = interleavings(oks)
    # Failover time: from the first fault to the first acknowledgement by another server.
    faults = [e["t"] for e in events if e.get("op") == "nemesis" and not e.get("text", "").startswith("heal")]
    if faults and oks:
        t0 = faults[0]
        before = [e for e in oks if e["t"] < t0]
        if before:
            old = before[-1]["host"]
            after = [e for e in oks if e["t"] >= t0 and e["host"] != old]
            if after:
                out.failover_s = after[0]["t"] - t0
    # Unavailability: every gap over a second between two acknowledgements (any thread).
    times = [e["t"] for e in oks]
    ends = [e["t"] for e in events if e.get("op") == "nemesis"]
    start = min(ends) if ends else (times[0] if times else 0)
    for a, b in zip(times, times[1:]):
        gap = b - a
        out.longest_gap_s = max(out.longest_gap_s, gap)
        if gap > 1.0 and b > start:
            out.unavailable_s += gap
    return out


def interleavings(oks: list[dict]) -> list[str]:
    """Acknowledgements x, y, x, y in time from two servers: both took writes in one period.
    (x, y, x alone is two failovers and allowed.)"""
    runs: list[tuple[str, float, float]] = []  # (host, first ack, last ack) of consecutive acks
    for e in oks:
        if runs and runs[-1][0] == e["host"]:
            runs[-1] = (runs[-1][0], runs[-1][1], e["t"])
        else:
            runs.append((e["host"], e["t"], e["t"]))
    found = []
    for i in range(len(runs) - 3):
        a, b, c, d = runs[i:i + 4]
        if a[0] == c[0] and b[0] == d[0] and a[0] != b[0]:
            found.append(f"acknowledgements interleave between {a[0]} and {b[0]} "
                         f"({_clock(a[2])}, {_clock(b[1])}, {_clock(c[1])}, {_clock(d[1])})")
    return found


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}"


def render(events: list[dict], outcome: Outcome | None = None, title: str = "") -> str:
    """The history as a person reads it: one line per event, time first; the verdict at the end."""
    lines = [f"# {title}", "# time (UTC)   who       what", ""] if title else []
    for e in sorted(events, key=lambda e: e["t"]):
        op = e.get("op")
        if op == "sample":
            who, text = "sampler", f"writable={','.join(e.get('writable') or []) or '-'} leader={e.get('leader')}"
        elif op == "nemesis":
            who, text = "nemesis", e["text"]
        elif op == "note":  # what the test observed, for the reader (the checker ignores it)
            who, text = "test", e["text"]
        elif op in ("invoke", "ok", "fail", "info"):
            who = e.get("f", "?")
            what = f"id={e['id']}" + (f" list={e['key']}" if "key" in e else "")
            text = f"{op:<6} {what} on {e.get('host')}" + (f"  ({e['error']})" if e.get("error") else "")
        else:
            who, text = e.get("f", "?"), f"{op} {e.get('error', '')}".strip()
        lines.append(f"{_clock(e['t'])}  {who:<8}  {text}")
    if outcome is not None:
        lines += ["", "# verdict", f"# figures: {outcome.figures()}"]
        lines += [f"# violation: {v}" for v in outcome.violations()] or ["# no violation"]
        if outcome.lost:
            lines.append(f"# lost: {outcome.lost}")
    return "\n".join(lines) + "\n"
