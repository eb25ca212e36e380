"""A slow etcd is not a dead etcd (issue 16): lease-aware demotion against a delaying proxy.

The leader's daemon (and its fencing guard) reach etcd through a TCP proxy written here, which
holds every chunk of data for a settable delay in each direction, as a loaded or distant etcd
would answer; the replica talks to etcd directly. Timings: ttl 30, loop_wait 1, retry_timeout 3.

* etcd slowed to 4 s per message (each request takes about 8 s: longer than retry_timeout, well
  within the lease) for longer than a whole ttl: the leader never demotes, the lease is renewed
  through the slow path, and a client writing all along sees no failed commit;
* etcd slowed past the lease (60 s per message): the leader stops taking writes before its lease
  can run out, and the replica takes over once etcd frees the key: one clean failover, never
  two writable primaries.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque

import pytest
from faultkit import connect, finish, is_writable, start_load, wait_healthy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMING = {"ttl": 30, "loop_wait": 1, "retry_timeout": 3}


class DelayProxy:
    """127.0.0.1:<port> -> upstream; every chunk is delivered `delay` seconds after it arrived
    (the delay in force when it arrived), in order, in each direction."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.delay = 0.0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []

    def start(self) -> DelayProxy:
        threading.Thread(target=self._accept, daemon=True, name="delay-proxy").start()
        return self

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._socks += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                queue: deque = deque()
                cond = threading.Condition()
                threading.Thread(target=self._read, args=(src, queue, cond), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, queue, cond), daemon=True).start()

    def _read(self, src: socket.socket, queue: deque, cond: threading.Condition) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with cond:
                queue.append((time.monotonic() + self.delay, data))
                cond.notify()
            if not data:
                return

    def _write(self, dst: socket.socket, queue: deque, cond: threading.Condition) -> None:
        while True:
            with cond:
                while not queue:
                    cond.wait()
                due, data = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._server.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass


def slow_leader_cluster(fault_cluster):
    cluster = fault_cluster(2, dcs=TIMING, start=False)
    proxy = DelayProxy(("127.0.0.1", cluster.etcd_port)).start()
    # postgresql0 starts first and bootstraps: it is the leader, and it alone sees etcd slow.
    cluster.node_etcd_hosts = {"postgresql0": f"127.0.0.1:{proxy.port}"}
    cluster.start()
    return cluster, proxy


def test_slow_etcd_within_the_lease_never_demotes_the_leader(fault_cluster) -> None:
    cluster, proxy = slow_leader_cluster(fault_cluster)
    try:
        leader = wait_healthy(cluster)
        assert leader.name == "postgresql0"
        writer, monitor = start_load(cluster)
        failures_before = writer.failures
        acked_before = len(writer.acked)
        proxy.delay = 4.0  # > retry_timeout 3; a request takes ~8 s; the lease is 30 s
        slow_since = time.monotonic()
        # Longer than a whole ttl: the lease must have been renewed through the slow path.
        cluster.wait_for(lambda: time.monotonic() - slow_since > 45, 60, "45 s of a slow etcd", interval=1)
        failed_while_slow = writer.failures - failures_before
        acked_while_slow = len(writer.acked) - acked_before
        proxy.delay = 0.0
        text = leader.log_path.read_text(errors="replace")
        print(f"slow etcd (4 s per message) for 45 s: {acked_while_slow} commits acknowledged, "
              f"{failed_while_slow} failed")
        assert failed_while_slow == 0, f"{failed_while_slow} commits failed while etcd was slow"
        assert acked_while_slow > 100
        assert "demot" not in text.lower(), "the leader demoted itself"
        assert "fencing guard stopped PostgreSQL" not in text
        assert monitor.seen_writable == ["postgresql0"]
        assert finish(cluster, writer, monitor) is leader
    finally:
        proxy.stop()


def test_slow_etcd_past_the_lease_one_clean_failover(fault_cluster) -> None:
    cluster, proxy = slow_leader_cluster(fault_cluster)
    try:
        old = wait_healthy(cluster)
        assert old.name == "postgresql0"
        new = cluster.node("postgresql1")
        writer, monitor = start_load(cluster)
        proxy.delay = 60.0  # every answer arrives after the lease has run out
        slow_since = time.monotonic()
        cluster.wait_for(lambda: not is_writable(old), 120, f"{old.name} to stop taking writes", interval=0.05)
        stopped = time.monotonic() - slow_since
        cluster.wait_for(lambda: is_writable(new), 120, f"{new.name} taking over", interval=0.05)
        print(f"etcd slowed past the lease: {old.name} stopped taking writes after {stopped:.1f}s, "
              f"{new.name} took writes after {time.monotonic() - slow_since:.1f}s (ttl 30)")
        cluster.wait_for(lambda: monitor.seen_writable[-1:] == [new.name], 30, "the monitor to see the new primary")
        proxy.delay = 0.0
        text = old.log_path.read_text(errors="replace")
        assert ("demoted self because DCS is not accessible and I was a leader" in text
                or "demoted self because failed to update leader lock in DCS" in text
                or "fencing guard stopped PostgreSQL" in text), text[-3000:]
        # The old primary stopped taking writes before the new one started: one failover, in order.
        assert monitor.seen_writable == [old.name, new.name]
        with connect(new) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        leader = finish(cluster, writer, monitor, async_tail_loss=True)
        assert leader is new
    finally:
        proxy.stop()
