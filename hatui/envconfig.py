"""Node settings from environment variables, mapped as Patroni 4.1 maps them, over the node file.

Containers and service managers configure Patroni with `PATRONI_*` variables (docs/ENVIRONMENT.rst);
hatui reads the same names, and the same names with the `HATUI_` prefix (which win when both are set).
A variable overrides the file; with no file at all, the variables alone make the node's configuration
(as `patroni` without a config file does), and `PATRONI_CONFIGURATION` may hold a whole YAML document.

Mapping (Patroni's): PATRONI_NAME, _NAMESPACE, _SCOPE; PATRONI_RESTAPI_<listen, connect_address,
certfile, keyfile, keyfile_password, cafile, ciphers, verify_client, allowlist, ...>, _USERNAME/_PASSWORD
(restapi.authentication); PATRONI_CTL_*; PATRONI_POSTGRESQL_<listen, connect_address, proxy_address,
config_dir, data_dir, pgpass, bin_dir>; PATRONI_{REPLICATION,SUPERUSER,REWIND}_{USERNAME,PASSWORD,SSLMODE,
...} (postgresql.authentication); PATRONI_LOG_<type, level, format, dateformat, dir, file_num, file_size,
loggers, deduplicate_heartbeat_logs, ...>; PATRONI_ETCD3_<HOSTS, HOST, PROTOCOL, URL, PROXY, CACERT, CERT,
KEY, USERNAME, PASSWORD> (and PATRONI_ETCD_* for the `etcd:` alias). hatui's own additions, with either
prefix: _TAGS (a YAML mapping, e.g. "{nofailover: true}"), _FENCING_ENABLED, _FENCING_SAFETY_MARGIN,
_POSTGRESQL_OS_USER, _WATCHDOG_MODE, _WATCHDOG_DEVICE.

Like Patroni, the variables that were used are removed from this process's environment once read, so
PostgreSQL, pg_basebackup and every other child never inherit the passwords they may hold.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from . import config as cfg
from .config.yaml_load import _load

PREFIXES = ("PATRONI_", "HATUI_")  # later wins

_SECTIONS: dict[str, tuple[str, ...]] = {
    "restapi": ("listen", "connect_address", "certfile", "keyfile", "keyfile_password", "cafile", "ciphers",
                "verify_client", "http_extra_headers", "https_extra_headers", "allowlist",
                "allowlist_include_members", "request_queue_size", "server_tokens"),
    "ctl": ("insecure", "cacert", "certfile", "keyfile", "keyfile_password"),
    "postgresql": ("listen", "connect_address", "proxy_address", "config_dir", "data_dir", "pgpass", "bin_dir",
                   "os_user"),
    "log": ("type", "level", "traceback_level", "format", "dateformat", "static_fields", "max_queue_size",
            "dir", "mode", "file_size", "file_num", "loggers", "deduplicate_heartbeat_logs"),
    "fencing": ("enabled", "safety_margin"),
    "watchdog": ("mode", "device", "safety_margin"),
}
_BOOLS = {("restapi", "allowlist_include_members"), ("ctl", "insecure"), ("log", "deduplicate_heartbeat_logs"),
          ("fencing", "enabled")}
_INTS = {("restapi", "request_queue_size"), ("log", "max_queue_size"), ("log", "file_size"), ("log", "file_num"),
         ("log", "mode"), ("fencing", "safety_margin"), ("watchdog", "safety_margin")}
_LISTS = {("restapi", "allowlist")}
_DICTS = {("restapi", "http_extra_headers"), ("restapi", "https_extra_headers"), ("log", "static_fields"),
          ("log", "loggers")}
# Patroni's AUTH_ALLOWED_PARAMETERS: what a postgresql.authentication entry may carry.
_AUTH_PARAMS = ("username", "password", "sslmode", "sslcert", "sslkey", "sslpassword", "sslrootcert", "sslcrl",
                "sslcrldir", "gssencmode", "channel_binding", "sslnegotiation")
_DCS_SUFFIXES = ("HOSTS", "HOST", "PORT", "PROTOCOL", "URL", "PROXY", "CACERT", "CERT", "KEY", "USE_PROXIES",
                 "SRV", "SRV_SUFFIX", "USERNAME", "PASSWORD")
# Patroni's older spellings of the log variables (still read by Patroni 4.1).
_OLD_LOG_NAMES = {"LOGLEVEL": "LOG_LEVEL", "LOGFORMAT": "LOG_FORMAT", "LOG_DATEFMT": "LOG_DATEFORMAT"}

# The overlay read when the daemon started, kept for SIGHUP / POST /reload: the variables were removed
# from the environment by then, and they cannot change under a running process anyway.
_remembered: tuple[dict[str, Any], dict[tuple, str]] | None = None


def _bool(value: str) -> bool | None:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on", "y", "t"):
        return True
    if text in ("0", "false", "no", "off", "n", "f"):
        return False
    return None


def _int(value: str) -> int | str:
    text = value.strip()
    try:
        return int(text, 8) if text.startswith("0") and len(text) > 1 and text.isdigit() else int(text)
    except ValueError:
        return value  # kept as text: the validator names the variable and says what it needs


def _yaml(value: str, kind: type) -> Any:
    """A list or mapping written in YAML flow style; Patroni adds the brackets when they are missing."""
    text = value.strip()
    if kind is list and not (text.startswith("-") or "[" in text):
        text = f"[{text}]"
    elif kind is dict and not text.startswith("{"):
        text = f"{{{text}}}"
    parsed = cfg.parse_value(text)
    return parsed if isinstance(parsed, kind) else value


def environment_config(environ: MutableMapping[str, str] | None = None, *,
                       pop: bool = False) -> tuple[dict[str, Any], dict[tuple, str]]:
    """The node settings the environment gives, as a node-file mapping, and for each setting's key
    path the variable it came from (so an error names the variable). pop=True removes the variables
    that were used from `environ`."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    origin: dict[tuple, str] = {}
    used: set[str] = set()

    def get(name: str) -> tuple[str, str] | None:
        """The value of PATRONI_<name> or HATUI_<name> (HATUI_ wins); both are marked used."""
        found = None
        for prefix in PREFIXES:
            var = prefix + name
            if env.get(var):
                found = (var, env[var])
                used.add(var)
        return found

    def put(keys: tuple, value: Any, var: str) -> None:
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
        origin[keys] = var

    for prefix in PREFIXES:
        for old, new in _OLD_LOG_NAMES.items():
            if env.get(prefix + old) and not env.get(prefix + new):
                env_value = env[prefix + old]
                used.add(prefix + old)
                if not any(env.get(p + new) for p in PREFIXES):
                    put(("log", new[4:].lower()), env_value, prefix + old)

    for key in ("name", "namespace", "scope"):
        if found := get(key.upper()):
            put((key,), found[1], found[0])
    for section, params in _SECTIONS.items():
        for param in params:
            found = get(f"{section}_{param}".upper())
            if not found:
                continue
            var, value = found
            parsed: Any = value
            if (section, param) in _BOOLS:
                b = _bool(value)
                parsed = value if b is None else b
            elif (section, param) in _INTS:
                parsed = _int(value)
            elif (section, param) in _LISTS:
                parsed = _yaml(value, list)
            elif (section, param) in _DICTS:
                parsed = _yaml(value, dict)
            elif (section, param) == ("log", "format") and not re.search(r"%\(\w+\)", value):
                parsed = _yaml(value, list)
            put((section, param), parsed, var)
    for section in ("restapi", "ctl"):
        for param in ("username", "password"):
            if found := get(f"{section}_{param}".upper()):
                put((section, "authentication", param), found[1], found[0])
    for user in ("replication", "superuser", "rewind"):
        for param in _AUTH_PARAMS:
            if found := get(f"{user}_{param}".upper()):
                put(("postgresql", "authentication", user, param), found[1], found[0])
    for dcs in ("etcd3", "etcd"):
        for suffix in _DCS_SUFFIXES:
            found = get(f"{dcs}_{suffix}".upper())
            if not found:
                continue
            var, value = found
            parsed = value
            if suffix == "HOSTS":
                parsed = _yaml(value, list)
                if isinstance(parsed, list):
                    parsed = [str(h) for h in parsed]
            elif suffix == "PORT":
                parsed = _int(value)
            elif suffix == "USE_PROXIES":
                b = _bool(value)
                parsed = value if b is None else b
            put((dcs, suffix.lower()), parsed, var)
    if found := get("TAGS"):
        put(("tags",), _yaml(found[1], dict), found[0])
    if pop:
        for var in used:
            env.pop(var, None)
    return out, origin


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Patroni's patch_config: overlay's values replace base's, mappings merged key by key."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _annotate(issue: cfg.Issue, origin: Mapping[tuple, str]) -> cfg.Issue:
    """An issue in a setting that a variable gave names that variable."""
    keys = tuple(issue.keys)
    for n in range(len(keys), 0, -1):
        var = origin.get(keys[:n])
        if var:
            return dataclasses.replace(issue, message=f"{issue.message} (from ${var})", line=None, column=None)
    return issue


