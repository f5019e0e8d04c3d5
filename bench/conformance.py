"""Conformance parity (issue 3): the official suite's server scenarios, directly and through Switchyard.

    python bench/conformance.py [--json] [--legs 0.1 0.2-legacy 0.2-modern] [--timeout 300] [--upstream http]

The suite (`@modelcontextprotocol/conformance`, run on Node 22 from `.cache/`) ships no server: its server
scenarios call fixed names (`test_simple_text`, `test://static-text`, ...) that each SDK's "everything server"
implements. Ours is `tests/fixtures/conformance/server.py` (both eras). For every leg the same scenarios run
against (a) that server directly over Streamable HTTP and (b) `switchyard serve --http` with that server behind
it on stdio and naming prefix off (`"switchyard": {"naming": {"prefix": false}}`), so names are unchanged.
With `--upstream http` Switchyard reaches a second instance of that server over Streamable HTTP instead (on
2026-07-28, so forwarded calls take the HTTP lane, `upstream/http_lane.py`).

Legs:
- `0.1`: conformance 0.1.16, default suite (2025-06-18 and 2025-11-25 scenarios, handshake era);
- `0.2-legacy`: 0.2.0-alpha.12, default suite (dated revisions through 2025-11-25, handshake era);
- `0.2-modern`: 0.2.0-alpha.12, `--suite all --spec-version 2026-07-28` (stateless era: header validation,
  caching, server/discover, subscriptions/listen, input-required results).

Switchyard runs with its defaults otherwise (start-up scanning on), so a scanner quarantine shows up as a
failure through Switchyard, as it would for a user. A scenario passes when none of its checks is a FAILURE
(WARNINGs are SHOULDs: reported, not failed). The table shows each scenario's verdict directly and through
Switchyard; the summary names the failing check ids.
Everything started is stopped by PID (SIGTERM, then SIGKILL); every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from switchyard.testing.peers import conformance_cli, free_port, repo_root, running_http_server, venv_python

LEGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "0.1": ("0.1", ()),
    "0.2-legacy": ("0.2", ("--timeout", "15000")),
    "0.2-modern": ("0.2", ("--suite", "all", "--spec-version", "2026-07-28", "--timeout", "15000")),
}
"""Leg name -> (conformance series, extra arguments of `conformance server`)."""


@dataclass
class ScenarioResult:
    """One scenario's verdict in one run."""

    passed: bool
    failures: list[str] = field(default_factory=list[str])
    warnings: list[str] = field(default_factory=list[str])
    messages: list[str] = field(default_factory=list[str])


@dataclass
class LegResult:
    """One leg, both targets: scenario -> verdict, plus wall time per target."""

    leg: str
    direct: dict[str, ScenarioResult]
    through: dict[str, ScenarioResult]
    seconds: dict[str, float]
    retried: list[str] = field(default_factory=list[str])

    def regressions(self) -> list[str]:
        """Scenarios that pass directly but not through Switchyard."""
        return sorted(
            s for s, r in self.direct.items() if r.passed and not self.through.get(s, ScenarioResult(False)).passed
        )


def fixture_script() -> Path:
    """The conformance test server."""
    return repo_root() / "tests" / "fixtures" / "conformance" / "server.py"


def gateway_config(path: Path, upstream_url: str | None = None) -> Path:
    """Write a Switchyard configuration with the conformance server behind it (prefix off): spawned on stdio, or
    the instance at `upstream_url`."""
    entry: dict[str, Any] = {"command": str(venv_python()), "args": ["-W", "ignore", str(fixture_script())]}
    if upstream_url is not None:
        entry = {"url": upstream_url}
    config = {
        "mcpServers": {"conformance": entry},
        "switchyard": {
            "naming": {"prefix": False},
            "log_level": "warning",
            # The suite sends no credentials: authentication off, which is allowed on loopback only.
            "auth": {"mode": "none"},
            # A private store: pins and quarantine decisions never leak between runs or into ~/.local/state.
            "store": {"path": str(path.parent / "state.db")},
        },
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@contextmanager
def direct_server() -> Iterator[str]:
    """The conformance server on Streamable HTTP; yields its URL."""
    port = free_port()
    argv = [str(venv_python()), "-W", "ignore", str(fixture_script()), "--http", f"127.0.0.1:{port}"]
    with running_http_server(argv, port) as url:
        yield url


@contextmanager
def switchyard_server(workdir: Path, upstream_url: str | None = None) -> Iterator[str]:
    """`switchyard serve --http` with the conformance server behind it; yields its URL once /readyz says 200."""
    port = free_port()
    config = gateway_config(workdir / "switchyard.json", upstream_url)
    argv = [str(venv_python()), "-m", "switchyard.cli.main", "serve", "-c", str(config), "--http", f"127.0.0.1:{port}"]
    with running_http_server(argv, port) as url:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", 30.0)
        yield url


def _wait_ready(url: str, timeout: float) -> None:
    import httpx2  # noqa: PLC0415 - comes with mcp

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=2.0).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not report ready within {timeout:g} s")


