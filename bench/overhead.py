"""Gateway overhead benchmark (issue 2), run from a checkout (never as a timed test).

    python bench/overhead.py [--calls 1000] [--concurrency 8] [--servers 20] [--slow-delay 3] [--json]

One run measures, on this machine, over stdio and loopback only:

1. **Sequential latency**: `--calls` calls (after `--warmup`) of the `fast` fixture's `echo` tool, one at a
   time, from the SDK `mcp.Client` connected (a) directly to the fixture and (b) to `switchyard serve -c CFG`
   with the same fixture behind it; in both client modes (`auto`, which negotiates 2026-07-28, and `legacy`).
   Reported: p50/p99/mean per call and the added latency (gateway minus direct, per percentile).
2. **Throughput with 8 concurrent clients**. A stdio gateway serves exactly one client (its stdin/stdout), so
   "8 concurrent clients" is measured two ways and both are reported:
   - `shared`: 8 concurrent tasks on one client connection (one gateway process, one upstream session with
     8 calls multiplexed on it; direct: 8 tasks on one connection to one fixture process);
   - `separate`: 8 client connections, each with its own gateway process (and that gateway's own fixture
     process); direct: 8 connections, each to its own fixture process.
   Reported: calls/s through Switchyard, direct, and their ratio.
3. **Start-up with `--servers` servers** (N-1 `fast` + one `slow_start` sleeping `--slow-delay` s): time from
   spawning the gateway until `tools/list` answers with every server's tools, compared with (a) the slow
   server's own start time measured directly (spawn to its tool list, alone), and (b) the moment the gateway
   logged the slow server up in the same run; plus the gateway's RSS (its own process, children excluded).

Everything it starts it stops (the SDK's stdio transport closes stdin, then terminates); each phase has a time
limit. `--json` prints one JSON object instead of tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import anyio
import psutil
from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from rich.console import Console
from rich.table import Table

from switchyard.testing.peers import fixture_server, server_entry

MODES = ("auto", "legacy")
TARGET_P50_MS = 1.0
TARGET_P99_MS = 3.0
TARGET_THROUGHPUT = 0.80
TARGET_READY_S = 0.5
TARGET_RSS_MB = 150.0


# --- processes ---------------------------------------------------------------------------------------------


def _switchyard_argv() -> list[str]:
    script = Path(sys.executable).parent / "switchyard"
    if script.exists():
        return [str(script)]
    found = shutil.which("switchyard")
    return [found] if found else [sys.executable, "-m", "switchyard.cli.main"]


def write_config(path: Path, servers: dict[str, StdioServerParameters], log_level: str = "info") -> Path:
    """A Claude-style config with the given stdio servers; gateway settings at their defaults (audit log on)
    except the log level, start-up waits long enough for a loaded 2-core machine, and the store (audit
    log) in the run's temporary directory."""
    config = {
        "mcpServers": {name: server_entry(params) for name, params in servers.items()},
        "switchyard": {
            "log_level": log_level,
            "timeouts": {"startup": 60, "connect": 60},
            "store": {"path": str(path.with_suffix(".db"))},  # audit rows etc. stay in the run's temp dir
        },
    }
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def gateway_params(config: Path, env: dict[str, str] | None = None) -> StdioServerParameters:
    """`switchyard serve -c CONFIG` as the SDK's stdio server parameters: the SDK's default environment, plus
    PYTHONPATH when set (so a run from a clean checkout times that checkout's code) and `env`."""
    argv = _switchyard_argv()
    full_env = get_default_environment()
    if os.environ.get("PYTHONPATH"):
        full_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    full_env.update(env or {})
    return StdioServerParameters(command=argv[0], args=[*argv[1:], "serve", "-c", str(config)], env=full_env)


async def connect(stack: AsyncExitStack, params: StdioServerParameters, mode: str, errlog: TextIO) -> Client:
    """An SDK client on a stdio server, its stderr to `errlog`; closed with `stack`."""
    client = Client(stdio_client(params, errlog=errlog), mode=mode, cache=None)  # type: ignore[arg-type]
    return await stack.enter_async_context(client)


def _children_matching(text: str) -> list[psutil.Process]:
    out: list[psutil.Process] = []
    for child in psutil.Process().children(recursive=False):
        try:
            if text in " ".join(child.cmdline()):
                out.append(child)
        except psutil.Error:
            continue
    return out


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics --------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "max_ms": max(ms),
    }


