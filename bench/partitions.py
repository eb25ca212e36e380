"""Partitions and bad links between real hosts, hatui and Patroni side by side:
`./run.sh bench --partitions [--quick] [--systems hatui,patroni] [-k EXPR] [--reuse FIGURES]`.

The scenarios are the real-hosts suite's own (tests/hosts/test_partitions.py: three network
namespaces on a private bridge, a 3-member etcd across them, a daemon with its PostgreSQL on
each, the workload and the checker), not a copy: each scenario runs as its own pytest process,
as `./run.sh test-partitions` runs it, once per system (HATUI_HOSTS_SYSTEM), hatui then Patroni,
scenario after scenario, every run appending its figures to one file. The table gives, per
scenario and system: failover time, unavailable seconds, acknowledged and lost writes, 1 s samples
with two writable hosts, and whether the scenario's checks passed.

`--quick` runs only the quicker scenarios (those `./run.sh test-faults` runs too); `--reuse FILE`
takes the rows of a system not run now from an earlier run's figures (the `figures.jsonl` that
`./run.sh test-partitions` leaves in its history directory).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parents[1]
SUITE = "tests/hosts/test_partitions.py"
SYSTEMS = ("hatui", "patroni")
LABEL = {"hatui": "hatui", "patroni": "Patroni"}
RUN_TIMEOUT = 1800.0  # the ten-minute nemesis and its recovery fit


def collect(quick: bool, keyword: str | None) -> list[str]:
    marks = "slow and not partitions_only" if quick else "slow or not slow"
    args = [sys.executable, "-m", "pytest", SUITE, "--collect-only", "-q", "-p", "no:xdist", "-m", marks]
    if keyword:
        args += ["-k", keyword]
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    ids = [line.strip() for line in res.stdout.splitlines() if "::" in line]
    if not ids:
        raise SystemExit(f"error: no scenario selected ({' '.join(args[3:])}): {res.stdout.strip()[-500:]}")
    return ids


def read_rows(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def run_one(test_id: str, system: str, figures: Path, out_dir: Path) -> dict:
    """One scenario on one system; its figures row (if it got that far) and whether it passed."""
    before = len(read_rows(figures))
    env = dict(os.environ, HATUI_HOSTS_SYSTEM=system, HATUI_HOSTS_FIGURES=str(figures),
               HATUI_HOSTS_OUT=str(out_dir / system))
    env = {k: v for k, v in env.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    t0 = time.monotonic()
    try:
        res = subprocess.run([sys.executable, "-m", "pytest", test_id, "-p", "no:xdist", "-p", "no:cacheprovider",
                              "-q", "-m", "slow or not slow", "--tb=short"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=RUN_TIMEOUT)
        output, code = res.stdout + res.stderr, res.returncode
    except subprocess.TimeoutExpired as exc:
        output, code = f"{exc.stdout or ''}\n(timed out after {RUN_TIMEOUT:g} s)", -1
    rows = read_rows(figures)[before:]
    passed = code == 0 and " passed" in output
    skipped = code == 0 and not passed and " skipped" in output
    result = {"test": test_id, "system": system, "passed": passed, "skipped": skipped,
              "seconds": round(time.monotonic() - t0, 1), "row": rows[-1] if rows else None}
    if not passed:
        log_path = out_dir / system / (test_id.split("::")[-1] + ".pytest.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(output)
        result["log"] = str(log_path)
    return result


def scenario_of(result: dict) -> str:
    return result["row"]["scenario"] if result.get("row") else result["test"].split("::")[-1]


def cell(result: dict | None, key: str) -> str:
    if result is None:
        return "not run"
    if result.get("skipped"):
        return "skipped"
    row = result.get("row")
    if row is None:
        return "failed"
    value = row.get(key)
    text = "-" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))
    return text if result.get("passed", True) else f"{text} (FAILED)"


def table(results: list[dict]) -> str:
    """One line per scenario, `hatui / Patroni` in every cell."""
    order: list[str] = []
    by: dict[tuple[str, str], dict] = {}
    named = {r["test"]: r["row"]["scenario"] for r in results if r.get("row")}  # a run that failed early has none
    for r in results:
        name = named.get(r["test"], scenario_of(r))
        if name not in order:
            order.append(name)
        by[(name, r["system"])] = r
    cols = (("failover s", "failover_s"), ("unavail s", "unavailable_s"), ("acked", "acked"), ("lost", "lost"),
            ("2 writable", "split_samples"), ("leader changes", "leader_changes"))
    lines = ["| scenario (hatui / Patroni) | " + " | ".join(c for c, _ in cols) + " | checks |",
             "|---|" + "---|" * (len(cols) + 1)]
    for name in order:
        pair = [by.get((name, s)) for s in SYSTEMS]
        cells = [" / ".join(cell(r, key) for r in pair) for _, key in cols]
        checks = " / ".join("not run" if r is None else "reused" if r.get("reused") else "skipped" if r["skipped"]
                            else "passed" if r["passed"] else "FAILED" for r in pair)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {checks} |")
    lines += ["", "failover s: from the fault to the first write acknowledged by another server (-: none, as "
              "expected there); unavail s: every gap over 1 s between acknowledged writes after the fault; "
              "2 writable: 1 s samples with two hosts taking writes; lost: acknowledged writes missing on the "
              "final primary."]
    return "\n".join(lines)


def reused(path: Path, systems: list[str]) -> list[dict]:
    """Rows of an earlier run for the systems not run now (its checks are not recorded there)."""
    out = []
    for row in read_rows(path):
        system = row.get("system", "hatui")
        if system not in systems:
            out.append({"test": row["scenario"], "system": system, "passed": True, "skipped": False,
                        "reused": True, "row": row})
    return out


def run(args, out_md: Path) -> int:
    systems = [s.strip().lower() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad or not systems:
        raise SystemExit(f"error: --systems takes hatui and/or patroni, not {args.systems!r}")
    if os.geteuid() != 0:
        raise SystemExit("error: --partitions needs root (network namespaces, nftables)")
    if args.nemesis_seconds is not None:
        os.environ["HATUI_NEMESIS_SECONDS"] = str(args.nemesis_seconds)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = Path(f"/tmp/hatui-bench-partitions-{stamp}")
    out_dir.mkdir(parents=True)
    figures = out_dir / "figures.jsonl"
    results = reused(Path(args.reuse), systems) if args.reuse else []
    ids = collect(args.quick, args.k)
    log.info("%d scenario(s) x %s; histories and logs in %s", len(ids), ", ".join(systems), out_dir)
    for test_id in ids:
        for system in systems:  # alternate: hatui, Patroni, next scenario
            r = run_one(test_id, system, figures, out_dir)
            results = [x for x in results if not (x.get("reused") and scenario_of(x) == scenario_of(r)
                                                   and x["system"] == system)]
            results.append(r)
            row = r["row"] or {}
            log.info("%-8s %-60s %s (%.0f s) %s", LABEL[system], scenario_of(r),
                     "passed" if r["passed"] else "skipped" if r["skipped"] else "FAILED", r["seconds"],
                     {k: row.get(k) for k in ("failover_s", "unavailable_s", "acked", "lost", "split_samples")}
                     if row else r.get("log", ""))
    text = (f"# Real hosts: partitions and bad links, hatui / Patroni\n\n"
            f"`./run.sh bench --partitions {' '.join(sys.argv[2:])}`".rstrip() + f", {stamp}, load average at the "
            f"end {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n\n" + table(results) + "\n")
    out_md.write_text(text)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)
    log.info("wrote %s (raw: %s)", out_md, out_dir / "results.json")
    return 0 if all(r["passed"] or r["skipped"] or r.get("reused") for r in results) else 1


if __name__ == "__main__":
    # Re-render the table from a run's results.json, filling in another run's figures:
    #   python bench/partitions.py /tmp/hatui-bench-partitions-*/results.json [FIGURES.jsonl]
    done = json.loads(Path(sys.argv[1]).read_text())
    ran = sorted({r["system"] for r in done if not r.get("reused")})
    extra = reused(Path(sys.argv[2]), ran) if len(sys.argv) > 2 else []
    print(table([r for r in done if not r.get("reused")] + extra))
