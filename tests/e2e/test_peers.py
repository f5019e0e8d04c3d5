"""Every real peer starts and answers, spoken to directly with the SDK client (no Switchyard in between).

These tests check the test bed itself: the servers `scripts/bootstrap` installs, the fixture servers in
tests/fixtures/servers/, and the command-line clients. When a gateway test fails, this file tells whether the
peer or the gateway is at fault. Each fixture's advertised behaviour (crash, hang, garbage, progress,
cancellation, list changes, elicitation) is checked here once, in both protocol eras.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.types import ElicitResult, TextContent

from switchyard.config import StdioServerConfig, load_config

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
MODES = ["auto", "legacy"]
STEP_TIMEOUT = 30.0


@asynccontextmanager
async def connect(params: StdioServerParameters, mode: str, **kwargs: Any) -> AsyncIterator[Client]:
    """A connected SDK client, with a bound on start-up."""
    async with Client(params, mode=mode, read_timeout_seconds=STEP_TIMEOUT, **kwargs) as client:  # type: ignore[arg-type]
        yield client


def text_of(result: Any) -> str:
    """The text of a result's first content block."""
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return block.text


def expected_era(mode: str, modern_capable: bool) -> str:
    return MODERN if mode == "auto" and modern_capable else LEGACY


# --- real servers ------------------------------------------------------------------------------------------

# name -> (tools that must be listed, whether the server speaks 2026-07-28)
REAL_SERVERS: dict[str, tuple[set[str], bool]] = {
    "time": ({"get_current_time", "convert_time"}, True),
    "git": ({"git_status", "git_log", "git_diff"}, True),
    "everything": ({"echo", "get-sum"}, False),
    "memory": ({"create_entities", "read_graph"}, False),
    "filesystem": ({"read_text_file", "list_directory", "write_file"}, False),
    "legacy": ({"echo", "add", "ask_name"}, False),
}


def real_server(peers: Any, name: str, tmp_path: Path, repo_root: Path) -> StdioServerParameters:
    if name == "time":
        return peers.time_server()
    if name == "git":
        return peers.git_server(repo_root)
    if name == "everything":
        return peers.everything_server()
    if name == "memory":
        return peers.memory_server(tmp_path / "memory.jsonl")
    if name == "filesystem":
        (tmp_path / "hello.txt").write_text("hello from the sandbox\n", encoding="utf-8")
        return peers.filesystem_server(tmp_path)
    if name == "legacy":
        return peers.legacy_server("legacy_basic")
    raise AssertionError(name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(REAL_SERVERS))
async def test_real_server_starts_lists_its_tools_and_negotiates_its_era(
    peers: Any, name: str, mode: str, tmp_path: Path, repo_root: Path
) -> None:
    params = real_server(peers, name, tmp_path, repo_root)
    must_list, modern_capable = REAL_SERVERS[name]
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(params, mode) as client:
            assert client.protocol_version == expected_era(mode, modern_capable)
            tools = {t.name for t in (await client.list_tools()).tools}
            assert must_list <= tools, f"{name}: missing {must_list - tools}"


@pytest.mark.parametrize("mode", MODES)
async def test_real_servers_answer_a_tool_call(peers: Any, mode: str, tmp_path: Path, repo_root: Path) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.time_server(), mode) as client:
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
            assert not result.is_error
            assert "UTC" in text_of(result)
        async with connect(peers.git_server(repo_root), mode) as client:
            result = await client.call_tool("git_log", {"repo_path": str(repo_root), "max_count": 1})
            assert not result.is_error, text_of(result)
        async with connect(peers.everything_server(), mode) as client:
            result = await client.call_tool("get-sum", {"a": 2, "b": 3})
            assert "5" in text_of(result)
        (tmp_path / "hello.txt").write_text("hello from the sandbox\n", encoding="utf-8")
        async with connect(peers.filesystem_server(tmp_path), mode) as client:
            result = await client.call_tool("read_text_file", {"path": str(tmp_path / "hello.txt")})
            assert "hello from the sandbox" in text_of(result)
        async with connect(peers.memory_server(tmp_path / "memory.jsonl"), mode) as client:
            entity = {"name": "switchyard", "entityType": "project", "observations": ["a gateway"]}
            await client.call_tool("create_entities", {"entities": [entity]})
            assert "switchyard" in text_of(await client.call_tool("read_graph", {}))


