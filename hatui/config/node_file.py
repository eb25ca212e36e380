"""The node file model (`postgres0.yml`): `NodeConfig` and its sections (restapi, etcd, bootstrap,
postgresql, tags, watchdog, log, fencing), built from a validated mapping by `parse_node_config` /
`load_node_config`. A Patroni node file is accepted as it is. The only I/O: reading the file given to
`load_node_config`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .addresses import _join_host_port, _reachable, normalize_namespace, split_host_port
from .defaults import DEFAULT_NAMESPACE, SECONDS_MAX
from .dynamic import DynamicConfig, _int_or
from .issues import ConfigError, Issue, _is_int, errors
from .keys import _BOOL_TAGS, _CALLBACKS, _LOG_LEVELS, _WATCHDOG_MODES
from .node_rules import validate_node_text


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # sslmode, sslcert, ... for libpq

    @classmethod
    def from_dict(cls, d: Any) -> Credentials | None:
        if not isinstance(d, Mapping):
            return None
        user, password = d.get("username"), d.get("password")
        return cls(
            username=str(user) if user is not None else None,
            password=str(password) if password is not None else None,
            extra={k: v for k, v in d.items() if k not in ("username", "password")},
        )


@dataclass(frozen=True)
class RestApiConfig:
    listen: str = ""
    connect_address: str | None = None
    authentication: Credentials | None = None
    certfile: str | None = None
    keyfile: str | None = None
    keyfile_password: str | None = None
    cafile: str | None = None
    verify_client: str | None = None
    allowlist: list[str] = field(default_factory=list)
    allowlist_include_members: bool = False
    auth_get: bool = False  # hatui extension: also require authentication for GETs that reveal config

    @property
    def tls(self) -> bool:
        return bool(self.certfile)


@dataclass(frozen=True)
class EtcdConfig:
    hosts: list[str] = field(default_factory=list)  # "host:port"
    protocol: str = "http"
    username: str | None = None
    password: str | None = None
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    section: str = "etcd3"  # which section the settings came from ("etcd3" or the "etcd" alias)

    @classmethod
    def from_dict(cls, d: Any, section: str) -> EtcdConfig:
        d = d if isinstance(d, Mapping) else {}
        protocol = d.get("protocol") if d.get("protocol") in ("http", "https") else None
        raw: list[str] = []
        hosts = d.get("hosts")
        if isinstance(hosts, str):
            raw = [h.strip() for h in hosts.split(",") if h.strip()]
        elif isinstance(hosts, (list, tuple)):
            raw = [h.strip() for h in hosts if isinstance(h, str) and h.strip()]
        for single in ("host", "url", "proxy"):
            if not raw and isinstance(d.get(single), str) and d[single].strip():
                raw = [d[single].strip()]
        out: list[str] = []
        for item in raw:
            if protocol is None and "://" in item:
                protocol = "https" if item.lower().startswith("https://") else "http"
            try:
                out.append(_join_host_port(*split_host_port(item, 2379)))
            except ValueError:
                continue  # reported by validate_node
        return cls(
            hosts=out,
            protocol=protocol or "http",
            username=_str_or_none(d.get("username")),
            password=None if d.get("password") is None else str(d.get("password")),
            cacert=_str_or_none(d.get("cacert")),
            cert=_str_or_none(d.get("cert")),
            key=_str_or_none(d.get("key")),
            section=section,
        )


@dataclass(frozen=True)
class BootstrapConfig:
    dcs: dict[str, Any] = field(default_factory=dict)
    initdb: list[Any] = field(default_factory=list)  # "data-checksums" or {"encoding": "UTF8"}
    users: dict[str, Any] = field(default_factory=dict)
    pg_hba: list[str] = field(default_factory=list)
    method: str | None = None
    post_bootstrap: str | None = None
    method_settings: dict[str, Any] | None = None  # the section named by `method` (its command, ...)
    present: bool = False  # the node file has a bootstrap section: this node may bootstrap a cluster

    def initdb_args(self) -> list[str]:
        """initdb options as command-line arguments: ['--data-checksums', '--encoding=UTF8']."""
        args = []
        for item in self.initdb:
            if isinstance(item, str):
                args.append("--" + item.lstrip("-"))
            elif isinstance(item, Mapping):
                for k, v in item.items():
                    args.append(f"--{str(k).lstrip('-')}={v}")
        return args


@dataclass(frozen=True)
class PostgresqlConfig:
    listen: str = ""
    connect_address: str | None = None
    proxy_address: str | None = None
    data_dir: str = ""
    bin_dir: str | None = None
    config_dir: str | None = None
    pgpass: str | None = None
    authentication: dict[str, Credentials] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    pg_hba: list[str] | None = None
    pg_ident: list[str] | None = None
    use_pg_rewind: bool | None = None  # None: not set here, the cluster configuration decides
    use_slots: bool | None = None
    remove_data_directory_on_rewind_failure: bool | None = None  # None: the cluster configuration decides
    remove_data_directory_on_diverged_timelines: bool | None = None
    database: str = "postgres"
    os_user: str | None = None  # hatui extension: the OS user PostgreSQL runs as when hatui runs as root
    callbacks: dict[str, str] = field(default_factory=dict)
    create_replica_methods: list[str] = field(default_factory=lambda: ["basebackup"])
    basebackup: Any = None
    replica_method_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    pg_ctl_timeout: int | None = None
    unix_socket_directory: str | None = None
    recovery_conf: dict[str, Any] | None = None
    pre_promote: str | None = None
    before_stop: str | None = None

    @property
    def superuser(self) -> Credentials:
        return self.authentication.get("superuser") or Credentials()

    @property
    def replication(self) -> Credentials:
        return self.authentication.get("replication") or Credentials()

    @property
    def rewind(self) -> Credentials:
        """The pg_rewind user; Patroni falls back to the superuser when none is configured."""
        return self.authentication.get("rewind") or self.superuser

    def basebackup_args(self) -> list[str]:
        """pg_basebackup options from `basebackup:` (list of str / single-key dicts, or a mapping)."""
        items: list[Any] = []
        if isinstance(self.basebackup, Mapping):
            items = [{k: v} for k, v in self.basebackup.items()]
        elif isinstance(self.basebackup, (list, tuple)):
            items = list(self.basebackup)
        return BootstrapConfig(initdb=items).initdb_args()


@dataclass(frozen=True)
class NodeTags:
    nofailover: bool = False
    noloadbalance: bool = False
    clonefrom: bool = False
    nosync: bool = False
    nostream: bool = False
    failover_priority: int | None = None
    sync_priority: int | None = None
    replicatefrom: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def can_failover(self) -> bool:
        """False for nofailover or failover_priority <= 0 (spec §2.10)."""
        if self.nofailover:
            return False
        return self.failover_priority is None or self.failover_priority > 0

    def for_member(self) -> dict[str, Any]:
        """The tags published in the member key (spec §1.2 filtering)."""
        raw = self.raw
        out = {}
        for tag, value in raw.items():
            if tag in _BOOL_TAGS and not value:
                keep = (tag == "nofailover" and "failover_priority" in raw) or (
                    tag == "nosync" and "sync_priority" in raw
                )
                if not keep:
                    continue
            out[tag] = value
        return out

    @classmethod
    def from_dict(cls, d: Any) -> NodeTags:
        d = dict(d) if isinstance(d, Mapping) else {}
        known = {*_BOOL_TAGS, "failover_priority", "sync_priority", "replicatefrom"}
        return cls(
            **{t: d.get(t) is True for t in _BOOL_TAGS},
            failover_priority=d["failover_priority"] if _is_int(d.get("failover_priority")) else None,
            sync_priority=d["sync_priority"] if _is_int(d.get("sync_priority")) else None,
            replicatefrom=_str_or_none(d.get("replicatefrom")),
            custom={k: v for k, v in d.items() if k not in known},
            raw=d,
        )


@dataclass(frozen=True)
class WatchdogConfig:
    mode: str = "automatic"  # "off" | "automatic" | "required"
    device: str = "/dev/watchdog"
    safety_margin: int = 5


@dataclass(frozen=True)
class LogConfig:
    dir: str | None = None
    level: str = "INFO"
    file: str | None = None


@dataclass(frozen=True)
class EventsConfig:
    max: int | None = None  # None: events.DEFAULT_CAP
    webhooks: dict[str, Any] = field(default_factory=dict)  # event kind -> URL


@dataclass(frozen=True)
class FencingConfig:
    enabled: bool = True
    safety_margin: int = 5


@dataclass(frozen=True)
class NodeConfig:
    scope: str
    name: str
    namespace: str = DEFAULT_NAMESPACE
    restapi: RestApiConfig = field(default_factory=RestApiConfig)
    etcd: EtcdConfig = field(default_factory=EtcdConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    postgresql: PostgresqlConfig = field(default_factory=PostgresqlConfig)
    tags: NodeTags = field(default_factory=NodeTags)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    log: LogConfig = field(default_factory=LogConfig)
    fencing: FencingConfig = field(default_factory=FencingConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    raw: dict[str, Any] = field(default_factory=dict)
    source: str = "<string>"
    warnings: list[Issue] = field(default_factory=list)

    # -- addresses --
    @property
    def etcd_hosts(self) -> list[str]:
        return list(self.etcd.hosts)

    @property
    def restapi_listen(self) -> tuple[str, int]:
        return split_host_port(self.restapi.listen, 8008)

    @property
    def restapi_connect_address(self) -> str:
        """host:port other nodes and patronictl use; derived from listen when not configured."""
        if self.restapi.connect_address:
            return _join_host_port(*split_host_port(self.restapi.connect_address, 8008))
        host, port = self.restapi_listen
        return _join_host_port(_reachable(host), port)

    @property
    def api_url(self) -> str:
        scheme = "https" if self.restapi.tls else "http"
        return f"{scheme}://{self.restapi_connect_address}/patroni"

    @property
    def pg_listen(self) -> tuple[str, int]:
        """(listen_addresses, port); listen_addresses may be a comma list or '*'."""
        return split_host_port(self.postgresql.listen, 5432)

    @property
    def pg_connect_address(self) -> tuple[str, int]:
        if self.postgresql.connect_address:
            return split_host_port(self.postgresql.connect_address, 5432)
        host, port = self.pg_listen
        return _reachable(host), port

    @property
    def conn_url(self) -> str:
        return f"postgres://{_join_host_port(*self.pg_connect_address)}/{self.postgresql.database}"

    # -- other views --
    @property
    def data_dir(self) -> str:
        return self.postgresql.data_dir

    def tags_for_member(self) -> dict[str, Any]:
        return self.tags.for_member()

    @property
    def bootstrap_dynamic(self) -> DynamicConfig:
        """bootstrap.dcs as a DynamicConfig: what the first node writes into the `config` key."""
        return DynamicConfig.from_dict(self.bootstrap.dcs)

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], source: str = "<string>", warnings: list[Issue] | None = None
    ) -> NodeConfig:
        """Build without validating (best effort, defaults for anything unusable). See parse_node_config."""
        d = d if isinstance(d, Mapping) else {}
        return cls(
            scope=str(d.get("scope") or ""),
            name=str(d.get("name") or ""),
            namespace=normalize_namespace(d.get("namespace")),
            restapi=_restapi_from(d.get("restapi")),
            etcd=EtcdConfig.from_dict(d["etcd3"], "etcd3")
            if isinstance(d.get("etcd3"), Mapping)
            else EtcdConfig.from_dict(d.get("etcd"), "etcd"),
            bootstrap=_bootstrap_from(d.get("bootstrap")),
            postgresql=_postgresql_from(d.get("postgresql")),
            tags=NodeTags.from_dict(d.get("tags")),
            watchdog=_watchdog_from(d.get("watchdog")),
            log=_log_from(d.get("log")),
            fencing=_fencing_from(d.get("fencing")),
            events=_events_from(d.get("events")),
            raw=copy.deepcopy(dict(d)),
            source=source,
            warnings=list(warnings or []),
        )


def _section(d: Any) -> Mapping[str, Any]:
    return d if isinstance(d, Mapping) else {}


def _restapi_from(d: Any) -> RestApiConfig:
    d = _section(d)
    allow = d.get("allowlist")
    return RestApiConfig(
        listen=_str_or_none(d.get("listen")) or "",
        connect_address=_str_or_none(d.get("connect_address")),
        authentication=Credentials.from_dict(d.get("authentication")),
        certfile=_str_or_none(d.get("certfile")),
        keyfile=_str_or_none(d.get("keyfile")),
        keyfile_password=_str_or_none(d.get("keyfile_password")),
        cafile=_str_or_none(d.get("cafile")),
        verify_client=_str_or_none(d.get("verify_client")),
        allowlist=[a for a in allow if isinstance(a, str)] if isinstance(allow, list) else [],
        allowlist_include_members=d.get("allowlist_include_members") is True,
        auth_get=d.get("auth_get") is True,
    )


def _bootstrap_from(d: Any) -> BootstrapConfig:
    present = d is not None
    d = _section(d)
    method = _str_or_none(d.get("method"))
    return BootstrapConfig(
        dcs=dict(d["dcs"]) if isinstance(d.get("dcs"), Mapping) else {},
        initdb=list(d["initdb"]) if isinstance(d.get("initdb"), list) else [],
        users=dict(d["users"]) if isinstance(d.get("users"), Mapping) else {},
        pg_hba=[x for x in d["pg_hba"] if isinstance(x, str)] if isinstance(d.get("pg_hba"), list) else [],
        method=_str_or_none(d.get("method")),
        post_bootstrap=_str_or_none(d.get("post_bootstrap") or d.get("post_init")),
        method_settings=dict(d[method]) if method and isinstance(d.get(method), Mapping) else None,
        present=present,
    )


def _postgresql_from(d: Any) -> PostgresqlConfig:
    d = _section(d)
    auth = _section(d.get("authentication"))
    creds = {
        role: c
        for role in ("superuser", "replication", "rewind")
        if (c := Credentials.from_dict(auth.get(role))) is not None
    }
    methods = d.get("create_replica_methods")
    methods = [m for m in methods if isinstance(m, str)] if isinstance(methods, list) else ["basebackup"]
    callbacks = _section(d.get("callbacks"))

    def bool_or_none(key: str) -> bool | None:
        return d[key] if isinstance(d.get(key), bool) else None

    return PostgresqlConfig(
        listen=_str_or_none(d.get("listen")) or "",
        connect_address=_str_or_none(d.get("connect_address")),
        proxy_address=_str_or_none(d.get("proxy_address")),
        data_dir=_str_or_none(d.get("data_dir")) or "",
        bin_dir=_str_or_none(d.get("bin_dir")),
        config_dir=_str_or_none(d.get("config_dir")),
        pgpass=_str_or_none(d.get("pgpass")),
        authentication=creds,
        parameters=dict(d["parameters"]) if isinstance(d.get("parameters"), Mapping) else {},
        pg_hba=list(d["pg_hba"]) if isinstance(d.get("pg_hba"), list) else None,
        pg_ident=list(d["pg_ident"]) if isinstance(d.get("pg_ident"), list) else None,
        use_pg_rewind=bool_or_none("use_pg_rewind"),
        use_slots=bool_or_none("use_slots"),
        remove_data_directory_on_rewind_failure=bool_or_none("remove_data_directory_on_rewind_failure"),
        remove_data_directory_on_diverged_timelines=bool_or_none("remove_data_directory_on_diverged_timelines"),
        database=_str_or_none(d.get("database")) or "postgres",
        os_user=_str_or_none(d.get("os_user")),
        callbacks={k: v for k, v in callbacks.items() if k in _CALLBACKS and isinstance(v, str)},
        create_replica_methods=methods,
        basebackup=copy.deepcopy(d.get("basebackup")),
        # Every section a replica method could be (a standby cluster's create_replica_methods may
        # name methods the node's own list does not): each method looks up its own.
        replica_method_settings={
            k: dict(v) for k, v in d.items() if isinstance(v, Mapping) and k not in _NOT_METHOD_SECTIONS
        },
        pg_ctl_timeout=d["pg_ctl_timeout"] if _is_int(d.get("pg_ctl_timeout")) else None,
        unix_socket_directory=_str_or_none(d.get("unix_socket_directory")),
        recovery_conf=dict(d["recovery_conf"]) if isinstance(d.get("recovery_conf"), Mapping) else None,
        pre_promote=_str_or_none(d.get("pre_promote")),
        before_stop=_str_or_none(d.get("before_stop")),
    )


# postgresql.* mappings that are not a replica method's settings.
_NOT_METHOD_SECTIONS = frozenset({"authentication", "parameters", "callbacks", "recovery_conf", "basebackup"})


def _watchdog_from(d: Any) -> WatchdogConfig:
    d = _section(d)
    mode = d.get("mode", "automatic")
    if isinstance(mode, bool):  # YAML 1.1 reads `mode: off` as false
        mode = "automatic" if mode else "off"
    mode = _WATCHDOG_MODES.get(str(mode).strip().lower(), "automatic")
    return WatchdogConfig(
        mode=mode,
        device=_str_or_none(d.get("device")) or "/dev/watchdog",
        safety_margin=_int_or(d.get("safety_margin"), 5, SECONDS_MAX),
    )


def _log_from(d: Any) -> LogConfig:
    d = _section(d)
    level = d.get("level")
    return LogConfig(
        dir=_str_or_none(d.get("dir")),
        level=level.upper() if isinstance(level, str) and level.upper() in _LOG_LEVELS else "INFO",
        file=_str_or_none(d.get("file")),
    )


def _events_from(d: Any) -> EventsConfig:
    d = _section(d)
    hooks = d.get("webhooks")
    return EventsConfig(max=d["max"] if _is_int(d.get("max")) else None,
                        webhooks=dict(hooks) if isinstance(hooks, Mapping) else {})


def _fencing_from(d: Any) -> FencingConfig:
    d = _section(d)
    return FencingConfig(
        enabled=d.get("enabled") is not False,
        safety_margin=_int_or(d.get("safety_margin"), 5, SECONDS_MAX),
    )


def parse_node_config(text: str | bytes, source: str = "<string>", *, local: bool = True) -> NodeConfig:
    """Parse and validate a node file. Raises ConfigError (all problems, with lines) when it has errors;
    warnings are kept in NodeConfig.warnings. local=False: a client-only file (see validate_node)."""
    data, issues = validate_node_text(text, local=local)
    if data is None or errors(issues):
        raise ConfigError(source, issues)
    return NodeConfig.from_dict(data, source=source, warnings=issues)


def load_node_config(path: str | Path, *, local: bool = True) -> NodeConfig:
    """Read and validate a node file (Patroni-style YAML). Raises ConfigError, or OSError if unreadable."""
    p = Path(path)
    return parse_node_config(p.read_bytes(), source=str(p), local=local)
