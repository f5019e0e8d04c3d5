"""Configuration: the `mcpServers` file users already have, plus Switchyard's own `switchyard` key.

Owns: reading a JSON file, `${VAR}` / `${VAR:-default}` interpolation, validation into typed models, and the
report of every problem at once (JSON path + what is allowed). Does not own: starting servers (upstream/) or
deciding anything at run time.

The server entries are exactly what Claude Desktop, Cursor and VS Code write (`command`, `args`, `env`, `cwd`;
`url`, `headers`, `type`/`transport`); VS Code's top-level `servers` key is accepted as well as `mcpServers`.
Values of `env` and `headers` are secrets: they never appear in an error message, a log line or a `repr`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from switchyard.errors import ConfigError, ConfigProblem

__all__ = [
    "AccessFilter",
    "ApprovalSettings",
    "AuditSettings",
    "AuthSettings",
    "BucketSettings",
    "FlowLabel",
    "FlowSettings",
    "GatewayConfig",
    "GuardOverride",
    "GuardSettings",
    "HttpFrontSettings",
    "HttpServerConfig",
    "JudgeSettings",
    "JwtSettings",
    "LimitSettings",
    "NamingSettings",
    "PolicyRule",
    "PolicySettings",
    "ServerConfig",
    "StdioServerConfig",
    "SwitchyardSettings",
    "ToolFilter",
    "interpolate",
    "load_config",
    "mask_secrets",
    "parse_config",
]

_DEFAULT_STORE_PATH = "${XDG_STATE_HOME:-~/.local/state}/switchyard/switchyard.db"
_VAR_NAME = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_]*)")
"""A variable reference's name; `env:` is VS Code's spelling of the same (`${env:HOME}`)."""
_SECRET_FIELDS = frozenset({"env", "headers", "secret", "public_key", "keys"})
_SAFE_SECRET_ERRORS = frozenset({"extra_forbidden", "missing", "header_value"})
"""Problems under a secret field whose message never quotes a value, so it is reported as it is."""
_MIN_MASKED = 4
"""Secret values shorter than this are not masked in messages: too short to tell from ordinary text."""
_SECRET_NAME = re.compile(r"token|secret|key|pass|auth|cred|cookie|session|pat$", re.IGNORECASE)
"""Names of `env` variables and headers whose values are masked in messages whatever they look like."""
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Keys other MCP clients put in server entries; harmless here, so accepted and ignored.
_FOREIGN_SERVER_KEYS = frozenset({"autoApprove", "alwaysAllow", "envFile", "description", "disabledTools", "notes"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ToolFilter(_Model):
    """Which tools of a server are exposed: glob patterns on the server's own tool names. Deny wins."""

    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()


FlowLabel = Literal["private", "untrusted", "egress"]
"""What a tool does with data, for the flow policy: reads private data, ingests untrusted content, sends data out."""

ApprovalMode = Literal["required", "none"]


