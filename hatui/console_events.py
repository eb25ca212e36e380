"""A recorded, deterministic event stream for the console: Patroni-shaped etcd keys, revision by
revision, plus the /patroni answers, the leader's lease and log lines a real run would show.

Snapshot tests (and anyone who wants to look at the console without a cluster) feed it to the app
with `RecordedSource`; the app then runs exactly the code it runs against etcd, minus the
network: the same Cluster model (`Cluster.from_kvs`), the same render path, a frozen clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Protocol

from .cluster import Cluster
from .etcd.store import clusters_from_kvs


class RecordingSink(Protocol):
    """What a recording feeds (the console app implements it; the recording never imports it)."""

    clock: Callable[[], datetime]

    def apply_snapshot(self, snapshot: object) -> None: ...

    def apply_patroni(self, scope: str, answers: dict[str, dict | None]) -> None: ...

    def apply_lease(self, scope: str, remaining: int | None) -> None: ...

    def feed_log_lines(self, member: str, lines: Iterable[str]) -> None: ...

NAMESPACE = "/service"
START = datetime(2026, 11, 25, 19, 46, 0, tzinfo=UTC)
LEASE_LEADER = 0x694D9A6B8F2C1A01
LEASE_REPLICA1 = 0x694D9A6B8F2C1A02
LEASE_REPLICA2 = 0x694D9A6B8F2C1A03
MB = 1024 * 1024

CONFIG = {
    "ttl": 30,
    "loop_wait": 10,
    "retry_timeout": 10,
    "maximum_lag_on_failover": 1048576,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {
            "wal_level": "replica",
            "hot_standby": "on",
            "wal_log_hints": "on",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "wal_keep_size": "128MB",
        },
    },
}
HISTORY = [
    [1, 50331808, "no recovery target specified", "2026-11-25T19:40:11.402113+00:00", "postgresql1"],
    [2, 52903928, "no recovery target specified", "2026-11-25T19:43:52.948134+00:00", "postgresql0"],
]


def _j(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _member(port: int, api: int, role: str, lsn: int, **extra: Any) -> dict:
    m = {
        "conn_url": f"postgres://127.0.0.1:{port}/postgres",
        "api_url": f"http://127.0.0.1:{api}/patroni",
        "state": "running",
        "role": role,
        "version": "4.1.5",
        "xlog_location": lsn,
    }
    if role == "replica":
        m.update(replay_lsn=lsn, receive_lsn=lsn, replication_state="streaming")
    m["timeline"] = 3
    m.update(extra)
    return m


@dataclass
class Step:
    """One etcd revision of scope batman: key (relative to the scope) -> (value, lease)."""

    revision: int
    keys: dict[str, tuple[str, int]] = field(default_factory=dict)


# WAL positions of the leader and the two replicas, one entry per revision. postgresql2 falls
# behind (a slow disk), past maximum_lag_on_failover near the end; postgresql1 keeps up.
_LEADER = [60 * MB + i * 256 * 1024 for i in range(12)]
_R1_BEHIND = [0, 0, 4096, 0, 8192, 0, 0, 16384, 0, 0, 4096, 0]
_R2_BEHIND = [0, 65536, 131072, 262144, 196608, 524288, 786432, 1048576, 1572864, 2097152, 2621440, 3145728]


def _decision(message: str, **facts: Any) -> dict:
    """A member's published decision (daemon/decisions.py), as the daemons write it."""
    return {"decision": {"message": message, "actions": [], "leader": "postgresql0", "timeline": 3,
                         **facts, "lease_ttl": 30, "since": "2026-11-25T19:44:02.118+00:00"}}


def _events() -> dict[str, tuple[str, int]]:
    """The event timeline the daemons recorded before the stream starts (events.py keys)."""
    rows = [
        ("failover", "postgresql1", "2026-11-25T19:40:11.512+00:00",
         ("postgresql1 took the leader lock: the leader postgresql0 vanished: its lease ended and took its member "
          "key with it (host, network or daemon down)"),
         {"previous": "postgresql0", "timeline": 2, "lsn": 50331808}),
        ("rewind", "postgresql0", "2026-11-25T19:40:40.020+00:00", "rewound from postgresql1 to follow it",
         {"source": "postgresql1", "timeline": 1}),
        ("switchover", "postgresql0", "2026-11-25T19:43:53.055+00:00",
         "postgresql0 took the leader lock: switchover requested from postgresql1 to postgresql0",
         {"previous": "postgresql1", "timeline": 3, "lsn": 52903928}),
        ("demote", "postgresql1", "2026-11-25T19:43:53.101+00:00",
         "demoted: switchover: demoting myself (Demoting self (graceful))", {"to": "postgresql0"}),
        ("config", "postgresql0", "2026-11-25T19:45:10.300+00:00",
         "dynamic configuration changed: postgresql.parameters.max_connections: 100 -> 200",
         {"changes": ["postgresql.parameters.max_connections: 100 -> 200"]}),
        ("pending_restart", "postgresql1", "2026-11-25T19:45:11.400+00:00",
         "needs a restart to apply: max_connections", {"parameters": ["max_connections"]}),
    ]
    out = {}
    for i, (kind, member, when, message, facts) in enumerate(rows):
        out[f"events/0000{i}-{member}"] = (_j({"kind": kind, "time": when, "member": member, "message": message,
                                               "facts": facts}), 0)
    return out


