"""The daemon is built from the typed node model only (daemon/node.py reads NodeConfig, never
node.raw), and a credential the node file does not give stays absent.

The reference below, `_from_raw`, is how NodeRuntime read the raw YAML mapping before: for the
demo configs, the launcher's test configs and a config using every section the runtime reads,
the typed runtime must give every reader the same values, except the replication password that
was invented ("rep-pass") when the file had none: Patroni's schema makes the password optional,
and without one libpq finds it in .pgpass, or needs none (trust, a certificate).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from hatui.config import NodeConfig, parse_node_config
from hatui.daemon.bootstrap import configured_method, method_section
from hatui.daemon.node import NodeRuntime
from hatui.daemon.postgres import LIBPQ_OPTIONS, make_conninfo
from hatui.launcher import LocalCluster

ROOT = Path(__file__).resolve().parents[2]

NO_REPLICATION_PASSWORD = """\
scope: batman
name: pg0
restapi: {listen: 127.0.0.1:8008}
etcd3: {hosts: 127.0.0.1:2379}
postgresql:
  listen: 127.0.0.1:5432
  data_dir: /tmp/hatui-unit-never-created
  authentication:
    superuser: {username: postgres, password: zalando}
    replication: {username: replicator}
"""

EVERYTHING = """\
scope: batman
name: pg9
restapi: {listen: 127.0.0.1:8009}
etcd3: {hosts: 127.0.0.1:2379}
events: {max: 50, webhooks: {failover: "http://127.0.0.1:9/x"}}
tags: {nofailover: true, failover_priority: 3, replicatefrom: pg1, nosync: true}
bootstrap:
  method: pitr
  pitr: {command: /bin/true, keep_existing_recovery_conf: true}
  post_bootstrap: /bin/echo
  initdb: [data-checksums, {encoding: UTF8}]
  pg_hba: [host all all 127.0.0.1/32 md5]
  dcs: {ttl: 30, loop_wait: 5, postgresql: {use_pg_rewind: true, remove_data_directory_on_rewind_failure: true}}
postgresql:
  listen: 127.0.0.1:5439
  connect_address: 127.0.0.1:5439
  data_dir: /tmp/hatui-unit-never-created-9
  unix_socket_directory: /tmp/hatui-unit-socket-9
  database: app
  remove_data_directory_on_diverged_timelines: true
  pre_promote: /bin/true
  before_stop: /bin/true
  create_replica_methods: [pgbackrest, basebackup]
  pgbackrest: {command: /bin/false, no_leader: true}
  basebackup: [{max-rate: 100M}, checkpoint=fast]
  recovery_conf: {restore_command: /bin/false}
  pg_hba: [local all all trust, host replication replicator 127.0.0.1/32 scram-sha-256]
  pg_ident: [ops alice postgres]
  authentication:
    superuser: {username: admin, password: s3, sslmode: require}
    replication: {username: rep, password: r3, sslmode: verify-ca, sslrootcert: /tmp/root.crt}
    rewind: {username: rewinder, password: w3, channel_binding: disable}
