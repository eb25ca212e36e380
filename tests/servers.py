"""Real servers for tests, benchmarks and the demo's tests: etcd, PostgreSQL, and any subprocess.

Nothing here imports pytest. Every process started through this module is recorded in a registry
and killed by PID (and process group) at interpreter exit, so a failing or interrupted test does
not leave servers behind. Servers listen on 127.0.0.1 only, on ports reserved through
`free_port()` so that parallel pytest-xdist workers never hand out the same port.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from hatui.osuser import ServerUser, run_as, server_user
from hatui.pgbin import find_bin_dir

ETCD_BIN = os.environ.get("HATUI_ETCD_BIN", "/usr/bin/etcd")
KEEP_DIRS = os.environ.get("HATUI_KEEP_TEST_DIRS") == "1"  # keep temp dirs and logs for a post-mortem


# --------------------------------------------------------------------------- temp dirs


def make_tempdir(prefix: str = "hatui-test-") -> Path:
    """A fresh dir under /tmp that the postgres OS user can traverse (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(d, 0o755)
    return d


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a temp dir, including files owned by the postgres user (fine as root or as owner)."""
    if not KEEP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- ports

# Per OS user: a dir another user created in /tmp would not be writable for us.
_PORT_DIR = Path(tempfile.gettempdir()) / f"hatui-test-ports-{os.getuid()}"
_PORT_TTL = 1800.0  # a reservation only has to cover the gap until the server binds the port
_my_ports: set[int] = set()
_port_lock = threading.RLock()  # re-entrant: the SIGTERM handler may run inside


def _reserve(port: int) -> bool:
    """Claim `port` across processes with a file holding our PID; reclaim stale claims."""
    _PORT_DIR.mkdir(mode=0o700, exist_ok=True)
    path = _PORT_DIR / str(port)
    # Written aside, then hard-linked into place: the claim appears atomically with its PID in
    # it, so a reader never mistakes a half-written claim for a stale one.
    tmp = _PORT_DIR / f".{port}.{os.getpid()}.{threading.get_ident()}"
    tmp.write_text(str(os.getpid()))
    try:
        for _ in range(2):
            try:
                os.link(tmp, path)
            except FileExistsError:
                try:
                    owner = int(path.read_text() or "0")
                    age = time.time() - path.stat().st_mtime
                except (OSError, ValueError):
                    owner, age = 0, _PORT_TTL
                if owner and _pid_alive(owner) and age < _PORT_TTL:
                    return False
                path.unlink(missing_ok=True)
                continue
            _my_ports.add(port)
            return True
        return False
    finally:
        tmp.unlink(missing_ok=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on and no other test process has been given."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports. All are bound at once while choosing, so they differ."""
    with _port_lock:
        socks: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < n:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
                if port not in _my_ports and _reserve(port):
                    ports.append(port)
        finally:
            for s in socks:
                s.close()
        return ports


def _release_ports() -> None:
    for port in list(_my_ports):
        path = _PORT_DIR / str(port)
        try:
            if path.read_text() == str(os.getpid()):
                path.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------- process helpers


def _pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _proc_starttime(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _scan_proc() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, state) of every process, from one pass over /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out.append((int(entry), int(fields[1]), int(fields[2]), fields[0]))
    return out


def live_processes() -> list[tuple[int, int]]:
    """(pid, ppid) of every process that is not a zombie."""
    return [(pid, ppid) for pid, ppid, _pg, st in _scan_proc() if st not in ("Z", "X")]


def process_args(pid: int) -> list[bytes]:
    """A process's command line ([] when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def process_environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def process_state(pid: int) -> str:
    """A process's state letter in /proc (T: stopped, as by SIGSTOP); "" when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def print_logs(nodes, lines: int = 40) -> None:
    """The last lines of each node's daemon log, for a failed test's report."""
    for node in nodes:
        try:
            text = node.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        print(f"----- {node.name} -----")
        print("\n".join(text))


def keep_if_failed(request, base: str | os.PathLike, nodes, log_lines: int = 40) -> None:
    """A test's temp dir afterwards: removed; after a failed test kept, and the last lines of its
    nodes' daemon logs printed (`request`: the test's pytest request)."""
    rep = getattr(request.node, "_hatui_rep_call", None)
    if rep is not None and rep.failed:
        print_logs(nodes, log_lines)
        print(f"logs kept in {base}")
    else:
        remove_tree(base)


def healthy_for_each_test(live, request) -> Iterator:
    """The body of a fixture that hands one module-wide cluster (`live`, with .healthy() and
    .c.nodes) to each test: healthy again first; the nodes' logs printed after a failed test."""
    live.healthy()
    yield live
    rep = getattr(request.node, "_hatui_rep_call", None)
    if rep is not None and rep.failed:
        print_logs(live.c.nodes)


def pids_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    return [pid for pid, _pp, pg, st in _scan_proc() if pg == pgid and st not in ("Z", "X")]


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants. PostgreSQL's children setsid() into their own groups,
    so the process group alone does not find a postmaster's backends; parentage does."""
    procs = _scan_proc()
    children: dict[int, list[int]] = {}
    for p, pp, _pg, st in procs:
        if st not in ("Z", "X"):
            children.setdefault(pp, []).append(p)
    tree, todo = [], [pid] if _pid_alive(pid) else []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def process_owner_uid(pid: int) -> int:
    """Real uid of a running process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Uid line for pid {pid}")


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_pids_gone(pids: Sequence[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_pid_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(_pid_alive(p) for p in pids)


class ManagedProcess:
    """A subprocess in its own session (so its whole process group can be killed), logged to a file.

    `user`: run as that OS user (see hatui.osuser), e.g. PostgreSQL when we are root.
    Signals go to the main PID; `stop()`/`kill()` also sweep the process group afterwards so no
    child (a PostgreSQL backend, a daemon's helper) outlives it.
    """

    def __init__(
        self,
        args: Sequence[str],
        log_path: str | os.PathLike,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        user: ServerUser | None = None,
        name: str | None = None,
    ) -> None:
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.user = user
        self.name = name or Path(self.args[0]).name
        self.popen: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        if self.alive:
            raise RuntimeError(f"{self.name} already running as pid {self.pid}")
        kwargs: dict = {}
        env = self.env
        if self.user is not None and not self.user.is_self:
            kwargs = self.user.popen_kwargs()
            env = self.user.env(env)
        if env is not None:
            kwargs["env"] = env
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
                **kwargs,
            )
        _register(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def pgid(self) -> int | None:
        # start_new_session makes the child a session and group leader: pgid == pid.
        return self.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def send_signal(self, sig: int) -> None:
        if self.alive:
            self.popen.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for exit; returns the exit code, or None on timeout."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Ask politely with `sig`; SIGKILL after `timeout`. Sweeps the process group either way."""
        if self.popen is None:
            return None
        family = self._family()
        if self.alive:
            self.send_signal(signal.SIGCONT)  # a suspended process cannot act on SIGTERM
            self.send_signal(sig)
            if self.wait(timeout) is None:
                self.popen.kill()
                self.popen.wait()
        self._sweep(family)
        _unregister(self)
        return self.popen.returncode

    def kill(self, group: bool = False) -> None:
        """SIGKILL the main PID (a crash). With group=True its whole process group dies too;
        otherwise children in the group (say a postmaster's backends) are left as a crash leaves them."""
        if self.popen is None:
            return
        family = self._family() if group else []
        if group:
            _signal_group(self.pgid, signal.SIGKILL)
        if self.alive:
            self.popen.kill()
        self.popen.wait()
        if group:
            self._sweep(family)

    def suspend(self) -> None:
        """SIGSTOP the main PID: it stays alive but stops answering (a hung node)."""
        self.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.send_signal(signal.SIGCONT)

    def _family(self) -> list[tuple[int, int | None]]:
        """(pid, start time) of the process, its descendants and its group, taken while the
        parent still lives: once it dies its children are re-parented and no longer traceable."""
        if not self.alive:
            pids = set(pids_in_group(self.pgid)) if self.pgid else set()
        else:
            pids = set(process_tree(self.pid)) | set(pids_in_group(self.pgid))
        pids.discard(self.pid)  # reaped through Popen, never signalled blindly by number
        return [(p, _proc_starttime(p)) for p in pids]

    def _sweep(self, family: list[tuple[int, int | None]]) -> None:
        """SIGKILL whatever of `family` (and of our process group) is still there."""
        if self.pgid is not None:
            family = family + [(p, _proc_starttime(p)) for p in pids_in_group(self.pgid)]
        left = []
        for pid, start in family:
            if start is not None and _proc_starttime(pid) == start and _pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                    left.append(pid)
                except ProcessLookupError:
                    pass
        if left:
            wait_pids_gone(left, 5.0)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} alive={self.alive}>"


# --------------------------------------------------------------------------- registry

_registry: dict[int, ManagedProcess] = {}
_adopted: dict[int, tuple[int | None, str]] = {}  # pid -> (start time, name)
_registry_lock = threading.RLock()  # re-entrant: the SIGTERM handler may run inside


def _register(proc: ManagedProcess) -> None:
    with _registry_lock:
        _registry[id(proc)] = proc


def _unregister(proc: ManagedProcess) -> None:
    with _registry_lock:
        _registry.pop(id(proc), None)


def adopt_pid(pid: int, name: str = "adopted") -> None:
    """Record a process we did not start directly (a postmaster started by `hatui daemon`) so
    `kill_all()` kills it too. Its start time is kept so a reused PID is never killed."""
    with _registry_lock:
        _adopted[pid] = (_proc_starttime(pid), name)


def postmaster_pid(data_dir: str | os.PathLike) -> int | None:
    """The PID in a data dir's postmaster.pid, if the file exists (it may be stale)."""
    try:
        return int((Path(data_dir) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def kill_postmaster(data_dir: str | os.PathLike, timeout: float = 10.0) -> None:
    """Cleanup for a PostgreSQL someone else started: SIGQUIT (immediate shutdown) its postmaster,
    then SIGKILL. Only a live process whose command line mentions `postgres` is touched."""
    pid = postmaster_pid(data_dir)
    if pid is None or not _pid_alive(pid):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"postgres" not in cmdline:
        return
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return
    if not wait_pids_gone([pid], timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_pids_gone([pid], 5.0)


def kill_all() -> None:
    """SIGKILL every process this interpreter started or adopted, with their process groups."""
    with _registry_lock:
        procs = list(_registry.values())
        adopted = dict(_adopted)
        _registry.clear()
        _adopted.clear()
    for proc in procs:
        try:
            proc.kill(group=True)
        except Exception as e:  # noqa: BLE001 - cleanup must go on for the others
            print(f"hatui tests: could not kill {proc!r}: {e}")
    for pid, (start, _name) in adopted.items():
        if start is not None and _proc_starttime(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _at_exit() -> None:
    kill_all()
    _release_ports()


atexit.register(_at_exit)


def _on_sigterm(signum: int, frame: object) -> None:
    # atexit does not run on a default SIGTERM death (CI time-out, xdist shutdown): clean up first.
    _at_exit()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


if (
    threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
):
    signal.signal(signal.SIGTERM, _on_sigterm)


# --------------------------------------------------------------------------- etcd


class EtcdServer:
    """One etcd member on 127.0.0.1 with its own data dir and log file (`<data_dir>.log`).

    `initial_cluster` is etcd's "name=http://127.0.0.1:PEER,..." string; None means a cluster of
    this member alone. Short raft timings make a single member elect itself almost at once; the
    3-member cluster uses etcd's defaults so a loaded 2-core machine does not flap leaders.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | os.PathLike,
        client_port: int,
        peer_port: int,
        initial_cluster: str | None = None,
        heartbeat_ms: int | None = None,
        election_ms: int | None = None,
        cluster_token: str | None = None,
    ) -> None:
        self.name = name
        self.data_dir = Path(data_dir)
        self.client_port = client_port
        self.peer_port = peer_port
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        single = initial_cluster is None
        self.heartbeat_ms = heartbeat_ms or (10 if single else 100)
        self.election_ms = election_ms or (100 if single else 1000)
        # A unique token per cluster: members of two test clusters can never join each other.
        self.cluster_token = cluster_token or f"hatui-test-{os.getpid()}-{client_port}"
        self.log_path = Path(f"{self.data_dir}.log")
        self.process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def args(self) -> list[str]:
        return [
            ETCD_BIN,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", self.cluster_token,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]  # fmt: skip

    def start(self) -> EtcdServer:
        """Start the member (again, after stop/kill: an existing data dir is reused)."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(self.args(), self.log_path, name=f"etcd {self.name}").start()
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=1) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30.0) -> EtcdServer:
        """Until /health says true (this member is up and the cluster has a leader)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"etcd {self.name} exited:\n{self._tail()}")
            if self.healthy():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"etcd {self.name} not healthy after {timeout}s:\n{self._tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process:
            self.process.stop(signal.SIGTERM, timeout)

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    def suspend(self) -> None:
        if self.process:
            self.process.suspend()

    def resume(self) -> None:
        if self.process:
            self.process.resume()

    def client(self, timeout: float | None = 5.0):
        """An `etcd3` client for this member (import kept lazy: benchmarks may not need it)."""
        import etcd3

        return etcd3.client(host="127.0.0.1", port=self.client_port, timeout=timeout)

    def _tail(self) -> str:
        return self.process.log_tail() if self.process else ""

    def __repr__(self) -> str:
        return f"<EtcdServer {self.name} {self.endpoint} alive={self.alive}>"


def reserve_ports(cluster):
    """Give a hatui.launcher.LocalCluster ports reserved across pytest-xdist workers (free_ports):
    its own choice could hand the same port to two workers starting at once."""
    ports = free_ports(2 + 2 * len(cluster.nodes))
    cluster.etcd_port, cluster.etcd_peer_port = ports[0], ports[1]
    for i, node in enumerate(cluster.nodes):
        node.api_port, node.pg_port = ports[2 + 2 * i], ports[3 + 2 * i]
    return cluster


class EtcdCluster:
    """`n` etcd members on loopback forming one cluster, each with its own dir under `base_dir`."""

    def __init__(self, base_dir: str | os.PathLike, n: int = 3, name_prefix: str = "etcd") -> None:
        self.base_dir = Path(base_dir)
        ports = free_ports(2 * n)
        names = [f"{name_prefix}{i}" for i in range(n)]
        initial = ",".join(f"{nm}=http://127.0.0.1:{ports[2 * i + 1]}" for i, nm in enumerate(names))
        token = f"hatui-test-{os.getpid()}-{ports[0]}"
        self.members = [
            EtcdServer(nm, self.base_dir / nm, ports[2 * i], ports[2 * i + 1], initial, cluster_token=token)
            for i, nm in enumerate(names)
        ]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self) -> EtcdCluster:
        for m in self.members:
            m.start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> EtcdCluster:
        for m in self.members:
            m.wait_ready(timeout)
        return self

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    def stop_member(self, i: int) -> None:
        self.members[i].stop()

    def start_member(self, i: int, wait: bool = True) -> EtcdServer:
        m = self.members[i].start()
        return m.wait_ready() if wait else m

    def kill_member(self, i: int) -> None:
        self.members[i].kill()

    def live_members(self) -> list[EtcdServer]:
        return [m for m in self.members if m.alive]

    def client(self, i: int | None = None, timeout: float | None = 5.0):
        """A client for member `i`, or for the first live member."""
        member = self.members[i] if i is not None else self.live_members()[0]
        return member.client(timeout)


# --------------------------------------------------------------------------- PostgreSQL


class PgInstance:
    """A standalone PostgreSQL (initdb + postgres) in `base_dir`, on 127.0.0.1:`port`.

    The postmaster is started directly (not through pg_ctl) so we hold its PID. As root it runs as
    the unprivileged server user; its socket goes into `base_dir` (Debian's /var/run/postgresql is
    not writable by that user). Superuser `postgres`, trust auth: it is a throwaway test server.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike,
        port: int | None = None,
        user: ServerUser | None = None,
        bin_dir: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.port = port or free_port()
        self.user = user or server_user()
        self.bin_dir = find_bin_dir(bin_dir)
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir
        self.log_path = self.base_dir / "postgres.log"
        self.settings = {"listen_addresses": "127.0.0.1", "fsync": "off", **(settings or {})}
        self.process: ManagedProcess | None = None

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=5"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def bin(self, name: str) -> str:
        return os.path.join(self.bin_dir, name)

    def initdb(self) -> PgInstance:
        self.user.make_dir(self.base_dir, 0o755)
        r = run_as(
            self.user,
            [self.bin("initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            cwd=self.base_dir,
            capture_output=True,
            text=True,
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return self

    def start(self) -> PgInstance:
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()
        args = [self.bin("postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-c", f"unix_socket_directories={self.socket_dir}"]  # fmt: skip
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        self.process = ManagedProcess(args, self.log_path, cwd=self.base_dir, user=self.user, name="postgres")
        self.process.start()
        return self

    def wait_ready(self, timeout: float = 30.0) -> PgInstance:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"postgres exited:\n{self.process.log_tail() if self.process else ''}")
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise TimeoutError(f"postgres not ready after {timeout}s:\n{self.process.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT to the postmaster), SIGKILL of the whole group after `timeout`."""
        if self.process:
            self.process.stop(signal.SIGINT, timeout)

    def kill(self) -> None:
        """SIGKILL the postmaster only, as a crash would (backends notice and exit on their own)."""
        if self.process:
            self.process.kill()

    def suspend(self) -> None:
        if self.process:
            self.process.suspend()

    def resume(self) -> None:
        if self.process:
            self.process.resume()

    def connect(self, **kwargs):
        import psycopg

        return psycopg.connect(self.dsn, **kwargs)

    def __repr__(self) -> str:
        return f"<PgInstance 127.0.0.1:{self.port} pid={self.pid} alive={self.alive}>"
