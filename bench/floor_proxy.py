"""Two do-nothing proxies: what one extra process hop costs before a gateway does any work (bench/head_to_head.py).

    python bench/floor_proxy.py tcp  --port P --upstream http://127.0.0.1:U/mcp
    python bench/floor_proxy.py http --port P --upstream http://127.0.0.1:U/mcp

- `tcp`: a byte relay. Each client connection gets its own connection to the upstream's host and port, and
  bytes are copied both ways as they arrive. No parsing at all: the floor of any proxy process.
- `http`: the least an HTTP-aware proxy does. aiohttp's server parses each request; the method, path, headers
  (minus hop-by-hop ones) and body go to the upstream on one shared aiohttp client session; the answer's status
  and headers come back and its body is streamed through chunk by chunk (so SSE streams and legacy session
  GETs work). No MCP parsing, no authentication, no audit, no guard.

Both run on uvloop when it is installed, as the gateway does. They exist to bound issue 3's "added latency at
least 5x lower than mcp-proxy's" target: no Python HTTP gateway can add less than the `http` proxy does. Run by
`bench/head_to_head.py --targets ... floor-tcp floor-http`; stopped by SIGTERM. Not a test, not a product.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve_tcp(port: int, upstream: str) -> None:
    target = urlsplit(upstream)
    host, up_port = target.hostname or "127.0.0.1", target.port or 80

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(host, up_port)
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    async with server:
        await _until_stopped()


async def serve_http(port: int, upstream: str) -> None:
    origin = upstream.split("/mcp", 1)[0]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        async with session.request(
            request.method, origin + request.path_qs, headers=headers, data=body or None, allow_redirects=False
        ) as answer:
            response = web.StreamResponse(status=answer.status)
            for key, value in answer.headers.items():
                if key.lower() not in _HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await _until_stopped()
    finally:
        await runner.cleanup()
        await session.close()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("mode", choices=("tcp", "http"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's MCP URL, http://127.0.0.1:U/mcp")
    args = parser.parse_args()
    run = serve_tcp if args.mode == "tcp" else serve_http
    try:
        import uvloop  # noqa: PLC0415 - optional, as in the gateway

        uvloop.run(run(args.port, args.upstream))
    except ImportError:
        asyncio.run(run(args.port, args.upstream))


if __name__ == "__main__":
    main()
