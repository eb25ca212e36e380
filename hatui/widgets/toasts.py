"""Toast texts: one sentence each, never a raw reply body (a JSON config dump is not a message)."""

from __future__ import annotations

import json


def rest_result(what: str, status: int, body: str | None) -> str:
    """The toast for a REST call's answer: `Resume: accepted (HTTP 200).`, or the server's own
    one-line reason when it gave one in words (a refusal), never a JSON body."""
    text = (body or "").strip()
    words = ""
    if text and text[0] not in "{[":
        words = text.splitlines()[0].strip().rstrip(".")
    else:
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            words = data["message"].strip().rstrip(".")
    if len(words) > 140:
        words = words[:139] + "…"
    title = what[:1].upper() + what[1:]
    if 200 <= status < 300:
        return f"{title}: accepted (HTTP {status})." + (f" {words}." if words and status != 200 else "")
    return f"{title} refused (HTTP {status})" + (f": {words}." if words else ".")