class _ServerBase(_Model):
    enabled: bool = True
    disabled: bool = Field(default=False, description="Cline's spelling of enabled=false.")
    timeout: Annotated[float, Field(gt=0, le=3600)] | None = None
    tools: ToolFilter = ToolFilter()
    pin: Literal["strict", "warn", "off"] | None = None
    description: str | None = None
    approval: ApprovalMode | dict[str, ApprovalMode] | None = Field(
        default=None,
        description="'required' asks a human before every call of this server's tools; or tool glob -> mode",
    )
    labels: tuple[FlowLabel, ...] | dict[str, tuple[FlowLabel, ...]] | None = Field(
        default=None,
        description="flow labels of every tool (a list), or tool/URI glob -> labels; replaces the heuristics",
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_foreign_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            raw = cast(dict[str, Any], data)
            return {k: v for k, v in raw.items() if k not in _FOREIGN_SERVER_KEYS or k == "description"}
        return data

    @property
    def active(self) -> bool:
        """Whether the server should be started."""
        return self.enabled and not self.disabled


class StdioServerConfig(_ServerBase):
    """A server started as a subprocess speaking MCP on stdin/stdout."""

    type: Literal["stdio"] = "stdio"
    command: Annotated[str, Field(min_length=1)]
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None

    def __repr__(self) -> str:
        env = dict.fromkeys(self.env, "***")
        return f"StdioServerConfig(command={self.command!r}, args={self.args!r}, env={env!r}, cwd={self.cwd!r})"

    __str__ = __repr__


class HttpServerConfig(_ServerBase):
    """A server reached over Streamable HTTP."""

    type: Literal["http", "streamable-http", "streamableHttp", "sse"] = "http"
    url: Annotated[str, Field(pattern=r"^https?://")]
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _no_sse(cls, value: str) -> str:
        if value == "sse":
            raise ValueError("the old HTTP+SSE transport is deprecated and not supported; use Streamable HTTP")
        return value

    @field_validator("headers")
    @classmethod
    def _one_line_values(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if _HEADER_CONTROL.search(text):
                # Never the value itself: it is a secret. A trailing newline from `${TOKEN}` is the usual cause.
                raise PydanticCustomError(
                    "header_value",
                    "the value of {name} holds a control character (a line break?); a header value is one line",
                    {"name": name},
                )
        return value

    def __repr__(self) -> str:
        headers = dict.fromkeys(self.headers, "***")
        return f"HttpServerConfig(url={self.url!r}, headers={headers!r})"

    __str__ = __repr__


ServerConfig = StdioServerConfig | HttpServerConfig


class NamingSettings(_Model):
    """How federated names are formed."""

    separator: Annotated[str, Field(min_length=1, max_length=4, pattern=r"^[A-Za-z0-9_-]+$")] = "__"
    prefix: bool = True


class TimeoutSettings(_Model):
    """Bounded waits, in seconds."""

    call: Annotated[float, Field(gt=0, le=3600)] = 60.0
    connect: Annotated[float, Field(gt=0, le=600)] = 30.0
    startup: Annotated[float, Field(ge=0, le=600)] = 10.0
    shutdown_grace: Annotated[float, Field(ge=0, le=60)] = 2.0
    drain: Annotated[float, Field(ge=0, le=600)] = 5.0
    """On SIGTERM/SIGINT/SIGHUP, how long `serve` lets calls in flight (and, on HTTP, open streams) finish."""


class RestartSettings(_Model):
    """Exponential backoff for servers that fail to start or crash, and what stays listed meanwhile."""

    initial: Annotated[float, Field(gt=0, le=60)] = 0.5
    maximum: Annotated[float, Field(gt=0, le=3600)] = 30.0
    keep_listed: Annotated[float, Field(ge=0, le=86400)] = 30.0
    """How long a server that has been up keeps its last tools, prompts and resources listed while it is down
    and being restarted (calls meanwhile get an error naming it); then they are dropped until it is back."""


class HttpFrontSettings(_Model):
    """The HTTP front (`switchyard serve --http`): DNS-rebinding checks, request size, legacy sessions.

    Loopback names (`127.0.0.1`, `localhost`, `[::1]`, any port) and the bound address are always allowed as
    `Host`; browsers' loopback origins are always allowed as `Origin`. List more here when a proxy or another
    name fronts the gateway. A request without `Origin` (any non-browser client) is allowed.
    """

    allowed_hosts: tuple[str, ...] = Field(default=(), description="extra Host values; 'name:*' allows any port")
    allowed_origins: tuple[str, ...] = Field(default=(), description="extra Origin values; 'scheme://name:*' any port")
    max_body_bytes: Annotated[int, Field(gt=0, le=1024 * 1024 * 1024)] = 4 * 1024 * 1024
    session_idle_timeout: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 30 * 60.0
    max_sessions: Annotated[int, Field(gt=0, le=1_000_000)] = 10_000


class StoreSettings(_Model):
    """Where persistent state (pins, vectors, audit) lives."""

    path: str = _DEFAULT_STORE_PATH

    @property
    def resolved_path(self) -> Path:
        """The store path with `~` expanded; the default's `${XDG_STATE_HOME:-...}` resolved here (a path from
        the file was resolved with the rest of it, and is not resolved twice: `$${X}` stays `${X}`)."""
        path = self.path
        if path == _DEFAULT_STORE_PATH:
            path = cast(str, interpolate(path, os.environ)[0])
        return Path(os.path.expanduser(path))


class OpenAIEncoderSettings(_Model):
    """An OpenAI-compatible `/v1/embeddings` endpoint used instead of the bundled MiniLM encoder."""

    base_url: Annotated[str, Field(pattern=r"^https?://")]
    model: Annotated[str, Field(min_length=1)]
    dim: Annotated[int, Field(gt=0, le=16384)]
    api_key_env: str | None = "OPENAI_API_KEY"


class RetrievalSettings(_Model):
    """How `search_tools` ranks tools."""

    retriever: Literal["bm25", "dense", "hybrid"] = "hybrid"
    encoder: Literal["minilm", "openai"] = "minilm"
    #: what runs the bundled MiniLM: `auto` = OpenVINO where installed and the CPU has native bf16, else onnxruntime
    runtime: Literal["auto", "onnxruntime", "openvino"] = "auto"
    openai: OpenAIEncoderSettings | None = None
    default_k: Annotated[int, Field(ge=1, le=50)] = 10

    @model_validator(mode="after")
    def _openai_needs_settings(self) -> RetrievalSettings:
        if self.encoder == "openai" and self.openai is None:
            raise ValueError("encoder 'openai' needs an 'openai' object with base_url, model and dim")
        return self


class JudgeSettings(_Model):
    """An OpenAI-compatible `/v1/chat/completions` endpoint asked for a second opinion (`switchyard scan --judge`)."""

    base_url: Annotated[str, Field(pattern=r"^https?://")]
    model: Annotated[str, Field(min_length=1)]
    api_key_env: str | None = "OPENAI_API_KEY"
    timeout: Annotated[float, Field(gt=0, le=600)] = 20.0
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4


class ScanSettings(_Model):
    """Scanning of tool definitions when servers come up; `judge` (off by default) is used by `scan --judge`."""

    on_start: bool = True
    quarantine_at: Literal["low", "medium", "high", "critical"] = "high"
    judge: JudgeSettings | None = None


class JwtSettings(_Model):
    """How bearer JWTs are verified: exactly one key source, the issuer, and an algorithm allow-list.

    The audience is always the gateway's `auth.resource_url` (RFC 8707): a token minted for another
    resource is refused.
    """

    jwks_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    public_key: str | None = Field(default=None, description="PEM public key (RS*/ES*/PS*/EdDSA)")
    secret: str | None = Field(default=None, description="shared secret (HS*)")
    issuer: Annotated[str, Field(min_length=1)]
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    groups_claim: str = "groups"
    leeway: Annotated[float, Field(ge=0, le=300)] = 30.0
    jwks_timeout: Annotated[float, Field(gt=0, le=30)] = 5.0

    def __repr__(self) -> str:
        return f"JwtSettings(jwks_url={self.jwks_url!r}, issuer={self.issuer!r}, algorithms={self.algorithms!r})"

    __str__ = __repr__

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Each name in PyJWT's spelling (it compares a token's `alg` exactly: `rs256` would match nothing)."""
        from jwt.algorithms import get_default_algorithms  # noqa: PLC0415 - only a JWT configuration needs it

        known = {name.upper(): name for name in get_default_algorithms()}
        unknown = [a for a in value if a.upper() not in known]
        if unknown:
            names = ", ".join(sorted(n for n in known.values() if n != "none"))
            raise ValueError(f"unknown algorithm(s) {', '.join(unknown)}; known: {names}")
        return tuple(known[a.upper()] for a in value)

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtSettings:
        sources = [s for s in (self.jwks_url, self.public_key, self.secret) if s]
        if len(sources) != 1:
            raise ValueError("set exactly one of jwks_url, public_key or secret")
        algs = {a.upper() for a in self.algorithms}
        if not algs or "NONE" in algs:
            raise ValueError("algorithms must be a non-empty list without 'none'")
        symmetric = {a for a in algs if a.startswith("HS")}
        if self.secret and symmetric != algs:
            raise ValueError("a shared secret only verifies HS256/HS384/HS512")
        if not self.secret and symmetric:
            raise ValueError("HS* algorithms need 'secret' (a public key or JWKS never verifies them)")
        return self


class AuthSettings(_Model):
    """Authentication on the HTTP front. `none` is accepted only when the front binds a loopback address."""

    mode: Literal["none", "api_key", "jwt", "both"] = "api_key"
    resource_url: Annotated[str, Field(pattern=r"^https?://")] | None = Field(
        default=None, description="the gateway's canonical MCP URL, e.g. https://mcp.example.com/mcp"
    )
    authorization_servers: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    jwt: JwtSettings | None = None

    @model_validator(mode="after")
    def _jwt_needs_settings(self) -> AuthSettings:
        if self.mode in ("jwt", "both"):
            if self.jwt is None:
                raise ValueError(f"mode '{self.mode}' needs a 'jwt' object")
            if self.resource_url is None:
                raise ValueError(f"mode '{self.mode}' needs 'resource_url' (the audience tokens must carry)")
        return self


class AccessFilter(_Model):
    """Allow/deny glob patterns; deny wins."""

    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()


class PolicyRule(_Model):
    """What the named principals and groups may see and call. Tool and prompt globs match federated names;
    resource globs match URIs."""

    principals: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    servers: AccessFilter = AccessFilter()
    tools: AccessFilter = AccessFilter()
    prompts: AccessFilter = AccessFilter()
    resources: AccessFilter = AccessFilter()


class PolicySettings(_Model):
    """Per-principal visibility. A principal no rule names gets `default`; the local user is always allowed
    unless a rule names "local" (or its groups)."""

    groups: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="principal (`kind:id`, or a bare id for any kind) -> groups"
    )
    rules: tuple[PolicyRule, ...] = ()
    default: Literal["allow", "deny"] = "allow"


class BucketSettings(_Model):
    """A token bucket: `rate` tokens per second, at most `burst` saved up."""

    rate: Annotated[float, Field(gt=0, le=1_000_000)]
    burst: Annotated[int, Field(ge=1, le=1_000_000)]


class LimitSettings(_Model):
    """Rate limits and concurrency caps. Server-keyed maps accept "*" as the default for every server."""

    per_principal: BucketSettings | None = None
    per_principal_tool: BucketSettings | None = None
    per_upstream: dict[str, BucketSettings] = Field(default_factory=dict)
    concurrency: dict[str, Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=dict)
    queue_wait: Annotated[float, Field(ge=0, le=600)] = Field(
        default=0.0, description="seconds a call may wait for a free concurrency slot before it is refused"
    )
    max_buckets: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000


_DURABLE_INTERVAL_MS = 1000


class AuditSettings(_Model):
    """The audit log: one row per request and decision, in SQLite (WAL) written by a background thread."""

    enabled: bool = True
    path: str | None = Field(default=None, description="default: the store path")
    retention_days: Annotated[float, Field(gt=0)] | None = 90.0
    max_argument_bytes: Annotated[int, Field(ge=64, le=16 * 1024 * 1024)] = 4096
    redact_keys: tuple[str, ...] = (
        "*password*",
        "*passwd*",
        "*secret*",
        "*token*",
        "*api_key*",
        "*apikey*",
        "*authorization*",
        "*cookie*",
        "*credential*",
        "*private_key*",
        "*session*",
    )
    queue_size: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    synchronous: Literal["normal", "full"] = Field(
        default="normal", description="normal survives a killed process; full also survives power loss"
    )
    durable: bool = Field(
        default=False,
        description="answer a call only once its audit row is committed (adds up to commit_interval_ms)",
    )
    commit_interval_ms: Annotated[float, Field(ge=0, le=10_000)] | None = Field(
        default=None,
        description=(
            "how long the writer lets rows gather before one commit (default 100 ms, 10 ms when durable: "
            "each durable call waits up to this long); a killed gateway loses at most this much of the log "
            "unless durable"
        ),
    )

    @model_validator(mode="after")
    def _durable_interval_bounded(self) -> AuditSettings:
        if self.durable and self.commit_interval_ms is not None and self.commit_interval_ms > _DURABLE_INTERVAL_MS:
            raise ValueError(
                f"with durable, every call waits up to commit_interval_ms: at most {_DURABLE_INTERVAL_MS} ms"
            )
        return self

    @property
    def commit_interval(self) -> float:
        """Seconds the writer lets a batch gather: `commit_interval_ms`, else 0.1 (0.01 when durable)."""
        if self.commit_interval_ms is not None:
            return self.commit_interval_ms / 1000.0
        return 0.01 if self.durable else 0.1

    def resolved_path(self, store: StoreSettings) -> Path:
        """The audit database: `path` with variables and `~` resolved, else the store path."""
        if self.path is None:
            return store.resolved_path
        return Path(os.path.expanduser(self.path))  # resolved with the rest of the file


class MrtrSettings(_Model):
    """Input-required (multi round-trip) requests across the gateway."""

    keys: tuple[str, ...] = Field(default=(), description="HMAC keys for sealed requestState; first signs")
    ttl: Annotated[float, Field(gt=0, le=86400)] = 600.0
    max_rounds: Annotated[int, Field(ge=1, le=64)] = 8

    def __repr__(self) -> str:
        return f"MrtrSettings(keys=<{len(self.keys)} hidden>, ttl={self.ttl}, max_rounds={self.max_rounds})"

    __str__ = __repr__  # pydantic's own `__str__` would print the keys


InjectionAction = Literal["annotate", "block", "off"]
SecretAction = Literal["redact", "block", "off"]


class GuardOverride(_Model):
    """One server's output-guard actions (unset keys keep the gateway's)."""

    injection: InjectionAction | None = None
    secrets: SecretAction | None = None


class GuardSettings(_Model):
    """The output guard on tool results, resource reads, prompts and the requests upstreams make of the client
    (sampling, elicitation): injected instructions and secrets.

    `injection`: `annotate` wraps the affected content between visible untrusted-data markers, `block` replaces
    the result by an error saying why. `secrets`: `redact` replaces each secret, `block` refuses the result.
    """

    enabled: bool = True
    injection: InjectionAction = "annotate"
    secrets: SecretAction = "redact"
    servers: dict[str, GuardOverride] = Field(default_factory=dict, description="per-server actions")
    offload_chars: Annotated[int, Field(ge=0, le=1 << 30)] = Field(
        default=65_536, description="results at least this long are scanned on a worker thread"
    )


class ApprovalSettings(_Model):
    """How a human is asked to approve a call."""

    ask_timeout: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=300.0, description="seconds an elicitation waits for the human's answer"
    )
    ttl: Annotated[float, Field(gt=0, le=30 * 86400)] = Field(
        default=3600.0, description="seconds a pending approval, and a given one, stays valid"
    )


class FlowSettings(_Model):
    """The flow policy: an `egress` call after `untrusted` content and `private` data were read in the same
    conversation is held for approval (`approve`), refused (`block`), or only recorded (`audit`)."""

    enabled: bool = True
    action: Literal["approve", "block", "audit"] = "approve"
    heuristics: bool = Field(default=True, description="label tools from their definitions when config does not")
    window: Annotated[float, Field(gt=0, le=30 * 86400)] = Field(
        default=3600.0, description="seconds of inactivity after which a principal's conversation starts afresh"
    )
    max_conversations: Annotated[int, Field(ge=10, le=10_000_000)] = 100_000
    approvals: ApprovalSettings = ApprovalSettings()


class SwitchyardSettings(_Model):
    """Gateway settings under the top-level `switchyard` key."""

    name: str = "switchyard"
    naming: NamingSettings = NamingSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    restart: RestartSettings = RestartSettings()
    store: StoreSettings = StoreSettings()
    http: HttpFrontSettings = HttpFrontSettings()
    exposure: Literal["all", "search", "dynamic"] = "all"
    pinned: tuple[str, ...] = Field(default=(), description="tools always listed in search/dynamic modes")
    working_set: Annotated[int, Field(ge=1, le=128)] = 16
    retrieval: RetrievalSettings = RetrievalSettings()
    scan: ScanSettings = ScanSettings()
    mrtr: MrtrSettings = MrtrSettings()
    pin: Literal["strict", "warn", "off"] = "off"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    auth: AuthSettings = AuthSettings()
    policy: PolicySettings = PolicySettings()
    limits: LimitSettings = LimitSettings()
    audit: AuditSettings = AuditSettings()
    guards: GuardSettings = GuardSettings()
    flows: FlowSettings = FlowSettings()


class GatewayConfig(_Model):
    """The whole configuration: upstream servers by name, and gateway settings."""

    servers: dict[str, ServerConfig] = Field(default_factory=dict, alias="mcpServers")
    switchyard: SwitchyardSettings = SwitchyardSettings()
    source: str | None = Field(default=None, exclude=True)

    def active_servers(self) -> dict[str, ServerConfig]:
        """Servers that are enabled, in configuration order."""
        return {name: cfg for name, cfg in self.servers.items() if cfg.active}

    def call_timeout(self, server: str) -> float:
        """The per-call timeout for a server: its own, else the gateway default."""
        cfg = self.servers.get(server)
        if cfg is not None and cfg.timeout is not None:
            return cfg.timeout
        return self.switchyard.timeouts.call


def interpolate(value: Any, env: Mapping[str, str], path: str = "$") -> tuple[Any, list[ConfigProblem]]:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a JSON tree; `$$` stands for `$`.

    A default may hold braces and references of its own (`${A:-${B}}`, `${A:-{"k": 1}}`). Returns the new
    tree and a problem for each variable that is unset and has no default, each `${` that never closes, and
    each `${...}` that is not a variable reference (VS Code's `${input:...}` prompts, which nobody answers
    here): such a text is left as it was, never sent on half-replaced.
    """
    problems: list[ConfigProblem] = []
    if isinstance(value, str):
        return (_expand(value, env, path, problems) if "$" in value else value), problems
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in cast(dict[str, Any], value).items():
            out[k], p = interpolate(v, env, f"{path}.{k}")
            problems.extend(p)
        return out, problems
    if isinstance(value, list):
        items: list[Any] = []
        for i, v in enumerate(cast(list[Any], value)):
            item, p = interpolate(v, env, f"{path}[{i}]")
            items.append(item)
            problems.extend(p)
        return items, problems
    return value, problems


