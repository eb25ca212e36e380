"""One test per branch of the pure HA core `decide` (spec: patroni-compat.md section 2).

Views are built from Patroni-4.1-shaped keys (ha_builders), so each test also checks that the
decision reads the real key formats. Messages are asserted exactly where Patroni's log text is
what an operator greps for.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from ha_builders import (
    LSN,
    MB,
    OTHER_SYSID,
    SYSID,
    cluster,
    config_value,
    decide_for,
    observe,
    peer,
    peers,
    pg_empty,
    pg_primary,
    pg_replica,
    pg_stopped,
    primary,
    replica,
    settings,
)

from hatui.cluster import Cluster
from hatui.daemon.ha import Action, Decision, LocalPostgres, decide, needs_rewind, wal_lag

NOW = datetime(2026, 11, 25, 20, 0, 0, tzinfo=timezone.utc)
ACQUIRE_FAIL = "following new leader after trying and failing to obtain lock"


def healthy3(**kw) -> Cluster:
    """pg0 leads pg1 and pg2, everyone at the same position on timeline 1."""
    return cluster([primary("pg0"), replica("pg1"), replica("pg2")], leader="pg0", **kw)


def leaderless3(lsn1: int = LSN, lsn2: int = LSN, **kw) -> Cluster:
    """The leader key expired; pg0's member key is gone too (its host died)."""
    kw.setdefault("optime", LSN)
    return cluster([replica("pg1", lsn=lsn1), replica("pg2", lsn=lsn2)], **kw)


# --- builders ------------------------------------------------------------------------------------

def test_builders_produce_patroni_member_json() -> None:
    c = cluster([primary("pg0", lsn=LSN + 8), replica("pg1", lsn=LSN, receive=LSN + 4,
                                                      tags={"nofailover": True})],
                leader="pg0", optime=LSN + 8, history=[[1, LSN, "no recovery target specified"]])
    leader, rep = c.member("pg0"), c.member("pg1")
    assert leader is not None and rep is not None
    assert list(leader.data) == ["conn_url", "api_url", "state", "role", "version", "xlog_location", "timeline"]
    assert leader.conn_url == "postgres://127.0.0.1:5432/postgres"
    assert leader.api_url == "http://127.0.0.1:8008/patroni"
    assert rep.receive_lsn == LSN + 4 and rep.replay_lsn == LSN and rep.xlog_location == LSN + 4
    assert rep.replication_state == "streaming" and rep.nofailover
    assert c.leader_name == "pg0" and c.initialize == SYSID and c.leader.lease == leader.lease
    assert c.last_lsn == LSN + 8 and c.timeline == 1
    assert c.history is not None and c.history.entries[0].lsn == LSN


def test_builders_config_failover_sync_and_stopped_members() -> None:
    c = cluster([primary("pg0"), replica("pg1", state="stopped")], leader="pg0", pause=True,
                synchronous_mode="on", maximum_lag_on_failover=5,
                failover={"leader": "pg0", "member": "pg1", "scheduled_at": NOW.isoformat()},
                sync=("pg0", ["pg1"]), initialize=None)
    assert c.is_paused and c.config is not None and c.config.synchronous_mode == "on"
    assert c.config.maximum_lag_on_failover == 5 and c.config.ttl == 30 and c.config.loop_wait == 10
    assert c.failover is not None and c.failover.candidate == "pg1" and c.failover.scheduled_at == NOW
    assert c.sync.leader == "pg0" and c.sync.sync_standby == ("pg1",)
    assert c.initialize is None
    stopped = c.member("pg1")
    assert stopped is not None and stopped.wal_position is None and not stopped.is_running


# --- DCS unreachable --------------------------------------------------------------------------------

def test_dcs_unreachable_primary_demotes_offline() -> None:
    d = decide_for(None, "pg0", pg_primary())
    assert d.message == "demoted self because DCS is not accessible and I was a leader"
    assert d.actions == (Action("demote", None, "offline"),)
    assert d.level == "warning"
    assert d.notes == ("demoting self because DCS is not accessible and I was a leader",)


def test_dcs_unreachable_primary_with_failsafe_confirmed_keeps_running() -> None:
    d = decide_for(None, "pg0", pg_primary(), failsafe_confirmed=True)
    assert d.actions == ()
    assert d.message == ("continue to run as a leader because failsafe mode is enabled and all members "
                         "are accessible")


def test_dcs_unreachable_replica_keeps_running() -> None:
    d = decide_for(None, "pg1", pg_replica(following="pg0"))
    assert d.message == "DCS is not accessible" and d.actions == () and d.level == "warning"


def test_dcs_unreachable_stopped_node_starts_as_secondary_without_upstream() -> None:
    d = decide_for(None, "pg1", pg_stopped(role="primary"))
    assert d.actions == (Action("start", None, "replica"),)
    assert d.message == "DCS is not accessible; starting as a secondary"


def test_dcs_unreachable_empty_data_dir_does_nothing() -> None:
    d = decide_for(None, "pg1", pg_empty())
    assert d.actions == () and d.message == "DCS is not accessible"


# --- empty data directory ------------------------------------------------------------------------------

@pytest.mark.parametrize("data_dir", ["empty", "missing"])
def test_empty_data_dir_bootstraps_a_new_cluster(data_dir: str) -> None:
    c = cluster([], initialize=None)
    d = decide_for(c, "pg0", pg_empty(data_dir))
    assert d.kinds == ["bootstrap"]
    assert d.message == "initialized a new cluster"
    # Losing the race is not an error: the loop logs this instead of "the bootstrap action failed".
    assert d.actions[-1].fail_message == "not initializing a new cluster here; waiting for the leader to clone from it"


@pytest.mark.parametrize("node", [
    settings("pg0", nofailover=True),
    settings("pg0", nofailover=False, failover_priority=0),  # priority <= 0 means nofailover
    settings("pg0", can_bootstrap=False),
])
def test_empty_data_dir_node_that_may_not_bootstrap_waits(node) -> None:
    c = cluster([], initialize=None)
    d = decide_for(c, "pg0", pg_empty(), settings=node)
    assert d.actions == () and d.message == "waiting for leader to bootstrap"


@pytest.mark.parametrize("initialize", ["", SYSID])
def test_empty_data_dir_with_initialize_and_no_leader_waits(initialize: str) -> None:
    # "" is another node's bootstrap in progress; a sysid is a cluster whose leader is gone.
    c = cluster([replica("pg1", state="stopped")], initialize=initialize)
    d = decide_for(c, "pg0", pg_empty())
    assert d.actions == () and d.message == "waiting for leader to bootstrap"


def test_empty_data_dir_clones_from_the_leader() -> None:
    d = decide_for(healthy3(), "pg3", pg_empty())
    assert d.actions == (Action("clone", "pg0"),)
    assert d.message == "bootstrapped from leader 'pg0'"
    assert d.notes == ("trying to bootstrap from leader 'pg0'",)


