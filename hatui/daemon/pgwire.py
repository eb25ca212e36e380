"""A small PostgreSQL client for the daemon's own local sessions: the subset of psycopg it uses.

Why: psycopg (with its bundled libpq, OpenSSL and every type adapter) is about 22 MB of the idle
daemon's 42 MB resident, for a handful of catalog queries per HA cycle on the local unix socket.
This module speaks the frontend/backend protocol (v3) directly: startup, trust / password / md5 /
SCRAM-SHA-256 authentication, the simple query protocol with client-side parameter quoting, and
text results converted by type OID (bool, integers, floats, numeric, timestamps; anything else is a
str). No TLS: it serves the local socket, and sessions to other nodes only when the server does not
offer TLS and no TLS option is set (`queries.connect_other` decides; psycopg, imported only then,
takes the others).

The API mirrors psycopg's where the daemon uses it (`connect(**kwargs)`, `Connection.execute`,
`Cursor.fetchone/fetchall/description`, `Error`, `sql.SQL/Identifier/Literal`), so queries.py reads
the same whichever is behind it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct
from collections.abc import Iterable, Sequence
from typing import Any


class Error(Exception):
    """Any failure: connecting, authenticating, or a statement the server refused."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class OperationalError(Error):
    pass


class InterfaceError(Error):
    pass


# ------------------------------------------------------------------------------------- quoting


def quote_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"'{value!r}'::float8"
    if isinstance(value, (list, tuple)):
        return quote_literal("{" + ",".join(_array_item(v) for v in value) + "}")
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if "\0" in text:
        raise Error("a string literal cannot contain NUL characters")
    # standard_conforming_strings is on (the default since 9.1): only quotes are doubled.
    return "'" + text.replace("'", "''") + "'"