def load_node(path: str | os.PathLike | None, environ: MutableMapping[str, str] | None = None, *,
              pop: bool = False, remember: bool = False, local: bool = True) -> cfg.NodeConfig:
    """The node's configuration: the file (if any) with the environment's settings over it, validated.

    Raises config.ConfigError (every problem; a variable's named) or OSError for an unreadable file.
    pop: remove the variables used from the environment (the daemon does, as Patroni does).
    remember: keep the overlay for reload_node() (SIGHUP re-reads the file, not the environment)."""
    global _remembered
    env = os.environ if environ is None else environ
    overlay, origin = environment_config(env, pop=pop)
    whole = env.get("PATRONI_CONFIGURATION") or env.get("HATUI_CONFIGURATION")
    if pop:
        env.pop("PATRONI_CONFIGURATION", None)
        env.pop("HATUI_CONFIGURATION", None)
    if remember:
        _remembered = (overlay, origin)
    if path is not None:
        return _load_with(Path(path).read_bytes(), str(path), overlay, origin, local)
    if whole:
        # Patroni: the whole configuration from one variable; the other variables are not read then.
        return _load_with(whole.encode(), "$PATRONI_CONFIGURATION", {}, {}, local)
    return _load_with(b"", "<environment>", overlay, origin, local)


