"""The CLI without servers: option parsing, config discovery, errors, the thin console/daemon/demo verbs."""

from __future__ import annotations

import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from hatui.cli.main import cli
from hatui.cli.common import CtlError, members_with_role, parse_scheduled
from hatui.cluster import Cluster
from hatui.cli.ctlconfig import ConfigError, discover, parse_dcs_url


@pytest.fixture
def env(tmp_path: Path) -> dict:
    """No config file, no environment overrides: a clean slate for every test."""
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HATUI_CONFIG_FILE": None,
            "PATRONICTL_CONFIG_FILE": None, "HATUI_ETCD": None, "DCS_URL": None, "PATRONI_SCOPE": None,
            "PATRONI_NAMESPACE": None, "PATRONI_ETCD3_HOSTS": None}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(env: dict, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), env=env, input=input)


# --- config discovery ------------------------------------------------------------------------
def test_defaults_without_any_config(tmp_path: Path) -> None:
    cfg = discover(environ={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    assert cfg.etcd_hosts == ["127.0.0.1:2379"]
    assert cfg.namespace == "/service"
    assert cfg.scope is None and cfg.rest_auth is None and cfg.config_file is None
    assert cfg.etcd_source == "default"


def test_node_config_file_gives_scope_namespace_hosts_and_rest_auth(tmp_path: Path) -> None:
    path = tmp_path / "postgres0.yml"
    path.write_text("scope: batman\nnamespace: /db/\netcd3:\n  hosts: 10.0.0.1:2379,10.0.0.2:2379\n"
                    "restapi:\n  listen: 127.0.0.1:8008\n  authentication: {username: api, password: secret}\n")
    cfg = discover(str(path), environ={})
    assert (cfg.scope, cfg.namespace, cfg.etcd_hosts) == ("batman", "/db/", ["10.0.0.1:2379", "10.0.0.2:2379"])
    assert cfg.rest_auth == ("api", "secret")
    # ctl.authentication wins over restapi.authentication
    path.write_text("scope: batman\nctl: {authentication: {username: ctl, password: c}, insecure: true}\n"
                    "restapi: {authentication: {username: api, password: secret}, cafile: /ca.pem}\n")
    cfg = discover(str(path), environ={})
    assert cfg.rest_auth == ("ctl", "c") and cfg.insecure and cfg.rest_cafile == "/ca.pem"


def test_precedence_of_endpoints_and_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text("scope: from-a\netcd3: {host: 10.0.0.1:2379}\n")
    b.write_text("scope: from-b\n")
    environ = {"HATUI_CONFIG_FILE": str(a), "PATRONICTL_CONFIG_FILE": str(b)}
    assert discover(environ=environ).scope == "from-a"
    assert discover(environ={"PATRONICTL_CONFIG_FILE": str(b)}).scope == "from-b"
    assert discover(str(b), environ=environ).scope == "from-b"
    assert discover(environ=environ).etcd_hosts == ["10.0.0.1:2379"]
    assert discover(dcs_url="etcd3://10.9.9.9:2390/ns", environ=environ).etcd_hosts == ["10.9.9.9:2390"]
    assert discover(dcs_url="etcd3://10.9.9.9:2390/ns", environ=environ).namespace == "/ns"
    environ["HATUI_ETCD"] = "10.1.1.1:1,10.1.1.2:2"
    assert discover(dcs_url="etcd3://x:1", environ=environ).etcd_hosts == ["10.1.1.1:1", "10.1.1.2:2"]
    assert discover(etcd=("127.0.0.1:5",), environ=environ).etcd_hosts == ["127.0.0.1:5"]
    assert discover(namespace="/other", dcs_url="etcd3://x:1/ns", environ=environ).namespace == "/other"


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not existing or no read rights"):
        discover(str(tmp_path / "nope.yml"), environ={})
    bad = tmp_path / "bad.yml"
    bad.write_text("scope: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        discover(str(bad), environ={})


def test_parse_dcs_url() -> None:
    assert parse_dcs_url("etcd3://127.0.0.1:2390/service") == (["127.0.0.1:2390"], "/service")
    assert parse_dcs_url("localhost") == (["localhost:2379"], None)
    with pytest.raises(ConfigError, match="Unknown dcs scheme: zookeeper"):
        parse_dcs_url("zookeeper://h:2181")


# --- errors are one line ---------------------------------------------------------------------
def test_etcd_down_is_one_error_line_naming_the_endpoint(env: dict) -> None:
    port = closed_port()
    result = run(env, "--etcd", f"127.0.0.1:{port}", "list", "batman")
    assert result.exit_code == 1
    assert result.stderr == f"Error: etcd is not reachable at 127.0.0.1:{port} (connection refused)\n"
    assert result.stdout == ""


def test_debug_lets_the_exception_through(env: dict) -> None:
    from hatui.etcd.store import DCSError

    result = run(env, "--debug", "--etcd", f"127.0.0.1:{closed_port()}", "list", "batman")
    assert result.exit_code == 1 and isinstance(result.exception, DCSError)


def test_bad_explicit_config_file(env: dict, tmp_path: Path) -> None:
    result = run(env, "-c", str(tmp_path / "missing.yml"), "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Provided config file ")
    assert len(result.stderr.splitlines()) == 1


def test_option_errors_before_any_etcd_access(env: dict) -> None:
    etcd = ["--etcd", f"127.0.0.1:{closed_port()}"]
    result = run(env, *etcd, "query", "batman")
    assert (result.exit_code, result.stderr) == (1, "Error: You need to specify either --command or --file\n")
    result = run(env, *etcd, "dsn", "-r", "leader", "-m", "x")
    assert result.stderr == "Error: --role and --member are mutually exclusive options\n"
    result = run(env, *etcd, "list", "-f", "xml")
    assert result.exit_code == 2 and "Invalid value for '-f' / '--format'" in result.stderr


def test_help_lists_patronictl_verbs(env: dict) -> None:
    result = run(env, "--help")
    for verb in ("list", "topology", "history", "show-config", "edit-config", "switchover", "failover",
                 "restart", "reload", "reinit", "pause", "resume", "flush", "remove", "dsn", "query",
                 "version", "daemon", "demo"):
        assert f"  {verb} " in result.stdout, verb


def test_version_without_cluster(env: dict) -> None:
    from hatui import __version__

    result = run(env, "version")
    assert (result.exit_code, result.stdout) == (0, f"hatui version {__version__}\n")


# --- the thin verbs: console, daemon, demo -----------------------------------------------------
def test_no_verb_opens_the_console_with_the_discovered_settings(env: dict, monkeypatch) -> None:
    calls = []
    fake = types.ModuleType("hatui.app")
    fake.run_console = lambda **kw: calls.append(kw)
    monkeypatch.setitem(sys.modules, "hatui.app", fake)
    result = run(env, "--etcd", "127.0.0.1:2390", "--namespace", "/db", "--read-only")
    assert result.exit_code == 0, result.output
    assert calls == [{"etcd_hosts": ["127.0.0.1:2390"], "namespace": "/db", "scope": None, "read_only": True,
                      "api_auth": None, "log_files": {}}]
    calls.clear()
    assert run(env).exit_code == 0  # nothing configured: no hosts, the console tries the default itself
    assert calls == [{"etcd_hosts": [], "namespace": "/service", "scope": None, "read_only": False,
                      "api_auth": None, "log_files": {}}]


def test_console_missing_is_an_error_line(env: dict, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "hatui.app", None)
    result = run(env)
    assert result.exit_code == 1 and result.stderr.startswith("Error: the console is not available")


def test_demo_passes_every_argument_through(env: dict, monkeypatch) -> None:
    seen = []
    fake = types.ModuleType("hatui.demo")
    fake.main = lambda args: seen.append(args) or 3
    monkeypatch.setitem(sys.modules, "hatui.demo", fake)
    result = run(env, "demo", "--nodes", "3", "-x", "--help")
    assert seen == [["--nodes", "3", "-x", "--help"]]
    assert result.exit_code == 3


def test_demo_not_built_yet(env: dict, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "hatui.demo", None)
    result = run(env, "demo")
    assert (result.exit_code, result.stderr) == (1, "Error: hatui demo is not built yet\n")


def test_daemon_calls_run_with_the_node_file(env: dict, monkeypatch) -> None:
    seen = []
    fake = types.ModuleType("hatui.daemon.main")
    fake.run = lambda path: seen.append(path) or 0
    monkeypatch.setitem(sys.modules, "hatui.daemon.main", fake)
    result = run(env, "daemon", "postgres0.yml")
    assert (result.exit_code, seen) == (0, ["postgres0.yml"])


# --- the CLI path stays light ----------------------------------------------------------------
def test_cli_path_never_imports_textual_grpc_or_psycopg() -> None:
    code = (
        "import sys\n"
        "from hatui.cli.main import main\n"
        "try:\n"
        f"    main(['--etcd', '127.0.0.1:{closed_port()}', 'list', 'batman'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'grpc', 'etcd3', 'psycopg', 'rich'})\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert out.stderr.startswith("Error: etcd is not reachable at 127.0.0.1:")
    assert "Traceback" not in out.stderr


# --- helpers ---------------------------------------------------------------------------------
def test_parse_scheduled() -> None:
    assert parse_scheduled(None) is None and parse_scheduled("now") is None and parse_scheduled("") is None
    when = parse_scheduled("2026-11-26T10:00:00+01:00")
    assert when is not None and when.utcoffset().total_seconds() == 3600
    assert parse_scheduled("2026-11-26T10:00").tzinfo is not None  # local zone added
    with pytest.raises(CtlError, match=r"Unable to parse scheduled timestamp \(tomorrow\)"):
        parse_scheduled("tomorrow")


def test_members_with_role() -> None:
    c = Cluster.from_kvs("b", [("leader", "a", 1, 0), ("members/a", '{"role":"primary"}', 1, 0),
                               ("members/b", '{"role":"replica"}', 1, 0), ("members/c", '{"role":"replica"}', 1, 0)])
    names = lambda role: [m.name for m in members_with_role(c, role)]  # noqa: E731
    assert names("leader") == names("primary") == names("master") == ["a"]
    assert names("standby-leader") == []
    assert names("replica") == names("standby") == ["b", "c"]
    assert names("any") == ["a", "b", "c"]
