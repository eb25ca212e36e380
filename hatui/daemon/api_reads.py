"""The REST API's GET endpoints, mixed into the request handler of `api.py`: the health checks
load balancers ask (/primary, /replica, /health, ... and their HEAD/OPTIONS forms), the kubelet
probes (/liveness, /readiness), and the views of the node and the cluster (/patroni, /cluster,
/history, /config, /failsafe, /metrics). Each answer is computed by the pure rules in
`api_rules`; the handler's plumbing (`_send_json`, `_refuse`, ...) sends it.
"""

from __future__ import annotations

import logging
import time

from ..cluster import Cluster
from . import api_rules as rules
from .api_contract import _Reply

log = logging.getLogger("hatui.api")

DEFAULT_TTL = 30
DEFAULT_MAX_LAG = 1048576


class ReadEndpoints:
    """GET, HEAD and OPTIONS handlers; a mixin of api._Handler (uses its backend and replies)."""

    # --- views ------------------------------------------------------------------------------------
    def _current_cluster(self) -> Cluster | None:
        """The cluster view for health checks: None when it is not current (etcd unreachable)."""
        return self.backend.cluster() if self.backend.dcs_ok() else None

    def _node_view(self) -> rules.NodeView:
        return rules.NodeView(self.backend.node_status(), self._current_cluster(), self.backend.is_leader())

    def _authorized_get(self) -> bool:
        return not self.api.auth_get or self.api.auth_failure(self.headers.get("Authorization")) is None

    def _require_get_auth(self) -> bool:
        if self._authorized_get():
            return True
        reason = self.api.auth_failure(self.headers.get("Authorization")) or "not authenticated"
        return self._refuse(401, reason, {"WWW-Authenticate": 'Basic realm="Patroni"'})

    # --- GET --------------------------------------------------------------------------------------
    def _health(self) -> tuple[int, rules.NodeView | None]:
        try:
            view = self._node_view()
        except Exception:
            log.exception("REST API: node status unavailable for %s", self.path)
            return 503, None
        return rules.health_code(self.path_name, view, self.query), view

    def _get_health(self) -> None:
        code, view = self._health()
        if view is None:
            self._send_text(code, "node status unavailable")
        elif not self._authorized_get():
            self._send_status_only(code)
        else:
            self._send_json(code, rules.public_status(view.status, view.cluster))

    def _head_health(self) -> None:
        self._send_status_only(self._health()[0])

    def _get_liveness(self) -> None:
        try:
            status = self.backend.node_status()
            cluster = self.backend.cluster()
            paused = bool(status.get("pause")) or bool(cluster and cluster.is_paused)
            ttl = cluster.config.ttl if cluster is not None and cluster.config is not None else DEFAULT_TTL
            code = rules.liveness_code(status, paused, ttl, self.backend.next_run(), time.monotonic())
        except Exception:
            log.exception("REST API: liveness check failed")
            code = 503
        self._send_status_only(code)

    def _get_readiness(self) -> None:
        try:
            view = self._node_view()
            cluster = view.cluster or self.backend.cluster()
            max_lag = (cluster.config.maximum_lag_on_failover
                       if cluster is not None and cluster.config is not None else DEFAULT_MAX_LAG)
            reason = rules.readiness_failure(view, self.query, max_lag)
        except Exception:
            log.exception("REST API: readiness check failed")
            reason = "node status unavailable"
        if reason:
            log.debug("Readiness check failure: %s", reason)
        self._send_status_only(503 if reason else 200)

    def _get_patroni(self) -> None:
        if self._require_get_auth():
            status = self.backend.node_status()
            self._send_json(200, rules.public_status(status, self._current_cluster()))

    def _any_cluster(self) -> Cluster:
        cluster = self.backend.cluster()
        if cluster is None:
            raise _Reply(503, "DCS is not accessible")
        return cluster

    def _get_cluster(self) -> None:
        if self._require_get_auth():
            self._send_json(200, rules.cluster_as_json(self._any_cluster()))

    def _get_history(self) -> None:
        if self._require_get_auth():
            history = self._any_cluster().history
            self._send_json(200, [e.as_list() for e in history.entries] if history else [])

    def _get_config(self) -> None:
        if self._require_get_auth():
            found = self.backend.dynamic_config()
            if found is None:
                self._send_text(502, "no configuration in the DCS")
            else:
                self._send_json(200, found[0])

    def _get_failsafe(self) -> None:
        if self._require_get_auth():
            cluster = self.backend.cluster()
            failsafe = cluster.failsafe if cluster is not None else None
            if failsafe is not None:
                self._send_json(200, dict(failsafe))
            else:
                self._send_text(502, "failsafe mode is not enabled")

    def _get_metrics(self) -> None:
        if self._require_get_auth():
            status = self.backend.node_status()
            text = rules.metrics_text(status, self._current_cluster(), self.backend.dcs_ok())
            extra = getattr(self.backend, "extra_metrics", None)  # hatui's own counters (decisions.py)
            if extra is not None:
                text += extra()
            self._send(200, text.encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")
