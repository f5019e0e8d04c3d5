"""Authenticators: turn a presented credential (an API key or a bearer JWT) into a `Principal`.

Owns: `Authenticator` (the seam), `ApiKeyAuthenticator` (keys from `store/keys.py`), `JwtAuthenticator`
(PyJWT; a JWKS URL, a static public key or a shared secret), `EitherAuthenticator` (mode `both`: a key looks
like `sy_...`, anything else is a JWT), and `build_authenticator` from configuration. Does not own HTTP
(auth.py) or what a principal may do (stages/policy.py).

JWT checks, all required: a signature by the configured key with an algorithm from the allow-list (never
`none`, never a symmetric algorithm with a public key), `aud` containing the gateway's resource URL (RFC 8707:
a token minted for another resource is refused), `iss` equal to the configured issuer, `exp` in the future
and `sub` present (it names the principal). Fetching a JWKS is blocking I/O bounded by `jwks_timeout` and runs
on a worker thread; PyJWT's client caches the key set (5 minutes) and refetches for an unknown `kid` at most
once per 30 s, so tokens with made-up key ids cannot make the gateway hammer the authorization server.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol, cast

import anyio.to_thread
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from switchyard.config import GatewayConfig, JwtSettings
from switchyard.errors import ConfigError, ConfigProblem, Unauthenticated
from switchyard.identity import Principal
from switchyard.store.keys import KEY_PREFIX, SqliteKeyStore

__all__ = [
    "ApiKeyAuthenticator",
    "Authenticator",
    "EitherAuthenticator",
    "JwtAuthenticator",
    "build_authenticator",
]


class Authenticator(Protocol):
    """Proves who presented a credential."""

    async def authenticate(self, credential: str) -> Principal:
        """The principal the credential proves.

        Raises:
            Unauthenticated: the credential is not valid.
        """
        ...


class ApiKeyAuthenticator:
    """API keys minted by `switchyard keys create`."""

    def __init__(self, store: SqliteKeyStore) -> None:
        self.store = store

    async def authenticate(self, credential: str) -> Principal:
        """The key's principal (kind "api_key", the key's groups)."""
        key = self.store.verify(credential)
        if key is None:
            raise Unauthenticated("unknown, malformed or revoked API key")
        return Principal(key.principal, "api_key", frozenset(key.groups))


def _groups(claims: Mapping[str, Any], claim: str) -> frozenset[str]:
    value: Any = claims.get(claim)
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(str(v) for v in cast(list[Any], value))
    return frozenset()


_KEY_ALGORITHMS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (rsa.RSAPublicKey, ("RS", "PS")),
    (ec.EllipticCurvePublicKey, ("ES",)),
    (ed25519.Ed25519PublicKey, ("EdDSA",)),
    (ed448.Ed448PublicKey, ("EdDSA",)),
)
"""The JWS algorithm families each kind of public key verifies."""


class JwtAuthenticator:
    """Bearer JWTs issued for this gateway by the configured authorization server."""

    def __init__(self, settings: JwtSettings, audience: str, *, jwks_client: jwt.PyJWKClient | None = None) -> None:
        self.settings = settings
        self.audience = audience
        self.algorithms = [a for a in settings.algorithms if a.lower() != "none"]
        self._jwks = jwks_client
        self._key: Any = None
        if settings.jwks_url and jwks_client is None:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, timeout=int(max(1, settings.jwks_timeout)))
        elif settings.public_key:
            try:
                self._key = load_pem_public_key(settings.public_key.encode())
            except ValueError:
                raise ConfigError([ConfigProblem("$.switchyard.auth.jwt.public_key", "not a PEM public key")]) from None
            # Only the algorithms this key verifies: PyJWT raises a TypeError, not a token error, for a token
            # signed with another kind of key (ES256 against an RSA key).
            fits = next((names for kind, names in _KEY_ALGORITHMS if isinstance(self._key, kind)), ())
            usable = [a for a in self.algorithms if a.startswith(fits)] if fits else self.algorithms
            if not usable:
                problem = f"no algorithm in algorithms verifies with this public key ({type(self._key).__name__})"
                raise ConfigError([ConfigProblem("$.switchyard.auth.jwt.algorithms", problem)])
            self.algorithms = usable
        elif settings.secret:
            self._key = settings.secret

    async def _signing_key(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        client = self._jwks
        try:
            found = await anyio.to_thread.run_sync(client.get_signing_key_from_jwt, token)
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise Unauthenticated(f"no signing key for the token: {exc}") from None
        return found.key

    async def authenticate(self, credential: str) -> Principal:
        """The token's subject (kind "jwt", groups from the groups claim, the verified claims)."""
        key = await self._signing_key(credential)
        try:
            claims: dict[str, Any] = jwt.decode(
                credential,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", "the access token expired") from None
        except (jwt.InvalidTokenError, jwt.InvalidKeyError, TypeError, ValueError) as exc:
            # TypeError/ValueError: PyJWT's answer to a key of the wrong kind (a JWKS key, say): still a bad token.
            raise Unauthenticated(f"token rejected: {type(exc).__name__}: {exc}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("token has no subject")
        groups = _groups(claims, self.settings.groups_claim)
        return Principal(subject, "jwt", groups, MappingProxyType(claims))


class EitherAuthenticator:
    """Mode `both`: an `sy_...` credential is an API key, anything else a JWT."""

    def __init__(self, keys: ApiKeyAuthenticator, tokens: JwtAuthenticator) -> None:
        self.keys = keys
        self.tokens = tokens

    async def authenticate(self, credential: str) -> Principal:
        """Route to the API-key or JWT authenticator by the credential's shape."""
        if credential.startswith(KEY_PREFIX):
            return await self.keys.authenticate(credential)
        return await self.tokens.authenticate(credential)


def build_authenticator(config: GatewayConfig) -> Authenticator | None:
    """The authenticator `switchyard.auth` describes; None for mode `none`. API keys live in the store file."""
    auth = config.switchyard.auth
    if auth.mode == "none":
        return None
    keys = ApiKeyAuthenticator(SqliteKeyStore(config.switchyard.store.resolved_path)) if auth.mode != "jwt" else None
    if auth.mode == "api_key":
        return keys
    assert auth.jwt is not None  # AuthSettings requires jwt and resource_url in modes jwt and both
    assert auth.resource_url is not None
    tokens = JwtAuthenticator(auth.jwt, auth.resource_url)
    return tokens if keys is None else EitherAuthenticator(keys, tokens)
