"""Support for tests/e2e/test_fidelity.py: starting the gateway and direct clients, normalising results,
and the `bench` fixture (one gateway in front of every server, plus a direct client to a copy of each)."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CreateMessageResult,
    ElicitResult,
    Implementation,
    ListRootsResult,
    Root,
    TextContent,
)

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
STEP_TIMEOUT = 30.0
SEP = "__"
CLIENT_INFO = Implementation(name="switchyard-fidelity-test", version="1.0.0")


# --- starting things ---------------------------------------------------------------------------------------


def switchyard_command() -> str:
    """The `switchyard` console script of the venv running the tests."""
    candidates = [
        Path(sys.executable).parent / "switchyard",
        Path(__file__).parents[2] / ".venv" / "bin" / "switchyard",
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    pytest.fail(f"the switchyard console script is not installed (looked for {candidates}): run scripts/bootstrap")


def write_config(directory: Path, servers: dict[str, StdioServerParameters], peers: Any) -> Path:
    """A Claude-style configuration with these servers, for the forwarding path as it is.

    - Generous connect time: npm servers start slowly on a busy machine.
    - The store (and with it the audit log, which stays on) lives in `directory`, not in the user's state dir.
    - The runtime guards are off: by design they change what passes (the output guard annotates content it
      reads as injected instructions and redacts secrets; the flow policy holds a risky sequence of calls for
      approval, asked by elicitation). Fidelity is about everything else; tests/guards/ covers them.
    """
    doc = {
        "mcpServers": {name: peers.server_entry(params) for name, params in servers.items()},
        "switchyard": {
            "timeouts": {"connect": STEP_TIMEOUT, "startup": STEP_TIMEOUT},
            "store": {"path": str(directory / "switchyard.db")},
            "guards": {"enabled": False},
            "flows": {"enabled": False},
        },
    }
    path = directory / "servers.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def gateway_params(config: Path) -> StdioServerParameters:
    """`switchyard serve -c <config>`: the stdio front, as a server for the SDK client.

    The gateway gets the SDK's default environment, plus the tests' PYTHONPATH when there is one (so a run
    against another source tree tests that tree's gateway)."""
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else None
    return StdioServerParameters(command=switchyard_command(), args=["serve", "-c", str(config)], env=env)


def era_view_asked(asked: list[tuple[str, Any]], client: Client) -> list[tuple[str, Any]]:
    """Pushed requests as a client in `client`'s era can receive them.

    `elicitationId` of URL-mode elicitation is a 2025-11-25 field that 2026-07-28 removed (changelog item 11:
    under MRTR the client learns the outcome by retrying), so a modern client never sees it.
    """
    if client.protocol_version != MODERN:
        return asked
    return [
        (method, {k: v for k, v in params.items() if k != "elicitationId"})
        if method == "elicitation/create" and params.get("mode") == "url"
        else (method, params)
        for method, params in asked
    ]


class Answers:
    """The client features every test client declares (sampling, elicitation, roots), with fixed answers, and
    a record of the requests each received. server-everything lists its sampling, elicitation and roots tools
    only to clients that declare these, so the direct client and the gateway's client must both declare them.
    """

    ROOTS = ListRootsResult(roots=[Root(uri="file:///tmp/fidelity", name="fidelity")])
    FORM: ClassVar[dict[str, Any]] = {"name": "Ada", "check": True, "integer": 7}

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []

    async def sampling(self, context: Any, params: Any) -> CreateMessageResult:
        self.received.append(("sampling/createMessage", wire(params)))
        text = json.dumps([wire(m) for m in params.messages], sort_keys=True)
        return CreateMessageResult(
            role="assistant",
            content=TextContent(type="text", text=f"sampled {len(text)} characters"),
            model="fidelity-model",
            stop_reason="endTurn",
        )

    async def elicitation(self, context: Any, params: Any) -> ElicitResult:
        self.received.append(("elicitation/create", wire(params)))
        if getattr(params, "mode", None) == "url":
            return ElicitResult(action="accept")
        return ElicitResult(action="accept", content=self.FORM)

    async def roots(self, context: Any) -> ListRootsResult:
        return self.ROOTS

    def callbacks(self) -> dict[str, Any]:
        return {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "list_roots_callback": self.roots,
        }


def open_client(params: StdioServerParameters, mode: str, answers: Answers | None = None, **kwargs: Any) -> Client:
    # cache=None: the client's response cache would hide what the server said the second time we ask.
    return Client(
        params,
        mode=mode,  # type: ignore[arg-type]
        read_timeout_seconds=STEP_TIMEOUT,
        client_info=CLIENT_INFO,
        cache=None,
        **(answers or Answers()).callbacks(),
        **kwargs,
    )


@asynccontextmanager
async def connect(params: StdioServerParameters, mode: str, **kwargs: Any) -> AsyncIterator[Client]:
    async with open_client(params, mode, **kwargs) as client:
        yield client


# --- normalisation -----------------------------------------------------------------------------------------

_SERVER_INFO = "io.modelcontextprotocol/serverInfo"


def wire(model: Any) -> Any:
    """A result as JSON, the way the SDK writes it on the wire."""
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def strip_hop_fields(result: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Remove the result-level fields that describe the answering hop, not the server's answer.

    Returns the result without them, and the `serverInfo` stamp it carried (None if none), which the tests
    check on their own (`assert_stamps`):
    - `_meta["io.modelcontextprotocol/serverInfo"]`: on the modern wire every result names the server that
      sent it; through the gateway that must be Switchyard, directly the upstream; the legacy wire has none.
    - `ttlMs`, `cacheScope`: cache hints of the hop; the front always says "0 ms, private" because its
      catalog can change at any time and later becomes caller-specific (server/mcp.py). The client fills in
      the same defaults when a legacy server sends none.
    Any other `_meta` key must survive unchanged.
    """
    out = dict(result)
    out.pop("ttlMs", None)
    out.pop("cacheScope", None)
    stamp = None
    meta = out.get("_meta")
    if isinstance(meta, dict):
        stamp = meta.get(_SERVER_INFO)
        kept = {k: v for k, v in meta.items() if k != _SERVER_INFO}
        if kept:
            out["_meta"] = kept
        else:
            del out["_meta"]
    return out, stamp


def era_view(tools: list[dict[str, Any]], client: Client) -> list[dict[str, Any]]:
    """Tools as a client in `client`'s era can see them.

    `execution` (`taskSupport`) is a 2025-11-25 field: the 2026-07-28 schema has no such member (Tasks became
    an extension), so a modern wire never carries it, from the gateway or from any other server.
    """
    if client.protocol_version != MODERN:
        return tools
    return [{k: v for k, v in tool.items() if k != "execution"} for tool in tools]


# server-everything stamps the dynamic resources it makes up (resources/templates.js: textResource and
# blobResource, used by the resource templates, get-resource-reference and resource-prompt) with
# `new Date().toLocaleTimeString()`. Two processes asked a moment apart differ there and nowhere else.
_CLOCK = re.compile(r"created at \d{1,2}:\d{2}:\d{2}(?:\s?[AP]M)?")
_DYNAMIC_PREFIX = "demo://resource/dynamic/"


# trigger-url-elicitation's error path makes up the id of the prerequisite elicitation it asks for with
# `randomUUID()` (tools/trigger-url-elicitation.js); every other elicitation id in these tests is given.
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _unclock(text: str) -> str:
    return _CLOCK.sub("created at <time>", text)


def normalise_volatile(node: Any) -> Any:
    """Replace the volatile values named above, and only those, by placeholders (recursively)."""
    if isinstance(node, list):
        return [normalise_volatile(item) for item in node]  # pyright: ignore[reportUnknownVariableType]
    if not isinstance(node, dict):
        return node
    out = {k: normalise_volatile(v) for k, v in node.items()}  # pyright: ignore[reportUnknownVariableType]
    if out.get("mode") == "url" and _UUID.match(str(out.get("elicitationId", ""))):
        out["elicitationId"] = "<random uuid>"
    uri = out.get("uri")
    if isinstance(uri, str) and uri.startswith(_DYNAMIC_PREFIX):
        if isinstance(out.get("text"), str):
            out["text"] = _unclock(out["text"])
        if isinstance(out.get("blob"), str):
            decoded = base64.b64decode(out["blob"]).decode("utf-8")
            out["blob"] = base64.b64encode(_unclock(decoded).encode("utf-8")).decode("ascii")
    return out


def unprefix_names(items: list[dict[str, Any]], server: str) -> list[dict[str, Any]]:
    """Tools or prompts as listed by the gateway, with the `<server>__` prefix checked and removed."""
    prefix = f"{server}{SEP}"
    out: list[dict[str, Any]] = []
    for item in items:
        name = item["name"]
        assert name.startswith(prefix), f"{name!r} lacks the prefix {prefix!r}"
        out.append({**item, "name": name[len(prefix) :]})
    return out


def comparable(result: Any) -> Any:
    """A result (model) ready to compare: its wire form, minus the hop fields, with volatile values replaced."""
    return normalise_volatile(strip_hop_fields(wire(result))[0])


@dataclass
class Outcome:
    """What one request produced: a result, or a JSON-RPC error; plus the progress it reported."""

    result: Any = None
    error: tuple[int, str, Any] | None = None
    progress: list[tuple[float, float | None, str | None]] = field(default_factory=list)
    stamp: Any = None
    asked: list[tuple[str, Any]] = field(default_factory=list)


async def outcome(request: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Outcome:
    out = Outcome()
    try:
        answer = await request(*args, **kwargs)
        out.stamp = strip_hop_fields(wire(answer))[1]
        out.result = comparable(answer)
    except MCPError as exc:
        out.error = (exc.code, exc.message, normalise_volatile(exc.data))
    return out


def expected_stamp(client: Client) -> Any:
    """The `serverInfo` stamp every result from `client`'s server carries: that server's own info on the modern
    wire (for the gateway: Switchyard, never the upstream behind it), nothing on the legacy wire."""
    if client.protocol_version != MODERN:
        return None
    assert client.server_info is not None
    return wire(client.server_info)


# --- the bench: one gateway in front of every server, and a direct client to a copy of each ---------------


class Inbox:
    """Every notification the gateway sent the client, and a way to wait for one."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._arrived = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, Exception):
            return
        self.messages.append(getattr(message, "root", message))
        self._arrived.set()
        self._arrived = anyio.Event()

    def mark(self) -> int:
        """A position: `wait_for` looks only at what arrives after it."""
        return len(self.messages)

    async def wait_for(self, method: str, since: int, uri: str | None = None) -> Any:
        """The first notification of `method` (about `uri`, if given) that arrived after `since`."""
        while True:
            arrived = self._arrived
            for message in self.messages[since:]:
                if getattr(message, "method", None) != method:
                    continue
                if uri is None or str(getattr(message.params, "uri", "")) == uri:
                    return message
            since = len(self.messages)
            await arrived.wait()


@dataclass
class Bench:
    """A gateway client and direct clients, all in one mode."""

    mode: str
    via: Client
    direct: dict[str, Client]
    inbox: Inbox
    answers: dict[str, Answers]
    """What each client's sampling and elicitation callbacks received, by server name ("<gateway>": via)."""

    def direct_to(self, server: str) -> Client:
        return self.direct[server]

    def assert_same(self, server: str, direct: Outcome, through: Outcome) -> None:
        """The two outcomes are equal, and each result names the server that answered it (and only that one)."""
        assert through.error == direct.error
        assert through.result == direct.result
        if direct.error is None:
            assert direct.stamp == expected_stamp(self.direct_to(server))
        if through.error is None:
            assert through.stamp == expected_stamp(self.via)


RICH_SERVER = Path(__file__).with_name("rich_server.py")
RICH_LEGACY_SERVER = Path(__file__).with_name("rich_legacy_server.py")
# The two rich servers answer with the same content (rich_data.py), each under its own URI scheme.
RICH_SCHEMES = {"rich": "rich", "rich_legacy": "rich-legacy"}


def bench_servers(peers: Any) -> dict[str, StdioServerParameters]:
    return {
        "everything": peers.everything_server(),
        "legacy": peers.legacy_server(),
        "progress": peers.fixture_server("progress"),
        # Every optional field server-everything never sends (audio, icons, _meta, ...): see rich_server.py.
        "rich": StdioServerParameters(command=str(peers.venv_python()), args=[str(RICH_SERVER), "rich"]),
        # The same content from a handshake-era server that speaks the wire without an SDK, on the legacy venv.
        "rich_legacy": StdioServerParameters(
            command=str(peers.legacy_python()), args=[str(RICH_LEGACY_SERVER), "rich-legacy"]
        ),
    }


@pytest.fixture(scope="module", params=MODES)
async def bench(
    request: pytest.FixtureRequest, peers: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Bench]:
    """Per mode: `switchyard serve` over every server of `bench_servers`, and a direct client to another copy
    of each. Shared by the module's tests: starting is the slow part."""
    mode: str = request.param
    servers = bench_servers(peers)
    config = write_config(tmp_path_factory.mktemp(f"fidelity-{mode}"), servers, peers)
    async with AsyncExitStack() as stack:
        clients: dict[str, Client] = {}
        inbox = Inbox()
        answers: dict[str, Answers] = {}

        async def start(name: str, params: StdioServerParameters, **kwargs: Any) -> None:
            answers[name] = Answers()
            clients[name] = await stack.enter_async_context(open_client(params, mode, answers[name], **kwargs))

        # One at a time: each client's task group must be entered and left by this task, in order.
        await start("<gateway>", gateway_params(config), message_handler=inbox)
        for name, params in servers.items():
            await start(name, params)
        via = clients.pop("<gateway>")
        yield Bench(mode=mode, via=via, direct=clients, inbox=inbox, answers=answers)
