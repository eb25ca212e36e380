"""Hosts as network namespaces on a private bridge, and the faults between them (issue 18).

The whole test already runs in a private network namespace (netnskit.run_inside re-executes it
under `unshare -n`): call it the lab. In the lab the topology creates a bridge `hbr0` with the
controller's address (10.77.0.254, where the test process watches everything), and one child
namespace per host and for the clients, each joined to the bridge by a veth pair:

    host i  -> 10.77.0.(i+1)      clients -> 10.77.0.100      controller (the lab) -> 10.77.0.254

A child namespace is held by a `sleep` process started under `unshare -n`; commands run in it
through `nsenter -t <holder pid> -n`. Holders are our children and are never reaped before the
clean-up, so their PID cannot be reused while we use it.

Faults are nftables rules inside the host namespaces, per peer and per direction: `cut(a, b)`
drops what a sends to b (at b's input); `ports=` narrows a cut to TCP traffic from or to those
ports (etcd's, PostgreSQL's...); loss is an nft `numgen random` drop. Latency is a delaying TCP
proxy per host (delayproxy.py: the host's TCP connections to a delayed peer are redirected into
it and every chunk is held back, both ways), which needs no `tc netem` (this kernel has none);
jitter and reordering need netem and are refused without it. The controller's address is never
matched, so the test can always see every host: Jepsen's control plane.

Every change is guarded: refused unless the lab is the fresh namespace the outer run made (not
the outer run's, no interface but loopback up when the topology was built) and the target is a
child namespace this topology created (its namespace id checked right before each command).
Nothing here can touch the machine's own namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from netnskit import OUTER_NS_ENV, _net_ns, inside, kill_in_namespaces, probe_reason, up_interfaces

SUBNET = "10.77.0"
CONTROLLER = f"{SUBNET}.254"
CLIENT = f"{SUBNET}.100"
BRIDGE = "hbr0"
TABLE = "hatui_hosts"
NS_FILE_ENV = "HATUI_HOSTS_NS_FILE"  # where the namespace ids go, for the outer run's clean-up
PROXY_PORT = 15999  # the delaying proxy's port, on 127.0.0.1 of each host (its own port space)
PROXY_MARK = 0x4818  # the proxy's onward connections carry this mark: the redirect lets them pass
PROXY_SCRIPT = Path(__file__).with_name("delayproxy.py")

PROBE = ("ip link add hbr0 type bridge && ip link add hv0 type veth peer name hv1 && ip link set hv0 master hbr0 "
         "&& nft add table inet t && nft add chain inet t c '{ type filter hook output priority 0; }' "
         "&& nft add rule inet t c numgen random mod 100 '<' 5 drop "
         "&& nft add chain inet t d '{ type nat hook output priority -100; }' "
         "&& nft add rule inet t d meta mark != 0x1 ip daddr 10.0.0.2 meta l4proto tcp redirect to :1 "
         "&& unshare -n -- true && command -v nsenter")


def skip_reason() -> str | None:
    """Why this machine cannot build the topology (None when it can)."""
    return probe_reason(PROBE, "network namespaces with a bridge, veth pairs and nftables are not available here "
                               "(needs root or CAP_SYS_ADMIN + CAP_NET_ADMIN, iproute2, nftables with nat)")


def netem_reason() -> str | None:
    """Why jitter/reordering cannot be injected here (None when tc netem works)."""
    return probe_reason("ip link add hv0 type veth peer name hv1 && tc qdisc add dev hv0 root netem delay 1ms",
                        "this kernel has no tc netem qdisc (sch_netem)")


@dataclass
class Namespace:
    """One child namespace (a host or the clients), held open by a sleeping process."""

    name: str
    addr: str
    holder: subprocess.Popen
    ns_id: str
    veth: str  # our end, in the lab, on the bridge

    def current(self) -> bool:
        return _net_ns(self.holder.pid) == self.ns_id

    def prefix(self) -> list[str]:
        """The command prefix that runs a program in this namespace (after the guard)."""
        return ["nsenter", "-t", str(self.holder.pid), "-n", "--"]


@dataclass
class Link:
    """What one host does to its traffic towards one peer (a direction of a pair)."""

    drop_ports: tuple[int, ...] | None = None  # None: nothing cut; (): everything; else these TCP ports
    loss: int = 0  # percent
    delay_ms: int = 0
    jitter_ms: int = 0  # needs netem
    reorder: int = 0  # percent; needs netem


@dataclass
class Topology:
    hosts_count: int = 3
    hosts: list[Namespace] = field(default_factory=list)
    client: Namespace | None = None
    lab_ns: str | None = None
    links: dict[tuple[str, str], Link] = field(default_factory=dict)
    log: list[tuple[float, str]] = field(default_factory=list)  # (wall time, what the nemesis did)
    proxies: dict[str, tuple[subprocess.Popen, dict]] = field(default_factory=dict)  # host -> (proxy, its delays)
    delay_stats: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # host -> "peer:port" -> counts
    work_dir: Path | None = None  # the proxies' logs and counts

    # ---- guards --------------------------------------------------------------------------------
    def _check_lab(self) -> None:
        own, outer = _net_ns("self"), os.environ.get(OUTER_NS_ENV)
        if not (inside() and own and outer and own != outer and (self.lab_ns is None or own == self.lab_ns)):
            raise RuntimeError(f"refusing to change the network outside the test's private namespace "
                               f"(namespace {own}, outer run's {outer}, lab {self.lab_ns})")

    def _check_child(self, ns: Namespace) -> None:
        self._check_lab()
        if ns not in self.hosts and ns is not self.client:
            raise RuntimeError(f"refusing to act in namespace {ns.name}: not created by this topology")
        if not ns.current() or ns.ns_id in (self.lab_ns, os.environ.get(OUTER_NS_ENV)):
            raise RuntimeError(f"refusing to act in {ns.name}: its holder (pid {ns.holder.pid}) is no longer in "
                               f"the namespace this topology created ({ns.ns_id})")

    def _lab(self, *args: str) -> None:
        self._check_lab()
        _run(list(args))

    def run_in(self, ns: Namespace, *args: str, check: bool = True, stdin: str | None = None) -> str:
        self._check_child(ns)
        return _run(ns.prefix() + list(args), check=check, stdin=stdin)

    # ---- building --------------------------------------------------------------------------------
    def build(self) -> "Topology":
        self._check_lab()
        up = up_interfaces()
        if up:
            raise RuntimeError(f"refusing to build the topology: interfaces already up here ({up}); "
                               "not the fresh namespace the outer run made")
        self.lab_ns = _net_ns("self")
        self.work_dir = Path(tempfile.mkdtemp(prefix="hatui-hosts-topo-"))
        self._lab("ip", "link", "set", "lo", "up")
        self._lab("ip", "link", "add", BRIDGE, "type", "bridge")
        self._lab("ip", "addr", "add", f"{CONTROLLER}/24", "dev", BRIDGE)
        self._lab("ip", "link", "set", BRIDGE, "up")
        for i in range(self.hosts_count):
            self.hosts.append(self._add(f"host{i}", f"{SUBNET}.{i + 1}", i))
        self.client = self._add("clients", CLIENT, 99)
        for ns in self.namespaces:
            self._init_firewall(ns)
        return self

    @property
    def namespaces(self) -> list[Namespace]:
        return self.hosts + ([self.client] if self.client else [])

    def _add(self, name: str, addr: str, index: int) -> Namespace:
        holder = subprocess.Popen(["unshare", "-n", "--", "sleep", "infinity"], start_new_session=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        ns_id = None
        while time.monotonic() < deadline:
            ns_id = _net_ns(holder.pid)
            if ns_id and ns_id != self.lab_ns:
                break
            time.sleep(0.01)
        if not ns_id or ns_id == self.lab_ns:
            holder.kill()
            raise RuntimeError(f"namespace for {name} did not appear")
        outer_end, inner_end = f"hv{index}", f"hv{index}p"
        ns = Namespace(name, addr, holder, ns_id, outer_end)
        self.namespaces_file_add(ns_id, holder.pid)
        self._lab("ip", "link", "add", outer_end, "type", "veth", "peer", "name", inner_end)
        self._lab("ip", "link", "set", outer_end, "master", BRIDGE)
        self._lab("ip", "link", "set", outer_end, "up")
        self.hosts.append(ns)  # the guard knows it from here on (removed again just below for clients)
        try:
            if not ns.current():
                raise RuntimeError(f"namespace for {name} vanished")
            self._lab("ip", "link", "set", inner_end, "netns", str(holder.pid))
            self.run_in(ns, "ip", "link", "set", "lo", "up")
            self.run_in(ns, "ip", "link", "set", inner_end, "name", "eth0")
            self.run_in(ns, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
            self.run_in(ns, "ip", "link", "set", "eth0", "up")
        finally:
            self.hosts.remove(ns)
        return ns

    @staticmethod
    def namespaces_file_add(ns_id: str, holder_pid: int) -> None:
        """Tell the outer run (netnskit.NamespaceHold, which holds it open from then on)."""
        path = os.environ.get(NS_FILE_ENV)
        if path:
            with open(path, "a") as f:
                f.write(f"{ns_id} {holder_pid}\n")

    def _init_firewall(self, ns: Namespace) -> None:
        self.run_in(ns, "nft", "-f", "-", stdin=(
            f"table inet {TABLE} {{\n"
            "  chain input { type filter hook input priority 0; policy accept; }\n"
            "  chain delay { type nat hook output priority -100; policy accept; }\n"
            "}\n"))

    # ---- faults ---------------------------------------------------------------------------------
    def host(self, name_or_index: str | int) -> Namespace:
        if isinstance(name_or_index, int):
            return self.hosts[name_or_index]
        return next(ns for ns in self.namespaces if ns.name == name_or_index or ns.addr == name_or_index)

    def _apply(self, ns: Namespace) -> None:
        """Rewrite ns's input chain and egress qdisc from self.links (a whole replace: no stale
        rule). Drops happen where packets arrive, so the sender sees silence (timeouts), as on a
        real broken link, not an instant local error."""
        rules = []
        netem = []
        for (a, b), link in sorted(self.links.items()):
            if b == ns.name:
                src = self.host(a).addr
                if link.drop_ports == ():
                    rules.append(f"ip saddr {src} drop")
                elif link.drop_ports:
                    ports = ", ".join(str(p) for p in link.drop_ports)
                    rules.append(f"ip saddr {src} tcp dport {{ {ports} }} drop")
                    rules.append(f"ip saddr {src} tcp sport {{ {ports} }} drop")
                if link.loss:
                    rules.append(f"ip saddr {src} numgen random mod 100 < {link.loss} drop")
            if a == ns.name and (link.jitter_ms or link.reorder):
                netem.append((self.host(b).addr, link))
        body = "\n".join(f"    {r}" for r in rules)
        self.run_in(ns, "nft", "-f", "-", stdin=(
            f"flush chain inet {TABLE} input\n"
            f"table inet {TABLE} {{\n  chain input {{\n{body}\n  }}\n}}\n"))
        self._apply_netem(ns, netem)
        self._apply_delay(ns)

    def _apply_delay(self, ns: Namespace) -> None:
        """Start, replace or stop ns's delaying proxy for the latency in self.links (towards each
        peer and back), and redirect ns's TCP connections to those peers into it. Connections
        that were open before (etcd's peer streams, replication, ...) would keep their old path:
        they are reset (`ss -K`), and reconnect through the proxy (or, healed, directly)."""
        delays = {}
        for peer in self.namespaces:
            if peer is not ns:
                out = self.links.get((ns.name, peer.name), Link()).delay_ms
                back = self.links.get((peer.name, ns.name), Link()).delay_ms
                if out or back:
                    delays[peer.addr] = (out, back)
        old = self.proxies.get(ns.name)
        if (old[1] if old else {}) == delays:
            return
        changed = set(delays) | set(old[1] if old else {})
        self.run_in(ns, "nft", "flush", "chain", "inet", TABLE, "delay")
        self._stop_proxy(ns)
        if delays:
            assert self.work_dir is not None
            stats = self.work_dir / f"{ns.name}-delay.json"
            stats.unlink(missing_ok=True)
            self._check_child(ns)
            with open(self.work_dir / f"{ns.name}-delay.log", "ab") as log:
                proxy = subprocess.Popen(ns.prefix() + [sys.executable, str(PROXY_SCRIPT), str(PROXY_PORT),
                                                        hex(PROXY_MARK), str(stats), json.dumps(delays)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            self.proxies[ns.name] = (proxy, delays)
            deadline = time.monotonic() + 10
            while not stats.exists():  # written once it listens
                if proxy.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the delaying proxy of {ns.name} did not start "
                                       f"(see {self.work_dir / f'{ns.name}-delay.log'})")
                time.sleep(0.05)
            peers = ", ".join(sorted(delays))
            self.run_in(ns, "nft", "add", "rule", "inet", TABLE, "delay", "meta", "mark", "!=", hex(PROXY_MARK),
                        "ip", "daddr", f"{{ {peers} }}", "meta", "l4proto", "tcp", "redirect", "to", f":{PROXY_PORT}")
        for addr in sorted(changed):
            # Both ends' sockets go (the kernel sends the peer a reset); the listening ones stay.
            self.run_in(ns, "ss", "-K", "dst", addr, check=False)

    def _stop_proxy(self, ns: Namespace) -> None:
        """Stop ns's proxy (by PID; its open connections close) and keep what it counted."""
        entry = self.proxies.pop(ns.name, None)
        if entry is None:
            return
        proxy = entry[0]
        proxy.terminate()
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()
        assert self.work_dir is not None
        try:
            counts = json.loads((self.work_dir / f"{ns.name}-delay.json").read_text())
        except (OSError, ValueError):
            return
        mine = self.delay_stats.setdefault(ns.name, {})
        for key, c in counts.items():
            total = mine.setdefault(key, {"conns": 0, "chunks": 0, "bytes": 0})
            for k in total:
                total[k] += c.get(k, 0)

    def delayed_ports(self) -> dict[int, int]:
        """TCP port -> chunks the proxies delayed towards it so far (stopped proxies and running ones)."""
        out: dict[int, int] = {}
        sources = [self.delay_stats.get(name, {}) for name in self.delay_stats]
        if self.work_dir is not None:
            for name in self.proxies:
                try:
                    sources.append(json.loads((self.work_dir / f"{name}-delay.json").read_text()))
                except (OSError, ValueError):
                    pass
        for counts in sources:
            for key, c in counts.items():
                port = int(key.rsplit(":", 1)[1])
                out[port] = out.get(port, 0) + c.get("chunks", 0)
        return out

    def _apply_netem(self, src: Namespace, netem: list[tuple[str, Link]]) -> None:
        self.run_in(src, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
        if not netem:
            return
        reason = netem_reason()
        if reason:
            raise RuntimeError(f"cannot add jitter or reordering: {reason}")
        # htb: default class 1:1 untouched; one class per degraded peer with a netem leaf.
        self.run_in(src, "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "1")
        self.run_in(src, "tc", "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit")
        for i, (dst, link) in enumerate(netem, start=2):
            self.run_in(src, "tc", "class", "add", "dev", "eth0", "parent", "1:", "classid", f"1:{i}", "htb",
                        "rate", "10gbit")
            # The mean delay is the proxy's (_apply_delay); netem adds only the variation.
            args = ["delay", f"{link.jitter_ms}ms", f"{link.jitter_ms}ms"]
            if link.reorder:
                args += ["reorder", f"{link.reorder}%"]
            self.run_in(src, "tc", "qdisc", "add", "dev", "eth0", "parent", f"1:{i}", "netem", *args)
            self.run_in(src, "tc", "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "u32",
                        "match", "ip", "dst", f"{dst}/32", "flowid", f"1:{i}")

    def _set(self, a: str, b: str, **changes) -> None:
        link = self.links.get((a, b), Link())
        for k, v in changes.items():
            setattr(link, k, v)
        if link == Link():
            self.links.pop((a, b), None)
        else:
            self.links[(a, b)] = link

    def note(self, text: str) -> None:
        self.log.append((time.time(), text))

    def cut(self, a: str, b: str, ports: tuple[int, ...] = (), both: bool = True) -> None:
        """Drop what a sends to b (and b to a when both): everything, or TCP from/to `ports`."""
        self._check_lab()  # before any bookkeeping: a refused change leaves no trace
        pairs = [(a, b), (b, a)] if both else [(a, b)]
        for x, y in pairs:
            self._set(x, y, drop_ports=tuple(ports))
        for x in {a, b}:
            self._apply(self.host(x))
        what = f"ports {','.join(map(str, ports))}" if ports else "all traffic"
        self.note(f"cut {a} {'<->' if both else '->'} {b} ({what})")

    def isolate(self, name: str, ports: tuple[int, ...] = (), others: list[str] | None = None) -> None:
        """Cut one host from every other namespace (hosts and clients), both ways."""
        self._check_lab()  # before any bookkeeping: a refused change leaves no trace
        others = others if others is not None else [ns.name for ns in self.namespaces if ns.name != name]
        for other in others:
            self._set(name, other, drop_ports=tuple(ports))
            self._set(other, name, drop_ports=tuple(ports))
        for ns in {name, *others}:
            self._apply(self.host(ns))
        what = f"ports {','.join(map(str, ports))}" if ports else "all traffic"
        self.note(f"isolate {name} from {', '.join(others)} ({what})")

    def degrade(self, names: list[str], loss: int = 0, delay_ms: int = 0, jitter_ms: int = 0,
                reorder: int = 0) -> None:
        """Loss/latency on every link between the given namespaces, both directions."""
        self._check_lab()  # before any bookkeeping: a refused change leaves no trace
        for a in names:
            for b in names:
                if a != b:
                    self._set(a, b, loss=loss, delay_ms=delay_ms, jitter_ms=jitter_ms, reorder=reorder)
        for a in names:
            self._apply(self.host(a))
        self.note(f"degrade links between {', '.join(names)}: loss {loss}%, delay {delay_ms} ms, "
                  f"jitter {jitter_ms} ms, reorder {reorder}%")

    def heal(self) -> None:
        self._check_lab()  # before any bookkeeping: a refused change leaves no trace
        touched = {x for pair in self.links for x in pair}
        self.links.clear()
        for name in touched:
            self._apply(self.host(name))
        self.note("heal: every link restored")

    # ---- clean-up -------------------------------------------------------------------------------
    def processes(self) -> list[int]:
        """PIDs in our child namespaces other than the holders."""
        ids = {ns.ns_id for ns in self.namespaces}
        holders = {ns.holder.pid for ns in self.namespaces}
        return [int(p) for p in os.listdir("/proc")
                if p.isdigit() and int(p) not in holders and _net_ns(p) in ids]

    def destroy(self) -> list[int]:
        """Kill, by PID, whatever still runs in our namespaces, then the holders (the namespaces
        and their veth ends go with them); the bridge goes with the lab."""
        for name in list(self.proxies):
            self._stop_proxy(self.host(name))
        killed = kill_in_namespaces({ns.ns_id for ns in self.namespaces},
                                    keep={ns.holder.pid for ns in self.namespaces})
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        for ns in self.namespaces:
            ns.holder.kill()
            ns.holder.wait()
        self.hosts.clear()
        self.client = None
        return killed


def _run(args: list[str], check: bool = True, stdin: str | None = None) -> str:
    res = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=20)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stderr.strip() or res.returncode}")
    return res.stdout
