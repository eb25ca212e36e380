"""`hatui demo`: the talk's two-node cluster, live, from one command.

`hatui demo` starts a private single-member etcd and `hatui daemon` nodes (scope `batman`,
members `postgresql0`, `postgresql1`...) on loopback, in a working dir it owns, then opens the
console with the demo panel (hatui/screens/demo_panel.py). `--no-console` runs the same cluster
headless. The node configs are demo/postgres0.yml and demo/postgres1.yml with ports, data_dir and
the etcd address rewritten.

Everything it starts, it stops, by PID: on quit, Ctrl-C, SIGTERM, SIGHUP or a crash of the console.
If the demo process itself is killed with SIGKILL, the next `hatui demo` in the same dir finds
the PIDs in demo.json and stops what is left before starting again.

While a demo runs, `hatui demo ACTION [MEMBER]` asks it, over a unix socket in its working dir,
to do what the panel's keys do (kill-daemon, kill-postgres, freeze, resume, start, write, status,
stop). Both go through `DemoRuntime`, so scripts and tests exercise the panel's code path.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .common import ACTIONS, FAST_DCS, NAMESPACE, SCOPE, DemoError, default_dir, send_action, dir_arg
from .procs import pid_alive, same_process, start_time
from .runtime import DemoRuntime, NodeState

__all__ = ["ACTIONS", "FAST_DCS", "NAMESPACE", "SCOPE", "DemoError", "DemoRuntime", "NodeState", "default_dir", "main",
           "pid_alive", "same_process", "send_action", "start_time"]


def say(*args: Any, **kwargs: Any) -> None:
    """print() that never raises: a closed stdout (`| head`, a gone terminal) must not stop the
    clean-up from running, and the demo goes on silently instead."""
    kwargs.setdefault("flush", True)
    try:
        print(*args, **kwargs)
    except (OSError, ValueError):
        pass


def endpoints_text(rt: DemoRuntime) -> str:
    c = rt.cluster
    user, password = rt.superuser
    out = [f"working dir  {rt.workdir}",
           f"etcd         {c.etcd_endpoint}  (peer port {c.etcd_peer_port})  pid {c.etcd.pid}"]
    for s in rt.states():
        out.append(f"{s.name}  REST http://127.0.0.1:{s.api_port}  PostgreSQL 127.0.0.1:{s.pg_port}  "
                   f"daemon pid {s.daemon_pid}  config {s.config}")
    cfg = c.nodes[0].config_path
    out += [
        "",
        "try:",
        f"  hatui -c {cfg} list",
        f"  hatui -c {cfg}                      (the console)",
        f"  psql 'host=127.0.0.1 port={c.nodes[0].pg_port} user={user} password={password} dbname=postgres'",
        f"  hatui demo{dir_arg(rt.workdir)} kill-daemon leader     (also: kill-postgres, freeze, resume, "
        "start, write MEMBER; status; stop)",
    ]
    return "\n".join(out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="hatui demo",
        description="Start a private etcd and a PostgreSQL HA cluster (scope batman) on loopback and open the "
                    "console on it with a demo panel. Everything started is stopped on exit.",
        epilog="With ACTION, talk to the demo already running in the working dir: "
               + ", ".join(ACTIONS) + " (MEMBER defaults to the leader).")
    p.add_argument("action", nargs="?", choices=ACTIONS, metavar="ACTION", help="act on a running demo")
    p.add_argument("member", nargs="?", metavar="MEMBER", help="member name for ACTION (default: the leader)")
    p.add_argument("--dir", type=Path, help="working dir (default: $XDG_STATE_HOME/hatui/demo or "
                                            "~/.local/state/hatui/demo; as root, /var/tmp/hatui-demo-0 when "
                                            "the postgres user cannot reach that)")
    p.add_argument("--nodes", type=int, default=2, metavar="N", help="number of PostgreSQL nodes (default 2)")
    p.add_argument("--port-base", type=int, metavar="PORT",
                   help="use ports from PORT upwards (0: any free ports; default: the talk's ports "
                        "2379, 8008.., 5432.. where free)")
    p.add_argument("--no-console", action="store_true", help="run headless until SIGINT/SIGTERM")
    p.add_argument("--keep", action="store_true", help="keep the data dirs and logs when stopping")
    p.add_argument("--no-fencing", action="store_true",
                   help="run the daemons without their fencing guard, as Patroni in the talk: a killed "
                        "leader daemon leaves a writable primary behind (split brain)")
    p.add_argument("--fast", action="store_true",
                   help="ttl 20, loop_wait 1, retry_timeout 3 instead of the talk's 30/10/10 (tests)")
    a = p.parse_args(argv)
    if a.nodes < 1 or a.nodes > 9:
        p.error("--nodes must be between 1 and 9")
    if a.port_base is not None and not (0 <= a.port_base < 65000):
        p.error("--port-base must be between 0 and 64999")
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.dir is not None:
        workdir, note = args.dir.absolute(), None
    else:
        workdir, note = default_dir()
    if args.action:
        try:
            ok, msg = send_action(workdir, args.action, args.member)
        except DemoError as exc:
            say(f"hatui demo: {exc}", file=sys.stderr)
            return 1
        say(msg)
        return 0 if ok else 1
    dcs = dict(FAST_DCS) if args.fast else {}
    headless = args.no_console

    def event(text: str) -> None:
        if headless:
            say(time.strftime("%H:%M:%S ") + text)

    rt = DemoRuntime(workdir, args.nodes, args.port_base, dcs, args.keep, on_event=event,
                     fencing=not args.no_fencing)
    if note:
        say(f"hatui demo: note: {note}")
    try:
        rt.acquire()
    except DemoError as exc:
        say(f"hatui demo: {exc}", file=sys.stderr)
        return 1
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def on_signal(signum: int, _frame: Any) -> None:
        rt.stop_requested.set()

    for s in previous:
        signal.signal(s, on_signal)
    code = 0
    cleaning = threading.Event()
    if not headless:
        threading.Thread(target=_stop_if_the_console_hangs, args=(rt, cleaning), name="demo-reaper",
                         daemon=True).start()
    try:
        rt.build()
        rt.start_etcd()
        rt.serve_control()
        rt.start_monitor()
        code = _run_headless(rt) if headless else _run_console(rt)
    except (DemoError, RuntimeError, TimeoutError) as exc:  # RuntimeError: etcd would not start
        say(f"hatui demo: {exc}", file=sys.stderr)
        code = 1
    finally:
        cleaning.set()
        for s in previous:
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        # Textual's job-control handlers outlive the console. A closed terminal sends SIGHUP and
        # SIGCONT, and its SIGCONT handler then raises in here, which would abandon the clean-up.
        for s in (signal.SIGCONT, signal.SIGTSTP, signal.SIGWINCH):
            signal.signal(s, signal.SIG_DFL)
        say("hatui demo: stopping everything it started...")
        for line in rt.stop():
            say(f"  {line}")
        for s, h in previous.items():
            signal.signal(s, h)
    return code


def _stop_if_the_console_hangs(rt: DemoRuntime, cleaning: threading.Event) -> None:
    """A stop was asked for (signal, lost terminal) but the console has not returned: a console
    wedged on a terminal that is gone must not keep the cluster running. Clean up from here and
    end the process."""
    rt.stop_requested.wait()
    if cleaning.wait(CONSOLE_EXIT_GRACE):
        return  # the main thread is cleaning up
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCONT):
        try:
            signal.signal(s, signal.SIG_IGN)
        except ValueError:
            pass  # only the main thread may; the handlers left there just set an event
    say("hatui demo: the console did not close; stopping everything it started...")
    for line in rt.stop():
        say(f"  {line}")
    import os

    os._exit(1)


# How long the console may take to close after a stop request before the reaper takes over.
CONSOLE_EXIT_GRACE = 8.0


def _run_headless(rt: DemoRuntime) -> int:
    t0 = time.monotonic()
    if not rt.start_nodes():
        return 0
    say(endpoints_text(rt))
    if rt.wait_streaming():
        leader = rt.cluster.leader()
        others = ", ".join(n.name for n in rt.cluster.nodes if n.name != leader)
        say(f"ready in {time.monotonic() - t0:.1f}s: {leader} is the leader"
              + (f", {others} {'streams' if ',' not in others else 'stream'} from it" if others else ""),
              flush=True)
    elif not rt.stop_requested.is_set():
        say("not every replica is streaming yet; see the logs in " + str(rt.workdir / "logs"))
    say("running; Ctrl-C or SIGTERM stops everything")
    rt.stop_requested.wait()
    return 0


def _run_console(rt: DemoRuntime) -> int:
    try:
        from ..screens.demo_panel import DemoApp
    except ImportError as exc:
        raise DemoError(f"the console is not available ({exc}); use --no-console") from exc
    say(f"hatui demo: etcd on {rt.cluster.etcd_endpoint}; starting {rt.nodes_count} nodes in {rt.workdir}...",
          flush=True)
    errors: list[str] = []

    def starter() -> None:
        try:
            rt.start_nodes()
        except DemoError as exc:
            errors.append(str(exc))
            rt._say(f"start-up failed: {exc}")

    threading.Thread(target=starter, name="demo-start", daemon=True).start()
    app = DemoApp(rt)
    app.run()
    if errors:
        say("hatui demo: " + errors[0], file=sys.stderr)
        return 1
    # Non-zero: the console crashed (Textual printed why). Not after a stop request: a closed
    # terminal (SIGHUP) also takes the console's output away, and that is no failure.
    return 1 if app.return_code and not rt.stop_requested.is_set() else 0
