"""`hatui validate node.yml`, Patroni's `--validate-config`: every error and warning the daemon would
report for this node file, the settings hatui accepts but does not act on included (hatui.notbuilt).
Exit code 1 when there is an error (the daemon would refuse to start), else 0."""

from __future__ import annotations

from pathlib import Path

import click

from .config import _load, errors, validate_node_text
from .notbuilt import merge, node_findings


def findings(text: str | bytes) -> tuple[bool, list]:
    """(parsed, issues with line numbers) for a node file's text."""
    data, issues = validate_node_text(text)
    if data is None:
        return False, issues
    doc = _load(text)
    return True, merge(issues, [doc.locate(i) for i in node_findings(data)])


def validate(path: str) -> int:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        click.echo(f"Error: cannot read {path}: {exc.strerror or exc}", err=True)
        return 1
    _parsed, issues = findings(text)
    for issue in issues:
        click.echo(issue.format(path))
    n_err = len(errors(issues))
    n_warn = len(issues) - n_err
    verdict = "not valid" if n_err else "valid"
    click.echo(f"{path}: {verdict} ({n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)})")
    return 1 if n_err else 0