def batman_steps() -> list[Step]:
    steps = []
    for i, leader_lsn in enumerate(_LEADER):
        r1 = leader_lsn - _R1_BEHIND[i]
        r2 = leader_lsn - _R2_BEHIND[i]
        last = i == len(_LEADER) - 1
        keys = {
            "config": (_j(CONFIG), 0),
            "initialize": ("7712193093952314556", 0),
            "history": (_j(HISTORY), 0),
            "leader": ("postgresql0", LEASE_LEADER),
            "status": (
                _j(
                    {
                        "optime": leader_lsn,
                        "slots": {"postgresql1": r1, "postgresql2": r2},
                        "retain_slots": ["postgresql0", "postgresql1", "postgresql2"],
                    }
                ),
                0,
            ),
            "failover": ("{}", 0),
            "members/postgresql0": (
                _j(_member(5432, 8008, "primary", leader_lsn,
                           **_decision("no action. I am (postgresql0), the leader with the lock"))),
                LEASE_LEADER,
            ),
            "members/postgresql1": (
                _j(
                    _member(
                        5433,
                        8009,
                        "replica",
                        r1,
                        **(
                            {
                                "pending_restart": True,
                                "pending_restart_reason": {
                                    "max_connections": {"old_value": "100", "new_value": "200"}
                                },
                            }
                            if i >= 8
                            else {}
                        ),
                        **_decision("no action. I am (postgresql1), a secondary, and following a leader "
                                    "(postgresql0)", eligible=True),
                    )
                ),
                LEASE_REPLICA1,
            ),
            "members/postgresql2": (
                _j(
                    _member(5434, 8010, "replica", r2, tags={"nofailover": True, "dc": "backup"},
                            **_decision("no action. I am (postgresql2), a secondary, and following a leader "
                                        "(postgresql0)", eligible=False, why_not="it is tagged nofailover"))
                    if not last
                    else _member(5434, 8010, "replica", r2, tags={"dc": "backup"},
                                 **_decision("no action. I am (postgresql2), a secondary, and following a leader "
                                             "(postgresql0)", eligible=False,
                                             why_not="it lags 3.0 MB (3145728 bytes) behind, more than "
                                             "maximum_lag_on_failover (1048576 bytes)"))
                ),
                LEASE_REPLICA2,
            ),
        }
        keys.update(_events())
        steps.append(Step(revision=100 + i * 3, keys=keys))
    return steps


def cluster_of(step: Step, scope: str = "batman") -> Cluster:
    kvs = [
        (k, v, step.revision - (0 if k.startswith(("members/", "status")) else 50), lease)
        for k, (v, lease) in step.keys.items()
    ]
    return Cluster.from_kvs(scope, kvs, step.revision)


def recorded_clusters() -> list[Cluster]:
    """Every revision of batman, oldest first."""
    return [cluster_of(s) for s in batman_steps()]


def robin_namespace_rows(revision: int) -> list[tuple[str, bytes, int, int]]:
    """A second cluster under the same namespace: paused and without a leader."""
    base = f"{NAMESPACE}/robin/"
    cfg = dict(CONFIG, pause=True)
    rows = [
        (base + "config", _j(cfg).encode(), revision - 40, 0),
        (base + "initialize", b"7712193093952399999", revision - 60, 0),
        (
            base + "members/robin0",
            _j(_member(6432, 9008, "replica", 40 * MB, pause=True)).encode(),
            revision - 5,
            0x11,
        ),
        (
            base + "members/robin1",
            _j(dict(_member(6433, 9009, "replica", 40 * MB, pause=True), state="stopped")).encode(),
            revision - 5,
            0x12,
        ),
    ]
    return rows


def recorded_namespace() -> list[dict[str, Cluster]]:
    """The same stream seen by a console watching the whole namespace (batman and robin)."""
    out = []
    for step in batman_steps():
        rows = [
            (f"{NAMESPACE}/batman/{k}", v.encode(), step.revision - 1, lease)
            for k, (v, lease) in step.keys.items()
        ]
        out.append(clusters_from_kvs(NAMESPACE, rows + robin_namespace_rows(step.revision), step.revision))
    return out


