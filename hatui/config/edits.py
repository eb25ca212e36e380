"""Showing and editing a configuration: `dump_yaml` (block style, sorted keys, as patronictl show-config),
`config_diff`, and edit-config's `set_path` / `apply_edits`."""

from __future__ import annotations

import copy
import difflib
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML

from .yaml_load import _load, parse_value


def _yaml_dumper() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.width = 2**31 - 1  # never fold long lines (pg_hba entries, commands)
    y.allow_unicode = True
    # YAML 1.1 quoting, so 'on'/'yes' stay strings for Patroni's PyYAML readers; the directive is dropped below.
    y.version = (1, 1)
    return y


def _sorted_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: (not isinstance(kv[0], str), str(kv[0])))
        return {k: _sorted_plain(v) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [_sorted_plain(v) for v in value]
    return value


def dump_yaml(d: Any) -> str:
    """Block-style YAML with sorted keys, like patronictl show-config."""
    data = _sorted_plain(d)
    text = _dump(data, allow_unicode=True)
    if not text.isascii():
        # The emitter mangles a few Unicode line breaks (U+0085, U+2028) when it writes them raw; if the text
        # does not read back as the same data, write non-ASCII characters as escapes instead.
        back = _load(text)
        if back.issues or back.data != (data if data is not None else {}):
            text = _dump(data, allow_unicode=False)
    return text


def _dump(data: Any, allow_unicode: bool) -> str:
    buf = io.StringIO()
    dumper = _yaml_dumper()
    dumper.allow_unicode = allow_unicode
    dumper.dump(data, buf)
    text = buf.getvalue()
    text = text.removeprefix("%YAML 1.1\n")
    if text.startswith(("--- ", "---\n")):  # a scalar or flow collection follows '--- ' on the same line
        text = text[4:]
    return text


def config_diff(old: Any, new: Any) -> str:
    """Unified diff of the two YAML dumps, headers '--- '/'+++ ' with empty names (as patronictl prints it).
    Empty string when there is no difference."""

    def lines(text: str) -> list[str]:
        return [line + "\n" for line in text.rstrip("\n").split("\n")]

    diff = difflib.unified_diff(lines(dump_yaml(old)), lines(dump_yaml(new)))
    return "".join(diff)


_PARAMETERS_PREFIX = ("postgresql", "parameters")


def set_path(
    d: Mapping[str, Any] | None, path: str | Sequence[str], value: Any, *, parse: bool = True
) -> dict:
    """A copy of `d` with `path` (dotted) set to `value`, as edit-config --set does.

    A string value is read as YAML when `parse` (so '60' is 60, 'true' is true, 'null' removes the key).
    Under postgresql.parameters the rest of the path is one GUC name, dots included
    (`postgresql.parameters.auto_explain.log_min_duration`). Mappings left empty by a removal are dropped.
    """
    keys = path.split(".") if isinstance(path, str) else [str(p) for p in path]
    if not keys or any(not k for k in keys):
        raise ValueError(f"invalid setting path {path!r}")
    if tuple(keys[:2]) == _PARAMETERS_PREFIX and len(keys) > 3:
        keys = [*_PARAMETERS_PREFIX, ".".join(keys[2:])]
    if parse and isinstance(value, str):
        value = parse_value(value)
    out = copy.deepcopy(dict(d)) if isinstance(d, Mapping) else {}
    _set_in(out, keys, value)
    return out


def _set_in(node: dict, keys: list[str], value: Any) -> None:
    key = keys[0]
    if len(keys) == 1:
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
        return
    child = node.get(key)
    if not isinstance(child, dict):
        if value is None:
            return  # nothing to remove
        child = node[key] = {}
    _set_in(child, keys[1:], value)
    if not child:
        del node[key]


def apply_edits(d: Mapping[str, Any] | None, sets: Iterable[str] = (), pgs: Iterable[str] = ()) -> dict:
    """edit-config's --set k.path=VALUE and --pg GUC=VALUE, applied in order. ValueError for 'no = sign'."""
    out = copy.deepcopy(dict(d)) if isinstance(d, Mapping) else {}
    for prefix, items in (("", sets), ("postgresql.parameters.", pgs)):
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"invalid setting {item!r}: expected key=value")
            out = set_path(out, prefix + key.strip(), value)
    return out
