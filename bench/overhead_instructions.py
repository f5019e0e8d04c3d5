"""Instructions the gateway process executes per forwarded call, counted by valgrind (issue 2's CPU cost).

    python bench/overhead_instructions.py [--base HEAD] [--calls 400] [--modes auto legacy] [--text-bytes N]
                                          [--front stdio|http]

The overhead benchmark's wall and CPU times move by 2x within minutes on this VM, so a 5-10% change in the
gateway's cost per call cannot be seen in them. This script runs `switchyard serve -c CFG` under
`valgrind --tool=callgrind --instr-atstart=no` with the `fast` fixture behind it (not under valgrind), drives
it with the SDK `mcp.Client` (the same `echo` calls as `bench/overhead.py`'s latency phase), switches counting
on with `callgrind_control` only after `--warmup` calls, and off after `--calls` more. The count is the
gateway's own work per call on the call path and off it (audit writer thread included), in every thread,
with `PYTHONHASHSEED=0` (string hashing changes dict layouts, and so the count). It depends only on the code
and its input; two runs of the same code differ by well under 1%.

`--front http` counts issue 3's path instead: `switchyard serve --http` with the `fast` fixture on Streamable
HTTP behind it (`{"url": ...}`, not under valgrind), driven over HTTP by the same client (`auto` negotiates
2026-07-28; `legacy` a 2025-11-25 session), with `auth.mode: none` as in `bench/head_to_head.py`.

For each side (the working tree, and `--base`, a git revision extracted with `git archive`) and each client
mode, one gateway process: about 25-40 s each. Prints thousands of instructions per call and the change.
Needs valgrind (Debian: `apt-get install valgrind`). Not a test.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import TextIO

import anyio
import httpx2 as httpx
import psutil
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from overhead import connect, gateway_params, write_config
from revision import revision_src

from switchyard.testing.peers import fixture_server, free_port, http_fixture_server

ROOT = Path(__file__).resolve().parents[1]
_CONTROL_TIMEOUT = 60.0
_DUMP_WAIT = 120.0
_READY_WAIT = 180.0


def _valgrind(params: StdioServerParameters, out: Path, src: Path) -> StdioServerParameters:
    env = dict(params.env or {})
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = str(src)
    args = [
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "switchyard.cli.main",
        *params.args[params.args.index("serve") :],
    ]
    return StdioServerParameters(command="valgrind", args=args, env=env)


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=_CONTROL_TIMEOUT)


async def drive(src: Path, work: Path, *, mode: str, calls: int, warmup: int, text: str, errlog: TextIO) -> Path:
    """Run one gateway on `src` under callgrind and count `calls` calls after `warmup`; returns its output path."""
    out = work / "callgrind.out"
    config = write_config(work / "one.json", {"fast": fixture_server("fast")}, log_level="warning")
    params = _valgrind(gateway_params(config), out, src)
    async with AsyncExitStack() as stack:
        client = await connect(stack, params, mode, errlog)
        for _ in range(warmup):
            await client.call_tool("fast__echo", {"text": text})
        gateways = [p for p in psutil.Process().children() if "valgrind" in " ".join(p.cmdline())]
        if len(gateways) != 1:
            raise RuntimeError(f"expected one valgrind child, found {len(gateways)}")
        pid = gateways[0].pid
        _control(pid, "-i", "on")
        for _ in range(calls):
            await client.call_tool("fast__echo", {"text": text})
        _control(pid, "-i", "off")
    return out  # the client's exit closed the gateway's stdin: callgrind writes its file(s) as it ends


def _http_config(path: Path, upstream: str) -> Path:
    settings = {
        "log_level": "warning",
        "auth": {"mode": "none"},
        "scan": {"on_start": False},
        "timeouts": {"startup": 60, "connect": 60},
        "store": {"path": str(path.with_suffix(".db"))},
    }
    path.write_text(json.dumps({"mcpServers": {"fast": {"url": upstream}}, "switchyard": settings}), encoding="utf-8")
    return path


def _start(argv: list[str], env: dict[str, str] | None, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def _wait_ready(url: str, popen: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _READY_WAIT
    while time.monotonic() < deadline and popen.poll() is None:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the gateway under valgrind was not ready at {url} within {_READY_WAIT:.0f} s")


async def drive_http(src: Path, work: Path, *, mode: str, calls: int, warmup: int, text: str) -> Path:
    """`drive` for the HTTP front, with the `fast` fixture on Streamable HTTP behind the gateway."""
    out = work / "callgrind.out"
    with http_fixture_server("fast") as upstream:
        config = _http_config(work / "one.json", upstream)
        port = free_port()
        params = _valgrind(gateway_params(config), out, src)
        argv = [params.command, *params.args, "--http", f"127.0.0.1:{port}"]
        popen = _start(argv, params.env, work / "gateway.log")
        try:
            _wait_ready(f"http://127.0.0.1:{port}/readyz", popen)
            http = create_mcp_http_client()
            target = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
            async with http, Client(target, mode=mode if mode == "legacy" else "auto", cache=None) as client:  # type: ignore[arg-type]
                for _ in range(warmup):
                    await client.call_tool("fast__echo", {"text": text})
                _control(popen.pid, "-i", "on")
                for _ in range(calls):
                    await client.call_tool("fast__echo", {"text": text})
                _control(popen.pid, "-i", "off")
        finally:
            popen.terminate()  # the gateway ends on SIGTERM; callgrind writes its file(s) as it does
            try:
                popen.wait(_DUMP_WAIT)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
    return out


def _totals(out: Path) -> int:
    """The instructions counted in every thread's output file, once callgrind has written them."""
    deadline = time.monotonic() + _DUMP_WAIT
    while not (files := glob.glob(f"{out}*")) or any(os.path.getsize(f) == 0 for f in files):
        if time.monotonic() > deadline:
            raise RuntimeError(f"callgrind wrote no output within {_DUMP_WAIT:.0f} s")
        time.sleep(0.5)
    time.sleep(1.0)
    total = 0
    for name in glob.glob(f"{out}*"):
        with open(name, encoding="utf-8", errors="replace") as fh:
            total += sum(int(line.split()[1]) for line in fh if line.startswith("totals:"))
    if total == 0:
        raise RuntimeError("callgrind counted nothing (was the call window reached?)")
    return total


