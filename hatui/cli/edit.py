"""`hatui edit-config` and `show-config`: the dynamic configuration, edited safely.

Differences from patronictl, on purpose: the result goes through the shared validator
(config.validate_dynamic) and an invalid configuration is never written, not even with --force;
with no option on a terminal the in-terminal editor opens instead of $EDITOR (`--editor` still
forces $EDITOR); when an edit made in an editor loses the compare-and-swap, the operator is
offered to reload the current config and edit again (without --force). What stays the same: the `--set/--pg/--apply/--replace` semantics, `Not changed`,
the unified diff, `Apply these changes?`, the compare-and-swap on the config key's revision and
the messages.
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import click

from .common import Ctl, CtlError

CONFLICT = "Config modification aborted due to concurrent changes"


def patch_config(config: dict, patch: dict) -> dict:
    """Deep-merge patch into config (in place, returned): None deletes a key, dicts merge."""
    for name, value in patch.items():
        if value is None:
            config.pop(name, None)
        elif isinstance(value, dict) and isinstance(config.get(name), dict):
            patch_config(config[name], value)
        else:
            config[name] = value
    return config


def read_source(name: str) -> str:
    """A file's text, or standard input for '-'."""
    if name == "-":
        return click.get_text_stream("stdin").read()
    try:
        with open(name, encoding="utf-8") as fd:
            return fd.read()
    except OSError as exc:
        raise CtlError(f"Cannot read {name}: {exc.strerror or exc}") from exc


