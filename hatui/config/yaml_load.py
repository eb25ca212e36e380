"""Reading YAML as Patroni does (YAML 1.1): plain dict/list/scalars, with the line and column of every key
and value kept so a finding can point at its place, and syntax errors, aliases that explode or loop, and
non-UTF-8 text turned into one finding each instead of an exception."""

from __future__ import annotations

import dataclasses
import warnings as _pywarnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .defaults import YAML_NODES_MAX
from .issues import Issue


def _yaml_loader() -> YAML:
    y = YAML(typ="rt")  # round-trip: keeps line/column of every key and value
    # Patroni and patronictl read YAML 1.1 (PyYAML): `on`, `yes`, `off` are booleans there, so they are here.
    y.version = (1, 1)
    y.allow_duplicate_keys = False
    return y


@dataclass
class _Document:
    data: Any
    key_pos: dict[tuple, tuple[int, int]]
    value_pos: dict[tuple, tuple[int, int]]
    issues: list[Issue]

    def locate(self, issue: Issue) -> Issue:
        if issue.line is not None or not issue.keys:
            return issue
        keys = issue.keys
        pos = None
        if issue.rule not in ("unknown_key", "misplaced"):
            pos = self.value_pos.get(keys)
        while pos is None and keys:
            pos = self.key_pos.get(keys)
            keys = keys[:-1]
        return dataclasses.replace(issue, line=pos[0], column=pos[1]) if pos else issue


class _YamlTooBig(Exception):
    pass


class _YamlLoop(Exception):
    pass


def _expanded_size(node: Any) -> int:
    """How many values the document has once aliases are expanded (shared nodes counted each time)."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(n: Any) -> int:
        if not isinstance(n, (Mapping, list, tuple)):
            return 1
        ident = id(n)
        if ident in memo:
            return memo[ident]
        if ident in active:
            raise _YamlLoop
        active.add(ident)
        children = (x for kv in n.items() for x in kv) if isinstance(n, Mapping) else iter(n)
        total = 1
        for child in children:
            total += size(child)
            if total > YAML_NODES_MAX:
                raise _YamlTooBig
        active.discard(ident)
        memo[ident] = total
        return total

    return size(node)


def _plain_scalar(value: Any) -> Any:
    """ruamel's round-trip scalar types -> plain Python values that json.dumps accepts."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    from ruamel.yaml.scalarbool import ScalarBoolean

    if isinstance(value, ScalarBoolean):
        return bool(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if hasattr(value, "isoformat"):  # timestamps: keep the text, a date is not JSON
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    tagged = getattr(value, "value", None)  # TaggedScalar (`!custom text`)
    if isinstance(tagged, str):
        return tagged
    return str(value)


def _to_plain(node: Any, keys: tuple, key_pos: dict, value_pos: dict) -> Any:
    if isinstance(node, Mapping):
        lc = getattr(node, "lc", None)
        out: dict[Any, Any] = {}
        for k, v in node.items():
            pk = _plain_scalar(k) if not isinstance(k, (Mapping, list, tuple)) else str(k)
            here = (*keys, pk)
            if lc is not None:
                try:
                    line, col = lc.key(k)
                    key_pos[here] = (line + 1, col + 1)
                    line, col = lc.value(k)
                    value_pos[here] = (line + 1, col + 1)
                except (KeyError, TypeError, IndexError):  # merged (<<) keys have no position of their own
                    pass
            out[pk] = _to_plain(v, here, key_pos, value_pos)
        return out
    if isinstance(node, (list, tuple)):
        lc = getattr(node, "lc", None)
        items = []
        for i, v in enumerate(node):
            here = (*keys, i)
            if lc is not None:
                try:
                    line, col = lc.item(i)
                    key_pos[here] = value_pos[here] = (line + 1, col + 1)
                except (KeyError, TypeError, IndexError):
                    pass
            items.append(_to_plain(v, here, key_pos, value_pos))
        return items
    return _plain_scalar(node)


def _syntax_issue(text: str, exc: Exception) -> Issue:
    line = column = None
    problem = ""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        problem = exc.problem or exc.context or ""
        if problem.startswith("but ") and exc.context:  # "but found another document" needs its first half
            problem = f"{exc.context}, {problem}"
    else:
        position = getattr(exc, "position", None)
        if isinstance(position, int):
            before = text[:position]
            line, column = before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1
        problem = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        if not isinstance(problem, str):
            problem = str(problem)
    problem = problem.strip() or "invalid YAML"
    where = f" at line {line}, column {column}" if line is not None else ""
    return Issue(
        "", None, "yaml_syntax", "error", f"YAML syntax error{where}: {problem}", line, column, detail=problem
    )


def _load(text: str | bytes) -> _Document:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _Document(
                None,
                {},
                {},
                [
                    Issue(
                        "",
                        None,
                        "yaml_syntax",
                        "error",
                        f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    )
                ],
            )
    try:
        with _pywarnings.catch_warnings():
            # ruamel warns (on stderr) about YAML 1.1 floats without a dot such as 1e3; that is noise here
            _pywarnings.simplefilter("ignore")
            tree = _yaml_loader().load(text)
    except YAMLError as exc:
        return _Document(None, {}, {}, [_syntax_issue(text, exc)])
    except RecursionError:
        return _Document(
            None, {}, {}, [Issue("", None, "yaml_syntax", "error", "the document is nested too deeply")]
        )
    try:
        _expanded_size(tree)
    except _YamlTooBig:
        msg = f"the document expands to more than {YAML_NODES_MAX} values through aliases"
        return _Document(None, {}, {}, [Issue("", None, "size", "error", msg)])
    except _YamlLoop:
        return _Document(None, {}, {}, [Issue("", None, "yaml_syntax", "error", "an alias refers to itself")])
    except RecursionError:
        return _Document(
            None, {}, {}, [Issue("", None, "yaml_syntax", "error", "the document is nested too deeply")]
        )
    key_pos: dict[tuple, tuple[int, int]] = {}
    value_pos: dict[tuple, tuple[int, int]] = {}
    try:
        data = _to_plain(tree, (), key_pos, value_pos)
    except RecursionError:
        return _Document(
            None, {}, {}, [Issue("", None, "yaml_syntax", "error", "the document is nested too deeply")]
        )
    if data is None:  # empty file or only comments: an empty configuration
        data = {}
    return _Document(data, key_pos, value_pos, [])


def parse_yaml_document(text: str | bytes) -> tuple[Any, list[Issue]]:
    """Parse YAML into plain dict/list/scalars. On bad YAML: (None, [one error with line and column])."""
    doc = _load(text)
    return doc.data, doc.issues


def parse_value(text: str) -> Any:
    """A value given on a command line (`--set ttl=60`), read as YAML like patronictl does.

    Text that is not valid YAML on its own (`%m [%p] `, a quote left open) is kept as a plain string:
    PostgreSQL values often look like that, and refusing them helps nobody.
    """
    doc = _load(text)
    if doc.issues:
        return text
    if doc.data == {} and text.strip() not in ("{}",) and not text.strip().startswith("{"):
        return None  # empty text or only a comment: YAML null, which removes the key
    return doc.data
