"""What one node is, derived from its YAML: the glue between config.py and the daemon.

The loop asks this object for everything that depends on the node's configuration (addresses,
credentials, the effective PostgreSQL parameters for a given dynamic config), so that loop.py
reads as HA logic and not as dictionary plumbing. It reads the typed node model (`NodeConfig`)
only, never the raw YAML mapping: one parse, one set of defaults. A credential the file does
not give stays absent (no password: libpq then uses .pgpass, trust or a certificate, as with
Patroni), never a made-up default.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import config as cfg
from ..config import BootstrapConfig, Credentials, DynamicConfig, NodeConfig, PostgresqlConfig
from .ha import NodeSettings
from .postgres import LIBPQ_OPTIONS, Postgres, StandbyConfig, make_conninfo
from .recovery import replica_params
from .replica_methods import CloneSource, create_replica, usable_methods
from .standby_cluster import config_of as standby_cluster_config


class NodeRuntime:
    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        # The postgresql section the daemon started with; a reload (dynconfig.py) takes only its
        # parameters and pg_hba from the file again, the rest needs a restart of the daemon.
        self.pg_conf: PostgresqlConfig = node.postgresql
        self.boot_conf: BootstrapConfig = node.bootstrap  # likewise: a reload keeps the first one
        pgc = node.postgresql
        su, rep = pgc.superuser, pgc.replication
        rew = pgc.authentication.get("rewind")
        self.superuser = (su.username or "postgres", su.password)
        self.replication = (rep.username or "replicator", rep.password)
        self.rewind_user = (rew.username, rew.password) if rew is not None and rew.username else None
        # libpq options (sslmode, sslcert, sslkey, sslrootcert, channel_binding...) of each role, passed on
        # to every connection made as that role, as Patroni does.
        self.replication_options = _libpq_options(rep)
        self.superuser_options = _libpq_options(su)
        self.rewind_options = _libpq_options(rew) if self.rewind_user else self.superuser_options
        # synchronous_standby_names chosen by the leader's sync management (sync.py); None: not ours.
        self.sync_standby_names: str | None = None
        listen_host, port = node.pg_listen
        connect_host, _ = node.pg_connect_address
        self.postgres = Postgres(
            name=node.name,
            data_dir=pgc.data_dir or f"data/{node.name}",
            bin_dir=pgc.bin_dir or None,
            listen_host=listen_host if listen_host not in ("", "*") else "127.0.0.1",
            port=port,
            connect_host=connect_host,
            superuser=self.superuser,
            replication=self.replication,
            rewind=self.rewind_user,
            os_user=pgc.os_user,
            socket_dir=pgc.unix_socket_directory or None,
            database=pgc.database,
        )

    # identity --------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.node.name

    @property
    def scope(self) -> str:
        return self.node.scope

    @property
    def namespace(self) -> str:
        return self.node.namespace

    @property
    def etcd_hosts(self) -> list[str]:
        return self.node.etcd_hosts

    @property
    def etcd_auth(self) -> dict:
        """Credentials and TLS settings of the etcd3 section, as EtcdGateway keywords."""
        e = self.node.etcd
        out: dict[str, Any] = {"protocol": e.protocol}
        if e.username:
            out["username"], out["password"] = e.username, e.password or ""
        for key, value in (("ca_cert", e.cacert), ("cert", e.cert), ("key", e.key)):
            if value:
                out[key] = value
        return out

    @property
    def etcd_timeout(self) -> float:
        # One etcd call may take a third of retry_timeout, so the loop can retry within it.
        retry = self.initial_dynamic().retry_timeout
        return max(1.0, min(3.0, retry / 3))

    @property
    def conn_url(self) -> str:
        return self.node.conn_url

    @property
    def api_url(self) -> str:
        return self.node.api_url

    @property
    def member_tags(self) -> dict:
        return self.node.tags_for_member()

    def pg_flag(self, key: str, dynamic: DynamicConfig | None) -> bool:
        """A postgresql.* switch with Patroni's precedence: the node file, else the cluster
        configuration (bootstrap.dcs / edit-config), else off (Patroni's default)."""
        mine = getattr(self.pg_conf, key)
        if isinstance(mine, bool):
            return mine
        shared = (dynamic.data.get("postgresql") if dynamic is not None else None) or {}
        value = shared.get(key) if isinstance(shared, dict) else None
        return value if isinstance(value, bool) else False

    def settings(self, dynamic: DynamicConfig | None = None) -> NodeSettings:
        tags = self.node.tags
        prio = tags.failover_priority
        nofailover = tags.nofailover or (prio is not None and prio <= 0)
        return NodeSettings(
            name=self.name,
            nofailover=nofailover,
            failover_priority=prio if prio is not None else (0 if nofailover else 1),
            can_bootstrap=self.node.bootstrap.present,
            use_pg_rewind=self.pg_flag("use_pg_rewind", dynamic),
            remove_data_directory_on_rewind_failure=self.pg_flag("remove_data_directory_on_rewind_failure", dynamic),
            remove_data_directory_on_diverged_timelines=self.pg_flag("remove_data_directory_on_diverged_timelines",
                                                                     dynamic),
            replicatefrom=tags.replicatefrom,
            clone_without_leader=self.can_clone_without_leader(standby_cluster_config(dynamic)),
        )

    # dynamic configuration -------------------------------------------------------------------
    def bootstrap_dcs(self) -> dict:
        return dict(self.boot_conf.dcs)

    def bootstrap_dynamic(self) -> DynamicConfig:
        return DynamicConfig.from_dict(self.bootstrap_dcs())

    def initial_dynamic(self) -> DynamicConfig:
        return self.bootstrap_dynamic()

    def safe_dynamic(self, data: dict) -> tuple[DynamicConfig, list[str]]:
        # Only parameters the local PostgreSQL knows reach its configuration files.
        return cfg.safe_dynamic(data, self.postgres.parameter_names())

    @property
    def initdb_options(self) -> list:
        return list(self.boot_conf.initdb)

    def effective_parameters(self, dynamic: DynamicConfig) -> dict[str, Any]:
        """The GUCs for this node under `dynamic`: config.effective_parameters' rules (the one place
        that knows which GUCs only the cluster config may set), plus synchronous_standby_names,
        which the HA loop owns."""
        params: dict[str, Any] = dict(cfg.effective_parameters(dynamic, self.node))
        if self.sync_standby_names is not None:
            params["synchronous_standby_names"] = self.sync_standby_names
        if dynamic.use_slots and any(isinstance(s, dict) and s.get("type") == "logical" for s in dynamic.slots.values()):
            # A replica's copies of logical slots need the primary to keep the catalog rows they
            # decode (Patroni turns this on for the same reason).
            params["hot_standby_feedback"] = "on"
        return params

    def pg_ident(self, dynamic: DynamicConfig) -> list[str] | None:
        """postgresql.pg_ident: the node file's, else the cluster config's (Patroni's precedence)."""
        lines = self.pg_conf.pg_ident
        if not isinstance(lines, list):
            lines = dynamic.pg_ident
        return [str(x) for x in lines] if isinstance(lines, list) else None

    def pg_hba(self, dynamic: DynamicConfig) -> list[str] | None:
        # Every write_config() call site asks for pg_hba under the dynamic config in force; the
        # pg_ident lines it implies ride along on the Postgres object, written by the same call.
        self.postgres.pg_ident = self.pg_ident(dynamic)
        lines = self.pg_conf.pg_hba or (dynamic.data.get("postgresql") or {}).get("pg_hba") or \
            self.boot_conf.pg_hba
        if not lines:
            return None
        out = [str(x) for x in lines]
        # Local connections through our own socket must keep working for the daemon itself.
        if not any(line.split()[:1] == ["local"] for line in out if line.strip()):
            out.insert(0, "local all all trust")
        return out

    def standby_config(
        self, addr: tuple[str, int] | None, standby_cluster: dict | None = None, standby_leader: bool = False,
        dynamic: DynamicConfig | None = None,
    ) -> StandbyConfig:
        """How to follow addr; with no address, a standby with no upstream (read-only, waiting).
        Recovery settings come from postgresql.recovery_conf (the node file's, else the cluster
        config's, as Patroni merges them) and, in a standby cluster, from its section."""
        sc = standby_cluster or {}
        shared = (dynamic.data.get("postgresql") if dynamic is not None else None) or {}
        recovery_conf = self.pg_conf.recovery_conf
        if not isinstance(recovery_conf, dict) and isinstance(shared, dict):
            recovery_conf = shared.get("recovery_conf")
        params = tuple(replica_params(recovery_conf if isinstance(recovery_conf, dict) else None, sc,
                                      standby_leader).items())
        slot = str(sc["primary_slot_name"]) if standby_leader and sc.get("primary_slot_name") else None
        if addr is None:
            return dataclasses.replace(self.postgres.standby_config("", 0), recovery=params)
        standby = self.postgres.standby_config(addr[0], addr[1], slot)
        opts = dict(self.replication_options)
        return dataclasses.replace(standby, sslmode=opts.pop("sslmode", standby.sslmode),
                                   options=tuple(sorted(opts.items())), recovery=params)

    # operations ------------------------------------------------------------------------------
    def basebackup(self, addr: tuple[str, int]) -> None:
        self.postgres.basebackup(addr[0], addr[1], self.replication[0], self.replication[1], timeout=3600,
                                 options=self.replication_options)

    @property
    def replica_method_settings(self) -> dict[str, dict]:
        """Each method's section (postgresql.<method>), as Patroni reads it."""
        return {k: dict(v) for k, v in self.pg_conf.replica_method_settings.items()}

    def replica_methods(self, standby_cluster: dict | None = None) -> list[str]:
        """create_replica_methods: the standby cluster's list in a standby cluster, else the node's."""
        wanted = (standby_cluster or {}).get("create_replica_methods") if standby_cluster else \
            self.pg_conf.create_replica_methods
        return [str(m) for m in wanted] if isinstance(wanted, list) and wanted else ["basebackup"]

    def can_clone_without_leader(self, standby_cluster: dict | None = None) -> bool:
        return bool(usable_methods(self.replica_methods(standby_cluster), self.replica_method_settings, False))

    def create_replica(self, addr: tuple[str, int] | None, standby_cluster: dict | None = None) -> str:
        """Make the data directory a copy of addr (or, with None, from a no_leader method)."""
        source = CloneSource(addr[0], addr[1], self.replication[0], self.replication[1], self.postgres.database,
                             tuple(sorted((str(k), str(v)) for k, v in self.replication_options.items())))\
            if addr else None
        return create_replica(self.postgres, self.scope, self.replica_methods(standby_cluster),
                              self.replica_method_settings, self.pg_conf.basebackup, source)

    def rewind_conninfo(self, addr: tuple[str, int]) -> str:
        base = self.postgres.rewind_conninfo(addr[0], addr[1])
        extra = make_conninfo(**self.rewind_options)
        return f"{base} {extra}" if extra else base

    def checkpoint_remote(self, addr: tuple[str, int]) -> None:
        """CHECKPOINT on another node, so its pg_control shows its current timeline."""
        user, password = self.superuser
        from . import queries

        with queries.connect_other(self.superuser_options, host=addr[0], port=addr[1], user=user,
                                   password=password or None, dbname=self.postgres.database,
                                   connect_timeout=3, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def create_users(self) -> None:
        """After initdb: passwords and the replication/rewind roles the config names.

        `queries.setup_roles` is the one role set-up: the rewind role gets only the grants
        pg_rewind needs, never SUPERUSER.
        """
        from . import queries

        queries.setup_roles(self.postgres)


def _libpq_options(auth: Credentials | None) -> dict[str, str]:
    extra = auth.extra if auth is not None else {}
    return {k: str(v) for k, v in extra.items() if k in LIBPQ_OPTIONS and v is not None}

