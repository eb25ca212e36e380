"""Pure parts of issue 15: replica method arguments, bootstrap arguments, recovery settings, and the
standby-cluster decisions (data in, decision out)."""

from __future__ import annotations

from ha_builders import (
    cluster,
    config_value,
    observe,
    pg_empty,
    pg_primary,
    pg_replica,
    pg_stopped,
    primary,
    replica,
)
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hatui.daemon import standby_cluster
from hatui.daemon.bootstrap import custom_command, method_section
from hatui.daemon.ha import NodeSettings
from hatui.daemon.recovery import bootstrap_params, replica_params, strip_auto_conf
from hatui.daemon.replica_methods import basebackup_options, method_command, usable_methods

REMOTE = standby_cluster.REMOTE
SC = {"host": "10.0.0.9", "port": 5433, "restore_command": "cp /a/%f %p", "recovery_min_apply_delay": "5min"}


# --- replica methods ------------------------------------------------------------------------------

def test_custom_method_gets_patronis_arguments_and_its_extra_keys() -> None:
    args = method_command("wal_e", {"command": "/bin/restore --fast", "envdir": "/etc/wal-e", "keep_data": True},
                          "batman", "/data/pg", "dbname=postgres user=replicator host=h port=5432")
    assert args == ["/bin/restore", "--fast", "--envdir=/etc/wal-e", "--keep_data=True", "--scope=batman",
                    "--role=replica", "--datadir=/data/pg",
                    "--connstring=dbname=postgres user=replicator host=h port=5432"]


def test_no_params_keeps_only_the_extra_keys() -> None:
    args = method_command("pgbackrest", {"command": "pgbackrest restore", "no_params": True, "keep_data": True,
                                         "no_leader": True, "delta": "y"}, "batman", "/d", "c")
    assert args == ["pgbackrest", "restore", "--delta=y"]


def test_method_without_a_section_runs_its_name() -> None:
    assert method_command("my_clone", None, "s", "/d", "")[0] == "my_clone"


def test_without_a_source_only_no_leader_methods_remain() -> None:
    sections = {"pgbackrest": {"no_leader": True}, "barman": {"no_master": 1}, "wal_g": {}}
    methods = ["wal_g", "pgbackrest", "basebackup", "barman"]
    assert usable_methods(methods, sections, has_source=True) == methods
    assert usable_methods(methods, sections, has_source=False) == ["pgbackrest", "barman"]
    assert usable_methods([], {}, has_source=True) == ["basebackup"]


def test_basebackup_options_refuse_what_hatui_sets() -> None:
    args, refused = basebackup_options([{"max-rate": "100M"}, "verbose", {"pgdata": "/x"}, {"--label": "l"}])
    assert args == ["--max-rate=100M", "--verbose", "--label=l"] and refused == ["pgdata"]
    assert basebackup_options({"checkpoint": "fast"}) == (["--checkpoint=fast"], [])


# --- bootstrap ----------------------------------------------------------------------------------------

def test_custom_bootstrap_arguments() -> None:
    section = {"command": "/usr/bin/restore -q", "recovery_conf": {"a": 1}, "keep_existing_recovery_conf": True,
               "target": "2026-01-01 00:00:00", "scope": "ignored"}
    assert custom_command(section, "batman", "/d") == ["/usr/bin/restore", "-q", "--scope=batman", "--datadir=/d",
                                                       "--target=2026-01-01 00:00:00"]
    assert custom_command({**section, "no_params": True}, "batman", "/d")[2:] == ["--target=2026-01-01 00:00:00"]


def test_method_section_falls_back_to_initdb() -> None:
    assert method_section({"method": "pitr", "pitr": {"command": "x"}}) == ("pitr", {"command": "x"})
    assert method_section({"method": "pitr"}) == ("initdb", None)  # no command: initdb, as Patroni
    assert method_section({"method": "pitr", "pitr": {"keep_existing_recovery_conf": True}}) == ("initdb", None)
    assert method_section({}) == ("initdb", None)


