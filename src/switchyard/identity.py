"""Who is calling: the `Principal` every request carries through the stage chain.

Owns the shape of an identity (id, kind, groups, verified claims) and the two fixed principals: `LOCAL`, the
user who started the gateway on stdio, and `ANONYMOUS`, a caller on a front whose authentication was explicitly
disabled. Does not own how an identity is proven (server/auth.py) or what it may do (stages/policy.py).
Imports nothing internal, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

__all__ = [
    "ANONYMOUS",
    "LOCAL",
    "PRINCIPAL_STATE_KEY",
    "REQUEST_PRINCIPAL",
    "Principal",
    "PrincipalKind",
    "is_qualified",
    "principal_names",
]

PrincipalKind = Literal["local", "api_key", "jwt", "anonymous"]
_KIND_PREFIXES = tuple(f"{kind}:" for kind in get_args(PrincipalKind))

PRINCIPAL_STATE_KEY = "switchyard.principal"
"""Where the HTTP front's authentication middleware leaves the `Principal` in the ASGI `scope["state"]`."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated (or explicitly local/anonymous) caller.

    Attributes:
        id: a stable name: the API key's principal name, the JWT `sub`, "local" or "anonymous".
        kind: how the identity was established.
        groups: the groups it belongs to (from the key, the token's groups claim, and `policy.groups`).
        claims: the verified JWT claims (empty for other kinds); never used for equality or hashing.
    """

    id: str
    kind: PrincipalKind
    groups: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False, hash=False)

    def with_groups(self, extra: frozenset[str]) -> Principal:
        """The same principal with more groups."""
        if extra <= self.groups:
            return self
        return Principal(self.id, self.kind, self.groups | extra, self.claims)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def is_qualified(name: str) -> bool:
    """Whether a principal name in configuration says its kind (`api_key:alice`, `jwt:alice`)."""
    return name.startswith(_KIND_PREFIXES)


_FIXED = frozenset({"local", "anonymous"})


def principal_names(principal: Principal) -> tuple[str, ...]:
    """The names configuration may give `principal`: always `kind:id`, and the bare id unless the id itself
    starts with a kind (then only the qualified form names it: `jwt:alice` never means an API key whose
    principal name is "jwt:alice"), or is "local" or "anonymous" on another kind (a bare "local" names only
    the local user, never a JWT whose `sub` is "local")."""
    qualified = str(principal)
    if is_qualified(principal.id) or (principal.id in _FIXED and principal.kind != principal.id):
        return (qualified,)
    return (qualified, principal.id)


LOCAL = Principal("local", "local")
"""The user who started the gateway (the stdio front and in-process clients)."""

ANONYMOUS = Principal("anonymous", "anonymous")
"""A caller on an HTTP front whose authentication was explicitly disabled (allowed on loopback only)."""

REQUEST_PRINCIPAL: ContextVar[Principal | None] = ContextVar("switchyard_request_principal", default=None)
"""The principal of the HTTP request being served (set by the auth middleware for the request's life), for SDK
hooks that get no request context (`FrontServer._input_schema`); None outside an authenticated request."""
