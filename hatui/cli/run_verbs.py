"""The verbs that run hatui's own programs, kept thin (each parses its own options): validate (a
node file, as the daemon would read it), daemon and demo.
"""

from __future__ import annotations

import click

from .common import CtlError


@click.command("validate")
@click.argument("node_yml", type=click.Path(dir_okay=False), required=False)
@click.option("--show", is_flag=True, help="Print the merged configuration (file + PATRONI_*/HATUI_* variables)")
def validate_cmd(node_yml: str | None, show: bool) -> None:
    """Check a node file as the daemon would (Patroni's --validate-config): errors, warnings and the
    settings hatui accepts but does not act on, with PATRONI_*/HATUI_* variables over the file (or
    alone, without NODE_YML). Exits 1 when there is an error."""
    from .validate import validate

    code = validate(node_yml, show)
    if code:
        raise click.exceptions.Exit(code)


# --- the daemon and the demo (thin: their own modules parse their own options) ---------------
@click.command("daemon", context_settings={"ignore_unknown_options": True})
@click.argument("node_yml", type=click.Path(dir_okay=False), required=False)
def daemon_cmd(node_yml: str | None) -> None:
    """Run a hatui node (Patroni-compatible daemon) from a node YAML file.

    PATRONI_* (or HATUI_*) variables override the file's settings, as with Patroni; without
    NODE_YML they alone configure the node."""
    try:
        from ..daemon.main import run
    except ImportError as exc:
        if exc.name in ("hatui.daemon.main", "hatui.daemon"):
            raise CtlError("hatui daemon is not built yet") from exc
        raise
    code = run(node_yml)
    if code:
        raise click.exceptions.Exit(int(code))


@click.command("demo", add_help_option=False,
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def demo_cmd(args: tuple[str, ...]) -> None:
    """Start a demo cluster (private etcd + PostgreSQL nodes on loopback)."""
    import importlib

    try:
        # import_module reads sys.modules first: `import hatui.demo as demo` would take the package
        # attribute, which can differ from sys.modules (tests swap the module there).
        demo = importlib.import_module("hatui.demo")
    except ImportError as exc:
        if exc.name == "hatui.demo":
            raise CtlError("hatui demo is not built yet") from exc
        raise
    code = demo.main(list(args))
    if code:
        raise click.exceptions.Exit(int(code))
