"""The workload, run in the clients' namespace: `python client.py OUT HOST[,HOST...]`.

Two threads, each with its own libpq multi-host connection (target_session_attrs=read-write,
as an application would connect):
- `write`: inserts unique ids 1, 2, 3... into hosts_writes;
- `append`: appends unique values to one of a few lists (a row with an int[] each), in turn.

Every operation is logged as one JSON line before it is sent (`invoke`) and after (`ok`,
`fail` when it certainly did not happen, `info` when it may have: the connection broke while
the statement was in flight). The file is flushed per line, so a killed client leaves a
complete history up to its last operation. Stops on SIGTERM.

No statement_timeout: cancelling a commit that waits for its synchronous standby returns
success with a warning although nothing was replicated, which is exactly what must not be
counted as acknowledged.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import psycopg

LISTS = 4
PAUSE = 0.05
APPEND_BASE = 1_000_000_000  # append values never collide with write ids


class History:
    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def log(self, **event) -> None:
        event["t"] = round(time.time(), 4)
        with self.lock:
            self.file.write(json.dumps(event, sort_keys=True) + "\n")


def certain_failure(exc: BaseException) -> bool:
    """Did the server certainly not apply the statement? Only a refusal before execution:
    read-only transaction (a standby or a demoted primary), integrity violation."""
    state = getattr(exc, "sqlstate", None) or ""
    return state.startswith(("25", "23"))


def worker(kind: str, conninfo: str, history: History, stop: threading.Event) -> None:
    conn = None
    n = 0
    while not stop.is_set():
        if conn is None:
            try:
                conn = psycopg.connect(conninfo, autocommit=True)
                host = conn.info.host
            except psycopg.Error as exc:
                history.log(op="connect-fail", f=kind, error=str(exc).strip().splitlines()[0][:200])
                stop.wait(0.2)
                continue
        n += 1
        if kind == "write":
            sql, args, event = "INSERT INTO hosts_writes (id) VALUES (%s)", (n,), {"id": n}
        else:
            value, key = APPEND_BASE + n, n % LISTS
            sql = "UPDATE hosts_lists SET elems = array_append(elems, %s) WHERE k = %s"
            args, event = (value, key), {"id": value, "key": key}
        history.log(op="invoke", f=kind, host=host, **event)
        try:
            conn.execute(sql, args)
            history.log(op="ok", f=kind, host=host, **event)
        except psycopg.Error as exc:
            history.log(op="fail" if certain_failure(exc) else "info", f=kind, host=host,
                        error=str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__,
                        **event)
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may raise anything on close
                pass
            conn = None
            stop.wait(0.1)
            continue
        stop.wait(PAUSE)


def main(argv: list[str]) -> int:
    out, hosts = argv[1], argv[2]
    conninfo = (f"host={hosts} port=5432 user=postgres password=zalando dbname=postgres "
                "target_session_attrs=read-write connect_timeout=2 tcp_user_timeout=5000 "
                "keepalives=1 keepalives_idle=2 keepalives_interval=1 keepalives_count=3")
    history = History(out)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [threading.Thread(target=worker, args=(k, conninfo, history, stop), daemon=True)
               for k in ("write", "append")]
    for t in threads:
        t.start()
    history.log(op="start", f="client")
    while not stop.is_set():
        stop.wait(0.5)
    for t in threads:
        t.join(15)
    history.log(op="stop", f="client")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
