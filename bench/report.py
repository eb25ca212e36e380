"""Turns the raw samples into the Markdown of bench/RESULTS.md: machine, versions, date, and one
table row per figure with the median and spread (min-max) of each system and the ratio."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from datetime import datetime
from pathlib import Path

from systems import PATRONI_VENV, PG_BIN

REPO = Path(__file__).resolve().parents[1]


def _out(args: list[str]) -> str:
    try:
        return subprocess.run(args, check=False, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine() -> dict[str, str]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        debian = "?"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} CPUs, {mem_kb / 1024 / 1024:.0f} GiB RAM",
        "os": f"Debian {debian}, Linux {platform.release()}",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def versions() -> dict[str, str]:
    commit = _out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _out(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    etcd = _out(["etcd", "--version"]).splitlines()
    return {
        "hatui": f"{_out([str(REPO / '.venv/bin/hatui'), '--version']) or '?'} (commit {commit}"
        f"{' + uncommitted changes' if dirty else ''}), Python {platform.python_version()}",
        "Patroni": f"{_out([str(PATRONI_VENV / 'bin/patroni'), '--version'])}, "
        f"{_out([str(PATRONI_VENV / 'bin/python'), '--version'])}",
        "PostgreSQL": _out([f"{PG_BIN}/postgres", "--version"]),
        "etcd": etcd[0] if etcd else "?",
    }


# ---- numbers ---------------------------------------------------------------------------------------
def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def p95(xs: list[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[round(0.95 * (len(s) - 1))]


def fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "–"
    if unit == "ms":
        return f"{x * 1000:.0f} ms" if x >= 0.0995 else f"{x * 1000:.1f} ms"
    if unit == "s":
        return f"{x:.2f} s" if abs(x) < 10 else f"{x:.1f} s"
    if unit == "MB":
        return f"{x:.1f} MB"
    if unit == "cpu":
        return f"{x:.3f} s/min" if x < 1 else f"{x:.2f} s/min"
    if unit == "n":
        return f"{x:g}"
    return f"{x:g} {unit}"


def cell(xs: list[float], unit: str) -> str:
    if not xs:
        return "–"
    m = fmt(med(xs), unit)
    if len(xs) == 1:
        return f"{m} (n=1)"
    return f"{m} ({fmt(min(xs), unit)}–{fmt(max(xs), unit)}, n={len(xs)})"


def ratio(a: list[float], b: list[float]) -> str:
    ma, mb = med(a), med(b)
    if ma is None or mb is None or mb == 0:
        return "–"
    return f"{ma / mb:.2f}"


def _commits(runs: list[dict]) -> str:
    counts = [r["old_commits_after_kill"] for r in runs if "old_commits_after_kill" in r]
    return f"{statistics.median(counts):g} ({min(counts)}–{max(counts)})" if counts else "–"


def count_cell(flags: list[bool]) -> str:
    return f"{sum(flags)} of {len(flags)}" if flags else "–"


# ---- the table ---------------------------------------------------------------------------------------
def row(
    name: str, h: list[float], p: list[float], unit: str, target: str = "", with_ratio: bool = True
) -> str:
    return f"| {name} | {cell(h, unit)} | {cell(p, unit)} | {ratio(h, p) if with_ratio else '–'} | {target} |"


def collect(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if r.get(key) is not None and not isinstance(r[key], bool)]


def render(results: dict, started: datetime, finished: datetime, options: str) -> str:
    m, v = results["machine"], results["versions"]
    lines = [
        "# hatui vs Patroni: measured side by side",
        "",
        (
            f"Written by `bench/run.py` ({options}) on {finished:%Y-%m-%d %H:%M} UTC, "
            f"run took {(finished - started).total_seconds() / 60:.1f} min."
        ),
        "",
        (
            f"- Machine: {m['cpu']}; {m['os']}; load average (1, 5, 15 min) at the start {m['load']}, "
            f"at the end {m.get('load_end', '?')}"
        ),
    ]
    lines += [f"- {k}: {val}" for k, val in v.items()]
    # The 1-minute averages at the start and the end: the 15-minute one remembers earlier jobs.
    busiest = max(float(m["load"].split()[0]), float(m.get("load_end", "0").split()[0]))
    if busiest > (os.cpu_count() or 1):
        lines.append(
            f"- **The machine was busy** (load average up to {busiest:.1f} on {os.cpu_count()} CPUs: other jobs "
            "shared it). Process starts, `pg_ctl` and the console's paints wait for a CPU; both systems "
            "suffer alike, so read the ratios more than the absolute times."
        )
    lines += [
        "- Both systems: one etcd each (same binary and flags), two nodes, same PostgreSQL binaries and node",
        "  YAML, on 127.0.0.1; runs alternate hatui, Patroni, hatui, Patroni. Cells: median (min–max, n).",
        "  Ratio = hatui median / Patroni median (below 1: hatui is faster or smaller).",
        "",
    ]
    for phase in results["phases"]:
        h, p = phase["runs"]["hatui"], phase["runs"]["Patroni"]
        dcs = phase["dcs"]
        first_row = len(lines) + 4
        lines += [
            f"## {phase['title']}: ttl {dcs['ttl']}, loop_wait {dcs['loop_wait']}, retry_timeout {dcs['retry_timeout']}",
            "",
            "| figure | hatui | Patroni | ratio | target (hatui) |",
            "| --- | --- | --- | --- | --- |",
        ]
        crash_h, crash_p = h.get("crash", []), p.get("crash", [])
        lines.append(
            row(
                "1. leader host crash (daemon + PostgreSQL kill -9) → a write commits on the new primary",
                collect(crash_h, "failover"),
                collect(crash_p, "failover"),
                "s",
            )
        )
        lines.append(
            row(
                "1. … of which kill → leader key gone (lease expiry)",
                collect(crash_h, "lock_free_after_kill"),
                collect(crash_p, "lock_free_after_kill"),
                "s",
            )
        )
        lines.append(
            row(
                "1. reaction: leader key gone → new primary writable",
                collect(crash_h, "reaction"),
                collect(crash_p, "reaction"),
                "ms",
                "≤ 200 ms",
            )
        )
        if h.get("daemon") or p.get("daemon"):
            dh, dp = h.get("daemon", []), p.get("daemon", [])
            lines.append(
                row(
                    "2. leader's daemon alone killed → a write commits on the replica",
                    collect(dh, "daemon_failover"),
                    collect(dp, "daemon_failover"),
                    "s",
                    "seconds",
                )
            )
            lines.append(
                row(
                    "2. … of which kill → leader key gone",
                    collect(dh, "daemon_lock_free_after_kill"),
                    collect(dp, "daemon_lock_free_after_kill"),
                    "s",
                )
            )
            lines.append(
                f"| 2. old primary still commits a write after its leader key is gone | "
                f"{count_cell([r['old_writable_after_expiry'] for r in dh])} runs | "
                f"{count_cell([r['old_writable_after_expiry'] for r in dp])} runs | – | 0 runs |"
            )
            lines.append(
                f"| 2. old primary still commits a write after the replica was promoted | "
                f"{count_cell([r['old_writable_after_promotion'] for r in dh])} runs | "
                f"{count_cell([r['old_writable_after_promotion'] for r in dp])} runs | – | 0 runs |"
            )
            lines.append(
                f"| 2. old primary: commits after the kill (knocking every 50 ms) | "
                f"{_commits(dh)} | {_commits(dp)} | – | |"
            )
            lines.append(
                row(
                    "2. old primary's last commit, relative to its key going (negative = before)",
                    collect(dh, "old_last_write_vs_expiry"),
                    collect(dp, "old_last_write_vs_expiry"),
                    "s",
                    "< 0",
                    with_ratio=False,
                ).replace(
                    "| – |",
                    "| none after the kill |",
                    1 if not collect(dh, "old_last_write_vs_expiry") else 0,
                )
            )
        sh, sp = h.get("switchover", []), p.get("switchover", [])
        lines.append(
            row(
                "3. switchover: longest time without a commit (client commits every 10 ms)",
                collect(sh, "switchover_gap"),
                collect(sp, "switchover_gap"),
                "s",
                "≤ 1.2 s",
            )
        )
        unconfirmed = sum(1 for r in sh if r.get("rest_status") == 503)
        if unconfirmed:
            lines.append(
                f"| 3. switchover: REST answered 503 (not confirmed in time) | {unconfirmed} of {len(sh)} runs "
                f"| {sum(1 for r in sp if r.get('rest_status') == 503)} of {len(sp)} runs | – | 0 |"
            )
        lines.append(
            f"| 3. switchover: committed rows lost | "
            f"{sum(r['rows_lost'] for r in sh)} of {sum(r['rows_committed'] for r in sh)} | "
            f"{sum(r['rows_lost'] for r in sp)} of {sum(r['rows_committed'] for r in sp)} | – | 0 |"
        )
        lines.append(
            row(
                "4. rejoin: restart of the crashed, diverged former primary → streaming again",
                collect(crash_h, "rejoin"),
                collect(crash_p, "rejoin"),
                "s",
                "≤ 6.75 s (½ of 13.5 s)",
            )
        )
        lines.append(
            f"| 4. … rejoin went through pg_rewind | {count_cell([r['rewound'] for r in crash_h])} runs | "
            f"{count_cell([r['rewound'] for r in crash_p])} runs | – | |"
        )
        idle = phase.get("idle")
        if idle:
            ih, ip = idle["hatui"], idle["Patroni"]
            lines.append(
                row(
                    "5. idle daemon: resident memory, daemon + helpers",
                    collect(ih, "rss_total_mb"),
                    collect(ip, "rss_total_mb"),
                    "MB",
                    "≤ 0.8 × Patroni",
                )
            )
            lines.append(
                row(
                    "5. … the same as PSS (shared pages split between processes)",
                    collect(ih, "pss_total_mb"),
                    collect(ip, "pss_total_mb"),
                    "MB",
                )
            )
            lines.append(
                row(
                    "5. … the daemon process alone",
                    collect(ih, "rss_daemon_mb"),
                    collect(ip, "rss_daemon_mb"),
                    "MB",
                )
            )
            helpers = collect(ih, "helpers")
            lines.append(
                row(
                    f"5. … its helper processes ({max(helpers, default=0):g} per node)",
                    collect(ih, "rss_helpers_mb"),
                    collect(ip, "rss_helpers_mb"),
                    "MB",
                    with_ratio=False,
                )
            )
            lines.append(
                row(
                    f"5. idle daemon: CPU seconds per minute (measured over {idle['seconds']:g} s, scaled)",
                    collect(ih, "cpu_s_per_min"),
                    collect(ip, "cpu_s_per_min"),
                    "cpu",
                    "≤ 1.0 × Patroni",
                )
            )
            lines.append(
                row(
                    "5. … of which its helper processes",
                    collect(ih, "cpu_helpers_s_per_min"),
                    collect(ip, "cpu_helpers_s_per_min"),
                    "cpu",
                    with_ratio=False,
                )
            )
        lt = phase.get("list")
        if lt:
            lines.append(
                row(
                    "5. `hatui list` vs `patronictl list`, whole process (same cluster)",
                    lt["hatui"],
                    lt["Patroni"],
                    "s",
                    "≤ 0.22 s",
                )
            )
            if lt.get("hatui cpu"):
                lines.append(
                    row(
                        "5. … CPU time of that process (user + system)",
                        lt["hatui cpu"],
                        lt["Patroni cpu"],
                        "s",
                    )
                )
        if not h and not p:
            # An idle-only phase (run.py --costs): no scenario ran, so no row of empty cells for them.
            lines[first_row:] = [x for x in lines[first_row:] if x.startswith("| 5.")]
        if phase.get("errors"):
            lines.append("")
            lines += [f"- failed run: {e}" for e in phase["errors"]]
        lines.append("")
    con = results.get("console")
    if con:
        lines += [
            (
                f"## Console (hatui only; Patroni has none): {con['clusters']} clusters × 3 members "
                f"({con['members']} members) under one namespace"
            ),
            "",
            "| figure | hatui | Patroni | ratio | target (hatui) |",
            "| --- | --- | --- | --- | --- |",
            f"| 6. etcd put → screen painted, median | {fmt(med(con['painted']), 'ms')} | – | – | |",
            (
                f"| 6. etcd put → screen painted, p95 ({len(con['painted'])} writes) | {fmt(p95(con['painted']), 'ms')} "
                f"| – | – | < 100 ms |"
            ),
            (
                f"| 6. … etcd put → the console's watch thread has the new view, median / p95 | "
                f"{fmt(med(con.get('received', [])), 'ms')} / {fmt(p95(con.get('received', [])), 'ms')} | – | – | |"
            ),
            (
                f"| 6. … etcd put → widgets updated, median / p95 | {fmt(med(con['rendered']), 'ms')} / "
                f"{fmt(p95(con['rendered']), 'ms')} | – | – | |"
            ),
            f"| 6. idle console: CPU seconds per minute | {fmt(con['idle_cpu_s_per_min'], 'cpu')} | – | – | |",
            f"| 6. console resident memory | {fmt(con['rss_mb'], 'MB')} | – | – | |",
            "",
        ]
    return "\n".join(lines)


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
