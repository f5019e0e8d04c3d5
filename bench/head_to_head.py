"""Head-to-head HTTP gateway benchmark (issue 3), run from a checkout (never as a timed test).

    python bench/head_to_head.py [--calls 300] [--clients 1 8 32] [--modes 2026-07-28 legacy]
                                 [--targets direct switchyard switchyard-key switchyard-stdio mcp-proxy contextforge
                                            floor-tcp floor-http]
                                 [--rounds 1] [--time-cap 900] [--json]

One run, one machine, loopback only, one upstream: the `fast` fixture (`echo` tool) on Streamable HTTP at
127.0.0.1. Targets, each in front of that upstream (or of the same fixture code where a target cannot front an
HTTP upstream):

- `direct`: the SDK client straight to the upstream;
- `switchyard`: `switchyard serve --http` with the upstream as an HTTP server entry, auth `none`, no start-up scan;
- `switchyard-key`: the same with auth `api_key` and a key from `switchyard keys create` (`Authorization: Bearer`);
- `switchyard-stdio`: `switchyard serve --http` (auth none) spawning the `fast` fixture on stdio itself: the same
  topology as mcp-proxy below, for a like-for-like comparison with it;
- `mcp-proxy`: mcp-proxy 0.13 (own venv `.cache/bench-venvs/mcp-proxy`, see bench/peers/). Its server mode
  serves Streamable HTTP only in front of a *stdio* command (a URL argument makes it a stdio-facing client), so
  it fronts the same `fast` fixture code over stdio, spawned by mcp-proxy itself;
- `contextforge`: IBM ContextForge (own venv `.cache/bench-venvs/contextforge`), the upstream registered through
  its admin API and exposed as a virtual server (`/servers/<id>/mcp`);
- `floor-tcp`, `floor-http` (not in the default set): `bench/floor_proxy.py`'s do-nothing proxies in front of
  the upstream, a byte relay and an aiohttp pass-through. What one extra Python process hop costs before any
  gateway work: the floor under which no Python HTTP gateway's added latency can go.

Load: for each era (`--modes`) and each client level (`--clients`), N separate `mcp.Client` connections (each
its own HTTP client), connected and warmed up before the clock starts, make `--calls` calls in total (at least
`--min-per-client` each); reported: p50/p99 per call and calls/s. Targets take turns at each level (the order
rotates), so a shared machine's load lands on all of them alike. A target that cannot serve an era is reported
`n/a` with the reason found when probing it. Everything started is stopped by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Generator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import psutil
from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import _first_error, _progress, _python_speed_ms, percentile

from switchyard.testing.peers import fixture_server, free_port, repo_root

MODES = ("2026-07-28", "legacy")
TARGETS = (
    "direct",
    "switchyard",
    "switchyard-key",
    "switchyard-stdio",
    "mcp-proxy",
    "contextforge",
    "floor-tcp",
    "floor-http",
)
TARGET_ADDED_P50_MS = 1.5
TARGET_VS_PROXY = 5.0
TARGET_THROUGHPUT = 0.60


# --- processes ---------------------------------------------------------------------------------------------


def _venv(name: str) -> Path:
    return repo_root() / ".cache" / "bench-venvs" / name


def _switchyard_argv() -> list[str]:
    script = Path(sys.executable).parent / "switchyard"
    if script.exists():
        return [str(script)]
    found = shutil.which("switchyard")
    return [found] if found else [sys.executable, "-m", "switchyard.cli.main"]


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@dataclass
class Proc:
    """A process this benchmark started (stopped by its PID, with its children)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tree(self) -> list[psutil.Process]:
        try:
            me = psutil.Process(self.popen.pid)
            return [me, *me.children(recursive=True)]
        except psutil.Error:
            return []

    def tail(self, n: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(encoding="utf-8", errors="replace")[-n:]
        return ""


@contextmanager
def started(
    name: str, argv: list[str], port: int, work: Path, *, env: dict[str, str] | None = None, ready: float = 90.0
) -> Generator[Proc, None, None]:
    """Start `argv`, wait until 127.0.0.1:`port` accepts connections, yield it; then SIGTERM (SIGKILL after 5 s)
    the process and any children it left, by PID."""
    log = work / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    proc = Proc(name, popen, log)
    try:
        deadline = time.monotonic() + ready
        while not _port_open(port):
            if popen.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {popen.returncode}" if popen.poll() is not None else "never listened"
                raise RuntimeError(f"{name} {state} on port {port}:\n{proc.tail()}")
            time.sleep(0.1)
        yield proc
    finally:
        kids = proc.tree()[1:]
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(5)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        for kid in kids:
            with contextlib.suppress(psutil.Error):
                if kid.is_running():
                    kid.kill()


def _wait_http(url: str, timeout: float = 90.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {timeout} s")
        time.sleep(0.2)


# --- targets -----------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    tool: str
    headers: dict[str, str] = field(default_factory=dict[str, str])
    procs: list[Proc] = field(default_factory=list[Proc])
    note: str = ""
    unsupported: dict[str, str] = field(default_factory=dict[str, str])  # mode -> reason


def _switchyard_config(work: Path, upstream: str | None, auth: str) -> Path:
    """Upstream: the shared HTTP fixture at `upstream`, or (None) the `fast` fixture spawned on stdio."""
    path = work / f"switchyard-{auth}-{'http' if upstream else 'stdio'}.json"
    entry: dict[str, Any] = {"url": upstream}
    if upstream is None:
        fast = fixture_server("fast")
        entry = {"command": fast.command, "args": list(fast.args)}
    config = {
        "mcpServers": {"fast": entry},
        "switchyard": {
            "log_level": "warning",
            "auth": {"mode": auth},
            "scan": {"on_start": False},
            "store": {"path": str(path.with_suffix(".db"))},
        },
    }
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def start_switchyard(stack: ExitStack, work: Path, upstream: str | None, *, key: bool) -> Target:
    auth = "api_key" if key else "none"
    config = _switchyard_config(work, upstream, auth)
    headers: dict[str, str] = {}
    if key:
        made = subprocess.run(
            [*_switchyard_argv(), "keys", "create", "bench", "-c", str(config)],
            capture_output=True,
            text=True,
            check=True,
        )
        headers["Authorization"] = f"Bearer {made.stdout.strip()}"
    port = free_port()
    name = "switchyard-key" if key else "switchyard" if upstream else "switchyard-stdio"
    argv = [*_switchyard_argv(), "serve", "--http", f"127.0.0.1:{port}", "-c", str(config)]
    proc = stack.enter_context(started(name, argv, port, work))
    _wait_http(f"http://127.0.0.1:{port}/readyz")
    note = "auth api_key (Bearer), scan off" if key else "auth none, scan off"
    if upstream is None:
        note += "; fronts the fast fixture over stdio (mcp-proxy's topology)"
    return Target(name, f"http://127.0.0.1:{port}/mcp", "fast__echo", headers, [proc], note)


def start_mcp_proxy(stack: ExitStack, work: Path) -> Target:
    exe = _venv("mcp-proxy") / "bin" / "mcp-proxy"
    if not exe.exists():
        raise FileNotFoundError(f"{exe} missing: see bench/peers/README.md")
    fast = fixture_server("fast")
    port = free_port()
    argv = [str(exe), "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING", "--"]
    argv += [fast.command, *fast.args]
    proc = stack.enter_context(started("mcp-proxy", argv, port, work))
    version = subprocess.run([str(exe), "--version"], check=False, capture_output=True, text=True).stdout.strip()
    note = f"{version or 'mcp-proxy'}; fronts the fast fixture over stdio (no HTTP-upstream server mode)"
    return Target("mcp-proxy", f"http://127.0.0.1:{port}/mcp", "echo", {}, [proc], note)


def start_floor(stack: ExitStack, work: Path, upstream: str, mode: str) -> Target:
    """One of `bench/floor_proxy.py`'s do-nothing proxies in front of the shared HTTP fixture."""
    port = free_port()
    script = Path(__file__).with_name("floor_proxy.py")
    argv = [sys.executable, str(script), mode, "--port", str(port), "--upstream", upstream]
    name = f"floor-{mode}"
    proc = stack.enter_context(started(name, argv, port, work))
    note = "byte relay, no parsing" if mode == "tcp" else "aiohttp server + client, headers and body passed through"
    return Target(name, f"http://127.0.0.1:{port}/mcp", "echo", {}, [proc], note + " (bench/floor_proxy.py)")


CF_USER = "admin@example.com"
CF_PASSWORD = "Bench-" + secrets.token_urlsafe(12) + "-9x!"  # a throwaway local instance
CF_JWT_SECRET = secrets.token_hex(32)


def start_contextforge(stack: ExitStack, work: Path, upstream: str) -> Target:
    venv = _venv("contextforge")
    exe = venv / "bin" / "mcpgateway"
    if not exe.exists():
        raise FileNotFoundError(f"{exe} missing: see bench/peers/README.md")
    port = free_port()
    home = work / "contextforge"
    home.mkdir(exist_ok=True)
    env = {
        "DATABASE_URL": f"sqlite:///{home / 'mcp.db'}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "JWT_SECRET_KEY": CF_JWT_SECRET,
        "AUTH_ENCRYPTION_SECRET": secrets.token_hex(32),
        "BASIC_AUTH_USER": "admin",
        "BASIC_AUTH_PASSWORD": CF_PASSWORD,
        "PLATFORM_ADMIN_EMAIL": CF_USER,
        "PLATFORM_ADMIN_PASSWORD": CF_PASSWORD,
        "MCPGATEWAY_UI_ENABLED": "false",
        "MCPGATEWAY_ADMIN_API_ENABLED": "true",
        "AUTH_REQUIRED": "true",
        "RATE_LIMITING_ENABLED": "false",
        "RATE_LIMITING_REDIS_ENABLED": "false",
        "RATE_LIMIT_LOCKOUT_ENABLED": "false",
        "TOOL_RATE_LIMIT": "10000000",
        "RATE_LIMIT_MEDIUM_RPM": "10000000",
        "RATE_LIMIT_HIGH_RPM": "10000000",
        "PLUGINS_ENABLED": "false",
        "OBSERVABILITY_ENABLED": "false",
        "LOG_LEVEL": "ERROR",
        "CACHE_TYPE": "memory",
        "REDIS_URL": "",
        "SSRF_PROTECTION_ENABLED": "false",
        "SSRF_ALLOW_LOCALHOST": "true",
        "SSRF_ALLOW_PRIVATE_NETWORKS": "true",
        "TRANSPORT_TYPE": "all",
        "FEDERATION_ENABLED": "false",
        "MCPGATEWAY_A2A_ENABLED": "false",
        "SECURITY_HEADERS_ENABLED": "false",
        "HEALTH_CHECK_INTERVAL": "3600",
        "DEV_MODE": "false",
        "ENVIRONMENT": "development",
    }
    argv = [str(exe), "--host", "127.0.0.1", "--port", str(port)]
    proc = stack.enter_context(started("contextforge", argv, port, work, env=env, ready=240))
    base = f"http://127.0.0.1:{port}"
    token = (
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "mcpgateway.utils.create_jwt_token",
                "--username",
                CF_USER,
                "--exp",
                "120",
                "--secret",
                CF_JWT_SECRET,
                "--admin",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    auth = {"Authorization": f"Bearer {token}"}
    _wait_http(f"{base}/health", headers=auth)
    with httpx.Client(base_url=base, headers=auth, timeout=60) as http:
        gw = http.post("/gateways", json={"name": "fast", "url": upstream, "transport": "STREAMABLEHTTP"})
        if gw.status_code >= 300:
            raise RuntimeError(f"POST /gateways {gw.status_code}: {gw.text[:500]}")
        tools = http.get("/tools").json()
        tool_list = tools["data"] if isinstance(tools, dict) and "data" in tools else tools
        fast_tools = [t for t in tool_list if "echo" in (t.get("name") or t.get("originalName") or "")]
        if not fast_tools:
            raise RuntimeError(f"no echo tool registered: {str(tools)[:500]}")
        tool = fast_tools[0]
        srv = http.post("/servers", json={"server": {"name": "bench", "associated_tools": [tool["id"]]}})
        if srv.status_code >= 300:
            srv = http.post("/servers", json={"name": "bench", "associated_tools": [tool["id"]]})
        if srv.status_code >= 300:
            raise RuntimeError(f"POST /servers {srv.status_code}: {srv.text[:500]}")
        server_id = srv.json()["id"]
    version = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('mcp-contextforge-gateway'))",
        ],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.strip()
    name = tool.get("name") or tool.get("originalName")
    note = f"{version}; virtual server over the HTTP upstream, JWT auth, rate limiting off, SQLite"
    return Target("contextforge", f"{base}/servers/{server_id}/mcp", name, auth, [proc], note)


# --- load --------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _client(target: Target, mode: str) -> AsyncIterator[Client]:
    http = create_mcp_http_client(headers=target.headers or None)
    async with http, Client(streamable_http_client(target.url, http_client=http), mode=mode, cache=None) as c:  # type: ignore[arg-type]
        yield c


async def _call(client: Client, tool: str) -> None:
    result = await client.call_tool(tool, {"text": "ping"})
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content}")


