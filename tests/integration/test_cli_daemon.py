"""`hatui` CLI verbs against REAL daemons: a private etcd and two `hatui daemon` nodes running
PostgreSQL (hatui.launcher.LocalCluster), no stub anywhere.

One cluster per module (and per pytest-xdist worker: each worker that runs a test of this module
starts its own, on free ports). Tests may run in any order and on any subset, so each one starts
from `healthy()` (a leader and a streaming replica, whoever they are) and leaves the cluster
healthy. The REST API requires Basic auth; the CLI gets the credentials from a patronictl.yaml
given with -c, as an operator would. Nothing here asserts a duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from ruamel.yaml import YAML

from hatui.cli.main import cli
from hatui.cluster import Cluster
from hatui.etcd.kv import EtcdHttp
from hatui.launcher import LocalCluster, LocalNode
from servers import free_port, healthy_for_each_test, make_tempdir, remove_tree

pytestmark = pytest.mark.integration

FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
REST_USER, REST_PASSWORD = "admin", "rest-secret"
ENV_CLEAR = ("HATUI_CONFIG_FILE", "PATRONICTL_CONFIG_FILE", "HATUI_ETCD", "DCS_URL", "PATRONI_SCOPE",
             "PATRONI_NAMESPACE", "PATRONI_ETCD3_HOSTS", "EDITOR")


class Live:
    """The module's cluster plus ways to run the CLI against it and read etcd directly."""

    def __init__(self, cluster: LocalCluster, base: Path) -> None:
        self.c = cluster
        self.base = base
        self.ctl_yaml = base / "patronictl.yaml"
        self.bad_ctl_yaml = base / "wrong-password.yaml"
        self.env = {name: None for name in ENV_CLEAR}
        self.env.update(HOME=str(base), XDG_CONFIG_HOME=str(base / "xdg"))
        self.etcd = EtcdHttp([cluster.etcd_endpoint])

    # --- the CLI -----------------------------------------------------------------------------
    def __call__(self, *args: str, input: str | None = None, config: Path | None = None) -> Result:
        return CliRunner().invoke(cli, ["-c", str(config or self.ctl_yaml), *args], env=self.env, input=input)

    def process(self, *args: str) -> subprocess.CompletedProcess:
        """A real `hatui` process: what the user's terminal would show, tracebacks included."""
        env = {k: v for k, v in os.environ.items() if k not in ENV_CLEAR}
        env["HOME"] = str(self.base)
        return subprocess.run([sys.executable, "-m", "hatui.cli", *args], capture_output=True, text=True,
                              env=env, timeout=120)

    # --- etcd and PostgreSQL, read without the CLI -------------------------------------------
    def read(self) -> Cluster:
        return self.etcd.read_cluster("/service", "batman")

    def config(self) -> tuple[dict, int]:
        cluster = self.read()
        assert cluster.config is not None
        return dict(cluster.config.data), cluster.config.mod_revision

    def restore_config(self, data: dict) -> None:
        """Put the cluster configuration back as a test found it (edit-config --replace)."""
        restore = self.base / "restore.yaml"
        restore.write_text(json.dumps(data))
        result = self("edit-config", "--replace", str(restore), "--force", "-q")
        assert result.exit_code == 0, result.output

    def sql(self, node: LocalNode, query: str) -> Any:
        with node.connect() as conn:
            cur = conn.execute(query)
            return cur.fetchone()[0] if cur.description else None

    def sql_or_none(self, node: LocalNode, query: str) -> Any:
        """For polling: a server still starting (after a reinit or restart) answers None."""
        try:
            return self.sql(node, query)
        except psycopg.Error:
            return None

    def healthy(self, timeout: float = 120) -> tuple[str, str]:
        """Wait until etcd shows a running leader and the other member streaming on its timeline:
        (leader, replica)."""
        def check() -> tuple[str, str] | None:
            try:
                cluster = self.read()
            except Exception:  # noqa: BLE001 - etcd busy for a moment: ask again
                return None
            leader = cluster.leader_member
            others = [m for m in cluster.members if leader is None or m.name != leader.name]
            if leader is None or leader.state != "running" or len(others) != 1:
                return None
            replica = others[0]
            if replica.state != "streaming" and replica.replication_state != "streaming":
                return None
            if replica.timeline != leader.timeline:
                return None
            # Caught up as far as the daemons can see (an earlier test may have switched WAL
            # files): a candidate over maximum_lag_on_failover is rightly refused.
            lag = cluster.lag(replica)
            if lag is None or lag > 1048576:
                return None
            return leader.name, replica.name
        return self.c.wait_for(check, timeout, "a leader and a streaming replica")

    def node(self, name: str) -> LocalNode:
        return self.c.node(name)


