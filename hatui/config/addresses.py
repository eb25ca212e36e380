"""Addresses in the configuration: host:port splitting (IPv6, URLs, lists, default ports), the reachable
host for a wildcard listen address, and the DCS namespace's normal form."""

from __future__ import annotations

from .defaults import DEFAULT_NAMESPACE


def normalize_namespace(ns: str | None) -> str:
    """'service', '/service/', None -> '/service' (leading slash, no trailing slash)."""
    parts = [p for p in (ns if isinstance(ns, str) else "").split("/") if p]
    return "/" + "/".join(parts) if parts else DEFAULT_NAMESPACE


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """'h:5432', '[::1]:5432', 'http://h:2379/', '*:5432', 'a,b:5432', ':8008', 'h' -> (host, port).

    Raises ValueError with a short reason when the port is missing (and no default) or not a port.
    """
    t = text.strip()
    if "://" in t:
        t = t.split("://", 1)[1]
    t = t.split("/", 1)[0]
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep:
            raise ValueError("has an unclosed [ around the IPv6 address")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError("has text after the IPv6 address")
    elif t.count(":") > 1 and "," not in t:  # a bare IPv6 address without port
        host, port_text = t, ""
    else:
        host, sep, port_text = t.rpartition(":")
        if not sep:
            host, port_text = t, ""
    if not port_text:
        if default_port is None:
            raise ValueError("needs a port (host:port)")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"has an invalid port {port_text!r} (must be 1-65535)")
    return host, int(port_text)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


_WILDCARDS = ("", "*", "0.0.0.0", "::")


def _reachable(host: str) -> str:
    """A host other nodes can dial, from a listen host (first of a list; loopback for a wildcard)."""
    first = host.split(",")[0].strip()
    return "127.0.0.1" if first in _WILDCARDS else first
