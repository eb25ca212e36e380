"""Latency without `tc netem`: a TCP proxy run inside one host's namespace (issue 18).

    python delayproxy.py PORT MARK STATS '{"10.77.0.2": [300, 300], ...}'

The host's nftables redirect every TCP connection it opens to a delayed peer into this proxy
(127.0.0.1:PORT); the proxy reads the original destination (SO_ORIGINAL_DST), connects onward
with the socket mark MARK (which the redirect rule exempts, so the onward connection goes out
as usual, from the host's own address) and copies both ways, each chunk held back by the
peer's delay: [delay towards the peer, delay from the peer] in ms. So every byte between the
two hosts, whoever opened the connection, arrives that much later, in order, as with netem's
delay on both sides. The handshake itself is not delayed (the redirect answers it locally).

Loss stays with nftables (dropped packets on the real link are retransmitted by TCP). Every
second, and on SIGTERM, STATS gets {"PEER:PORT": {"conns": n, "chunks": n, "bytes": n}} for
what went through, so a test can show which traffic was delayed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import sys
import time

SO_ORIGINAL_DST = 80


def original_dst(sock: socket.socket) -> tuple[str, int]:
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


class Proxy:
    def __init__(self, mark: int, delays: dict[str, tuple[int, int]], stats_path: str) -> None:
        self.mark, self.delays, self.stats_path = mark, delays, stats_path
        self.stats: dict[str, dict[str, int]] = {}

    def count(self, key: str, field: str, n: int = 1) -> None:
        self.stats.setdefault(key, {"conns": 0, "chunks": 0, "bytes": 0})[field] += n

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            host, port = original_dst(sock)
        except OSError:
            writer.close()
            return
        key = f"{host}:{port}"
        out_ms, in_ms = self.delays.get(host, (0, 0))
        onward = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        onward.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.mark)
        onward.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(onward, (host, port))
            peer_reader, peer_writer = await asyncio.open_connection(sock=onward)
        except OSError:
            onward.close()
            writer.close()  # the application sees the refused/failed connection as a reset
            return
        self.count(key, "conns")
        try:
            await asyncio.gather(self.pipe(reader, peer_writer, out_ms / 1000, key),
                                 self.pipe(peer_reader, writer, in_ms / 1000, key))
        finally:
            writer.close()
            peer_writer.close()

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, key: str) -> None:
        """Copy reader to writer, each chunk written `delay` s after it was read, in order."""
        queue: asyncio.Queue = asyncio.Queue()

        async def send() -> None:
            try:
                while True:
                    due, data = await queue.get()
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if data is None:
                        if writer.can_write_eof():
                            writer.write_eof()
                        return
                    writer.write(data)
                    await writer.drain()
                    self.count(key, "chunks")
                    self.count(key, "bytes", len(data))
            except OSError:
                writer.close()

        sender = asyncio.create_task(send())
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((time.monotonic() + delay, data or None))
                if not data:
                    break
        except OSError:
            writer.close()  # a reset on one side resets the other, as a real connection would
            sender.cancel()
            return
        try:
            await sender
        except asyncio.CancelledError:
            pass

    def dump(self) -> None:
        tmp = self.stats_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.stats, f)
        os.replace(tmp, self.stats_path)

    async def main(self, port: int) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", port, reuse_address=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print(f"delaying TCP to {self.delays} via 127.0.0.1:{port}", flush=True)
        async with server:
            while not stop.is_set():
                self.dump()
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass
        self.dump()


if __name__ == "__main__":
    port, mark, stats = int(sys.argv[1]), int(sys.argv[2], 0), sys.argv[3]
    delays = {peer: (int(a), int(b)) for peer, (a, b) in json.loads(sys.argv[4]).items()}
    asyncio.run(Proxy(mark, delays, stats).main(port))
