"""The console's pollers: each member's /patroni (and whether its PostgreSQL accepts connections),
the leader's lease, the etcd prober's answers, and the quarter-second tick that ages what is shown.

Each poller is a thread worker re-armed only after its round finished, so rounds never overlap.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from textual import work

from ..api_client import ApiError
from ..cluster import Cluster
from ..etcd.store import DCSError
from ..widgets.health import EtcdEvidence
from ..widgets.rows import PatroniSample
from .messages import EtcdProbed, LeasePolled, PatroniPolled

PATRONI_POLL_SECONDS = 0.7  # pause between the end of one /patroni round and the next (~1 s a round)
REST_PROBE_TIMEOUT = 0.8  # a member's /patroni answer slower than this counts as "silent"
SILENT_RETRY_SECONDS = 3.0  # a member whose REST API timed out is asked again after this long
LEASE_POLL_SECONDS = 1.0


class Pollers:
    """/patroni, lease and etcd-probe rounds, and the tick."""

    # A part of HatuiApp (hatui/app.py), which inherits it: `self` is the app, and the state
    # used here is set up in HatuiApp.__init__.

    # --- pollers (thread workers, re-armed after each finished round: never overlapping) --------
    def _poll_patroni(self) -> None:
        cluster = self.current_cluster
        if self._stopped:
            return
        if cluster is None or self.frozen:
            self.set_timer(PATRONI_POLL_SECONDS, self._poll_patroni)
            return
        self._patroni_round(cluster)

    @work(thread=True, group="poll-patroni", exit_on_error=False)
    def _patroni_round(self, cluster: Cluster) -> None:
        from ..probes import pg_accepts

        samples: dict[str, PatroniSample] = {}
        gone = [m for m, _ in self.departed.get(cluster.scope, {}).values()]
        members = [m for m in [*cluster.members, *gone] if m.api_url or m.host]
        try:

            previous = dict(self.patroni.get(cluster.scope, {}))

            def one(m):
                pg_up, pg_error = pg_accepts(m.host, m.port, timeout=REST_PROBE_TIMEOUT)
                prior = previous.get(m.name)
                if (prior is not None and prior.error and "timed out" in prior.error
                        and self.mono() - prior.fetched_at < SILENT_RETRY_SECONDS):
                    # A frozen daemon queues every request and answers them all when it resumes,
                    # to clients long gone: ask it less often while it does not answer.
                    return m.name, dataclasses.replace(prior, pg_up=pg_up, pg_error=pg_error)
                if not m.api_url:
                    return m.name, PatroniSample(None, self.mono(), "no REST API address", None, pg_up, pg_error)
                try:
                    data = self.api.get_patroni(m, timeout=REST_PROBE_TIMEOUT)
                    return m.name, PatroniSample(data, self.mono(), None, None, pg_up, pg_error)
                except ApiError as exc:
                    return m.name, PatroniSample(None, self.mono(), str(exc), None, pg_up, pg_error)

            if members:
                with ThreadPoolExecutor(max_workers=min(8, len(members))) as pool:
                    samples = dict(pool.map(one, members))
        finally:
            self.post_message(PatroniPolled(cluster.scope, samples))

    def on_patroni_polled(self, message: PatroniPolled, rearm: bool = True) -> None:
        known = self.patroni.setdefault(message.scope, {})
        for name, sample in message.samples.items():
            old = known.get(name)
            if sample.data is None and old is not None:  # remember when it last answered
                sample = dataclasses.replace(sample, answered_at=old.last_answer)
            known[name] = sample
        if message.scope == self.selected_scope:
            self._sample_lag()
            if not self.frozen:
                self.render_view()
        if rearm and not self._stopped:
            self.set_timer(PATRONI_POLL_SECONDS, self._poll_patroni)

    def _poll_lease(self) -> None:
        # The leader's lease is read from etcd each second (Etcd.lease_ttl) rather than computed
        # from ttl and a renewal time: keepalives do not show up in the watch, so the console
        # cannot see renewals; reading the lease is exact and costs one small request.
        cluster = self.current_cluster
        if self._stopped:
            return
        if cluster is None or cluster.leader is None or not cluster.leader.lease or self.conn.state == "lost":
            if cluster is not None and (cluster.leader is None or not cluster.leader.lease):
                self.lease_remaining[cluster.scope] = None
            self.set_timer(LEASE_POLL_SECONDS, self._poll_lease)
            return
        self._lease_round(cluster.scope, cluster.leader.lease)

    @work(thread=True, group="poll-lease", exit_on_error=False)
    def _lease_round(self, scope: str, lease: int) -> None:
        remaining: int | None = None
        try:
            if self.source is not None:
                remaining = self.source.lease_ttl(lease)
        except DCSError:
            remaining = None
        finally:
            self.post_message(LeasePolled(scope, remaining))

    def on_lease_polled(self, message: LeasePolled, rearm: bool = True) -> None:
        self.lease_remaining[message.scope] = message.remaining
        screen = self.cluster_screen
        if screen is not None and not self.frozen and message.scope == self.selected_scope:
            screen.render_summary()
        if rearm and not self._stopped:
            self.set_timer(LEASE_POLL_SECONDS, self._poll_lease)

    def _tick(self) -> None:
        # Ages move even when nothing arrives: the banner's "answered N s ago", a stall, the
        # lease countdown. Cheap (two Statics, updated only when their text changed), so 4 times a
        # second: a stall is on screen at most a quarter second after it is decided.
        self.render_view(status_only=True)

    def on_etcd_probed(self, message: EtcdProbed) -> None:
        ev = self.etcd_evidence
        if message.error:
            self.etcd_evidence = EtcdEvidence(ev.last_answer, message.error, ev.started)
        else:
            self.etcd_evidence = EtcdEvidence(self.mono(), "", ev.started)

    @property
    def etcd_verdict(self) -> str:
        """'ok' | 'stalled' | 'unknown' (see widgets.health); a recording is always 'ok'."""
        if self.source is None or not self.source.live:
            return "ok"
        return self.etcd_evidence.verdict(self.mono())
