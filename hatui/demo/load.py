"""The demo's steady write load."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..launcher import LocalCluster


class LoadTarget(Protocol):
    """What the load needs from the demo (`DemoRuntime` implements it; the load never imports it)."""

    cluster: LocalCluster
    superuser: tuple[str, str]


@dataclass
class LoadStats:
    running: bool
    per_second: float
    commits: int
    errors: int
    member: str | None
    last_error: str


class WriteLoad:
    """A steady stream of small INSERTs to whichever member accepts writes, counting commits and
    errors. It connects with target_session_attrs=read-write over every member, as an application
    without a proxy would: after a daemon kill it keeps writing to the old primary (nothing fences
    it yet), which is the talk's point about split brain."""

    RATE = 50  # commits per second aimed at; enough to see, light enough for a laptop

    def __init__(self, runtime: LoadTarget) -> None:
        self.runtime = runtime
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()
        self.commits = 0
        self.errors = 0
        self.member: str | None = None
        self.last_error = ""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="demo-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def stats(self) -> LoadStats:
        now = time.monotonic()
        with self._lock:
            while self._recent and self._recent[0] < now - 1.0:
                self._recent.popleft()
            rate = float(len(self._recent))
        return LoadStats(self.running, rate, self.commits, self.errors, self.member, self.last_error)

    def _conninfo(self) -> str:
        nodes = self.runtime.cluster.nodes
        hosts = ",".join("127.0.0.1" for _ in nodes)
        ports = ",".join(str(n.pg_port) for n in nodes)
        user, password = self.runtime.superuser
        return (f"host={hosts} port={ports} user={user} password={password} dbname=postgres "
                "target_session_attrs=read-write connect_timeout=2 application_name=hatui-demo-load")

    def _run(self) -> None:
        import psycopg

        conn = None
        pause = 1.0 / self.RATE
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self._conninfo(), autocommit=True)
                    conn.execute("CREATE TABLE IF NOT EXISTS demo_load(id bigserial PRIMARY KEY, "
                                 "at timestamptz NOT NULL DEFAULT now())")
                    port = conn.info.port
                    self.member = next((n.name for n in self.runtime.cluster.nodes if n.pg_port == port), None)
                conn.execute("INSERT INTO demo_load DEFAULT VALUES")
                with self._lock:
                    self._recent.append(time.monotonic())
                self.commits += 1
            except Exception as exc:  # noqa: BLE001 - every failure is a data point of the demo
                self.errors += 1
                self.last_error = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                self.member = None
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass
                conn = None
                self._stop.wait(0.5)
                due = time.monotonic()
                continue
            # Paced on a schedule, not a fixed sleep, so round trips do not lower the rate.
            due = max(due + pause, time.monotonic() - 1.0)
            self._stop.wait(max(0.0, due - time.monotonic()))
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