def test_empty_data_dir_clones_from_a_running_clonefrom_replica() -> None:
    c = cluster([primary("pg0"), replica("pg1"), replica("pg2", tags={"clonefrom": True})], leader="pg0")
    d = decide_for(c, "pg3", pg_empty())
    assert d.actions == (Action("clone", "pg2"),)
    assert d.message == "bootstrapped from replica 'pg2'"
    assert d.notes == ("trying to bootstrap from replica 'pg2'",)


def test_empty_data_dir_ignores_stopped_or_own_clonefrom_members() -> None:
    c = cluster([primary("pg0"), replica("pg2", state="stopped", tags={"clonefrom": True}),
                 replica("pg3", tags={"clonefrom": True})], leader="pg0")
    d = decide_for(c, "pg3", pg_empty())
    assert d.actions == (Action("clone", "pg0"),)


def test_empty_data_dir_with_leader_key_but_no_leader_member_waits() -> None:
    c = cluster([replica("pg1")], leader="pg0")
    d = decide_for(c, "pg3", pg_empty())
    assert d.actions == () and d.message == "waiting for leader to bootstrap"


def test_empty_data_dir_while_holding_the_lock_releases_it() -> None:
    d = decide_for(healthy3(), "pg0", pg_empty())
    assert d.actions == (Action("release_lock"),)
    assert d.message == "released leader key voluntarily as data dir empty and currently leader"


def test_empty_data_dir_under_a_running_postgres_stops_it_first() -> None:
    # Spec 2.2 step 8: the data dir vanished under a running postmaster; stop it, then give up the lock.
    d = decide_for(healthy3(), "pg0", pg_empty("missing", running=True))
    assert d.actions == (Action("stop", None, "immediate"), Action("release_lock"))
    d = decide_for(healthy3(), "pg1", pg_empty("empty", running=True))
    assert d.kinds == ["stop", "clone"]


def test_empty_data_dir_paused_does_nothing() -> None:
    c = cluster([primary("pg0")], leader="pg0", pause=True)
    d = decide_for(c, "pg3", pg_empty())
    assert d.actions == () and d.message == "PAUSE: running with empty data directory"


def test_empty_data_dir_paused_lock_holder_still_releases() -> None:
    c = cluster([primary("pg0")], leader="pg0", pause=True)
    d = decide_for(c, "pg0", pg_empty())
    assert d.actions == (Action("release_lock"),)
    assert d.message == "PAUSE: released leader key voluntarily as data dir empty and currently leader"


# --- invalid data dir, system id -------------------------------------------------------------------------

def test_invalid_data_dir_warns_and_does_nothing() -> None:
    d = decide_for(healthy3(), "pg1", LocalPostgres(data_dir="invalid"))
    assert d.actions == () and d.level == "warning"
    assert d.message == ("data dir for the cluster is not empty, but system ID is invalid; "
                         "consider doing reinitialize")


def test_sysid_mismatch_is_fatal() -> None:
    d = decide_for(healthy3(), "pg1", pg_replica(sysid=OTHER_SYSID))
    assert d.actions == (Action("fatal"),) and d.level == "error"
    assert d.message == (f"system ID mismatch, node pg1 belongs to a different cluster: "
                         f"{OTHER_SYSID} != {SYSID}")


def test_sysid_mismatch_paused_warns_and_releases_the_lock() -> None:
    c = healthy3(pause=True)
    d = decide_for(c, "pg0", pg_primary(sysid=OTHER_SYSID))
    assert d.actions == (Action("release_lock"),) and d.level == "warning"
    assert d.message.startswith("PAUSE: system ID mismatch, node pg0 belongs to a different cluster")
    d = decide_for(c, "pg1", pg_replica(sysid=OTHER_SYSID))
    assert d.actions == () and d.level == "warning"


def test_bootstrap_in_progress_initialize_is_not_a_mismatch() -> None:
    c = cluster([primary("pg0"), replica("pg1")], leader="pg0", initialize="")
    d = decide_for(c, "pg1", pg_replica(following="pg0"))
    assert d.actions == () and "fatal" not in d.kinds


# --- adoption of existing data -----------------------------------------------------------------------------

def test_stopped_node_without_initialize_adopts_its_data_then_starts() -> None:
    c = cluster([], initialize=None)
    d = decide_for(c, "pg0", pg_stopped(role="primary"))
    assert d.actions == (Action("set_initialize"), Action("start", None, "replica"))
    assert d.message == "starting as a secondary"


def test_running_primary_without_initialize_adopts_and_races() -> None:
    c = cluster([], initialize=None)
    d = decide_for(c, "pg0", pg_primary(), peers={})
    assert d.kinds == ["set_initialize", "acquire_lock"]
    assert d.message == "acquired session lock as a leader"


def test_running_replica_without_initialize_aborts() -> None:
    c = cluster([], initialize=None)
    d = decide_for(c, "pg1", pg_replica())
    assert d.actions == (Action("fatal"),) and d.level == "error"
    assert d.message == "No initialize key in DCS and PostgreSQL is running as replica, aborting start"


def test_missing_initialize_with_a_leader_is_left_to_the_leader() -> None:
    c = healthy3(initialize=None)
    d = decide_for(c, "pg1", pg_replica(following="pg0"))
    assert "set_initialize" not in d.kinds and "fatal" not in d.kinds


# --- PostgreSQL is down ------------------------------------------------------------------------------------

def test_down_paused_does_nothing() -> None:
    d = decide_for(healthy3(pause=True), "pg1", pg_stopped())
    assert d.actions == () and d.message == "PAUSE: postgres is not running"


def test_down_paused_lock_holder_releases_the_lock() -> None:
    d = decide_for(healthy3(pause=True), "pg0", pg_stopped(role="primary", crashed=True))
    assert d.actions == (Action("release_lock"),)
    assert d.message == "PAUSE: removed leader lock because postgres is not running"


@pytest.mark.parametrize("crashed", [True, False])
def test_down_lock_holder_primary_restarts_as_primary(crashed: bool) -> None:
    d = decide_for(healthy3(), "pg0", pg_stopped(role="primary", crashed=crashed), lock_refreshed=True)
    assert d.actions == (Action("start", None, "primary"),)
    assert d.message == "starting primary after failure"


def test_down_lock_holder_primary_without_refreshed_lock_does_not_start_as_primary() -> None:
    # Patroni only restarts a crashed primary as primary after update_lock() succeeded.
    d = decide_for(healthy3(), "pg0", pg_stopped(role="primary", crashed=False), lock_refreshed=False)
    assert d.actions == (Action("start", None, "replica"),)
    assert d.message == "starting as readonly because i had the session lock"
    d = decide_for(healthy3(), "pg0", pg_stopped(role="primary", crashed=True), lock_refreshed=False)
    assert d.actions == (Action("crash_recovery"),)


def test_down_crashed_replica_starts_as_a_replica() -> None:
    # No single-user recovery for a replica: it would end recovery ahead of the primary.
    d = decide_for(healthy3(), "pg1", pg_stopped(crashed=True))
    assert d.actions == (Action("start", "pg0", "replica"),)
    assert d.message == "starting as a secondary"