def test_bootstrap_recovery_params_and_signal() -> None:
    params, signal = bootstrap_params({"restore_command": "cp %f %p", "recovery_target_time": "t",
                                       "recovery_target_inclusive": False, "pause_at_recovery_target": False})
    assert signal == "recovery.signal"
    assert params == {"restore_command": "cp %f %p", "recovery_target_time": "t",
                      "recovery_target_inclusive": "off", "recovery_target_action": "promote"}
    assert bootstrap_params({"standby_mode": "on"})[1] == "standby.signal"


# --- recovery settings on replicas ------------------------------------------------------------------

def test_replica_params_drop_targets_and_connection_and_blank_targets() -> None:
    p = replica_params({"restore_command": "cp %f %p", "recovery_target_time": "t", "primary_conninfo": "x",
                        "primary_slot_name": "s", "archive_cleanup_command": "clean %r",
                        "recovery_min_apply_delay": "1s"})
    assert p["restore_command"] == "cp %f %p" and p["archive_cleanup_command"] == "clean %r"
    assert p["recovery_min_apply_delay"] == "1s"
    assert p["recovery_target_time"] == "" and p["recovery_target"] == ""
    assert "primary_conninfo" not in p and "primary_slot_name" not in p


def test_standby_cluster_settings_override_and_apply_delay_only_on_the_standby_leader() -> None:
    mine = {"restore_command": "mine", "recovery_min_apply_delay": "1s"}
    leader = replica_params(mine, SC, standby_leader=True)
    member = replica_params(mine, SC, standby_leader=False)
    assert leader["restore_command"] == member["restore_command"] == "cp /a/%f %p"
    assert leader["recovery_min_apply_delay"] == "5min" and member["recovery_min_apply_delay"] == "1s"


def test_strip_auto_conf(tmp_path) -> None:
    (tmp_path / "postgresql.auto.conf").write_text(
        "# Do not edit\nwork_mem = '8MB'\nrestore_command = 'pgbackrest archive-get %f \"%p\"'\n"
        "recovery_target_time='x'\n")
    assert strip_auto_conf(str(tmp_path)) == ["restore_command", "recovery_target_time"]
    assert (tmp_path / "postgresql.auto.conf").read_text() == "# Do not edit\nwork_mem = '8MB'\n"
    assert strip_auto_conf(str(tmp_path)) == []


# --- standby cluster decisions ------------------------------------------------------------------------

def sc_cluster(members, leader=None, initialize="7712193093952314556", **cfg):
    return cluster(members, leader=leader, initialize=initialize, config=config_value(standby_cluster=SC, **cfg))


def sdecide(c, name, pg, **kw):
    return standby_cluster.decide(observe(c, name, pg, standby_cluster=True, **kw))


def test_config_of_follows_patronis_rule() -> None:
    from types import SimpleNamespace

    assert standby_cluster.config_of(SimpleNamespace(standby_cluster={"primary_slot_name": "x"})) is None
    assert standby_cluster.config_of(SimpleNamespace(standby_cluster={"port": 5433})) == {"port": 5433}
    assert standby_cluster.remote_address({"host": "h"}) == ("h", 5432)
    assert standby_cluster.remote_address({"restore_command": "x"}) is None


def test_first_node_bootstraps_a_standby_leader() -> None:
    c = sc_cluster([], initialize=None)
    d = sdecide(c, "pg0", pg_empty())
    assert d.notes == ("trying to bootstrap a new standby leader",)
    assert [(a.kind, a.mode) for a in d.actions] == [("bootstrap", "standby_leader")]


def test_no_bootstrap_section_waits_for_the_standby_leader() -> None:
    c = sc_cluster([], initialize=None)
    d = sdecide(c, "pg1", pg_empty(), settings=NodeSettings("pg1", can_bootstrap=False))
    assert d.message == "waiting for standby_leader to bootstrap" and d.actions == ()