def _closing_brace(text: str, start: int) -> int:
    """The index of the `}` closing the `{` at `start`, counting nested braces; -1 when it never closes."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _expand(text: str, env: Mapping[str, str], path: str, problems: list[ConfigProblem]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        j = text.find("$", i)
        if j == -1:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if text.startswith("$$", j):
            out.append("$")
            i = j + 2
            continue
        if not text.startswith("${", j):
            out.append("$")
            i = j + 1
            continue
        end = _closing_brace(text, j + 1)
        if end == -1:
            problems.append(ConfigProblem(path, "a '${' is never closed (write $$ for a literal $)"))
            out.append(text[j:])
            break
        body = text[j + 2 : end]
        name = _VAR_NAME.match(body)
        rest = body[name.end() :] if name is not None else body
        if name is None or (rest and not rest.startswith(":-")):
            problems.append(
                ConfigProblem(
                    path,
                    "not a variable reference: write ${NAME} or ${NAME:-default} (an environment variable; "
                    "VS Code's ${input:...} prompts are not supported) or $$ for a literal $",
                )
            )
            out.append(text[j : end + 1])
        elif env.get(name.group(1)) or (not rest and name.group(1) in env):
            out.append(env[name.group(1)])  # set (an empty value counts for ${VAR}; ${VAR:-x} takes x then)
        elif rest:
            out.append(_expand(rest[2:], env, path, problems))
        else:
            var = name.group(1)
            problems.append(ConfigProblem(path, f"environment variable {var} is not set (use ${{{var}:-default}})"))
        i = end + 1
    return "".join(out)


def _server_kind(raw: Any) -> type[StdioServerConfig] | type[HttpServerConfig] | None:
    if not isinstance(raw, dict):
        return None
    entry = cast(dict[str, Any], raw)
    kind = entry.get("type", entry.get("transport"))
    if kind == "stdio" or ("command" in entry and "url" not in entry):
        return StdioServerConfig
    if "url" in entry or kind in ("http", "streamable-http", "streamableHttp", "sse"):
        return HttpServerConfig
    return None


def _loc_path(base: str, loc: tuple[int | str, ...]) -> str:
    out = base
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _problems_from(exc: ValidationError, base: str) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        # Pydantic's message never echoes a value when include_input=False, but a secret field's message could
        # still quote one through a custom validator: say only what kind of value is wanted there.
        if any(str(p) in _SECRET_FIELDS for p in loc) and err["type"] not in _SAFE_SECRET_ERRORS:
            msg = "must be an object mapping names to strings"
        problems.append(ConfigProblem(_loc_path(base, loc), msg))
    return problems


def mask_secrets(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with the secret values of `secrets` (an `env` or `headers` mapping) replaced by `***`.

    A value is treated as secret when its name says so (`*token*`, `*secret*`, `*key*`, `*pass*`, `*auth*`,
    `*cred*`, `*cookie*`, `*session*`) or when it looks like a credential itself: 12 characters or more, no
    whitespace, letters and digits both (`LOG_LEVEL=debug`, `NODE_ENV=production` or a plain URL stay
    readable). Each is masked as it is, without surrounding whitespace, as Python escapes it (`repr` of a value
    with a line break), and so is each word of 8 characters or more in it (the token of `Bearer <token>`).
    """
    forms: set[str] = set()
    for name, value in secrets.items():
        if not (_SECRET_NAME.search(name) or any(_looks_secret(word) for word in value.split())):
            continue
        for form in (value, value.strip(), value.encode("unicode_escape").decode("ascii")):
            if len(form) >= _MIN_MASKED:
                forms.add(form)
        forms.update(word for word in value.split() if len(word) >= 8)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _looks_secret(word: str) -> bool:
    return len(word) >= 12 and any(c.isdigit() for c in word) and any(c.isalpha() for c in word)