def _array_item(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def interpolate(query: str, params: Sequence[Any] | None) -> str:
    """psycopg's %s placeholders filled with quoted literals (%% is a literal %)."""
    if params is None:
        return query
    out, args, i = [], iter(params), 0
    while True:
        j = query.find("%", i)
        if j < 0:
            out.append(query[i:])
            break
        out.append(query[i:j])
        kind = query[j + 1:j + 2]
        if kind == "%":
            out.append("%")
        elif kind == "s":
            try:
                out.append(quote_literal(next(args)))
            except StopIteration:
                raise Error("the query has more placeholders than parameters") from None
        else:
            raise Error(f"only %s placeholders are supported, not %{kind}")
        i = j + 2
    if next(args, _END) is not _END:
        raise Error("the query has fewer placeholders than parameters")
    return "".join(out)


_END = object()


class sql:  # psycopg's module name
    """psycopg.sql's composition classes, as far as the daemon uses them."""

    class Composable:
        def as_string(self, context: Any = None) -> str:
            raise NotImplementedError

        def __add__(self, other: sql.Composable) -> sql.Composed:
            return sql.Composed([self, other])

    class Composed(Composable):
        def __init__(self, parts: Iterable[sql.Composable]) -> None:
            self.parts = list(parts)

        def as_string(self, context: Any = None) -> str:
            return "".join(p.as_string(context) for p in self.parts)

    class SQL(Composable):
        def __init__(self, text: str) -> None:
            self.text = text

        def as_string(self, context: Any = None) -> str:
            return self.text

        def format(self, *args: Any) -> sql.Composed:
            pieces = self.text.split("{}")
            if len(pieces) - 1 != len(args):
                raise Error(f"{len(pieces) - 1} placeholders for {len(args)} arguments")
            parts: list[sql.Composable] = [sql.SQL(pieces[0])]
            for arg, piece in zip(args, pieces[1:], strict=True):
                parts.append(arg if isinstance(arg, sql.Composable) else sql.Literal(arg))
                parts.append(sql.SQL(piece))
            return sql.Composed(parts)

        def join(self, items: Iterable[sql.Composable]) -> sql.Composed:
            parts: list[sql.Composable] = []
            for i, item in enumerate(items):
                if i:
                    parts.append(self)
                parts.append(item)
            return sql.Composed(parts)

    class Identifier(Composable):
        def __init__(self, *names: str) -> None:
            self.names = names

        def as_string(self, context: Any = None) -> str:
            return ".".join(quote_ident(n) for n in self.names)

    class Literal(Composable):
        def __init__(self, value: Any) -> None:
            self.value = value

        def as_string(self, context: Any = None) -> str:
            return quote_literal(self.value)


# ------------------------------------------------------------------------------------- types


def _timestamp(text: str) -> Any:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text  # infinity, BC dates: kept as the server wrote them


def _numeric(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)


_CONVERT = {
    16: lambda t: t == "t",
    20: int, 21: int, 23: int, 26: int, 28: int,
    700: float, 701: float,
    1700: _numeric,
    1114: _timestamp, 1184: _timestamp,
}


# ------------------------------------------------------------------------------------- protocol


class Cursor:
    def __init__(self, description: list[tuple] | None, rows: list[tuple], status: str) -> None:
        self.description = description
        self._rows = rows
        self._pos = 0
        self.statusmessage = status
        self.rowcount = len(rows) if description is not None else -1

    def fetchone(self) -> tuple | None:
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchall(self) -> list[tuple]:
        rows, self._pos = self._rows[self._pos:], len(self._rows)
        return rows


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self.closed = False
        self.parameters: dict[str, str] = {}
        self.autocommit = True

    # -- context manager / lifecycle
    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._sock.sendall(b"X\x00\x00\x00\x04")
        except OSError:
            pass
        self._sock.close()

    # -- wire
    def _send(self, kind: bytes, payload: bytes) -> None:
        try:
            self._sock.sendall(kind + struct.pack("!I", len(payload) + 4) + payload)
        except OSError as exc:
            self.close()
            raise OperationalError(f"the connection was lost: {exc}") from None

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                chunk = self._sock.recv(max(65536, n - len(self._buf)))
            except OSError as exc:
                self.close()
                raise OperationalError(f"the connection was lost: {exc}") from None
            if not chunk:
                self.close()
                raise OperationalError("server closed the connection unexpectedly")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _message(self) -> tuple[bytes, bytes]:
        head = self._read(5)
        kind, length = head[:1], struct.unpack("!I", head[1:])[0]
        return kind, self._read(length - 4)

    @staticmethod
    def _error(body: bytes) -> Error:
        fields = {}
        for part in body.split(b"\0"):
            if part:
                fields[part[:1]] = part[1:].decode("utf-8", "replace")
        severity = fields.get(b"S", "ERROR")
        text = f"{severity}:  {fields.get(b'M', 'unknown error')}"
        if fields.get(b"D"):
            text += f"\nDETAIL:  {fields[b'D']}"
        return Error(text, fields.get(b"C"))

    # -- queries
    def execute(self, query: str | sql.Composable, params: Sequence[Any] | None = None) -> Cursor:
        if self.closed:
            raise OperationalError("the connection is closed")
        text = query.as_string(self) if isinstance(query, sql.Composable) else interpolate(query, params)
        self._send(b"Q", text.encode() + b"\0")
        description: list[tuple] | None = None
        converters: list[Any] = []
        rows: list[tuple] = []
        status, error = "", None
        while True:
            kind, body = self._message()
            if kind == b"T":
                description, converters, rows = [], [], []
                count = struct.unpack("!H", body[:2])[0]
                pos = 2
                for _ in range(count):
                    end = body.index(b"\0", pos)
                    name = body[pos:end].decode()
                    oid = struct.unpack("!I", body[end + 7:end + 11])[0]
                    description.append((name, oid))
                    converters.append(_CONVERT.get(oid))
                    pos = end + 19
            elif kind == b"D":
                count = struct.unpack("!H", body[:2])[0]
                pos, row = 2, []
                for i in range(count):
                    size = struct.unpack("!i", body[pos:pos + 4])[0]
                    pos += 4
                    if size < 0:
                        row.append(None)
                        continue
                    value: Any = body[pos:pos + size].decode("utf-8", "replace")
                    pos += size
                    convert = converters[i] if i < len(converters) else None
                    row.append(convert(value) if convert else value)
                rows.append(tuple(row))
            elif kind == b"C":
                status = body.rstrip(b"\0").decode()
            elif kind == b"E":
                error = self._error(body)
            elif kind == b"Z":
                break
            elif kind == b"S":
                self._parameter(body)
            # N (notice), I (empty query), A (notification): nothing to keep
        if error is not None:
            raise error
        return Cursor(description, rows, status)

    def _parameter(self, body: bytes) -> None:
        name, value = body.split(b"\0")[:2]
        self.parameters[name.decode()] = value.decode()

    # -- start-up
    def _startup(self, user: str, password: str | None, params: dict[str, str]) -> None:
        payload = struct.pack("!I", 196608) + b"".join(
            k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
        self._sock.sendall(struct.pack("!I", len(payload) + 4) + payload)
        scram: _Scram | None = None
        while True:
            kind, body = self._message()
            if kind == b"E":
                raise OperationalError(str(self._error(body)))
            if kind == b"R":
                code = struct.unpack("!I", body[:4])[0]
                if code == 0:
                    continue
                if password is None:
                    raise OperationalError("fe_sendauth: no password supplied")
                if code == 3:
                    self._send(b"p", password.encode() + b"\0")
                elif code == 5:
                    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                    self._send(b"p", b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0")
                elif code == 10:
                    mechanisms = body[4:].split(b"\0")
                    if b"SCRAM-SHA-256" not in mechanisms:
                        raise OperationalError("the server offers no SASL mechanism this client knows")
                    scram = _Scram(password)
                    first = scram.client_first()
                    self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
                elif code == 11 and scram is not None:
                    self._send(b"p", scram.client_final(body[4:]))
                elif code == 12 and scram is not None:
                    scram.verify(body[4:])
                else:
                    raise OperationalError(f"authentication method {code} is not supported by this client")
            elif kind == b"S":
                self._parameter(body)
            elif kind == b"Z":
                return
            # K (backend key), N (notice): nothing to keep


class _Scram:
    """SCRAM-SHA-256 (RFC 5802/7677) without channel binding, as libpq does over a plain socket."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = b""

    def client_first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first: bytes) -> bytes:
        attrs = dict(item.split("=", 1) for item in server_first.decode().split(","))
        if not attrs["r"].startswith(self.nonce):
            raise OperationalError("SCRAM: the server's nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored, message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_signature = hmac.new(server_key, message, "sha256").digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        attrs = dict(item.split("=", 1) for item in server_final.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.server_signature:
            raise OperationalError("SCRAM: the server's signature is wrong")


class TLSOffered(OperationalError):
    """The server would encrypt the session (`connect(..., refuse_tls_servers=True)`): use libpq."""


_SSL_REQUEST = struct.pack("!II", 8, 80877103)


def connect(host: str | None = None, port: int | str = 5432, user: str = "postgres", dbname: str | None = None,
            password: str | None = None, connect_timeout: float | None = None,
            application_name: str = "hatui", autocommit: bool = True, refuse_tls_servers: bool = False,
            **_ignored: Any) -> Connection:
    """A session, psycopg.connect's keywords; host is a unix socket dir when it starts with '/'.

    refuse_tls_servers: over TCP, first ask the server whether it speaks TLS (libpq's sslmode=prefer
    does the same) and raise TLSOffered if it does, so that the caller opens the session with libpq
    and it is encrypted as it would have been; a server that says no gets this plain session."""
    host = host or "/var/run/postgresql"
    timeout = float(connect_timeout) if connect_timeout else None
    where = f'socket "{host}/.s.PGSQL.{port}"' if host.startswith("/") else f'server at "{host}", port {port}'
    try:
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.settimeout(timeout)
            try:
                sock.connect(f"{host}/.s.PGSQL.{port}")
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as exc:
        raise OperationalError(f"connection to {where} failed: {exc.strerror or exc}") from None
    conn = Connection(sock)
    if refuse_tls_servers and not host.startswith("/"):
        try:
            sock.sendall(_SSL_REQUEST)
            answer = conn._read(1)
        except (OSError, Error) as exc:
            conn.close()
            raise OperationalError(f"connection to {where} failed: {exc}") from None
        if answer != b"N":
            conn.close()
            raise TLSOffered(f"the {where} offers TLS")
    try:
        conn._startup(user, password, {"user": user, "database": dbname or user,
                                        "application_name": application_name, "client_encoding": "UTF8",
                                        "DateStyle": "ISO"})
    except Error as exc:
        conn.close()
        raise OperationalError(f"connection to {where} failed: {exc}") from None
    except OSError as exc:
        conn.close()
        raise OperationalError(f"connection to {where} failed: {exc}") from None
    sock.settimeout(None)
    return conn
