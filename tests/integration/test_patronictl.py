"""The real patronictl against a hatui cluster (issue 4: "patronictl lists a hatui cluster and
runs switchover --force and restart --force against it").

patronictl is installed with pip into its own venv under /tmp, once per Patroni version, and kept
between runs. patronictl reads the cluster from etcd (member keys, leader, config...) and acts
through the members' REST API with Basic auth, so these tests check hatui's wire formats as a
third-party client sees them. Skipped only when pip cannot reach the package index.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from servers import make_tempdir, print_logs, remove_tree

from hatui.launcher import LocalCluster, LocalNode

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("patronictl")]

PATRONI_VERSION = "4.1.5"
VENV = Path(f"/tmp/hatui-patroni-venv-{PATRONI_VERSION}")
FAST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
USER, PASSWORD = "ctl-user", "ctl-pass"
NETWORK_ERRORS = ("No matching distribution found", "Could not find a version", "NewConnectionError",
                  "Temporary failure in name resolution", "Network is unreachable", "ConnectTimeoutError",
                  "Max retries exceeded", "ProxyError")


# --------------------------------------------------------------------------- patronictl venv

def _install_patronictl() -> Path:
    """The patronictl script of a venv holding patroni[etcd3] at PATRONI_VERSION, made once."""
    exe = VENV / "bin" / "patronictl"
    done = VENV / ".hatui-installed"
    with open(f"{VENV}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers share the cache
        if done.exists() and exe.exists():
            return exe
        shutil.rmtree(VENV, ignore_errors=True)
        # venv --clear from the interpreter running the tests (a venv's python makes a venv
        # based on the same base interpreter).
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        res = subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                              "-q", f"patroni[etcd3,psycopg3]=={PATRONI_VERSION}"],
                             capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            output = (res.stdout + res.stderr).strip()
            shutil.rmtree(VENV, ignore_errors=True)
            tail = " | ".join(output.splitlines()[-3:])
            if any(marker in output for marker in NETWORK_ERRORS):
                pytest.skip(f"cannot install patroni {PATRONI_VERSION} with pip (no network?): {tail}")
            pytest.fail(f"pip install patroni {PATRONI_VERSION} failed: {tail}")
        done.write_text(PATRONI_VERSION + "\n")
        return exe


@pytest.fixture(scope="session")
def patronictl_exe() -> Path:
    return _install_patronictl()


# --------------------------------------------------------------------------- cluster

class AuthCluster(LocalCluster):
    """Nodes with Basic auth on unsafe REST calls (patronictl sends the credentials)."""

    def node_config(self, node: LocalNode) -> dict:
        cfg = super().node_config(node)
        cfg["restapi"]["authentication"] = {"username": USER, "password": PASSWORD}
        return cfg


def patroni(node: LocalNode) -> dict:
    status, body = node.rest("/patroni")
    return body if status == 200 and isinstance(body, dict) else {}


def sql_value(node: LocalNode, query: str) -> object:
    try:
        with psycopg.connect(host="127.0.0.1", port=node.pg_port, user="postgres", password="zalando",
                             dbname="postgres", autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(query).fetchone()
            return row[0] if row else None
    except psycopg.Error:
        return None


def healthy(cluster: LocalCluster, timeout: float = 120) -> tuple[LocalNode, LocalNode]:
    def check() -> tuple[LocalNode, LocalNode] | None:
        name = cluster.leader()
        if name is None:
            return None
        leader, other = cluster.node(name), next(n for n in cluster.nodes if n.name != name)
        if patroni(leader).get("role") == "primary" and patroni(other).get("replication_state") == "streaming":
            return leader, other
        return None
    return cluster.wait_for(check, timeout, "a leader and a streaming replica", interval=0.3)


def member_key(cluster: LocalCluster, name: str) -> dict:
    key = f"/service/{cluster.scope}/members/{name}"
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    req = urllib.request.Request(f"http://{cluster.etcd_endpoint}/v3/kv/range", body)
    with urllib.request.urlopen(req, timeout=3) as r:
        kvs = json.loads(r.read()).get("kvs") or []
    return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else {}


def history_key(cluster: LocalCluster) -> list:
    return json.loads(cluster.etcd_get(f"/service/{cluster.scope}/history") or "[]")


def keys_published(cluster: LocalCluster, leader: LocalNode, replica: LocalNode, timeout: float = 60) -> None:
    """Wait for the member keys to say what healthy() saw through the REST API: both running on
    the leader's timeline, the replica streaming. `list` shows the member keys, which each daemon
    writes once per loop; the REST API reads PostgreSQL live and can be a loop ahead of them."""
    def check() -> bool:
        lead, rep = member_key(cluster, leader.name), member_key(cluster, replica.name)
        timeline = patroni(leader).get("timeline")
        return (lead.get("state") == "running" and rep.get("state") == "running"
                and rep.get("replication_state") == "streaming"
                and timeline is not None and lead.get("timeline") == rep.get("timeline") == timeline)
    cluster.wait_for(check, timeout, f"the member keys of {leader.name} and {replica.name} saying running, "
                     "streaming, on the leader's timeline", interval=0.3)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, patronictl_exe: Path) -> Iterator[LocalCluster]:
    base = make_tempdir("hatui-patronictl-")
    c = AuthCluster(base, 2, dcs=dict(FAST))
    failed_before = request.session.testsfailed
    try:
        c.start()
        healthy(c)
        yield c
    finally:
        if request.session.testsfailed > failed_before:
            for node in c.nodes:
                print(f"member key of {node.name}: {member_key(c, node.name)}")
            print_logs(c.nodes, 60)
        c.stop()
        remove_tree(base)


@pytest.fixture(scope="module")
def ctl(cluster: LocalCluster, patronictl_exe: Path):
    """Run patronictl with a config file naming the cluster's etcd and the REST credentials."""
    home = cluster.base_dir / "ctl-home"
    home.mkdir(exist_ok=True)
    config = cluster.base_dir / "patronictl.yaml"
    config.write_text(
        "scope: batman\nnamespace: /service/\n"
        f"etcd3:\n  hosts: {cluster.etcd_endpoint}\n"
        f"ctl:\n  authentication:\n    username: {USER}\n    password: {PASSWORD}\n"
        f"restapi:\n  authentication:\n    username: {USER}\n    password: {PASSWORD}\n")
    # A private HOME so no ~/.config/patroni/patronictl.yaml of the machine gets in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATRONI", "DCS_URL"))}
    env.update(HOME=str(home), PATRONICTL_CONFIG_FILE=str(config), LANG="C.UTF-8")

    def run(*args: str, config_file: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(patronictl_exe)] + (["-c", str(config)] if config_file else []) + list(args)
        run_env = env if config_file else {k: v for k, v in env.items() if k != "PATRONICTL_CONFIG_FILE"}
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=run_env,
                             stdin=subprocess.DEVNULL)
        print(f"$ patronictl {' '.join(args)}\n{res.stdout}{res.stderr}(exit {res.returncode})")
        return res
    return run


