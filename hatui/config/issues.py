"""The validator's findings: `Issue` (key path, value, rule, severity, sentence, line and column), the
`ConfigError` a node file that cannot be used raises, and `_Checker`, which states each kind of typed rule
(integer, boolean, string, mapping, list, choice, unknown key) once so every user reads the same sentence.

Why no validation library carries this (pydantic, msgspec, cattrs and jsonschema were weighed; none is
installed, all four are on the package registry): most of what the validator says is not a type check but a
rule with a sentence of its own, and much of it is a warning that does not stop a write (unknown key with
"did you mean", misplaced node/cluster setting, old name, conflicting tags), which none of them models.
msgspec stops at the first error; pydantic and cattrs report all, and jsonschema paths map to keys as ours do,
but all three word messages their own way ("Input should be a valid integer"), so each message would be
overridden rule by rule while the cross-field rules (the timing rule, PostgreSQL value syntax per GUC, keys
named by values such as a custom bootstrap method) stay hand-written anyway. Line and column come from the
YAML loader (`yaml_load`), not from the validator, and would be the same with any of them; so the library would
add a dependency (and, for pydantic, a compiled core the daemon loads at start) for no better message.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One finding of the validator. `message` is the sentence people read ("ttl: 5 must be >= 20")."""

    path: str
    value: Any
    rule: str
    severity: str  # "error" | "warning"
    message: str
    line: int | None = None
    column: int | None = None
    detail: str = field(default="", compare=False)
    # The path as keys: a GUC name may contain dots, so the dotted string alone is ambiguous.
    keys: tuple = field(default=(), compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, source: str | None = None) -> str:
        """`source:line:column: severity: message`, the shape compilers and editors understand."""
        where = source or ""
        if self.line is not None:
            where += f":{self.line}" if where else f"line {self.line}"
            if self.column is not None:
                where += f":{self.column}" if source else f", column {self.column}"
        return f"{where}: {self.severity}: {self.message}" if where else f"{self.severity}: {self.message}"

    def __str__(self) -> str:
        return self.message


def errors(issues: Iterable[Issue]) -> list[Issue]:
    """Only the issues that must stop a write."""
    return [i for i in issues if i.severity == "error"]


def warnings_only(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity != "error"]


class ConfigError(Exception):
    """A node file that cannot be used; `issues` holds every problem found, errors first."""

    def __init__(self, source: str, issues: list[Issue]):
        self.source = source
        self.issues = sorted(issues, key=lambda i: (i.severity != "error", i.line or 0, i.column or 0))
        lines = [i.format(source) for i in self.issues if i.is_error]
        super().__init__("\n".join(lines) or f"{source}: invalid configuration")


def _path_text(keys: Sequence[Any]) -> str:
    return ".".join(str(k) for k in keys)


def _make_issue(keys: Sequence[Any], value: Any, rule: str, detail: str, severity: str) -> Issue:
    path = _path_text(keys)
    message = f"{path}: {detail}" if path else detail
    return Issue(path, value, rule, severity, message, detail=detail, keys=tuple(keys))


def _reprefix(issue: Issue, prefix: Sequence[Any]) -> Issue:
    """The same issue seen from an enclosing document (bootstrap.dcs inside a node file)."""
    fresh = _make_issue(tuple(prefix) + issue.keys, issue.value, issue.rule, issue.detail, issue.severity)
    return dataclasses.replace(fresh, line=issue.line, column=issue.column)


def _show(value: Any) -> str:
    """A value as a person would write it in YAML, shortened."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return "'" + text.replace("'", "''") + "'"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


class _Checker:
    """Collects issues; the helpers below state each kind of rule once."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.known_parameters: frozenset[str] | None = None  # the local server's, when known

    def error(self, keys: Sequence[Any], value: Any, rule: str, detail: str) -> None:
        self.issues.append(_make_issue(keys, value, rule, detail, "error"))

    def warning(self, keys: Sequence[Any], value: Any, rule: str, detail: str) -> None:
        self.issues.append(_make_issue(keys, value, rule, detail, "warning"))

    def extend(self, issues: Iterable[Issue], prefix: Sequence[Any] = ()) -> None:
        self.issues.extend(_reprefix(i, prefix) if prefix else i for i in issues)

    # -- typed checks; each returns True when the value has the right type --
    def integer(
        self, keys: Sequence[Any], value: Any, minimum: int | None = None, maximum: int | None = None
    ) -> bool:
        if not _is_int(value):
            self.error(keys, value, "type", f"{_show(value)} must be an integer, not {_kind(value)}")
            return False
        if maximum is not None and value > maximum:
            self.error(keys, value, "maximum", f"{_show(value)} is too large (the maximum is {maximum})")
            return False
        if minimum is not None and value < minimum:
            self.error(keys, value, "minimum", f"{value} must be >= {minimum}")
            return False
        return True

    def boolean(self, keys: Sequence[Any], value: Any) -> bool:
        if not isinstance(value, bool):
            self.error(keys, value, "type", f"{_show(value)} must be true or false, not {_kind(value)}")
            return False
        return True

    def string(self, keys: Sequence[Any], value: Any) -> bool:
        if not isinstance(value, str):
            self.error(keys, value, "type", f"{_show(value)} must be a string, not {_kind(value)}")
            return False
        return True

    def mapping(self, keys: Sequence[Any], value: Any) -> bool:
        if not isinstance(value, Mapping):
            self.error(keys, value, "type", f"must be a mapping (key: value lines), not {_kind(value)}")
            return False
        return True

    def string_list(self, keys: Sequence[Any], value: Any) -> bool:
        if not isinstance(value, (list, tuple)):
            self.error(keys, value, "type", f"must be a list of strings, not {_kind(value)}")
            return False
        ok = True
        for i, item in enumerate(value):
            ok = self.string((*keys, i), item) and ok
        return ok

    def choice(self, keys: Sequence[Any], value: Any, choices: Sequence[str], case: bool = False) -> bool:
        norm = value if case or not isinstance(value, str) else value.lower()
        if not isinstance(value, str) or norm not in choices:
            self.error(keys, value, "enum", f"{_show(value)} must be one of: {', '.join(choices)}")
            return False
        return True

    def unknown(self, keys: Sequence[Any], value: Any, known: Iterable[str] = ()) -> None:
        close = difflib.get_close_matches(str(keys[-1]), list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        self.warning(keys, value, "unknown_key", f"unknown setting, ignored{hint}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
