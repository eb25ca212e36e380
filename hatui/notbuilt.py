"""Settings hatui accepts (Patroni's node files and cluster configs pass validation) but does not act on.

Nothing is ignored silently: the daemon logs one warning per setting found here when it starts
(and when the cluster configuration in etcd changes), and `hatui validate node.yml` prints the
same lines. The README lists this table.

`NOT_ACTED_ON` is the one list to edit: when a feature lands, delete its entry (and its README
line). Each entry names where the key lives, when its value matters (an `initdb` bootstrap
method is what hatui does anyway, so only another method is reported) and what hatui does instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import Issue


def _set(value: Any) -> bool:
    return value is not None and value != [] and value != {} and value != ""


@dataclass(frozen=True)
class NotActedOn:
    path: tuple[str, ...]  # keys from the document's top; "*" matches any one key
    instead: str  # what hatui does instead (the end of the warning line)
    where: str = "node"  # "node": the node file; "dynamic": the cluster configuration (also bootstrap.dcs)
    applies: Callable[[Any], bool] = _set  # does this value ask for something hatui does not do?


NOT_ACTED_ON: tuple[NotActedOn, ...] = (
    # Other DCSs: hatui keeps its state in etcd only.
    *(NotActedOn((dcs,), "hatui keeps its state in etcd only (etcd3:); this section is ignored")
      for dcs in ("consul", "zookeeper", "exhibitor", "kubernetes", "raft")),
    NotActedOn(("citus",), "Citus (MPP) clusters are not managed: no worker registration, no coordinator "
                           "handling; the cluster runs as a plain PostgreSQL cluster"),
    NotActedOn(("primary_stop_timeout",), "a primary stop waits for PostgreSQL however long it takes",
               where="dynamic", applies=lambda v: _set(v) and v != 0),
    NotActedOn(("master_stop_timeout",), "a primary stop waits for PostgreSQL however long it takes",
               where="dynamic", applies=lambda v: _set(v) and v != 0),
    NotActedOn(("primary_race_backoff",), "no back-off between leader races", where="dynamic"),
    NotActedOn(("postgresql", "use_slots"), "replication slots are switched on or off for the whole cluster only "
                                            "(bootstrap.dcs or edit-config), as in Patroni"),
    # postgresql.* details of file layout and connections.
    NotActedOn(("postgresql", "config_dir"), "configuration files are written in the data directory"),
    NotActedOn(("postgresql", "custom_conf"), "hatui writes postgresql.conf and includes initdb's file only"),
    NotActedOn(("postgresql", "pgpass"), "passwords are passed to the tools in their environment, no pgpass "
                                         "file is written"),
    NotActedOn(("postgresql", "bin_name"), "the PostgreSQL programs are called by their usual names"),
    NotActedOn(("postgresql", "use_unix_socket"), "hatui always connects to its own server over its socket"),
    NotActedOn(("postgresql", "use_unix_socket_repl"), "replication connections use TCP"),
    NotActedOn(("postgresql", "proxy_address"), "no proxy_url is published in the member key"),
    NotActedOn(("postgresql", "pg_ctl_timeout"), "pg_ctl waits with hatui's own timeouts"),
    # Logging beyond dir and level.
    *(NotActedOn(("log", key), "the daemon logs one line per event to stderr or log.dir/<name>.log")
      for key in ("file_num", "file_size", "format", "dateformat", "loggers", "traceback_level", "max_queue_size",
                  "type")),
)


def _lookup(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, Mapping) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _issue(keys: tuple, value: Any, instead: str) -> Issue:
    path = ".".join(str(k) for k in keys)
    detail = f"accepted but not acted on: {instead}"
    return Issue(path, value, "not_acted_on", "warning", f"{path}: {detail}", detail=detail, keys=keys)


def dynamic_findings(dynamic: Any, prefix: tuple[str, ...] = ()) -> list[Issue]:
    """Warnings for a cluster configuration (the `config` key, or bootstrap.dcs with its prefix)."""
    out = []
    for entry in NOT_ACTED_ON:
        if entry.where != "dynamic":
            continue
        value = _lookup(dynamic, entry.path)
        if entry.applies(value):
            out.append(_issue(prefix + entry.path, value, entry.instead))
    return out


def node_findings(node: Any) -> list[Issue]:
    """Warnings for a node file, its bootstrap.dcs included."""
    out = []
    for entry in NOT_ACTED_ON:
        if entry.where != "node":
            continue
        value = _lookup(node, entry.path)
        if entry.applies(value):
            out.append(_issue(entry.path, value, entry.instead))
    out += dynamic_findings(_lookup(node, ("bootstrap", "dcs")), ("bootstrap", "dcs"))
    return out


def merge(validator: Iterable[Issue], ours: Iterable[Issue]) -> list[Issue]:
    """The validator's issues plus ours, one line per key (the validator already warns on other DCSs)."""
    issues = list(validator)
    seen = {i.path for i in issues if i.severity == "warning"}
    return issues + [i for i in ours if i.path not in seen]


def readme_lines() -> list[str]:
    """The table for the README (kept in step by tests/unit/test_notbuilt.py)."""
    rows = []
    for entry in NOT_ACTED_ON:
        where = "cluster config" if entry.where == "dynamic" else "node file"
        rows.append(f"| `{'.'.join(entry.path)}` | {where} | {entry.instead} |")
    return rows
