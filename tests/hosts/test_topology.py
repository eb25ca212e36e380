"""The topology itself (quick, no cluster): hosts reach each other over the private bridge, a cut
drops exactly the direction and ports it names, loss drops a share of packets, the controller
always sees every host, and the guards refuse to act anywhere but in namespaces the test made."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import outer
from netnskit import OUTER_NS_ENV, inside
from topology import Namespace, Topology

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~45 s: test-faults and test-partitions

RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(1.5)
n = 0
try:
    while True:
        s.recv(100)
        n += 1
except socket.timeout:
    pass
print(n)
"""
SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
time.sleep(0.3)
for _ in range(int(sys.argv[3])):
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.002)
"""


def udp(topo: Topology, src: Namespace | None, dst: Namespace, count: int = 50, port: int = 9000) -> int:
    """How many of `count` datagrams from src (None: the controller) reach dst."""
    recv = subprocess.Popen(dst.prefix() + [sys.executable, "-c", RECEIVER, dst.addr, str(port)],
                            stdout=subprocess.PIPE, text=True)
    send_cmd = [sys.executable, "-c", SENDER, dst.addr, str(port), str(count)]
    if src is None:
        subprocess.run(send_cmd, check=True, timeout=30)
    else:
        topo.run_in(src, *send_cmd)
    out, _ = recv.communicate(timeout=30)
    return int(out.strip())


def tcp_ok(topo: Topology, src: Namespace, dst: Namespace, port: int) -> bool:
    server = subprocess.Popen(dst.prefix() + [sys.executable, "-c",
                              f"import socket,time; s=socket.create_server(('{dst.addr}',{port})); time.sleep(4)"])
    try:
        res = subprocess.run(src.prefix() + [sys.executable, "-c",
                             f"import socket,time; time.sleep(0.5); socket.create_connection(('{dst.addr}',{port}),"
                             " timeout=1.5).close()"], capture_output=True, timeout=20)
        return res.returncode == 0
    finally:
        server.kill()
        server.wait()


def test_links_cut_and_degrade_per_direction(request) -> None:
    if not inside():
        outer(request, timeout=300)
        return
    topo = Topology(3).build()
    try:
        h0, h1, h2 = topo.hosts
        assert udp(topo, h0, h1) == 50 and udp(topo, None, h0) == 50
        topo.cut(h0.name, h1.name, both=False)  # h0 -> h1 only
        assert udp(topo, h0, h1) == 0
        assert udp(topo, h1, h0) == 50
        assert udp(topo, h0, h2) == 50
        topo.heal()
        topo.cut(h1.name, h0.name, both=False)  # the reverse
        assert udp(topo, h0, h1) == 50 and udp(topo, h1, h0) == 0
        topo.heal()
        topo.cut(h0.name, h1.name, ports=(9100,))  # one TCP port, both ways
        assert not tcp_ok(topo, h0, h1, 9100) and not tcp_ok(topo, h1, h0, 9100)
        assert tcp_ok(topo, h0, h1, 9101)
        topo.heal()
        topo.isolate(h2.name)
        assert udp(topo, h0, h2) == 0 and udp(topo, topo.client, h2) == 0
        assert udp(topo, None, h2) == 50  # the controller still sees the isolated host
        topo.heal()
        topo.degrade([h0.name, h1.name], loss=50)
        got = udp(topo, h0, h1, count=300)
        assert 60 < got < 240, got  # about half (binomial: outside this range ~1e-20)
        assert udp(topo, h0, h2) == 50
        topo.heal()
        assert udp(topo, h0, h1) == 50
        # The guards: a namespace this topology did not make, or a run in the outer namespace.
        stranger = Namespace("stranger", "10.77.0.50", h0.holder, "net:[1]", "x")
        with pytest.raises(RuntimeError, match="refusing"):
            topo.run_in(stranger, "true")
        saved = os.environ[OUTER_NS_ENV]
        os.environ[OUTER_NS_ENV] = os.readlink("/proc/self/ns/net")
        try:
            with pytest.raises(RuntimeError, match="refusing"):
                topo.cut(h0.name, h1.name)
            with pytest.raises(RuntimeError, match="refusing"):
                Topology(1).build()
        finally:
            os.environ[OUTER_NS_ENV] = saved
        assert not topo.links
    finally:
        topo.destroy()


ECHO_SERVER = """
import socket, sys
s = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    c, _ = s.accept()
    try:
        while data := c.recv(100):
            c.sendall(data)
    except OSError:
        pass
    c.close()
"""
ROUND_TRIP = """
import socket, sys, time
time.sleep(0.5)
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
began = time.monotonic()
c.sendall(b"ping")
assert c.recv(100) == b"ping"
print(round(time.monotonic() - began, 3))
"""


def round_trip(topo: Topology, src: Namespace, dst: Namespace, port: int) -> float:
    """Seconds for 4 bytes to go from src to dst's echo server and back, on a new connection."""
    return float(topo.run_in(src, sys.executable, "-c", ROUND_TRIP, dst.addr, str(port)).strip())


def test_latency_through_the_delaying_proxy(request) -> None:
    """300 ms each way between two hosts, whoever opens the connection (no netem here: the
    proxy); not between the others; gone again when healed; connections open before the delay
    was set are reset, so that they too come back through the proxy."""
    if not inside():
        outer(request, timeout=300)
        return
    topo = Topology(3).build()
    try:
        h0, h1, h2 = topo.hosts
        servers = [subprocess.Popen(ns.prefix() + [sys.executable, "-c", ECHO_SERVER, ns.addr, "9200"])
                   for ns in (h0, h1, h2)]
        try:
            # A connection opened before the fault: must not keep a fast path.
            early = subprocess.Popen(h0.prefix() + [sys.executable, "-c",
                                     f"import socket,time; time.sleep(0.5); c=socket.create_connection(('{h2.addr}',9200)); "
                                     "time.sleep(3); c.sendall(b'x'); print(c.recv(10))"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)
            topo.degrade([h0.name, h2.name], delay_ms=300)
            out, err = early.communicate(timeout=30)
            assert early.returncode != 0 and ("reset" in err or "abort" in err), (out, err)
            # Lower bounds (each way is held back by at least 300 ms): load cannot make them fail.
            forward, backward = round_trip(topo, h0, h2, 9200), round_trip(topo, h2, h0, 9200)
            direct = round_trip(topo, h0, h1, 9200)
            print(f"round trips: h0->h2 {forward} s, h2->h0 {backward} s, h0->h1 {direct} s")
            assert forward >= 0.6 and backward >= 0.6
            topo.heal()
            assert not topo.proxies
            ports = topo.delayed_ports()  # the proxies' counts, complete once they stopped
            assert ports.get(9200, 0) >= 4, ports  # two connections, a chunk each way each
            round_trip(topo, h0, h2, 9200)
            assert topo.delayed_ports() == ports  # healed: nothing goes through a proxy any more
        finally:
            for s in servers:
                s.kill()
                s.wait()
    finally:
        topo.destroy()
