"""Authentication on the HTTP front: a pure-ASGI middleware, the RFC 9728 metadata route, and the rule that
authentication may be turned off only on loopback.

Owns: reading the credential from a request (and refusing ambiguous ones), answering 401/400 with the
`WWW-Authenticate: Bearer resource_metadata="..."` challenge the MCP authorization spec requires, leaving the
proven `Principal` in `scope["state"]["switchyard.principal"]` for the front, and serving
`/.well-known/oauth-protected-resource` (root and path-inserted forms). Does not own verifying credentials
(credentials.py), the Starlette app (http.py mounts these pieces) or any policy (stages/).

Mounting: `protect(app, gateway, host=..., port=...)` is the one call the HTTP front needs. It refuses a
configuration that disables authentication off loopback, builds the configured authenticator, serves the
metadata document, authenticates everything else, and records every refusal in the gateway's audit log
(decision "denied", principal "anonymous", the client address, the reason). Put it inside the Host/Origin
guard, so DNS-rebinding checks run first.

Credentials: `Authorization: Bearer <key or JWT>`, or `X-API-Key: <key>`. Refused with 400
`invalid_request`: more than one `Authorization` or `X-API-Key` header, both headers at once, or a credential in
the query string (the spec forbids tokens in URIs, and accepting them would leak them into logs).

Token passthrough: the middleware removes `Authorization` and `X-API-Key` from the scope it passes on, so
nothing downstream can see, log or forward the client's credential; upstream requests are built by the
upstream clients from their own configured headers only (upstream/http.py), never from the client's request.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard.config import AuthSettings
from switchyard.errors import ConfigError, ConfigProblem, Unauthenticated
from switchyard.gateway import Gateway
from switchyard.identity import ANONYMOUS, PRINCIPAL_STATE_KEY, REQUEST_PRINCIPAL, Principal
from switchyard.server.credentials import Authenticator, build_authenticator
from switchyard.stages.audit import AuditSink
from switchyard.store.audit import AuditRow

__all__ = [
    "METADATA_PATH",
    "AuthMiddleware",
    "check_auth_config",
    "default_resource_url",
    "is_loopback",
    "metadata_url",
    "protect",
    "protected_resource_routes",
]

logger = logging.getLogger("switchyard.auth")

METADATA_PATH = "/.well-known/oauth-protected-resource"
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")
_QUERY_CREDENTIALS = frozenset(
    {"access_token", "api_key", "apikey", "key", "token", "x_api_key", "authorization", "auth", "bearer", "id_token"}
)
"""Query parameter names that carry a credential, compared lowercased with `-` read as `_`."""
_QUERY_CREDENTIAL_VALUE = re.compile(
    r"^(?:bearer\s+\S|sy_[0-9a-f]{12}_|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$)", re.IGNORECASE
)
"""A query value that is a credential whatever its parameter's name: `Bearer ...`, a Switchyard key, a JWT."""
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_MAX_CREDENTIAL = 8192


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or address the front binds) is a loopback interface."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_auth_config(host: str, settings: AuthSettings) -> None:
    """Refuse to serve HTTP without authentication on anything but loopback. The HTTP front calls this.

    Raises:
        ConfigError: `auth.mode` is "none" and `host` is not a loopback address.
    """
    if settings.mode == "none" and not is_loopback(host):
        raise ConfigError(
            [
                ConfigProblem(
                    "$.switchyard.auth.mode",
                    f"'none' is allowed only when binding a loopback address, not {host!r}; "
                    "use api_key, jwt or both (switchyard keys create ...)",
                )
            ]
        )


def metadata_url(resource_url: str) -> str:
    """The RFC 9728 metadata URL of a resource: the well-known path inserted before the resource's path."""
    parts = urlsplit(resource_url)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{METADATA_PATH}{path}"