async def probe(target: Target, mode: str) -> str | None:
    """None when `target` serves `mode` (one call works and the era is the one asked for), else the reason."""
    try:
        with anyio.fail_after(30):
            async with _client(target, mode) as client:
                await _call(client, target.tool)
                got = str(client.protocol_version)
                wanted = not got.startswith("2026") if mode == "legacy" else got == mode
                if not wanted:
                    return f"negotiated {got}"
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _first_error(exc)
    return None


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


async def run_level(
    target: Target,
    mode: str,
    *,
    n: int,
    per_client: int,
    warmup: int,
    upstream: Proc,
    cap: float,
    budget: float,
) -> dict[str, Any]:
    """`n` connections, each warmed up, then `per_client` timed sequential calls each, all at once; a connection
    starts no new call once `budget` seconds of the timed phase have passed (so a slow target reports fewer
    calls instead of timing out)."""
    lat: list[float] = []
    clock = time.perf_counter
    with anyio.fail_after(cap):
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(_client(target, mode)) for _ in range(n)]
            async with anyio.create_task_group() as tg:
                for c in clients:

                    async def warm(c: Client = c) -> None:
                        for _ in range(warmup):
                            await _call(c, target.tool)

                    tg.start_soon(warm)
            procs = [p for proc in target.procs for p in proc.tree()]
            up = upstream.tree()
            me = [psutil.Process()]
            cpu0, up0, me0 = _cpu(procs), _cpu(up), _cpu(me)

            stop_at = clock() + budget

            async def worker(c: Client) -> None:
                for _ in range(per_client):
                    if clock() > stop_at:  # a very slow target: measure what fits in the budget
                        return
                    t = clock()
                    await _call(c, target.tool)
                    lat.append((clock() - t) * 1000)

            start = clock()
            async with anyio.create_task_group() as tg:
                for c in clients:
                    tg.start_soon(worker, c)
            elapsed = clock() - start
            calls = len(lat)
            cpu = (_cpu(procs) - cpu0) / calls * 1000
            up_cpu = (_cpu(up) - up0) / calls * 1000
            me_cpu = (_cpu(me) - me0) / calls * 1000
    return {
        "clients": n,
        "calls": calls,
        "calls_asked": n * per_client,
        "seconds": elapsed,
        "calls_per_s": calls / elapsed,
        "p50_ms": percentile(lat, 50),
        "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99),
        "mean_ms": statistics.fmean(lat),
        "target_cpu_ms_per_call": cpu if target.name != "direct" else math.nan,
        "upstream_cpu_ms_per_call": up_cpu,
        "client_cpu_ms_per_call": me_cpu,
    }