"""


def _runtime(node: NodeConfig) -> NodeRuntime:
    try:
        return NodeRuntime(node)
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL binaries on this machine
        pytest.skip(f"NodeRuntime needs the PostgreSQL binaries: {exc}")


def _libpq(auth: Any) -> dict[str, str]:
    return {k: str(v) for k, v in (auth or {}).items() if k in LIBPQ_OPTIONS and v is not None} \
        if isinstance(auth, dict) else {}


def _from_raw(raw: dict) -> dict[str, Any]:
    """The values NodeRuntime used to read from the raw mapping (its code before the change)."""
    pgc = dict(raw.get("postgresql") or {})
    boot = dict(raw.get("bootstrap") or {})
    auth = pgc.get("authentication") or {}
    su, rep, rew = auth.get("superuser") or {}, auth.get("replication") or {}, auth.get("rewind") or {}
    tags = raw.get("tags") or {}
    prio = tags.get("failover_priority")
    nofailover = bool(tags.get("nofailover")) or (isinstance(prio, int) and prio <= 0)
    methods = pgc.get("create_replica_methods")
    methods = [str(m) for m in methods] if isinstance(methods, list) and methods else ["basebackup"]
    sections = {k: dict(v) for k, v in pgc.items() if isinstance(v, dict)}
    ev = raw.get("events") or {}
    return {
        "superuser": (str(su.get("username", "postgres")), None if su.get("password") is None else str(su["password"])),
        "replication_user": str(rep.get("username", "replicator")),
        "replication_password": None if rep.get("password") is None else str(rep["password"]),
        "rewind_user": (str(rew["username"]), None if rew.get("password") is None else str(rew["password"]))
        if rew.get("username") else None,
        "replication_options": _libpq(rep), "superuser_options": _libpq(su),
        "rewind_options": _libpq(rew) if rew.get("username") else _libpq(su),
        "data_dir": str(pgc.get("data_dir") or f"data/{raw['name']}"),
        "socket_dir": pgc.get("unix_socket_directory") or None,
        "database": str(pgc.get("database") or "postgres"),
        "nofailover": nofailover,
        "failover_priority": prio if isinstance(prio, int) and not isinstance(prio, bool) else (0 if nofailover else 1),
        "can_bootstrap": raw.get("bootstrap") is not None,
        "replicatefrom": tags.get("replicatefrom") if isinstance(tags.get("replicatefrom"), str) else None,
        "bootstrap_dcs": dict(boot.get("dcs") or {}),
        "initdb": list(boot.get("initdb") or []),
        "bootstrap_method": method_section(boot),
        "post_bootstrap": boot.get("post_bootstrap") or boot.get("post_init"),
        "pg_ident": pgc.get("pg_ident") if isinstance(pgc.get("pg_ident"), list) else None,
        "node_pg_hba": pgc.get("pg_hba"), "bootstrap_pg_hba": boot.get("pg_hba"),
        "recovery_conf": pgc.get("recovery_conf"),
        "replica_methods": methods,
        "method_sections": {m: sections.get(m) for m in methods if m != "basebackup"},
        "basebackup": pgc.get("basebackup"),
        "pre_promote": pgc.get("pre_promote"), "before_stop": pgc.get("before_stop"),
        "events_max": int(ev.get("max") or 0) or None, "webhooks": ev.get("webhooks") or {},
        "flags": {k: pgc[k] for k in ("use_pg_rewind", "remove_data_directory_on_rewind_failure",
                                      "remove_data_directory_on_diverged_timelines") if isinstance(pgc.get(k), bool)},
    }


def _from_runtime(rt: NodeRuntime) -> dict[str, Any]:
    node, pgc = rt.node, rt.pg_conf
    s = rt.settings(None)
    methods = rt.replica_methods()
    return {
        "superuser": rt.superuser,
        "replication_user": rt.replication[0], "replication_password": rt.replication[1],
        "rewind_user": rt.rewind_user,
        "replication_options": rt.replication_options, "superuser_options": rt.superuser_options,
        "rewind_options": rt.rewind_options,
        "data_dir": pgc.data_dir or f"data/{node.name}",
        "socket_dir": pgc.unix_socket_directory or None,
        "database": rt.postgres.database,
        "nofailover": s.nofailover, "failover_priority": s.failover_priority, "can_bootstrap": s.can_bootstrap,
        "replicatefrom": s.replicatefrom,
        "bootstrap_dcs": rt.bootstrap_dcs(), "initdb": rt.initdb_options, "bootstrap_method": configured_method(node.bootstrap),
        "post_bootstrap": node.bootstrap.post_bootstrap,
        "pg_ident": pgc.pg_ident,
        "node_pg_hba": pgc.pg_hba, "bootstrap_pg_hba": node.bootstrap.pg_hba or None,
        "recovery_conf": pgc.recovery_conf,
        "replica_methods": methods,
        "method_sections": {m: rt.replica_method_settings.get(m) for m in methods if m != "basebackup"},
        "basebackup": pgc.basebackup,
        "pre_promote": pgc.pre_promote, "before_stop": pgc.before_stop,
        "events_max": node.events.max, "webhooks": node.events.webhooks,
        "flags": {k: getattr(pgc, k) for k in ("use_pg_rewind", "remove_data_directory_on_rewind_failure",
                                               "remove_data_directory_on_diverged_timelines")
                  if getattr(pgc, k) is not None},
    }


def _configs(tmp_path: Path) -> list[tuple[str, dict]]:
    yaml = YAML(typ="safe")
    out = [(p.name, yaml.load(p.read_text())) for p in sorted((ROOT / "hatui" / "demo_configs").glob("*.yml"))]
    cluster = LocalCluster(tmp_path / "c", 2)  # writes nothing until started: only its node files' content
    out += [(f"launcher:{n.name}", cluster.node_config(n)) for n in cluster.nodes]
    out += [("everything", yaml.load(EVERYTHING)), ("no-replication-password", yaml.load(NO_REPLICATION_PASSWORD))]
    return out


def test_every_reader_gets_the_same_values_from_the_typed_model(tmp_path) -> None:
    configs = _configs(tmp_path)
    assert len(configs) >= 6
    for name, raw in configs:
        node = parse_node_config(_dump(raw), source=name)
        assert node.warnings == [] or all(w.severity == "warning" for w in node.warnings)
        want, got = _from_raw(node.raw), _from_runtime(_runtime(node))  # node.raw: what it read before
        assert got == want, f"{name}: " + ", ".join(k for k in want if want[k] != got.get(k))


def test_everything_config_really_sets_every_value(tmp_path) -> None:
    """The rich config is not vacuous: each value differs from what an empty section gives."""
    rich = _from_runtime(_runtime(parse_node_config(EVERYTHING)))
    bare = _from_raw({"name": "pg9", "postgresql": {}, "tags": {}})
    same = sorted(k for k in rich if rich[k] == bare[k])
    assert same == [], same


def test_no_replication_password_means_none_and_no_password_in_the_conninfo() -> None:
    rt = _runtime(parse_node_config(NO_REPLICATION_PASSWORD))
    assert rt.replication == ("replicator", None)
    assert rt.postgres.replication == ("replicator", None)
    standby = rt.standby_config(("127.0.0.1", 5433))
    assert standby.user == "replicator" and standby.password is None
    conninfo = make_conninfo(host=standby.host, port=standby.port, user=standby.user, password=standby.password,
                             sslmode=standby.sslmode, **dict(standby.options))
    assert "password" not in conninfo and "user=replicator" in conninfo and "port=5433" in conninfo
    # The superuser's password is the file's, untouched.
    assert rt.superuser == ("postgres", "zalando")


def _dump(data: dict) -> str:
    y = YAML()
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()
