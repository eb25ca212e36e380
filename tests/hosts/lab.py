"""One scenario's run: the workload in the clients' namespace, a sampler in the controller, the
nemesis notes, and at the end the checker, the history file and the figures.

    run = lab.run("leader isolated")      # waits for a healthy cluster, starts client + sampler
    run.nemesis(lambda: topo.isolate(leader.ns.name), "isolate the leader")
    ...
    outcome = run.finish()                # heal, recover, check; writes <out>/<scenario>.history
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from checker import Outcome, check, render
from client import LISTS
from hostcluster import HostCluster, HostNode
from patronihosts import system
from topology import Topology

from hatui.launcher import Proc

FIGURES_ENV = "HATUI_HOSTS_FIGURES"  # a JSON-lines file the outer run prints as the final table
OUT_ENV = "HATUI_HOSTS_OUT"  # where the history files go
CLIENT_SCRIPT = Path(__file__).with_name("client.py")


def out_dir() -> Path:
    path = Path(os.environ.get(OUT_ENV) or f"/tmp/hatui-partitions-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    path.mkdir(parents=True, exist_ok=True)
    os.environ[OUT_ENV] = str(path)
    return path


class Sampler(threading.Thread):
    """Once a second: which hosts take a write, and who holds the leader key."""

    def __init__(self, cluster: HostCluster, events: list[dict]) -> None:
        super().__init__(daemon=True, name="hosts-sampler")
        self.cluster, self.events = cluster, events
        self.stop_event = threading.Event()
        self.pool = ThreadPoolExecutor(len(cluster.nodes))

    def run(self) -> None:
        while not self.stop_event.is_set():
            began = time.monotonic()
            t = time.time()
            flags = list(self.pool.map(lambda n: n.is_writable(), self.cluster.nodes))
            try:
                leader = self.cluster.etcd_get("/service/batman/leader")
            except OSError:
                leader = None
            self.events.append({"t": t, "op": "sample", "leader": leader,
                                "writable": [n.name for n, w in zip(self.cluster.nodes, flags) if w]})
            self.stop_event.wait(max(0.0, 1.0 - (time.monotonic() - began)))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(15)
        self.pool.shutdown(wait=False)


@dataclass
class Run:
    name: str
    cluster: HostCluster
    topo: Topology
    events: list[dict] = field(default_factory=list)
    client: Proc | None = None
    sampler: Sampler | None = None
    history_path: Path | None = None
    leader: HostNode | None = None
    finished: bool = False

    def start(self) -> "Run":
        self.leader = self.cluster.wait_healthy()
        if self.cluster.dcs.get("synchronous_mode"):
            # Faults start only once /sync names a standby: before that nobody may be promoted in
            # synchronous mode, whatever happens (a scenario started then would wait forever).
            self.cluster.wait_for_sync()
        with self.leader.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS hosts_writes (id bigint PRIMARY KEY)")
            conn.execute("CREATE TABLE IF NOT EXISTS hosts_lists (k int PRIMARY KEY, elems bigint[] NOT NULL)")
            conn.execute("TRUNCATE hosts_writes, hosts_lists")
            conn.execute("INSERT INTO hosts_lists SELECT k, '{}' FROM generate_series(0, %s) k", (LISTS - 1,))
        slug = self.name.replace(" ", "-").replace(",", "").replace("/", "-")
        self.history_path = out_dir() / f"{slug}.jsonl"
        self.history_path.unlink(missing_ok=True)
        ns = self.topo.client
        assert ns is not None
        self.topo._check_child(ns)
        hosts = ",".join(n.addr for n in self.cluster.nodes)  # type: ignore[attr-defined]
        self.client = Proc("client", ns.prefix() + [sys.executable, str(CLIENT_SCRIPT), str(self.history_path), hosts],
                           self.history_path.with_suffix(".client.log")).start()
        self.sampler = Sampler(self.cluster, self.events)
        self.sampler.start()
        self.wait_acks(20)
        return self

    # ---- the client's history --------------------------------------------------------------------
    def client_events(self) -> list[dict]:
        assert self.history_path is not None
        out = []
        try:
            text = self.history_path.read_text()
        except OSError:
            return out
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # the last line of a killed client may be cut
                pass
        return out

    def acks(self, since: float = 0.0) -> list[dict]:
        return [e for e in self.client_events() if e.get("op") == "ok" and e["t"] >= since]

    def wait_acks(self, n: int, timeout: float = 120, since: float | None = None) -> None:
        since = time.time() if since is None else since
        self.cluster.wait_for(lambda: len(self.acks(since)) >= n, timeout,
                              f"{n} acknowledged writes (client log {self.history_path})", interval=0.5)

    # ---- the nemesis -----------------------------------------------------------------------------
    def nemesis(self, action, text: str) -> float:
        t = time.time()
        self.events.append({"t": t, "op": "nemesis", "text": text})
        action()
        return t

    def note(self, text: str) -> None:
        """Something the test observed: printed, and kept in the history."""
        print(text)
        self.events.append({"t": time.time(), "op": "note", "text": text})

    def heal(self) -> float:
        return self.nemesis(self.topo.heal, "heal: every link restored")

    def leader_now(self) -> str | None:
        samples = [e for e in self.events if e.get("op") == "sample"]
        return samples[-1]["leader"] if samples else None

    # ---- the end ---------------------------------------------------------------------------------
    def finish(self, allow_loss: bool = False, recover_timeout: float = 240) -> Outcome:
        """Heal, wait for one leader with every member streaming and for new acknowledged writes,
        stop the workload, read the final primary, check, and write the history and figures."""
        if self.topo.links:
            self.heal()
        final = self.cluster.wait_healthy(recover_timeout)
        self.wait_acks(10)
        self.stop()
        writes, lists = self.final_state(final)
        events = self.client_events() + self.events
        outcome = check(events, writes, lists)
        assert self.history_path is not None
        text = render(events, outcome, f"{self.name}: final primary {final.name}")
        readable = self.history_path.with_suffix(".history")
        readable.write_text(text)
        self.finished = True
        self.record(outcome, final)
        print(f"history of '{self.name}': {readable}")
        problems = outcome.violations(allow_loss=allow_loss)
        assert not problems, f"{self.name}: " + "; ".join(problems) + f" (history: {readable})"
        return outcome

    def final_state(self, final: HostNode) -> tuple[set[int], dict[int, list[int]]]:
        with final.connect() as conn:
            writes = {r[0] for r in conn.execute("SELECT id FROM hosts_writes")}
            lists = {k: list(v) for k, v in conn.execute("SELECT k, elems FROM hosts_lists")}
        return writes, lists

    def record(self, outcome: Outcome, final: HostNode) -> None:
        path = os.environ.get(FIGURES_ENV)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps({"system": system(), "scenario": self.name, "final": final.name,
                                    **outcome.figures()}) + "\n")

    def abandon(self) -> None:
        """The test failed before finish(): stop the workload, keep what happened readable."""
        self.stop()
        if not self.finished and self.history_path is not None:
            readable = self.history_path.with_suffix(".history")
            readable.write_text(render(self.client_events() + self.events, None,
                                       f"{self.name}: INCOMPLETE, the test failed before the final check"))
            print(f"history of '{self.name}' (incomplete): {readable}")

    def stop(self) -> None:
        if self.client is not None and self.client.alive:
            self.client.signal(signal.SIGTERM)
            try:
                assert self.client.popen is not None
                self.client.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.client.kill()
        if self.sampler is not None:
            self.sampler.stop()
