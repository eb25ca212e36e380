"""What every `hatui` verb shares: the context object, errors, cluster and member selection.

Kept free of heavy imports (no grpc, no textual, no psycopg, no YAML parser) so `hatui list`
starts in well under 0.3 s.
"""

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import click

from ..cluster import PRIMARY_ROLES, Cluster, Member
from .ctlconfig import CtlConfig, discover

if TYPE_CHECKING:
    from ..api_client import ApiClient
    from ..etcd.store import ClusterStore
    from ..etcd.kv import EtcdHttp

ROLE_CHOICES = ["leader", "primary", "standby-leader", "replica", "standby", "any", "master"]


class CtlError(click.ClickException):
    """A failure the operator can act on: printed as one `Error: ...` line, exit status 1."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Ctl:
    """The CLI's context object (ctx.obj): configuration, etcd and REST clients, created on demand.

    Nothing is read or connected until a verb needs it, so `hatui demo` or `hatui daemon` never
    trip over a broken patronictl.yaml, and `hatui --help` costs nothing.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.debug = bool(options.get("debug"))
        self.read_only = bool(options.get("read_only"))
        self._cfg: CtlConfig | None = None
        self._etcd: EtcdHttp | None = None
        self._api: ApiClient | None = None

    @property
    def cfg(self) -> CtlConfig:
        if self._cfg is None:
            from .ctlconfig import ConfigError

            o = self.options
            try:
                self._cfg = discover(o.get("config_file"), o.get("etcd") or (), o.get("dcs_url"),
                                     o.get("namespace"), bool(o.get("insecure")))
            except ConfigError as exc:
                raise CtlError(str(exc)) from exc
        return self._cfg

    def etcd_is_default(self) -> bool:
        """True when no endpoint was configured anywhere (the error message then says how to)."""
        return self._cfg is not None and self._cfg.etcd_source == "default"

    @property
    def namespace(self) -> str:
        from ..etcd.store import normalize_namespace

        return normalize_namespace(self.cfg.namespace)

    @property
    def etcd(self) -> EtcdHttp:
        if self._etcd is None:
            from ..etcd.kv import EtcdHttp

            c = self.cfg
            self._etcd = EtcdHttp(c.etcd_hosts, timeout=float(self.options.get("etcd_timeout") or 3.0),
                                  protocol=c.etcd_protocol, username=c.etcd_username, password=c.etcd_password,
                                  ca_cert=c.etcd_cacert, cert=c.etcd_cert, key=c.etcd_key)
        return self._etcd

    @property
    def api(self) -> ApiClient:
        if self._api is None:
            from ..api_client import ApiClient

            c = self.cfg
            self._api = ApiClient(c.rest_auth, cafile=c.rest_cafile, certfile=c.rest_certfile,
                                  keyfile=c.rest_keyfile, insecure=c.insecure)
        return self._api

    def store(self, scope: str) -> ClusterStore:
        from ..etcd.store import ClusterStore

        return ClusterStore(self.etcd, self.namespace, scope)

    def read(self, scope: str) -> Cluster:
        return self.etcd.read_cluster(self.namespace, scope)

    def close(self) -> None:
        if self._etcd is not None:
            self._etcd.close()

    # --- cluster name resolution -------------------------------------------------------------
    def resolve(self, name: str | None) -> tuple[str, Cluster]:
        """The cluster a verb works on: the one named, else `scope` from the config, else the
        only cluster under the namespace."""
        if name:
            return name, self.read(name)
        if self.cfg.scope:
            return self.cfg.scope, self.read(self.cfg.scope)
        clusters = self.etcd.read_namespace(self.namespace)
        if len(clusters) == 1:
            scope, cluster = next(iter(clusters.items()))
            return scope, cluster
        if not clusters:
            raise CtlError(f"No cluster found under {self.namespace} on etcd {self.cfg.etcd_text}; "
                           "name one or set `scope` in the config file")
        raise CtlError(f"Several clusters under {self.namespace}: {', '.join(sorted(clusters))}; "
                       "name the one you mean")


def refuse_if_unauthorized(ctl: Ctl, member_name: str, status: int, text: str) -> None:
    """Stop at a 401/403: the same credentials would be refused by every member, so one clear line
    saying where they come from beats a "Failed:" line per member."""
    if status not in (401, 403):
        return
    said = (text or "").strip().splitlines()
    reason = f"HTTP {status} ({said[0] if said else 'refused'})"
    if status == 403:
        fix = "this client is not allowed (restapi.allowlist or a client certificate on the member)"
    else:
        cfg = ctl.cfg
        where = f" in {cfg.config_file}" if cfg.config_file else " in the config file (-c FILE)"
        fix = (f"wrong REST API credentials: check ctl.authentication (or restapi.authentication){where}"
               if cfg.rest_auth else
               f"no REST API credentials configured: set ctl.authentication username and password{where}")
    raise CtlError(f"the REST API of member {member_name} refused the request: {reason}; {fix}")


def get_ctl(ctx: click.Context | None = None) -> Ctl:
    ctx = ctx or click.get_current_context()
    obj = ctx.find_object(Ctl)
    if obj is None:  # a command invoked on its own (tests): build the context from defaults
        obj = Ctl({})
        ctx.find_root().obj = obj
    return obj


# --- small shared helpers -------------------------------------------------------------------
def timestamp(precision: int = 6) -> str:
    """patronictl's timestamp: 'YYYY-mm-dd HH:MM:SS.fffff' (precision 6) or to the second (0)."""
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[: precision - 7]