# --- phases ------------------------------------------------------------------------------------------------


PAYLOAD = {"text": "ping"}
"""The `echo` arguments (`--text-bytes` makes the text, and so the result, longer)."""


async def _call(client: Client, tool: str) -> None:
    result = await client.call_tool(tool, PAYLOAD)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content}")


async def sequential(clients: dict[str, tuple[Client, str]], calls: int, warmup: int) -> dict[str, list[float]]:
    """Per-call latency in ms of `calls` sequential calls on each client, after `warmup` untimed ones.

    The clients take turns call by call (the order flips every call), so on a shared machine both paths see
    the same background load instead of one path getting a quiet minute and the other a busy one.
    """
    order = list(clients)
    for _ in range(warmup):
        for key in order:
            await _call(*clients[key])
    out: dict[str, list[float]] = {key: [] for key in order}
    clock = time.perf_counter
    for i in range(calls):
        for key in order if i % 2 == 0 else reversed(order):
            client, tool = clients[key]
            t = clock()
            await _call(client, tool)
            out[key].append((clock() - t) * 1000)
    return out


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


async def concurrent(
    params: StdioServerParameters, tool: str, mode: str, errlog: TextIO, *, connections: int, tasks: int, per_task: int
) -> float:
    """Calls per second of `tasks` tasks making `per_task` sequential calls each, spread over `connections`
    client connections (each its own server process), all connected and warmed up before the clock starts."""
    ready, go, finished = anyio.Event(), anyio.Event(), anyio.Event()
    clients: list[Client] = []
    done: list[float] = []

    async def hold() -> None:
        async with AsyncExitStack() as stack:
            client = await connect(stack, params, mode, errlog)
            for _ in range(5):
                await _call(client, tool)
            clients.append(client)
            if len(clients) == connections:
                ready.set()
            await finished.wait()  # stay connected until every task is done

    async def worker(i: int) -> None:
        await go.wait()
        client = clients[i % connections]
        for _ in range(per_task):
            await _call(client, tool)
        done.append(time.perf_counter())
        if len(done) == tasks:
            finished.set()

    start = math.nan
    async with anyio.create_task_group() as tg:
        for _ in range(connections):
            tg.start_soon(hold)
        await ready.wait()
        for i in range(tasks):
            tg.start_soon(worker, i)
        start = time.perf_counter()
        go.set()
        await finished.wait()
    return tasks * per_task / (max(done) - start)


COMPARE = ("sdk-stdio", "no-lanes", "no-uvloop", "no-audit", "no-guard", "floor-relay")
_OFF = {"no-audit": "audit", "no-guard": "guards"}


def _variant(work: Path, variant: str) -> StdioServerParameters:
    """The one-server gateway with one thing changed: the SDK's thread-backed stdio transport, no audit log,
    or no output guard; or (`floor-relay`) no gateway at all but `bench/floor_relay.py`, a byte relay process
    in front of the fixture."""
    fast = fixture_server("fast")
    if variant == "floor-relay":
        relay = str(Path(__file__).with_name("floor_relay.py"))
        return StdioServerParameters(command=sys.executable, args=[relay, "--", fast.command, *fast.args])
    if variant == "sdk-stdio":
        return gateway_params(write_config(work / "one.json", {"fast": fast}), env={"SWITCHYARD_SDK_STDIO": "1"})
    if variant in ("no-lanes", "no-uvloop"):
        switch = "SWITCHYARD_LANES" if variant == "no-lanes" else "SWITCHYARD_UVLOOP"
        return gateway_params(write_config(work / "one.json", {"fast": fast}), env={switch: "off"})
    config = write_config(work / f"{variant}.json", {"fast": fast})
    data = json.loads(config.read_text(encoding="utf-8"))
    data["switchyard"][_OFF[variant]] = {"enabled": False}
    config.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return gateway_params(config)


def _tool(variant: str) -> str:
    """The `echo` tool's name on a variant's path: the relay passes the fixture's own name through."""
    return "echo" if variant == "floor-relay" else "fast__echo"