def test_down_lock_holder_replica_starts_readonly() -> None:
    d = decide_for(healthy3(), "pg0", pg_stopped(role="replica"))
    assert d.actions == (Action("start", None, "replica"),)
    assert d.message == "starting as readonly because i had the session lock"


def test_down_without_leader_starts_as_secondary() -> None:
    d = decide_for(leaderless3(), "pg1", pg_stopped())
    assert d.actions == (Action("start", None, "replica"),)
    assert d.message == "starting as a secondary"


def test_down_with_leader_starts_following_it() -> None:
    d = decide_for(healthy3(), "pg1", pg_stopped())
    assert d.actions == (Action("start", "pg0", "replica"),)
    assert d.message == "starting as a secondary"


def test_down_replicatefrom_a_running_member() -> None:
    d = decide_for(healthy3(), "pg2", pg_stopped(), settings=settings("pg2", replicatefrom="pg1"))
    assert d.actions == (Action("start", "pg1", "replica"),)


@pytest.mark.parametrize("wanted", ["pg9", "pg2", "pg1-stopped"])
def test_down_replicatefrom_falls_back_to_the_leader(wanted: str) -> None:
    c = cluster([primary("pg0"), replica("pg1-stopped", state="stopped", index=1), replica("pg2")], leader="pg0")
    d = decide_for(c, "pg2", pg_stopped(), settings=settings("pg2", replicatefrom=wanted))
    assert d.actions == (Action("start", "pg0", "replica"),)


def _after_failover(leader_checkpointed: bool = True) -> Cluster:
    """pg1 promoted at LSN on timeline 1 -> 2; pg0 was the old primary."""
    return cluster([primary("pg1", lsn=LSN + 4096, timeline=2,
                            checkpoint_after_promote=None if leader_checkpointed else False),
                    replica("pg2", lsn=LSN + 4096, timeline=2)],
                   leader="pg1", history=[[1, LSN, "no recovery target specified"]])


def test_down_diverged_rewinds_then_starts() -> None:
    d = decide_for(_after_failover(), "pg0", pg_stopped(role="primary", lsn=LSN + 200, timeline=1))
    assert d.actions == (Action("rewind", "pg1"), Action("start", "pg1", "replica"))
    assert d.message == "starting as a secondary"
    assert d.notes == ("running pg_rewind from pg1",)


def test_down_not_diverged_just_starts() -> None:
    d = decide_for(_after_failover(), "pg0", pg_stopped(role="replica", lsn=LSN, timeline=1))
    assert d.actions == (Action("start", "pg1", "replica"),)


def test_down_diverged_waits_for_checkpoint_after_promote() -> None:
    d = decide_for(_after_failover(leader_checkpointed=False), "pg0",
                   pg_stopped(role="primary", lsn=LSN + 200, timeline=1))
    assert d.actions == ()
    assert d.message == "Waiting for checkpoint on pg1 before rewind"


def test_down_diverged_crashed_does_crash_recovery_before_rewind() -> None:
    d = decide_for(_after_failover(), "pg0", pg_stopped(role="primary", lsn=LSN + 200, timeline=1, crashed=True))
    assert d.actions == (Action("crash_recovery"),)


def test_down_rewind_failed_reinitializes_when_allowed() -> None:
    d = decide_for(_after_failover(), "pg0", pg_stopped(role="primary", lsn=LSN + 200, timeline=1),
                   rewind_failed=True, settings=settings("pg0", remove_data_directory_on_rewind_failure=True))
    assert d.actions == (Action("reinit", "pg1"),) and d.level == "warning"
    assert d.message == "reinitializing after a failed pg_rewind"


def test_down_rewind_failed_starts_anyway_without_removal() -> None:
    d = decide_for(_after_failover(), "pg0", pg_stopped(role="primary", lsn=LSN + 200, timeline=1),
                   rewind_failed=True)
    assert d.actions == (Action("start", "pg1", "replica"),) and d.level == "warning"
    assert "remove_data_directory_on_rewind_failure is off" in d.message


def test_down_diverged_without_pg_rewind_reinitializes_when_allowed() -> None:
    node = settings("pg0", use_pg_rewind=False, remove_data_directory_on_diverged_timelines=True)
    d = decide_for(_after_failover(), "pg0", pg_stopped(role="primary", lsn=LSN + 200, timeline=1), settings=node)
    assert d.actions == (Action("reinit", "pg1"),)
    assert d.message == "reinitializing due to diverged timelines"


def test_down_diverged_without_pg_rewind_starts_anyway() -> None:
    node = settings("pg0", use_pg_rewind=False)
    d = decide_for(_after_failover(), "pg0", pg_stopped(role="primary", lsn=LSN + 200, timeline=1), settings=node)
    assert d.actions == (Action("start", "pg1", "replica"),) and d.level == "warning"
    assert "use_pg_rewind is off" in d.message


def test_down_diverged_start_uses_replicatefrom_but_rewinds_from_leader() -> None:
    d = decide_for(_after_failover(), "pg0", pg_stopped(role="primary", lsn=LSN + 200, timeline=1),
                   settings=settings("pg0", replicatefrom="pg2"))
    assert d.actions == (Action("rewind", "pg1"), Action("start", "pg2", "replica"))


# --- healthy cluster, I hold the lock -----------------------------------------------------------------------

def test_lock_refresh_failed_primary_demotes_immediate_nolock() -> None:
    d = decide_for(healthy3(), "pg0", pg_primary(), lock_refreshed=False)
    assert d.actions == (Action("demote", None, "immediate-nolock"),) and d.level == "error"
    assert d.message == "demoted self because failed to update leader lock in DCS"
    assert d.notes == ("failed to update leader lock",)


def test_lock_refresh_failed_paused_primary_continues() -> None:
    d = decide_for(healthy3(pause=True), "pg0", pg_primary(), lock_refreshed=False)
    assert d.actions == ()
    assert d.message == "PAUSE: continue to run as primary after failing to update leader lock in DCS"


def test_lock_refresh_failed_replica_does_not_promote() -> None:
    d = decide_for(healthy3(), "pg0", pg_replica(), lock_refreshed=False)
    assert d.actions == () and d.level == "error"
    assert d.message == "not promoting because failed to update leader lock in DCS"


def test_replica_with_the_lock_promotes() -> None:
    d = decide_for(healthy3(), "pg0", pg_replica())
    assert d.actions == (Action("promote"),)
    assert d.message == "promoted self to leader because I had the session lock"


def test_primary_with_the_lock_does_nothing() -> None:
    d = decide_for(healthy3(), "pg0", pg_primary())
    assert d.actions == () and d.level == "info"
    assert d.message == "no action. I am (pg0), the leader with the lock"