def recorded_patroni(when: datetime) -> dict[str, dict]:
    """GET /patroni answers at the end of the stream (the replicas' replay times relative to `when`)."""
    leader_lsn = _LEADER[-1]
    r1 = leader_lsn - _R1_BEHIND[-1]
    r2 = leader_lsn - _R2_BEHIND[-1]

    def ts(seconds_ago: float) -> str:
        return (when - timedelta(seconds=seconds_ago)).isoformat(sep=" ")

    common = {
        "state": "running",
        "server_version": 150018,
        "timeline": 3,
        "database_system_identifier": "7712193093952314556",
        "dcs_last_seen": int(when.timestamp()),
    }
    return {
        "postgresql0": dict(
            common,
            role="primary",
            postmaster_start_time=ts(900),
            xlog={"location": leader_lsn},
            replication=[
                {
                    "usename": "replicator",
                    "application_name": n,
                    "client_addr": "127.0.0.1",
                    "state": "streaming",
                    "sync_state": "async",
                    "sync_priority": 0,
                }
                for n in ("postgresql1", "postgresql2")
            ],
            patroni={"version": "4.1.5", "scope": "batman", "name": "postgresql0"},
        ),
        "postgresql1": dict(
            common,
            role="replica",
            postmaster_start_time=ts(800),
            replication_state="streaming",
            xlog={
                "received_location": r1,
                "replayed_location": r1,
                "replayed_timestamp": ts(0.2),
                "paused": False,
            },
            pending_restart=True,
            patroni={"version": "4.1.5", "scope": "batman", "name": "postgresql1"},
        ),
        "postgresql2": dict(
            common,
            role="replica",
            postmaster_start_time=ts(700),
            replication_state="streaming",
            xlog={
                "received_location": r2 + 524288,
                "replayed_location": r2,
                "replayed_timestamp": ts(4.5),
                "paused": False,
            },
            tags={"dc": "backup"},
            patroni={"version": "4.1.5", "scope": "batman", "name": "postgresql2"},
        ),
    }


def recorded_logs() -> dict[str, list[str]]:
    t = "2026-11-25 19:46:0"
    return {
        "postgresql0": [
            f"{t}0,101 INFO: no action. I am (postgresql0), the leader with the lock",
            f"{t}1,204 INFO: Changed max_connections from 100 to 200 (restart might be required)",
            f"{t}5,003 WARNING: replica postgresql2 is 3.0 MB behind, more than maximum_lag_on_failover",
            f"{t}9,998 INFO: no action. I am (postgresql0), the leader with the lock",
        ],
        "postgresql1": [
            f"{t}0,512 INFO: Lock owner: postgresql0; I am postgresql1",
            f"{t}0,513 INFO: no action. I am a secondary (postgresql1) and following a leader (postgresql0)",
            f"{t}3,870 ERROR: could not receive data from WAL stream: server closed the connection",
            f"{t}4,120 INFO: Lock owner: postgresql0; I am postgresql1",
        ],
        "postgresql2": [
            f"{t}2,000 INFO: Lock owner: postgresql0; I am postgresql2",
            f"{t}7,441 WARNING: Request failed to postgresql0: GET http://127.0.0.1:8008/patroni (timed out)",
        ],
    }


class RecordedSource:
    """Feeds the recorded stream into the app, synchronously, on a frozen clock.

    `namespace=True` feeds the two-cluster namespace view instead of batman alone.
    """

    live = False

    def __init__(self, namespace: bool = False, steps: int | None = None, lease_remaining: int = 27) -> None:
        self.namespace = namespace
        self.steps = steps
        self.lease_remaining = lease_remaining
        self.endpoint = "recorded"

    def snapshots(self) -> Iterator[object]:
        items: list = recorded_namespace() if self.namespace else recorded_clusters()
        yield from items[: self.steps] if self.steps else items

    def start(self, app: RecordingSink) -> None:
        when = START
        for i, snap in enumerate(self.snapshots()):
            when = START + timedelta(seconds=i)
            app.clock = lambda t=when: t
            app.apply_snapshot(snap)
        app.apply_patroni("batman", recorded_patroni(when))
        app.apply_lease("batman", self.lease_remaining)
        for member, lines in recorded_logs().items():
            app.feed_log_lines(member, lines)

    def stop(self) -> None:
        pass

    def lease_ttl(self, lease_id: int) -> int:
        return self.lease_remaining

    def store(self, scope: str):  # no writes in a recording
        return None
