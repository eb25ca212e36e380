"""A small client for a member's REST API (Patroni-compatible): the CLI's and the console's actions.

Every call returns the HTTP status and the body, whatever the status: the caller decides what a
409 or a 503 means for its verb. Only when no answer arrives at all (refused, timed out, TLS
failure) does it raise `ApiError`, whose message names the member and the URL.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from typing import Any, NamedTuple
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 5.0


class ApiError(Exception):
    """No HTTP answer from a member's REST API. `str()` is one line for people."""

    def __init__(self, message: str, member: str | None = None, url: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.member = member
        self.url = url
        # The message without the "member X: " prefix, for lines that already name the member.
        self.detail = detail or message


class ApiResponse(NamedTuple):
    status: int
    text: str

    def json(self) -> Any:
        """The body as JSON (ValueError if it is not)."""
        return json.loads(self.text)

    @property
    def ok(self) -> bool:
        return self.status < 400


def endpoint_url(api_url: str, endpoint: str) -> str:
    """`http://10.0.0.1:8008/patroni` + `switchover` -> `http://10.0.0.1:8008/switchover`.

    Members publish the URL of their /patroni page; every other endpoint lives at the same root.
    """
    parts = urlsplit(api_url)
    return f"{parts.scheme or 'http'}://{parts.netloc}/{endpoint.lstrip('/')}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message or exc} (use -k/--insecure to skip the check)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP answer: {type(exc).__name__} {exc}".strip()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class ApiClient:
    """Calls members' REST APIs with shared credentials and TLS settings."""

    def __init__(
        self,
        auth: tuple[str, str] | None = None,
        *,
        cafile: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        insecure: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.auth = auth
        self.cafile = cafile
        self.certfile = certfile
        self.keyfile = keyfile
        self.insecure = insecure
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context(cafile=self.cafile)
            if self.certfile:
                ctx.load_cert_chain(self.certfile, self.keyfile)
            if self.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        return self._ssl

    def request(
        self,
        target: Any,
        method: str = "GET",
        endpoint: str = "patroni",
        data: Any = None,
        timeout: float | None = None,
    ) -> ApiResponse:
        """One request to a member (anything with .name and .api_url) or to an api_url string."""
        name = getattr(target, "name", None)
        api_url = getattr(target, "api_url", target)
        if not isinstance(api_url, str) or not api_url:
            raise ApiError(f"member {name} has no REST API address (api_url)", name)
        url = endpoint_url(api_url, endpoint)
        who = f"member {name}" if name else "REST API"
        method = method.upper()
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise ApiError(f"{who}: bad URL {url}: {exc}", name, url) from exc
        headers = {"Accept": "application/json, text/plain"}
        body: bytes | None = None
        if data is not None:
            body = json.dumps(data, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        elif method in ("POST", "PATCH", "PUT", "DELETE"):
            body = b""  # Patroni answers 411 without a Content-Length on unsafe methods.
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        wait = self.timeout if timeout is None else timeout
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "", port, timeout=wait, context=self._ssl_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", port, timeout=wait)
        try:
            conn.request(method, parts.path or "/", body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            return ApiResponse(resp.status, text)
        except (OSError, http.client.HTTPException) as exc:
            detail = f"{method} {url} failed: {_describe(exc)}"
            raise ApiError(f"{who}: {detail}", name, url, detail) from exc
        finally:
            conn.close()

    # --- the calls the CLI and the console make ----------------------------------------------
    def get_patroni(self, member: Any, timeout: float | None = 2.0) -> dict:
        """GET /patroni as a dict; ApiError when there is no answer or the body is not JSON."""
        resp = self.request(member, "GET", "patroni", timeout=timeout)
        try:
            data = resp.json()
        except ValueError as exc:
            raise ApiError(f"member {getattr(member, 'name', member)}: /patroni answered {resp.status} "
                           "with a body that is not JSON", getattr(member, "name", None)) from exc
        if not isinstance(data, dict):
            raise ApiError(f"member {getattr(member, 'name', member)}: /patroni did not answer a JSON object",
                           getattr(member, "name", None))
        return data

    def switchover(self, member: Any, leader: str | None, candidate: str | None,
                   scheduled_at: str | None = None, timeout: float | None = None) -> ApiResponse:
        body = {"leader": leader, "candidate": candidate, "scheduled_at": scheduled_at}
        # The switchover waits for the new leader (up to 2 x loop_wait on the server side).
        return self.request(member, "POST", "switchover", body, timeout=timeout or max(self.timeout, 60.0))

    def failover(self, member: Any, candidate: str, timeout: float | None = None) -> ApiResponse:
        return self.request(member, "POST", "failover", {"candidate": candidate},
                            timeout=timeout or max(self.timeout, 60.0))

    def delete_switchover(self, member: Any) -> ApiResponse:
        return self.request(member, "DELETE", "switchover")

    def restart(self, member: Any, body: dict | None = None, timeout: float | None = None) -> ApiResponse:
        # A restart answers when PostgreSQL is back, which can take a while.
        return self.request(member, "POST", "restart", body or {}, timeout=timeout or max(self.timeout, 60.0))

    def delete_restart(self, member: Any) -> ApiResponse:
        return self.request(member, "DELETE", "restart")

    def reload(self, member: Any) -> ApiResponse:
        return self.request(member, "POST", "reload")

    def reinitialize(self, member: Any, force: bool = False, from_leader: bool = False) -> ApiResponse:
        return self.request(member, "POST", "reinitialize", {"force": force, "from_leader": from_leader})

    def patch_config(self, member: Any, patch: dict) -> ApiResponse:
        return self.request(member, "PATCH", "config", patch)
