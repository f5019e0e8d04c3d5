"""`switchyard scan`: scan servers' tools, prompts, resources and instructions for poisoning and shadowing.

Owns the command: choosing what to scan (every configured server, one of them, a one-off `--stdio` command or
`--url`, or an offline `--file`), collecting the items, asking the optional LLM judge (`--judge`, configured in
`switchyard.scan.judge`), and printing the report as text, JSON or SARIF with a `--fail-on` exit code for CI.
Rules, the judge and reports are security/'s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

import anyio
from rich.markup import escape

from switchyard.cli.common import configure_logging, load, started_gateway, stderr
from switchyard.config import GatewayConfig, JudgeSettings, load_config, parse_config
from switchyard.errors import InvalidRequest
from switchyard.security import ScanItem, Scanner, ScanReport, Severity, item_from_definition, items_from_file
from switchyard.security.judge import JudgeUnavailable, LlmJudge, merge_judge_findings
from switchyard.security.reports import to_json, to_sarif, to_text
from switchyard.upstream.base import UpstreamState

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `scan` command."""
    parser = subparsers.add_parser("scan", help="scan MCP servers' definitions for tool poisoning and shadowing")
    parser.add_argument("-c", "--config", default=None, help="configuration file (default $SWITCHYARD_CONFIG)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--server", help="scan only this configured server")
    source.add_argument("--stdio", metavar="COMMAND", help='a one-off stdio server, e.g. --stdio "uvx mcp-server-time"')
    source.add_argument("--url", help="a one-off Streamable HTTP server")
    source.add_argument("--file", help="offline: a tools/list JSON dump or a JSONL corpus")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument(
        "--fail-on", type=_fail_on, default="high", help="exit 1 when a finding is at least this severe (or 'never')"
    )
    parser.add_argument(
        "--min-severity", type=_severity, default="low", help="text format: hide findings below this severity"
    )
    parser.add_argument(
        "--judge",
        action="store_true",
        help="also ask the LLM judge configured in switchyard.scan.judge (an OpenAI-compatible endpoint; rule SY900)",
    )
    parser.set_defaults(run=run)


def _severity(value: str) -> str:
    """A severity name (`info` ... `critical`), checked when the command line is read."""
    try:
        Severity.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _fail_on(value: str) -> str:
    return value if value == "never" else _severity(value)


