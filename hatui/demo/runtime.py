"""The running demo: its processes, the faults the panel and `hatui demo ACTION` inject, the control socket."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..launcher import LocalNode
from .cluster import DemoCluster, find_templates, yaml_rt
from .common import (ACTIONS, LOCK_FILE, MARKER, NAMESPACE, SCOPE, STATE_FILE, DemoError, all_pids,
                     already_running_message, control_socket_path, read_state)
from .load import WriteLoad
from .procs import (children_of, cmdline, pid_stopped, postmasters_under, processes_naming, remove_path,
                    same_process, start_time, terminate)


@dataclass
class NodeState:
    name: str
    api_port: int
    pg_port: int
    config: str
    daemon_pid: int | None
    daemon: str  # running | frozen | stopped | killed | exited N | not started
    postgres_pid: int | None
    guard_pids: list[int] = field(default_factory=list)  # the daemon's fencing guard

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class DemoRuntime:
    """The demo's processes and the faults the panel (and `hatui demo ACTION`) inject."""

    def __init__(self, workdir: Path, nodes: int = 2, port_base: int | None = None, dcs: dict | None = None,
                 keep: bool = False, on_event: Callable[[str], None] | None = None, fencing: bool = True) -> None:
        self.workdir = Path(workdir).absolute()
        self.nodes_count = nodes
        self.port_base = port_base
        self.dcs = dict(dcs or {})
        self.keep = keep
        self.fencing = fencing
        self.on_event = on_event
        self.events: deque[tuple[float, str]] = deque(maxlen=200)
        self.stop_requested = threading.Event()
        self.started_at = time.time()
        self.cluster: DemoCluster | None = None  # type: ignore[assignment]
        self.load = WriteLoad(self)
        self.superuser = ("postgres", "zalando")
        self._lock_fd: int | None = None
        self._created_dir = False
        self._pids: dict[str, list[int]] = {}
        self._known: dict[str, tuple] = {}
        self._monitor: threading.Thread | None = None
        self._server: socket.socket | None = None
        self._stopped = False
        self._action_lock = threading.RLock()

    # --- lifecycle ------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Lock the working dir (or say who holds it), clean up after an earlier demo, lay it out."""
        d = self.workdir
        if d.is_symlink():
            raise DemoError(f"{d} is a symlink; refusing to use it as the demo's working dir")
        if d.exists():
            if d.stat().st_uid != os.geteuid():
                raise DemoError(f"{d} belongs to another user; choose another with --dir")
            entries = [p.name for p in d.iterdir()]
            if entries and MARKER not in entries:
                raise DemoError(f"{d} is not empty and was not made by `hatui demo`; choose another with --dir")
            self._created_dir = MARKER in entries  # an earlier demo made it: ours to remove
        else:
            d.mkdir(parents=True)
            self._created_dir = True
        os.chmod(d, 0o755)  # the postgres OS user must traverse it when we run as root
        fd = os.open(d / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DemoError(already_running_message(d)) from None
        self._lock_fd = fd
        (d / MARKER).write_text("This directory belongs to `hatui demo`.\n")
        self._clean_previous()

    def _clean_previous(self) -> None:
        d = self.workdir
        state = read_state(d)
        if state is not None:
            # daemons first (they stop their PostgreSQL and guard), etcd last
            order = sorted((state.get("pids") or {}).items(), key=lambda kv: ("daemon" not in kv[0], kv[0] == "etcd"))
            for pid, started in all_pids({"pids": dict(order)}):
                if same_process(pid, started):
                    self._say(f"stopping process {pid} left by an earlier demo that did not stop")
                    terminate(pid)
        # Not recorded (the demo died between starting and recording one): daemons and etcd name
        # our working dir on their command line, which nothing else does.
        for pid in processes_naming(d):
            self._say(f"stopping process {pid} ({cmdline(pid)[:60]}...) left by an earlier demo")
            terminate(pid)
        for pid in postmasters_under(d / "data"):
            self._say(f"stopping PostgreSQL {pid} left in {d / 'data'} by an earlier demo")
            terminate(pid, signal.SIGQUIT)
        old = [p for p in d.iterdir() if p.name not in (LOCK_FILE, MARKER)]
        if old:
            self._say(f"removing the previous demo's data in {d}")
        for p in old:
            remove_path(p)

    def build(self) -> DemoCluster:
        self._check_binaries()
        y = yaml_rt()
        templates = [y.load(p.read_text()) for p in find_templates()]
        su = ((templates[0].get("postgresql") or {}).get("authentication") or {}).get("superuser") or {}
        self.superuser = (str(su.get("username", "postgres")), str(su.get("password", "zalando")))
        scope = str(templates[0].get("scope") or SCOPE)
        # port_base None: the talk's ports where free; 0: kernel-chosen; N: N, N+1, ... (free ones)
        self.cluster = DemoCluster(self.workdir, nodes_count=self.nodes_count, scope=scope,
                                   port_base=self.port_base or None, dcs=self.dcs, templates=templates,
                                   talk_ports=self.port_base is None)
        if not self.fencing:
            # The talk's Patroni had no guard: a killed daemon left a writable primary behind.
            self.cluster.extra_node = {"fencing": {"enabled": False}}
        self.cluster.write_configs()
        return self.cluster

    @staticmethod
    def _check_binaries() -> None:
        """Say what is missing before starting anything (./run.sh demo installs both)."""
        from ..launcher import ETCD_BIN
        from ..pgbin import find_bin_dir

        if not os.access(ETCD_BIN, os.X_OK):
            raise DemoError(f"etcd not found ({ETCD_BIN}); install Debian's etcd-server package "
                            "(./run.sh demo does it for you)")
        try:
            find_bin_dir(None)
        except Exception as exc:  # noqa: BLE001 - any failure here means "no usable PostgreSQL"
            raise DemoError(f"{exc} (./run.sh demo does it for you)") from None

    def start_etcd(self) -> None:
        c = self.cluster
        c.start_etcd()
        self._remember("etcd", c.etcd.pid)
        self._say(f"etcd {c.etcd_endpoint} started (pid {c.etcd.pid}), data in {self.workdir / 'etcd'}")
        self.save_state()

    def start_nodes(self, timeout: float = 120.0) -> bool:
        """Start node 0, wait for it to claim the initialize key (so it, as in the talk, creates
        the cluster), then the others: they start up while node 0 runs initdb. False if asked to
        stop meanwhile."""
        c = self.cluster
        self.start_daemon(c.nodes[0].name)
        deadline = time.monotonic() + timeout
        init_key = f"{NAMESPACE}{c.scope}/initialize"
        while not (self._etcd_has(init_key) or c.leader() is not None):
            if self.stop_requested.wait(0.2):
                return False
            d = c.nodes[0].daemon
            if d is not None and not d.alive:
                raise DemoError(f"the daemon of {c.nodes[0].name} exited; see {c.nodes[0].log_path}")
            if time.monotonic() > deadline:
                raise DemoError(f"{c.nodes[0].name} did not start the cluster within {timeout:g}s; see {c.nodes[0].log_path}")
        for node in c.nodes[1:]:
            self.start_daemon(node.name)
        return True

    def _etcd_has(self, key: str) -> bool:
        import base64
        import urllib.request

        body = json.dumps({"key": base64.b64encode(key.encode()).decode(), "keys_only": True}).encode()
        try:
            req = urllib.request.Request(f"http://{self.cluster.etcd_endpoint}/v3/kv/range", body)
            with urllib.request.urlopen(req, timeout=2) as r:
                return bool(json.loads(r.read()).get("kvs"))
        except (OSError, ValueError):
            return False

    def wait_streaming(self, timeout: float = 120.0) -> bool:
        """True once every replica reports streaming replication (the demo's "ready")."""
        c = self.cluster
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = c.leader()
            if leader is not None:
                ok = True
                for node in c.nodes:
                    if node.name == leader:
                        continue
                    status, body = node.rest("/patroni", timeout=1.0)
                    if not (status == 200 and isinstance(body, dict) and body.get("replication_state") == "streaming"):
                        ok = False
                        break
                if ok:
                    return True
            if self.stop_requested.wait(0.2):
                return False
        return False

    def start_monitor(self) -> None:
        self._monitor = threading.Thread(target=self._watch, name="demo-monitor", daemon=True)
        self._monitor.start()

    def stop(self) -> list[str]:
        """Stop everything this demo started, by PID; remove the data unless --keep. Idempotent."""
        with self._action_lock:  # no start_daemon() can slip in after this
            if self._stopped:
                return []
            self._stopped = True
        self.stop_requested.set()
        lines: list[str] = []
        self.load.stop()
        self._close_server()
        c = self.cluster
        if c is not None:
            c.signal_daemons_to_stop()
            for node in c.nodes:
                if node.daemon is not None and node.daemon.pid:
                    node.daemon.stop(timeout=60)
                    lines.append(f"{node.name}: daemon {node.daemon.pid} stopped")
            for node in c.nodes:
                pid = node.postmaster_pid()
                if pid:
                    terminate(pid, signal.SIGQUIT)  # a server whose daemon was killed: nobody stops it
                    lines.append(f"{node.name}: PostgreSQL {pid} (unmanaged) stopped")
            if c.etcd is not None and c.etcd.pid:
                c.etcd.stop()
                lines.append(f"etcd {c.etcd.pid} stopped")
        # Anything we ever started and that is somehow still there (a fencing guard, say).
        for pid, started in all_pids({"pids": self._pids}):
            if same_process(pid, started):
                terminate(pid)
                lines.append(f"process {pid} stopped")
        if self._monitor is not None:
            self._monitor.join(timeout=3)
        if self.keep:
            self.save_state(stopped=True)
            lines.append(f"kept the data in {self.workdir} (logs in {self.workdir / 'logs'})")
        else:
            for p in list(self.workdir.iterdir()) if self.workdir.exists() else []:
                if p.name != LOCK_FILE:
                    remove_path(p)
            remove_path(self.workdir / LOCK_FILE)
            if self._created_dir:
                try:
                    self.workdir.rmdir()
                except OSError:
                    pass
            lines.append(f"removed {self.workdir}")
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        return lines

    # --- state ------------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.events.append((time.time(), text))
        if self.on_event is not None:
            try:
                self.on_event(text)
            except Exception:  # noqa: BLE001 - telling must never stop doing
                pass

    def _remember(self, what: str, pid: int | None) -> bool:
        """Record [pid, start time] of a process we started (or our daemons started). False when
        it is already gone (then there is nothing to stop, and its PID must not be printed)."""
        if not pid:
            return False
        known = self._pids.setdefault(what, [])
        if any(p == pid for p, _ in known):
            return True
        started = start_time(pid)
        if started is None:
            return False
        known.append([pid, started])
        return True

    def node(self, name: str) -> LocalNode:
        c = self.cluster
        if name in ("leader", "", None):
            leader = c.leader()
            if leader is None:
                raise DemoError("there is no leader right now; name a member")
            name = leader
        for node in c.nodes:
            if node.name == name:
                return node
        raise DemoError(f"no member {name!r}; members: {', '.join(n.name for n in c.nodes)}")

    def node_state(self, node: LocalNode) -> NodeState:
        d = node.daemon
        if d is None or d.popen is None:
            daemon, pid = "not started", None
        else:
            pid = d.pid
            code = d.popen.poll()
            if code is None:
                daemon = "frozen" if pid_stopped(pid) else "running"
            elif code == -signal.SIGKILL:
                daemon = "killed"
            elif code in (0, -signal.SIGTERM):
                daemon = "stopped"
            else:
                daemon = f"exited {code}"
        children = children_of(pid) if pid and daemon in ("running", "frozen") else []
        guards = [c for c in children if "hatui.daemon.fence" in cmdline(c)]
        return NodeState(node.name, node.api_port, node.pg_port, str(node.config_path), pid, daemon,
                         node.postmaster_pid(), guards)

    def states(self) -> list[NodeState]:
        return [self.node_state(n) for n in self.cluster.nodes] if self.cluster else []

    def status(self) -> dict:
        c = self.cluster
        return {
            "pid": os.getpid(),
            "dir": str(self.workdir),
            "scope": c.scope if c else SCOPE,
            "etcd": c.etcd_endpoint if c else None,
            "etcd_pid": c.etcd.pid if c and c.etcd else None,
            "nodes": [s.as_dict() for s in self.states()],
            "pids": self._pids,
            "started_at": self.started_at,
            "keep": self.keep,
        }

    def save_state(self, stopped: bool = False) -> None:
        data = self.status()
        data["stopped"] = stopped
        tmp = self.workdir / (STATE_FILE + ".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            tmp.replace(self.workdir / STATE_FILE)
        except OSError:
            pass

    def _watch(self) -> None:
        """Notice what changed (a daemon exited, a postmaster appeared) and say so once."""
        while not self.stop_requested.wait(0.5):
            changed = False
            for s in self.states():
                self._remember(f"{s.name} daemon", s.daemon_pid)
                # A postmaster can be gone between finding it and reading its start time (the
                # single-user crash recovery lives half a second): only a recorded PID is printed.
                pg_recorded = self._remember(f"{s.name} postgres", s.postgres_pid)
                for g in s.guard_pids:
                    new_guard = not any(p == g for p, _ in self._pids.get(f"{s.name} guard", []))
                    if new_guard and self._remember(f"{s.name} guard", g):
                        self._say(f"{s.name}: fencing guard running, pid {g}")
                key = (s.daemon_pid, s.daemon, s.postgres_pid)
                old = self._known.get(s.name)
                if old == key:
                    continue
                self._known[s.name] = key
                changed = True
                if old is None:
                    continue
                if old[2] != s.postgres_pid:
                    if s.postgres_pid:
                        if pg_recorded:
                            self._say(f"{s.name}: PostgreSQL running, pid {s.postgres_pid}")
                    else:
                        self._say(f"{s.name}: PostgreSQL is down")
                # kills, freezes and starts announce themselves; a daemon that ends on its own does not
                if (old[0], old[1]) != (s.daemon_pid, s.daemon) and (s.daemon == "stopped"
                                                                    or s.daemon.startswith("exited")):
                    self._say(f"{s.name}: daemon {s.daemon_pid} {s.daemon}")
            if changed:
                self.save_state()

    # --- the faults: one code path for the panel's keys and `hatui demo ACTION` ------------------
    def kill_daemon(self, name: str) -> str:
        """kill -9 the HA daemon: its PostgreSQL keeps running, unmanaged (the talk's ^Z + kill -9)."""
        with self._action_lock:
            node = self.node(name)
            d = node.daemon
            if d is None or not d.alive:
                raise DemoError(f"the daemon of {node.name} is not running")
            pid = d.pid
            d.kill()
            if self.fencing:
                msg = (f"killed the daemon of {node.name} (pid {pid}) with SIGKILL; its fencing guard stops its "
                       "PostgreSQL and, if it was the leader, releases the leader key")
            else:
                msg = (f"killed the daemon of {node.name} (pid {pid}) with SIGKILL; its PostgreSQL keeps running "
                       "and its leader key expires after ttl")
            self._say(msg)
            self.save_state()
            return msg

    def kill_postgres(self, name: str) -> str:
        """kill -9 the postmaster: the daemon sees PostgreSQL gone and acts (restart, or failover)."""
        with self._action_lock:
            node = self.node(name)
            pid = node.postmaster_pid()
            if not pid:
                raise DemoError(f"PostgreSQL of {node.name} is not running")
            os.kill(pid, signal.SIGKILL)
            msg = f"killed PostgreSQL of {node.name} (postmaster pid {pid}) with SIGKILL"
            self._say(msg)
            return msg

    def freeze(self, name: str) -> str:
        with self._action_lock:
            node = self.node(name)
            d = node.daemon
            if d is None or not d.alive:
                raise DemoError(f"the daemon of {node.name} is not running")
            if pid_stopped(d.pid):
                raise DemoError(f"the daemon of {node.name} is already frozen")
            d.signal(signal.SIGSTOP)
            msg = (f"froze the daemon of {node.name} (pid {d.pid}, SIGSTOP, the talk's ^Z): it no longer "
                   "renews its key")
            self._say(msg)
            return msg

    def resume(self, name: str) -> str:
        with self._action_lock:
            node = self.node(name)
            d = node.daemon
            if d is None or not d.alive or not pid_stopped(d.pid):
                raise DemoError(f"the daemon of {node.name} is not frozen")
            d.signal(signal.SIGCONT)
            msg = f"resumed the daemon of {node.name} (pid {d.pid}, SIGCONT)"
            self._say(msg)
            return msg

    def toggle_freeze(self, name: str) -> str:
        node = self.node(name)
        d = node.daemon
        if d is not None and d.alive and pid_stopped(d.pid):
            return self.resume(name)
        return self.freeze(name)

    def start_daemon(self, name: str) -> str:
        with self._action_lock:
            if self._stopped:
                raise DemoError("the demo is stopping")
            node = self.node(name)
            if node.daemon is not None and node.daemon.alive:
                raise DemoError(f"the daemon of {node.name} is already running (pid {node.daemon.pid})")
            self.cluster.start_node(self.cluster.nodes.index(node))
            self._remember(f"{node.name} daemon", node.daemon.pid)
            self.save_state()  # recorded before anything else can fail
            msg = f"started the daemon of {node.name} (pid {node.daemon.pid}, config {node.config_path})"
            self._say(msg)
            return msg

    def write_row(self, name: str) -> str:
        """The talk's `CREATE TABLE splitbrain()`: a write straight to one member, no proxy, no check."""
        import psycopg

        node = self.node(name)
        user, password = self.superuser
        try:
            with psycopg.connect(host="127.0.0.1", port=node.pg_port, user=user, password=password,
                                 dbname="postgres", autocommit=True, connect_timeout=3,
                                 application_name="hatui-demo") as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS splitbrain(at timestamptz NOT NULL DEFAULT now(), "
                             "via text)")
                conn.execute("INSERT INTO splitbrain(via) VALUES (%s)", (node.name,))
                rows = conn.execute("SELECT count(*) FROM splitbrain").fetchone()[0]
        except psycopg.errors.ReadOnlySqlTransaction:
            msg = f"{node.name} refused the write: it is a replica (read-only)"
            self._say(msg)
            return msg
        except psycopg.Error as exc:
            raise DemoError(f"write to {node.name} failed: {str(exc).strip().splitlines()[0]}") from None
        msg = f"{node.name} accepted a row in table splitbrain ({rows} row{'s' if rows != 1 else ''} there now)"
        self._say(msg)
        return msg

    def act(self, action: str, member: str | None) -> str:
        target = member or "leader"
        table: dict[str, Callable[[str], str]] = {
            "kill-daemon": self.kill_daemon, "kill-postgres": self.kill_postgres, "freeze": self.freeze,
            "resume": self.resume, "start": self.start_daemon, "write": self.write_row,
        }
        if action == "status":
            return json.dumps(self.status())
        if action == "stop":
            self.stop_requested.set()
            return "stopping the demo"
        if action not in table:
            raise DemoError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        return table[action](target)

    # --- the control socket ---------------------------------------------------------------------
    def serve_control(self) -> None:
        path = control_socket_path(self.workdir)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(path))
        os.chmod(path, 0o600)  # only our user may kill our processes
        srv.listen(8)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), name="demo-control", daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                req = json.loads(conn.makefile("rb").readline() or b"{}")
                msg = self.act(str(req.get("action", "")), req.get("member"))
                reply = {"ok": True, "message": msg}
            except DemoError as exc:
                reply = {"ok": False, "message": str(exc)}
            except Exception as exc:  # noqa: BLE001 - a bad request must not kill the demo
                reply = {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass

    def _close_server(self) -> None:
        if self._server is not None:
            try:
                self._server.close()
            except OSError:
                pass
            self._server = None
            try:
                control_socket_path(self.workdir).unlink()
            except OSError:
                pass