def test_paused_replica_with_the_lock_releases_it() -> None:
    d = decide_for(healthy3(pause=True), "pg0", pg_replica())
    assert d.actions == (Action("release_lock"),)
    assert d.message == "PAUSE: removed leader lock because postgres is not running as primary"


def test_paused_primary_with_the_lock_does_nothing() -> None:
    d = decide_for(healthy3(pause=True), "pg0", pg_primary())
    assert d.actions == () and d.message == "PAUSE: no action. I am (pg0), the leader with the lock"


# --- healthy cluster, someone else holds the lock ------------------------------------------------------------

def test_primary_without_the_lock_demotes() -> None:
    d = decide_for(healthy3(), "pg1", pg_primary())
    assert d.actions == (Action("demote", "pg0", "immediate-nolock"),)
    assert d.message == "demoting self because I do not have the lock and I was a leader"
    assert d.notes == ("Demoting self (immediate-nolock)",)


def test_primary_without_the_lock_demotes_towards_replicatefrom() -> None:
    d = decide_for(healthy3(), "pg1", pg_primary(), settings=settings("pg1", replicatefrom="pg2"))
    assert d.actions == (Action("demote", "pg2", "immediate-nolock"),)


def test_paused_primary_without_the_lock_is_left_alone() -> None:
    d = decide_for(healthy3(pause=True), "pg1", pg_primary())
    assert d.actions == () and d.level == "warning"
    assert d.message == "PAUSE: no action. I am (pg1), a primary without the lock while paused"


def test_replica_already_following_the_leader_does_nothing() -> None:
    d = decide_for(healthy3(), "pg1", pg_replica(following="pg0"))
    assert d.actions == ()
    assert d.message == "no action. I am (pg1), a secondary, and following a leader (pg0)"


@pytest.mark.parametrize("following", [None, "pg2", "ghost"])
def test_replica_following_someone_else_is_repointed(following) -> None:
    d = decide_for(healthy3(), "pg1", pg_replica(following=following))
    assert d.actions == (Action("follow", "pg0"),)
    assert d.message == "no action. I am (pg1), a secondary, and following a leader (pg0)"


def test_replica_with_replicatefrom_follows_that_member() -> None:
    node = settings("pg2", replicatefrom="pg1")
    assert decide_for(healthy3(), "pg2", pg_replica(following="pg0"), settings=node).actions == (
        Action("follow", "pg1"),)
    assert decide_for(healthy3(), "pg2", pg_replica(following="pg1"), settings=node).actions == ()


def test_running_replica_on_a_diverged_timeline_stops_to_rewind() -> None:
    d = decide_for(_after_failover(), "pg0", pg_replica(lsn=LSN + 200, timeline=1, following="pg1"))
    assert d.actions == (Action("stop", None, "fast"),) and d.level == "warning"
    assert d.message.startswith("stopping to rewind")


def test_replica_that_followed_the_switch_is_not_restarted_when_its_leader_stops() -> None:
    """After a switchover pg0 -> pg1 pg0 replicates pg1 on timeline 2, past the switch point. pg1's
    PostgreSQL then stops (its daemon frozen, its fencing guard stopped it): pg0's walreceiver is
    gone. Seen with the timeline its postmaster last streamed (queries.replica_timeline), pg0
    waits for the lock instead of stopping its PostgreSQL to rewind (it was restarted, "my timeline
    2 diverged", just before promoting itself)."""
    from hatui.daemon.queries import PgState, replica_timeline

    c = _after_failover()
    streaming = PgState(running=True, in_recovery=True, timeline=2, postmaster_start_time="t0")
    tl, seen = replica_timeline(None, streaming)
    upstream_gone = PgState(running=True, in_recovery=True, timeline=1, postmaster_start_time="t0")
    tl, seen = replica_timeline(seen, upstream_gone)
    assert tl == 2
    d = decide_for(c, "pg0", pg_replica(lsn=LSN + 8192, timeline=tl, following="pg1"))
    assert d.actions == () and not d.message.startswith("stopping to rewind")
    # What it decided before, from the checkpoint's lagging timeline: a needless restart.
    before = decide_for(c, "pg0", pg_replica(lsn=LSN + 8192, timeline=1, following="pg1"))
    assert before.message.startswith("stopping to rewind")


def test_replica_timeline_is_kept_per_postmaster_and_only_for_standbys() -> None:
    from hatui.daemon.queries import PgState, replica_timeline

    def st(tl, start="t0", rec=True):
        return PgState(running=True, in_recovery=rec, timeline=tl, postmaster_start_time=start)

    tl, seen = replica_timeline(None, st(2))
    assert (tl, seen) == (2, ("t0", 2))
    assert replica_timeline(seen, st(1))[0] == 2  # the receiver went away: not back to 1
    assert replica_timeline(seen, st(3)) == (3, ("t0", 3))  # newer wins
    assert replica_timeline(seen, st(1, start="t1")) == (1, ("t1", 1))  # restarted postmaster
    assert replica_timeline(seen, st(1, rec=False)) == (1, None)  # promoted: what it says


def test_running_replica_on_an_old_timeline_without_divergence_just_follows() -> None:
    d = decide_for(_after_failover(), "pg0", pg_replica(lsn=LSN, timeline=1, following=None))
    assert d.actions == (Action("follow", "pg1"),)


@pytest.mark.parametrize("how", ["paused", "no_rewind"])
def test_running_diverged_replica_is_not_stopped_when_paused_or_without_pg_rewind(how: str) -> None:
    c = _after_failover()
    node = settings("pg0")
    if how == "paused":
        c = cluster([primary("pg1", lsn=LSN + 4096, timeline=2)], leader="pg1", pause=True,
                    history=[[1, LSN, "no recovery target specified"]])
    else:
        node = settings("pg0", use_pg_rewind=False)
    d = decide_for(c, "pg0", pg_replica(lsn=LSN + 200, timeline=1, following="pg1"), settings=node)
    assert "stop" not in d.kinds


# --- manual switchover / failover, on the leader ---------------------------------------------------------------

def _switch(failover: dict, members=None, **kw) -> Cluster:
    members = members or [primary("pg0"), replica("pg1"), replica("pg2")]
    return cluster(members, leader="pg0", failover=failover, **kw)


def test_scheduled_switchover_in_the_future_waits() -> None:
    when = NOW + timedelta(minutes=5)
    c = _switch({"leader": "pg0", "member": "pg1", "scheduled_at": when.isoformat()})
    d = decide_for(c, "pg0", pg_primary(), now=NOW)
    assert d.actions == ()
    assert d.message == "no action. I am (pg0), the leader with the lock"
    assert d.notes == (f"Awaiting switchover at {when.isoformat()} (in 300 seconds)",)


def test_scheduled_switchover_that_is_due_proceeds() -> None:
    c = _switch({"leader": "pg0", "member": "pg1", "scheduled_at": (NOW - timedelta(seconds=1)).isoformat()})
    d = decide_for(c, "pg0", pg_primary(), now=NOW)
    assert d.actions == (Action("probe_peers"),)


