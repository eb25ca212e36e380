"""Where the CLI finds etcd, the namespace, the default cluster and REST credentials.

Sources, strongest first (the same order patronictl uses, plus hatui's own flags and variables):

* etcd endpoints: `--etcd` (repeatable), `HATUI_ETCD`, `-d/--dcs-url` (or `DCS_URL`),
  `PATRONI_ETCD3_HOSTS`, the config file's `etcd3:` (or `etcd:`) section, else 127.0.0.1:2379;
* namespace: `--namespace`, the path of `--dcs-url`, `PATRONI_NAMESPACE`, the file's `namespace`,
  else /service;
* default cluster: `PATRONI_SCOPE`, the file's `scope`;
* REST API auth: `ctl.authentication`, else `restapi.authentication`; TLS from `ctl.cacert/certfile/
  keyfile` else `restapi.cafile`; `-k/--insecure` or `ctl.insecure` skips certificate checks.

The config file is `-c`, else `HATUI_CONFIG_FILE`, else `PATRONICTL_CONFIG_FILE`, else
`~/.config/patroni/patronictl.yaml` when it exists. A Patroni node config (postgres0.yml) works too.
The YAML parser is imported only when there is a file to read, so a bare `hatui list` stays fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

DEFAULT_ETCD = "127.0.0.1:2379"
DEFAULT_NAMESPACE = "/service"


class ConfigError(Exception):
    """The CLI's configuration cannot be used; the message says which file or flag and why."""


@dataclass
class CtlConfig:
    etcd_hosts: list[str]
    namespace: str = DEFAULT_NAMESPACE
    scope: str | None = None
    etcd_protocol: str | None = None
    etcd_username: str | None = None
    etcd_password: str | None = None
    etcd_cacert: str | None = None
    etcd_cert: str | None = None
    etcd_key: str | None = None
    rest_auth: tuple[str, str] | None = None
    rest_cafile: str | None = None
    rest_certfile: str | None = None
    rest_keyfile: str | None = None
    insecure: bool = False
    config_file: str | None = None
    raw: dict = field(default_factory=dict)
    # Where etcd_hosts came from: "--etcd", "HATUI_ETCD", "--dcs-url", "PATRONI_ETCD3_HOSTS",
    # "config file" or "default" (nothing configured: 127.0.0.1:2379).
    etcd_source: str = "default"

    @property
    def etcd_text(self) -> str:
        return ", ".join(self.etcd_hosts)


def default_config_path() -> str:
    # click.get_app_dir("patroni") on Linux; computed by hand so this module does not need click.
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "patroni", "patronictl.yaml")


def parse_dcs_url(url: str) -> tuple[list[str], str | None]:
    """`etcd3://host:2379/namespace` -> (["host:2379"], "/namespace"); scheme and namespace optional."""
    text = url.strip()
    if "//" not in text:
        text = "//" + text
    parts = urlsplit(text)
    if parts.scheme and parts.scheme not in ("etcd3", "etcd", "http", "https"):
        raise ConfigError(f"Unknown dcs scheme: {parts.scheme} (hatui supports etcd3://)")
    try:
        port = parts.port or 2379
    except ValueError as exc:
        raise ConfigError(f"Invalid --dcs-url {url!r}: {exc}") from exc
    hosts = [f"{parts.hostname or 'localhost'}:{port}"]
    if parts.scheme == "https":
        hosts = [f"https://{hosts[0]}"]
    path = parts.path.strip()
    namespace = path if path and path != "/" else None
    return hosts, namespace


def load_yaml_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fd:
            text = fd.read()
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror or exc}") from exc
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"Config file {path} is not valid YAML: {first}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must contain a mapping at the top level")
    return data


def _split_hosts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [h.strip() for h in value.split(",") if h.strip()]
    if isinstance(value, (list, tuple)):
        return [str(h).strip() for h in value if str(h).strip()]
    return []


def _etcd_section(raw: Mapping[str, Any]) -> dict:
    for name in ("etcd3", "etcd"):
        section = raw.get(name)
        if isinstance(section, dict):
            return section
    return {}


