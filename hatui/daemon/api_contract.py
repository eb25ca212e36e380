"""What the REST API and the daemon agree on: `ApiBackend`, the interface the daemon implements
for the API, and `ApiRefusal`, how a backend answers a request with a status and a text. `_Reply`
is the same for the handler itself: a request ends with it from deep inside body parsing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from ..cluster import Cluster


class ApiRefusal(Exception):
    """Raised by a backend to answer a request with `status` and the plain-text `text`."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status} {text}")
        self.status = status
        self.text = text


@runtime_checkable
class ApiBackend(Protocol):
    """What the REST API needs from the daemon. Every call comes from a request thread.

    Methods returning (status, text) give the HTTP status and the plain-text reply; any method may
    raise ApiRefusal(status, text) instead. Other exceptions become a logged 500.
    """

    def node_status(self) -> dict:
        """The GET /patroni dict (Patroni 4.1 keys, see member.patroni_status). May include the
        internal int `latest_end_lsn` (wal receiver), which is used for lag and never sent. Called by
        every health check: keep it cheap (cached values, bounded queries; the daemon's runs one query
        on a kept session, see api_pgstatus)."""

    def cluster(self) -> Cluster | None:
        """The last cluster view read from etcd, or None if there is none yet."""

    def dcs_ok(self) -> bool:
        """The last etcd access succeeded and is less than ttl old (the view in cluster() is current)."""

    def is_leader(self) -> bool:
        """This node holds the leader lock now: its last successful lock update is less than ttl old."""

    def next_run(self) -> float:
        """time.monotonic() when the next HA cycle is due (last cycle start + loop_wait), for /liveness."""

    def dynamic_config(self) -> tuple[dict, int] | None:
        """(config dict, mod_revision) of the `config` key, None if the key is absent."""

    def patch_config(self, patch: dict) -> dict:
        """Deep-merge `patch` (null deletes; see api_rules.merge_patch), validate, write with CAS and
        return the new config. ApiRefusal: 400 invalid, 409 CAS conflict, 503 no config in DCS."""

    def put_config(self, new: dict) -> dict:
        """Validate and write `new` as the whole config; return it.
        ApiRefusal: 400 invalid, 502 write failed."""

    def request_switchover(self, leader: str | None, candidate: str | None,
                           scheduled_at: datetime | None, action: str) -> tuple[int, str]:
        """Already validated by api_rules.validate_switchover (action "switchover" | "failover";
        scheduled_at tz-aware and in the future). Checks the cluster (412 texts), writes the failover
        key (503 `failed to write failover key into DCS`), then 202 `Switchover scheduled` or waits:
        200 `Successfully switched over to "x"` / 503 `Switchover failed` / `Switchover status unknown`."""

    def cancel_switchover(self) -> tuple[int, str]:
        """200 `scheduled switchover deleted` | 404 `no switchover is scheduled` | 409 on CAS conflict."""

    def request_restart(self, schedule: datetime | None, role: str | None, postgres_version: str | None,
                        restart_pending: bool, timeout: int | None) -> tuple[int, str]:
        """Validated by api_rules.validate_restart. 200 `restarted successfully` | 202 `Restart scheduled`
        | 409 `Another restart is already scheduled` | 503 `restart conditions are not satisfied` ..."""

    def cancel_restart(self) -> tuple[int, str]:
        """200 `scheduled restart deleted` | 404 `no restarts are scheduled`."""

    def request_reload(self) -> tuple[int, str]:
        """202 `reload scheduled`."""

    def request_reinitialize(self, force: bool, from_leader: bool) -> tuple[int, str]:
        """200 `reinitialize started` | 503 `Cluster has no leader, can not reinitialize` | ..."""

    def failsafe_heartbeat(self, body: dict) -> tuple[int, str, dict[str, str]]:
        """A primary's POST /failsafe ({"name","conn_url","api_url","slots"}): (200, "Accepted",
        {"lsn": "<int>"}) on a replica, (500, "Running as a leader", {}) on the leader, (502, ..., {})
        when failsafe_mode is off."""


class _Reply(Exception):
    """Ends request handling with a reply (used from deep inside body parsing)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