def next_hour_example() -> str:
    return (datetime.datetime.now() + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")


def parse_scheduled(scheduled: str | None) -> datetime.datetime | None:
    """None/''/'now' -> None (immediately); an ISO 8601 time; no zone means the local one."""
    if scheduled is None or (scheduled or "now").strip() == "now":
        return None
    text = scheduled.strip().replace("Z", "+00:00")
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CtlError(f"Unable to parse scheduled timestamp ({scheduled}). "
                       "It should be in an unambiguous format (e.g. ISO 8601)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.datetime.now().astimezone().tzinfo)
    return when


def is_standby_cluster(cluster: Cluster) -> bool:
    sc = cluster.config.get("standby_cluster") if cluster.config else None
    return isinstance(sc, dict) and bool(sc.get("host") or sc.get("port") or sc.get("restore_command"))


def members_with_role(cluster: Cluster, role: str) -> list[Member]:
    """patronictl's role filter: leader/primary/standby-leader pick the lock holder, replica/standby
    the others, any everybody."""
    role = "primary" if role == "master" else role
    if role in ("leader", "primary", "standby-leader"):
        leader = cluster.leader_member
        if leader is None:
            return []
        if role == "primary" and leader.role == "standby_leader":
            return []
        if role == "standby-leader" and leader.role in PRIMARY_ROLES:
            return []
        return [leader]
    if role in ("replica", "standby"):
        return [m for m in cluster.members if m.name != cluster.leader_name]
    return list(cluster.members)


def check_members_exist(cluster: Cluster, scope: str, names: Iterable[str]) -> None:
    known = set(cluster.member_names)
    for name in names:
        if name not in known:
            raise CtlError(f"{name} is not a member of cluster {scope}")


def members_leader_first(cluster: Cluster) -> Iterator[Member]:
    """Members with a REST API address, the leader first (pause, resume and flush go there)."""
    leader = cluster.leader_member
    if leader is not None and leader.api_url:
        yield leader
    for m in cluster.members:
        if m.api_url and (leader is None or m.name != leader.name):
            yield m


def probe_members(ctl: Ctl, members: Iterable[Member], timeout: float = 2.0) -> dict[str, dict]:
    """GET /patroni of each member in parallel: name -> answer, {} when it did not answer."""
    from ..api_client import ApiError

    members = [m for m in members if m.api_url]
    if not members:
        return {}

    def one(m: Member) -> tuple[str, dict]:
        try:
            return m.name, ctl.api.get_patroni(m, timeout=timeout)
        except ApiError:
            return m.name, {}

    with ThreadPoolExecutor(max_workers=min(8, len(members))) as pool:
        return dict(pool.map(one, members))


def echo_members(cluster: Cluster, scope: str, fmt: str = "pretty", extended: bool = False) -> None:
    from ..views import render_members

    click.echo(render_members(cluster, fmt, extended, name=scope))


def select_members(ctl: Ctl, cluster: Cluster, scope: str, names: Iterable[str], role: str, force: bool,
                   action: str, ask_confirmation: bool = True) -> list[Member]:
    """patronictl's member selection for restart/reload/reinit/flush, with unknown names refused first."""
    names = list(names)
    check_members_exist(cluster, scope, names)
    members = members_with_role(cluster, role)
    candidates = [m.name for m in members]
    if not names and not candidates:
        raise CtlError(f"{scope} cluster doesn't have any members"
                       + ("" if role in ("any", None) else f" with role {role}"))
    echo_members(cluster, scope)
    if names:
        selected = [n for n in candidates if n in names]
        if not selected:
            raise CtlError(f"No {role} among provided members")
    elif action != "reinitialize":
        selected = candidates
    else:
        selected = []
    if not selected and not force:
        answer = click.prompt(f"Which member do you want to {action} [{', '.join(candidates)}]?",
                              type=str, default="")
        selected = [answer]
    if not selected:
        raise CtlError(f"No member given to {action}")
    for name in selected:
        if name not in candidates:
            raise CtlError(f"{name} is not a member of cluster {scope}"
                           if cluster.member(name) is None else f"{name} is not a {role} of cluster {scope}")
    chosen = [m for m in members if m.name in selected]
    if ask_confirmation:
        confirm_members_action(chosen, force, action)
    return chosen


def confirm_members_action(members: list[Member], force: bool, action: str,
                           scheduled_at: datetime.datetime | None = None, pending: bool = False) -> None:
    if force:
        return
    names = ", ".join(m.name for m in members)
    if scheduled_at:
        if pending:
            question = ("The nodes needing a restart will be identified at the scheduled time, and might be "
                        "different from the ones showing pending restart right now. Is this fine?")
        else:
            question = f"Are you sure you want to schedule {action} of members {names} at {scheduled_at.isoformat()}?"
        if not click.confirm(question):
            raise CtlError(f"Aborted scheduled {action}")
    elif action == "reinitialize":
        # A reinit deletes the member's data directory: a reflexive "y" is not enough, the
        # operator types the names (as `remove` asks for the cluster name). --force skips it.
        typed = click.prompt(f"Reinitialize deletes the data directory of {names}. "
                             "Type the member name(s) to confirm", type=str, default="", show_default=False)
        if sorted(n.strip() for n in typed.split(",") if n.strip()) != sorted(m.name for m in members):
            raise CtlError(f"Aborted {action}: the names typed do not match {names}")
    elif not click.confirm(f"Are you sure you want to {action} members {names}?"):
        raise CtlError(f"Aborted {action}")