def test_switchover_leader_name_mismatch_cleans_the_key() -> None:
    d = decide_for(_switch({"leader": "pg2", "member": "pg1"}), "pg0", pg_primary())
    assert d.actions == (Action("clear_failover"),) and d.level == "warning"
    assert d.message == "Cleaning up failover key"
    assert d.notes == ("switchover: leader name does not match: pg2 != pg0",)


@pytest.mark.parametrize("failover,action", [({"leader": "pg0", "member": "pg0"}, "switchover"),
                                             ({"member": "pg0"}, "manual failover")])
def test_switchover_to_myself_cleans_the_key(failover: dict, action: str) -> None:
    d = decide_for(_switch(failover), "pg0", pg_primary())
    assert d.actions == (Action("clear_failover"),)
    assert d.notes == (f"{action}: I am already the leader, no need to {action}",)


def test_switchover_probes_the_candidates_first() -> None:
    d = decide_for(_switch({"leader": "pg0", "member": "pg1"}), "pg0", pg_primary())
    assert d.actions == (Action("probe_peers"),)
    assert d.message == "switchover: checking candidates"


@pytest.mark.parametrize("members,answers", [
    (None, [peer("pg1", reachable=False), peer("pg2")]),  # unreachable
    (None, [peer("pg1", lsn=LSN - 2 * MB), peer("pg2")]),  # lagging more than maximum_lag_on_failover
    ([primary("pg0"), replica("pg1", tags={"nofailover": True}), replica("pg2")], [peer("pg1"), peer("pg2")]),
    ([primary("pg0"), replica("pg1", tags={"failover_priority": 0}), replica("pg2")], [peer("pg1"), peer("pg2")]),
    ([primary("pg0"), replica("pg2")], [peer("pg2")]),  # the candidate has no member key
])
def test_switchover_to_an_unhealthy_candidate_cleans_the_key(members, answers) -> None:
    c = _switch({"leader": "pg0", "member": "pg1"}, members)
    d = decide_for(c, "pg0", pg_primary(), peers=peers(*answers))
    assert d.actions == (Action("clear_failover"),) and d.message == "Cleaning up failover key"
    assert d.notes == ("switchover: no healthy members found, switchover is not possible",)


def test_switchover_in_sync_mode_needs_a_synchronous_candidate() -> None:
    kw = dict(synchronous_mode=True, sync=("pg0", ["pg2"]))
    d = decide_for(_switch({"leader": "pg0", "member": "pg1"}, **kw), "pg0", pg_primary(),
                   peers=peers(peer("pg1"), peer("pg2")))
    assert d.kinds == ["clear_failover"]
    d = decide_for(_switch({"leader": "pg0", "member": "pg2"}, **kw), "pg0", pg_primary(),
                   peers=peers(peer("pg1"), peer("pg2")))
    assert d.actions == (Action("switchover_demote", "pg2"),)


def test_manual_failover_in_sync_mode_may_pick_an_async_node() -> None:
    # Patroni: "in synchronous mode we allow failover (not switchover!) to async node".
    c = _switch({"member": "pg1"}, synchronous_mode=True, sync=("pg0", ["pg2"]))
    d = decide_for(c, "pg0", pg_primary(), peers=peers(peer("pg1"), peer("pg2")))
    assert d.actions == (Action("switchover_demote", "pg1"),)
    assert d.message == "manual failover: demoting myself"


def test_switchover_to_a_healthy_candidate_demotes_gracefully() -> None:
    d = decide_for(_switch({"leader": "pg0", "member": "pg1"}), "pg0", pg_primary(),
                   peers=peers(peer("pg1", lsn=LSN - MB), peer("pg2")))  # lag == maximum is fine
    assert d.actions == (Action("switchover_demote", "pg1"),)
    assert d.message == "switchover: demoting myself"
    assert d.notes == ("Demoting self (graceful)",)


def test_switchover_without_candidate_picks_the_best_healthy_member() -> None:
    c = _switch({"leader": "pg0"}, [primary("pg0"), replica("pg1", tags={"nofailover": True}),
                                    replica("pg2", lsn=LSN - 100), replica("pg3")])
    d = decide_for(c, "pg0", pg_primary(), peers=peers(peer("pg1"), peer("pg2", lsn=LSN - 100), peer("pg3")))
    assert d.actions == (Action("switchover_demote", "pg3"),)
    d = decide_for(c, "pg0", pg_primary(), peers=peers(peer("pg1"), peer("pg2", lsn=LSN - 100),
                                                        peer("pg3", reachable=False)))
    assert d.actions == (Action("switchover_demote", "pg2"),)


# --- leader race (no leader key) ----------------------------------------------------------------------------

def test_race_paused_primary_takes_the_lock() -> None:
    c = leaderless3(pause=True)
    d = decide_for(c, "pg1", pg_primary())
    assert d.actions == (Action("acquire_lock", fail_message="failed to acquire the lock while paused"),)
    assert d.message == "PAUSE: acquired session lock as a leader"


def test_race_paused_replica_does_nothing() -> None:
    d = decide_for(leaderless3(pause=True), "pg1", pg_replica(), peers={})
    assert d.actions == () and d.message == "PAUSE: no action. I am (pg1)"


@pytest.mark.parametrize("node", [settings("pg1", nofailover=True),
                                  settings("pg1", failover_priority=0),
                                  settings("pg1", failover_priority=-1)])
def test_race_nofailover_never_races(node) -> None:
    d = decide_for(leaderless3(), "pg1", pg_replica(), settings=node, peers={})
    assert d.actions == ()
    assert d.message == "following a different leader because I am not allowed to promote"
    d = decide_for(leaderless3(), "pg1", pg_primary(), settings=node, peers={})
    assert d.actions == (Action("demote", None, "immediate"),)
    assert d.message == "demoting self because I am not allowed to promote"


def test_race_nofailover_named_candidate_still_does_not_race() -> None:
    # Spec 2.4: the nofailover check comes before the manual-failover logic.
    c = leaderless3(failover={"member": "pg1"})
    d = decide_for(c, "pg1", pg_replica(), settings=settings("pg1", nofailover=True), peers={})
    assert "acquire_lock" not in d.kinds and "promote" not in d.kinds


def test_race_primary_on_an_old_timeline_demotes() -> None:
    c = cluster([replica("pg2", timeline=3)], history=[[1, LSN, ""], [2, LSN + 10, ""]], optime=LSN)
    d = decide_for(c, "pg1", pg_primary(timeline=2))
    assert d.actions == (Action("demote", None, "immediate"),)
    assert d.message == "demoting self because i am not the healthiest node"
    assert d.notes == ("My timeline 2 is behind last known cluster timeline 3",)


def test_race_sync_mode_only_sync_standbys_race() -> None:
    c = leaderless3(synchronous_mode=True, sync=("pg0", ["pg2"]))
    d = decide_for(c, "pg1", pg_replica())
    assert d.actions == ()
    assert d.notes == (("pg1 is not a synchronous standby and synchronous mode is on: /sync lists pg2 (leader pg0) "
                        "as holding every acknowledged commit, so only they may take over; to promote pg1 anyway: "
                        "hatui failover batman --candidate pg1"),)
    d = decide_for(c, "pg2", pg_replica())
    assert d.actions == (Action("probe_peers"),)


