"""The configuration, one part of the model: the node's YAML file (`NodeConfig`, read once at start with
`load_node_config`; a Patroni node file is accepted as it is) and the cluster-wide (dynamic) configuration, one
document in the DCS `config` key (`DynamicConfig`, and `safe_dynamic`, what a daemon runs with whatever was
written, adjusted as Patroni does), with the ONE validator the daemon, the CLI and the editor all call
(`validate_dynamic`, `validate_node`, and their `_text` forms whose findings carry line and column), the
PostgreSQL parameter rules (value syntax, owned GUCs, effective parameters), the timing rule, and YAML reading,
dumping, diffing and editing. It is pure (no I/O but reading the file given to `load_node_config`) and may
import only the standard library, ruamel.yaml and `hatui.pgparams`: never the etcd adapter, the daemon, the
CLI or Textual (tests/unit/test_import_rules.py checks it). This file is the one public surface: callers
import from `hatui.config`; the modules import each other directly, never this file.
"""

# Where things live: issues (findings, ConfigError), defaults (defaults, limits), gucs (parameter value
# syntax, owned GUCs), timing (the timing rule), keys (which settings exist where), yaml_load (YAML with
# positions), addresses, dynamic_rules / node_rules (the validators), dynamic (DynamicConfig, safe_dynamic),
# effective (effective parameters), node_file (NodeConfig), edits (dump, diff, set_path, apply_edits).

from .issues import ConfigError, Issue, errors, warnings_only
from .defaults import (
    BYTES_MAX,
    DEFAULT_DYNAMIC,
    DEFAULT_NAMESPACE,
    PG_INT_MAX,
    SECONDS_MAX,
    STRING_MAX,
    YAML_NODES_MAX,
    default_dynamic,
)
from .gucs import (
    BOOL_GUCS,
    ENUM_GUCS,
    INT_GUCS,
    MEMORY_GUCS,
    OWNED_GUCS,
    REAL_GUCS,
    TIME_GUCS,
    OwnedGuc,
    check_guc_value,
    guc_kind,
    parse_duration,
)
from .keys import DYNAMIC_KEYS, NODE_KEYS, normalize_synchronous_mode
from .yaml_load import parse_value, parse_yaml_document
from .addresses import normalize_namespace, split_host_port
from .dynamic_rules import validate_dynamic, validate_dynamic_text
from .node_rules import validate_node, validate_node_text
from .dynamic import DynamicConfig, safe_dynamic
from .effective import effective_parameters, effective_parameters_report
from .node_file import (
    BootstrapConfig,
    Credentials,
    EtcdConfig,
    FencingConfig,
    LogConfig,
    NodeConfig,
    NodeTags,
    PostgresqlConfig,
    RestApiConfig,
    WatchdogConfig,
    load_node_config,
    parse_node_config,
)
from .edits import apply_edits, config_diff, dump_yaml, set_path

__all__ = [
    "BOOL_GUCS",
    "BYTES_MAX",
    "DEFAULT_DYNAMIC",
    "DEFAULT_NAMESPACE",
    "DYNAMIC_KEYS",
    "ENUM_GUCS",
    "INT_GUCS",
    "MEMORY_GUCS",
    "NODE_KEYS",
    "OWNED_GUCS",
    "PG_INT_MAX",
    "REAL_GUCS",
    "SECONDS_MAX",
    "STRING_MAX",
    "TIME_GUCS",
    "YAML_NODES_MAX",
    "BootstrapConfig",
    "ConfigError",
    "Credentials",
    "DynamicConfig",
    "EtcdConfig",
    "FencingConfig",
    "Issue",
    "LogConfig",
    "NodeConfig",
    "NodeTags",
    "OwnedGuc",
    "PostgresqlConfig",
    "RestApiConfig",
    "WatchdogConfig",
    "apply_edits",
    "check_guc_value",
    "config_diff",
    "default_dynamic",
    "dump_yaml",
    "effective_parameters",
    "effective_parameters_report",
    "errors",
    "guc_kind",
    "load_node_config",
    "normalize_namespace",
    "normalize_synchronous_mode",
    "parse_duration",
    "parse_node_config",
    "parse_value",
    "parse_yaml_document",
    "safe_dynamic",
    "set_path",
    "split_host_port",
    "validate_dynamic",
    "validate_dynamic_text",
    "validate_node",
    "validate_node_text",
    "warnings_only",
]