# --------------------------------------------------------------------------- tests

def test_list_with_dcs_url(cluster: LocalCluster, ctl) -> None:
    leader, replica = healthy(cluster)
    keys_published(cluster, leader, replica)
    res = ctl("-d", f"etcd3://{cluster.etcd_endpoint}", "list", "batman", config_file=False)
    assert res.returncode == 0, res.stderr
    sysid = patroni(leader)["database_system_identifier"]
    assert f"+ Cluster: batman ({sysid})" in res.stdout
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in res.stdout.splitlines() if line.startswith("| postgresql")}
    assert set(rows) == {leader.name, replica.name}
    assert rows[leader.name][2:4] == ["Leader", "running"]
    assert rows[replica.name][2:4] == ["Replica", "streaming"]
    assert rows[leader.name][1] == f"127.0.0.1:{leader.pg_port}"

    res = ctl("list", "batman", "-f", "json")
    assert res.returncode == 0, res.stderr
    members = {m["Member"]: m for m in json.loads(res.stdout)}
    assert members[leader.name]["Role"] == "Leader" and members[replica.name]["Role"] == "Replica"
    assert members[replica.name]["State"] == "streaming"
    assert members[replica.name]["TL"] == patroni(leader)["timeline"]


def test_switchover_force_with_candidate(cluster: LocalCluster, ctl) -> None:
    leader, replica = healthy(cluster)
    lines_before = len(history_key(cluster))
    res = ctl("switchover", "batman", "--leader", leader.name, "--candidate", replica.name, "--force")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f'Successfully switched over to "{replica.name}"' in res.stdout
    new_leader, old_leader = healthy(cluster)
    assert (new_leader.name, old_leader.name) == (replica.name, leader.name)
    res = ctl("list", "batman", "-f", "json")
    members = {m["Member"]: m for m in json.loads(res.stdout)}
    assert members[replica.name]["Role"] == "Leader" and members[leader.name]["Role"] == "Replica"
    # The new leader writes the history key at the end of its promotion (after a CHECKPOINT), or
    # in that loop's bookkeeping: PostgreSQL, and so healthy(), can say "primary" before it.
    cluster.wait_for(lambda: len(history_key(cluster)) > lines_before, 30, "the switchover's history line")
    res = ctl("history", "batman", "-f", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[-1]["New Leader"] == replica.name


def test_failover_force_to_candidate(cluster: LocalCluster, ctl) -> None:
    leader, replica = healthy(cluster)
    res = ctl("failover", "batman", "--candidate", replica.name, "--force")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f'Successfully failed over to "{replica.name}"' in res.stdout
    new_leader, _ = healthy(cluster)
    assert new_leader.name == replica.name
    res = ctl("topology", "batman")
    assert res.returncode == 0 and f"| + {leader.name}" in res.stdout, res.stdout
    res = ctl("dsn", "batman")
    assert res.returncode == 0 and res.stdout.strip() == f"host=127.0.0.1 port={replica.pg_port}"


def test_restart_force_one_member(cluster: LocalCluster, ctl) -> None:
    healthy(cluster)
    node = cluster.node("postgresql1")
    started = patroni(node)["postmaster_start_time"]
    res = ctl("restart", "--force", "batman", "postgresql1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success: restart on member postgresql1" in res.stdout
    assert patroni(node)["postmaster_start_time"] != started
    healthy(cluster)


def test_scheduled_restart_and_flush(cluster: LocalCluster, ctl) -> None:
    healthy(cluster)
    when = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0).isoformat()
    res = ctl("restart", "--force", "--scheduled", when, "batman", "postgresql0")
    assert res.returncode == 0 and "Success: restart scheduled on member postgresql0" in res.stdout, res.stdout
    cluster.wait_for(lambda: member_key(cluster, "postgresql0").get("scheduled_restart"), 10, "schedule published")
    res = ctl("list", "batman", "-e", "-f", "json")
    member = next(m for m in json.loads(res.stdout) if m["Member"] == "postgresql0")
    assert datetime.fromisoformat(member["Scheduled restart"]) == datetime.fromisoformat(when)
    res = ctl("flush", "batman", "postgresql0", "restart", "--force")
    assert res.returncode == 0 and "Success: flush scheduled restart for member postgresql0" in res.stdout
    assert "scheduled_restart" not in patroni(cluster.node("postgresql0"))


def test_edit_config_reload_and_show_config(cluster: LocalCluster, ctl) -> None:
    healthy(cluster)
    res = ctl("edit-config", "batman", "-p", "work_mem=8MB", "--force")
    assert res.returncode == 0 and "Configuration changed" in res.stdout, res.stdout + res.stderr
    for node in cluster.nodes:
        cluster.wait_for(lambda n=node: sql_value(n, "SHOW work_mem") == "8MB", 30, f"work_mem on {node.name}")
    res = ctl("show-config", "batman")
    assert res.returncode == 0 and "work_mem: 8MB" in res.stdout
    res = ctl("reload", "batman", "--force")
    assert res.returncode == 0, res.stderr
    for node in cluster.nodes:
        assert f"Reload request received for member {node.name}" in res.stdout


def test_pause_and_resume(cluster: LocalCluster, ctl) -> None:
    healthy(cluster)
    res = ctl("pause", "batman", "--wait")
    assert res.returncode == 0 and "Success: cluster management is paused" in res.stdout, res.stdout + res.stderr
    assert all(member_key(cluster, n.name).get("pause") is True for n in cluster.nodes)
    assert "Maintenance mode: on" in ctl("list", "batman").stdout
    assert "Cluster is already paused" in ctl("pause", "batman").stdout + ctl("pause", "batman").stderr
    res = ctl("resume", "batman", "--wait")
    assert res.returncode == 0 and "Success: cluster management is resumed" in res.stdout, res.stdout + res.stderr
    assert not any(member_key(cluster, n.name).get("pause") for n in cluster.nodes)


def test_version_and_reinit(cluster: LocalCluster, ctl) -> None:
    leader, replica = healthy(cluster)
    res = ctl("version", "batman")
    assert res.returncode == 0, res.stderr
    for node in cluster.nodes:
        assert f"{node.name}: Patroni " in res.stdout and "PostgreSQL 15." in res.stdout
    started = patroni(replica)["postmaster_start_time"]
    res = ctl("reinit", "batman", replica.name, "--force", "--wait", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Success: reinitialize for member {replica.name}" in res.stdout
    cluster.wait_for(lambda: (patroni(replica).get("postmaster_start_time") or started) != started, 60,
                     "the replica running from a fresh copy")
    healthy(cluster)


def test_list_unchanged_by_decisions_and_events(cluster: LocalCluster, ctl) -> None:
    """Issue 17: hatui's `decision` field in member keys and the `events/` keys under the cluster
    prefix are ignored by patronictl: it lists the same members, roles, states and timelines."""
    from hatui.etcd.kv import EtcdHttp

    leader, replica = healthy(cluster)
    # healthy() asks the REST API, which reads PostgreSQL live; the member keys (their decision,
    # the state `list` shows) are written once per loop and may still be one behind (the replica
    # was re-cloned by the test before).
    cluster.wait_for(lambda: (member_key(cluster, replica.name).get("decision") or {}).get("leader") == leader.name, 60,
                     f"{replica.name}'s member key: a decision naming {leader.name} the leader")
    keys_published(cluster, leader, replica)
    etcd = EtcdHttp([cluster.etcd_endpoint])
    try:
        assert etcd.read_cluster("/service", "batman").events  # earlier tests switched over and paused
    finally:
        etcd.close()
    res = ctl("list", "batman", "-f", "json")
    assert res.returncode == 0 and not res.stderr, res.stderr
    members = {m["Member"]: m for m in json.loads(res.stdout)}
    assert set(members) == {leader.name, replica.name}
    assert members[leader.name]["Role"] == "Leader" and members[leader.name]["State"] == "running"
    assert members[replica.name]["Role"] == "Replica" and members[replica.name]["State"] == "streaming"
    assert members[replica.name]["TL"] == patroni(leader)["timeline"] == members[leader.name]["TL"]


_ = time


def test_slots_set_by_patronictl_and_the_same_view_as_hatui_list(cluster: LocalCluster, ctl) -> None:
    """Issue 14: permanent slots written with patronictl edit-config are created by hatui; patronictl
    and hatui list the same members, roles, states and timelines; hatui list -e shows the slots."""
    leader, replica = healthy(cluster)
    res = ctl("edit-config", "batman", "--force", "-s", "slots.archiver.type=physical")
    assert res.returncode == 0, res.stdout + res.stderr
    cluster.wait_for(lambda: sql_value(leader, "SELECT slot_type FROM pg_replication_slots "
                                               "WHERE slot_name = 'archiver'") == "physical", 30, "slot on the leader")
    cluster.wait_for(lambda: sql_value(replica, "SELECT slot_type FROM pg_replication_slots "
                                                "WHERE slot_name = 'archiver'") == "physical", 30, "its copy")
    assert "archiver:\n    type: physical" in ctl("show-config", "batman").stdout

    def hatui(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "hatui", "--etcd", cluster.etcd_endpoint, *args],
                             capture_output=True, text=True, timeout=60, check=False)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def view(rows: list) -> dict:
        return {m["Member"]: (m["Role"], m["State"], m["TL"]) for m in rows}

    cluster.wait_for(lambda: view(json.loads(ctl("list", "batman", "-f", "json").stdout))
                     == view(json.loads(hatui("list", "batman", "-f", "json"))), 30, "the same list")
    slots = hatui("list", "-e", "batman")
    assert "| physical | archiver " in slots and f"member {replica.name}" in slots
