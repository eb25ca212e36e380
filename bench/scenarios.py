"""One function per measured event. Each takes a healthy System, returns a dict of figures
(seconds unless the name says otherwise), and leaves the system healthy again."""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from probes import Writer, rest_post
from systems import System, dsn, ensure_tables, pg_ctl, try_write, wait, writable

log = logging.getLogger("bench")


def _leader_and_replica(s: System) -> tuple[str, str]:
    leader = s.wait_healthy(180)
    return leader, s.other(leader).name


def crash_failover_and_rejoin(s: System, ttl: int) -> dict:
    """Figure 1 (leader host crash until a write commits on the new primary) and figure 4
    (restart the crashed, then diverged, former primary until it streams from the new one)."""
    old, new = _leader_and_replica(s)
    ensure_tables(s.node(old).pg_port)
    watch = s.watch
    new_port = s.node(new).pg_port
    t_kill = time.monotonic()
    s.crash_host(old)
    wait(lambda: try_write(new_port), ttl + 90, f"{s.label}: a write on {new}", 0.02)
    t_write = time.monotonic()
    deleted = watch.first("delete", t_kill)
    # Nobody deletes the lock of a crashed peer: it goes when its lease expires, and etcd's delete
    # event is the first moment another node can take it.
    t_free = deleted[0] if deleted else None
    out = {"failover": t_write - t_kill}
    if t_free is not None:
        out["lock_free_after_kill"] = t_free - t_kill
        out["reaction"] = t_write - t_free
        out["lock_free_at"] = watch.wall_time(t_free)  # to read the daemons' logs against
    out.update(rejoin_diverged(s, old, new))
    return out


def rejoin_diverged(s: System, old: str, new: str) -> dict:
    """Make the crashed former primary diverge (one commit on its own timeline, then an immediate
    stop, as a crash), restart its daemon and time it until the new primary sees it streaming."""
    node = s.node(old)
    sock = node.data_dir.parent / f"{old}-socket"
    opts = f"-p {node.pg_port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock}"
    res = pg_ctl(node, "start", "-w", "-t", "60", "-o", opts, "-l", str(sock / "bench-diverge.log"))
    if res.returncode != 0:
        raise RuntimeError(
            f"{s.label}: could not start {old} alone to diverge it: {res.stderr or res.stdout}"
        )
    with psycopg.connect(dsn(node.pg_port, 5), autocommit=True) as conn:
        conn.execute("INSERT INTO bench_probe (at) VALUES (now())")  # WAL the new primary never saw
    pg_ctl(node, "stop", "-m", "immediate", "-w")
    new_port = s.node(new).pg_port

    def streaming() -> bool:
        try:
            with psycopg.connect(dsn(new_port), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE application_name = %s "
                    "AND state = 'streaming'",
                    (old,),
                ).fetchone()
                return bool(row and row[0])
        except psycopg.Error:
            return False

    log_start = node.log_path.stat().st_size
    t0 = time.monotonic()
    s.cluster.start_node(s.index(old))
    wait(streaming, 180, f"{s.label}: {old} streaming again", 0.05)
    rejoin = time.monotonic() - t0
    with open(node.log_path, errors="replace") as f:
        f.seek(log_start)
        log_text = f.read()
    s.wait_healthy(180)
    return {"rejoin": rejoin, "rewound": "rewind" in log_text.lower()}


def switchover(s: System) -> dict:
    """Figure 3: a client commits a numbered row every 10 ms during a REST switchover; the longest
    time without a commit, and committed rows missing on the new primary afterwards."""
    old, new = _leader_and_replica(s)
    ensure_tables(s.node(old).pg_port)
    writer = Writer([n.pg_port for n in s.cluster.nodes]).start()
    try:
        wait(lambda: len(writer.ok) >= 50, 30, f"{s.label}: the writer to commit", 0.05)
        t0 = time.monotonic()
        requested_at = time.strftime("%H:%M:%S UTC", time.gmtime())  # to read the daemons' logs against
        status, body = rest_post(s.node(old).api_url, "/switchover", {"leader": old, "candidate": new})
        # 503 is "status unknown after a while; may still be in progress": keep measuring.
        if status not in (200, 202, 503):
            raise RuntimeError(f"{s.label}: switchover refused: {status} {body}")
        wait(lambda: writable(s.node(new).pg_port), 60, f"{s.label}: {new} writable", 0.05)
        # Keep writing until the writer has committed on the new primary for a second.
        wait(
            lambda: (
                writer.ok and writer.ok[-1][0] > time.monotonic() - 0.05 and any(t > t0 for t, _ in writer.ok)
            ),
            60,
            f"{s.label}: writes after the switchover",
            0.05,
        )
        time.sleep(1.0)
    finally:
        writer.stop()
    committed = writer.committed()
    with psycopg.connect(dsn(s.node(new).pg_port, 5), autocommit=True) as conn:
        present = {r[0] for r in conn.execute("SELECT seq FROM bench_writes")}
        conn.execute("TRUNCATE bench_writes")
    gap = writer.max_gap()
    s.wait_healthy(180)
    return {
        "switchover_gap": gap,
        "rows_lost": len(committed - present),
        "rows_committed": len(committed),
        "rest_status": status,
        "requested_at": requested_at,
    }


def daemon_death(s: System, ttl: int) -> dict:
    """Figure 2: kill -9 only the leader's daemon. Time until a write commits on the replica, and
    whether the old primary still commits writes after its lock's lease expired (split brain)."""
    old, new = _leader_and_replica(s)
    ensure_tables(s.node(old).pg_port)
    watch = s.watch
    old_ok: list[float] = []
    stop = threading.Event()

    def poke_old() -> None:
        while not stop.is_set():
            if try_write(s.node(old).pg_port):
                old_ok.append(time.monotonic())
            time.sleep(0.05)

    poker = threading.Thread(target=poke_old, daemon=True)
    try:
        t_kill = time.monotonic()
        helpers = s.kill_daemon(old)
        poker.start()
        wait(lambda: try_write(s.node(new).pg_port), ttl + 90, f"{s.label}: a write on {new}", 0.02)
        t_new = time.monotonic()
        time.sleep(3.0)  # keep knocking on the old primary for a while after the promotion
        stop.set()
        poker.join(10)
        deleted = watch.first("delete", t_kill)
    finally:
        stop.set()
    t_free = deleted[0] if deleted else t_new
    after_free = [t for t in old_ok if t > t_free]
    out = {
        "daemon_failover": t_new - t_kill,
        "old_writable_after_expiry": bool(after_free),
        "old_writable_after_promotion": any(t > t_new for t in old_ok),
        # Negative: the old primary stopped taking writes before another node could take the lock.
        "old_last_write_vs_expiry": (old_ok[-1] - t_free) if old_ok else None,
        "old_commits_after_kill": len(old_ok),
        "helpers_alive": len(helpers),
    }
    if deleted:
        out["daemon_lock_free_after_kill"] = t_free - t_kill
    _recover(s, old)
    return out


def _recover(s: System, old: str) -> None:
    """Bring the node whose daemon died back (its daemon decides what to do with its PostgreSQL)."""
    s.cluster.start_node(s.index(old))
    try:
        s.wait_healthy(120)
    except TimeoutError:
        # Last resort so the next run starts healthy: crash the node and let it rejoin from scratch.
        log.warning(
            "%s: %s did not rejoin after its daemon restarted; crashing it and retrying", s.label, old
        )
        s.crash_host(old)
        s.cluster.start_node(s.index(old))
        s.wait_healthy(180)