def reload_node(path: str) -> cfg.NodeConfig:
    """The node file again, with the environment's settings the daemon started with over it."""
    overlay, origin = _remembered or ({}, {})
    return _load_with(Path(path).read_bytes(), str(path), overlay, origin, True)


def _load_with(text: bytes, source: str, overlay: Mapping[str, Any], origin: Mapping[tuple, str],
               local: bool) -> cfg.NodeConfig:
    data, issues, _doc = check(text, overlay, origin, local)
    if data is None or cfg.errors(issues):
        raise cfg.ConfigError(source, issues)
    return cfg.NodeConfig.from_dict(data, source=source, warnings=issues)


def check(text: bytes, overlay: Mapping[str, Any], origin: Mapping[tuple, str],
          local: bool = True) -> tuple[dict[str, Any] | None, list[cfg.Issue], Any]:
    """(merged settings or None, every issue, the parsed file) for a node file's text under `overlay`.
    An issue in a file setting gets its line; one in a variable's setting names the variable."""
    doc = _load(text)
    if doc.issues:
        return None, doc.issues, doc
    if not isinstance(doc.data, Mapping):
        return None, [doc.locate(i) for i in cfg.validate_node(doc.data, local=local)], doc
    data = merge(doc.data, overlay)
    issues = [_annotate(i, origin) if _from_env(i, origin) else doc.locate(i)
              for i in cfg.validate_node(data, local=local)]
    if not text.strip() and not overlay:
        issues.insert(0, cfg.Issue("", None, "required", "error",
                                   "no node file and no PATRONI_* / HATUI_* variables: nothing to run"))
    return data, issues, doc


def _from_env(issue: cfg.Issue, origin: Mapping[tuple, str]) -> bool:
    keys = tuple(issue.keys)
    return any(keys[:n] in origin for n in range(len(keys), 0, -1))