# --- fixture servers ---------------------------------------------------------------------------------------

FIXTURE_TOOLS: dict[str, set[str]] = {
    "asker": {"summarize"},
    "big": {"big", "ok"},
    "changing": {"add_tool", "remove_tool", "end_streams", "ok"},
    "chatty": {"say", "report"},
    "crash": {"crash_now", "ok", "pid"},
    "elicit": {"ask_name", "ok"},
    "fast": {"echo", "add"},
    "files_secret": {"list_files", "read_file"},
    "garbage": {"ok", "noisy"},
    "hang": {"hang", "hang_blocking", "ok"},
    "inbox": {"list_emails", "read_email"},
    "progress": {"count", "wait_for_cancel", "ok"},
    "rugpull": {"forecast"},
    "shadow": {"add"},
    "slow_start": {"ok"},
    "subres": {"touch"},
    "stderr_noise": {"noise", "ok"},
    "web": {"fetch_page", "post_message", "list_outbox"},
}


def test_every_fixture_server_is_covered(peers: Any) -> None:
    assert sorted(FIXTURE_TOOLS) == peers.fixture_names()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(FIXTURE_TOOLS))
async def test_fixture_server_starts_and_lists_its_tools(peers: Any, name: str, mode: str) -> None:
    args = ("0.2",) if name == "slow_start" else ()
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server(name, *args), mode) as client:
            assert client.protocol_version == expected_era(mode, modern_capable=True)
            assert {t.name for t in (await client.list_tools()).tools} == FIXTURE_TOOLS[name]


@pytest.mark.parametrize("mode", MODES)
async def test_fast_fixture_serves_tools_a_prompt_and_a_resource(peers: Any, mode: str) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("fast"), mode) as client:
            assert text_of(await client.call_tool("echo", {"text": "hi"})) == "hi"
            assert text_of(await client.call_tool("add", {"a": 2, "b": 3})) == "5"
            assert [p.name for p in (await client.list_prompts()).prompts] == ["greet"]
            prompt = await client.get_prompt("greet", {"name": "Ada"})
            assert "Ada" in str(prompt.messages[0].content)
            read = await client.read_resource("fixture://fast/readme")
            assert getattr(read.contents[0], "text", None) == "fast fixture server"


@pytest.mark.parametrize("mode", MODES)
async def test_crash_fixture_dies_in_the_middle_of_a_call(peers: Any, mode: str) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("crash"), mode) as client:
            assert text_of(await client.call_tool("ok", {})) == "ok"
            with pytest.raises(MCPError, match="Connection closed"):
                await client.call_tool("crash_now", {})


@pytest.mark.parametrize("mode", MODES)
async def test_hang_fixture_never_answers_but_stays_cancellable(peers: Any, mode: str) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("hang"), mode) as client:
            with anyio.move_on_after(0.5) as scope:
                await client.call_tool("hang", {})
            assert scope.cancelled_caught
            assert text_of(await client.call_tool("ok", {})) == "ok"


@pytest.mark.parametrize("mode", MODES)
async def test_garbage_fixture_still_serves_between_garbage_lines(peers: Any, mode: str) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("garbage"), mode) as client:
            assert text_of(await client.call_tool("ok", {})) == "ok"
            assert text_of(await client.call_tool("noisy", {"text": "still here"})) == "still here"


async def test_big_fixture_returns_a_20_mb_text_result(peers: Any) -> None:
    with anyio.fail_after(STEP_TIMEOUT * 2):
        async with connect(peers.fixture_server("big"), "auto") as client:
            result = await client.call_tool("big", {})
            assert len(text_of(result)) == 20 * 1024 * 1024
            assert result.structured_content is None
            assert len(text_of(await client.call_tool("big", {"size": 10}))) == 10


