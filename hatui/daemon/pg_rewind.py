"""Bringing a diverged data directory back onto the leader's timeline: single-user crash
recovery (pg_rewind refuses a crashed target), then pg_rewind with our own config files kept.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .pg_conf import BASE_CONF, StandbyConfig, make_conninfo, mask_conninfo, parse_conninfo
from .pg_server import PostgresBase, PostgresError, _output

log = logging.getLogger("hatui.postgres")

# Config files pg_rewind would overwrite with the source server's copies.
_REWIND_KEEP = ("postgresql.conf", BASE_CONF, "pg_hba.conf", "pg_ident.conf")


class Rewind(PostgresBase):
    """pg_rewind and the crash recovery it needs first."""

    def single_user_recovery(self, timeout: float = 600) -> None:
        """Crash recovery for a server that was not shut down cleanly, in single-user mode.

        pg_rewind refuses a target that crashed. Recovery files are removed first because a
        single-user server cannot run as a standby; write_config(standby=...) restores them.
        """
        if self.is_running():
            raise PostgresError("cannot run crash recovery: postgresql is running")
        self._wait_for_orphans()
        for name in ("standby.signal", "recovery.signal"):
            Path(self._path(name)).unlink(missing_ok=True)
        log.info("running crash recovery: postgres --single on %s", self.data_dir)
        # archive_mode on + a failing archive_command: keep every WAL segment, pg_rewind may need them.
        args = [
            self._bin("postgres"), "--single", "-D", self.data_dir,
            "-c", "archive_mode=on", "-c", "archive_command=false", "template1",
        ]
        res = self._run(args, timeout=timeout)
        if res.returncode != 0:
            raise PostgresError(f"crash recovery in single-user mode failed: {_output(res)}")
        log.info("crash recovery done; cluster state is now '%s'", self.cluster_state())

    def rewind(
        self, source_conninfo: str, source_name: str | None = None, standby: StandbyConfig | None = None
    ) -> tuple[bool, str]:
        """Rewind our stopped data directory to the source server's timeline with pg_rewind.

        A server that was not shut down cleanly gets crash recovery first. Our config files are
        kept (pg_rewind would copy the source's). pg_rewind leaves no standby.signal, so the
        server must not be started before write_config(standby=...): pass `standby` to have it
        done here on success. Returns (succeeded, pg_rewind's output).
        """
        if self.is_running():
            raise PostgresError("cannot rewind: postgresql is running; stop it first")
        if not self.was_cleanly_shut_down():
            self.single_user_recovery()
        params = _conninfo_to_dict(source_conninfo)
        env = {}
        if "password" in params:
            # Keep the password out of the argument list, which other local users can read.
            env["PGPASSWORD"] = params.pop("password")
            source_conninfo = make_conninfo(**params)
        log.info("running pg_rewind from %s (%s)", source_name or "the leader", mask_conninfo(source_conninfo))
        saved = self._save_config_files()
        try:
            res = self._run(
                [self._bin("pg_rewind"), f"--target-pgdata={self.data_dir}",
                 f"--source-server={source_conninfo}", "--progress"],
                env=env, timeout=3600,
            )
        finally:
            self._restore_config_files(saved)
        output = (res.stdout + res.stderr).strip()
        log.info("pg_rewind exit code=%d", res.returncode)
        for stream, text in (("stdout", res.stdout), ("stderr", res.stderr)):
            if text.strip():
                log.info(" %s=%s", stream, text.strip())
        ok = res.returncode == 0
        if ok and standby is not None:
            self.write_config(standby=standby)
        return ok, output

    def _save_config_files(self) -> dict[str, bytes]:
        saved = {}
        for name in _REWIND_KEEP:
            try:
                saved[name] = Path(self._path(name)).read_bytes()
            except FileNotFoundError:
                pass
        return saved

    def _restore_config_files(self, saved: dict[str, bytes]) -> None:
        for name, content in saved.items():
            path = Path(self._path(name))
            if not path.exists() or path.read_bytes() != content:
                path.write_bytes(content)
                os.chmod(path, 0o600)
                self.user.chown(path)


def _conninfo_to_dict(conninfo: str) -> dict[str, str]:
    params = parse_conninfo(conninfo)
    if params is not None:
        return params
    import psycopg.conninfo  # a URI: libpq reads it

    try:
        return dict(psycopg.conninfo.conninfo_to_dict(conninfo))
    except psycopg.Error as exc:
        raise PostgresError(f"invalid connection string for pg_rewind: {exc}") from None