def test_race_sync_mode_former_leader_may_race() -> None:
    c = leaderless3(synchronous_mode=True, sync=("pg1", ["pg2"]), lsn1=LSN + 10)
    d = decide_for(c, "pg1", pg_replica(lsn=LSN + 10), peers=peers(peer("pg2")))
    assert d.kinds == ["acquire_lock", "promote"]


def test_race_sync_mode_an_async_replica_ahead_does_not_block_the_sync_standby() -> None:
    # Spec 2.4 item 9: the sync standby is compared with synchronous candidates only; an async
    # replica that received more WAL can never race, so it must not stop the sync standby either.
    c = leaderless3(synchronous_mode=True, sync=("pg0", ["pg2"]), lsn1=LSN + 100)
    d = decide_for(c, "pg2", pg_replica(), peers=peers(peer("pg1", lsn=LSN + 100)))
    assert d.kinds == ["acquire_lock", "promote"]


def test_race_sync_mode_the_former_leader_ahead_does_not_block_the_sync_standby() -> None:
    # The former leader demoted itself (cut off from etcd) but still answers its REST API, with WAL
    # that no commit acknowledged (the sync standby has every acknowledged one). Losing to it left
    # the cluster without a leader as long as that lasted (tests/hosts one-way link scenario).
    c = leaderless3(synchronous_mode=True, sync=("pg0", ["pg2"]))
    d = decide_for(c, "pg2", pg_replica(), peers=peers(peer("pg0", lsn=LSN + 500), peer("pg1")))
    assert d.kinds == ["acquire_lock", "promote"]
    assert d.notes == ("Ignoring the former leader pg0 being ahead of us",)
    # Outside synchronous mode the former leader ahead still wins (it may hold acknowledged commits).
    d = decide_for(leaderless3(), "pg2", pg_replica(), peers=peers(peer("pg0", lsn=LSN + 500), peer("pg1")))
    assert d.actions == () and d.notes == ("Wal position of pg0 is ahead of my wal position",)


def test_race_sync_mode_a_live_async_primary_still_blocks() -> None:
    c = leaderless3(synchronous_mode=True, sync=("pg0", ["pg2"]))
    d = decide_for(c, "pg2", pg_replica(), peers=peers(peer("pg1", role="primary")))
    assert d.actions == () and d.notes == ("Primary (pg1) is still alive",)


def test_race_manual_failover_probes_first() -> None:
    c = leaderless3(failover={"member": "pg2"})
    d = decide_for(c, "pg1", pg_replica())
    assert d.actions == (Action("probe_peers"),)
    assert d.message == "probing members before the leader race"


def test_race_others_defer_to_a_healthy_named_candidate() -> None:
    c = leaderless3(failover={"member": "pg2"}, lsn1=LSN + 100)
    d = decide_for(c, "pg1", pg_replica(lsn=LSN + 100), peers=peers(peer("pg2")))
    assert d.actions == ()
    assert d.message == "following a different leader because i am not the healthiest node"
    assert d.notes == ("manual failover: to pg2, i am pg1",)


def test_race_old_leader_still_primary_demotes_when_candidate_is_healthy() -> None:
    # It must not keep running as a primary without the lock while the candidate promotes.
    c = leaderless3(failover={"leader": "pg1", "member": "pg2"})
    d = decide_for(c, "pg1", pg_primary(), peers=peers(peer("pg2")))
    assert d.actions == (Action("demote", None, "immediate"),)


@pytest.mark.parametrize("candidate_answer", [peer("pg2", reachable=False), None])
def test_race_others_race_when_the_candidate_is_unhealthy(candidate_answer) -> None:
    c = leaderless3(failover={"leader": "pg0", "member": "pg2"})
    answers = peers(candidate_answer) if candidate_answer else {}
    d = decide_for(c, "pg1", pg_replica(), peers=answers)
    assert d.kinds == ["acquire_lock", "clear_failover", "promote"]
    assert d.message == "promoted self to leader by acquiring session lock"


def test_race_old_leader_does_not_race_when_another_member_can() -> None:
    c = leaderless3(failover={"leader": "pg1", "member": "pg2"})
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg2", reachable=False), peer("pg3")))
    assert d.actions == ()
    assert d.message == "following a different leader because i am not the healthiest node"


def test_race_old_leader_races_when_it_is_the_only_healthy_member() -> None:
    # A switchover whose candidate died before promoting: without this the cluster never gets a leader.
    c = leaderless3(failover={"leader": "pg1", "member": "pg2"})
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg2", reachable=False)))
    assert d.kinds == ["acquire_lock", "clear_failover", "promote"]


def test_race_old_leader_steps_aside_for_members_of_unknown_position_when_the_cluster_position_is_unknown() -> None:
    # Those members race (no optime to measure lag against), so the old leader must not.
    c = leaderless3(failover={"leader": "pg1"}, optime=None)
    d = decide_for(c, "pg1", pg_primary(), peers=peers(peer("pg2", lsn=None)))
    assert d.actions == (Action("demote", None, "immediate"),)
    assert d.notes == ("switchover: another member takes over from me",)
    # With a known cluster position, a member of unknown position cannot race: the old leader does.
    c = leaderless3(failover={"leader": "pg1"})
    d = decide_for(c, "pg1", pg_primary(), peers=peers(peer("pg2", lsn=None)))
    assert d.kinds == ["acquire_lock", "clear_failover"]


def test_race_others_ignore_the_old_leader_position() -> None:
    # The old leader has the shutdown checkpoint nobody else may have; it steps aside anyway.
    c = leaderless3(failover={"leader": "pg0", "member": "pg2"})
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg0", lsn=LSN + 500), peer("pg2", reachable=False)))
    assert d.kinds == ["acquire_lock", "clear_failover", "promote"]


def test_race_named_candidate_skips_the_lag_check_and_positions() -> None:
    c = leaderless3(failover={"leader": "pg0", "member": "pg1"}, optime=LSN + 10 * MB)
    d = decide_for(c, "pg1", pg_replica(lsn=LSN), peers=peers(peer("pg2", lsn=LSN + 10 * MB)))
    assert d.kinds == ["acquire_lock", "clear_failover", "promote"]


def test_race_named_candidate_loses_to_a_live_primary() -> None:
    c = leaderless3(failover={"member": "pg1"})
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg2", role="primary")))
    assert d.actions == () and d.notes == ("Primary (pg2) is still alive",)


def test_race_lag_over_maximum_loses() -> None:
    c = leaderless3(optime=LSN + MB + 1)
    d = decide_for(c, "pg1", pg_replica(lsn=LSN))
    assert d.actions == ()
    assert d.notes == (f"My wal position exceeds maximum replication lag: {MB + 1} > {MB} bytes",)


