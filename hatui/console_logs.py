"""Which log file belongs to which member, for the console's log panes outside the demo.

Sources, later ones winning: the node file given with `-c` (when it is a node's config on this
machine, its daemon writes `<log.dir>/<name>.log`), then each `--logs` value: a directory (every
`<member>.log` in it), a file (named after its member, `<member>.log`), or `MEMBER=PATH`.
Every bad value is one clear line (LogSpecError); nothing is opened here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class LogSpecError(ValueError):
    pass


def from_node_config(raw: Mapping[str, Any] | None) -> dict[str, str]:
    """{name: <log.dir>/<name>.log} when the config is a node's with a log dir (as hatui daemon does)."""
    if not raw or not isinstance(raw.get("name"), str):
        return {}
    log_cfg = raw.get("log")
    if not isinstance(log_cfg, Mapping) or not log_cfg.get("dir"):
        return {}
    return {raw["name"]: os.path.join(str(log_cfg["dir"]), f"{raw['name']}.log")}


def _member_of(path: Path) -> str:
    name = path.name
    for suffix in (".log",):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def resolve_log_files(specs: Iterable[str], node_raw: Mapping[str, Any] | None = None) -> dict[str, str]:
    files = from_node_config(node_raw)
    for spec in specs:
        if "=" in spec and not Path(spec).exists():
            member, _, path = spec.partition("=")
            if not member or not path:
                raise LogSpecError(f"--logs {spec!r}: expected MEMBER=PATH, a file or a directory")
            files[member] = path
            continue
        p = Path(spec)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.name.endswith(".log"))
            if not found:
                raise LogSpecError(f"--logs {spec}: no <member>.log file in this directory")
            for q in found:
                files[_member_of(q)] = str(q)
        elif p.is_file():
            files[_member_of(p)] = str(p)
        else:
            raise LogSpecError(f"--logs {spec}: no such file or directory (or use MEMBER=PATH)")
    return files