def _items_from_file(path: str) -> list[ScanItem]:
    """`--file`: a file that cannot be read or parsed is a usage error (exit 2), said in one line."""
    try:
        return items_from_file(path)
    except OSError as exc:
        raise InvalidRequest(f"--file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # json.JSONDecodeError included
        raise InvalidRequest(f"--file {path}: not a tools/list JSON dump or a JSONL corpus: {exc}") from None


def _one_off(args: argparse.Namespace) -> GatewayConfig:
    if args.stdio:
        argv = shlex.split(args.stdio)
        if not argv:
            raise InvalidRequest("--stdio needs a command")
        entry = {"command": argv[0], "args": argv[1:]}
        name = argv[0].rsplit("/", 1)[-1]
    else:
        entry = {"url": args.url}
        name = "remote"
    return parse_config({"mcpServers": {name: entry}, "switchyard": {"scan": {"on_start": False}}})


def _items_from_servers(config: GatewayConfig, only: str | None, progress: bool) -> tuple[list[ScanItem], list[str]]:
    """The items of every configured (or the one named) server, and the servers that could not be scanned."""
    if only is not None:
        if only not in config.servers:
            raise InvalidRequest(f"no server named {only!r} in the configuration")
        config = config.model_copy(update={"servers": {only: config.servers[only]}})
    config = config.model_copy(
        update={
            "switchyard": config.switchyard.model_copy(
                update={"scan": config.switchyard.scan.model_copy(update={"on_start": False})}
            )
        }
    )

    async def main() -> tuple[list[ScanItem], list[str]]:
        items: list[ScanItem] = []
        skipped: list[str] = []
        async with started_gateway(config, show_progress=progress) as gateway:
            for name, upstream in gateway.upstreams.items():
                snap = upstream.snapshot
                if upstream.state is not UpstreamState.UP or snap is None:
                    stderr.print(f"[yellow]skipped[/] {escape(name)}: {escape(upstream.last_error or 'not up')}")
                    skipped.append(name)
                    continue
                items += [item_from_definition("tool", name, t) for t in snap.tools]
                items += [item_from_definition("prompt", name, p) for p in snap.prompts]
                items += [item_from_definition("resource", name, r) for r in snap.resources]
                items += [item_from_definition("resource_template", name, t) for t in snap.templates]
                if snap.instructions:
                    items.append(
                        ScanItem("server_instructions", name, "instructions", {"instructions": snap.instructions})
                    )
        return items, skipped

    return anyio.run(main)


def _judge_settings(args: argparse.Namespace, config: GatewayConfig | None) -> JudgeSettings:
    """The configured judge, from the loaded configuration or (for --file/--stdio/--url) the config file."""
    if config is None:
        path = args.config or os.environ.get("SWITCHYARD_CONFIG")
        if path is None and os.path.exists("servers.json"):
            path = "servers.json"
        if path is None:
            raise InvalidRequest(
                "--judge needs a configuration with switchyard.scan.judge (pass -c FILE or set $SWITCHYARD_CONFIG)"
            )
        config = load_config(path)
    settings = config.switchyard.scan.judge
    if settings is None:
        raise InvalidRequest(
            "--judge: no LLM judge configured; add switchyard.scan.judge = "
            '{"base_url": "https://.../v1", "model": "...", "api_key_env": "OPENAI_API_KEY"}'
        )
    return settings


def _with_judge(report: ScanReport, items: list[ScanItem], settings: JudgeSettings, progress: bool) -> ScanReport:
    judge = LlmJudge(
        settings.base_url,
        settings.model,
        api_key_env=settings.api_key_env,
        timeout=settings.timeout,
        concurrency=settings.concurrency,
    )
    with judge:
        if progress and stderr.is_terminal:
            with stderr.status(f"asking the LLM judge ({settings.model}) about {len(items)} items..."):
                result = judge.judge(items)
        else:
            result = judge.judge(items)
    for warning in result.warnings:
        stderr.print(warning, markup=False, highlight=False)
    return merge_judge_findings(report, result.findings)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when nothing reaches --fail-on, 1 otherwise or when a server could not be scanned (2 when the
    requested judge is missing or fails)."""
    configure_logging("error")
    fail_on = None if args.fail_on == "never" else Severity.parse(args.fail_on)
    config: GatewayConfig | None = None
    judge = _judge_settings(args, None) if args.judge and (args.file or args.stdio or args.url) else None
    skipped: list[str] = []
    if args.file:
        items = _items_from_file(args.file)
    elif args.stdio or args.url:
        items, skipped = _items_from_servers(_one_off(args), None, args.format == "text")
    else:
        if args.config is None:
            args.config = os.environ.get("SWITCHYARD_CONFIG", "servers.json")
        config = load(args)
        if args.judge:
            judge = _judge_settings(args, config)
        items, skipped = _items_from_servers(config, args.server, args.format == "text")
    scanner = Scanner()
    if args.format == "text" and stderr.is_terminal and len(items) > 200:
        with stderr.status(f"scanning {len(items)} items..."):
            report = scanner.scan(items)
    else:
        report = scanner.scan(items)
    if judge is not None:
        try:
            report = _with_judge(report, items, judge, args.format == "text")
        except JudgeUnavailable as exc:
            stderr.print(f"error: {exc}", markup=False, highlight=False)
            return 2
    if args.format == "json":
        sys.stdout.write(to_json(report) + "\n")
    elif args.format == "sarif":
        sys.stdout.write(to_sarif(report, artifact_uri=args.file) + "\n")
    else:
        text = to_text(report, min_severity=Severity.parse(args.min_severity))
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        flagged = sum(1 for v in report.verdicts if v.findings)
        stderr.print(f"{len(items)} items scanned, {flagged} with findings")
    if skipped:
        # A server that could not be scanned is not a clean one: a CI gate must not pass on an empty report.
        stderr.print(f"not scanned (down or unreachable): {escape(', '.join(skipped))}")
        return 1
    if fail_on is not None and report.at_least(fail_on):
        return 1
    return 0
