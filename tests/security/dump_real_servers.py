"""Regenerate tests/security/real_servers/*.json: the tools/prompts/resources lists of real MCP servers.

Run by hand (`python tests/security/dump_real_servers.py`) when the reference servers change; the test suite
only reads the dumps, so it needs neither node nor network. Each dump is a `tools/list`-style JSON object.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).parent / "real_servers"
NODE_BIN = Path(__file__).resolve().parents[2] / ".cache" / "npm" / "node_modules" / ".bin"


def servers(workdir: str) -> dict[str, StdioServerParameters]:
    """The reference servers named in issue 4, as stdio commands."""
    py = sys.executable
    return {
        "mcp-server-time": StdioServerParameters(command=py, args=["-m", "mcp_server_time"]),
        "mcp-server-git": StdioServerParameters(command=py, args=["-m", "mcp_server_git", "--repository", workdir]),
        "server-everything": StdioServerParameters(command=str(NODE_BIN / "mcp-server-everything")),
        "server-filesystem": StdioServerParameters(command=str(NODE_BIN / "mcp-server-filesystem"), args=[workdir]),
        "server-memory": StdioServerParameters(command=str(NODE_BIN / "mcp-server-memory")),
    }


async def dump(params: StdioServerParameters) -> dict[str, Any]:
    """List everything a server declares."""
    out: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        if init.instructions:
            out["instructions"] = init.instructions
        caps = init.capabilities
        out["tools"] = [
            t.model_dump(mode="json", exclude_none=True, by_alias=True) for t in (await session.list_tools()).tools
        ]
        if caps.prompts:
            out["prompts"] = [
                p.model_dump(mode="json", exclude_none=True, by_alias=True)
                for p in (await session.list_prompts()).prompts
            ]
        if caps.resources:
            out["resources"] = [
                r.model_dump(mode="json", exclude_none=True, by_alias=True)
                for r in (await session.list_resources()).resources
            ]
            out["resourceTemplates"] = [
                r.model_dump(mode="json", exclude_none=True, by_alias=True)
                for r in (await session.list_resource_templates()).resource_templates
            ]
    return out


async def main() -> None:
    HERE.mkdir(exist_ok=True)
    workdir = tempfile.mkdtemp()
    try:
        await anyio.run_process(["git", "init", "-q", workdir])
        for name, params in servers(workdir).items():
            with anyio.fail_after(60):
                data = await dump(params)
            (HERE / f"{name}.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
            print(name, {k: len(v) if isinstance(v, list) else 1 for k, v in data.items()})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    anyio.run(main)
