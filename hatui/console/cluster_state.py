"""What the console knows of its clusters, and how a new view of them gets on screen.

The watch thread hands each new view to `submit_snapshot`, which keeps only the newest and posts
at most one `ClustersChanged` at a time; `apply_snapshot` (UI thread) records the events, toasts
what operators wait for, remembers departed members, samples lag and re-renders. Also what the
secondary screens read (rows, member detail, history) and the render log benchmarks wait on.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..cluster import Cluster
from ..screens.events import only_events_changed
from ..widgets.banner import ConnStatus
from ..widgets.lag_sparkline import new_history
from ..widgets.rows import MemberRow, PatroniSample, build_rows
from ..widgets.timeline import TimelineEvent, diff_clusters
from .messages import ClustersChanged, ConnectionLost, LeasePolled, PatroniPolled, RenderRecord


class ClusterState:
    """Data in and rendering: the watch's views, /patroni answers and leases fed directly."""

    # A part of HatuiApp (hatui/app.py), which inherits it: `self` is the app, and the state
    # used here is set up in HatuiApp.__init__.

    # --- data in: called from the watch thread ------------------------------------------------
    def submit_snapshot(self, snapshot: object) -> None:
        """Watch thread: keep only the newest view; post one message unless one is in flight."""
        with self._pending_lock:
            self._pending = (snapshot, self.mono())
            if self._posted:
                return
            self._posted = True
        self.post_message(ClustersChanged())

    def submit_error(self, error: str) -> None:
        self.post_message(ConnectionLost(error))

    def on_clusters_changed(self, _: ClustersChanged) -> None:
        if self._stopped:
            return
        with self._pending_lock:
            pending, self._pending = self._pending, None
            self._posted = False
        # Textual's shutdown closes the screens before the app unmounts (which sets _stopped): a
        # view that arrives in between has no screen to go to.
        if pending is not None and self.screen_stack:
            self.apply_snapshot(pending[0], pending[1])

    def on_connection_lost(self, message: ConnectionLost) -> None:
        if self._stopped:
            return
        now = self.clock()
        if self.conn.state != "lost":
            self.conn = ConnStatus(
                "lost", self.conn.endpoint, now, message.error, self.conn.revision, self.conn.data_as_of
            )
            self.notify(f"etcd connection lost: {message.error}", severity="error", title="etcd")
        else:
            self.conn = ConnStatus(
                "lost",
                self.conn.endpoint,
                self.conn.since,
                message.error,
                self.conn.revision,
                self.conn.data_as_of,
            )
        self.render_view(status_only=True)

    # --- applying data (UI thread) --------------------------------------------------------------
    def apply_snapshot(self, snapshot: object, received: float | None = None) -> None:
        """Take a Cluster or {scope: Cluster} view: events, toasts, then the widgets."""
        received = self.mono() if received is None else received
        if isinstance(snapshot, Cluster):
            clusters = {snapshot.scope: snapshot}
        else:
            clusters = dict(snapshot)  # type: ignore[call-overload]
        now = self.clock()
        previous = self.clusters
        revision = max((c.revision for c in clusters.values()), default=self.conn.revision)
        for scope, cluster in sorted(clusters.items()):
            old = self.clusters.get(scope)
            for event in diff_clusters(old, cluster, now, self.lease_remaining.get(scope)):
                self.events.append(event)
                if old is not None:
                    self._announce(event, cluster)
        for scope in sorted(set(self.clusters) - set(clusters)):
            self.events.append(TimelineEvent(now, scope, "member", "cluster removed from etcd", revision))
        self._remember_departed(clusters)
        for scope, cluster in clusters.items():
            old = self.clusters.get(scope)
            for m in cluster.members:
                before = old.member(m.name) if old is not None else None
                if before is None or before.data != m.data:
                    # A /patroni answer older than this key change must not overrule it.
                    self.key_changed[(scope, m.name)] = received
        self.clusters = clusters
        was = self.conn.state
        state = "ok" if self.source is None or self.source.live else "recorded"
        self.conn = ConnStatus(
            state, self.conn.endpoint, now if was != state else self.conn.since, "", revision, now
        )
        if was == "lost":
            self.notify("etcd is back; the view is current again.", title="etcd")
        if self.namespace_mode and clusters and self.selected_scope not in clusters:
            self.selected_scope = min(clusters)
        self._sample_lag()
        if self.frozen:
            self.held_updates += 1
            self.render_view(status_only=True)
            return
        if self.screen is self.cluster_screen and only_events_changed(previous, clusters):
            return  # a new event alone: nothing on this screen shows it (its revision shows next time)
        self.render_view()
        record = RenderRecord(revision, received, self.mono())
        self.render_log.append(record)
        self.call_after_refresh(self._painted, record)

    def _remember_departed(self, clusters: dict[str, Cluster]) -> None:
        """A member whose key vanished stays known (greyed, probed) until forget_member()."""
        mono = self.mono()
        for scope, cluster in clusters.items():
            old = self.clusters.get(scope)
            gone = self.departed.setdefault(scope, {})
            for m in old.members if old is not None else ():
                if cluster.member(m.name) is None and m.name not in gone:
                    gone[m.name] = (m, mono)
            for name in [n for n in gone if cluster.member(n) is not None]:
                del gone[name]  # its key is back

    def forget_member(self, scope: str, name: str) -> bool:
        """Remove a departed member from the table on purpose; False if it is not departed."""
        if self.departed.get(scope, {}).pop(name, None) is None:
            return False
        self.patroni.get(scope, {}).pop(name, None)
        self.render_view()
        return True

    def _painted(self, record: RenderRecord) -> None:
        record.painted = self.mono()

    def render_record(self, revision: int) -> RenderRecord | None:
        """The first render that showed `revision` or a newer one (None if not rendered yet)."""
        for record in self.render_log:
            if record.revision >= revision:
                return record
        return None

    async def wait_for_revision(self, revision: int, timeout: float = 5.0) -> RenderRecord | None:
        """Wait (in the app's loop, e.g. from a Pilot script) until `revision` was rendered."""
        import asyncio

        deadline = self.mono() + timeout
        while self.mono() < deadline:
            record = self.render_record(revision)
            if record is not None and record.painted is not None:
                return record
            await asyncio.sleep(0.002)
        return self.render_record(revision)

    def apply_patroni(
        self, scope: str, answers: dict[str, dict | None], errors: dict[str, str] | None = None
    ) -> None:
        """Feed /patroni answers directly (the recorded source and tests use this)."""
        now = self.mono()
        samples = {n: PatroniSample(d, now) for n, d in answers.items() if d is not None}
        for n, err in (errors or {}).items():
            samples[n] = PatroniSample(None, now, err)
        self.on_patroni_polled(PatroniPolled(scope, samples), rearm=False)

    def apply_lease(self, scope: str, remaining: int | None) -> None:
        self.on_lease_polled(LeasePolled(scope, remaining), rearm=False)

    def feed_log_lines(self, member: str, lines: Iterable[str]) -> None:
        screen = self.cluster_screen
        if screen is not None and member in screen.log_panes.panes:
            screen.log_panes.panes[member].add_lines(list(lines))

    def _announce(self, event: TimelineEvent, cluster: Cluster) -> None:
        """Toasts for what operators wait for; the watch is the only proof an action worked."""
        requested = self.requested.get(event.scope)
        if event.kind == "leader":
            text = f"{event.scope}: {event.text}"
            if requested and requested[0] in ("switchover", "failover") and cluster.leader_name:
                want = requested[1]
                if cluster.leader_name == want:
                    text = f"{event.scope}: {requested[0]} done, {want} is the leader (seen in etcd)"
                else:
                    text = f"{event.scope}: {cluster.leader_name} took the lead instead of {want}"
                self.requested.pop(event.scope, None)
            self.notify(
                text, title="Leader", severity="warning" if not cluster.leader_name else "information"
            )
        elif event.kind == "pause":
            self.notify(f"{event.scope}: {event.text}", title="Maintenance")
            if requested and requested[0] in ("pause", "resume"):
                self.requested.pop(event.scope, None)

    def _sample_lag(self) -> None:
        scope = self.selected_scope
        cluster = self.clusters.get(scope or "")
        if cluster is None:
            return
        for row in self.rows_for(scope):
            if row.is_leader or row.lag_bytes is None:
                continue
            self.lag_history.setdefault((cluster.scope, row.name), new_history()).append(float(row.lag_bytes))

    def rows_for(self, scope: str | None) -> list[MemberRow]:
        cluster = self.clusters.get(scope or "")
        if cluster is None:
            return []
        return build_rows(
            cluster,
            self.patroni.get(cluster.scope),
            self.clock(),
            self.mono(),
            lease_remaining=self.lease_remaining.get(cluster.scope),
            departed=self.departed.get(cluster.scope),
            key_changed={n: t for (sc, n), t in self.key_changed.items() if sc == cluster.scope},
        )

    @property
    def current_cluster(self) -> Cluster | None:
        return self.clusters.get(self.selected_scope or "")

    def render_view(self, status_only: bool = False) -> None:
        screen = self.cluster_screen
        if screen is None:
            return
        screen.render_state(status_only=status_only)
        top = self.screen
        if top is not screen and not status_only and hasattr(top, "update_from_app"):
            top.update_from_app()

    def select_scope(self, scope: str) -> None:
        if scope == self.selected_scope or scope not in self.clusters:
            return
        self.selected_scope = scope
        screen = self.cluster_screen
        if screen is not None:
            screen.reset_for_scope()
        self.render_view()

    # --- providers for the secondary screens ----------------------------------------------------
    def member_detail_data(
        self, scope: str, member: str
    ) -> tuple[Cluster | None, MemberRow | None, PatroniSample | None]:
        cluster = self.clusters.get(scope)
        row = next((r for r in self.rows_for(scope) if r.name == member), None)
        return cluster, row, self.patroni.get(scope, {}).get(member)

    def history_data(self, scope: str | None) -> tuple[Cluster | None, list[TimelineEvent]]:
        return self.clusters.get(scope or self.selected_scope or ""), list(self.events)