def _challenge(resource_url: str | None, error: str | None, description: str | None) -> str:
    params: list[str] = []
    if error is not None:
        params.append(f'error="{error}"')
        if description:
            params.append(f'error_description="{description}"')
    if resource_url is not None:
        params.append(f'resource_metadata="{metadata_url(resource_url)}"')
    return "Bearer " + ", ".join(params) if params else "Bearer"


def session_owner(principal: Principal) -> AuthenticatedUser:
    """The principal as the SDK's session manager identifies a session's owner (`scope["user"]`): a legacy
    session opened by one principal answers any other principal as if it did not exist (404), so a leaked
    `Mcp-Session-Id` does not hand over its streams, its replay log or its `DELETE`. One object per principal
    (the SDK only reads it), not a validated token model per request."""
    return _owner(principal.kind, principal.id)


@lru_cache(maxsize=4096)
def _owner(kind: str, principal_id: str) -> AuthenticatedUser:
    return AuthenticatedUser(AccessToken(token="", client_id=f"{kind}:{principal_id}", scopes=[]))


class _Refusal(Exception):
    def __init__(self, status: int, error: str | None, description: str | None) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(description or error or "")


def _is_query_credential(name: str, value: str) -> bool:
    """Whether a query parameter carries a credential: by its name, or by its value's shape."""
    return name.lower().replace("-", "_") in _QUERY_CREDENTIALS or _QUERY_CREDENTIAL_VALUE.match(value) is not None


def _credential(scope: Scope) -> str | None:
    """The one credential the request carries, None when it carries none.

    Raises:
        _Refusal: an ambiguous or malformed credential.
    """
    found = [(name, value) for name, value in scope.get("headers", ()) if name in _CREDENTIAL_HEADERS]
    query = scope.get("query_string", b"").decode("latin-1")
    if query and any(_is_query_credential(k, v) for k, v in parse_qsl(query, keep_blank_values=True)):
        raise _Refusal(400, "invalid_request", "credentials are not accepted in the URL")
    if len(found) > 1:
        raise _Refusal(400, "invalid_request", "send exactly one credential")
    if not found:
        return None
    name, raw = found[0]
    value = raw.decode("latin-1").strip()
    if name == b"authorization":
        scheme, _, value = value.partition(" ")
        if scheme.lower() != "bearer":
            raise _Refusal(401, None, None)
        value = value.strip()
    if not value or len(value) > _MAX_CREDENTIAL or not _TOKEN.match(value):
        raise _Refusal(401, "invalid_token", "the access token is malformed")
    return value