# --- report ------------------------------------------------------------------------------------------------


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _f(x: Any, digits: int = 2) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def derive(report: dict[str, Any]) -> dict[str, Any]:
    """Added latency over direct, throughput ratio, and the target verdicts."""
    verdicts: dict[str, Any] = {}
    for mode, levels in report["results"].items():
        for level, rows in levels.items():
            direct = rows.get("direct")
            if not isinstance(direct, dict) or "p50_ms" not in direct:
                continue
            for name, row in rows.items():
                if name == "direct" or "p50_ms" not in row:
                    continue
                row["added_p50_ms"] = row["p50_ms"] - direct["p50_ms"]
                row["added_p99_ms"] = row["p99_ms"] - direct["p99_ms"]
                row["throughput_ratio"] = row["calls_per_s"] / direct["calls_per_s"]
            sy = rows.get("switchyard", {})
            if "added_p50_ms" not in sy:
                continue
            v: dict[str, Any] = {"added_p50_ms": sy["added_p50_ms"]}
            if level == "1":
                v["added_p50_ok"] = sy["added_p50_ms"] <= TARGET_ADDED_P50_MS
            same = rows.get("switchyard-stdio", {})
            proxy = rows.get("mcp-proxy", {})
            # A ratio of added latencies means something only where both add some (under heavy load a gateway
            # can come out at or below direct by chance): otherwise it is left out.
            if proxy.get("added_p50_ms", 0) > 0 and same.get("added_p50_ms", 0) > 0:
                v["proxy_added_over_switchyard_stdio"] = proxy["added_p50_ms"] / same["added_p50_ms"]
            if proxy.get("added_p50_ms", 0) > 0 and sy["added_p50_ms"] > 0:
                ratio = proxy["added_p50_ms"] / sy["added_p50_ms"]
                v["proxy_added_over_switchyard"] = ratio
                v["vs_proxy_ok"] = ratio >= TARGET_VS_PROXY
            if level == "32":
                v["throughput_ratio"] = sy["throughput_ratio"]
                v["throughput_ok"] = sy["throughput_ratio"] >= TARGET_THROUGHPUT
                v["switchyard_calls_per_s"] = sy["calls_per_s"]
            verdicts[f"{mode}/{level}"] = v
    report["verdicts"] = verdicts
    return report


