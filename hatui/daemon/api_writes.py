"""The REST API's write endpoints, mixed into the request handler of `api.py`: the dynamic config
(PATCH/PUT /config) and the actions (switchover, failover, restart, reload, reinitialize, the
failsafe heartbeat). Bodies are validated by the pure rules in `api_rules`; only valid requests
reach the backend.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from . import api_rules as rules
from .api_contract import _Reply

log = logging.getLogger("hatui.api")


class WriteEndpoints:
    """PATCH, PUT, POST and DELETE handlers; a mixin of api._Handler (uses its backend and body reader)."""

    # --- config writes ----------------------------------------------------------------------------
    def _patch_config(self) -> None:
        patch = self._read_body(required=True)
        self._send_json(200, self.backend.patch_config(patch))

    def _put_config(self) -> None:
        new = self._read_body(required=True)
        self._send_json(200, self.backend.put_config(new))

    # --- actions ----------------------------------------------------------------------------------
    def _paused(self) -> bool:
        cluster = self.backend.cluster()
        return bool(cluster is not None and cluster.is_paused)

    def _post_switchover(self, action: str = "switchover") -> None:
        body = self._read_body(required=True)
        log.info("received %s request with leader=%r candidate=%r scheduled_at=%r", action,
                 body.get("leader"), body.get("candidate") or body.get("member"), body.get("scheduled_at"))
        req = rules.validate_switchover(body, action, self._paused(), datetime.now(UTC))
        if isinstance(req, rules.Refusal):
            raise _Reply(req.status, req.text)
        self._send_text(*self.backend.request_switchover(req.leader, req.candidate, req.scheduled_at,
                                                         req.action))

    def _post_failover(self) -> None:
        self._post_switchover("failover")

    def _delete_switchover(self) -> None:
        self._drain_body()
        self._send_text(*self.backend.cancel_switchover())

    def _post_restart(self) -> None:
        body = self._read_body(required=False)
        if body:
            log.debug("received restart request: %r", body)
        req = rules.validate_restart(body, self._paused(), datetime.now(UTC))
        if isinstance(req, rules.Refusal):
            raise _Reply(req.status, req.text)
        self._send_text(*self.backend.request_restart(
            schedule=req.schedule, role=req.role, postgres_version=req.postgres_version,
            restart_pending=req.restart_pending, timeout=req.timeout))

    def _delete_restart(self) -> None:
        self._drain_body()
        self._send_text(*self.backend.cancel_restart())

    def _post_reload(self) -> None:
        self._drain_body()
        self._send_text(*self.backend.request_reload())

    def _post_reinitialize(self) -> None:
        body = self._read_body(required=False)
        if body:
            log.debug("received reinitialize request: %r", body)
        force, from_leader = rules.parse_reinitialize(body)
        self._send_text(*self.backend.request_reinitialize(force, from_leader))

    def _post_failsafe(self) -> None:
        body = self._read_body(required=True)
        status, text, headers = self.backend.failsafe_heartbeat(body)
        self._send_text(status, text, headers)