def test_race_lag_equal_to_maximum_may_race() -> None:
    c = leaderless3(optime=LSN + MB)
    assert decide_for(c, "pg1", pg_replica(lsn=LSN)).kinds == ["probe_peers"]


def test_race_lag_respects_configured_maximum() -> None:
    c = leaderless3(optime=LSN + 10, maximum_lag_on_failover=5)
    d = decide_for(c, "pg1", pg_replica(lsn=LSN))
    assert d.notes == ("My wal position exceeds maximum replication lag: 10 > 5 bytes",)


def test_race_unknown_position_loses() -> None:
    d = decide_for(leaderless3(), "pg1", pg_replica(lsn=None))
    assert d.actions == () and d.notes == ("My wal position is unknown",)


def test_race_unknown_position_without_cluster_position_may_race() -> None:
    c = leaderless3(optime=None)
    assert decide_for(c, "pg1", pg_replica(lsn=None)).kinds == ["probe_peers"]


def test_race_check_timeline_loses_on_an_old_timeline() -> None:
    c = cluster([replica("pg2", timeline=2)], history=[[1, LSN, ""]], optime=LSN,
                config=config_value(check_timeline=True))
    d = decide_for(c, "pg1", pg_replica(timeline=1))
    assert d.actions == () and d.notes == ("My timeline 1 is behind last known cluster timeline 2",)


def test_race_probes_first() -> None:
    d = decide_for(leaderless3(), "pg1", pg_replica())
    assert d.actions == (Action("probe_peers"),)
    assert d.message == "probing members before the leader race"


@pytest.mark.parametrize("nofailover", [False, True])
def test_race_a_live_primary_blocks_the_race(nofailover: bool) -> None:
    # Even a nofailover-tagged primary is a primary: promoting next to it is a split brain.
    d = decide_for(leaderless3(), "pg1", pg_replica(),
                   peers=peers(peer("pg2", role="primary", nofailover=nofailover, failover_priority=0)))
    assert d.actions == ()
    assert d.message == "following a different leader because i am not the healthiest node"
    assert d.notes == ("Primary (pg2) is still alive",)


def test_race_primary_loses_to_another_live_primary() -> None:
    d = decide_for(leaderless3(), "pg1", pg_primary(), peers=peers(peer("pg2", role="primary")))
    assert d.actions == (Action("demote", None, "immediate"),)
    assert d.message == "demoting self because i am not the healthiest node"


def test_race_peer_ahead_wins() -> None:
    d = decide_for(leaderless3(), "pg1", pg_replica(), peers=peers(peer("pg2", lsn=LSN + 1)))
    assert d.actions == () and d.notes == ("Wal position of pg2 is ahead of my wal position",)


@pytest.mark.parametrize("answer", [peer("pg2", lsn=LSN + 1, reachable=False),
                                    peer("pg2", lsn=LSN + 1, nofailover=True, failover_priority=0)])
def test_race_unreachable_or_nofailover_peers_do_not_count(answer) -> None:
    d = decide_for(leaderless3(), "pg1", pg_replica(), peers=peers(answer))
    assert d.kinds == ["acquire_lock", "promote"]


def test_race_equal_position_higher_priority_wins() -> None:
    d = decide_for(leaderless3(), "pg1", pg_replica(), peers=peers(peer("pg2", failover_priority=2)))
    assert d.actions == ()
    assert d.notes == ("pg2 has equally tolerable WAL position and priority 2, while this node has priority 1",)
    d = decide_for(leaderless3(), "pg2", pg_replica(), settings=settings("pg2", failover_priority=2),
                   peers=peers(peer("pg1")))
    assert d.kinds == ["acquire_lock", "promote"]


def test_race_equal_position_and_priority_both_race() -> None:
    for me, other in (("pg1", "pg2"), ("pg2", "pg1")):
        d = decide_for(leaderless3(), me, pg_replica(), peers=peers(peer(other)))
        assert d.kinds == ["acquire_lock", "promote"]


def test_race_winner_acquires_then_promotes() -> None:
    d = decide_for(leaderless3(), "pg1", pg_replica(lsn=LSN + 10), peers=peers(peer("pg2")))
    assert d.actions == (Action("acquire_lock", fail_message=ACQUIRE_FAIL), Action("promote"))
    assert d.message == "promoted self to leader by acquiring session lock"


def test_race_winning_primary_only_takes_the_lock() -> None:
    d = decide_for(leaderless3(), "pg1", pg_primary(lsn=LSN + 10), peers=peers(peer("pg2")))
    assert d.actions == (Action("acquire_lock", fail_message=ACQUIRE_FAIL),)
    assert d.message == "acquired session lock as a leader"


def test_race_running_primary_is_not_subject_to_the_lag_check() -> None:
    # Spec 2.4 item 4: a running primary (Patroni restarted) is healthy unless its timeline is behind.
    c = leaderless3(optime=LSN + 10 * MB)
    d = decide_for(c, "pg1", pg_primary(lsn=LSN), peers={})
    assert d.kinds == ["acquire_lock"]


# --- pause ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,pg,kw", [
    ("pg0", pg_primary(), {}),
    ("pg1", pg_replica(following="pg0"), {}),
    ("pg1", pg_primary(), {}),
    ("pg1", pg_stopped(), {}),
    ("pg0", pg_replica(), {}),
    ("pg3", pg_empty(), {}),
    ("pg0", pg_primary(), {"lock_refreshed": False}),
    ("pg1", LocalPostgres(data_dir="invalid"), {}),
])
def test_every_message_is_prefixed_in_pause_mode(name: str, pg: LocalPostgres, kw: dict) -> None:
    plain = decide_for(healthy3(), name, pg, **kw)
    paused = decide_for(healthy3(pause=True), name, pg, **kw)
    assert paused.message.startswith("PAUSE: ") and not paused.message.startswith("PAUSE: PAUSE: ")
    assert not plain.message.startswith("PAUSE")


def test_pause_prefix_is_applied_once_in_the_leaderless_paths() -> None:
    for pg in (pg_primary(), pg_replica(), pg_stopped()):
        d = decide_for(leaderless3(pause=True), "pg1", pg, peers={})
        assert d.message.startswith("PAUSE: ") and d.message.count("PAUSE: ") == 1


# --- needs_rewind and wal_lag ----------------------------------------------------------------------------------

def _rewind_view(history, leader_tl: int | None = 2) -> Cluster:
    members = [primary("pg1", timeline=leader_tl)] if leader_tl is not None else []
    return cluster(members, leader="pg1" if leader_tl is not None else None, history=history)