def render(report: dict[str, Any], console: Console) -> None:
    meta = report["meta"]
    console.print(
        f"[bold]Head to head over HTTP[/] {meta['started']} · {meta['cpus']} CPUs · load {meta['load_start']} -> "
        f"{meta['load_end']} · python loop {meta['python_loop_ms']:.0f} ms · {meta['elapsed_s']:.0f} s"
    )
    for name, note in meta["targets"].items():
        console.print(f"  {name}: {note}")
    for name, reason in meta.get("failed", {}).items():
        console.print(f"  [red]{name} not run[/]: {reason}")
    for mode, levels in report["results"].items():
        table = Table(title=f"era {mode}: per-call latency (ms) and throughput")
        for col in (
            "clients",
            "target",
            "p50",
            "p99",
            "added p50",
            "added p99",
            "calls/s",
            "vs direct",
            "target CPU ms/call",
            "upstream CPU ms/call",
        ):
            table.add_column(col, justify="right" if col not in ("target",) else "left")
        for level, rows in levels.items():
            for name, row in rows.items():
                if "p50_ms" not in row:
                    table.add_row(level, name, "n/a", "", "", "", "", "", "", row.get("reason", "")[:60])
                    continue
                table.add_row(
                    level,
                    name,
                    _f(row["p50_ms"]),
                    _f(row["p99_ms"]),
                    _f(row.get("added_p50_ms", math.nan)),
                    _f(row.get("added_p99_ms", math.nan)),
                    _f(row["calls_per_s"], 0),
                    _f(row.get("throughput_ratio", math.nan)),
                    _f(row["target_cpu_ms_per_call"]),
                    _f(row["upstream_cpu_ms_per_call"]),
                )
            table.add_section()
        console.print(table)
    table = Table(title="targets (Switchyard, auth none)")
    for col in (
        "era/clients",
        "added p50 ms (<= 1.5 at 1 client)",
        "mcp-proxy added / ours (>= 5)",
        "mcp-proxy added / switchyard-stdio",
        "throughput vs direct at 32 (>= 0.60)",
    ):
        table.add_column(col)
    for key, v in report["verdicts"].items():
        ok = {True: "[green]met[/]", False: "[red]missed[/]"}
        table.add_row(
            key,
            f"{v['added_p50_ms']:.2f} {ok[v['added_p50_ok']] if 'added_p50_ok' in v else ''}",
            f"{v['proxy_added_over_switchyard']:.1f}x {ok[v['vs_proxy_ok']]}" if "vs_proxy_ok" in v else "-",
            f"{v['proxy_added_over_switchyard_stdio']:.1f}x" if "proxy_added_over_switchyard_stdio" in v else "-",
            f"{v['throughput_ratio']:.2f} ({v['switchyard_calls_per_s']:.0f}/s) {ok[v['throughput_ok']]}"
            if "throughput_ok" in v
            else "",
        )
    console.print(table)


