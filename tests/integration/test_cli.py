"""`hatui` against a real etcd: the keys are written in Patroni's exact shapes (4.1 as captured in
spec/patroni-observed.md, and 3.x), the CLI reads and writes them, the tests read etcd back.

Verbs that talk to a member's REST API are checked here only against `StubRestApi`, a canned HTTP
responder that records requests. It is NOT a daemon: those tests check how the CLI builds its
requests and reads status codes and texts. End-to-end tests against real hatui daemons live elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from etcd_grpc import GrpcEtcd

from hatui.cli.main import cli
from hatui.cli.common import CtlError
from hatui.cli.edit import write_config_cas
from hatui.etcd.store import ClusterStore, Etcd
from hatui.etcd.kv import EtcdHttp

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_views import OBSERVED_JSON, OBSERVED_KEYS, OBSERVED_TABLE  # noqa: E402

MB = 1048576


# --- helpers ---------------------------------------------------------------------------------
@pytest.fixture
def env(tmp_path: Path) -> dict:
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HATUI_CONFIG_FILE": None,
            "PATRONICTL_CONFIG_FILE": None, "HATUI_ETCD": None, "DCS_URL": None, "PATRONI_SCOPE": None,
            "PATRONI_NAMESPACE": None, "PATRONI_ETCD3_HOSTS": None, "EDITOR": None}


@pytest.fixture
def grpc_etcd(etcd):
    """The test's own view of etcd, through the gRPC client (not the CLI's JSON gateway)."""
    client = GrpcEtcd([etcd.endpoint])
    yield client
    client.close()


class Cli:
    def __init__(self, endpoint: str, env: dict) -> None:
        self.endpoint = endpoint
        self.env = env

    def __call__(self, *args: str, input: str | None = None):
        return CliRunner().invoke(cli, ["--etcd", self.endpoint, *args], env=self.env, input=input)


@pytest.fixture
def hatui(etcd, env) -> Cli:
    return Cli(etcd.endpoint, env)


def put_keys(client: Etcd, keys: dict[str, str], scope: str = "batman", namespace: str = "/service") -> None:
    for key, value in keys.items():
        client.put(f"{namespace}/{scope}/{key}", value)


def member(**data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def config_of(client: Etcd, scope: str = "batman") -> tuple[dict, int]:
    value, rev = client.get(f"/service/{scope}/config")
    return json.loads(value), rev


class StubRestApi:
    """Canned REST answers for ONE member, recording every request (method, path, headers, body).

    routes maps "METHOD /path" to (status, text) or to a function(body) -> (status, text).
    Not a daemon and not a test of Patroni behaviour: only of the CLI's request/response handling.
    """

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, dict, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                stub.requests.append((self.command, self.path, dict(self.headers), body))
                route = stub.routes.get(f"{self.command} {self.path}", (404, "not found"))
                status, text = route(body) if callable(route) else route
                data = text.encode() if isinstance(text, str) else json.dumps(text).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/patroni"

    def calls(self, method: str) -> list[tuple[str, str, dict, Any]]:
        return [r for r in self.requests if r[0] == method]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stubs():
    made: list[StubRestApi] = []

    def make(routes: dict[str, Any]) -> StubRestApi:
        s = StubRestApi(routes)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def replica_status(name: str, pos: int = 50331744) -> dict:
    return {"state": "running", "role": "replica", "server_version": 150018, "timeline": 1,
            "xlog": {"received_location": pos, "replayed_location": pos, "replayed_timestamp": None, "paused": False},
            "patroni": {"version": "4.1.5", "scope": "batman", "name": name}}


def leader_status(name: str) -> dict:
    return {"state": "running", "role": "primary", "server_version": 150018, "timeline": 1,
            "xlog": {"location": 50331744}, "patroni": {"version": "4.1.5", "scope": "batman", "name": name}}


def cluster_with_apis(client: Etcd, leader_api: str, replica_api: str, **replica_extra: Any) -> None:
    keys = dict(OBSERVED_KEYS)
    keys["members/postgresql0"] = member(conn_url="postgres://127.0.0.1:5432/postgres", api_url=leader_api,
                                         state="running", role="primary", version="4.1.5",
                                         xlog_location=50331744, timeline=1)
    data = dict(conn_url="postgres://127.0.0.1:5433/postgres", api_url=replica_api, state="running", role="replica",
                version="4.1.5", xlog_location=50331744, replay_lsn=50331744, receive_lsn=50331744,
                replication_state="streaming", timeline=1)
    data.update(replica_extra)
    keys["members/postgresql1"] = member(**data)
    put_keys(client, keys)


# --- reading ---------------------------------------------------------------------------------
def test_list_4_1_keys_line_by_line(hatui: Cli, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, OBSERVED_KEYS)
    result = hatui("list", "batman")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == OBSERVED_TABLE.splitlines()
    # the only cluster under the namespace is used when none is named and no scope is configured
    assert hatui("list").stdout == result.stdout
    assert hatui("list", "-f", "json").stdout == OBSERVED_JSON + "\n"
    tsv = hatui("list", "-f", "tsv").stdout.splitlines()
    assert tsv[2] == "batman\tpostgresql1\t127.0.0.1:5433\tReplica\tstreaming\t1\t0/3000060\t0\t0/3000060\t0"
    yaml_lines = hatui("list", "-f", "yaml").stdout.splitlines()
    assert yaml_lines[:3] == ["- Cluster: batman", "  Host: 127.0.0.1:5432", "  Member: postgresql0"]
    topo = hatui("topology").stdout.splitlines()
    assert topo[4].startswith("| + postgresql1 | 127.0.0.1:5433 | Replica | streaming |")


def test_list_uses_scope_from_a_config_file(hatui: Cli, grpc_etcd: Etcd, env: dict, tmp_path: Path, etcd) -> None:
    put_keys(grpc_etcd, OBSERVED_KEYS)
    put_keys(grpc_etcd, {"initialize": "1"}, scope="other")
    conf = tmp_path / "patronictl.yaml"
    conf.write_text(f"scope: batman\nnamespace: /service\netcd3:\n  hosts: {etcd.endpoint}\n")
    result = CliRunner().invoke(cli, ["-c", str(conf), "list"], env=env)
    assert result.stdout.splitlines() == OBSERVED_TABLE.splitlines()
    # without scope, two clusters: refuse and name them
    result = hatui("list")
    assert result.exit_code == 1
    assert result.stderr == "Error: Several clusters under /service: batman, other; name the one you mean\n"


def test_list_3x_keys(hatui: Cli, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, {
        "initialize": "7277694203142172922",
        "leader": "postgresql0",
        "members/postgresql0": member(conn_url="postgres://127.0.0.1:5432/postgres",
                                      api_url="http://127.0.0.1:8008/patroni", state="running", role="master",
                                      version="3.3.2", xlog_location=50331744, timeline=5),
        "members/postgresql1": member(conn_url="postgres://127.0.0.1:5433/postgres",
                                      api_url="http://127.0.0.1:8009/patroni", state="running", role="replica",
                                      version="3.3.2", xlog_location=50331744 - 2 * MB,
                                      replication_state="streaming", timeline=5),
        "status": '{"optime":50331744,"slots":{}}',
        "optime/leader": "50331744",
    })
    lines = hatui("list").stdout.splitlines()
    assert lines[0] == "+ Cluster: batman (7277694203142172922) -+-----------+----+-------------+-----+------------+-----+"
    assert lines[3] == "| postgresql0 | 127.0.0.1:5432 | Leader  | running   |  5 |             |     |            |     |"
    assert lines[4] == "| postgresql1 | 127.0.0.1:5433 | Replica | streaming |  5 |   0/2E00060 |   2 |    unknown |     |"


def test_history_and_show_config(hatui: Cli, grpc_etcd: Etcd) -> None:
    keys = dict(OBSERVED_KEYS)
    keys["history"] = ('[[1,50331808,"no recovery target specified","2026-11-25T19:45:40.417338+00:00",'
                       '"postgresql1"]]')
    put_keys(grpc_etcd, keys)
    assert hatui("history").stdout.splitlines() == [
        "+----+----------+------------------------------+----------------------------------+-------------+",
        "| TL |      LSN | Reason                       | Timestamp                        | New Leader  |",
        "+----+----------+------------------------------+----------------------------------+-------------+",
        "|  1 | 50331808 | no recovery target specified | 2026-11-25T19:45:40.417338+00:00 | postgresql1 |",
        "+----+----------+------------------------------+----------------------------------+-------------+",
    ]
    assert json.loads(hatui("history", "-f", "json").stdout)[0]["New Leader"] == "postgresql1"
    assert hatui("show-config").stdout == (
        "loop_wait: 10\n"
        "maximum_lag_on_failover: 1048576\n"
        "postgresql:\n"
        "  parameters:\n"
        "    hot_standby: 'on'\n"
        "    max_replication_slots: 10\n"
        "    max_wal_senders: 10\n"
        "    wal_keep_size: 128MB\n"
        "    wal_level: replica\n"
        "    wal_log_hints: 'on'\n"
        "  use_pg_rewind: true\n"
        "  use_slots: true\n"
        "retry_timeout: 10\n"
        "ttl: 30\n"
        "\n"
    )


def test_dsn(hatui: Cli, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, OBSERVED_KEYS)
    assert hatui("dsn").stdout == "host=127.0.0.1 port=5432\n"
    assert hatui("dsn", "-r", "replica").stdout == "host=127.0.0.1 port=5433\n"
    assert hatui("dsn", "batman", "-m", "postgresql1").stdout == "host=127.0.0.1 port=5433\n"
    result = hatui("dsn", "-m", "postgresql7")
    assert (result.exit_code, result.stderr) == (1, "Error: postgresql7 is not a member of cluster batman\n")


def test_unknown_member_names_are_refused_in_every_verb(hatui: Cli, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, OBSERVED_KEYS)
    for args in (["restart", "batman", "nosuch", "--force"], ["reload", "batman", "nosuch", "--force"],
                 ["reinit", "batman", "nosuch", "--force"], ["flush", "batman", "nosuch", "restart", "--force"],
                 ["flush", "batman", "nosuch", "switchover"], ["version", "batman", "nosuch"],
                 ["query", "-m", "nosuch", "-c", "select 1"], ["dsn", "-m", "nosuch"],
                 ["switchover", "--candidate", "nosuch", "--force"], ["failover", "--candidate", "nosuch", "--force"]):
        result = hatui(*args)
        assert result.exit_code == 1, args
        assert result.stderr.splitlines()[-1] == "Error: nosuch is not a member of cluster batman", args
        assert "Traceback" not in result.output


def test_etcd_stopped_gives_one_line_and_exit_1(etcd, env: dict) -> None:
    etcd.stop()
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "hatui.cli", "--etcd", etcd.endpoint, "list", "batman"],
                         capture_output=True, text=True, env={**os.environ, "HOME": env["HOME"]}, timeout=60)
    print(f"hatui list with etcd stopped returned in {time.monotonic() - started:.2f} s")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr == f"Error: etcd is not reachable at {etcd.endpoint} (connection refused)\n"


def test_list_process_stays_light_and_prints_its_time(etcd, grpc_etcd: Etcd, env: dict) -> None:
    put_keys(grpc_etcd, OBSERVED_KEYS)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "hatui.cli", "--etcd", etcd.endpoint, "list"],
                         capture_output=True, text=True, env={**os.environ, "HOME": env["HOME"]}, timeout=60)
    print(f"hatui list (whole process, with -X importtime) took {time.monotonic() - started:.3f} s")
    assert out.returncode == 0
    assert out.stdout.splitlines() == OBSERVED_TABLE.splitlines()
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert not imported & {"textual", "rich", "grpc", "etcd3", "psycopg"}


def test_shell_completion_of_clusters_and_members(etcd, grpc_etcd: Etcd, env: dict) -> None:
    put_keys(grpc_etcd, OBSERVED_KEYS)
    put_keys(grpc_etcd, {"initialize": "2"}, scope="robin")

    def complete(words: str) -> list[str]:
        e = {**env, "_HATUI_COMPLETE": "bash_complete", "COMP_WORDS": words,
             "COMP_CWORD": str(len(words.split()) if words.endswith(" ") else len(words.split()) - 1)}
        result = CliRunner().invoke(cli, [], env=e, prog_name="hatui")
        return [line for line in result.stdout.splitlines() if line]

    assert complete(f"hatui --etcd {etcd.endpoint} list ") == ["plain,batman", "plain,robin"]
    assert complete(f"hatui --etcd {etcd.endpoint} restart batman postgresql") == [
        "plain,postgresql0", "plain,postgresql1"]
    etcd.stop()
    assert complete(f"hatui --etcd {etcd.endpoint} list ") == []


# --- edit-config -----------------------------------------------------------------------------
TALK_CONFIG = {"loop_wait": 10, "maximum_lag_on_failover": 1048576,
               "postgresql": {"parameters": {"max_connections": 100}, "use_pg_rewind": True},
               "retry_timeout": 10, "ttl": 30}


def test_edit_config_refuses_ttl_5_and_writes_nothing(hatui: Cli, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, {**OBSERVED_KEYS, "config": json.dumps(TALK_CONFIG)})
    before, rev = config_of(grpc_etcd)
    result = hatui("edit-config", "--set", "ttl=5", "--force")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: ttl: 5 must be >= 20",
        "Error: ttl: 5 must be >= loop_wait + 2 * retry_timeout = 10 + 2 * 10 = 30",
    ]
    assert "Configuration changed" not in result.stdout
    assert config_of(grpc_etcd) == (before, rev)


def test_edit_config_the_talks_three_changes(hatui: Cli, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, {**OBSERVED_KEYS, "config": json.dumps(TALK_CONFIG)})

    result = hatui("edit-config", "batman", "--pg", "work_mem=8MB", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "--- ", "+++ ", "@@ -3,6 +3,7 @@",
        " postgresql:", "   parameters:", "     max_connections: 100", "+    work_mem: 8MB",
        "   use_pg_rewind: true", " retry_timeout: 10", " ttl: 30",
        "Configuration changed",
    ]
    assert config_of(grpc_etcd)[0]["postgresql"]["parameters"] == {"max_connections": 100, "work_mem": "8MB"}

    result = hatui("edit-config", "-p", "max_connections=101", "--force")
    assert "-    max_connections: 100" in result.stdout.splitlines()
    assert "+    max_connections: 101" in result.stdout.splitlines()
    assert config_of(grpc_etcd)[0]["postgresql"]["parameters"]["max_connections"] == 101

    result = hatui("edit-config", "-s", "ttl=60", "-s", "loop_wait=5", "-s", "retry_timeout=27", "--force")
    changed = [line for line in result.stdout.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert sorted(changed) == sorted(["-loop_wait: 10", "+loop_wait: 5", "-retry_timeout: 10",
                                      "+retry_timeout: 27", "-ttl: 30", "+ttl: 60"])
    data = config_of(grpc_etcd)[0]
    assert (data["ttl"], data["loop_wait"], data["retry_timeout"]) == (60, 5, 27)

    # the talk's fourth edit, ttl 5 with loop_wait back to 10, breaks the rule: refused
    result = hatui("edit-config", "-s", "ttl=5", "-s", "loop_wait=10", "--force")
    assert result.exit_code == 1
    assert "Error: ttl: 5 must be >= loop_wait + 2 * retry_timeout = 10 + 2 * 27 = 64" in result.stderr.splitlines()
    assert config_of(grpc_etcd)[0]["ttl"] == 60


def test_edit_config_prompts_and_not_changed(hatui: Cli, grpc_etcd: Etcd, tmp_path: Path) -> None:
    put_keys(grpc_etcd, {**OBSERVED_KEYS, "config": json.dumps(TALK_CONFIG)})
    _, rev = config_of(grpc_etcd)
    result = hatui("edit-config", "-s", "ttl=30")
    assert (result.exit_code, result.stdout) == (0, "Not changed\n")
    result = hatui("edit-config", "-s", "ttl=40", input="n\n")
    assert "Apply these changes? [y/N]: n" in result.stdout
    assert config_of(grpc_etcd)[1] == rev
    result = hatui("edit-config", "-s", "ttl=40", input="y\n")
    assert result.stdout.endswith("Configuration changed\n")
    # stdin as the source needs --force
    result = hatui("edit-config", "--apply", "-", input="ttl: 50\n")
    assert (result.exit_code, result.stderr) == (1, "Error: Use --force option to apply changes\n")
    assert config_of(grpc_etcd)[0]["ttl"] == 40
    result = hatui("edit-config", "--apply", "-", "--force", "-q", input="ttl: 50\npostgresql: {use_pg_rewind: null}\n")
    assert (result.exit_code, result.stdout) == (0, "Configuration changed\n")
    data = config_of(grpc_etcd)[0]
    assert data["ttl"] == 50 and "use_pg_rewind" not in data["postgresql"]
    replace = tmp_path / "new.yml"
    replace.write_text("ttl: 30\nloop_wait: 10\nretry_timeout: 10\n")
    result = hatui("edit-config", "--replace", str(replace), "--force", "-q")
    assert config_of(grpc_etcd)[0] == {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}


def test_edit_config_in_the_terminal_editor(hatui: Cli, grpc_etcd: Etcd, monkeypatch) -> None:
    """No option on a terminal: the in-terminal editor's text goes through the same checks and CAS."""
    import types

    import hatui.cli.edit as cli_edit

    put_keys(grpc_etcd, {**OBSERVED_KEYS, "config": json.dumps(TALK_CONFIG)})
    answers: list = []
    seen: list = []

    def fake_editor(initial_yaml: str, title: str):
        seen.append((initial_yaml, title))
        return answers.pop(0)

    fake = types.ModuleType("hatui.screens.config_editor")
    fake.edit_config_interactive = fake_editor
    monkeypatch.setitem(sys.modules, "hatui.screens.config_editor", fake)
    monkeypatch.setattr(cli_edit, "_terminal", lambda: True)
    _, rev = config_of(grpc_etcd)

    answers.append(None)  # cancelled
    assert hatui("edit-config").stdout == "Not changed\n"
    assert seen[0][0].startswith("loop_wait: 10\nmaximum_lag_on_failover: 1048576\n")
    assert seen[0][1] == "edit-config batman"

    answers.append("ttl: 5\nloop_wait: 10\nretry_timeout: 10\n")  # saved, but invalid
    result = hatui("edit-config", "--force")
    assert result.exit_code == 1
    assert "Error: ttl: 5 must be >= 20" in result.stderr.splitlines()
    answers.append("ttl: [unclosed\n")  # not even YAML
    result = hatui("edit-config", "--force")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    assert config_of(grpc_etcd)[1] == rev

    # The editor confirmed (it shows the diff and asks): the command line does not ask again.
    answers.append(seen[0][0].replace("ttl: 30", "ttl: 45"))
    result = hatui("edit-config")
    assert result.exit_code == 0, result.output
    assert "Apply these changes?" not in result.stdout
    assert result.stdout.endswith("Configuration changed\n")
    assert config_of(grpc_etcd)[0]["ttl"] == 45


