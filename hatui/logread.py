"""Reading the daemons' log lines back, plain or JSON (log.type: json), for people.

The console's log panes show a JSON line the way the plain format would have written it
("<asctime> <LEVEL>: <message>"), so a pane reads the same whatever the node's log type is.
"""

from __future__ import annotations

import json
from typing import Any

# Key names a JSON log line may use for each part (ours and common log-shipper renames).
_TIME = ("asctime", "@timestamp", "timestamp", "time", "ts")
_LEVEL = ("levelname", "level", "severity")
_MESSAGE = ("message", "msg")


def parse_json_line(line: str) -> dict[str, Any] | None:
    """The object of a JSON log line, or None for any other line."""
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def readable(line: str) -> str:
    """A JSON log line as a plain one; any other line unchanged."""
    obj = parse_json_line(line)
    if obj is None:
        return line
    message = _first(obj, _MESSAGE)
    if message is None:
        return line
    when, level = _first(obj, _TIME), _first(obj, _LEVEL)
    head = " ".join(str(x) for x in (when, level) if x is not None)
    text = f"{head}: {message}" if level is not None else f"{head} {message}".strip()
    if obj.get("exc_info"):
        text += "\n" + str(obj["exc_info"])
    return text
