"""Helpers for the authentication tests: keys and tokens minted in the test, and a raw ASGI caller."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.types import ASGIApp, Message, Scope

RESOURCE = "https://gateway.example.com/mcp"
ISSUER = "https://auth.example.com"


def rsa_pair() -> tuple[rsa.RSAPrivateKey, str]:
    """A fresh RSA private key and its public key as PEM."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, pem.decode()


def token(key: Any, algorithm: str = "RS256", headers: dict[str, Any] | None = None, **overrides: Any) -> str:
    """A JWT with valid claims for the gateway unless `overrides` change them (None removes a claim)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "alice", "iss": ISSUER, "aud": RESOURCE, "iat": now, "exp": now + 300}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def confused_token(public_pem: str) -> str:
    """An HS256 token whose HMAC key is the server's public key PEM (the classic algorithm-confusion forgery),
    built by hand because PyJWT refuses to make one."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "alice", "iss": ISSUER, "aud": RESOURCE, "exp": now + 300}).encode())
    signature = hmac.new(public_pem.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


class Inner:
    """The protected app: records the scope it was given and answers 200."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def asgi_get(
    app: ASGIApp, headers: list[tuple[str, str]] = (), path: str = "/mcp", query: str = ""
) -> tuple[int, dict[str, str], Any]:
    """One request straight into an ASGI app: (status, headers, decoded JSON body or text)."""
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "scheme": "https",
        "server": ("gateway.example.com", 443),
        "client": ("203.0.113.9", 5000),
        "root_path": "",
        "http_version": "1.1",
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    try:
        decoded: Any = json.loads(body)
    except ValueError:
        decoded = body.decode()
    return start["status"], hdrs, decoded