# --- main --------------------------------------------------------------------------------------------------


async def measure(targets: list[Target], upstream: Proc, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for mode in args.modes:
        serving = []
        for t in targets:
            reason = await probe(t, mode)
            if reason is None:
                serving.append(t)
            else:
                t.unsupported[mode] = reason
                _progress(f"{t.name} {mode}: n/a ({reason})")
        levels: dict[str, Any] = {}
        for li, n in enumerate(args.clients):
            per = max(args.min_per_client, math.ceil(args.calls / n))
            rows: dict[str, Any] = {t.name: {"reason": t.unsupported[mode]} for t in targets if mode in t.unsupported}
            runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in serving}
            for r in range(args.rounds):
                k = (li + r) % max(1, len(serving))
                for t in serving[k:] + serving[:k]:  # rotate who goes first
                    left = deadline - time.monotonic()
                    if left < 5:
                        rows.setdefault(t.name, {"reason": "time cap reached"})
                        continue
                    try:
                        cap = min(left, args.run_cap)
                        row = await run_level(
                            t, mode, n=n, per_client=per, warmup=args.warmup, upstream=upstream, cap=cap, budget=cap / 3
                        )
                        runs[t.name].append(row)
                        _progress(
                            f"{mode} {n:>2} clients {t.name}: p50 {row['p50_ms']:.2f} ms "
                            f"p99 {row['p99_ms']:.2f} ms {row['calls_per_s']:.0f}/s"
                        )
                    except Exception as exc:  # recorded, the run goes on
                        _progress(f"{mode} {n} clients {t.name}: FAILED {_first_error(exc)}")
                        rows[t.name] = {"reason": f"failed: {_first_error(exc)}"}
            for name, got in runs.items():
                if got:
                    # one round: that row; several: the round with the median throughput
                    got.sort(key=lambda x: x["calls_per_s"])
                    rows[name] = {**got[len(got) // 2], "rounds": len(got)}
            order = [t.name for t in targets]
            levels[str(n)] = {k: rows[k] for k in order if k in rows}
        results[mode] = levels
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per target and client level")
    parser.add_argument("--min-per-client", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per connection")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    default_targets = [t for t in TARGETS if not t.startswith("floor-")]
    parser.add_argument("--targets", nargs="+", default=default_targets, choices=TARGETS)
    parser.add_argument("--rounds", type=int, default=1, help="repeat each level; the median-throughput round is kept")
    parser.add_argument("--time-cap", type=float, default=900, help="seconds for the whole measurement")
    parser.add_argument("--run-cap", type=float, default=120, help="seconds for one target at one level")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--render", metavar="FILE", help="print the tables of a saved --json report and exit")
    args = parser.parse_args(argv)
    if args.render:
        render(derive(json.loads(Path(args.render).read_text(encoding="utf-8"))), Console(width=200))
        return 0

    load_start = _load()
    t0 = time.monotonic()
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "python_loop_ms": _python_speed_ms(),
        "argv": sys.argv,
        "targets": {},
        "failed": {},
    }
    with tempfile.TemporaryDirectory(prefix="sy-h2h-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        fast = fixture_server("fast")
        port = free_port()
        upstream = stack.enter_context(
            started("upstream", [fast.command, *fast.args, "--http", f"127.0.0.1:{port}"], port, work)
        )
        up_url = f"http://127.0.0.1:{port}/mcp"
        targets: list[Target] = []
        starters = {
            "direct": lambda: Target("direct", up_url, "echo", note="fast fixture, MCPServer streamable-http"),
            "switchyard": lambda: start_switchyard(stack, work, up_url, key=False),
            "switchyard-key": lambda: start_switchyard(stack, work, up_url, key=True),
            "switchyard-stdio": lambda: start_switchyard(stack, work, None, key=False),
            "mcp-proxy": lambda: start_mcp_proxy(stack, work),
            "contextforge": lambda: start_contextforge(stack, work, up_url),
            "floor-tcp": lambda: start_floor(stack, work, up_url, "tcp"),
            "floor-http": lambda: start_floor(stack, work, up_url, "http"),
        }
        for name in args.targets:
            _progress(f"starting {name}")
            try:
                t = starters[name]()
            except Exception as exc:
                meta["failed"][name] = _first_error(exc) if not isinstance(exc, RuntimeError) else str(exc)[-1500:]
                _progress(f"{name} failed to start: {meta['failed'][name]}")
                continue
            targets.append(t)
            meta["targets"][name] = t.note
        results = anyio.run(measure, targets, upstream, args, t0 + args.time_cap)
    meta["load_end"] = _load()
    meta["elapsed_s"] = time.monotonic() - t0
    report = derive({"meta": meta, "results": results})
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        render(report, Console(width=200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
