"""The demo's guided tour: the talk's steps as short texts, each with an optional "do it" action.

Pure text and data (no Textual): the demo panel renders a step and, when asked, performs its `do`
action through the same DemoRuntime calls as its keys. Texts are written from what the cluster
looks like now (who leads, the timing values in the config), so they stay true as the person
clicks around instead of following the script.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TourContext:
    leader: str | None
    members: list[str]
    fencing: bool
    ttl: int = 30
    loop_wait: int = 10
    retry_timeout: int = 10
    victim: str | None = None  # the member whose daemon the tour killed
    config_path: str = "postgres0.yml"
    stopped: str | None = None  # a member whose daemon is not running now
    # step key -> the member the step was about when it was first shown: a step keeps its target
    # after its own action moved the leadership (`a` twice on "freeze" resumes the same daemon).
    targets: dict[str, str] = field(default_factory=dict)

    def target(self, step: str) -> str | None:
        return self.targets.get(step) or self.leader

    @property
    def replicas(self) -> list[str]:
        return [m for m in self.members if m != self.leader]

    @property
    def replica(self) -> str:
        return self.replicas[0] if self.replicas else "the replica"


@dataclass
class TourStep:
    key: str
    title: str
    lines: list[str]
    do: str | None = None  # label of what `a` does on this step (None: nothing to do)
    extra: dict = field(default_factory=dict)


def _timing_ok(c: TourContext) -> bool:
    return c.ttl >= c.loop_wait + 2 * c.retry_timeout


def build_steps(c: TourContext) -> list[TourStep]:
    leader = c.leader or "(no leader yet)"
    killed = c.target("failover") or leader
    frozen = c.target("freeze") or leader
    # The old leader of the split-brain and rejoin steps: the one the tour killed, else a member
    # whose daemon is down now; never the current leader.
    victim = c.victim or c.stopped or (killed if killed != c.leader else None) or "the old leader"
    other = next((m for m in c.members if m != killed), "the replica")
    if c.fencing:
        failover_effect = [
            "Unlike Patroni in the talk, hatui runs a fencing guard beside each daemon: it sees the daemon die,",
            f"stops {killed}'s PostgreSQL at once and releases the leader key, so {other} is promoted within",
            "seconds. (Start the demo with --no-fencing to see the talk's behaviour: failover after ttl.)",
        ]
        split_effect = [
            f"With fencing, {victim}'s PostgreSQL is already down: the write fails and there is no split brain.",
            "With --no-fencing it would succeed: two primaries, and that row never reaches the new leader.",
        ]
    else:
        failover_effect = [
            f"Its PostgreSQL keeps running, unmanaged. The leader key expires after ttl ({c.ttl}s); then",
            f"{other} takes the key and promotes itself (a new timeline). Watch the lease count down.",
        ]
        split_effect = [
            "It accepts it: for a while there are two primaries, and this row never reaches the new leader.",
            "That is why Patroni recommends a watchdog (and hatui fences by default).",
        ]
    ok = "holds" if _timing_ok(c) else "is VIOLATED: expect leader flapping"
    return [
        TourStep("cluster", "The cluster", [
            f"etcd holds the leader key /service/batman/leader: {leader} owns it and is the primary;",
            f"{', '.join(c.replicas) or 'no replica'} stream{'s' if len(c.replicas) == 1 else ''} from it. The leader "
            f"renews the key every loop_wait ({c.loop_wait}s);",
            f"it expires after ttl ({c.ttl}s). In another terminal: hatui -c {c.config_path} list",
        ]),
        TourStep("failover", "Automatic failover", [
            f"Kill -9 the leader's daemon (the talk's ^Z, then kill -9 %1): press a, or select {killed} and press k.",
            *failover_effect,
            "The Why pane says who may take over and why not; press y for the event that says who did, and why.",
        ], do=f"kill -9 the daemon of {killed}"),
        TourStep("splitbrain", "Split brain", [
            f"Write to the old leader directly, as the talk's `CREATE TABLE splitbrain()`: press a, or select "
            f"{victim} and press d.",
            *split_effect,
        ], do=f"write a row to {victim}"),
        TourStep("rejoin", "Rejoin" if c.fencing else "Rewind and rejoin", [
            f"Start {victim}'s daemon again: press a, or select it and press g. It finds that {leader} holds the lock.",
            *([
                f"The fencing guard had stopped {victim}'s PostgreSQL cleanly before the key was released, so",
                "nothing diverged: the daemon starts it as a replica and it streams from the new leader (no pg_rewind).",
            ] if c.fencing else [
                "Its PostgreSQL still runs as a primary with writes the new leader never saw: the daemon stops it,",
                "runs pg_rewind to undo the WAL that diverged and follows the new leader. The split-brain row is gone.",
            ]),
            "Press y: the event timeline shows what happened; hatui explain says the same in a terminal.",
        ], do=f"start the daemon of {victim}"),
        TourStep("reload", "Edit the config: reload", [
            "The dynamic configuration lives in etcd (the config key) and applies to every member.",
            "Press a to set work_mem = 8MB there (or e to edit it yourself). Each daemon sees the change",
            "and reloads PostgreSQL (SIGHUP): nothing restarts, nobody is disconnected.",
        ], do="set postgresql.parameters.work_mem = 8MB"),
        TourStep("pending", "Edit the config: pending restart", [
            "Some settings only change on restart. Press a to set max_connections = 101: every member then",
            "shows Pending restart. Select one and press r to restart it; the other keeps the old value",
            "until it is restarted too (psql: SHOW max_connections).",
        ], do="set postgresql.parameters.max_connections = 101"),
        TourStep("timing", "The timing rule", [
            "ttl >= loop_wait + 2 × retry_timeout: the leader must be able to retry etcd twice within one lease.",
            f"Now: ttl {c.ttl}, loop_wait {c.loop_wait}, retry_timeout {c.retry_timeout}: the rule {ok}.",
            "Press a to apply the talk's safe change: ttl 60, loop_wait 5, retry_timeout 27 (60 >= 5 + 54).",
        ], do="set ttl 60, loop_wait 5, retry_timeout 27"),
        TourStep("freeze", "Freeze a daemon", [
            f"Press a, or select {frozen} and press z (SIGSTOP: the talk's ^Z). The daemon stops renewing the key.",
            (f"Its fencing guard stops PostgreSQL {c.ttl}s minus the safety margin after the last renewal;"
             if c.fencing else "Its PostgreSQL keeps running and accepting writes;"),
            f"when the key expires (ttl {c.ttl}s) another member is promoted. Press a (or z on {frozen}) again:",
            "the daemon wakes up, sees it lost the lock, and rejoins as a replica. The summary counts the lease down.",
        ], do=f"freeze or resume the daemon of {frozen}"),
        TourStep("load", "Under load", [
            "Press L for a steady write load (about 50 commits/s); the panel shows commits/s, errors and which",
            "member takes the writes. Repeat the failover with the load on: count the errors, and see whether",
            "writes ever go to two members.",
        ], do="start or stop the write load"),
        TourStep("end", "The end", [
            "q stops every process the demo started and removes its data (hatui demo --keep keeps it for reading).",
            "Press t to close the tour.",
        ]),
    ]
