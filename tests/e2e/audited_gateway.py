"""A gateway process under load with the audit log in durable mode: 8 concurrent callers, each printing a
call's id once the gateway has answered it. The kill -9 test kills it mid-stream and checks that every
answered call is in the log.

Usage: python audited_gateway.py DB_PATH
"""

from __future__ import annotations

import sys

import anyio
from mcp.server.mcpserver import MCPServer

from switchyard.config import parse_config
from switchyard.stages import build_stages
from switchyard.testing.harness import memory_gateway


def echo_server() -> MCPServer:
    server = MCPServer("alpha")

    @server.tool()
    def echo(text: str) -> str:
        """Echo."""
        return text

    return server


async def main(db: str) -> None:
    settings = {"audit": {"path": db, "durable": True}}
    config = parse_config({"mcpServers": {"alpha": {"command": "x"}}, "switchyard": settings}, env={})
    built = build_stages(config)
    assert built.audit_store is not None
    built.audit_store.start()
    async with memory_gateway({"alpha": echo_server()}, settings=settings, stages=built.stages) as gateway:
        sys.stdout.write("ready\n")
        sys.stdout.flush()

        async def caller(worker: int) -> None:
            n = 0
            while True:
                n += 1
                call_id = f"call-{worker}-{n}"
                await gateway.request("tools/call", {"name": "alpha__echo", "arguments": {"text": call_id}})
                sys.stdout.write(call_id + "\n")  # answered: the client has its result
                sys.stdout.flush()

        async with anyio.create_task_group() as tg:
            for worker in range(8):
                tg.start_soon(caller, worker)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