def _write_yaml(path: Path, data: dict) -> None:
    yaml = YAML()
    yaml.default_flow_style = False
    with open(path, "w") as f:
        yaml.dump(data, f)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    base = make_tempdir("hatui-clid-")
    cluster = LocalCluster(base, 2, dcs=dict(FAST))
    try:
        # Node YAMLs first, then REST auth added to each (extra_node would replace the whole
        # restapi section, listen address included).
        cluster.write_configs()
        for node in cluster.nodes:
            cfg = YAML(typ="safe").load(node.config_path.read_text())
            cfg["restapi"]["authentication"] = {"username": REST_USER, "password": REST_PASSWORD}
            _write_yaml(node.config_path, cfg)
        cluster.start()
        it = Live(cluster, base)
        ctl = {"scope": "batman", "namespace": "/service/", "etcd3": {"hosts": cluster.etcd_endpoint},
               "ctl": {"authentication": {"username": REST_USER, "password": REST_PASSWORD}}}
        _write_yaml(it.ctl_yaml, ctl)
        _write_yaml(it.bad_ctl_yaml, {**ctl, "ctl": {"authentication": {"username": REST_USER,
                                                                         "password": "not-the-password"}}})
        it.healthy()
        yield it
        it.etcd.close()
    finally:
        cluster.stop()
        remove_tree(base)


@pytest.fixture
def hatui(live: Live, request: pytest.FixtureRequest) -> Iterator[Live]:
    yield from healthy_for_each_test(live, request)


def rows(result: Result) -> list[list[str]]:
    """The member rows of a pretty table: cells stripped."""
    out = []
    for line in result.stdout.splitlines():
        if line.startswith("| postgresql"):
            out.append([cell.strip() for cell in line.strip("|").split("|")])
    return out


def list_json(h: Live) -> dict[str, dict]:
    result = h("list", "-f", "json")
    assert result.exit_code == 0, result.output
    return {row["Member"]: row for row in json.loads(result.stdout)}


def history_of(h: Live) -> tuple:
    history = h.read().history
    return history.entries if history is not None else ()


