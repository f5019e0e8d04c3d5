"""Authentication: API keys and JWTs (signed here with PyJWT), the 401 challenge, header tricks, metadata."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import jwt
import pytest
from auth_helpers import ISSUER, RESOURCE, Inner, asgi_get, confused_token, rsa_pair, token
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from switchyard.config import AuthSettings, JwtSettings, parse_config
from switchyard.errors import ConfigError
from switchyard.gateway import Gateway
from switchyard.identity import PRINCIPAL_STATE_KEY, Principal
from switchyard.server.auth import (
    AuthMiddleware,
    check_auth_config,
    metadata_url,
    protect,
    protected_resource_routes,
    session_owner,
)
from switchyard.server.credentials import ApiKeyAuthenticator, EitherAuthenticator, JwtAuthenticator
from switchyard.store.keys import SqliteKeyStore

pytestmark = pytest.mark.anyio

CHALLENGE = f'Bearer resource_metadata="{metadata_url(RESOURCE)}"'
PRIVATE, PUBLIC_PEM = rsa_pair()
OTHER_PRIVATE, _ = rsa_pair()


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[SqliteKeyStore]:
    store = SqliteKeyStore(tmp_path / "keys.db")
    yield store
    store.close()


def jwt_settings(**kw: Any) -> JwtSettings:
    return JwtSettings.model_validate({"public_key": PUBLIC_PEM, "issuer": ISSUER, **kw})


def principal_of(inner: Inner) -> Principal:
    return inner.scopes[-1]["state"][PRINCIPAL_STATE_KEY]


# --- API keys --------------------------------------------------------------------------------------------------


async def test_an_api_key_is_accepted_as_a_bearer_token_or_in_x_api_key(keys: SqliteKeyStore) -> None:
    record, plaintext = keys.create("ci-bot", ("ops",))
    inner = Inner()
    app = AuthMiddleware(inner, ApiKeyAuthenticator(keys), RESOURCE)
    bearer = await asgi_get(app, [("Authorization", f"Bearer {plaintext}")])
    header = await asgi_get(app, [("X-API-Key", plaintext)])
    assert bearer[0] == header[0] == 200
    assert principal_of(inner) == Principal("ci-bot", "api_key", frozenset({"ops"}))
    assert record.principal == "ci-bot"


async def test_the_credential_is_removed_before_the_request_goes_on(keys: SqliteKeyStore) -> None:
    _, plaintext = keys.create("ci-bot")
    inner = Inner()
    app = AuthMiddleware(inner, ApiKeyAuthenticator(keys), RESOURCE)
    await asgi_get(app, [("Authorization", f"Bearer {plaintext}"), ("X-Other", "kept")])
    names = [k for k, _ in inner.scopes[-1]["headers"]]
    assert b"authorization" not in names
    assert b"x-other" in names


async def test_a_missing_credential_gets_401_with_the_resource_metadata_challenge(keys: SqliteKeyStore) -> None:
    status, headers, _ = await asgi_get(AuthMiddleware(Inner(), ApiKeyAuthenticator(keys), RESOURCE))
    assert status == 401
    assert headers["www-authenticate"] == CHALLENGE


async def test_a_wrong_revoked_or_malformed_key_gets_401_invalid_token(keys: SqliteKeyStore) -> None:
    record, plaintext = keys.create("ci-bot")
    app = AuthMiddleware(Inner(), ApiKeyAuthenticator(keys), RESOURCE)
    forged = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    assert (await asgi_get(app, [("X-API-Key", forged)]))[0] == 401
    assert (await asgi_get(app, [("X-API-Key", "sy_nothing")]))[0] == 401
    assert keys.revoke(record.id)
    status, headers, body = await asgi_get(app, [("X-API-Key", plaintext)])
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert f'resource_metadata="{metadata_url(RESOURCE)}"' in headers["www-authenticate"]
    assert body["error"] == "invalid_token"


async def test_keys_are_stored_hashed_and_listed_without_secrets(keys: SqliteKeyStore, tmp_path: Path) -> None:
    record, plaintext = keys.create("ci-bot", ("ops",), note="nightly")
    raw = (tmp_path / "keys.db").read_bytes() + (tmp_path / "keys.db-wal").read_bytes()
    secret = plaintext.split("_", 2)[2]
    assert secret.encode() not in raw
    listed = keys.list()
    assert [(k.id, k.principal, k.groups, k.note, k.revoked) for k in listed] == [
        (record.id, "ci-bot", ("ops",), "nightly", None)
    ]


# --- JWTs ------------------------------------------------------------------------------------------------------


async def jwt_call(auth: JwtAuthenticator, bearer: str) -> tuple[int, dict[str, str], Any]:
    return await asgi_get(AuthMiddleware(Inner(), auth, RESOURCE), [("Authorization", f"Bearer {bearer}")])


async def test_a_valid_jwt_names_the_principal_with_its_groups() -> None:
    inner = Inner()
    app = AuthMiddleware(inner, JwtAuthenticator(jwt_settings(), RESOURCE), RESOURCE)
    status, _, _ = await asgi_get(app, [("Authorization", f"Bearer {token(PRIVATE, groups=['dev', 'ops'])}")])
    assert status == 200
    principal = principal_of(inner)
    assert (principal.id, principal.kind, principal.groups) == ("alice", "jwt", frozenset({"dev", "ops"}))
    assert principal.claims["iss"] == ISSUER


@pytest.mark.parametrize(
    ("case", "bearer"),
    [
        ("expired", token(PRIVATE, exp=1_000_000, iat=999_000)),
        ("wrong audience", token(PRIVATE, aud="https://other.example.com/mcp")),
        ("audience of a prefix", token(PRIVATE, aud="https://gateway.example.com")),
        ("wrong issuer", token(PRIVATE, iss="https://evil.example.com")),
        ("forged signature", token(OTHER_PRIVATE)),
        ("alg none", token(None, algorithm="none")),
        ("hs256 keyed with the public key", confused_token(PUBLIC_PEM)),
        ("no exp", token(PRIVATE, exp=None)),
        ("no sub", token(PRIVATE, sub=None)),
        ("no aud", token(PRIVATE, aud=None)),
        ("garbage", "not.a.jwt"),
    ],
)
async def test_an_invalid_jwt_gets_401(case: str, bearer: str) -> None:
    status, headers, body = await jwt_call(JwtAuthenticator(jwt_settings(), RESOURCE), bearer)
    assert status == 401, case
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert body["error"] == "invalid_token"


async def test_an_expired_jwt_says_so() -> None:
    _, _, body = await jwt_call(JwtAuthenticator(jwt_settings(), RESOURCE), token(PRIVATE, exp=1_000_000))
    assert body["error_description"] == "the access token expired"


async def test_a_shared_secret_verifies_hs256_tokens_only_with_the_right_secret() -> None:
    auth = JwtAuthenticator(JwtSettings(secret="s3cret-" * 6, issuer=ISSUER, algorithms=("HS256",)), RESOURCE)
    assert (await jwt_call(auth, token("s3cret-" * 6, algorithm="HS256")))[0] == 200
    assert (await jwt_call(auth, token("wrong-secret-" * 4, algorithm="HS256")))[0] == 401


async def test_a_token_signed_with_another_kind_of_key_gets_401_not_a_crash() -> None:
    # The default algorithms are RS256 and ES256: an ES256 token against an RSA key made PyJWT raise a TypeError.
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    ec_key = ec.generate_private_key(ec.SECP256R1())
    status, headers, _ = await jwt_call(JwtAuthenticator(jwt_settings(), RESOURCE), token(ec_key, algorithm="ES256"))
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    ec_pem = (
        ec_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    ec_auth = JwtAuthenticator(JwtSettings(public_key=ec_pem, issuer=ISSUER), RESOURCE)
    assert ec_auth.algorithms == ["ES256"]  # RS256 cannot verify with an EC key
    assert (await jwt_call(ec_auth, token(PRIVATE)))[0] == 401
    assert (await jwt_call(ec_auth, token(ec_key, algorithm="ES256")))[0] == 200
    with pytest.raises(ConfigError, match="no algorithm"):
        JwtAuthenticator(JwtSettings(public_key=ec_pem, issuer=ISSUER, algorithms=("RS256",)), RESOURCE)


async def test_algorithm_names_are_read_in_any_case_and_unknown_ones_refused() -> None:
    auth = JwtAuthenticator(jwt_settings(algorithms=["rs256"]), RESOURCE)
    assert auth.algorithms == ["RS256"]
    assert (await jwt_call(auth, token(PRIVATE)))[0] == 200
    with pytest.raises(ValueError, match="unknown algorithm"):
        jwt_settings(algorithms=["RS999"])


def test_configuration_refuses_none_and_mixed_key_types() -> None:
    with pytest.raises(ValueError, match="none"):
        JwtSettings(public_key=PUBLIC_PEM, issuer=ISSUER, algorithms=("none",))
    with pytest.raises(ValueError, match="HS"):
        JwtSettings(public_key=PUBLIC_PEM, issuer=ISSUER, algorithms=("RS256", "HS256"))
    with pytest.raises(ValueError, match="exactly one"):
        JwtSettings(public_key=PUBLIC_PEM, secret="x", issuer=ISSUER)
    with pytest.raises(ValueError, match="resource_url"):
        AuthSettings(mode="jwt", jwt=jwt_settings())


class _Jwks(BaseHTTPRequestHandler):
    document = b""
    fetches = 0

    def do_GET(self) -> None:
        type(self).fetches += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def jwks_url() -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PRIVATE.public_key()))
    _Jwks.document = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    _Jwks.fetches = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()
    thread.join(5)


async def test_keys_come_from_a_jwks_url(jwks_url: str) -> None:
    auth = JwtAuthenticator(JwtSettings(jwks_url=jwks_url, issuer=ISSUER, jwks_timeout=2), RESOURCE)
    assert (await jwt_call(auth, token(PRIVATE, headers={"kid": "k1"})))[0] == 200
    assert (await jwt_call(auth, token(OTHER_PRIVATE, headers={"kid": "k1"})))[0] == 401
    assert (await jwt_call(auth, token(PRIVATE, headers={"kid": "unknown"})))[0] == 401


async def test_unknown_key_ids_do_not_make_the_gateway_refetch_the_jwks_each_time(jwks_url: str) -> None:
    auth = JwtAuthenticator(JwtSettings(jwks_url=jwks_url, issuer=ISSUER, jwks_timeout=2), RESOURCE)
    assert (await jwt_call(auth, token(PRIVATE, headers={"kid": "k1"})))[0] == 200
    for i in range(20):
        assert (await jwt_call(auth, token(PRIVATE, headers={"kid": f"guess-{i}"})))[0] == 401
    assert (await jwt_call(auth, token(PRIVATE, headers={"kid": "k1"})))[0] == 200
    assert _Jwks.fetches == 1  # PyJWT's client caches the set and cools down forced refreshes (30 s)


async def test_mode_both_routes_keys_and_tokens(keys: SqliteKeyStore) -> None:
    _, plaintext = keys.create("ci-bot")
    auth = EitherAuthenticator(ApiKeyAuthenticator(keys), JwtAuthenticator(jwt_settings(), RESOURCE))
    app = AuthMiddleware(Inner(), auth, RESOURCE)
    assert (await asgi_get(app, [("Authorization", f"Bearer {plaintext}")]))[0] == 200
    assert (await asgi_get(app, [("Authorization", f"Bearer {token(PRIVATE)}")]))[0] == 200


# --- header tricks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ([("Authorization", "Bearer {k}"), ("Authorization", "Bearer {k}")], "", 400),
        ([("Authorization", "Bearer {k}"), ("X-API-Key", "{k}")], "", 400),
        ([("X-API-Key", "{k}"), ("X-API-Key", "{k}")], "", 400),
        ([], "access_token={k}", 400),
        ([("Authorization", "Bearer {k}")], "api_key={k}", 400),
        ([("X-API-Key", "{k}")], "x-api-key={k}", 400),  # names compared lowercased, '-' read as '_'
        ([("X-API-Key", "{k}")], "Authorization=Bearer%20{k}", 400),
        ([("X-API-Key", "{k}")], "access-token={k}", 400),
        ([("X-API-Key", "{k}")], "q={k}", 400),  # a Switchyard key is refused under any name
        ([("X-API-Key", "{k}")], "q=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", 400),  # so is a JWT
        ([("X-API-Key", "{k}")], "host=sub1domain.example12.com&page=2", 200),  # ordinary values pass
        ([("Authorization", "Basic {k}")], "", 401),
        ([("Authorization", "Bearer")], "", 401),
        ([("Authorization", "Bearer {k} extra")], "", 401),
        ([("Authorization", "Bearer {k}\x00")], "", 401),
        ([("Authorization", "bearer {k}")], "", 200),
        ([("Authorization", "BEARER   {k}  ")], "", 200),
    ],
)
async def test_header_tricks_are_refused(
    keys: SqliteKeyStore, headers: list[tuple[str, str]], query: str, status: int
) -> None:
    _, plaintext = keys.create("ci-bot")
    app = AuthMiddleware(Inner(), ApiKeyAuthenticator(keys), RESOURCE)
    filled = [(name, value.format(k=plaintext)) for name, value in headers]
    got, hdrs, _ = await asgi_get(app, filled, query=query.format(k=plaintext))
    assert got == status
    if status != 200:
        assert f'resource_metadata="{metadata_url(RESOURCE)}"' in hdrs["www-authenticate"]


# --- metadata and configuration --------------------------------------------------------------------------------


async def test_protected_resource_metadata_is_served_without_a_credential(keys: SqliteKeyStore) -> None:
    settings = AuthSettings(mode="api_key", resource_url=RESOURCE, authorization_servers=(ISSUER,))
    app = AuthMiddleware(
        Starlette(routes=protected_resource_routes(settings, RESOURCE)), ApiKeyAuthenticator(keys), RESOURCE
    )
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        status, _, body = await asgi_get(app, path=path)
        assert status == 200
        assert body == {"resource": RESOURCE, "authorization_servers": [ISSUER], "bearer_methods_supported": ["header"]}
    assert metadata_url(RESOURCE) == "https://gateway.example.com/.well-known/oauth-protected-resource/mcp"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"])
def test_auth_may_be_disabled_on_loopback(host: str) -> None:
    check_auth_config(host, AuthSettings(mode="none"))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "gateway.example.com"])
def test_auth_may_not_be_disabled_off_loopback(host: str) -> None:
    check_auth_config(host, AuthSettings(mode="api_key"))
    with pytest.raises(ConfigError, match="loopback"):
        check_auth_config(host, AuthSettings(mode="none"))


async def test_with_auth_disabled_every_caller_is_anonymous() -> None:
    inner = Inner()
    assert (await asgi_get(AuthMiddleware(inner, None, None)))[0] == 200
    assert principal_of(inner).kind == "anonymous"


# --- protect(): the one call the HTTP front makes --------------------------------------------------------------


def gateway_with(tmp_path: Path, auth: dict[str, Any]) -> Gateway:
    doc = {"switchyard": {"store": {"path": str(tmp_path / "s.db")}, "auth": auth}}
    return Gateway(parse_config(doc, env={}), upstreams={})


async def test_protect_serves_metadata_authenticates_and_audits_refusals(tmp_path: Path) -> None:
    gateway = gateway_with(tmp_path, {"mode": "api_key", "authorization_servers": [ISSUER]})
    assert gateway.audit_store is not None
    gateway.audit_store.start()
    keys = SqliteKeyStore(tmp_path / "s.db")
    _, plaintext = keys.create("ci-bot")
    keys.close()
    inner = Inner()
    app = protect(inner, gateway, host="127.0.0.1", port=8765)
    resource = "http://127.0.0.1:8765/mcp"
    status, _, document = await asgi_get(app, path="/.well-known/oauth-protected-resource/mcp")
    refused, headers, _ = await asgi_get(app)
    allowed, _, _ = await asgi_get(app, [("X-API-Key", plaintext)])
    gateway.audit_store.close()
    rows = gateway.audit_store.query()
    assert status == 200
    assert document["resource"] == resource
    assert refused == 401
    assert headers["www-authenticate"] == f'Bearer resource_metadata="{metadata_url(resource)}"'
    assert allowed == 200
    assert principal_of(inner).id == "ci-bot"
    assert [(r.principal, r.method, r.decision, r.reason) for r in rows] == [
        ("anonymous", "http GET /mcp", "denied", "unauthenticated (401): no credential")
    ]
    assert json.loads(rows[0].client or "") == {"address": "203.0.113.9"}


def test_protect_refuses_disabled_auth_off_loopback(tmp_path: Path) -> None:
    gateway = gateway_with(tmp_path, {"mode": "none"})
    with pytest.raises(ConfigError, match="loopback"):
        protect(Inner(), gateway, host="0.0.0.0", port=8765)
    assert isinstance(protect(Inner(), gateway, host="127.0.0.1", port=8765), AuthMiddleware)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(["Authorization", "X-API-Key", "Cookie", "X-Forwarded-For"]),
            st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=80),
        ),
        max_size=3,
    ),
    query=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
def test_any_headers_get_a_clean_answer_and_never_reach_the_app_with_a_credential(
    headers: list[tuple[str, str]], query: str
) -> None:
    store = SqliteKeyStore(":memory:")
    inner = Inner()
    app = AuthMiddleware(inner, ApiKeyAuthenticator(store), RESOURCE)
    status, _, _ = anyio.run(lambda: asgi_get(app, headers, query=query))
    store.close()
    assert status in (200, 400, 401)
    for scope in inner.scopes:
        assert not any(name in (b"authorization", b"x-api-key") for name, _ in scope["headers"])
    assert status != 200  # no header above is a key this store minted


def test_a_session_owner_is_one_object_per_principal_and_names_it() -> None:
    alice = session_owner(Principal("alice", "api_key"))
    assert alice is session_owner(Principal("alice", "api_key"))
    assert alice.access_token.client_id == "api_key:alice"
    others = {
        session_owner(Principal("alice", "jwt")).access_token.client_id,
        session_owner(Principal("bob", "api_key")).access_token.client_id,
    }
    assert others == {"jwt:alice", "api_key:bob"}
