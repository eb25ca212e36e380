"""`hatui validate [node.yml]`, Patroni's `--validate-config`: every error and warning the daemon would
report for this node's configuration, the settings hatui accepts but does not act on included
(hatui.notbuilt). The configuration is what the daemon reads: the node file with the PATRONI_* /
HATUI_* variables over it (hatui.envconfig), or the variables alone without a file. `--show` prints the
merged result, passwords hidden, each setting a variable gave marked with its name.
Exit code 1 when there is an error (the daemon would refuse to start), else 0."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ..config import dump_yaml, errors, validate_node_text
from ..config.yaml_load import _load
from ..envconfig import check, environment_config
from ..notbuilt import merge, node_findings

_SECRETS = ("password", "keyfile_password", "sslpassword")


def findings(text: str | bytes) -> tuple[bool, list]:
    """(parsed, issues with line numbers) for a node file's text."""
    data, issues = validate_node_text(text)
    if data is None:
        return False, issues
    doc = _load(text)
    return True, merge(issues, [doc.locate(i) for i in node_findings(data)])


def validate(path: str | None, show: bool = False) -> int:
    try:
        text = Path(path).read_bytes() if path else b""
    except OSError as exc:
        click.echo(f"Error: cannot read {path}: {exc.strerror or exc}", err=True)
        return 1
    # A copy of the environment: checking removes nothing from this shell's.
    overlay, origin = environment_config(dict(os.environ))
    data, issues, doc = check(text, overlay, origin)
    if data is not None:
        issues = merge(issues, [doc.locate(i) for i in node_findings(data)])
    source = path or "environment"
    for issue in issues:
        click.echo(issue.format(source))
    n_err = len(errors(issues))
    n_warn = len(issues) - n_err
    verdict = "not valid" if n_err else "valid"
    given = f", with {', '.join(sorted({'$' + v for v in origin.values()}))}" if origin else ""
    click.echo(f"{source}: {verdict} ({n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)})"
               f"{given}")
    if show and data is not None:
        marks = {".".join(map(str, keys)): var for keys, var in origin.items()}
        click.echo(_annotate(dump_yaml(_hide(data)), marks), nl=False)
    return 1 if n_err else 0


def _hide(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _hide(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v) for v in value]
    return "<hidden>" if key in _SECRETS and value is not None else value


def _annotate(text: str, marks: dict[str, str]) -> str:
    """`key: value  # from $VAR` on the lines a variable set (a walk of the YAML's indentation)."""
    out, path = [], []  # path: (indent, key) of the enclosing mappings
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        key = stripped.split(":", 1)[0] if ":" in stripped and not stripped.startswith("- ") else None
        while path and path[-1][0] >= indent:
            path.pop()
        if key is not None:
            path.append((indent, key))
            dotted = ".".join(k for _, k in path)
            if dotted in marks:
                line += f"  # from ${marks[dotted]}"
        out.append(line)
    return "\n".join(out) + "\n"
