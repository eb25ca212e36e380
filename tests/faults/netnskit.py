"""Run a test inside a private network namespace, and cut one TCP port there with policy routing.

A partition between the leader and etcd, with the replicas still reaching both, cannot be made
on the host's loopback without touching the host's routing. So the test re-executes itself under
`unshare -n`: a fresh namespace with its own loopback, where etcd, the daemons, PostgreSQL and the
test's own clients all live, and where changing the rules disturbs nobody. The namespace goes
away with its last process; `run_inside` kills, by PID, whatever of ours is still in it.

The cut: etcd listens on two client ports; the node to isolate knows only one of them. A
policy-routing rule turns every TCP segment to or from that port into a blackhole (connect()
fails with EINVAL, segments of an open connection are dropped both ways), ahead of the `local`
table that would otherwise deliver them. Every other port, node to node included, still works.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

INNER_ENV = "HATUI_NETNS_INNER"
OUTER_NS_ENV = "HATUI_NETNS_OUTER"  # the outer run's namespace, which the inner one must not be in
INNER_TIMEOUT = 900.0
PROBE = ("ip link set lo up && ip rule add pref 10 ipproto tcp dport 9 blackhole "
         "&& ip rule add pref 100 lookup local && ip rule del pref 0")


def inside() -> bool:
    """True in the re-executed run (inside the private namespace)."""
    return os.environ.get(INNER_ENV) == "1"


def _net_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def kill_in_namespaces(ids: set[str], keep: set[int] = frozenset()) -> list[int]:
    """SIGKILL every process (but `keep`) in the network namespaces `ids` (only ours can be there)."""
    killed = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in keep and _net_ns(entry) in ids:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
            except ProcessLookupError:
                pass
    return killed


class NamespaceHold:
    """Network namespaces held open (a file descriptor each), so that a namespace's id cannot pass
    to a namespace someone else creates while we may still kill processes by that id. Without it,
    a run that killed "whatever is left in namespace N" after N was gone killed the processes of
    another run whose new namespace had been given the freed id (seen: two partition runs side by
    side each lost a scenario's cluster that way). Only namespaces held here are ever killed in.

    `watch(path)` holds, as they appear, the namespaces listed in a file of `ID PID` lines (a
    process inside each, checked to be in that very namespace when it is opened)."""

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, ns_id: str, pid: int) -> bool:
        if ns_id in self.fds:
            return True
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        except OSError:
            return False
        if os.readlink(f"/proc/self/fd/{fd}") != ns_id:  # the process left it, or the pid is another's
            os.close(fd)
            return False
        self.fds[ns_id] = fd
        return True

    def watch(self, path: str) -> "NamespaceHold":
        def loop() -> None:
            while True:
                self._read(path)
                if self._stop.wait(0.05):
                    self._read(path)
                    return

        self._thread = threading.Thread(target=loop, name="namespace-hold", daemon=True)
        self._thread.start()
        return self

    def _read(self, path: str) -> None:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                self.hold(parts[0], int(parts[1]))

    def kill_and_release(self, keep: set[int] = frozenset()) -> list[int]:
        """SIGKILL what is left in the held namespaces, then let them go."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        killed = kill_in_namespaces(set(self.fds), keep) if self.fds else []
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        return killed


def probe_reason(script: str, needs: str) -> str | None:
    """Run `script` under `unshare -n`: None when it works, else why not (`needs` says what it takes)."""
    try:
        res = subprocess.run(["unshare", "-n", "--", "sh", "-c", script], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run `unshare -n`: {exc}"
    if res.returncode != 0:
        return f"{needs}: {res.stderr.strip() or res.returncode}"
    return None


def skip_reason() -> str | None:
    """Why this machine cannot run the namespace scenarios (None when it can)."""
    return probe_reason(PROBE, "a private network namespace with policy routing is not available here (needs root "
                               "or CAP_SYS_ADMIN + CAP_NET_ADMIN, iproute2)")


def up_interfaces() -> list[str]:
    """The interfaces up in this namespace, but loopback."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
    up = []
    for line in links.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[1].strip() != "lo" and "UP" in parts[2].split(">", 1)[0].lstrip(" <").split(","):
            up.append(parts[1].strip().split("@")[0])
    return up


def run_inside(request: pytest.FixtureRequest, timeout: float = INNER_TIMEOUT) -> None:
    """The outer run: execute this one test again inside a fresh network namespace and fail
    (with the inner output) unless it passed there (interrupted after `timeout` seconds)."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    target = f"{request.path}::{request.node.name}"
    args = ["unshare", "-n", "--", sys.executable, "-m", "pytest", target, "-p", "no:xdist", "-p", "no:cacheprovider",
            "-q", "-m", "slow or not slow", "--tb=short",
            "-W", "ignore::pytest.PytestUnknownMarkWarning"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    root = Path(request.config.rootpath)
    own_ns = _net_ns("self")
    env[INNER_ENV], env[OUTER_NS_ENV] = "1", own_ns or ""
    proc = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ns = None
    deadline = time.monotonic() + 30
    while ns in (None, own_ns) and proc.poll() is None and time.monotonic() < deadline:
        ns = _net_ns(proc.pid)
        time.sleep(0.01)
    held = NamespaceHold()
    if ns not in (None, own_ns):
        held.hold(ns, proc.pid)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # An interrupted pytest still runs its finalizers: the cluster is stopped properly.
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        output += f"\n(the inner run was interrupted after {timeout:g}s)"
    finally:
        left = held.kill_and_release()
        if left:
            print(f"killed processes left in the private namespace: {left}")
    print(output)
    if proc.returncode == 0 and " skipped" in output and " passed" not in output:
        pytest.skip(f"skipped inside its namespace: {output.strip().splitlines()[-1]}")
    assert proc.returncode == 0 and " passed" in output, f"the scenario failed inside its namespace:\n{output}"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def _check_private() -> None:
    """Refuse to touch routing unless this is the fresh namespace the outer run made: not the
    outer run's namespace, and no interface up but loopback (`unshare -n` creates only lo, and
    maybe a few tunnel devices, all down)."""
    own, outer = _net_ns("self"), os.environ.get(OUTER_NS_ENV)
    up = up_interfaces()
    if not (inside() and own and outer and own != outer and not up):
        raise RuntimeError(f"refusing to change routing outside a private namespace (namespace {own}, "
                           f"outer run's {outer}, interfaces up: {up})")


def prepare() -> None:
    """Inside the namespace: loopback up, and the `local` table moved behind rule 100 so that
    rules with a smaller preference (the cuts) are looked at first."""
    _check_private()
    _ip("link", "set", "lo", "up")
    _ip("rule", "add", "pref", "100", "lookup", "local")
    _ip("rule", "del", "pref", "0")


class PortCut:
    """Blackholes TCP to and from one port (both directions, so open connections die too)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.active = False

    def cut(self) -> None:
        _check_private()
        _ip("rule", "add", "pref", "10", "ipproto", "tcp", "dport", str(self.port), "blackhole")
        _ip("rule", "add", "pref", "11", "ipproto", "tcp", "sport", str(self.port), "blackhole")
        self.active = True

    def heal(self) -> None:
        if self.active:
            _ip("rule", "del", "pref", "10")
            _ip("rule", "del", "pref", "11")
            self.active = False