def _hosts_from_section(section: Mapping[str, Any]) -> list[str]:
    hosts = _split_hosts(section.get("hosts"))
    if not hosts and section.get("host"):
        hosts = _split_hosts(section.get("host"))
    if not hosts and section.get("url"):
        hosts = _split_hosts(section.get("url"))
    protocol = section.get("protocol")
    if protocol == "https":
        hosts = [h if "://" in h else f"https://{h}" for h in hosts]
    return hosts


def _auth(section: Any) -> tuple[str, str] | None:
    if isinstance(section, dict) and section.get("username"):
        return str(section["username"]), str(section.get("password") or "")
    return None


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def choose_config_file(explicit: str | None, environ: Mapping[str, str]) -> tuple[str | None, bool]:
    """(path, must_exist). An explicitly named file must exist; the default one is optional."""
    if explicit:
        return explicit, True
    for var in ("HATUI_CONFIG_FILE", "PATRONICTL_CONFIG_FILE"):
        if environ.get(var):
            return environ[var], True
    return default_config_path(), False


def discover(
    config_file: str | None = None,
    etcd: tuple[str, ...] | list[str] = (),
    dcs_url: str | None = None,
    namespace: str | None = None,
    insecure: bool = False,
    environ: Mapping[str, str] | None = None,
) -> CtlConfig:
    env = os.environ if environ is None else environ
    path, must_exist = choose_config_file(config_file, env)
    raw: dict = {}
    loaded: str | None = None
    if path and os.path.exists(path):
        if not os.access(path, os.R_OK):
            raise ConfigError(f"Provided config file {path} not existing or no read rights. "
                              "Check the -c/--config-file parameter")
        raw = load_yaml_file(path)
        loaded = path
    elif must_exist:
        raise ConfigError(f"Provided config file {path} not existing or no read rights. "
                          "Check the -c/--config-file parameter")

    section = _etcd_section(raw)
    url_hosts, url_namespace = parse_dcs_url(dcs_url) if dcs_url else ([], None)
    candidates = [
        ("--etcd", [h for item in etcd for h in _split_hosts(item)]),
        ("HATUI_ETCD", _split_hosts(env.get("HATUI_ETCD", ""))),
        ("--dcs-url", url_hosts),
        ("PATRONI_ETCD3_HOSTS", _split_hosts(env.get("PATRONI_ETCD3_HOSTS", ""))),
        ("config file", _hosts_from_section(section)),
        ("default", [DEFAULT_ETCD]),
    ]
    source, hosts = next((name, found) for name, found in candidates if found)
    ns = namespace or url_namespace or env.get("PATRONI_NAMESPACE") or _str_or_none(raw.get("namespace")) \
        or DEFAULT_NAMESPACE
    scope = env.get("PATRONI_SCOPE") or _str_or_none(raw.get("scope"))

    ctl = raw.get("ctl") if isinstance(raw.get("ctl"), dict) else {}
    restapi = raw.get("restapi") if isinstance(raw.get("restapi"), dict) else {}
    rest_auth = _auth(ctl.get("authentication")) or _auth(restapi.get("authentication"))
    return CtlConfig(
        etcd_hosts=hosts,
        namespace=ns,
        scope=scope,
        etcd_protocol=_str_or_none(section.get("protocol")),
        etcd_username=_str_or_none(section.get("username")),
        etcd_password=_str_or_none(section.get("password")),
        etcd_cacert=_str_or_none(section.get("cacert")),
        etcd_cert=_str_or_none(section.get("cert")),
        etcd_key=_str_or_none(section.get("key")),
        rest_auth=rest_auth,
        rest_cafile=_str_or_none(ctl.get("cacert")) or _str_or_none(restapi.get("cafile")),
        rest_certfile=_str_or_none(ctl.get("certfile")),
        rest_keyfile=_str_or_none(ctl.get("keyfile")),
        insecure=bool(insecure or ctl.get("insecure")),
        config_file=loaded,
        raw=raw,
        etcd_source=source,
    )
