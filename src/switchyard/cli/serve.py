"""`switchyard serve`: run the gateway for one desktop client on stdio, or for many over Streamable HTTP.

`--http HOST:PORT` serves `http://HOST:PORT/mcp` (both protocol eras) plus `/healthz` and `/readyz`. Binding
anything but a loopback address needs `--allow-remote` (exit 2 without it) and authentication on
(`switchyard.auth`; `none` is refused off loopback), and logs a warning naming the authentication mode.
"""

from __future__ import annotations

import argparse
import logging

from switchyard import eventloop
from switchyard.cli.common import add_config_option, configure_logging, load, stderr
from switchyard.gateway import Gateway
from switchyard.server.stdio import serve_stdio

__all__ = ["parse_listen", "register"]

logger = logging.getLogger("switchyard.cli.serve")


def parse_listen(value: str) -> tuple[str, int]:
    """Parse `HOST:PORT`, `[V6]:PORT` or `:PORT` (= 127.0.0.1) into a bind address and port."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 1..65535, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    if ":" in host and not value.startswith("["):
        raise argparse.ArgumentTypeError(f"write an IPv6 address in brackets: [{host}]:{port_text}")
    return host, int(port_text)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `serve` command."""
    parser = subparsers.add_parser(
        "serve", help="serve the gateway to one client on stdin/stdout, or over HTTP with --http"
    )
    add_config_option(parser)
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        type=parse_listen,
        default=None,
        help="serve Streamable HTTP on http://HOST:PORT/mcp instead of stdio (e.g. 127.0.0.1:8765)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow --http to bind a non-loopback address (authentication must then be on: switchyard.auth)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="with --http: worker processes on one port (modern requests go to any worker; legacy sessions "
        "need sticky routing)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until the client disconnects (stdio) or the process is interrupted (HTTP)."""
    config = load(args)
    configure_logging(config.switchyard.log_level)
    listen: tuple[str, int] | None = args.http
    if listen is None:
        eventloop.run(serve_stdio, Gateway(config))
        return 0

    from switchyard.server.http import is_loopback, serve_http  # noqa: PLC0415 - stdio never loads uvicorn

    host, port = listen
    if config.switchyard.auth.mode == "both":
        from switchyard.stages.policy import unqualified_names  # noqa: PLC0415

        if names := unqualified_names(config.switchyard.policy):
            logger.warning(
                "switchyard.policy names %s without a kind while both API keys and JWTs are accepted: a JWT whose "
                "sub is one of these names gets the same rules and groups as the API key's principal. Write "
                "'api_key:<name>' or 'jwt:<name>' to name one of them",
                ", ".join(repr(n) for n in names),
            )
    if not is_loopback(host):
        if not args.allow_remote:
            stderr.print(
                f"error: refusing to bind {host}: it is not a loopback address; pass --allow-remote to serve "
                "other machines (authentication is then required: switchyard.auth)",
                markup=False,
                highlight=False,
            )
            return 2
        logger.warning(
            "binding %s with --allow-remote (authentication: %s). Requests must name an allowed Host: list the "
            "names clients use in switchyard.http.allowed_hosts",
            host,
            config.switchyard.auth.mode,
        )
    if args.workers > 1:
        from switchyard.server.auth import check_auth_config  # noqa: PLC0415
        from switchyard.server.http import serve_http_workers  # noqa: PLC0415

        check_auth_config(host, config.switchyard.auth)  # refuse here, not in every worker

        serve_http_workers(args.config, host, port, args.workers)
        return 0
    eventloop.run(serve_http, Gateway(config), host, port)
    return 0
