"""`@modelcontextprotocol/inspector-cli` (the TypeScript SDK's client) against Switchyard's stdio front.

Each run of the CLI starts `switchyard serve -c <config>` (which starts the `fast` fixture server), sends one
request and prints the result as JSON. The same request sent by the CLI straight to the fixture server must
print the same JSON, minus the `fast__` name prefix.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

RUN_TIMEOUT = 60.0
PREFIX = "fast__"


def switchyard_command() -> str:
    for candidate in (Path(sys.executable).parent / "switchyard", Path(__file__).parents[2] / ".venv/bin/switchyard"):
        if candidate.exists():
            return str(candidate)
    pytest.fail("the switchyard console script is not installed: run scripts/bootstrap")


@pytest.fixture(scope="module")
def targets(peers: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The command lines the CLI starts: the fixture server directly, and the gateway in front of it."""
    server = peers.fixture_server("fast")
    directory = tmp_path_factory.mktemp("inspector")
    config = directory / "servers.json"
    # The store (pins, audit log) in the temporary directory, not in the user's state directory.
    doc = {"mcpServers": {"fast": peers.server_entry(server)}, "switchyard": {"store": {"path": str(directory / "db")}}}
    config.write_text(json.dumps(doc), encoding="utf-8")
    # Every path is absolute: the CLI must run in its own package directory (see peers.inspector_cli).
    return {
        "direct": [server.command, *server.args],
        "gateway": [switchyard_command(), "serve", "-c", str(config.resolve())],
    }


def inspect_both(peers: Any, targets: dict[str, list[str]], direct: list[str], through: list[str]) -> tuple[Any, Any]:
    """Run the CLI against the server (`direct` arguments) and the gateway (`through`) at the same time;
    each one's stdout parsed as JSON."""
    cli = peers.inspector_cli()
    runs = [
        subprocess.Popen(
            cli.command(*targets[which], *args),
            cwd=cli.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for which, args in (("direct", direct), ("gateway", through))
    ]
    outputs: list[Any] = []
    try:
        for run in runs:
            stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
            assert run.returncode == 0, f"inspector-cli {run.args} exited with {run.returncode}:\n{stderr[-3000:]}"
            outputs.append(json.loads(stdout))
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
    return outputs[0], outputs[1]


def test_tools_list_through_the_gateway_is_the_servers_list_with_prefixed_names(
    peers: Any, targets: dict[str, list[str]]
) -> None:
    direct, through = inspect_both(peers, targets, ["--method", "tools/list"], ["--method", "tools/list"])
    names = [t["name"] for t in through["tools"]]
    assert names == ["fast__echo", "fast__add"]
    assert all("inputSchema" in t and "outputSchema" in t for t in through["tools"])
    unprefixed = [{**t, "name": t["name"].removeprefix(PREFIX)} for t in through["tools"]]
    assert unprefixed == direct["tools"]


@pytest.mark.parametrize(
    ("tool", "tool_args", "text"),
    [("add", ["a=2", "b=3"], "5"), ("echo", ["text=through the gateway"], "through the gateway")],
)
def test_tools_call_through_the_gateway_gives_the_servers_result(
    peers: Any, targets: dict[str, list[str]], tool: str, tool_args: list[str], text: str
) -> None:
    args = ["--method", "tools/call", "--tool-arg", *tool_args]
    direct, through = inspect_both(peers, targets, [*args, "--tool-name", tool], [*args, "--tool-name", PREFIX + tool])
    assert through["content"] == [{"type": "text", "text": text}]
    assert through.get("isError", False) is False
    assert through == direct


def test_prompt_and_resource_through_the_gateway_match(peers: Any, targets: dict[str, list[str]]) -> None:
    prompt = ["--method", "prompts/get", "--prompt-args", "name=Ada"]
    direct, through = inspect_both(
        peers, targets, [*prompt, "--prompt-name", "greet"], [*prompt, "--prompt-name", PREFIX + "greet"]
    )
    assert "Ada" in json.dumps(through["messages"])
    assert through == direct
    read = ["--method", "resources/read", "--uri", "fixture://fast/readme"]
    direct, through = inspect_both(peers, targets, read, read)
    assert through["contents"][0]["text"] == "fast fixture server"
    assert through == direct