async def test_slow_start_fixture_takes_its_delay_before_serving(peers: Any) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        started = anyio.current_time()
        async with connect(peers.fixture_server("slow_start", "1"), "auto") as client:
            assert text_of(await client.call_tool("ok", {})) == "ok"
        assert anyio.current_time() - started >= 1.0


@pytest.mark.parametrize("mode", MODES)
async def test_progress_fixture_reports_every_step(peers: Any, mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("progress"), mode) as client:
            result = await client.call_tool("count", {"steps": 3}, progress_callback=on_progress)
            assert text_of(result) == "counted 3"
    assert seen == [(1, 3, "step 1 of 3"), (2, 3, "step 2 of 3"), (3, 3, "step 3 of 3")]


def _file_says(path: Path, text: str) -> bool:
    return path.exists() and path.read_text(encoding="utf-8") == text


async def _wait_for_file_text(path: Path, text: str) -> None:
    while not _file_says(path, text):  # noqa: ASYNC110 - the server's only signal is a file
        await anyio.sleep(0.02)


@pytest.mark.parametrize("mode", MODES)
async def test_progress_fixture_records_that_a_cancellation_reached_it(peers: Any, mode: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("progress"), mode) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "wait_for_cancel", {"marker": str(marker)})
                await _wait_for_file_text(marker, "started")
                tg.cancel_scope.cancel()
            await _wait_for_file_text(marker, "cancelled")
            assert text_of(await client.call_tool("ok", {})) == "ok"


async def test_changing_fixture_announces_tool_changes_on_the_modern_listen_stream(peers: Any) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("changing"), "auto") as client:
            assert client.protocol_version == MODERN
            async with client.listen(tools_list_changed=True) as sub:
                assert text_of(await client.call_tool("add_tool", {"name": "zap"})) == "added zap"
                await sub.__aiter__().__anext__()
            assert "zap" in {t.name for t in (await client.list_tools()).tools}
            assert text_of(await client.call_tool("zap", {"text": "hi"})) == "zap: hi"


async def test_changing_fixture_announces_tool_changes_on_a_legacy_session(peers: Any) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if getattr(getattr(message, "root", message), "method", None) == "notifications/tools/list_changed":
            changed.set()

    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("changing"), "legacy", message_handler=on_message) as client:
            assert text_of(await client.call_tool("add_tool", {"name": "zap"})) == "added zap"
            await changed.wait()
            assert "zap" in {t.name for t in (await client.list_tools()).tools}
            changed = anyio.Event()
            assert text_of(await client.call_tool("remove_tool", {"name": "zap"})) == "removed zap"
            await changed.wait()
            assert "zap" not in {t.name for t in (await client.list_tools()).tools}


async def _answer_ada(context: Any, params: Any) -> ElicitResult:
    return ElicitResult(action="accept", content={"name": "Ada"})


@pytest.mark.parametrize("mode", MODES)
async def test_elicit_fixture_asks_the_client_in_either_era(peers: Any, mode: str) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("elicit"), mode, elicitation_callback=_answer_ada) as client:
            assert text_of(await client.call_tool("ask_name", {})) == "Hello, Ada!"


async def test_elicit_fixture_returns_input_required_to_a_modern_client(peers: Any) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.fixture_server("elicit"), "auto", elicitation_callback=_answer_ada) as client:
            result = await client.session.call_tool("ask_name", {}, allow_input_required=True)
            assert result.result_type == "input_required"


@pytest.mark.parametrize("mode", MODES)
async def test_legacy_fixture_elicits_with_a_pushed_request(peers: Any, mode: str) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(peers.legacy_server(), mode, elicitation_callback=_answer_ada) as client:
            assert client.protocol_version == LEGACY
            assert text_of(await client.call_tool("ask_name", {})) == "Hello, Ada!"
            assert [p.name for p in (await client.list_prompts()).prompts] == ["greet"]
            read = await client.read_resource("fixture://legacy/readme")
            assert getattr(read.contents[0], "text", None) == "legacy fixture server"