def count(src: Path, mode: str, calls: int, warmup: int, text: str, *, front: str = "stdio") -> float:
    """Instructions per call of one gateway process running `src`, over `calls` calls after `warmup`."""
    with tempfile.TemporaryDirectory(prefix="sy-instr-") as tmp, open(os.devnull, "w") as errlog:
        if front == "http":
            run = partial(drive_http, src, Path(tmp), mode=mode, calls=calls, warmup=warmup, text=text)
        else:
            run = partial(drive, src, Path(tmp), mode=mode, calls=calls, warmup=warmup, text=text, errlog=errlog)
        out = anyio.run(run)
        return _totals(out) / calls


def main(argv: list[str] | None = None) -> int:
    """Count both sides and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--base", default="HEAD", help="git revision to compare with (default HEAD)")
    parser.add_argument("--calls", type=int, default=400, help="counted calls per gateway")
    parser.add_argument("--warmup", type=int, default=150, help="calls before counting starts")
    parser.add_argument("--modes", nargs="+", choices=("auto", "legacy"), default=["auto", "legacy"])
    parser.add_argument("--text-bytes", type=int, default=0, help="echo this many bytes of text, not 'ping'")
    parser.add_argument("--front", choices=("stdio", "http"), default="stdio", help="the gateway's front")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
            return 2
    text = ("lorem ipsum dolor sit amet " * (args.text_bytes // 27 + 1))[: args.text_bytes] or "ping"
    results: dict[str, dict[str, float]] = {"base": {}, "tree": {}}
    with revision_src(args.base) as base_src:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(base_src)], check=True)
        for mode in args.modes:
            results["base"][mode] = count(base_src, mode, args.calls, args.warmup, text, front=args.front)
            results["tree"][mode] = count(ROOT / "src", mode, args.calls, args.warmup, text, front=args.front)
    if args.json:
        report = {"base": args.base, "front": args.front, "calls": args.calls, "text_bytes": len(text), **results}
        print(json.dumps(report))
        return 0
    print(f"| mode | {args.base} (k instr./call) | working tree | change |\n|---|---:|---:|---:|")
    for mode in args.modes:
        base, tree = results["base"][mode], results["tree"][mode]
        print(f"| {mode} | {base / 1000:,.0f} | {tree / 1000:,.0f} | {(tree - base) / base * 100:+.1f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
