"""Reading a data directory without a running server: its state, pg_controldata (system id,
cluster state, timeline, whether pg_rewind can work on it), timeline history files, and the end
of local WAL that `needs_rewind` takes as input.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from .pg_server import DataDirState, PostgresBase, PostgresError, _output
from .pg_wal import format_lsn, parse_controldata, parse_history, parse_lsn

log = logging.getLogger("hatui.postgres")

CLEAN_SHUTDOWN_STATES = frozenset({"shut down", "shut down in recovery"})


class DataDirInspection(PostgresBase):
    """What a data directory says about itself (pg_controldata, pg_wal, the files in it)."""

    def data_dir_state(self) -> DataDirState:
        path = Path(self.data_dir)
        if not path.exists():
            return "missing"
        if not path.is_dir():
            return "invalid"
        if not [e for e in os.listdir(path) if e != "lost+found"]:
            return "empty"
        if (path / "PG_VERSION").is_file() and (path / "global" / "pg_control").is_file():
            return "valid"
        return "invalid"

    def controldata(self) -> dict[str, str]:
        """pg_controldata of the data directory, parsed."""
        res = self._run([self._bin("pg_controldata"), "-D", self.data_dir], timeout=30)
        if res.returncode != 0:
            raise PostgresError(f"pg_controldata failed for {self.data_dir}: {_output(res)}")
        return parse_controldata(res.stdout)

    def sysid(self) -> str | None:
        """The database system identifier, or None when there is no valid data directory."""
        if self.data_dir_state() != "valid":
            return None
        try:
            return self.controldata().get("Database system identifier")
        except PostgresError as exc:
            log.warning("cannot read the system identifier: %s", exc)
            return None

    def cluster_state(self) -> str | None:
        """'in production', 'shut down', 'shut down in recovery', 'in archive recovery', ..."""
        if self.data_dir_state() != "valid":
            return None
        return self.controldata().get("Database cluster state")

    def was_cleanly_shut_down(self) -> bool:
        return self.cluster_state() in CLEAN_SHUTDOWN_STATES

    def timeline(self) -> int | None:
        """Timeline of the latest checkpoint (meaningful for a stopped server)."""
        if self.data_dir_state() != "valid":
            return None
        return int(self.controldata()["Latest checkpoint's TimeLineID"])

    def can_rewind(self) -> bool:
        """pg_rewind needs wal_log_hints or data checksums on the target, and the binary."""
        if not os.path.exists(self._bin("pg_rewind")) or self.data_dir_state() != "valid":
            return False
        data = self.controldata()
        return data.get("wal_log_hints setting") == "on" or data.get("Data page checksum version", "0") != "0"

    def read_history_file(self, tl: int) -> list[tuple[int, int, str]]:
        """Entries of pg_wal/<TL>.history ([] for timeline 1 or when the file is missing)."""
        try:
            text = Path(self._path("pg_wal", f"{tl:08X}.history")).read_text()
        except FileNotFoundError:
            return []
        return parse_history(text)

    def checkpoint_record_end(self, tl: int, lsn: int) -> int | None:
        """Where the WAL record at `lsn` (a checkpoint) ends, read with pg_waldump; None if unknown."""
        res = self._run(
            [self._bin("pg_waldump"), "-p", self._path("pg_wal"), "-t", str(tl),
             "-s", format_lsn(lsn), "-n", "2"],
            timeout=30,
        )
        found = re.findall(r"lsn: ([0-9A-Fa-f]+/[0-9A-Fa-f]+)", res.stdout)
        if len(found) >= 2:
            return parse_lsn(found[1])  # the next record starts where ours ends
        if len(found) == 1:
            # A clean shutdown leaves nothing after the checkpoint: pg_waldump stops with
            # "invalid record length at X" (or similar) where X is the end of our record.
            ends = [parse_lsn(x) for x in re.findall(r"\bat ([0-9A-Fa-f]+/[0-9A-Fa-f]+)", res.stderr)]
            if ends and ends[-1] > lsn:
                return ends[-1]
        log.debug("pg_waldump could not find the end of the record at %s: %s", format_lsn(lsn), _output(res))
        return None

    def local_wal_end(self) -> tuple[int, int] | None:
        """(timeline, end of local WAL) of a STOPPED server, the inputs `needs_rewind` wants.

        A server stopped in recovery reports its minimum recovery point; a stopped primary the end
        of its shutdown checkpoint record. None when the server did not shut down cleanly (run
        single_user_recovery first).
        """
        if self.is_running():
            raise PostgresError("local_wal_end() reads pg_controldata and needs a stopped server")
        data = self.controldata()
        state = data.get("Database cluster state")
        if state in ("shut down in recovery", "in archive recovery"):
            lsn = parse_lsn(data.get("Minimum recovery ending location", "0/0"))
            tl = int(data.get("Min recovery ending loc's timeline", "0"))
            if lsn and tl:
                return tl, lsn
        elif state != "shut down":
            return None
        tl = int(data["Latest checkpoint's TimeLineID"])
        ckpt = parse_lsn(data["Latest checkpoint location"])
        end = self.checkpoint_record_end(tl, ckpt)
        # Without pg_waldump's answer assume one byte past the checkpoint: a leader that switched
        # exactly at our checkpoint did not get it, so we diverged.
        return tl, end if end is not None else ckpt + 1