def test_lock_holder_follows_the_remote_primary() -> None:
    c = sc_cluster([replica("pg0"), replica("pg1")], leader="pg0")
    d = sdecide(c, "pg0", pg_replica(following=None))
    assert d.message == "no action. I am (pg0), the standby leader with the lock"
    assert [(a.kind, a.target) for a in d.actions] == [("follow", REMOTE)]
    assert sdecide(c, "pg0", pg_replica(following=REMOTE)).actions == ()


def test_other_members_cascade_from_the_standby_leader() -> None:
    c = sc_cluster([replica("pg0"), replica("pg1")], leader="pg0")
    d = sdecide(c, "pg1", pg_replica(following=None))
    assert d.message == "no action. I am (pg1), a secondary, and following a standby leader (pg0)"
    assert [(a.kind, a.target) for a in d.actions] == [("follow", "pg0")]


def test_failover_makes_a_standby_leader_not_a_primary() -> None:
    c = sc_cluster([replica("pg1")], leader=None)
    assert sdecide(c, "pg1", pg_replica(following="pg0")).kinds == ["probe_peers"]
    d = sdecide(c, "pg1", pg_replica(following="pg0"), peers={})
    assert d.message == "promoted self to a standby leader by acquiring session lock"
    assert d.kinds == ["acquire_lock", "follow"] and d.actions[-1].target == REMOTE


def test_primary_with_the_lock_is_demoted_to_standby_leader() -> None:
    c = sc_cluster([primary("pg0"), replica("pg1")], leader="pg0")
    d = sdecide(c, "pg0", pg_primary())
    assert d.kinds == ["demote"] and d.actions[0].mode == "demote-cluster" and d.actions[0].target == REMOTE


def test_stopped_lock_holder_starts_as_standby_leader() -> None:
    c = sc_cluster([replica("pg0", state="stopped")], leader="pg0")
    d = sdecide(c, "pg0", pg_stopped())
    assert d.message == "starting as a standby leader because i had the session lock"
    assert [(a.kind, a.target, a.mode) for a in d.actions] == [("start", REMOTE, "replica")]


def test_promote_cluster_is_an_ordinary_promotion() -> None:
    c = cluster([replica("pg0")], leader="pg0")  # the standby_cluster section is gone
    d = standby_cluster.decide(observe(c, "pg0", pg_replica(following=REMOTE), standby_cluster=False))
    assert "promote" in d.kinds


_pg = st.sampled_from([pg_empty(), pg_primary(), pg_replica(), pg_replica(following=REMOTE), pg_stopped(),
                       pg_stopped(role="primary"), pg_stopped(crashed=True, role="primary")])


@hsettings(max_examples=200, deadline=None)
@given(pg=_pg, leader=st.sampled_from([None, "pg0", "pg1"]), me=st.sampled_from(["pg0", "pg1"]),
       refreshed=st.booleans(), initialized=st.booleans())
def test_a_standby_cluster_never_promotes(pg, leader, me, refreshed, initialized) -> None:
    members = [replica("pg0"), replica("pg1")]
    c = sc_cluster(members, leader=leader, initialize="7712193093952314556" if initialized else None)
    d = sdecide(c, me, pg, lock_refreshed=refreshed and leader == me)
    assert "promote" not in d.kinds
    assert not any(a.kind == "start" and a.mode == "primary" for a in d.actions)


# --- no_leader --------------------------------------------------------------------------------------

def test_no_leader_method_clones_without_a_leader() -> None:
    from hatui.daemon.ha import decide

    c = cluster([], leader=None)
    plain = decide(observe(c, "pg1", pg_empty()))
    assert plain.message == "waiting for leader to bootstrap" and plain.actions == ()
    d = decide(observe(c, "pg1", pg_empty(), settings=NodeSettings("pg1", clone_without_leader=True)))
    assert d.notes == ("trying to bootstrap (without leader)",)
    assert [(a.kind, a.target) for a in d.actions] == [("clone", None)]
    # Not while another node is bootstrapping the cluster (initialize is "" during its race).
    racing = cluster([], leader=None, initialize="")
    d = decide(observe(racing, "pg1", pg_empty(), settings=NodeSettings("pg1", clone_without_leader=True)))
    assert d.actions == ()