def run_suite(series: str, url: str, extra: Sequence[str], timeout: float) -> tuple[dict[str, ScenarioResult], float]:
    """Run `conformance server` once; returns scenario -> verdict and the wall time."""
    cli = conformance_cli(series)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="switchyard-conformance-") as out:
        started = time.monotonic()
        subprocess.run(
            cli.command("server", "--url", url, "-o", out, *extra),
            cwd=cli.cwd,
            env={**os.environ, **cli.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,  # exit 1 when any scenario fails: the verdicts are read from checks.json
        )
        elapsed = time.monotonic() - started
        return _read_results(Path(out)), elapsed


def _read_results(out: Path) -> dict[str, ScenarioResult]:
    results: dict[str, ScenarioResult] = {}
    for checks_file in sorted(out.glob("server-*/checks.json")):
        # Directory: server-<scenario>-<ISO timestamp with dashes>; the timestamp has 6 dash-separated parts.
        scenario = "-".join(checks_file.parent.name.split("-")[1:-6])
        checks = json.loads(checks_file.read_text(encoding="utf-8"))
        failures = sorted({c["id"] for c in checks if c.get("status") == "FAILURE"})
        warnings = sorted({c["id"] for c in checks if c.get("status") == "WARNING"})
        messages = [
            f"{c['id']}: {str(c.get('errorMessage', ''))[:300]}" for c in checks if c.get("status") == "FAILURE"
        ]
        results[scenario] = ScenarioResult(not failures, failures, warnings, messages)
    return results


def run_leg(leg: str, direct_url: str, through_url: str, timeout: float) -> LegResult:
    """One leg against both targets, in parallel (they are separate processes).

    A failing scenario is run once more on its own (`--scenario`) against the same target before its verdict
    stands (through Switchyard only when it passed directly): two suites in parallel on two busy cores can
    starve a timing-sensitive scenario past its timeout. Retries are recorded in the result's `retried` list.
    """
    series, extra = LEGS[leg]
    with ThreadPoolExecutor(max_workers=2) as pool:
        direct_future = pool.submit(run_suite, series, direct_url, extra, timeout)
        through_future = pool.submit(run_suite, series, through_url, extra, timeout)
        direct, direct_s = direct_future.result()
        through, through_s = through_future.result()
    result = LegResult(leg, direct, through, {"direct": round(direct_s, 2), "through": round(through_s, 2)})
    only = [a for a in extra if a not in {"all", "--suite"}]
    for target, url in (("direct", direct_url), ("through", through_url)):
        verdicts = result.direct if target == "direct" else result.through
        for scenario in sorted(s for s, r in verdicts.items() if not r.passed):
            if target == "through" and scenario not in result.regressions():
                continue  # fails directly too: nothing to compare
            again, _ = run_suite(series, url, [*only, "--scenario", scenario], timeout)
            if scenario in again:
                verdicts[scenario] = again[scenario]
                result.retried.append(f"{scenario} ({target})")
    return result


def run_matrix(legs: Sequence[str] = tuple(LEGS), timeout: float = 300.0, upstream: str = "stdio") -> list[LegResult]:
    """Start both targets, run every leg against each, stop everything. `upstream`: how Switchyard reaches its
    own instance of the conformance server (`stdio` or `http`)."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="switchyard-conformance-")))
        # Fresh servers per leg: scenarios mutate the server (test_trigger_tool_change adds tools).
        results: list[LegResult] = []
        for leg in legs:
            with ExitStack() as servers:
                direct_url = servers.enter_context(direct_server())
                behind = servers.enter_context(direct_server()) if upstream == "http" else None
                through_url = servers.enter_context(switchyard_server(workdir, behind))
                results.append(run_leg(leg, direct_url, through_url, timeout))
        return results


def _mark(result: ScenarioResult | None) -> str:
    if result is None:
        return "-"
    if not result.passed:
        return "FAIL"
    return "pass (warn)" if result.warnings else "pass"


def table(results: Sequence[LegResult]) -> str:
    """A Markdown table, one row per scenario, a direct and a through column per leg; then a summary per leg."""
    legs = list(results)
    header = "| scenario | " + " | ".join(f"{leg.leg} direct | {leg.leg} through" for leg in legs) + " |"
    lines = [header, "|---|" + "---|---|" * len(legs)]
    scenarios = sorted({s for leg in legs for s in (*leg.direct, *leg.through)})
    for scenario in scenarios:
        cells = [f"{_mark(leg.direct.get(scenario))} | {_mark(leg.through.get(scenario))}" for leg in legs]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    lines.append("")
    for leg in legs:
        n_direct = sum(r.passed for r in leg.direct.values())
        n_through = sum(r.passed for r in leg.through.values())
        failing = "; ".join(
            f"{s} ({', '.join(leg.through[s].failures)})" for s in leg.regressions() if s in leg.through
        )
        lines.append(
            f"- {leg.leg}: direct {n_direct}/{len(leg.direct)} passed in {leg.seconds['direct']} s; "
            f"through {n_through}/{len(leg.through)} in {leg.seconds['through']} s; "
            f"pass directly but not through: {failing or 'none'}"
            + (f"; re-run once: {', '.join(leg.retried)}" if leg.retried else "")
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix and print the table (or JSON); exit 1 if any scenario passes directly but not through."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--legs", nargs="+", choices=sorted(LEGS), default=list(LEGS))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per suite run")
    parser.add_argument("--upstream", choices=("stdio", "http"), default="stdio", help="how Switchyard reaches it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = run_matrix(args.legs, args.timeout, args.upstream)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(table(results))
        print(f"\ntotal wall time {time.monotonic() - started:.1f} s")
    return 1 if any(r.regressions() for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
