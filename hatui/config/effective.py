"""The GUCs a node runs PostgreSQL with: the cluster's and the node file's parameters merged in Patroni's
precedence, owned GUCs from the cluster config only, with a warning for each value left out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .dynamic import DynamicConfig
from .gucs import OWNED_GUCS, _guc_shown, _guc_text, check_guc_value
from .issues import _is_int

if TYPE_CHECKING:
    from .node_file import NodeConfig


def effective_parameters(
    dynamic: DynamicConfig | Mapping[str, Any] | None,
    node: NodeConfig | None = None,
    server_version: int = 150000,
) -> dict[str, str]:
    """The GUCs a node runs PostgreSQL with (see effective_parameters_report)."""
    return effective_parameters_report(dynamic, node, server_version)[0]


def effective_parameters_report(
    dynamic: DynamicConfig | Mapping[str, Any] | None,
    node: NodeConfig | None = None,
    server_version: int = 150000,
) -> tuple[dict[str, str], list[str]]:
    """(GUCs as text, warnings). Precedence as in Patroni (spec §3.1):

    ordinary GUCs: node file postgresql.parameters over cluster postgresql.parameters;
    owned GUCs: cluster config only, validated, default when missing or invalid;
    hot_standby and wal_log_hints always on; listen_addresses/port from postgresql.listen; cluster_name = scope.
    """
    dyn = dynamic if isinstance(dynamic, DynamicConfig) else DynamicConfig.from_dict(dynamic or {})
    warnings: list[str] = []
    cluster = {k: v for k, v in dyn.parameters.items() if isinstance(k, str)}
    local = dict(node.postgresql.parameters) if node is not None else {}
    result: dict[str, str] = {}
    for origin, source in (("cluster", cluster), ("node", local)):
        for name, value in source.items():
            if not isinstance(name, str) or value is None:
                continue
            if name.lower() in OWNED_GUCS:
                if origin == "node":
                    warnings.append(
                        f"postgresql parameter {name} in the node file is ignored: it is set by the "
                        "cluster configuration"
                    )
                continue
            problem = check_guc_value(name, value)
            if problem:
                warnings.append(
                    f"postgresql parameter {name} from the {origin} configuration is left out: {problem}"
                )
                continue
            result.pop(name, None)  # keep the later spelling when only the case differs
            result[name] = _guc_text(value)
    by_lower = {k.lower(): v for k, v in cluster.items()}
    for guc in OWNED_GUCS.values():
        if guc.kind == "node" or not guc.applies_to(server_version):
            continue
        raw = by_lower.get(guc.name)
        value = guc.default
        if raw is not None:
            problem = guc.check(raw)
            if problem is None:
                value = _guc_text(raw)
            else:
                warnings.append(
                    f"postgresql parameter {guc.name}={_guc_shown(raw)} failed validation, "
                    f"defaulting to {guc.default}"
                )
        result[guc.name] = value  # type: ignore[assignment]
    if server_version >= 130000 and "wal_keep_size" not in by_lower:
        segments = by_lower.get("wal_keep_segments")
        if _is_int(segments) and segments > 0:  # an old-style setting still means something on PG 13+
            result["wal_keep_size"] = f"{segments * 16}MB"
    if result.get("wal_level") == "hot_standby":
        result["wal_level"] = "replica"  # the same level; PostgreSQL 9.6+ calls it replica
    result["hot_standby"] = "on"
    result["wal_log_hints"] = "on"
    if node is not None:
        try:
            host, port = node.pg_listen
            result["listen_addresses"] = host or "*"
            result["port"] = str(port)
        except ValueError as exc:
            warnings.append(f"postgresql.listen cannot be used: {exc}")
        result["cluster_name"] = node.scope
    return result, warnings