def test_edit_config_without_config_key(hatui: Cli, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, {k: v for k, v in OBSERVED_KEYS.items() if k != "config"})
    result = hatui("edit-config", "-s", "ttl=40", "--force")
    assert (result.exit_code, result.stderr) == (1, "Error: The config key does not exist in the cluster batman\n")


def test_concurrent_edits_from_the_same_revision(etcd, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, {**OBSERVED_KEYS, "config": json.dumps(TALK_CONFIG)})
    store = ClusterStore(EtcdHttp([etcd.endpoint]), "/service", "batman")
    rev = store.read().config.mod_revision
    write_config_cas(store, {**TALK_CONFIG, "ttl": 40}, rev)
    with pytest.raises(CtlError) as err:
        write_config_cas(store, {**TALK_CONFIG, "ttl": 50}, rev)
    assert err.value.message == "Config modification aborted due to concurrent changes"
    assert config_of(grpc_etcd)[0]["ttl"] == 40


def test_edit_in_editor_loses_to_a_concurrent_edit(hatui: Cli, grpc_etcd: Etcd, env: dict, tmp_path: Path) -> None:
    """A real race: while our $EDITOR is open, another hatui process changes the config."""
    put_keys(grpc_etcd, {**OBSERVED_KEYS, "config": json.dumps(TALK_CONFIG)})
    editor = tmp_path / "editor.sh"
    editor.write_text(
        "#!/bin/sh\n"
        f"'{sys.executable}' -m hatui.cli --etcd {hatui.endpoint} edit-config batman -s ttl=40 --force -q || exit 3\n"
        "sed -i 's/^ttl: 30$/ttl: 50/' \"$1\"\n")
    editor.chmod(0o755)
    env["EDITOR"] = str(editor)
    result = hatui("edit-config", "--editor", "--force")
    assert result.exit_code == 1, result.output
    assert "+ttl: 50" in result.stdout.splitlines()
    assert result.stderr == "Error: Config modification aborted due to concurrent changes\n"
    assert config_of(grpc_etcd)[0]["ttl"] == 40


