"""Where the PostgreSQL server binaries live."""

from __future__ import annotations

import glob
import os
import shutil


def find_bin_dir(configured: str | None = None) -> str:
    """bin_dir from config, else the newest Debian /usr/lib/postgresql/<v>/bin, else $PATH."""
    if configured:
        return configured
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: _version_key(d), reverse=True)
    for d in candidates:
        if os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    raise RuntimeError("PostgreSQL server binaries not found (pg_ctl); install Debian's postgresql package")


def _version_key(path: str) -> float:
    try:
        return float(path.split("/")[-2])
    except ValueError:
        return 0.0
