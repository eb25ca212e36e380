"""What the benchmark watches with: the leader key in etcd, a client that writes every 10 ms,
and a REST call. Every time is time.monotonic(), so times from threads compare directly."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

# Before grpc loads: its fork handlers crash children we fork (PostgreSQL tools, Patroni) while a
# watch thread is busy. The children exec at once and need none of them.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")


import etcd3
import psycopg
from systems import SUPERUSER


class LeaderWatch:
    """Records (monotonic time, 'put'|'delete', value) for every change of <ns><scope>/leader."""

    def __init__(self, endpoint: str, scope: str, namespace: str = "/service/") -> None:
        host, port = endpoint.rsplit(":", 1)
        self.key = f"{namespace}{scope}/leader"
        self.client = etcd3.client(host=host, port=int(port), timeout=5)
        self.events: list[tuple[float, str, str]] = []
        self.wall: dict[float, float] = {}  # monotonic -> wall clock, to find an event in the daemons' logs
        self._lock = threading.Lock()
        self._watch_id = self.client.add_watch_callback(self.key, self._on_event)

    def _on_event(self, response) -> None:
        now, wall = time.monotonic(), time.time()
        if isinstance(response, Exception):
            return
        with self._lock:
            for ev in response.events:
                kind = "delete" if isinstance(ev, etcd3.events.DeleteEvent) else "put"
                self.events.append((now, kind, ev.value.decode() if ev.value else ""))
            self.wall[now] = wall

    def first(self, kind: str, after: float) -> tuple[float, str] | None:
        with self._lock:
            for t, k, v in self.events:
                if k == kind and t >= after:
                    return t, v
        return None

    def wall_time(self, t: float) -> str:
        w = self.wall.get(t)
        return time.strftime("%H:%M:%S", time.gmtime(w)) + f".{int(w % 1 * 1000):03d} UTC" if w else "?"

    def close(self) -> None:
        # etcd3's watch thread raises "Channel closed" when its client closes under it: expected.
        previous = threading.excepthook
        threading.excepthook = lambda a: None if a.exc_type is ValueError else previous(a)
        try:
            self.client.cancel_watch(self._watch_id)
        finally:
            self.client.close()
        time.sleep(0.1)
        threading.excepthook = previous


@dataclass
class Writer:
    """A client that commits one numbered row every `interval` s to whichever node is writable
    (libpq multi-host, target_session_attrs=read-write), reconnecting after any error."""

    ports: list[int]
    interval: float = 0.010
    ok: list[tuple[float, int]] = field(default_factory=list)  # (commit time, seq)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def conninfo(self) -> str:
        hosts = ",".join("127.0.0.1" for _ in self.ports)
        ports = ",".join(str(p) for p in self.ports)
        return (
            f"host={hosts} port={ports} user={SUPERUSER[0]} password={SUPERUSER[1]} dbname=postgres "
            "target_session_attrs=read-write connect_timeout=1"
        )

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-writer")
        self._thread.start()
        return self

    def _run(self) -> None:
        conn = None
        seq = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            seq += 1
            try:
                if conn is None:
                    conn = psycopg.connect(self.conninfo(), autocommit=True)
                conn.execute("INSERT INTO bench_writes (seq, at) VALUES (%s, now())", (seq,))
                self.ok.append((time.monotonic(), seq))
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    try:
                        conn.close()
                    except psycopg.Error:
                        pass
                conn = None
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()  # behind (a slow connect): do not burst to catch up
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def max_gap(self) -> float:
        """The longest time between two successful commits."""
        times = [t for t, _ in self.ok]
        return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))

    def committed(self) -> set[int]:
        return {s for _, s in self.ok}


def rest_post(api_url: str, path: str, body: dict, timeout: float = 60) -> tuple[int, str]:
    req = urllib.request.Request(
        api_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)