class AuthMiddleware:
    """Authenticates every HTTP request except the metadata route; pure ASGI (no buffering, no streaming
    interference)."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator | None,
        resource_url: str | None,
        *,
        public_paths: Sequence[str] = (METADATA_PATH,),
        audit: AuditSink | None = None,
    ) -> None:
        """Wrap `app`.

        Args:
            app: the ASGI app to protect.
            authenticator: None only when authentication is disabled (check `check_auth_config` first);
                every request is then `identity.ANONYMOUS`.
            resource_url: the gateway's canonical MCP URL, named in challenges (RFC 9728).
            public_paths: path prefixes served without a credential.
            audit: where refusals are recorded (the gateway's audit log), if anywhere.
        """
        self.app = app
        self.authenticator = authenticator
        self.resource_url = resource_url
        self.public_paths = tuple(public_paths)
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then pass on a scope carrying the principal and no credential headers."""
        if scope["type"] not in ("http", "websocket") or str(scope.get("path", "")).startswith(self.public_paths):
            await self.app(scope, receive, send)
            return
        principal = ANONYMOUS
        if self.authenticator is not None:
            try:
                credential = _credential(scope)
                if credential is None:
                    raise _Refusal(401, None, None)
                principal = await self.authenticator.authenticate(credential)
            except _Refusal as refusal:
                await self._refuse(scope, send, refusal)
                return
            except Unauthenticated as exc:
                logger.info("authentication failed: %s", exc.reason)
                await self._refuse(scope, send, _Refusal(401, "invalid_token", exc.description), exc.reason)
                return
        state: dict[str, Any] = scope.setdefault("state", {})
        state[PRINCIPAL_STATE_KEY] = principal
        headers = [(k, v) for k, v in scope.get("headers", ()) if k not in _CREDENTIAL_HEADERS]
        inner: dict[str, Any] = {**scope, "headers": headers, "state": state}
        if self.authenticator is not None:
            inner["user"] = session_owner(principal)
        token = REQUEST_PRINCIPAL.set(principal)
        try:
            await self.app(inner, receive, send)
        finally:
            REQUEST_PRINCIPAL.reset(token)

    def _record(self, scope: Scope, refusal: _Refusal, reason: str) -> None:
        if self.audit is None:
            return
        try:
            client: Any = scope.get("client")
            method = f"http {scope.get('method', 'GET')} {scope.get('path', '')}"
            self.audit.submit(
                AuditRow.event_row(
                    principal=ANONYMOUS.id,
                    principal_kind=ANONYMOUS.kind,
                    client=json.dumps({"address": client[0]}) if client else None,
                    method=method,
                    decision="denied",
                    reason=f"unauthenticated ({refusal.status}): {reason}",
                )
            )
        except Exception:  # an observer never breaks a request
            logger.exception("audit of a refused request failed")

    async def _refuse(self, scope: Scope, send: Send, refusal: _Refusal, reason: str | None = None) -> None:
        self._record(scope, refusal, reason or refusal.description or "no credential")
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body: dict[str, str] = {"error": refusal.error or "unauthorized"}
        if refusal.description:
            body["error_description"] = refusal.description
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"www-authenticate", _challenge(self.resource_url, refusal.error, refusal.description).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def protected_resource_routes(settings: AuthSettings, resource_url: str) -> list[Route]:
    """The RFC 9728 metadata document, at the root well-known path and at the path-inserted one."""
    document: dict[str, Any] = {
        "resource": resource_url,
        "authorization_servers": list(settings.authorization_servers),
        "bearer_methods_supported": ["header"],
    }
    if settings.scopes_supported:
        document["scopes_supported"] = list(settings.scopes_supported)

    async def metadata(request: Request) -> Response:
        return JSONResponse(document, headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=3600"})

    paths = [METADATA_PATH]
    inserted = urlsplit(metadata_url(resource_url)).path
    if inserted != METADATA_PATH:
        paths.append(inserted)
    return [Route(path, metadata, methods=["GET"]) for path in paths]


def default_resource_url(host: str, port: int, path: str = "/mcp") -> str:
    """The resource URL when none is configured: the address the front binds (fine on loopback; configure
    `auth.resource_url` whenever clients reach the gateway by another name)."""
    name = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{name}:{port}{path}"


class _MetadataFirst:
    """Serves the metadata routes itself; every other request (and the lifespan) goes to `app`."""

    def __init__(self, routes: list[Route], app: ASGIApp) -> None:
        self.router = Router(routes=routes)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(METADATA_PATH):
            await self.router(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def protect(app: ASGIApp, gateway: Gateway, *, host: str, port: int, path: str = "/mcp") -> ASGIApp:
    """`app` behind the configured authentication, with the RFC 9728 metadata served beside it.

    Raises:
        ConfigError: authentication is disabled but `host` is not loopback, or a JWT key cannot be loaded.
        StoreError: the API key store cannot be opened.
    """
    settings = gateway.config.switchyard.auth
    check_auth_config(host, settings)
    resource = settings.resource_url or default_resource_url(host, port, path)
    authenticator = build_authenticator(gateway.config)
    inner = app if authenticator is None else _MetadataFirst(protected_resource_routes(settings, resource), app)
    return AuthMiddleware(inner, authenticator, resource, audit=gateway.audit_store)
