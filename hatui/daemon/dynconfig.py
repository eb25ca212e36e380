"""Applying configuration to the running node: the cluster's dynamic config when its etcd key
changes, and POST /reload (the node file re-read); PostgreSQL's files rewritten and reloaded
only when something changed.

A part of `loop.Daemon` (a mixin: the methods run on the daemon object, with its attributes).
"""

from __future__ import annotations

import dataclasses
import logging

from ..cluster import Cluster
from ..notbuilt import dynamic_findings
from . import nodereload, queries
from .requests import Request

log = logging.getLogger("hatui.ha")


class ConfigApply:
    """Dynamic config and reload applied to PostgreSQL (part of `loop.Daemon`)."""

    def _apply_dynamic_config(self, cluster: Cluster) -> None:
        if cluster.config is None or cluster.config.mod_revision == self.applied_config_revision:
            return
        self.applied_config_revision = cluster.config.mod_revision
        new, warnings = self.rt.safe_dynamic(dict(cluster.config.data))
        for w in warnings:
            log.warning("%s", w)
        for issue in dynamic_findings(cluster.config.data):
            log.warning("cluster configuration: %s", issue)
        old_params = self.rt.effective_parameters(self.dynamic)
        self.dynamic = new
        if self.pg.data_dir_state() != "valid":
            return
        new_params = self.rt.effective_parameters(new)
        if new_params == old_params and self.pg.is_running():
            return
        standby = self._standby_for(cluster, self.following) if self.view.role != "primary" else None
        if self.view.role == "replica" and self.following is None:
            standby = self._standby_for(None, None)
        changed = self.pg.write_config(new_params, self.rt.pg_hba(new), standby)
        if not changed:
            log.info("No PostgreSQL configuration items changed, nothing to reload.")
            return
        if self.pg.is_running():
            names = sorted(n for n in set(new_params) | set(old_params) if new_params.get(n) != old_params.get(n))
            try:
                # What the server runs with now (the old config may not have named the GUC at all)
                # and whether the change needs a restart; pending_restart itself comes from
                # pg_settings on the next observation, once the server has re-read its files.
                rows = queries.execute(self.pg, "SELECT name, current_setting(name), context FROM pg_settings "
                                                "WHERE name = ANY(%s)", (names,))
                current = {r[0]: (r[1], r[2]) for r in rows}
            except Exception:  # noqa: BLE001 - only the log line loses detail
                current = {}
            for name in names:
                value, context = current.get(name, (old_params.get(name), None))
                note = " (restart might be required)" if context == "postmaster" else ""
                log.info("Changed %s from '%s' to '%s'%s", name, value, new_params.get(name), note)
            log.info("Reloading PostgreSQL configuration.")
            self.pg.reload()  # logs "server signaled"
            self.callbacks.fire("on_reload", self.view.role)

    def _req_reload(self, req: Request, cluster: Cluster | None) -> None:
        """POST /reload (Patroni's SIGHUP): re-read the local YAML, rewrite PostgreSQL's config, reload."""
        self._reload_local_config()
        self.applied_config_revision = -1
        if cluster is not None:
            self._apply_dynamic_config(cluster)
        if self.pg.data_dir_state() == "valid":
            if self.view.role == "primary":
                standby = None
            else:
                standby = self._standby_for(cluster, self.following)
            changed = self.pg.write_config(self.rt.effective_parameters(self.dynamic), self.rt.pg_hba(self.dynamic),
                                           standby)
            if changed and self.pg.is_running():
                log.info("Reloading PostgreSQL configuration.")
                self.pg.reload()
                self.callbacks.fire("on_reload", self.view.role)
            elif not changed:
                log.info("No PostgreSQL configuration items changed, nothing to reload.")
        req.finish(202, "reload scheduled")

    def _reload_local_config(self) -> None:
        """Take the node YAML's reloadable parts (postgresql.parameters, pg_hba, tags) from disk again.

        Addresses, credentials and the data dir stay as the daemon started with them: changing
        those under a running node needs a daemon restart, as with Patroni.
        """
        from ..config import ConfigError
        from ..envconfig import reload_node

        source = self.rt.node.source
        if not source or source.startswith(("<", "$")):
            return
        try:
            node = reload_node(source)  # the file, with the variables the daemon started with over it
        except (ConfigError, OSError) as exc:
            log.error("reload: keeping the running configuration, %s is not valid: %s", source, exc)
            return
        if (node.name, node.scope) != (self.name, self.rt.scope):
            log.error("reload: name and scope cannot change without a restart of the daemon; ignoring %s", source)
            return
        nodereload.apply(self.rt.node, node)  # the log section; names what needs a daemon restart
        self.rt.node = node
        self.rt.pg_conf = dataclasses.replace(self.rt.pg_conf, parameters=node.postgresql.parameters,
                                              pg_hba=node.postgresql.pg_hba)
        self.view.tags = self.rt.member_tags
        log.info("reload: local configuration re-read from %s", source)
