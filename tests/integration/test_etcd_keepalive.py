"""The etcd client keeps its HTTP/1.1 connections open, against a real etcd the tests start.

Why: a new TCP connection per request (connect, request, close) was most of what an idle daemon
spent on etcd. Kept connections must not change what a failure looks like: an etcd restarted on
the same port is reconnected to on the next call, and a frozen etcd still ends a call with an
error when the call's timeout runs out (the lease-aware demotion and the loop's read deadlines
rely on that timeout).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from hatui.etcd import kv
from hatui.etcd.gateway import EtcdGateway
from hatui.etcd.store import DCSError
from servers import EtcdServer, free_ports, make_tempdir, remove_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def etcd_server() -> Iterator[EtcdServer]:
    base = make_tempdir("hatui-etcd-keepalive-")
    client_port, peer_port = free_ports(2)
    server = EtcdServer("etcd-keepalive", base / "etcd", client_port, peer_port)
    try:
        server.start().wait_ready()
        yield server
    finally:
        server.stop()
        remove_tree(base)


def my_connections_to(port: int) -> set[int]:
    """Local ports of this process's established TCP connections to 127.0.0.1:port (from
    /proc/net/tcp, keeping only sockets among our own file descriptors: etcd's gateway also
    connects to its own client port)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state == "01" and int(remote.split(":")[1], 16) == port and inode in mine:
                ports.add(int(local.split(":")[1], 16))
    return ports


def wait_stopped(pid: int) -> None:
    """SIGSTOP takes effect asynchronously: wait until the kernel shows the process stopped."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.01)
    raise AssertionError(f"etcd (pid {pid}) did not stop")


def test_many_requests_share_one_connection(etcd_server: EtcdServer) -> None:
    etcd = EtcdGateway([etcd_server.endpoint], timeout=3.0)
    seen: set[int] = set()
    try:
        lease = etcd.grant_lease(30)
        for i in range(20):
            etcd.put("/service/ka/config", str(i))
            assert etcd.get("/service/ka/config")[0] == str(i).encode()
            assert etcd.create(f"/service/ka/members/m{i}", "{}", lease)
            assert not etcd.create(f"/service/ka/members/m{i}", "{}", lease)
            assert etcd.keepalive(lease) > 0
            rows, _ = etcd.get_prefix("/service/ka/")
            assert len(rows) == i + 2
            seen |= my_connections_to(etcd_server.client_port)
        print(f"100 requests, connections opened: {etcd.connections_opened}, local ports seen: {sorted(seen)}")
        assert etcd.connections_opened == 1
        assert len(seen) == 1
    finally:
        etcd.close()
    assert my_connections_to(etcd_server.client_port) == set()  # close() closed the kept one


def test_a_restarted_etcd_is_reconnected_on_the_next_call(etcd_server: EtcdServer) -> None:
    etcd = EtcdGateway([etcd_server.endpoint], timeout=3.0)
    try:
        etcd.put("/service/ka/leader", "pg0")
        assert etcd.connections_opened == 1
        etcd_server.stop()
        etcd_server.start().wait_ready()
        assert etcd.get("/service/ka/leader")[0] == b"pg0"  # no error: the closed one was left
        assert etcd.connections_opened == 2
        assert etcd.get("/service/ka/leader")[0] == b"pg0"
        assert etcd.connections_opened == 2
    finally:
        etcd.close()


def test_a_connection_closed_just_as_it_is_reused_is_retried_once(
    etcd_server: EtcdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The close may arrive between the idle check and the request: make the check miss it every
    # time, so the request goes out on the closed connection and the retry is what saves it.
    monkeypatch.setattr(kv._Connection, "dropped", lambda self: False)
    etcd = EtcdGateway([etcd_server.endpoint], timeout=3.0)
    try:
        etcd.put("/service/ka/leader", "pg0")
        etcd_server.stop()
        etcd_server.start().wait_ready()
        assert etcd.put_if_value("/service/ka/leader", "pg0", "pg1")
        assert etcd.get("/service/ka/leader")[0] == b"pg1"
        assert etcd.connections_opened == 2
    finally:
        etcd.close()


def test_a_stopped_etcd_is_an_error_and_no_retry_loop(etcd_server: EtcdServer) -> None:
    etcd = EtcdGateway([etcd_server.endpoint], timeout=3.0)
    try:
        etcd.put("/service/ka/leader", "pg0")
        etcd_server.stop()
        with pytest.raises(DCSError, match="connection refused"):
            etcd.get("/service/ka/leader")
        assert etcd.connections_opened == 1  # the refused attempt never counted as opened
    finally:
        etcd.close()


def test_a_frozen_etcd_ends_a_call_on_a_kept_connection_with_an_error(etcd_server: EtcdServer) -> None:
    etcd = EtcdGateway([etcd_server.endpoint], timeout=1.0)
    keeper = EtcdGateway([etcd_server.endpoint], timeout=1.0)  # as the lease keeper: its own client
    pid = etcd_server.pid
    assert pid is not None
    try:
        lease = keeper.grant_lease(30)
        etcd.put("/service/ka/leader", "pg0", lease)
        assert (etcd.connections_opened, keeper.connections_opened) == (1, 1)
        etcd_server.suspend()
        wait_stopped(pid)
        try:
            t0 = time.monotonic()
            with pytest.raises(DCSError, match="timed out"):
                etcd.get_prefix("/service/ka/")
            read_took = time.monotonic() - t0
            t0 = time.monotonic()
            with pytest.raises(DCSError, match="timed out"):
                keeper.keepalive(lease)
            keepalive_took = time.monotonic() - t0
            print(f"frozen etcd, timeout 1.0 s: read failed after {read_took:.3f} s, "
                  f"keepalive after {keepalive_took:.3f} s")
        finally:
            etcd_server.resume()
        # The timed-out connection was dropped (its answer could still arrive): a new one is used.
        assert etcd.get("/service/ka/leader")[0] == b"pg0"
        assert etcd.connections_opened == 2
    finally:
        etcd.close()
        keeper.close()


def test_each_thread_gets_a_connection_of_its_own_and_they_are_kept(etcd_server: EtcdServer) -> None:
    # The daemon's client is used by its HA loop and by REST API threads at once: two requests in
    # flight never share a connection, and both connections are kept for the next calls.
    import threading

    etcd = EtcdGateway([etcd_server.endpoint], timeout=3.0)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                etcd.put(f"/service/ka/t{n}", str(i))
                barrier.wait(10)
                assert etcd.get(f"/service/ka/t{n}")[0] == str(i).encode()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            barrier.abort()

    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        print(f"2 threads x 60 requests: {etcd.connections_opened} connections")
        assert etcd.connections_opened <= 2
    finally:
        etcd.close()