def leader_lease_granted(h: Live) -> int | None:
    """The TTL the leader's lease was granted with (the daemon's ttl setting in effect)."""
    leader = h.read().leader
    if leader is None or not leader.lease:
        return None
    answer = h.etcd.request("/lease/timetolive", {"ID": leader.lease}, "lease read")
    return int(answer.get("grantedTTL") or 0) or None


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- reading ---------------------------------------------------------------------------------
def test_list_shows_both_members_like_patronictl(hatui: Live) -> None:
    leader, replica = hatui.healthy()
    cluster = hatui.read()
    result = hatui("list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Layout of patroni-observed.md: title with the system id, the 4.1 columns, sorted by name.
    assert lines[0].startswith(f"+ Cluster: batman ({cluster.initialize}) -")
    assert [c.strip() for c in lines[1].strip("|").split("|")] == [
        "Member", "Host", "Role", "State", "TL", "Receive LSN", "Lag", "Replay LSN", "Lag"]
    assert len(lines) == 6 and lines[2] == lines[5] and lines[2].startswith("+-------------+")
    table = {r[0]: r for r in rows(result)}
    assert sorted(table) == ["postgresql0", "postgresql1"]
    lead, rep = hatui.node(leader), hatui.node(replica)
    tl = str(cluster.leader_member.timeline)
    assert table[leader] == [leader, f"127.0.0.1:{lead.pg_port}", "Leader", "running", tl, "", "", "", ""]
    assert table[replica][:5] == [replica, f"127.0.0.1:{rep.pg_port}", "Replica", "streaming", tl]
    receive_lsn, receive_lag, replay_lsn, replay_lag = table[replica][5:]
    assert receive_lsn.startswith("0/") or receive_lsn.count("/") == 1
    assert replay_lsn.count("/") == 1 and receive_lag.isdigit() and replay_lag.isdigit()

    data = list_json(hatui)
    assert data[leader] == {"Cluster": "batman", "Member": leader, "Host": f"127.0.0.1:{lead.pg_port}",
                            "Role": "Leader", "State": "running", "TL": int(tl)}
    assert set(data[replica]) == {"Cluster", "Member", "Host", "Role", "State", "TL", "Receive LSN",
                                  "Receive Lag", "Replay LSN", "Replay Lag"}
    # The replica really replays what the leader wrote: its LSN moves after a write.
    hatui.sql(lead, "CREATE TABLE IF NOT EXISTS cli_probe (x int)")
    hatui.sql(lead, "INSERT INTO cli_probe VALUES (1)")
    hatui.sql(lead, "SELECT pg_switch_wal()")
    before = replay_lsn
    hatui.c.wait_for(lambda: list_json(hatui)[replica].get("Replay LSN") not in (None, before), 30,
                     "the replica's replay LSN to move")

    topo = hatui("topology")
    names = [r[0] for r in rows(topo)]
    assert names == [leader]  # the replica's row starts with "| + name": not a "| postgresql" row
    assert f"| + {replica} " in topo.stdout

    detail = hatui("list", "-x")
    assert detail.exit_code == 0, detail.output
    assert "Receive Bytes" in detail.stdout and "Replay Delay" in detail.stdout


def test_switchover_moves_the_leader_and_history_records_it(hatui: Live) -> None:
    leader, replica = hatui.healthy()
    history_before = len(history_of(hatui))
    result = hatui("switchover", "--candidate", replica, "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Current cluster topology\n")
    assert f'Successfully switched over to "{replica}"' in result.stdout
    assert hatui.read().leader_name == replica  # the REST call returned after the lock moved

    new_leader, new_replica = hatui.healthy()
    assert (new_leader, new_replica) == (replica, leader)
    table = {r[0]: r for r in rows(hatui("list"))}
    assert table[replica][2] == "Leader" and table[leader][2:4] == ["Replica", "streaming"]

    hatui.c.wait_for(lambda: len(history_of(hatui)) == history_before + 1, 10, "the switchover's history line")
    history = hatui("history")
    assert history.exit_code == 0, history.output
    lines = history.stdout.splitlines()
    assert [c.strip() for c in lines[1].strip("|").split("|")] == ["TL", "LSN", "Reason", "Timestamp",
                                                                   "New Leader"]
    entries = [[c.strip() for c in line.strip("|").split("|")] for line in lines[3:-1]]
    assert len(entries) == history_before + 1
    tl, lsn, _reason, ts, new = entries[-1]
    assert new == replica and lsn.isdigit() and ts[:2] == "20"
    assert int(tl) + 1 == hatui.read().leader_member.timeline
    as_json = json.loads(hatui("history", "-f", "json").stdout)
    assert as_json[-1]["New Leader"] == replica


def test_failover_to_a_named_replica(hatui: Live) -> None:
    leader, replica = hatui.healthy()
    result = hatui("failover", "--candidate", replica, "--force")
    assert result.exit_code == 0, result.output
    assert hatui.healthy() == (replica, leader)
    # The new leader writes the history key right after promoting, or at the latest in its next cycle.
    hatui.c.wait_for(lambda: history_of(hatui) and history_of(hatui)[-1].new_leader == replica, 10,
                     "the history line of the failover")


def test_switchover_prompts_then_the_answer_no_changes_nothing(hatui: Live) -> None:
    leader, replica = hatui.healthy()
    result = hatui("switchover", input=f"\n{replica}\nnow\nn\n")
    assert result.exit_code == 1
    assert f"Primary [{leader}]: " in result.stdout
    assert f"Candidate ['{replica}'] []: {replica}" in result.stdout
    assert f"Are you sure you want to switchover cluster batman, demoting current leader {leader}?" in result.stdout
    assert result.stderr == "Error: Aborting switchover\n"
    assert hatui.read().leader_name == leader


def test_restart_reload_and_the_pending_restart_of_the_talk(hatui: Live) -> None:
    leader, replica = hatui.healthy()
    started = hatui.sql(hatui.node(replica), "SELECT pg_postmaster_start_time()")
    result = hatui("restart", "batman", replica, "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"Success: restart on member {replica}"
    hatui.healthy()
    assert hatui.sql(hatui.node(replica), "SELECT pg_postmaster_start_time()") > started

    result = hatui("reload", "batman", "--force")
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.splitlines()[-2:]) == [
        f"Reload request received for member {n} and will be processed within 1 seconds"
        for n in sorted((leader, replica))]

    # max_connections only changes on restart: both members show it pending, in list -e too.
    config, _ = hatui.config()
    value = int(config.get("postgresql", {}).get("parameters", {}).get("max_connections", 100)) + 1
    result = hatui("edit-config", "-p", f"max_connections={value}", "--force", "-q")
    assert (result.exit_code, result.stdout) == (0, "Configuration changed\n")

    def pending_both() -> bool:
        return all(m.pending_restart and "max_connections" in m.pending_restart_reason for m in hatui.read().members)
    hatui.c.wait_for(pending_both, 30, "both members pending a restart for max_connections")
    extended = hatui("list", "-e")
    header = [c.strip() for c in extended.stdout.splitlines()[1].strip("|").split("|")]
    assert header[-4:] == ["Pending restart", "Pending restart reason", "Scheduled restart", "Tags"]
    assert [row[9] for row in rows(extended)] == ["*", "*"]
    # One `param: old->new` line per reason; a member may list more than this one.
    assert extended.stdout.count(f"max_connections: {value - 1}->{value}") == 2, extended.stdout
    # The replica first: a hot standby needs max_connections >= the primary's.
    result = hatui("restart", "batman", "--pending", "-r", "replica", "--force")
    assert result.stdout.splitlines()[-1] == f"Success: restart on member {replica}", result.output
    hatui.healthy()
    result = hatui("restart", "batman", "--pending", "-r", "leader", "--force")
    assert result.stdout.splitlines()[-1] == f"Success: restart on member {leader}", result.output
    hatui.healthy()
    hatui.c.wait_for(lambda: not any(m.pending_restart for m in hatui.read().members), 30, "no pending restart")
    for node in hatui.c.nodes:
        assert hatui.sql(node, "SHOW max_connections") == str(value)
    result = hatui("restart", "batman", "--pending", "--force")
    assert (result.exit_code, result.stdout.splitlines()[-1]) == (0, "No member is pending restart")


def test_reinit_rebuilds_the_replica(hatui: Live) -> None:
    _, replica = hatui.healthy()
    node = hatui.node(replica)
    marker = node.data_dir / "hatui-reinit-marker"
    subprocess.run(["touch", str(marker)], check=True)
    result = hatui("reinit", "batman", replica, "--force", "--wait")
    assert result.exit_code == 0, result.output
    assert f"Success: reinitialize for member {replica}" in result.stdout
    assert f"Reinitialize is completed on: {replica}" in result.stdout
    hatui.healthy()
    assert not marker.exists()  # the data directory was rebuilt from the leader


def test_pause_and_resume(hatui: Live) -> None:
    hatui.healthy()
    result = hatui("pause", "--wait")
    try:
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            "'pause' request sent, waiting until it is recognized by all nodes",
            "Success: cluster management is paused"]
        assert hatui.read().is_paused and all(m.paused for m in hatui.read().members)
        assert hatui("list").stdout.splitlines()[-1] == " Maintenance mode: on"
        again = hatui("pause")
        assert (again.exit_code, again.stderr) == (1, "Error: Cluster is already paused\n")
        # While paused, a scheduled switchover is refused before anything is sent.
        scheduled = hatui("switchover", "--force", "--scheduled", "2099-01-01T00:00")
        assert scheduled.stderr == "Error: Can't schedule switchover in the paused state\n"
    finally:
        result = hatui("resume", "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Success: cluster management is resumed"
    assert not hatui.read().is_paused
    again = hatui("resume")
    assert (again.exit_code, again.stderr) == (1, "Error: Cluster is not paused\n")


def test_scheduled_switchover_then_flush(hatui: Live) -> None:
    leader, replica = hatui.healthy()
    result = hatui("switchover", "--candidate", replica, "--scheduled", "2099-01-01T00:00+00:00", "--force")
    assert result.exit_code == 0, result.output
    failover = hatui.read().failover
    assert failover is not None and failover.candidate == replica and failover.scheduled_at is not None
    assert " Switchover scheduled at: 2099-01-01T00:00:00+00:00" in hatui("list").stdout.splitlines()
    result = hatui("flush", "batman", "switchover")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Success: ")
    cleared = hatui.read().failover
    assert cleared is None or cleared.scheduled_at is None
    assert hatui("flush", "batman", "switchover").stdout == "No pending scheduled switchover\n"
    assert hatui.read().leader_name == leader


def test_version_and_dsn(hatui: Live) -> None:
    leader, _ = hatui.healthy()
    result = hatui("version", "batman")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("hatui version ")
    assert sorted(line.split(":")[0] for line in lines[2:]) == ["postgresql0", "postgresql1"]
    assert all(" PostgreSQL 15." in line for line in lines[2:])
    assert hatui("dsn").stdout == f"host=127.0.0.1 port={hatui.node(leader).pg_port}\n"


# --- edit-config against the running cluster ---------------------------------------------------
def test_edit_config_the_talks_three_diffs_take_effect(hatui: Live) -> None:
    start, _ = hatui.config()
    try:
        result = hatui("edit-config", "batman", "-p", "work_mem=8MB", "--force")
        assert result.exit_code == 0, result.output
        out = result.stdout.splitlines()
        assert out[:2] == ["--- ", "+++ "] and out[2].startswith("@@ ")
        assert "+    work_mem: 8MB" in out and out[-1] == "Configuration changed"
        # The talk's first diff is a reload: every PostgreSQL has the new value, nothing restarts.
        for node in hatui.c.nodes:
            hatui.c.wait_for(lambda n=node: hatui.sql_or_none(n, "SHOW work_mem") == "8MB", 30,
                             f"work_mem on {node.name}")

        # The second (max_connections) is covered with its restart in the restart test; here the
        # diff shape of a changed value.
        result = hatui("edit-config", "-p", "work_mem=16MB", "--force")
        assert "-    work_mem: 8MB" in result.stdout.splitlines()
        assert "+    work_mem: 16MB" in result.stdout.splitlines()

        # The third: ttl/loop_wait/retry_timeout together, obeying ttl >= loop_wait + 2*retry_timeout.
        result = hatui("edit-config", "-s", "ttl=60", "-s", "loop_wait=5", "-s", "retry_timeout=27", "--force")
        assert result.exit_code == 0, result.output
        changed = [line for line in result.stdout.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
        assert sorted(changed) == sorted([f"-loop_wait: {start['loop_wait']}", "+loop_wait: 5",
                                          f"-retry_timeout: {start['retry_timeout']}", "+retry_timeout: 27",
                                          f"-ttl: {start['ttl']}", "+ttl: 60"])
        data, _ = hatui.config()
        assert (data["ttl"], data["loop_wait"], data["retry_timeout"]) == (60, 5, 27)
        # The daemons took it: the leader's lease is now granted for 60 seconds.
        hatui.c.wait_for(lambda: leader_lease_granted(hatui) == 60, 30, "a 60 s leader lease")

        # The talk's fourth edit breaks the rule: refused, nothing written.
        _, rev = hatui.config()
        result = hatui("edit-config", "-s", "ttl=5", "-s", "loop_wait=10", "--force")
        assert result.exit_code == 1
        assert "Error: ttl: 5 must be >= loop_wait + 2 * retry_timeout = 10 + 2 * 27 = 64" in result.stderr.splitlines()
        assert "Configuration changed" not in result.stdout
        assert hatui.config()[1] == rev
    finally:
        hatui.restore_config(start)
    assert hatui.config()[0] == start


def test_edit_config_apply_and_replace_files(hatui: Live) -> None:
    start, _ = hatui.config()
    try:
        patch = hatui.base / "patch.yaml"
        patch.write_text("maximum_lag_on_failover: 2097152\npostgresql:\n  parameters:\n    work_mem: 4MB\n")
        result = hatui("edit-config", "--apply", str(patch), "--force")
        assert result.exit_code == 0, result.output
        data, _ = hatui.config()
        assert data["maximum_lag_on_failover"] == 2097152
        assert data["postgresql"]["parameters"]["work_mem"] == "4MB"
        assert data["postgresql"]["use_pg_rewind"] is True  # merged, not replaced

        result = hatui("edit-config", "--apply", "-", "--force", "-q", input="postgresql: {parameters: {work_mem: null}}\n")
        assert (result.exit_code, result.stdout) == (0, "Configuration changed\n")
        assert "work_mem" not in hatui.config()[0]["postgresql"]["parameters"]
        result = hatui("edit-config", "--apply", "-", input="ttl: 30\n")
        assert (result.exit_code, result.stderr) == (1, "Error: Use --force option to apply changes\n")

        replacement = hatui.base / "replace.yaml"
        replacement.write_text("ttl: 20\nloop_wait: 1\nretry_timeout: 3\nmaximum_lag_on_failover: 1048576\n"
                               "postgresql:\n  use_pg_rewind: true\n  parameters: {wal_keep_size: 128MB}\n")
        result = hatui("edit-config", "--replace", str(replacement), "--force", "-q")
        assert result.exit_code == 0, result.output
        assert hatui.config()[0] == {"ttl": 20, "loop_wait": 1, "retry_timeout": 3,
                                     "maximum_lag_on_failover": 1048576,
                                     "postgresql": {"use_pg_rewind": True, "parameters": {"wal_keep_size": "128MB"}}}
        assert hatui("edit-config", "--replace", str(replacement), "--force").stdout == "Not changed\n"

        invalid = hatui.base / "invalid.yaml"
        invalid.write_text("ttl: 5\nloop_wait: 1\nretry_timeout: 3\n")
        _, rev = hatui.config()
        result = hatui("edit-config", "--replace", str(invalid), "--force")
        assert result.exit_code == 1 and "Error: ttl: 5 must be >= 20" in result.stderr.splitlines()
        assert hatui.config()[1] == rev
    finally:
        hatui.restore_config(start)
    assert hatui.config()[0] == start


def test_edit_config_compare_and_swap_refuses_the_second_of_two_edits(hatui: Live) -> None:
    """Two operators read the same revision; the first write wins, the second is refused."""
    start, _ = hatui.config()
    editor = hatui.base / "racing-editor.sh"
    # Our $EDITOR: while "we" edit, another hatui process writes the config from the same revision.
    editor.write_text(
        "#!/bin/sh\n"
        f"'{sys.executable}' -m hatui.cli -c '{hatui.ctl_yaml}' edit-config batman -s maximum_lag_on_failover=2000000 "
        "--force -q || exit 3\n"
        "sed -i 's/^maximum_lag_on_failover: .*$/maximum_lag_on_failover: 3000000/' \"$1\"\n")
    editor.chmod(0o755)
    env = dict(hatui.env, EDITOR=str(editor))
    try:
        result = CliRunner().invoke(cli, ["-c", str(hatui.ctl_yaml), "edit-config", "--editor", "--force"], env=env)
        assert result.exit_code == 1, result.output
        assert "+maximum_lag_on_failover: 3000000" in result.stdout.splitlines()
        assert result.stderr == "Error: Config modification aborted due to concurrent changes\n"
        assert hatui.config()[0]["maximum_lag_on_failover"] == 2000000  # the first edit stands
    finally:
        hatui.restore_config(start)


# --- error paths: one line, non-zero exit, no traceback ---------------------------------------
def test_unknown_members_are_refused_by_every_verb(hatui: Live) -> None:
    leader, _ = hatui.healthy()
    cases = [
        (("restart", "batman", "nosuch", "--force"), "Error: nosuch is not a member of cluster batman"),
        (("reload", "batman", "nosuch", "--force"), "Error: nosuch is not a member of cluster batman"),
        (("reinit", "batman", "nosuch", "--force"), "Error: nosuch is not a member of cluster batman"),
        (("flush", "batman", "nosuch", "restart", "--force"), "Error: nosuch is not a member of cluster batman"),
        (("switchover", "--candidate", "nosuch", "--force"), "Error: nosuch is not a member of cluster batman"),
        (("failover", "--candidate", "nosuch", "--force"), "Error: nosuch is not a member of cluster batman"),
        (("switchover", "--leader", "nosuch", "--force"), "Error: Member nosuch is not the leader of cluster batman"),
        (("switchover", "--candidate", leader, "--force"),
         f"Error: Member {leader} is already the leader of cluster batman"),
        (("reinit", "batman", leader, "--force"),
         f"Error: Member {leader} is the leader of cluster batman: only replicas can be reinitialized"),
        (("dsn", "-m", "nosuch"), "Error: nosuch is not a member of cluster batman"),
        (("version", "batman", "nosuch"), "Error: nosuch is not a member of cluster batman"),
    ]
    for args, message in cases:
        result = hatui(*args)
        assert result.exit_code == 1, (args, result.output)
        assert one_error_line(result.stderr) == message, args
    assert hatui.read().leader_name == leader


def test_dead_etcd_is_one_line_for_every_verb(hatui: Live) -> None:
    port = free_port()  # reserved, nothing listens there
    dead = hatui.base / "dead-etcd.yaml"
    _write_yaml(dead, {"scope": "batman", "etcd3": {"hosts": f"127.0.0.1:{port}"}})
    for args in (["list"], ["history"], ["show-config"], ["edit-config", "-s", "ttl=30", "--force"],
                 ["switchover", "--candidate", "postgresql1", "--force"], ["restart", "batman", "--force"],
                 ["pause"], ["dsn"]):
        proc = hatui.process("-c", str(dead), *args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        line = one_error_line(proc.stderr)
        print(" ".join(args), "->", line)
        assert f"127.0.0.1:{port}" in line and "etcd" in line, line


def test_hung_etcd_is_one_line(hatui: Live) -> None:
    """An etcd that accepts the connection and never answers (a frozen server or a black-holed
    network): the CLI times out with one line. A listening socket that never accepts stands in for
    it, so the cluster's own etcd is not disturbed for the other tests."""
    import socket

    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        endpoint = f"127.0.0.1:{hung.getsockname()[1]}"
        proc = hatui.process("--etcd", endpoint, "list", "batman")
    assert proc.returncode == 1, proc.stdout
    line = one_error_line(proc.stderr)
    print("list (etcd hung) ->", line)
    assert endpoint in line and "timed out" in line


def test_wrong_rest_password_is_a_clear_error(hatui: Live) -> None:
    leader, replica = hatui.healthy()
    bad = hatui.bad_ctl_yaml
    for args in (["restart", "batman", replica, "--force"], ["reload", "batman", replica, "--force"],
                 ["switchover", "--candidate", replica, "--force"], ["pause"]):
        proc = hatui.process("-c", str(bad), *args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        line = one_error_line(proc.stderr)
        print(" ".join(args), "->", line)  # shown with -s: what the operator reads
        assert "401" in line and "authentication" in line, line
    assert hatui.read().leader_name == leader and not hatui.read().is_paused
    # Without any credentials the REST API refuses the same way.
    no_auth = hatui.base / "no-auth.yaml"
    _write_yaml(no_auth, {"scope": "batman", "etcd3": {"hosts": hatui.c.etcd_endpoint}})
    proc = hatui.process("-c", str(no_auth), "reload", "batman", replica, "--force")
    assert proc.returncode == 1 and "401" in one_error_line(proc.stderr)


def test_invalid_config_is_never_written_even_with_force(hatui: Live) -> None:
    _, rev = hatui.config()
    for args in (["-s", "ttl=5"], ["-s", "loop_wait=0"], ["-s", "ttl=abc"], ["-s", "retry_timeout=30"]):
        result = hatui("edit-config", *args, "--force")
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("Error: ") and "Traceback" not in result.output
    assert hatui.config()[1] == rev


# --- the in-terminal editor, driven with Pilot ------------------------------------------------
class EditorUnderPilot:
    """`hatui edit-config` runs in a thread (CliRunner); each time it opens its in-terminal editor,
    the real editor app is handed to the test's event loop and run under Pilot instead of
    full-screen, and the text it saves goes back to the CLI, which diffs, asks and writes."""

    def __init__(self, monkeypatch) -> None:
        import asyncio

        import hatui.cli.edit as cli_edit

        self.loop = asyncio.get_running_loop()
        self.opened: asyncio.Queue = asyncio.Queue()
        monkeypatch.setattr("hatui.screens.config_editor.edit_config_interactive", self._editor)
        monkeypatch.setattr(cli_edit, "_terminal", lambda: True)

    def _editor(self, initial_yaml: str, title: str) -> str | None:
        import concurrent.futures

        answer: concurrent.futures.Future = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self.opened.put_nowait, (initial_yaml, title, answer))
        return answer.result(timeout=120)

    def run_cli(self, h: Live, *args: str, input: str) -> Any:
        import asyncio

        return asyncio.ensure_future(asyncio.to_thread(h, *args, input=input))

    async def next_session(self) -> tuple[str, str, Any]:
        import asyncio

        return await asyncio.wait_for(self.opened.get(), 60)


async def until(pilot, check, what: str) -> None:
    for _ in range(400):  # bounded wait, not a timing assertion
        if check():
            return
        await pilot.pause(0.05)
    assert check(), f"timed out waiting for {what}"


async def type_line(pilot, area, key: str, text: str) -> None:
    """Select the line of a top-level key and type `text` over it, key by key."""
    row = next(i for i, line in enumerate(area.text.split("\n")) if line.startswith(f"{key}:"))
    area.select_line(row)
    await pilot.press(*text)


async def save_valid_edit(pilot, app, key: str, text: str, check) -> None:
    """Type a valid line, wait for validation, save and confirm the diff in the editor."""
    from textual.widgets import TextArea

    from hatui.screens.confirm import ConfirmScreen

    editor = app.screen
    await type_line(pilot, editor.query_one(TextArea), key, text)
    await until(pilot, lambda: editor.data is not None and check(editor.data), f"{text!r} validated")
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the diff to confirm")
    await pilot.press("y")
    await until(pilot, lambda: app.return_value is not None, "the editor to hand back its text")


async def test_edit_config_in_the_terminal_editor_driven_with_pilot(hatui: Live, monkeypatch) -> None:
    """Typing `ttl: 5` with loop_wait 10 and retry_timeout 27: the rule error, save refused; fixed:
    saved, and the CLI writes it to etcd."""
    from textual.widgets import Button, TextArea

    from hatui.screens.config_editor import ConfigEditorScreen, _EditorApp

    start, _ = hatui.config()
    bridge = EditorUnderPilot(monkeypatch)
    try:
        result = hatui("edit-config", "-s", "ttl=64", "-s", "loop_wait=10", "-s", "retry_timeout=27", "--force")
        assert result.exit_code == 0, result.output
        _, rev = hatui.config()
        cli_run = bridge.run_cli(hatui, "edit-config", "batman", input="")
        initial, title, answer = await bridge.next_session()
        assert title == "edit-config batman" and "loop_wait: 10\n" in initial and "ttl: 64\n" in initial

        app = _EditorApp(initial, title)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                editor = app.screen
                assert isinstance(editor, ConfigEditorScreen)
                area = editor.query_one(TextArea)
                save = editor.query_one("#editor-save", Button)

                def shown() -> str:
                    return str(editor.query_one("#editor-rule").render()) + str(
                        editor.query_one("#editor-issues-text").render())

                await type_line(pilot, area, "ttl", "ttl: 5")
                assert "ttl: 5\n" in area.text
                # Validation runs once typing pauses (it may also run on a half-typed line first).
                await until(pilot, lambda: "5 < 10 + 2 × 27 = 64" in shown(), "the rule error for ttl: 5")
                assert editor.data is None and save.disabled
                assert "ttl: 5 must be >= loop_wait + 2 * retry_timeout = 10 + 2 * 27 = 64" in shown()
                await pilot.press("ctrl+s")
                await pilot.pause()
                assert isinstance(app.screen, ConfigEditorScreen) and app.is_running  # save refused

                await save_valid_edit(pilot, app, "ttl", "ttl: 70", lambda d: d.get("ttl") == 70)
        finally:
            answer.set_result(app.return_value)
        result = await cli_run
        assert result.exit_code == 0, result.output
        out = result.stdout.splitlines()
        assert "-ttl: 64" in out and "+ttl: 70" in out
        # One confirmation, in the editor where the edit was made: the command line asks nothing.
        assert "Apply these changes?" not in result.stdout
        assert result.stdout.endswith("Configuration changed\n")
        data, new_rev = hatui.config()
        assert (data["ttl"], data["loop_wait"], data["retry_timeout"]) == (70, 10, 27) and new_rev > rev
    finally:
        hatui.restore_config(start)
    assert hatui.config()[0] == start


async def test_terminal_editor_conflict_offers_reload(hatui: Live, monkeypatch) -> None:
    """Someone writes the config while our editor is open: nothing of ours is written, the CLI
    offers to reload, the editor opens again on their version, and our second save lands."""
    from hatui.screens.config_editor import _EditorApp

    start, _ = hatui.config()
    bridge = EditorUnderPilot(monkeypatch)
    try:
        # The editor confirms each save; the CLI asks one thing: reload and edit again (after the CAS).
        cli_run = bridge.run_cli(hatui, "edit-config", input="y\n")
        initial, title, answer = await bridge.next_session()
        theirs = hatui("edit-config", "-s", "maximum_lag_on_failover=2000000", "--force", "-q")
        assert theirs.exit_code == 0, theirs.output

        app = _EditorApp(initial, title)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await save_valid_edit(pilot, app, "ttl", "ttl: 25", lambda d: d.get("ttl") == 25)
        finally:
            answer.set_result(app.return_value)
        assert hatui.config()[0]["ttl"] == start["ttl"]  # the refused edit wrote nothing

        initial2, _, answer2 = await bridge.next_session()
        assert "maximum_lag_on_failover: 2000000\n" in initial2  # reopened on what etcd has now
        app = _EditorApp(initial2, title)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await save_valid_edit(pilot, app, "ttl", "ttl: 26", lambda d: d.get("ttl") == 26)
        finally:
            answer2.set_result(app.return_value)
        result = await cli_run
        assert result.exit_code == 0, result.output
        assert ("Config modification aborted due to concurrent changes. Reload the current config and edit "
                "again? [y/N]: y") in result.stdout
        assert result.stdout.endswith("Configuration changed\n")
        data, _ = hatui.config()
        assert data["ttl"] == 26 and data["maximum_lag_on_failover"] == 2000000  # both edits kept
    finally:
        hatui.restore_config(start)
    assert hatui.config()[0] == start


def test_scheduled_restart_then_flush(hatui: Live) -> None:
    _, replica = hatui.healthy()
    result = hatui("restart", "batman", replica, "--scheduled", "2099-01-01T00:00+00:00", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"Success: restart scheduled on member {replica}"
    hatui.c.wait_for(lambda: hatui.read().member(replica).scheduled_restart, 30, "the scheduled restart in etcd")
    table = {r[0]: r for r in rows(hatui("list", "-e"))}
    assert "2099-01-01T00:00:00+00:00" in table[replica]
    again = hatui("restart", "batman", replica, "--scheduled", "2099-01-02T00:00+00:00", input="y\n\n")
    assert again.exit_code == 1, again.output  # already one scheduled: patronictl's 409 message, and an error
    assert f"Failed: another restart is already scheduled on member {replica}" in again.stdout.splitlines()
    assert one_error_line(again.stderr) == "Error: restart failed on 1 of 1 member"
    result = hatui("flush", "batman", replica, "restart", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"Success: flush scheduled restart for member {replica}"
    hatui.c.wait_for(lambda: not hatui.read().member(replica).scheduled_restart, 30, "no scheduled restart")


def test_show_config_and_query(hatui: Live) -> None:
    leader, replica = hatui.healthy()
    from hatui.config import parse_yaml_document

    shown = hatui("show-config")
    assert shown.exit_code == 0, shown.output
    data, issues = parse_yaml_document(shown.stdout)
    assert not issues and data == hatui.config()[0]

    result = hatui("query", "-U", "postgres", "--password", "-c", "SELECT pg_is_in_recovery(), 42", input="zalando\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "False\t42"
    result = hatui("query", "-r", "replica", "-U", "postgres", "--password", "-c", "SELECT pg_is_in_recovery()",
                   input="zalando\n")
    assert result.stdout.splitlines()[-1] == "True", result.output
    result = hatui("query", "-m", replica, "-U", "postgres", "-c", "SELECT 1")
    assert result.exit_code == 1
    assert one_error_line(result.stderr).startswith("Error: PostgreSQL: ")  # no password: libpq's reason


def test_reload_rereads_the_node_config_and_switchover_says_why_not(hatui: Live) -> None:
    """Tag the replica nofailover in its YAML, `hatui reload` it: the daemon publishes the tag and
    the switchover is refused with the reason, before anything is sent."""
    leader, replica = hatui.healthy()
    node = hatui.node(replica)
    original = node.config_path.read_text()
    cfg = YAML(typ="safe").load(original)
    cfg["tags"]["nofailover"] = True
    _write_yaml(node.config_path, cfg)
    try:
        result = hatui("reload", "batman", replica, "--force")
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[-1].startswith(f"Reload request received for member {replica}")
        hatui.c.wait_for(lambda: hatui.read().member(replica).nofailover, 30, "the nofailover tag in etcd")
        tags = {r[0]: r for r in rows(hatui("list", "-e"))}[replica][-1]
        assert tags == "nofailover: true"
        result = hatui("switchover", "--candidate", replica, "--force")
        assert result.exit_code == 1
        assert one_error_line(result.stderr) == "Error: No candidates found to switchover to"
        assert hatui.read().leader_name == leader
    finally:
        node.config_path.write_text(original)
        hatui("reload", "batman", replica, "--force")
    hatui.c.wait_for(lambda: not hatui.read().member(replica).nofailover, 30, "the tag gone again")


def test_switchover_to_an_unreachable_replica_is_refused_with_the_reason(hatui: Live) -> None:
    """The replica's daemon frozen (SIGSTOP): its member key is still there, but its REST API does
    not answer, so it cannot be checked or promoted; the CLI says so instead of asking the leader."""
    leader, replica = hatui.healthy()
    daemon = hatui.node(replica).daemon
    assert daemon is not None
    daemon.signal(19)
    try:
        result = hatui("switchover", "--candidate", replica, "--force")
    finally:
        daemon.signal(18)
    assert result.exit_code == 1, result.output
    line = one_error_line(result.stderr)
    print("switchover to a frozen replica ->", line)
    assert line.startswith(f"Error: Candidate {replica} is not eligible: ")
    assert hatui.read().leader_name == leader