def parse_config(data: Any, env: Mapping[str, str] | None = None, source: str | None = None) -> GatewayConfig:
    """Validate a decoded JSON document into a `GatewayConfig`, reporting every problem at once.

    Raises:
        ConfigError: with one `ConfigProblem` per problem found.
    """
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem("$", "the configuration must be a JSON object")], source)
    doc = cast(dict[str, Any], data)
    problems: list[ConfigProblem] = []
    known_top = {"mcpServers", "servers", "switchyard", "inputs", "$schema"}
    for key in doc:
        if key not in known_top:
            allowed = "allowed: mcpServers, servers, switchyard; inputs and $schema are ignored"
            problems.append(ConfigProblem(f"$.{key}", f"unknown key ({allowed})"))
    if "mcpServers" in doc and "servers" in doc:
        problems.append(ConfigProblem("$.servers", "use either mcpServers or servers, not both"))
    server_key = "mcpServers" if "mcpServers" in doc else "servers"
    doc, var_problems = interpolate(doc, os.environ if env is None else env)
    raw_servers: Any = doc.get(server_key, {})
    problems.extend(var_problems)

    servers: dict[str, ServerConfig] = {}
    if not isinstance(raw_servers, dict):
        problems.append(ConfigProblem(f"$.{server_key}", "must be an object mapping server names to entries"))
        raw_servers = {}
    for name, raw in cast(dict[str, Any], raw_servers).items():
        path = f"$.{server_key}.{name}"
        if not name.strip():
            problems.append(ConfigProblem(path, "server names must not be empty"))
            continue
        kind = _server_kind(raw)
        if kind is None:
            problems.append(
                ConfigProblem(path, "must be an object with either 'command' (stdio server) or 'url' (HTTP server)")
            )
            continue
        entry = {k: v for k, v in cast(dict[str, Any], raw).items() if k != "transport"}
        if "transport" in cast(dict[str, Any], raw) and "type" not in entry:
            entry["type"] = cast(dict[str, Any], raw)["transport"]
        try:
            servers[name] = kind.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, path))

    settings = SwitchyardSettings()
    try:
        settings = SwitchyardSettings.model_validate(doc.get("switchyard", {}))
    except ValidationError as exc:
        problems.extend(_problems_from(exc, "$.switchyard"))

    if problems:
        raise ConfigError(problems, source)
    return GatewayConfig.model_validate({"mcpServers": servers, "switchyard": settings, "source": source})


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate a configuration file.

    Raises:
        ConfigError: the file is missing, is not JSON, or does not validate (every problem listed).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem("$", f"cannot read file: {exc.strerror or exc}")], str(p)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [ConfigProblem("$", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")], str(p)
        ) from None
    return parse_config(data, env, str(p))
