"""`switchyard audit`: read the audit log: filter by time, principal and tool; a table, JSON lines, or a JSONL
export file.

Owns the command and the `--since` syntax (`90s`, `15m`, `2h`, `7d`, an ISO 8601 time, or Unix seconds).
Reading never blocks a running gateway (SQLite WAL readers do not block the writer).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from switchyard.cli.common import add_config_option, load
from switchyard.errors import InvalidRequest
from switchyard.store.audit import AuditRow, SqliteAuditStore

__all__ = ["parse_since", "register"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `audit` command."""
    parser = subparsers.add_parser("audit", help="show or export the audit log")
    add_config_option(parser)
    parser.add_argument("--db", help="the audit database (default: switchyard.audit.path, else the store path)")
    parser.add_argument("--since", help="only rows since: 90s, 15m, 2h, 7d, an ISO time, or Unix seconds")
    parser.add_argument("--principal", help="only this principal (glob)")
    parser.add_argument("--tool", help="only this tool (glob)")
    parser.add_argument("--limit", type=int, help="only the newest N rows")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout instead of a table")
    parser.add_argument("--export", metavar="FILE.jsonl", help="write JSON lines to a file")
    parser.set_defaults(run=run)


def parse_since(text: str, now: float | None = None) -> float:
    """Unix seconds for a `--since` value.

    Raises:
        InvalidRequest: the value is none of the accepted forms.
    """
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"--since {text!r}: use 90s, 15m, 2h, 7d, an ISO time, or Unix seconds") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    settings = load(args).switchyard
    return settings.audit.resolved_path(settings.store)


def _line(row: AuditRow) -> str:
    data = row.as_dict()
    data["time_iso"] = datetime.fromtimestamp(row.time, UTC).isoformat()
    if row.arguments is not None:
        with contextlib.suppress(ValueError):
            data["arguments"] = json.loads(row.arguments)
    return json.dumps(data, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    """Print or export the selected rows."""
    since = parse_since(args.since) if args.since else None
    rows = SqliteAuditStore(_path(args)).query(since=since, principal=args.principal, tool=args.tool, limit=args.limit)
    if args.export:
        with open(args.export, "w", encoding="utf-8") as out:
            for row in rows:
                out.write(_line(row) + "\n")
        Console(stderr=True).print(f"exported {len(rows)} row(s) to {args.export}", markup=False)
        return 0
    if args.json:
        for row in rows:
            print(_line(row))
        return 0
    table = Table(title=f"audit ({len(rows)} rows)")
    for column in ("time", "principal", "method", "tool", "decision", "reason", "ms", "error", "bytes"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            datetime.fromtimestamp(row.time, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            f"{row.principal} ({row.principal_kind})",
            row.method,
            row.tool,
            row.decision,
            row.reason,
            f"{row.latency_ms:.1f}",
            "" if row.is_error is None else ("yes" if row.is_error else "no"),
            "" if row.result_bytes is None else str(row.result_bytes),
        )
    Console().print(table)
    return 0
