"""The `hatui` click group's class: every failure of a verb becomes one `Error: ...` line (with
--debug, the traceback), and the verb's Ctl is closed however the verb ends.
"""

from __future__ import annotations

from typing import Any

import click

from .common import Ctl, CtlError


def _translate(exc: BaseException) -> CtlError | None:
    """The one-line message for an exception a verb let through (None: let click handle it)."""
    from ..api_client import ApiError
    from .ctlconfig import ConfigError
    from ..etcd.store import DCSError

    if isinstance(exc, (click.ClickException, click.exceptions.Exit)):
        return None
    if isinstance(exc, click.Abort):
        return CtlError("Aborted")
    if isinstance(exc, KeyboardInterrupt):
        return CtlError("Interrupted", exit_code=130)
    if isinstance(exc, (DCSError, ApiError, ConfigError)):
        return CtlError(str(exc))
    if type(exc).__module__.startswith("psycopg"):
        text = str(exc).strip().splitlines()
        return CtlError(f"PostgreSQL: {text[0] if text else type(exc).__name__}")
    if isinstance(exc, OSError):
        return CtlError(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    if isinstance(exc, Exception):
        return CtlError(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return None


class HatuiGroup(click.Group):
    """Turns every failure of a verb into one `Error:` line (unless --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BaseException as exc:  # noqa: BLE001 - translated or re-raised just below
            if ctx.params.get("debug") and not isinstance(exc, (click.ClickException, click.exceptions.Exit)):
                raise
            err = _translate(exc)
            if err is None:
                raise
            obj = ctx.obj
            if type(exc).__name__ == "DCSError" and isinstance(obj, Ctl) and obj.etcd_is_default():
                err.message += "; nothing configured, so the default was tried: use --etcd HOST:PORT, -c FILE or HATUI_ETCD"
            raise err from exc
        finally:
            obj = ctx.obj
            if isinstance(obj, Ctl):
                obj.close()