async def latency_phase(work: Path, args: argparse.Namespace, errlog: TextIO) -> dict[str, Any]:
    fast = fixture_server("fast")
    config = write_config(work / "one.json", {"fast": fast})
    paths: dict[str, tuple[StdioServerParameters, str]] = {
        "direct": (fast, "echo"),
        "gateway": (gateway_params(config), "fast__echo"),
        **{f"gateway-{v}": (_variant(work, v), _tool(v)) for v in args.compare},
    }
    out: dict[str, Any] = {}
    for mode in args.modes:
        async with AsyncExitStack() as stack:
            clients: dict[str, tuple[Client, str]] = {}
            procs: dict[str, list[psutil.Process]] = {}
            for path, (params, tool) in paths.items():
                before = {c.pid for c in psutil.Process().children()}
                clients[path] = (await connect(stack, params, mode, errlog), tool)
                procs[path] = [c for c in psutil.Process().children() if c.pid not in before]
            cpu0 = {path: _cpu_seconds(p) for path, p in procs.items()}
            me0 = _cpu_seconds([psutil.Process()])
            _progress(f"latency {mode}: {args.calls} calls on each of {', '.join(clients)}")
            lat = await sequential(clients, args.calls, args.warmup)
            calls = args.calls + args.warmup
            cpu = {path: (_cpu_seconds(p) - cpu0[path]) / calls for path, p in procs.items()}
            client_cpu = (_cpu_seconds([psutil.Process()]) - me0) / (calls * len(clients))
        row: dict[str, Any] = {path: {**summary(ms), "cpu_ms_per_call": cpu[path] * 1000} for path, ms in lat.items()}
        for path in lat:
            if path != "direct":
                key = "added" if path == "gateway" else f"added-{path.removeprefix('gateway-')}"
                row[key] = {k: row[path][k] - row["direct"][k] for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms")}
        # Where every process is CPU-bound (8 concurrent callers on 2 cores), calls/s is about
        # cores / (CPU per call of client + servers): the throughput ratio this predicts, whatever the load.
        c, f = client_cpu * 1000, row["direct"]["cpu_ms_per_call"]
        row["client_cpu_ms_per_call"] = c
        row["cpu_bound_ratio"] = {
            path: (c + f) / (c + row[path]["cpu_ms_per_call"] + f) for path in lat if path != "direct"
        }
        out[mode] = row
    return out


def _first_error(exc: BaseException) -> str:
    first = exc
    inner: tuple[BaseException, ...] = getattr(first, "exceptions", ())
    while inner:
        first = inner[0]
        inner = getattr(first, "exceptions", ())
    return f"{type(first).__name__}: {first}"[:200]


async def throughput_phase(work: Path, args: argparse.Namespace, errlog: TextIO) -> dict[str, Any]:
    fast = fixture_server("fast")
    config = write_config(work / "one.json", {"fast": fast})
    paths: dict[str, tuple[StdioServerParameters, str]] = {
        "direct": (fast, "echo"),
        "gateway": (gateway_params(config), "fast__echo"),
        **{f"gateway-{v}": (_variant(work, v), _tool(v)) for v in args.compare},
    }
    n, per = args.concurrency, max(1, args.concurrent_calls // args.concurrency)
    out: dict[str, Any] = {}
    for mode in args.modes:
        for shape in args.shapes:
            runs: dict[str, list[float]] = {path: [] for path in paths}
            errors: list[str] = []
            # Paths take turns, `--repeat` rounds, and the median is kept: the machine is shared.
            for _ in range(args.repeat):
                for path, (params, tool) in paths.items():
                    connections = 1 if shape == "shared" else n
                    try:
                        rate = await concurrent(
                            params, tool, mode, errlog, connections=connections, tasks=n, per_task=per
                        )
                    except Exception as exc:  # recorded, and the run goes on
                        rate = math.nan
                        errors.append(f"{path}: {_first_error(exc)}")
                    runs[path].append(rate)
                    _progress(f"throughput {mode}/{shape} {path}: {rate:.0f} calls/s")
            row: dict[str, Any] = {"tasks": n, "calls": n * per, "runs": runs, "errors": errors}
            for path, rates in runs.items():
                good = [r for r in rates if not math.isnan(r)]
                row[path] = statistics.median(good) if good else math.nan
                if path != "direct":
                    key = "ratio" if path == "gateway" else f"ratio-{path.removeprefix('gateway-')}"
                    row[key] = row[path] / row["direct"]
            out[f"{mode}/{shape}"] = row
    return out


_UP_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO switchyard\.upstream: server (\S+): up ")


async def _time_to_tools(params: StdioServerParameters, want: set[str], errlog: TextIO, limit: float) -> float:
    """Seconds from spawning `params` until a `tools/list` (auto mode) lists every prefix in `want`."""
    start = time.perf_counter()
    async with AsyncExitStack() as stack:
        client = await connect(stack, params, "auto", errlog)
        while True:
            tools = (await client.list_tools()).tools
            have = {t.name.split("__", 1)[0] if "__" in t.name else "" for t in tools}
            if want <= have or (not want and tools):
                return time.perf_counter() - start
            if time.perf_counter() - start > limit:
                raise TimeoutError(f"only {sorted(have)} listed after {limit} s")
            await anyio.sleep(0.01)


async def startup_phase(work: Path, args: argparse.Namespace, errlog: TextIO) -> dict[str, Any]:
    slow = fixture_server("slow_start", str(args.slow_delay))
    out: dict[str, Any] = {"servers": args.servers, "slow_delay_s": args.slow_delay}
    # (a) the slow server alone, spawned directly: its own start time.
    out["slow_alone_s"] = await _time_to_tools(slow, set(), errlog, 60)
    # (b) the gateway with N-1 fast servers and the slow one; its stderr at INFO to read "server slow: up".
    servers = {f"f{i:02d}": fixture_server("fast") for i in range(args.servers - 1)}
    servers["slow"] = slow
    config = write_config(work / "many.json", servers, log_level="info")
    log_path = work / "gateway-startup.log"
    want = set(servers)
    with log_path.open("w+", encoding="utf-8") as log:
        spawned_at = time.time()
        start = time.perf_counter()
        async with AsyncExitStack() as stack:
            client = await connect(stack, gateway_params(config), "auto", log)
            connected = time.perf_counter() - start
            while True:
                tools = (await client.list_tools()).tools
                have = {t.name.split("__", 1)[0] for t in tools}
                if want <= have:
                    break
                if time.perf_counter() - start > 60:
                    raise TimeoutError(f"only {len(have)} servers listed after 60 s")
                await anyio.sleep(0.01)
            ready = time.perf_counter() - start
            gateways = _children_matching(str(config))
            if len(gateways) != 1:
                raise RuntimeError(f"expected one gateway process, found {len(gateways)}")
            gw = gateways[0]
            mem = gw.memory_full_info()
            kids = gw.children(recursive=True)
            first_child = min((k.create_time() for k in gw.children()), default=math.nan)
            out.update(
                connected_s=connected,
                ready_s=ready,
                tools=len(tools),
                gateway_rss_mb=mem.rss / 2**20,
                gateway_uss_mb=mem.uss / 2**20,
                child_processes=len(kids),
                first_server_spawned_s=first_child - spawned_at,
            )
        log.flush()
        log.seek(0)
        ups: dict[str, float] = {}
        for line in log:
            m = _UP_LINE.match(line)
            if m and m.group(2) not in ups:
                ups[m.group(2)] = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() - spawned_at
        if len(ups) == len(servers):
            last = max(ups, key=lambda k: ups[k])
            out.update(
                slow_up_in_run_s=ups["slow"],
                first_up_in_run_s=min(ups.values()),
                last_up_in_run_s=ups[last],
                last_up_server=last,
                ready_after_last_up_s=ready - ups[last],
            )
    out["ready_after_slow_alone_s"] = out["ready_s"] - out["slow_alone_s"]
    return out


# --- report ------------------------------------------------------------------------------------------------


def _python_speed_ms() -> float:
    """Best of 5 timings of a fixed pure-Python loop: how fast this machine runs Python right now (a shared
    machine's effective speed changes with its load; compare runs by this too, not only by the load)."""
    best = math.inf
    for _ in range(5):
        t = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i & 7
        best = min(best, time.perf_counter() - t)
    return best * 1000


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python_loop_ms": round(_python_speed_ms(), 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1_5_15": [round(x, 2) for x in load],
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _ok(good: bool) -> str:
    return "[green]yes[/]" if good else "[red]no[/]"


def print_tables(result: dict[str, Any], console: Console) -> None:
    m = result["machine"]
    console.print(
        f"machine: {m['cpus']} CPUs, Python {m['python']}, load {m['load_avg_1_5_15']} (start) "
        f"-> {result.get('load_after')} (end), 1M-iteration Python loop {m.get('python_loop_ms', '?')} ms, "
        f"{m['date_utc']}"
    )
    if "latency" in result:
        t = Table(title=f"sequential calls ({result['args']['calls']} after {result['args']['warmup']} warm-up)")
        t.caption = (
            "direct and gateway calls alternate; added = gateway - direct at each percentile; "
            "CPU = user+system time of the server process per call (direct: the fixture; gateway: the gateway "
            "process alone, its fixture excluded)"
        )
        for col in ("mode", "path", "p50 ms", "p90 ms", "p99 ms", "mean ms", "max ms", "CPU ms/call"):
            t.add_column(col, justify="left" if col in ("mode", "path") else "right")
        for mode, row in result["latency"].items():
            for path in [p for p in row if p == "direct" or p.startswith("gateway")]:
                s = row[path]
                t.add_row(
                    mode,
                    path,
                    *(f"{s[k]:.3f}" for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms", "cpu_ms_per_call")),
                )
            if "cpu_bound_ratio" in row:
                t.add_row(
                    mode,
                    "client (SDK)",
                    *([""] * 5),
                    f"{row['client_cpu_ms_per_call']:.3f}",
                )
            added = [k for k in row if k.startswith("added")]
            for i, key in enumerate(added):
                a = row[key]
                t.add_row(
                    mode,
                    f"[bold]{key}[/]",
                    f"[bold]{a['p50_ms']:.3f}[/] {_ok(a['p50_ms'] <= TARGET_P50_MS)}",
                    f"{a['p90_ms']:.3f}",
                    f"[bold]{a['p99_ms']:.3f}[/] {_ok(a['p99_ms'] <= TARGET_P99_MS)}",
                    f"{a['mean_ms']:.3f}",
                    "",
                    "",
                    end_section=i == len(added) - 1,
                )
        console.print(t)
        ratios = [(mode, row["cpu_bound_ratio"]) for mode, row in result["latency"].items() if "cpu_bound_ratio" in row]
        if ratios:
            console.print(
                "CPU-bound throughput ratio these CPU costs predict, "
                "(client + fixture) / (client + gateway + fixture): "
                + "; ".join(f"{mode} " + ", ".join(f"{p} {r:.0%}" for p, r in rs.items()) for mode, rs in ratios)
            )
    if "throughput" in result:
        t = Table(title=f"throughput, {result['args']['concurrency']} concurrent clients")
        for col in ("mode/shape", "path", "calls", "calls/s (median)", "runs", "vs direct", ">= 80%"):
            t.add_column(col, justify="left" if col in ("mode/shape", "path", "runs") else "right")
        for key, row in result["throughput"].items():
            paths = list(row["runs"])
            for i, path in enumerate(paths):
                ratio_key = "ratio" if path == "gateway" else f"ratio-{path.removeprefix('gateway-')}"
                ratio = row.get(ratio_key)
                t.add_row(
                    key,
                    path,
                    str(row["calls"]),
                    f"{row[path]:.0f}",
                    " ".join(f"{r:.0f}" for r in row["runs"][path]),
                    f"{ratio:.0%}" if ratio is not None else "",
                    _ok(ratio >= TARGET_THROUGHPUT) if ratio is not None else "",
                    end_section=i == len(paths) - 1,
                )
        console.print(t)
        for key, row in result["throughput"].items():
            for error in row.get("errors", []):
                console.print(f"[red]{key}: a run failed[/] ({error}); its median leaves it out")
    if "startup" in result:
        s = result["startup"]
        t = Table(
            title=f"start-up: {s['servers']} servers ({s['servers'] - 1} fast + slow_start {s['slow_delay_s']} s)"
        )
        t.add_column("measure")
        t.add_column("value", justify="right")
        t.add_column("target", justify="right")
        t.add_row("slow server alone: spawn -> tools listed", f"{s['slow_alone_s']:.3f} s", "")
        t.add_row("gateway: spawn -> client connected", f"{s['connected_s']:.3f} s", "")
        t.add_row("gateway: spawn -> first server process started", f"{s['first_server_spawned_s']:.3f} s", "")
        if "last_up_in_run_s" in s:
            t.add_row("gateway: spawn -> first server up (gateway log)", f"{s['first_up_in_run_s']:.3f} s", "")
            t.add_row("gateway: spawn -> slow_start up (gateway log)", f"{s['slow_up_in_run_s']:.3f} s", "")
            t.add_row(f"gateway: spawn -> last server up ({s['last_up_server']})", f"{s['last_up_in_run_s']:.3f} s", "")
        t.add_row(f"gateway: spawn -> tools/list has all {s['servers']}", f"{s['ready_s']:.3f} s", "")
        if "ready_after_last_up_s" in s:
            good = s["ready_after_last_up_s"] <= TARGET_READY_S
            t.add_row(
                "ready after the slowest server is up", f"{s['ready_after_last_up_s']:.3f} s", f"<= 0.5 s {_ok(good)}"
            )
        t.add_row("ready minus slow server alone", f"{s['ready_after_slow_alone_s']:.3f} s", "")
        t.add_row(
            "gateway RSS (children excluded)",
            f"{s['gateway_rss_mb']:.1f} MB",
            f"<= 150 MB {_ok(s['gateway_rss_mb'] <= TARGET_RSS_MB)}",
        )
        t.add_row("gateway USS", f"{s['gateway_uss_mb']:.1f} MB", "")
        t.add_row("tools listed / child processes", f"{s['tools']} / {s['child_processes']}", "")
        console.print(t)


# --- main --------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    skip = ("json", "tables_from")
    result: dict[str, Any] = {"machine": machine(), "args": {k: v for k, v in vars(args).items() if k not in skip}}
    phases: dict[str, Callable[[Path, argparse.Namespace, TextIO], Awaitable[dict[str, Any]]]] = {
        "latency": latency_phase,
        "throughput": throughput_phase,
        "startup": startup_phase,
    }
    with tempfile.TemporaryDirectory(prefix="switchyard-overhead-") as tmp:
        work = Path(tmp)
        with (work / "stderr.log").open("w", encoding="utf-8") as errlog:
            for name in args.phases:
                _progress(f"{name} phase (load {os.getloadavg()[0]:.1f})")
                with anyio.fail_after(args.phase_timeout):
                    result[name] = await phases[name](work, args, errlog)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="sequential timed calls per path and mode")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients / tasks")
    parser.add_argument("--concurrent-calls", type=int, default=2000, help="calls per throughput measurement")
    parser.add_argument("--repeat", type=int, default=2, help="throughput runs per path (median kept)")
    parser.add_argument(
        "--shapes",
        nargs="+",
        choices=("shared", "separate"),
        default=["shared", "separate"],
        help="8 tasks on one connection, and/or 8 connections each with its own server or gateway process",
    )
    parser.add_argument("--servers", type=int, default=20, help="servers in the start-up phase")
    parser.add_argument("--slow-delay", type=float, default=3.0, help="seconds slow_start sleeps before serving")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=("latency", "throughput", "startup"),
        default=["latency", "throughput", "startup"],
    )
    parser.add_argument("--phase-timeout", type=float, default=900.0, help="seconds before a phase is abandoned")
    parser.add_argument(
        "--compare",
        nargs="*",
        choices=COMPARE,
        default=[],
        help="also time, in the same loop, the gateway on the SDK's thread-backed stdio transport (sdk-stdio), "
        "with the lanes off (no-lanes: SWITCHYARD_LANES=off, the SDK's dispatcher and client session on every "
        "call), on the standard asyncio loop (no-uvloop: SWITCHYARD_UVLOOP=off), with the audit log off "
        "(no-audit), with the output guard off (no-guard); or, for the floor of one extra process hop, no gateway "
        "but a byte relay in front of the fixture (floor-relay: bench/floor_relay.py)",
    )
    parser.add_argument(
        "--text-bytes", type=int, default=0, help="echo this many bytes of plain prose instead of 'ping'"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--tables-from", metavar="FILE", help="print the tables of an earlier --json run; run nothing")
    args = parser.parse_args(argv)
    if args.text_bytes > 0:
        prose = "The quarterly report lists revenue, costs and the outlook for the next two quarters. "
        PAYLOAD["text"] = (prose * (args.text_bytes // len(prose) + 1))[: args.text_bytes]
    if args.tables_from:
        result = json.loads(Path(args.tables_from).read_text(encoding="utf-8"))
    else:
        result = anyio.run(run, args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # whole tables in files and pipes
        print_tables(result, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
