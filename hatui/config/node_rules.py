"""The validator of the node file (`postgres0.yml`): `validate_node` (every problem, never raises;
bootstrap.dcs is checked by the cluster config's validator) and `validate_node_text` (on YAML text, findings
with line and column)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .addresses import split_host_port
from .defaults import BYTES_MAX, PG_INT_MAX, SECONDS_MAX
from .dynamic_rules import _check_parameters, _walk_check, validate_dynamic
from .issues import Issue, _Checker, _is_int, _kind, _show
from .keys import (
    _BOOL_TAGS,
    _CALLBACKS,
    _LOG_LEVELS,
    _PG_LOCAL_ONLY,
    _PG_SHARED,
    _WATCHDOG_MODES,
    DYNAMIC_KEYS,
    NODE_KEYS,
)
from .yaml_load import _load

_OTHER_DCS = ("consul", "zookeeper", "exhibitor", "kubernetes", "raft")

_RESTAPI_KEYS = (
    "listen",
    "connect_address",
    "authentication",
    "certfile",
    "keyfile",
    "keyfile_password",
    "cafile",
    "ciphers",
    "verify_client",
    "allowlist",
    "allowlist_include_members",
    "auth_get",
    "http_extra_headers",
    "https_extra_headers",
    "request_queue_size",
    "server_tokens",
)
_ETCD_KEYS = (
    "hosts",
    "host",
    "url",
    "proxy",
    "srv",
    "srv_suffix",
    "protocol",
    "username",
    "password",
    "cacert",
    "cert",
    "key",
    "retry_timeout",
)
_BOOTSTRAP_KEYS = ("dcs", "initdb", "users", "pg_hba", "method", "post_bootstrap", "post_init")
_PG_NODE_KEYS = _PG_LOCAL_ONLY | _PG_SHARED | {"replica_method"}


def validate_node(d: Any, *, local: bool = True) -> list[Issue]:
    """Every problem in a node file (bootstrap.dcs is checked with validate_dynamic). Never raises.

    With local=False the file only has to say how to reach the cluster (scope + etcd), as a client-only
    config for the CLI or the console does: name, restapi and postgresql are then optional.
    """
    c = _Checker()
    try:
        _validate_node(c, d, local)
    except RecursionError:
        c.error((), None, "size", "the configuration is nested too deeply")
    return c.issues


def _validate_node(c: _Checker, d: Any, local: bool) -> None:
    if not isinstance(d, Mapping):
        c.error(
            (), d, "type", f"the node file must be a mapping of settings (key: value lines), not {_kind(d)}"
        )
        return
    if not _walk_check(c, d):
        return
    for required in ("scope", "name") if local else ("scope",):
        if d.get(required) is None:
            c.error((required,), None, "required", "is required")
    has_etcd = isinstance(d.get("etcd3"), Mapping) or isinstance(d.get("etcd"), Mapping)
    for key, value in d.items():
        k = (key,)
        if key in ("scope", "name"):
            if value is not None and c.string(k, value) and (not value.strip() or "/" in value):
                c.error(k, value, "syntax", f"{_show(value)} must be a non-empty name without '/'")
        elif key == "namespace":
            if value is not None:
                c.string(k, value)
        elif key == "restapi":
            _check_restapi(c, k, value)
        elif key in ("etcd", "etcd3"):
            _check_etcd(c, k, value)
            if key == "etcd" and isinstance(d.get("etcd3"), Mapping):
                c.warning(k, None, "duplicate", "etcd3: is also present and is used; this section is ignored")
        elif key == "bootstrap":
            _check_bootstrap(c, k, value)
        elif key == "postgresql":
            _check_node_postgresql(c, k, value)
        elif key == "tags":
            _check_tags(c, k, value)
        elif key == "watchdog":
            _check_watchdog(c, k, value)
        elif key == "log":
            _check_log(c, k, value)
        elif key == "fencing":
            _check_section(c, k, value, {"enabled": "bool", "safety_margin": (0, SECONDS_MAX)})
        elif key == "events":  # hatui's event timeline (events.py): cap and webhooks per kind
            events = _check_section(c, k, value, {"max": (10, 100000), "webhooks": None})
            hooks = events.get("webhooks") if events else None
            if hooks is not None and c.mapping((*k, "webhooks"), hooks):
                for kind, url in hooks.items():
                    if c.string((*k, "webhooks", kind), url) and not url.startswith(("http://", "https://")):
                        c.error((*k, "webhooks", kind), url, "syntax", "must be an http:// or https:// URL")
        elif key in ("ctl", "citus"):
            if value is not None:
                c.mapping(k, value)
        elif key in _OTHER_DCS:
            c.warning(k, None, "unsupported", "hatui only talks to etcd (etcd3:); this section is ignored")
        elif isinstance(key, str) and key in DYNAMIC_KEYS:
            c.warning(
                k,
                value,
                "misplaced",
                "is a cluster-wide setting: put it under bootstrap.dcs (first start) or use edit-config; "
                "ignored here",
            )
        else:
            c.unknown(k, value, NODE_KEYS)
    if local and "restapi" not in d:
        c.error(("restapi",), None, "required", "is required (at least restapi.listen)")
    if local and "postgresql" not in d:
        c.error(("postgresql",), None, "required", "is required (at least listen and data_dir)")
    if not has_etcd and "etcd" not in d and "etcd3" not in d:
        c.error(
            ("etcd3",),
            None,
            "required",
            "is required: hatui keeps the cluster state in etcd (etcd3: hosts: ...)",
        )


def _check_section(c: _Checker, k: tuple, value: Any, schema: Mapping[str, Any]) -> Mapping | None:
    """A mapping whose keys have simple types: 'bool', 'str', 'strlist', (min, max) for ints."""
    if value is None:
        return None
    if not c.mapping(k, value):
        return None
    for sub, sv in value.items():
        sk = (*k, sub)
        rule = schema.get(sub) if isinstance(sub, str) else None
        if rule is None and sub not in schema:
            c.unknown(sk, sv, schema)
        elif sv is None or rule is None:
            continue
        elif rule == "bool":
            c.boolean(sk, sv)
        elif rule == "str":
            c.string(sk, sv)
        elif rule == "strlist":
            c.string_list(sk, sv)
        elif isinstance(rule, tuple):
            c.integer(sk, sv, *rule)
    return value


def _check_address(c: _Checker, k: tuple, value: Any, default_port: int | None, need_host: bool) -> None:
    if not c.string(k, value):
        return
    try:
        host, _port = split_host_port(value, default_port)
    except ValueError as exc:
        c.error(k, value, "syntax", f"{_show(value)} {exc}")
        return
    if need_host and host in ("", "*", "0.0.0.0", "::"):
        c.error(k, value, "syntax", f"{_show(value)} must name a host other nodes can reach, not a wildcard")


def _check_credentials(c: _Checker, k: tuple, value: Any) -> None:
    libpq = (
        "sslmode",
        "sslkey",
        "sslcert",
        "sslrootcert",
        "sslpassword",
        "sslcrl",
        "sslcrldir",
        "gssencmode",
    )
    schema: dict[str, Any] = {key: "str" for key in (*libpq, "channel_binding")}
    schema.update(username=None, password=None)
    section = _check_section(c, k, value, schema)
    if section is None:
        return
    for key in ("username", "password"):
        v = section.get(key)
        if v is not None and not isinstance(v, str):
            # YAML reads `password: 1234` as a number; say how to fix it rather than only what is wrong
            hint = f" (quote it: '{v}')" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            c.error((*k, key), v, "type", f"{_show(v)} must be a string, not {_kind(v)}{hint}")


def _check_restapi(c: _Checker, k: tuple, value: Any) -> None:
    schema: dict[str, Any] = {key: "str" for key in _RESTAPI_KEYS}
    schema.update(
        {
            "allowlist": "strlist",
            "allowlist_include_members": "bool",
            "auth_get": "bool",
            "authentication": None,
            "http_extra_headers": None,
            "https_extra_headers": None,
            "request_queue_size": (0, 65535),
            "listen": None,
            "connect_address": None,
            "verify_client": None,
        }
    )
    section = _check_section(c, k, value, schema)
    if section is None:
        if value is None:
            c.error(k, value, "required", "is required (at least restapi.listen)")
        return
    if section.get("listen") is None:
        c.error((*k, "listen"), None, "required", "is required, e.g. 127.0.0.1:8008")
    else:
        _check_address(c, (*k, "listen"), section["listen"], 8008, need_host=False)
    if section.get("connect_address") is not None:
        _check_address(c, (*k, "connect_address"), section["connect_address"], 8008, need_host=True)
    else:
        c.warning(
            (*k, "connect_address"),
            None,
            "required",
            "is not set; the api_url published for this node uses the listen address "
            "(with 127.0.0.1 for a wildcard)",
        )
    if section.get("authentication") is not None:
        _check_credentials(c, (*k, "authentication"), section["authentication"])
    if section.get("verify_client") is not None:
        c.choice((*k, "verify_client"), section["verify_client"], ("none", "optional", "required"))
    for extra in ("http_extra_headers", "https_extra_headers"):
        if section.get(extra) is not None:
            c.mapping((*k, extra), section[extra])


def _check_etcd(c: _Checker, k: tuple, value: Any) -> None:
    schema: dict[str, Any] = {key: "str" for key in _ETCD_KEYS}
    schema.update({"hosts": None, "retry_timeout": (1, SECONDS_MAX)})
    section = _check_section(c, k, value, schema)
    if section is None:
        if value is None:
            c.error(k, value, "required", "is empty: give hosts, host or url")
        return
    hosts = section.get("hosts")
    if hosts is not None:
        if isinstance(hosts, str):
            items = [(i, h.strip()) for i, h in enumerate(hosts.split(","))]
            where: Any = None
        elif isinstance(hosts, (list, tuple)):
            items = list(enumerate(hosts))
            where = True
        else:
            c.error(
                (*k, "hosts"),
                hosts,
                "type",
                f"must be a list of host:port or a comma-separated string, not {_kind(hosts)}",
            )
            items = []
            where = None
        for i, h in items:
            hk = (*k, "hosts", i) if where else (*k, "hosts")
            if isinstance(h, str) and not h:
                c.error(hk, hosts, "syntax", "contains an empty host")
            elif c.string(hk, h):
                try:
                    split_host_port(h, 2379)
                except ValueError as exc:
                    c.error(hk, h, "syntax", f"{_show(h)} {exc}")
    for single in ("host", "url", "proxy"):
        if isinstance(section.get(single), str):
            try:
                split_host_port(section[single], 2379)
            except ValueError as exc:
                c.error((*k, single), section[single], "syntax", f"{_show(section[single])} {exc}")
    if section.get("protocol") is not None:
        c.choice((*k, "protocol"), section["protocol"], ("http", "https"))
    if not any(section.get(x) for x in ("hosts", "host", "url", "proxy", "srv")):
        c.error(k, None, "required", "needs hosts, host or url (e.g. hosts: 127.0.0.1:2379)")


def _check_bootstrap(c: _Checker, k: tuple, value: Any) -> None:
    if value is None:
        return
    if not c.mapping(k, value):
        return
    method = value.get("method")
    for sub, sv in value.items():
        sk = (*k, sub)
        if sv is None:
            continue
        if sub == "dcs":
            c.extend(validate_dynamic(sv), prefix=sk)
        elif sub == "initdb":
            _check_initdb(c, sk, sv)
        elif sub == "users":
            if c.mapping(sk, sv):
                for user, spec in sv.items():
                    if spec is not None and c.mapping((*sk, user), spec):
                        if spec.get("password") is not None:
                            c.string((*sk, user, "password"), spec["password"])
                        if spec.get("options") is not None:
                            c.string_list((*sk, user, "options"), spec["options"])
        elif sub == "pg_hba":
            c.string_list(sk, sv)
        elif sub in ("method", "post_bootstrap", "post_init"):
            c.string(sk, sv)
        elif sub == method:
            c.mapping(sk, sv)  # the custom bootstrap method's own settings
        else:
            c.unknown(sk, sv, _BOOTSTRAP_KEYS)


def _check_initdb(c: _Checker, k: tuple, value: Any) -> None:
    if not isinstance(value, (list, tuple)):
        c.error(k, value, "type", f"must be a list of options (strings or key: value), not {_kind(value)}")
        return
    for i, item in enumerate(value):
        ik = (*k, i)
        if isinstance(item, str):
            continue
        if isinstance(item, Mapping) and len(item) == 1:
            ((opt, ov),) = item.items()
            if not isinstance(ov, (str, int, float)) or isinstance(ov, bool):
                c.error((*ik, opt), ov, "type", f"{_show(ov)} must be a string or a number")
            continue
        c.error(
            ik, item, "type", "each initdb option must be a string (data-checksums) or one key: value pair"
        )


def _check_node_postgresql(c: _Checker, k: tuple, value: Any) -> None:
    if not c.mapping(k, value):
        return
    methods = value.get("create_replica_methods")
    replica_methods = (
        set(methods) if isinstance(methods, list) and all(isinstance(m, str) for m in methods) else set()
    )
    for sub, sv in value.items():
        sk = (*k, sub)
        if sub in replica_methods and sub != "basebackup":
            c.mapping(sk, sv)
            continue
        if sub not in _PG_NODE_KEYS:
            c.unknown(sk, sv, _PG_NODE_KEYS)
            continue
        if sv is None:
            continue
        if sub == "listen":
            _check_address(c, sk, sv, 5432, need_host=False)
        elif sub in ("connect_address", "proxy_address"):
            _check_address(c, sk, sv, 5432, need_host=True)
        elif sub in (
            "data_dir",
            "bin_dir",
            "config_dir",
            "pgpass",
            "database",
            "os_user",
            "bin_name",
            "pre_promote",
            "before_stop",
            "replica_method",
            "custom_conf",
        ):
            if sub == "bin_name":
                c.mapping(sk, sv)
            else:
                c.string(sk, sv)
        elif sub == "authentication":
            if c.mapping(sk, sv):
                for role, creds in sv.items():
                    if role not in ("superuser", "replication", "rewind"):
                        c.unknown((*sk, role), creds, ("superuser", "replication", "rewind"))
                    else:
                        _check_credentials(c, (*sk, role), creds)
        elif sub == "parameters":
            _check_parameters(c, sk, sv, cluster_wide=False)
        elif sub in (
            "use_pg_rewind",
            "use_slots",
            "remove_data_directory_on_rewind_failure",
            "remove_data_directory_on_diverged_timelines",
            "use_unix_socket",
            "use_unix_socket_repl",
        ):
            c.boolean(sk, sv)
        elif sub in ("pg_hba", "pg_ident", "create_replica_methods"):
            c.string_list(sk, sv)
        elif sub == "callbacks":
            if c.mapping(sk, sv):
                for name, script in sv.items():
                    if name not in _CALLBACKS:
                        c.unknown((*sk, name), script, _CALLBACKS)
                    elif script is not None and not isinstance(script, str):
                        c.string_list((*sk, name), script)
        elif sub == "basebackup":
            if isinstance(sv, (list, tuple)):
                _check_initdb(c, sk, sv)
            else:
                c.mapping(sk, sv)
        elif sub == "recovery_conf":
            c.mapping(sk, sv)
        elif sub == "pg_ctl_timeout":
            c.integer(sk, sv, 0, SECONDS_MAX)
    if value.get("listen") is None:
        c.error((*k, "listen"), None, "required", "is required, e.g. 127.0.0.1:5432")
    if value.get("data_dir") is None:
        c.error((*k, "data_dir"), None, "required", "is required")
    if value.get("connect_address") is None:
        c.warning(
            (*k, "connect_address"),
            None,
            "required",
            "is not set; other nodes will be told the listen address (with 127.0.0.1 for a wildcard)",
        )


def _check_tags(c: _Checker, k: tuple, value: Any) -> None:
    if value is None:
        return
    if not c.mapping(k, value):
        return
    for tag, tv in value.items():
        tk = (*k, tag)
        if tag in _BOOL_TAGS:
            if tv is not None:
                c.boolean(tk, tv)
        elif tag in ("failover_priority", "sync_priority"):
            if tv is not None:
                c.integer(tk, tv, 0, PG_INT_MAX)
        elif tag == "replicatefrom":
            if tv is not None:
                c.string(tk, tv)
        elif not isinstance(tag, str):
            c.error(tk, tv, "type", "tag names must be strings")
    priority = value.get("failover_priority")
    nofailover = value.get("nofailover")
    if _is_int(priority) and isinstance(nofailover, bool):
        if nofailover and priority > 0:
            c.warning(
                (*k, "failover_priority"),
                priority,
                "conflict",
                f"{priority} conflicts with nofailover: true; nofailover wins and the node is never promoted",
            )
        elif not nofailover and priority <= 0:
            c.warning(
                (*k, "failover_priority"),
                priority,
                "conflict",
                f"{priority} conflicts with nofailover: false; a priority of 0 means the node is never "
                "promoted",
            )
    sync_priority = value.get("sync_priority")
    nosync = value.get("nosync")
    if _is_int(sync_priority) and nosync is True and sync_priority > 0:
        c.warning(
            (*k, "sync_priority"),
            sync_priority,
            "conflict",
            f"{sync_priority} conflicts with nosync: true; nosync wins",
        )


def _check_watchdog(c: _Checker, k: tuple, value: Any) -> None:
    section = _check_section(
        c, k, value, {"mode": None, "device": "str", "safety_margin": (-1, SECONDS_MAX), "driver": "str"}
    )
    if section is None or section.get("mode") is None:
        return
    mode = section["mode"]
    if isinstance(mode, bool):
        return
    if not isinstance(mode, str) or mode.strip().lower() not in _WATCHDOG_MODES:
        c.error((*k, "mode"), mode, "enum", f"{_show(mode)} must be one of: off, automatic, required")


def _check_log(c: _Checker, k: tuple, value: Any) -> None:
    schema = {
        "dir": "str",
        "level": None,
        "file": "str",
        "file_num": (0, 100000),
        "file_size": (0, BYTES_MAX),
        "format": None,
        "dateformat": "str",
        "loggers": None,
        "traceback_level": None,
        "max_queue_size": (1, SECONDS_MAX),
        "type": "str",
        "mode": None,
        "static_fields": None,
        "deduplicate_heartbeat_logs": "bool",
    }
    section = _check_section(c, k, value, schema)
    if section is None:
        return
    if isinstance(section.get("type"), str):
        c.choice((*k, "type"), section["type"], ("plain", "json"))
    for key in ("level", "traceback_level"):
        if section.get(key) is not None:
            level = section[key]
            if not isinstance(level, str) or level.upper() not in _LOG_LEVELS:
                c.error((*k, key), level, "enum", f"{_show(level)} must be one of: {', '.join(_LOG_LEVELS)}")
    if section.get("loggers") is not None:
        c.mapping((*k, "loggers"), section["loggers"])


# --------------------------------------------------------------------------------------------------------------
# Text entry point (`hatui validate`, load_node_config): parse + validate + positions


def validate_node_text(text: str | bytes, *, local: bool = True) -> tuple[Any | None, list[Issue]]:
    """Parse a YAML document and validate it as a node file; issues carry line/column."""
    doc = _load(text)
    if doc.issues:
        return None, doc.issues
    return doc.data, [doc.locate(i) for i in validate_node(doc.data, local=local)]
