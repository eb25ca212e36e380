"""The console's write actions: edit the config, switchover, failover, restart, reload, reinit,
pause and resume. Each one picks, then confirms naming the member and the consequence, then sends
the request (REST API, or a compare-and-swap on the config key) in a thread worker; the watch,
not the answer, shows whether it worked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work

from ..api_client import ApiError
from ..cluster import Cluster
from ..screens.config_editor import ConfigEditorScreen
from ..screens.confirm import ConfirmScreen
from ..screens.pickers import Candidate, CandidateScreen, RestartChoice, RestartScreen
from ..widgets.rows import eligibility
from .sources import EtcdConfigTarget


class WriteActions:
    """Pick -> confirm -> request, for every action that changes the cluster."""

    # A part of HatuiApp (hatui/app.py), which inherits it: `self` is the app, and the state
    # used here is set up in HatuiApp.__init__.

    # --- write actions (each: pick -> confirm naming member and consequence -> request) -----------
    def action_edit_config(self) -> None:
        if self.refuse_read_only("editing the config"):
            return
        cluster = self.current_cluster
        if cluster is None or self.source is None:
            self.notify("No cluster to edit yet.", severity="warning")
            return
        store = self.source.store(cluster.scope)
        if store is None:
            self.notify("This view is a recording: nothing to write to.", severity="warning")
            return
        from ..config import dump_yaml

        data = dict(cluster.config.data) if cluster.config else {}
        revision = cluster.config.mod_revision if cluster.config else 0
        self.push_screen(
            ConfigEditorScreen(
                dump_yaml(data),
                f"Dynamic configuration of {cluster.scope} (config key revision {revision})",
                target=EtcdConfigTarget(store, revision),
                original=data,
            )
        )

    def start_switchover(
        self, scope: str | None = None, candidate: str | None = None, failover: bool = False
    ) -> None:
        kind = "failover" if failover else "switchover"
        if self.refuse_read_only(kind):
            return
        cluster = self.clusters.get(scope or self.selected_scope or "")
        if cluster is None:
            return
        leader = cluster.leader_name
        if not failover and not leader:
            self.notify(
                f"{cluster.scope} has no leader: a switchover needs one. Use failover (F).",
                severity="warning",
                title="Switchover",
            )
            return
        statuses = self.patroni.get(cluster.scope, {})
        now = self.mono()
        cands = []
        for m in cluster.members:
            if m.name == leader:
                continue
            sample = statuses.get(m.name)
            ok, reason = eligibility(
                cluster, m.name, sample.status_for_eligibility(now) if sample else None, action=kind
            )
            cands.append(Candidate(m.name, ok, reason))
        if candidate is not None:
            match = next((c for c in cands if c.name == candidate), None)
            if match is None or not match.eligible:
                why = match.reason if match else "not a replica of this cluster"
                self.notify(f"{candidate} cannot take over: {why}", severity="error", title=kind.title())
                return
            self._confirm_switchover(cluster, candidate, failover)
            return
        title = (
            f"Failover {cluster.scope}: pick the member to promote"
            if failover
            else f"Switchover {cluster.scope}: pick the new leader (now {leader})"
        )
        self.push_screen(
            CandidateScreen(title, cands),
            callback=lambda name: name and self._confirm_switchover(cluster, name, failover),
        )

    def _confirm_switchover(self, cluster: Cluster, candidate: str, failover: bool) -> None:
        leader = cluster.leader_name
        if failover:
            title = f"Failover {cluster.scope} to {candidate}?"
            consequence = (
                f"{candidate} is promoted"
                + (
                    f" and the leader {leader} is demoted"
                    if leader
                    else " although the cluster has no leader"
                )
                + ". Clients of the old leader are disconnected. A planned change should be a "
                "switchover; failover is for when the leader is unhealthy."
            )
        else:
            title = f"Switchover {cluster.scope}: {leader} → {candidate}?"
            consequence = (
                f"{leader} is demoted (PostgreSQL restarted as a replica; its clients are "
                f"disconnected) and {candidate} is promoted. Writes fail for a few seconds. The "
                "console tells you when the leader key moves."
            )
        self.push_screen(
            ConfirmScreen(title, consequence, confirm_label="Failover" if failover else "Switchover"),
            callback=lambda ok: ok and self._send_switchover(cluster, candidate, failover),
        )

    def _send_switchover(self, cluster: Cluster, candidate: str, failover: bool) -> None:
        kind = "failover" if failover else "switchover"
        target = cluster.leader_member or cluster.member(candidate)
        self.requested[cluster.scope] = (kind, candidate)
        self.notify(
            f"{kind.title()} to {candidate} requested; waiting for the leader key to move…",
            title=kind.title(),
        )
        if failover:
            self._rest(kind, lambda: self.api.failover(target, candidate))
        else:
            self._rest(kind, lambda: self.api.switchover(target, cluster.leader_name, candidate))

    def start_restart(self, member_name: str | None) -> None:
        if self.refuse_read_only("restart"):
            return
        cluster = self.current_cluster
        m = cluster.member(member_name) if cluster else None
        if cluster is None or m is None:
            return

        def chosen(choice: RestartChoice | None) -> None:
            if choice is None:
                return
            is_leader = m.name == cluster.leader_name
            effect = (
                "it is the leader: writes fail until PostgreSQL is back (a restart does not fail over)"
                if is_leader
                else "its clients are disconnected; replication resumes when it is back"
            )
            when = {
                "now": "now",
                "scheduled": f"at {choice.schedule}",
                "pending": "now, only if a restart is pending (settings changed)",
            }[choice.mode]
            self.push_screen(
                ConfirmScreen(
                    f"Restart PostgreSQL on {m.name} ({cluster.scope})?",
                    f"PostgreSQL on {m.name} stops and starts again {when}; {effect}.",
                    confirm_label="Restart",
                ),
                callback=lambda ok: ok and self._rest("restart", lambda: self.api.restart(m, choice.body())),
            )

        self.push_screen(RestartScreen(m.name, m.pending_restart), callback=chosen)

    def start_reload(self, member_name: str | None) -> None:
        if self.refuse_read_only("reload"):
            return
        cluster = self.current_cluster
        m = cluster.member(member_name) if cluster else None
        if m is None:
            return
        self.push_screen(
            ConfirmScreen(
                f"Reload {m.name}?",
                f"{m.name} re-reads its configuration file and PostgreSQL reloads its settings "
                "(SIGHUP). Nothing restarts and nobody is disconnected.",
                confirm_label="Reload",
                danger=False,
            ),
            callback=lambda ok: ok and self._rest("reload", lambda: self.api.reload(m)),
        )

    def start_reinit(self, member_name: str | None) -> None:
        if self.refuse_read_only("reinit"):
            return
        cluster = self.current_cluster
        m = cluster.member(member_name) if cluster else None
        if cluster is None or m is None:
            return
        if m.name == cluster.leader_name:
            self.notify(
                f"{m.name} is the leader: only a replica can be reinitialized.",
                severity="error",
                title="Reinit",
            )
            return
        self.push_screen(
            ConfirmScreen(
                f"Reinitialize {m.name} ({cluster.scope})?",
                f"The data directory of {m.name} is DELETED and copied again from the leader "
                f"{cluster.leader_name or '(none!)'}. {m.name} is unavailable until the copy is done.",
                confirm_label="Reinit",
                type_to_confirm=m.name,
            ),
            callback=lambda ok: ok and self._rest("reinit", lambda: self.api.reinitialize(m)),
        )

    def start_pause(self, pause: bool) -> None:
        kind = "pause" if pause else "resume"
        if self.refuse_read_only(kind):
            return
        cluster = self.current_cluster
        if cluster is None:
            return
        if pause == cluster.is_paused:
            self.notify(
                f"{cluster.scope} is {'already paused' if pause else 'not paused'}.", title=kind.title()
            )
            return
        if pause:
            title = f"Pause {cluster.scope} (maintenance mode)?"
            consequence = (
                "No automatic failover and no PostgreSQL start/stop by the HA daemons until you "
                "resume. PostgreSQL keeps running; a dead leader is NOT replaced while paused."
            )
        else:
            title = f"Resume {cluster.scope}?"
            consequence = "The HA daemons manage PostgreSQL again, including automatic failover."
        self.push_screen(
            ConfirmScreen(title, consequence, confirm_label=kind.title(), danger=pause),
            callback=lambda ok: ok and self._send_pause(cluster, pause),
        )

    def _send_pause(self, cluster: Cluster, pause: bool) -> None:
        kind = "pause" if pause else "resume"
        self.requested[cluster.scope] = (kind, cluster.scope)
        members = sorted(cluster.members, key=lambda m: m.name != cluster.leader_name)  # leader first

        def call():
            last: Exception | None = None
            for m in members:
                try:
                    return self.api.patch_config(m, {"pause": True if pause else None})
                except ApiError as exc:
                    last = exc
            raise last or ApiError("no member has a REST API address")

        self._rest(kind, call)

    @work(thread=True, group="rest", exit_on_error=False)
    def _rest(self, what: str, call: Callable[[], Any]) -> None:
        try:
            resp = call()
        except ApiError as exc:
            self.call_from_thread(self.notify, f"{what} failed: {exc}", severity="error", title=what.title())
            return
        from ..widgets.toasts import rest_result

        severity = "information" if resp.ok else "error"
        self.call_from_thread(
            self.notify, rest_result(what, resp.status, resp.text), severity=severity, title=what.title()
        )
