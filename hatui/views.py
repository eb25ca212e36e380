"""Text views of a cluster, shared by the CLI and the console.

`hatui list` must print exactly what `patronictl list` (4.1) prints for the same etcd keys, so
scripts and eyes trained on Patroni keep working. The rules, from patronictl's `output_members`
and `cluster_as_json` (read for facts, not copied):

* columns Cluster, Member, Host, Role, State, TL, Receive LSN, Receive Lag, Replay LSN, Replay Lag;
  then Pending restart, Pending restart reason, Scheduled restart, Tags, each only with `-e` or
  when some member has a value;
* Host is `host`, or `host:port` for everyone when some port is not 5432 or two members share a host;
* the leader's LSN/lag cells are blank; a replica's lag is the cluster position (status optime or
  the leader's own report) minus its LSN, never negative, in MB rounded half to even; an unknown
  LSN prints as `unknown` and its lag blank; members of Patroni < 4.1 publish only xlog_location,
  which fills the Receive columns of a streaming replica and the Replay columns otherwise;
* pretty: the Cluster column goes into the title, written over the top border from its second
  character (` Cluster: batman (7712193093952314556) `); both lag columns are titled `Lag`; TL,
  LSN and Lag right-aligned; when a cell has several lines, rules separate every row;
* json/yaml: one object per member, keys = column names, empty cells left out; yaml keys sorted.

hatui's addition, only with `lag_detail`: lag in bytes and the replay delay in time.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from .cluster import Cluster, Member, format_lsn
from .sync_hint import leaderless_hint

BASE_COLUMNS = ["Cluster", "Member", "Host", "Role", "State", "TL",
                "Receive LSN", "Receive Lag", "Replay LSN", "Replay Lag"]
EXTRA_COLUMNS = ["Pending restart", "Pending restart reason", "Scheduled restart", "Tags"]
DETAIL_COLUMNS = ["Receive Bytes", "Replay Bytes", "Replay Delay"]
HISTORY_COLUMNS = ["TL", "LSN", "Reason", "Timestamp", "New Leader"]
RIGHT_ALIGNED = {"Group", "TL", "Receive LSN", "Replay LSN", "Lag", "Receive Lag", "Replay Lag",
                 *DETAIL_COLUMNS}
MB = 1024 * 1024


# --- small helpers --------------------------------------------------------------------------
def yaml_text(data: Any, flow: bool = False) -> str:
    """YAML the way patronictl prints it: block style with sorted keys (config.dump_yaml, shared
    with show-config), or one flow-style line (member tags in tsv and topology)."""
    if not flow:
        if isinstance(data, (list, dict)) and not data:
            return "[]\n" if isinstance(data, list) else "{}\n"  # config.dump_yaml drops empty top-level values
        from .config import dump_yaml

        return dump_yaml(data)
    import io

    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = True
    y.allow_unicode = True
    y.width = 200
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def format_pg_version(version: int) -> str:
    """150018 -> '15.18', 90624 -> '9.6.24' (PostgreSQL's server_version_num)."""
    if version < 100000:
        return f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    return f"{version // 10000}.{version % 100}"


def format_duration(seconds: float) -> str:
    if seconds < 0:
        seconds = 0.0
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def cluster_title(cluster: Cluster, name: str | None = None) -> str:
    init = {None: "uninitialized", "": "initializing"}.get(cluster.initialize, cluster.initialize)
    return f" Cluster: {name or cluster.scope} ({init}) "


def service_info(cluster: Cluster) -> list[str]:
    """The lines patronictl prints under the table (without their leading space)."""
    lines = []
    if cluster.is_paused:
        lines.append("Maintenance mode: on")
    failover = cluster.failover
    if failover is not None and failover.scheduled_at is not None:
        info = "Switchover scheduled at: " + failover.scheduled_at.isoformat()
        if failover.leader:
            info += "\n{0:>24}: {1}".format("from", failover.leader)
        if failover.candidate:
            info += "\n{0:>24}: {1}".format("to", failover.candidate)
        lines.append(info)
    hint = leaderless_hint(cluster)
    if hint:
        lines.append(hint)
    return lines


# --- member rows ----------------------------------------------------------------------------
def _append_port(members: Sequence[Member]) -> bool:
    with_host = [m for m in members if m.host]
    return any(m.port != 5432 for m in with_host) or len({m.host for m in with_host}) < len(with_host)


def _restart_reason(member: Member, hide_long: bool) -> str:
    lines = []
    for param, values in member.pending_restart_reason.items():
        values = values if isinstance(values, dict) else {}
        text = f"{param}: {values.get('old_value', '')}->{values.get('new_value', '')}"
        if hide_long and len(text) > 50:
            text = f"{param}: [hidden - too long]"
        lines.append(text)
    return "\n".join(lines)


def _scheduled_restart(member: Member) -> str:
    sched = member.scheduled_restart
    if not sched:
        return ""
    value = str(sched.get("schedule", ""))
    if "postgres_version" in sched:
        value += f" if version < {sched['postgres_version']}"
    return value


def _lsn_and_lag(cluster: Cluster, member: Member) -> dict[str, Any]:
    """Receive/replay LSN text and lag bytes of a non-leader, with patronictl's fallbacks."""
    out: dict[str, Any] = {}
    for kind, lsn in (("receive", member.receive_lsn), ("replay", member.replay_lsn), ("", member.xlog_location)):
        if not lsn:
            out[kind] = ("unknown", None)
        else:
            # patronictl counts an unknown cluster position as 0, so the lag shows as 0 then.
            out[kind] = (format_lsn(lsn), cluster.lag_behind(lsn) or 0)
    if out["receive"][0] == "unknown" and out["replay"][0] == "unknown" and out[""][0] != "unknown":
        # Patroni < 4.1 publishes only xlog_location (max of receive and replay).
        target = "receive" if cluster.display_state(member) == "streaming" else "replay"
        out[target] = out[""]
    return out


def _replay_delay(status: Mapping[str, Any] | None, replay_bytes: int | None, now: datetime) -> str:
    if replay_bytes == 0:
        return "0.0s"
    if not status:
        return ""
    xlog = status.get("xlog") if isinstance(status.get("xlog"), dict) else {}
    ts = xlog.get("replayed_timestamp")
    if not isinstance(ts, str) or not ts:
        return ""
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    text = format_duration((now - when).total_seconds())
    return text + " (paused)" if xlog.get("paused") else text


def _topology_order(cluster: Cluster) -> list[tuple[Member, int]]:
    """Leader first, each replica under the member named in its `replicatefrom` tag, with depth."""
    members = list(cluster.members)
    leader = next((m for m in members if cluster.display_role(m).endswith("Leader")), None)
    replica_names = {m.name for m in members if m is not leader}
    children: dict[str | None, list[Member]] = {}
    root = leader.name if leader else None
    for m in members:
        if m is leader:
            continue
        parent = m.replicatefrom
        parent = parent if parent and parent != m.name and parent in replica_names else root
        children.setdefault(parent, []).append(m)
    out: list[tuple[Member, int]] = []
    seen: set[str] = set()

    def walk(name: str | None, level: int) -> None:
        for child in children.get(name, []):
            if child.name in seen:
                continue
            seen.add(child.name)
            out.append((child, level))
            walk(child.name, level + 1)

    if leader is not None:
        out.append((leader, 0))
        seen.add(leader.name)
    walk(root, 1)
    # Members caught in a replicatefrom cycle would never be reached from the leader: show them anyway.
    out += [(m, 1) for m in members if m.name not in seen]
    return out


def member_rows(
    cluster: Cluster,
    extended: bool = False,
    fmt: str = "pretty",
    lag_detail: Mapping[str, Mapping[str, Any] | None] | None = None,
    now: datetime | None = None,
    name: str | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) as patronictl builds them, Cluster column first.

    Cells are plain values: ints for TL and lags (MB), '' for blanks, the tags dict as is (the
    renderers format it). fmt matters for two cells only: pretty/topology hide long restart
    reasons, and topology orders members as a tree with `+ ` prefixes.
    lag_detail (member name -> GET /patroni answer or None) adds the DETAIL_COLUMNS.
    """
    columns = list(BASE_COLUMNS)
    if lag_detail is not None:
        columns += DETAIL_COLUMNS
    with_host = [m for m in cluster.members if m.host]
    for col in EXTRA_COLUMNS:
        key = col.lower().replace(" ", "_")
        if extended or any(m.data.get(key) for m in with_host):
            columns.append(col)
    append_port = _append_port(cluster.members)
    hide_long = fmt in ("pretty", "topology")
    now = now or datetime.now(timezone.utc)
    order = _topology_order(cluster) if fmt == "topology" else [(m, 0) for m in cluster.members]

    rows = []
    for member, level in order:
        display_name = member.name if level == 0 else "  " * (level - 1) + "+ " + member.name
        host = member.host or ""
        if append_port and host:
            host = f"{host}:{member.port}"
        timeline = member.data.get("timeline", "")
        cells: dict[str, Any] = {
            "Cluster": name or cluster.scope,
            "Member": display_name,
            "Host": host,
            "Role": cluster.display_role(member),
            "State": cluster.display_state(member),
            "TL": timeline if timeline is not None else "",
            "Pending restart": "*" if member.pending_restart else "",
            "Pending restart reason": _restart_reason(member, hide_long),
            "Scheduled restart": _scheduled_restart(member),
            "Tags": member.tags or "",
        }
        receive_bytes = replay_bytes = None
        if member.name != cluster.leader_name:
            lsns = _lsn_and_lag(cluster, member)
            (receive_lsn, receive_bytes), (replay_lsn, replay_bytes) = lsns["receive"], lsns["replay"]
            cells.update({
                "Receive LSN": receive_lsn,
                "Receive Lag": "" if receive_bytes is None else round(receive_bytes / MB),
                "Replay LSN": replay_lsn,
                "Replay Lag": "" if replay_bytes is None else round(replay_bytes / MB),
            })
            if lag_detail is not None:
                cells.update({
                    "Receive Bytes": "" if receive_bytes is None else receive_bytes,
                    "Replay Bytes": "" if replay_bytes is None else replay_bytes,
                    "Replay Delay": _replay_delay(lag_detail.get(member.name), replay_bytes, now),
                })
        rows.append([cells.get(c, "") for c in columns])
    return columns, rows


# --- generic renderers ----------------------------------------------------------------------
def render_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "",
                 align: Mapping[str, str] | None = None) -> str:
    """A table in prettytable's default style, as patronictl prints it (no trailing newline).

    align maps a column title to 'l' (default) or 'r'; the header follows its column's alignment.
    title, when given, is written over the top border starting at its second character.
    """
    align = align or {}
    split_rows = [[str(cell).split("\n") for cell in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in split_rows:
        for i, lines in enumerate(row):
            widths[i] = max(widths[i], max(len(line) for line in lines))
    hrule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Sequence[str]) -> str:
        cells = []
        for col, value, width in zip(columns, values, widths):
            cells.append(value.rjust(width) if align.get(col) == "r" else value.ljust(width))
        return "| " + " | ".join(cells) + " |"

    top = hrule
    if title:
        head = title[: len(hrule) - 2]
        top = hrule[0] + head + hrule[1 + len(head):]
    out = [top, line(list(columns)), hrule]
    multiline = any(len(lines) > 1 for row in split_rows for lines in row)
    for n, row in enumerate(split_rows):
        height = max((len(lines) for lines in row), default=1)
        for k in range(height):
            out.append(line([lines[k] if k < len(lines) else "" for lines in row]))
        if multiline and n < len(split_rows) - 1:
            out.append(hrule)
    out.append(hrule)
    return "\n".join(out)


def render_tsv(columns: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str = "\t") -> str:
    return "\n".join(delimiter.join(map(str, r)) for r in [list(columns), *rows])


def _elements(columns: Sequence[str], rows: Iterable[Sequence[Any]], omit_empty: bool) -> list[dict]:
    return [{k: v for k, v in zip(columns, r) if not omit_empty or str(v)} for r in rows]


def render_json(columns: Sequence[str], rows: Iterable[Sequence[Any]], omit_empty: bool = True) -> str:
    return json.dumps(_elements(columns, rows, omit_empty))


def render_yaml(columns: Sequence[str], rows: Iterable[Sequence[Any]], omit_empty: bool = True) -> str:
    # patronictl echoes the dump as is, newline included: its output ends with an empty line.
    return yaml_text(_elements(columns, rows, omit_empty))


# --- cluster renderers ----------------------------------------------------------------------
def _format_tags(columns: list[str], rows: list[list[Any]], flow: bool) -> None:
    if "Tags" not in columns:
        return
    i = columns.index("Tags")
    for row in rows:
        if row[i]:
            row[i] = yaml_text(row[i], flow=flow).strip()


def render_pretty(cluster: Cluster, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                  name: str | None = None, fmt: str = "pretty") -> str:
    """The pretty (or topology) table of member_rows() output, title included, footer excluded."""
    cols = list(columns)
    body = [list(r) for r in rows]
    _format_tags(cols, body, flow=fmt != "pretty")
    if cols and cols[0] == "Cluster":
        cols = cols[1:]
        body = [r[1:] for r in body]
    cols = ["Lag" if c in ("Receive Lag", "Replay Lag") else c for c in cols]
    align = {c: "r" for c in cols if c in RIGHT_ALIGNED}
    return render_table(cols, body, cluster_title(cluster, name), align)


def render_members(
    cluster: Cluster,
    fmt: str = "pretty",
    extended: bool = False,
    lag_detail: Mapping[str, Mapping[str, Any] | None] | None = None,
    now: datetime | None = None,
    name: str | None = None,
) -> str:
    """Everything `hatui list -f <fmt>` prints for one cluster (no trailing newline)."""
    if fmt == "yml":
        fmt = "yaml"
    columns, rows = member_rows(cluster, extended, fmt, lag_detail, now, name)
    if fmt == "json":
        return render_json(columns, rows)
    if fmt == "yaml":
        return render_yaml(columns, rows)
    if fmt == "tsv":
        _format_tags(columns, rows, flow=True)
        return render_tsv(columns, rows)
    text = render_pretty(cluster, columns, rows, name, fmt)
    info = service_info(cluster)
    if info:
        text += "\n " + "\n ".join(info)
    if extended:
        from .slotview import slot_rows  # the leader's /status: slot positions and their lag

        # Type first: a row must not start with a member name, as the member rows above do.
        slots = [(k, n, o, p, "" if lag is None else lag) for n, k, o, p, lag in slot_rows(cluster)]
        if slots:
            text += "\n" + render_table(["Type", "Slot", "For", "Position", "Lag in bytes"], slots,
                                         " Replication slots ", {"Lag in bytes": "r"})
    return text


def render_topology(cluster: Cluster, extended: bool = False, name: str | None = None) -> str:
    return render_members(cluster, "topology", extended, name=name)


def history_rows(cluster: Cluster) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for e in cluster.history.entries if cluster.history else ():
        rows.append([e.timeline, e.lsn, e.reason, e.timestamp, e.new_leader])
    return list(HISTORY_COLUMNS), rows


def render_history(cluster: Cluster, fmt: str = "pretty") -> str:
    columns, rows = history_rows(cluster)
    if fmt == "json":
        return render_json(columns, rows, omit_empty=False)
    if fmt in ("yaml", "yml"):
        return render_yaml(columns, rows, omit_empty=False)
    if fmt == "tsv":
        return render_tsv(columns, rows)
    return render_table(columns, rows, align={"TL": "r", "LSN": "r"})


def render_rows(columns: Sequence[str] | None, rows: Sequence[Sequence[Any]], fmt: str = "tsv",
                delimiter: str = "\t") -> str:
    """Query results and other plain tables: tsv (header first), pretty, json or yaml."""
    cols = list(columns or [])
    if fmt == "json":
        return render_json(cols, rows, omit_empty=False)
    if fmt in ("yaml", "yml"):
        return render_yaml(cols, rows, omit_empty=False)
    if fmt == "pretty":
        return render_table(cols or [f"column{i + 1}" for i in range(len(rows[0]) if rows else 0)], rows)
    lines = ([delimiter.join(cols)] if cols else []) + [delimiter.join(map(str, r)) for r in rows]
    return "\n".join(lines)