def _parse_mapping(text: str, source: str) -> dict:
    from ..config import parse_yaml_document

    data, issues = parse_yaml_document(text)
    if issues:
        raise CtlError(f"{source}: {issues[0].format()}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CtlError(f"{source} must contain a YAML mapping")
    return data


def invoke_editor(before: str, scope: str) -> str:
    """Edit a temp YAML file in $EDITOR (else `editor`, else `vi`); its text afterwards."""
    editor = os.environ.get("EDITOR")
    command = shlex.split(editor) if editor else None
    if not command:
        for name in ("editor", "vi"):
            path = shutil.which(name)
            if path:
                command = [path]
                break
    if not command:
        raise CtlError("EDITOR environment variable is not set. editor or vi are not available")
    fd, path = tempfile.mkstemp(suffix=".yaml", prefix=f"{scope.replace('/', '_')}-config-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(before)
        ret = subprocess.call([*command, path])
        if ret:
            raise CtlError(f"Editor exited with return code {ret}")
        with open(path, encoding="utf-8") as src:
            return src.read()
    finally:
        os.unlink(path)


def _interactive(before: str, scope: str) -> str | None | bool:
    """The in-terminal editor; False when it cannot be loaded (then $EDITOR is used)."""
    try:
        from ..screens.config_editor import edit_config_interactive
    except ImportError as exc:
        click.echo(f"The in-terminal editor is not available ({exc}); using $EDITOR", err=True)
        return False
    return edit_config_interactive(before, f"edit-config {scope}")


def _terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def issue_line(issue: Any) -> str:
    message = str(getattr(issue, "message", issue))
    path = getattr(issue, "path", "") or ""
    return message if not path or message.startswith(path) else f"{path}: {message}"


def show_diff(diff: str) -> None:
    color = sys.stdout.isatty()
    for line in diff.rstrip("\n").split("\n"):
        if color and line.startswith("+") and not line.startswith("+++"):
            click.secho(line, fg="green")
        elif color and line.startswith("-") and not line.startswith("---"):
            click.secho(line, fg="red")
        elif color and line.startswith("@@"):
            click.secho(line, fg="cyan")
        else:
            click.echo(line)


def write_config_cas(store: Any, data: dict, mod_revision: int) -> None:
    """Write the config only if its key still has mod_revision (what we read): two operators can
    never overwrite each other's edit silently."""
    if not store.write_config(data, mod_revision):
        raise CtlError(CONFLICT)


def check_config(data: Any) -> None:
    """Print every error (and warning) of the shared validator; exit 1 when there is an error."""
    from ..config import errors, validate_dynamic
    from ..pgparams import parameter_names

    issues = validate_dynamic(data, parameter_names())  # names checked when a local server binary exists
    bad = errors(issues)
    for issue in issues:
        if issue not in bad:
            click.echo(f"Warning: {issue_line(issue)}", err=True)
    if bad:
        for issue in bad:
            click.echo(f"Error: {issue_line(issue)}", err=True)
        raise click.exceptions.Exit(1)


def _edit_text(before: str, scope: str, use_editor: bool) -> tuple[str | None, bool]:
    """(the text an operator saved in an editor, or None when cancelled; whether it was confirmed).

    The in-terminal editor shows the diff and asks "Apply these changes?" itself before it hands
    the text back, so the command line must not ask a second time; $EDITOR asks nothing.
    """
    text: str | None | bool = False
    if not use_editor and _terminal():
        text = _interactive(before, scope)
        if text is not False:
            return (None if text is None else str(text)), True
    text = invoke_editor(before, scope)
    return (None if text is None else str(text)), False


def do_edit_config(ctl: Ctl, cluster_name: str | None, quiet: bool, kvpairs: tuple[str, ...],
                   pgkvpairs: tuple[str, ...], apply_filename: str | None, replace_filename: str | None,
                   use_editor: bool, force: bool) -> None:
    from ..config import apply_edits, config_diff, dump_yaml, validate_dynamic_text
    from ..pgparams import parameter_names

    scope, cluster = ctl.resolve(cluster_name)
    interactive = not (replace_filename or apply_filename or kvpairs or pgkvpairs)
    while True:
        if cluster.config is None:
            raise CtlError(f"The config key does not exist in the cluster {scope}")
        old = copy.deepcopy(dict(cluster.config.data))
        before = dump_yaml(old)

        new: dict | None = None
        confirmed = False  # the in-terminal editor already asked, with the diff
        if replace_filename:
            new = _parse_mapping(read_source(replace_filename), replace_filename)
        if apply_filename:
            base = copy.deepcopy(new if new is not None else old)
            new = patch_config(base, _parse_mapping(read_source(apply_filename), apply_filename))
        if kvpairs or pgkvpairs:
            try:
                new = apply_edits(new if new is not None else old, kvpairs, [p.lstrip() for p in pgkvpairs])
            except ValueError as exc:
                raise CtlError(str(exc)) from exc
        if new is None:
            text, confirmed = _edit_text(before, scope, use_editor)
            if text is None:  # cancelled in the in-terminal editor
                if not quiet:
                    click.echo("Not changed")
                return
            data, issues = validate_dynamic_text(text, parameter_names())
            if data is None:
                for issue in issues:
                    click.echo(f"Error: {issue.format()}", err=True)
                raise click.exceptions.Exit(1)
            new = data if isinstance(data, dict) else {}

        if new == old:
            if not quiet:
                click.echo("Not changed")
            return
        check_config(new)
        if not quiet:
            show_diff(config_diff(old, new))
        if (apply_filename == "-" or replace_filename == "-") and not force:
            raise CtlError("Use --force option to apply changes")
        if not (force or confirmed or click.confirm("Apply these changes?")):
            return
        if ctl.store(scope).write_config(new, cluster.config.mod_revision):
            click.echo("Configuration changed")
            return
        # Someone wrote the config after we read it. An operator at an editor may start again from
        # what is there now (their edit is lost, as in the console); scripts (--force) just fail.
        if not (interactive and not force
                and click.confirm(f"{CONFLICT}. Reload the current config and edit again?")):
            raise CtlError(CONFLICT)
        scope, cluster = ctl.resolve(scope)


def do_show_config(ctl: Ctl, cluster_name: str | None) -> None:
    from ..views import yaml_text

    scope, cluster = ctl.resolve(cluster_name)
    if cluster.config is None:
        raise CtlError(f"The config key does not exist in the cluster {scope}")
    # As patronictl: the dump's own final newline plus echo's, so the output ends with an empty line.
    click.echo(yaml_text(dict(cluster.config.data)))
