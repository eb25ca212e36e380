"""The configuration files hatui writes into a data directory: postgresql.conf (hatui's own,
including initdb's file kept as postgresql.base.conf), pg_hba.conf, pg_ident.conf, standby.signal,
and the recovery settings (primary_conninfo, a custom bootstrap's recovery_conf).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from . import recovery
from .pg_conf import BASE_CONF, CONF_MARKER, StandbyConfig, conf_value, make_conninfo
from .pg_server import PostgresBase, PostgresError

log = logging.getLogger("hatui.postgres")


class ConfigFiles(PostgresBase):
    """postgresql.conf, pg_hba.conf, pg_ident.conf and standby.signal, written atomically."""

    def _write_file(self, name: str, content: str) -> bool:
        """Atomically write a file in the data dir, owned by the server user, 0600; True if changed."""
        path = self._path(name)
        try:
            if Path(path).read_text() == content:
                return False
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        tmp = f"{path}.hatui-tmp"
        with open(tmp, "w") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        self.user.chown(tmp)
        os.replace(tmp, path)
        return True

    def effective_parameters(self, parameters: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The GUCs hatui writes: defaults, then `parameters`, then the ones hatui must control."""
        params: dict[str, Any] = {
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_keep_size": "128MB",
        }
        params.update(self.parameters if parameters is None else parameters)
        # Replication and pg_rewind depend on these; a node-local override would break failover.
        params["wal_level"] = "logical" if str(params.get("wal_level")) == "logical" else "replica"
        params["hot_standby"] = "on"
        params["wal_log_hints"] = "on"
        params["listen_addresses"] = self.listen_host
        params["port"] = str(self.port)
        params["unix_socket_directories"] = self.socket_dir
        params["hba_file"] = self._path("pg_hba.conf")
        for key in ("primary_conninfo", "primary_slot_name", "recovery_target_timeline"):
            params.pop(key, None)  # only the standby section below sets these
        return {k: ("on" if v is True else "off" if v is False else str(v)) for k, v in params.items()}

    def render_config(
        self, parameters: Mapping[str, Any] | None = None, standby: StandbyConfig | None = None
    ) -> str:
        """The postgresql.conf text write_config() would write."""
        lines = [
            f"{CONF_MARKER} for node '{self.name}'. It is rewritten whenever the configuration",
            "# changes: set parameters in hatui's configuration, not here. initdb's original file",
            f"# is kept as {BASE_CONF} and included first.",
            f"include '{BASE_CONF}'",
            "",
        ]
        for key, value in sorted(self.effective_parameters(parameters).items()):
            lines.append(f"{key} = {conf_value(value)}")
        if standby is None and self.bootstrap_recovery:
            lines += ["", "# recovery settings of the custom bootstrap (removed once it is done)"]
            lines += [f"{k} = {conf_value(v)}" for k, v in sorted(self.bootstrap_recovery.items())]
        if standby is not None and not standby.host:
            lines += ["", "# this node is a standby with no upstream yet (read-only, waiting for a leader)"]
        elif standby is not None:
            conninfo = make_conninfo(
                host=standby.host, port=standby.port, user=standby.user, password=standby.password,
                application_name=standby.application_name or self.name, sslmode=standby.sslmode,
                **dict(standby.options),
            )
            lines += ["", "# this node is a standby", f"primary_conninfo = {conf_value(conninfo)}"]
            if standby.slot_name:
                lines.append(f"primary_slot_name = {conf_value(standby.slot_name)}")
            lines.append("recovery_target_timeline = 'latest'")
        if standby is not None and standby.recovery:
            lines += ["", "# recovery settings (postgresql.recovery_conf)"]
            lines += [f"{k} = {conf_value(v)}" for k, v in standby.recovery]
        return "\n".join(lines) + "\n"

    def write_config(
        self,
        parameters: Mapping[str, Any] | None = None,
        pg_hba: list[str] | None = None,
        standby: StandbyConfig | None = None,
    ) -> bool:
        """Write postgresql.conf, pg_hba.conf and standby.signal; True if any of them changed.

        parameters/pg_hba default to the last values written (initially the constructor's). A
        change of standby.signal only takes effect on restart or promote; GUCs on reload.
        """
        if self.data_dir_state() != "valid":
            raise PostgresError(f"cannot write config: no valid data directory at {self.data_dir}")
        if parameters is not None:
            self.parameters = dict(parameters)
        if pg_hba is not None:
            self.pg_hba = list(pg_hba)
        changed = self._keep_base_conf()
        changed |= self._write_file("postgresql.conf", self.render_config(self.parameters, standby))
        if not self.keep_auto_conf_recovery:
            changed |= bool(recovery.strip_auto_conf(self.data_dir, self.user.chown))
        hba = ["# Written by hatui: set postgresql.pg_hba in hatui's configuration instead.", *self.pg_hba]
        changed |= self._write_file("pg_hba.conf", "\n".join(hba) + "\n")
        if self.pg_ident is not None:
            ident = ["# Written by hatui: set postgresql.pg_ident in hatui's configuration instead.", *self.pg_ident]
            changed |= self._write_file("pg_ident.conf", "\n".join(ident) + "\n")
        signal_file = Path(self._path("standby.signal"))
        if standby is not None and not signal_file.exists():
            self._write_file("standby.signal", "")
            changed = True
        elif standby is None and signal_file.exists():
            signal_file.unlink()
            changed = True
        if changed:
            log.info("configuration written for %s (%s)", self.name, "standby" if standby else "primary")
        return changed

    def _keep_base_conf(self) -> bool:
        """Move initdb's postgresql.conf aside as postgresql.base.conf the first time we write ours."""
        conf, base = Path(self._path("postgresql.conf")), Path(self._path(BASE_CONF))
        if base.exists():
            return False
        if conf.exists() and not conf.read_text(errors="replace").startswith(CONF_MARKER):
            os.replace(conf, base)
        else:
            base.write_text("")
            self.user.chown(base)
        return True
