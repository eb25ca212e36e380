"""hatui vs Patroni, side by side on this machine: `./run.sh bench [--quick]`.

Phases: tight settings (ttl 20, loop_wait 2, retry_timeout 4) with every figure, then Patroni's
defaults (ttl 30, loop_wait 10, retry_timeout 10) with the crash, rejoin and switchover figures,
then the console. Each phase starts one fresh hatui cluster and one fresh Patroni cluster (etcd +
two nodes each) and alternates the runs: hatui, Patroni, hatui, Patroni. Writes bench/RESULTS.md
(and the raw samples to bench/results.json) and prints the table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# Before anything loads grpc (see probes.py).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import costs
import report
import scenarios
from systems import PATRONI_VENV, PatroniCluster, System

from hatui.launcher import LocalCluster

log = logging.getLogger("bench")
TIGHT = {"ttl": 20, "loop_wait": 2, "retry_timeout": 4}
DEFAULTS = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}
PATRONI_REQUIREMENT = "patroni[etcd3]>=4,<5"


def ensure_patroni() -> None:
    """Patroni 4.x in its own venv, built from a Python the postgres OS user can execute (the
    checkout's .venv may point into /root, which that user cannot enter)."""
    patroni = PATRONI_VENV / "bin" / "patroni"
    if patroni.exists():
        res = subprocess.run([str(patroni), "--version"], check=False, capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.split()[-1].startswith("4."):
            return
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or "/usr/bin/python3"
    probe = subprocess.run([python, "-c", "import ensurepip, venv"], check=False, capture_output=True)
    if probe.returncode != 0:
        sys.exit(f"error: {python} cannot create a virtualenv for Patroni; install python3-venv (Debian)")
    log.info("installing %s into %s (with %s)", PATRONI_REQUIREMENT, PATRONI_VENV, python)
    shutil.rmtree(PATRONI_VENV, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(PATRONI_VENV)], check=True)
    res = subprocess.run(
        [
            str(PATRONI_VENV / "bin/pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            PATRONI_REQUIREMENT,
            "psycopg2-binary",
        ],
        check=False,
    )
    if res.returncode != 0:
        sys.exit(
            f"error: could not install {PATRONI_REQUIREMENT} into {PATRONI_VENV} (pip exit code {res.returncode})"
        )
    os.chmod(PATRONI_VENV, 0o755)


def make_systems(base: Path, dcs: dict) -> list[System]:
    return [
        System("hatui", LocalCluster(base / "hatui", 2, dcs=dict(dcs))),
        System("Patroni", PatroniCluster(base / "patroni", 2, dcs=dict(dcs))),
    ]


def run_phase(
    title: str, base: Path, dcs: dict, rounds: int, daemon_death: bool, idle_s: float, list_repeats: int
) -> dict:
    phase: dict = {"title": title, "dcs": dcs, "runs": {"hatui": {}, "Patroni": {}}, "errors": []}
    systems = make_systems(base, dcs)
    try:
        for s in systems:
            t0 = time.monotonic()
            s.start()
            log.info("%s: %s cluster healthy in %.1f s", title, s.label, time.monotonic() - t0)
        if list_repeats:
            patroni = systems[1]
            phase["list"] = costs.list_commands(patroni.cluster.etcd_endpoint, patroni.scope, list_repeats)
            log.info("list: %s", {k: [round(x, 3) for x in v] for k, v in phase["list"].items()})
        plan = [
            ("switchover", scenarios.switchover),
            ("crash", lambda s: scenarios.crash_failover_and_rejoin(s, dcs["ttl"])),
        ]
        if daemon_death:
            plan.append(("daemon", lambda s: scenarios.daemon_death(s, dcs["ttl"])))
        for r in range(rounds):
            for name, fn in plan:
                for s in systems:  # alternate: hatui, Patroni, hatui, Patroni
                    t0 = time.monotonic()
                    try:
                        result = fn(s)
                    except Exception as exc:  # noqa: BLE001 - one failed run is reported, not fatal
                        log.error("%s round %d %s %s failed: %s", title, r + 1, name, s.label, exc)
                        phase["errors"].append(f"{s.label} {name} (round {r + 1}): {exc}")
                        s.wait_healthy(180)  # a cluster that cannot heal ends the phase
                        continue
                    phase["runs"][s.label].setdefault(name, []).append(result)
                    log.info(
                        "%s round %d %-10s %-7s %s (%.0f s)",
                        title,
                        r + 1,
                        name,
                        s.label,
                        {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()},
                        time.monotonic() - t0,
                    )
        if idle_s:
            phase["idle"] = {"seconds": idle_s, **costs.idle_cost(systems, idle_s)}
            log.info("idle: %s", phase["idle"])
    finally:
        for s in systems:
            s.stop()
    return phase


def run_console(writes: int, idle_s: float) -> dict:
    res = subprocess.run(
        [sys.executable, str(HERE / "console_probe.py"), "--writes", str(writes), "--idle", str(idle_s)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if res.returncode != 0:
        raise RuntimeError(f"console probe failed: {res.stderr.strip()[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="1 round per phase, short idle windows (about 7 min)"
    )
    ap.add_argument("--rounds", type=int, help="rounds at tight settings (default 3, --quick 1)")
    ap.add_argument(
        "--default-rounds", type=int, help="rounds at Patroni's defaults (default 2, --quick 1; 0 skips)"
    )
    ap.add_argument("--no-console", action="store_true", help="skip figure 6")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="where the Markdown goes")
    ap.add_argument(
        "--keep", action="store_true", help="keep the work dir (logs, data dirs) for a post-mortem"
    )
    ap.add_argument("--from-json", metavar="FILE", help="only re-render RESULTS.md from a results.json")
    ap.add_argument("--costs", action="store_true",
                    help="only figure 5 (idle memory and CPU) at loop_wait 2 and 10, into bench/COSTS.md "
                         "(about 4 min; --quick about 2)")
    ap.add_argument("--unavailability", action="store_true",
                    help="only the write-unavailability per fault and the seeded soak (bench/unavailability.py)")
    ap.add_argument("--soak", type=int, default=4, help="faults in the --unavailability soak (default 4)")
    ap.add_argument("--seed", type=int, default=16, help="seed of the --unavailability soak (default 16)")
    ap.add_argument("--partitions", action="store_true",
                    help="only the real-hosts scenarios (tests/hosts) on both systems, into bench/PARTITIONS.md "
                         "(bench/partitions.py; about 2 h, --quick about 40 min)")
    ap.add_argument("--systems", default="hatui,patroni", help="with --partitions: hatui and/or patroni")
    ap.add_argument("-k", metavar="EXPR", help="with --partitions: only the scenarios pytest's -k EXPR selects")
    ap.add_argument("--reuse", metavar="FIGURES",
                    help="with --partitions: rows of the systems not run now from an earlier run's figures.jsonl")
    ap.add_argument("--nemesis-seconds", type=float, help="with --partitions: the random nemesis's length")
    args = ap.parse_args()
    if args.partitions:
        import partitions

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
        if "patroni" in args.systems.lower():
            ensure_patroni()
        out = Path(args.out) if args.out != str(HERE / "RESULTS.md") else HERE / "PARTITIONS.md"
        return partitions.run(args, out)
    if args.unavailability:
        import unavailability

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
        base = Path(tempfile.mkdtemp(prefix="hatui-bench-unavail-", dir="/tmp"))
        os.chmod(base, 0o755)  # the postgres OS user must reach the data dirs when we are root
        try:
            print(unavailability.table(unavailability.run(base, args.soak, args.seed)))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return 0
    if args.costs and args.out == str(HERE / "RESULTS.md"):
        args.out = str(HERE / "COSTS.md")
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        text = report.render(
            results,
            datetime.fromisoformat(results["started"]),
            datetime.fromisoformat(results["finished"]),
            results.get("options", "?"),
        )
        Path(args.out).write_text(text + "\n")
        print(text)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    default_rounds = args.default_rounds if args.default_rounds is not None else (1 if args.quick else 2)
    idle_s = 10.0 if args.quick else 30.0

    if os.geteuid() == 0:
        from hatui.osuser import server_user

        server_user()  # fails early, in one line, when the postgres OS user is missing
    ensure_patroni()
    started = datetime.now(UTC)
    results: dict = {"machine": report.machine(), "versions": report.versions(), "phases": []}
    base = Path(tempfile.mkdtemp(prefix="hatui-bench-", dir="/tmp"))
    os.chmod(base, 0o755)
    log.info("work dir %s", base)
    try:
        if args.costs:
            # Figure 5 alone: both systems idle side by side, a longer window than the full run's.
            window = 30.0 if args.quick else 90.0
            for title, dcs in (("Idle, loop_wait 2", TIGHT), ("Idle, loop_wait 10", DEFAULTS)):
                results["phases"].append(run_phase(title, base / title.split()[-1], dcs, 0, False, window, 0))
            args.no_console, default_rounds, rounds = True, 0, 0
        if rounds:
            results["phases"].append(
                run_phase("Tight settings", base / "tight", TIGHT, rounds, True, idle_s, 3 if args.quick else 7)
            )
        if default_rounds:
            results["phases"].append(
                run_phase("Patroni's defaults", base / "defaults", DEFAULTS, default_rounds, False, idle_s, 0)
            )
        if not args.no_console:
            results["console"] = run_console(100, 5.0 if args.quick else 20.0)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            log.info("kept %s", base)
    finished = datetime.now(UTC)
    results["machine"]["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    options = " ".join(sys.argv[1:]) or "full run"
    results.update(started=started.isoformat(), finished=finished.isoformat(), options=options)
    text = report.render(results, started, finished, options)
    Path(args.out).write_text(text + "\n")
    raw = "results-costs.json" if args.costs else "results.json"
    (Path(args.out).parent / raw).write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(text)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