@pytest.mark.parametrize("local_tl,local_lsn,history,leader_tl,expected", [
    (None, LSN, [[1, LSN, ""]], 2, False),  # our timeline unknown
    (1, LSN + 1, [[1, LSN, ""]], None, True),  # no leader member: timeline from history (2)
    (1, LSN + 1, None, None, False),  # nothing known about the cluster's timeline
    (2, LSN + 1, [[1, LSN, ""]], 2, False),  # same timeline
    (3, LSN + 1, [[1, LSN, ""]], 2, True),  # ahead of the leader: a branch it never had (Patroni rewinds)
    (3, None, None, 2, True),  # ahead, nothing else known
    (1, None, [[1, LSN, ""]], 2, True),  # unknown position counts as diverged
    (1, LSN, None, 2, True),  # no history key: unknown
    (1, LSN + 1, [[1, LSN, ""]], 2, True),  # past the switch point
    (1, LSN, [[1, LSN, ""]], 2, False),  # exactly at the switch point
    (1, LSN - 1, [[1, LSN, ""]], 2, False),  # before it
    (2, LSN + 1, [[1, LSN, ""]], 3, True),  # our timeline missing from history
    (2, LSN + 5, [[1, LSN, ""], [2, LSN + 10, ""]], 3, False),
    (1, LSN + 5, [[1, LSN, ""], [2, LSN + 10, ""]], 3, True),
    (0, LSN, [[1, LSN, ""]], 2, False),  # timeline 0 = unknown
])
def test_needs_rewind(local_tl, local_lsn, history, leader_tl, expected) -> None:
    view = _rewind_view(history, leader_tl)
    assert needs_rewind(local_tl, local_lsn, view) is expected


def test_stopped_node_ahead_of_the_leader_is_rewound_before_it_starts() -> None:
    # pg1 promoted itself to timeline 3 on a branch; pg0 leads on timeline 2.
    c = cluster([primary("pg0", timeline=2), replica("pg1")], leader="pg0", history=[[1, LSN, ""]])
    d = decide_for(c, "pg1", pg_stopped(role="primary", timeline=3), settings=settings("pg1", use_pg_rewind=True))
    assert d.kinds == ["rewind", "start"]


def test_streaming_replica_ahead_of_a_stale_leader_key_is_not_stopped() -> None:
    # Right after a promotion the replica receives timeline 2 before the leader rewrote its key.
    c = cluster([primary("pg0", timeline=1), replica("pg1")], leader="pg0")
    d = decide_for(c, "pg1", pg_replica(timeline=2, following="pg0"), settings=settings("pg1", use_pg_rewind=True))
    assert d.actions == ()


def test_wal_lag() -> None:
    c = leaderless3(optime=LSN + 100)
    assert wal_lag(observe(c, "pg1", pg_replica(lsn=LSN))) == 100
    assert wal_lag(observe(c, "pg1", pg_replica(lsn=LSN + 500))) == 0  # never negative
    assert wal_lag(observe(c, "pg1", pg_replica(lsn=None))) is None
    assert wal_lag(observe(leaderless3(optime=None), "pg1", pg_replica())) is None
    assert wal_lag(observe(None, "pg1", pg_replica())) is None
    # With a leader, its own xlog_location counts when newer than status.optime.
    c = cluster([primary("pg0", lsn=LSN + 300)], leader="pg0", optime=LSN)
    assert wal_lag(observe(c, "pg1", pg_replica(lsn=LSN))) == 300


def test_decision_helpers() -> None:
    d = Decision("x", (Action("acquire_lock"), Action("promote")))
    assert d.kinds == ["acquire_lock", "promote"] and d.has("promote") and not d.has("demote")
    assert decide(observe(None, "pg0", pg_replica())).message


# --- paused and leaderless: only an operator's failover to a named candidate moves ------------------------------

def test_paused_leaderless_named_candidate_takes_the_lock_and_promotes() -> None:
    c = cluster([replica("pg1"), replica("pg2")], leader=None, pause=True,
                failover={"member": "pg1"})
    d = decide_for(c, "pg1", pg_replica())
    assert d.kinds == ["acquire_lock", "clear_failover", "promote"]
    assert d.message == "PAUSE: promoted self to leader by acquiring session lock"


def test_paused_leaderless_other_replica_does_not_move_for_someone_elses_failover() -> None:
    c = cluster([replica("pg1"), replica("pg2")], leader=None, pause=True,
                failover={"member": "pg1"})
    d = decide_for(c, "pg2", pg_replica())
    assert d.actions == ()


def test_paused_leaderless_scheduled_failover_is_not_run() -> None:
    c = cluster([replica("pg1")], leader=None, pause=True,
                failover={"member": "pg1", "scheduled_at": "2026-11-26T03:00:00+00:00"})
    d = decide_for(c, "pg1", pg_replica())
    assert "acquire_lock" not in d.kinds


def test_lock_holder_whose_postgres_fails_to_start_releases_the_lock() -> None:
    d = decide(observe(healthy3(), "pg0", pg_stopped(role="primary"), lock_refreshed=True, start_failed=True))
    assert d.actions == (Action("release_lock"),)
    assert d.message == "removed leader key after trying and failing to start postgres"


def test_replica_whose_postgres_failed_to_start_keeps_trying() -> None:
    d = decide(observe(healthy3(), "pg1", pg_stopped(), lock_refreshed=False, start_failed=True))
    assert "release_lock" not in d.kinds and "start" in d.kinds


# --- failsafe membership (spec 2.9) -----------------------------------------------------------------

def test_a_member_missing_from_failsafe_never_races() -> None:
    """With failsafe_mode on, a primary cut off from etcd may still run, confirmed by the members
    listed in /failsafe; a member not listed never heard from it, so it must not take the lock."""
    failsafe = ('failsafe', '{"pg0":"http://127.0.0.1:8008/patroni","pg2":"http://127.0.0.1:8010/patroni"}')
    c = cluster([replica("pg1"), replica("pg2")], optime=LSN, config=config_value(failsafe_mode=True),
                extra_kvs=[failsafe])
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg2", lsn=LSN - 1)))
    assert "acquire_lock" not in d.kinds
    assert d.notes == ("pg1 is not in the /failsafe key and failsafe mode is on",)
    d = decide_for(c, "pg2", pg_replica(), peers=peers(peer("pg1", lsn=LSN - 1)))
    assert d.kinds == ["acquire_lock", "promote"]
    # failsafe_mode off: the key is stale and means nothing.
    c = cluster([replica("pg1"), replica("pg2")], optime=LSN, extra_kvs=[failsafe])
    d = decide_for(c, "pg1", pg_replica(), peers=peers(peer("pg2", lsn=LSN - 1)))
    assert d.kinds == ["acquire_lock", "promote"]


def test_failsafe_primary_asks_everyone_it_last_read_or_wrote() -> None:
    from hatui.daemon.failsafe import members_to_confirm

    # The last read was taken before a new member joined; our last write already listed it.
    assert members_to_confirm({"pg0": "u0"}, {"pg0": "u0", "pg1": "u1"}) == {"pg0": "u0", "pg1": "u1"}
    assert members_to_confirm({"pg0": "u0", "pg2": "u2"}, None) == {"pg0": "u0", "pg2": "u2"}
    assert members_to_confirm(None, None) == {}