# --- remove ----------------------------------------------------------------------------------
def test_remove_asks_three_questions(hatui: Cli, grpc_etcd: Etcd) -> None:
    put_keys(grpc_etcd, OBSERVED_KEYS)
    put_keys(grpc_etcd, {"initialize": "2"}, scope="robin")
    result = hatui("remove", "batman", input="robin\n")
    assert (result.exit_code, result.stderr) == (1, "Error: Cluster names specified do not match\n")
    result = hatui("remove", "batman", input="batman\nyes\n")
    assert result.stderr == 'Error: You did not exactly type "Yes I am aware"\n'
    result = hatui("remove", "batman", input="batman\nYes I am aware\npostgresql1\n")
    assert result.stderr == "Error: You did not specify the current leader of the cluster\n"
    assert grpc_etcd.get_prefix("/service/batman/")[0]
    result = hatui("remove", "batman", input="batman\nYes I am aware\npostgresql0\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:6] == OBSERVED_TABLE.splitlines()
    assert "Please confirm the cluster name to remove: batman" in result.stdout
    assert "This cluster currently is healthy. Please specify the leader name to continue: postgresql0" in result.stdout
    assert grpc_etcd.get_prefix("/service/batman/")[0] == []
    assert grpc_etcd.get_prefix("/service/robin/")[0]  # the neighbour is untouched
    result = hatui("remove", "batman")
    assert result.stderr.startswith("Error: Cluster batman does not exist under /service")


# --- REST verbs against StubRestApi (request/response handling only) -------------------------
def test_switchover_posts_to_the_leader_and_prints_the_answer(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    leader = stubs({"GET /patroni": (200, leader_status("postgresql0")),
                    "POST /switchover": (200, 'Successfully switched over to "postgresql1"')})
    replica = stubs({"GET /patroni": (200, replica_status("postgresql1"))})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("switchover", "--leader", "postgresql0", "--candidate", "postgresql1", "--force")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Current cluster topology"
    assert lines[7].endswith(' Successfully switched over to "postgresql1"')
    assert len(lines) == 14  # before table, answer, after table
    (_, path, headers, body), = leader.calls("POST")
    assert path == "/switchover"
    assert body == {"leader": "postgresql0", "candidate": "postgresql1", "scheduled_at": None}
    assert replica.calls("GET")  # the candidate was asked before the switchover


def test_switchover_prompts_like_patronictl(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    leader = stubs({"POST /switchover": (202, "Switchover scheduled")})
    replica = stubs({"GET /patroni": (200, replica_status("postgresql1"))})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("switchover", input="\npostgresql1\n2030-01-02T03:04+00:00\ny\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Primary [postgresql0]: " in out
    assert "Candidate ['postgresql1'] []: postgresql1" in out
    assert "When should the switchover take place (e.g. " in out and " )  [now]: 2030-01-02T03:04+00:00" in out
    assert ("Are you sure you want to schedule switchover of cluster batman at 2030-01-02T03:04:00+00:00, "
            "demoting current leader postgresql0? [y/N]: y") in out
    assert leader.calls("POST")[0][3]["scheduled_at"] == "2030-01-02T03:04:00+00:00"
    result = hatui("switchover", "--candidate", "postgresql1", "--scheduled", "now", input="\nn\n")
    assert (result.exit_code, result.stderr) == (1, "Error: Aborting switchover\n")


def test_switchover_refuses_an_ineligible_candidate_with_the_reason(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    leader = stubs({"POST /switchover": (200, "should not be called")})
    lagging = 50331744 - 3 * MB
    replica = stubs({"GET /patroni": (200, replica_status("postgresql1", lagging))})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url, receive_lsn=lagging, replay_lsn=lagging,
                      xlog_location=lagging)
    result = hatui("switchover", "--candidate", "postgresql1", "--force")
    assert result.exit_code == 1
    reason = "it lags 3.0 MB (3145728 bytes) behind, more than maximum_lag_on_failover (1048576 bytes)"
    assert result.stderr == f"Error: Candidate postgresql1 is not eligible: {reason}\n"
    # asked interactively, the reason comes before the question
    result = hatui("switchover", input="\npostgresql1\nnow\n")
    out = result.stdout
    assert out.index(f"Candidate postgresql1 is not eligible: {reason}") < out.index("Candidate ['postgresql1'] []:")
    assert result.stderr == f"Error: Candidate postgresql1 is not eligible: {reason}\n"
    # no candidate named: nobody can be promoted, and the error says why
    result = hatui("switchover", "--force")
    assert result.stderr == f"Error: No candidate can be promoted now: postgresql1: {reason}\n"
    assert leader.calls("POST") == []


def test_switchover_failure_status_is_an_error(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    leader = stubs({"POST /switchover": (412, "switchover is not possible: no good candidates have been found")})
    replica = stubs({"GET /patroni": (200, replica_status("postgresql1"))})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("switchover", "--candidate", "postgresql1", "--force")
    assert result.exit_code == 1
    assert result.stderr == ("Error: Switchover failed, details: 412, switchover is not possible: "
                             "no good candidates have been found\n")
    leader.routes["POST /switchover"] = (503, "Switchover status unknown")
    result = hatui("switchover", "--candidate", "postgresql1", "--force")
    assert result.stderr == "Error: Switchover result unknown, details: 503, Switchover status unknown\n"


def test_switchover_falls_back_to_the_failover_key(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    replica = stubs({"GET /patroni": (200, replica_status("postgresql1"))})
    dead = stubs({})
    dead_url = dead.api_url
    dead.stop()
    cluster_with_apis(grpc_etcd, dead_url, replica.api_url)
    result = hatui("switchover", "--candidate", "postgresql1", "--force")
    assert result.exit_code == 0, result.output
    assert " Could not switchover using Patroni api, falling back to DCS" in result.stdout
    value, _ = grpc_etcd.get("/service/batman/failover")
    assert json.loads(value) == {"leader": "postgresql0", "member": "postgresql1"}


def test_failover_needs_a_candidate_and_posts_failover(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    leader = stubs({"POST /failover": (200, 'Successfully failed over to "postgresql1"')})
    replica = stubs({"GET /patroni": (200, replica_status("postgresql1"))})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("failover", "--force")
    assert result.stderr == "Error: Failover could be performed only to a specific candidate\n"
    result = hatui("failover", "--candidate", "postgresql0", "--force")
    assert result.stderr == "Error: Member postgresql0 is already the leader of cluster batman\n"
    result = hatui("failover", "--candidate", "postgresql1", "--force")
    assert result.exit_code == 0, result.output
    assert leader.calls("POST")[0][1:4:2] == ("/failover", {"candidate": "postgresql1"})


def test_restart_reload_messages_by_status(hatui: Cli, grpc_etcd: Etcd, stubs, env: dict, tmp_path: Path) -> None:
    leader = stubs({"POST /restart": (200, "restarted successfully"), "POST /reload": (202, "reload scheduled")})
    replica = stubs({"POST /restart": (409, "Another restart is already scheduled"),
                     "POST /reload": (200, "nothing changed")})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("restart", "batman", "--force")
    assert result.exit_code == 1
    assert "Success: restart on member postgresql0" in result.stdout.splitlines()
    assert "Failed: another restart is already scheduled on member postgresql1" in result.stdout.splitlines()
    assert result.stderr == "Error: restart failed on 1 of 2 members\n"
    assert leader.calls("POST")[0][3] == {}

    result = hatui("restart", "batman", "postgresql0", "--scheduled", "2030-01-01T00:00:00+00:00",
                   "--pg-version", "16.1", "--force")
    assert leader.calls("POST")[-1][3] == {"schedule": "2030-01-01T00:00:00+00:00", "postgres_version": "16.1"}
    result = hatui("restart", "batman", "-r", "replica", input="now\ny\n\n")
    assert "Are you sure you want to restart members postgresql1? [y/N]: y" in result.stdout
    result = hatui("restart", "batman", "--pg-version", "sixteen", "--force")
    assert result.stderr == "Error: sixteen is not a PostgreSQL version (expected e.g. 15.2 or 9.6.24)\n"

    result = hatui("reload", "batman", "--force")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-2:] == [
        "Reload request received for member postgresql0 and will be processed within 10 seconds",
        "No changes to apply on member postgresql1",
    ]
    # basic auth from ctl.authentication goes with every unsafe request
    conf = tmp_path / "ctl.yml"
    conf.write_text("ctl:\n  authentication: {username: admin, password: s3cret}\n")
    CliRunner().invoke(cli, ["-c", str(conf), "--etcd", hatui.endpoint, "reload", "batman", "postgresql0",
                             "--force"], env=env)
    assert leader.calls("POST")[-1][2]["Authorization"] == "Basic YWRtaW46czNjcmV0"


def test_reinit_retries_with_force_after_confirmation(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    answers = iter([(503, "reinitialize already in progress"), (200, "reinitialize started")])
    leader = stubs({})
    replica = stubs({"POST /reinitialize": lambda body: next(answers)})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("reinit", "batman", "postgresql0", "--force")
    assert result.stderr == ("Error: Member postgresql0 is the leader of cluster batman: only replicas can be "
                             "reinitialized\n")
    result = hatui("reinit", "batman", "postgresql1", input="y\n")
    assert (result.exit_code, result.stderr) == (1, "Error: Aborted reinitialize: the names typed do not match "
                                                    "postgresql1\n")
    assert replica.calls("POST") == []
    result = hatui("reinit", "batman", "postgresql1", input="postgresql1\ny\n")
    assert result.exit_code == 0, result.output
    assert "Type the member name(s) to confirm: postgresql1" in result.stdout
    assert [r[3] for r in replica.calls("POST")] == [{"force": False, "from_leader": False},
                                                     {"force": True, "from_leader": False}]
    assert "Do you want to cancel it and reinitialize anyway? [y/N]: y" in result.stdout
    assert result.stdout.splitlines()[-1] == "Success: reinitialize for member postgresql1"


def test_pause_resume_patch_the_leader_first(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    leader = stubs({"PATCH /config": (200, "{}")})
    replica = stubs({"PATCH /config": (200, "{}")})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("resume")
    assert (result.exit_code, result.stderr) == (1, "Error: Cluster is not paused\n")
    result = hatui("pause")
    assert (result.exit_code, result.stdout) == (0, "Success: cluster management is paused\n")
    assert leader.calls("PATCH")[0][1:4:2] == ("/config", {"pause": True})
    assert replica.calls("PATCH") == []
    put_keys(grpc_etcd, {"config": '{"ttl":30,"pause":true}'})
    leader.routes["PATCH /config"] = (503, "no config")
    result = hatui("resume")
    assert result.stderr == "Error: Failed: resume cluster management status code=503, (no config)\n"
    assert leader.calls("PATCH")[-1][3] == {"pause": None}


def test_flush_and_version(hatui: Cli, grpc_etcd: Etcd, stubs) -> None:
    leader = stubs({"DELETE /switchover": (200, "scheduled switchover deleted"),
                    "GET /patroni": (200, leader_status("postgresql0"))})
    replica = stubs({"GET /patroni": (200, replica_status("postgresql1")),
                     "DELETE /restart": (200, "scheduled restart deleted")})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url,
                      scheduled_restart={"schedule": "2030-01-01T00:00:00+00:00"})
    assert hatui("flush", "batman", "switchover").stdout == "No pending scheduled switchover\n"
    put_keys(grpc_etcd, {"failover": '{"leader":"postgresql0","member":"postgresql1",'
                                     '"scheduled_at":"2030-01-01T00:00:00+00:00"}'})
    assert "Switchover scheduled at: 2030-01-01T00:00:00+00:00" in hatui("list").stdout
    assert hatui("flush", "batman", "switchover").stdout == "Success: scheduled switchover deleted\n"
    assert leader.calls("DELETE")[0][1] == "/switchover"
    result = hatui("flush", "batman", "restart", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == ["No scheduled restart for member postgresql0",
                                               "Success: flush scheduled restart for member postgresql1"]
    replica.routes["DELETE /restart"] = (404, "no restarts are scheduled")
    result = hatui("flush", "batman", "postgresql1", "restart", "--force")
    assert result.stdout.splitlines()[-1] == ("Failed: flush scheduled restart for member postgresql1, "
                                              "status code=404, (no restarts are scheduled)")
    assert (result.exit_code, result.stderr) == (1, "Error: flush failed on 1 of 1 member\n")
    result = hatui("version", "batman")
    assert result.stdout.splitlines()[1:] == ["", "postgresql0: Patroni 4.1.5 PostgreSQL 15.18",
                                              "postgresql1: Patroni 4.1.5 PostgreSQL 15.18"]


def test_reinit_wait_polls_until_the_replica_is_created(hatui: Cli, grpc_etcd: Etcd, stubs, monkeypatch) -> None:
    import hatui.cli.actions as actions

    monkeypatch.setattr(actions, "REINIT_POLL_INTERVAL", 0.05)
    states = iter(["creating replica", "creating replica", "running"])
    leader = stubs({})
    replica = stubs({"POST /reinitialize": (200, "reinitialize started"),
                     "GET /patroni": lambda body: (200, {**replica_status("postgresql1"), "state": next(states)})})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("reinit", "batman", "postgresql1", "--wait", "--from-leader", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-3:] == ["Success: reinitialize for member postgresql1",
                                               "Waiting for reinitialize to complete on: postgresql1",
                                               "Reinitialize is completed on: postgresql1"]
    assert replica.calls("POST")[0][3] == {"force": True, "from_leader": True}
    assert len(replica.calls("GET")) == 3


def test_pause_wait_until_members_report_it(hatui: Cli, grpc_etcd: Etcd, stubs, monkeypatch) -> None:
    import hatui.cli.actions as actions

    monkeypatch.setattr(actions, "PAUSE_POLL_INTERVAL", 0.05)

    def patch_config(body: dict) -> tuple[int, str]:
        # What members do after a PATCH: the config changes and each member key gets pause: true.
        put_keys(grpc_etcd, {"config": '{"ttl":30,"loop_wait":2,"pause":true}'})
        for name in ("postgresql0", "postgresql1"):
            value, _ = grpc_etcd.get(f"/service/batman/members/{name}")
            put_keys(grpc_etcd, {f"members/{name}": json.dumps({**json.loads(value), "pause": True})})
        return 200, "{}"

    leader = stubs({"PATCH /config": patch_config})
    replica = stubs({})
    cluster_with_apis(grpc_etcd, leader.api_url, replica.api_url)
    result = hatui("pause", "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["'pause' request sent, waiting until it is recognized by all nodes",
                                          "Success: cluster management is paused"]
    assert hatui("list").stdout.splitlines()[-1] == " Maintenance mode: on"
    assert hatui("pause").stderr == "Error: Cluster is already paused\n"


def test_query_runs_sql_on_the_leader(hatui: Cli, grpc_etcd: Etcd, pg) -> None:
    keys = dict(OBSERVED_KEYS)
    keys["members/postgresql0"] = member(conn_url=f"postgres://127.0.0.1:{pg.port}/postgres",
                                         api_url="http://127.0.0.1:1/patroni", state="running", role="primary",
                                         version="4.1.5", xlog_location=50331744, timeline=1)
    put_keys(grpc_etcd, keys)
    result = hatui("query", "-U", "postgres", "-c", "select 1 as one, 'x' as two, null as three")
    assert result.exit_code == 0, result.output
    assert result.stdout == "one\ttwo\tthree\n1\tx\t\n"
    result = hatui("query", "-U", "postgres", "--format", "json", "-c", "select pg_is_in_recovery() as r")
    assert json.loads(result.stdout) == [{"r": False}]
    result = hatui("query", "-U", "postgres", "-r", "replica", "-c", "select 1")
    assert result.exit_code == 1 and "Error: " in result.stderr  # postgresql1 is not listening: one line
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    result = hatui("query", "-U", "postgres", "-c", "select * from no_such_table")
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: PostgreSQL: relation "no_such_table" does not exist')