# --- servers over Streamable HTTP --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "modern_capable"), [("fast", True), ("legacy_basic", False)])
async def test_fixture_server_serves_streamable_http(peers: Any, name: str, modern_capable: bool, mode: str) -> None:
    with peers.http_fixture_server(name) as url, anyio.fail_after(STEP_TIMEOUT):
        async with Client(url, mode=mode, read_timeout_seconds=STEP_TIMEOUT) as client:  # type: ignore[arg-type]
            assert client.protocol_version == expected_era(mode, modern_capable)
            assert text_of(await client.call_tool("echo", {"text": "over http"})) == "over http"


async def test_everything_server_serves_streamable_http(peers: Any) -> None:
    with peers.http_everything_server() as url, anyio.fail_after(STEP_TIMEOUT):
        async with Client(url, mode="auto", read_timeout_seconds=STEP_TIMEOUT) as client:  # type: ignore[arg-type]
            assert client.protocol_version == LEGACY
            assert "5" in text_of(await client.call_tool("get-sum", {"a": 2, "b": 3}))


# --- command-line clients ----------------------------------------------------------------------------------


def test_inspector_cli_lists_and_calls_tools_of_a_stdio_server(peers: Any) -> None:
    cli = peers.inspector_cli()
    server = peers.fixture_server("fast")
    listed = subprocess.run(
        cli.command(server.command, *server.args, "--method", "tools/list"),
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=True,
    )
    assert {t["name"] for t in json.loads(listed.stdout)["tools"]} == {"echo", "add"}
    called = subprocess.run(
        cli.command(
            server.command, *server.args, "--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=2", "b=3"
        ),
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=True,
    )
    assert json.loads(called.stdout)["content"][0]["text"] == "5"


@pytest.mark.parametrize("series", ["0.1", "0.2"])
def test_conformance_suite_runs_on_node_22(peers: Any, series: str) -> None:
    cli = peers.conformance_cli(series)
    version = subprocess.run(
        cli.command("--version"), cwd=cli.cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=True
    )
    assert version.stdout.strip().startswith(series)
    listed = subprocess.run(
        cli.command("list"), cwd=cli.cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=True
    )
    assert listed.stdout.strip()


# --- the example configuration -----------------------------------------------------------------------------


def example_servers(repo_root: Path, sandbox: Path) -> dict[str, StdioServerParameters]:
    """examples/servers.json as scripts/serve runs it, as SDK stdio parameters."""
    env = {**os.environ, "SWITCHYARD_ROOT": str(repo_root), "SWITCHYARD_SANDBOX": str(sandbox)}
    config = load_config(repo_root / "examples" / "servers.json", env=env)
    out: dict[str, StdioServerParameters] = {}
    for name, server in config.active_servers().items():
        assert isinstance(server, StdioServerConfig), name
        out[name] = StdioServerParameters(
            command=server.command, args=list(server.args), env=dict(server.env) or None, cwd=server.cwd
        )
    return out


def test_example_configuration_names_only_installed_commands(peers: Any, repo_root: Path, tmp_path: Path) -> None:
    peers.everything_server()  # skip (or fail in CI) when the npm peers are not installed
    servers = example_servers(repo_root, tmp_path)
    assert set(servers) == {"time", "git", "everything", "memory", "files"}
    for name, params in servers.items():
        assert Path(params.command).exists(), f"{name}: {params.command} (run scripts/bootstrap serve)"


@pytest.mark.parametrize("name", ["time", "git", "everything", "memory", "files"])
async def test_example_configuration_server_starts_and_lists_tools(
    peers: Any, repo_root: Path, tmp_path: Path, name: str
) -> None:
    peers.everything_server()  # skip (or fail in CI) when the npm peers are not installed
    params = example_servers(repo_root, tmp_path)[name]
    if params.env and "MEMORY_FILE_PATH" in params.env:
        params.env["MEMORY_FILE_PATH"] = str(tmp_path / "memory.jsonl")
    with anyio.fail_after(STEP_TIMEOUT):
        async with connect(params, "auto") as client:
            assert (await client.list_tools()).tools
