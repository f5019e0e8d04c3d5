"""Governance overhead benchmark (issue 5), run from a checkout (never as a timed test).

    python bench/governance.py [--calls 3000] [--rows 100000] [--json]

Measures, in one process:

1. **Per-call overhead of the full pipeline** (auth + policy + rate limit + audit) over the bare gateway.
   Two gateways over the same in-memory upstream (the SDK's in-memory transport): one with no stages, one with
   the stages built from a governed configuration (a policy with rules, so it is evaluated; per-principal,
   per-principal+tool and per-upstream buckets sized never to refuse; the SQLite audit log in a temporary
   file, written by its thread). Each governed call first authenticates an API key (SQLite lookup +
   sha256), as the HTTP middleware does per request; a JWT (RS256) variant is timed too. Calls alternate
   between the gateways so drift hits both equally. Reported: p50/p99 per call and the added p50.
   The same stages are also timed around a dispatch that returns at once (no upstream), which isolates their
   cost from the upstream's noise.
2. **Audit writer throughput**: `--rows` audit events (realistic arguments, redacted and serialized by the
   writer thread) submitted as fast as possible; rows/s until the last is committed (group commit, WAL,
   synchronous=NORMAL), and the same for `synchronous=FULL`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mcp.server.mcpserver import MCPServer

from switchyard.config import JwtSettings, parse_config
from switchyard.identity import Principal
from switchyard.pipeline.chain import compose
from switchyard.pipeline.context import CallContext
from switchyard.server.credentials import ApiKeyAuthenticator, JwtAuthenticator
from switchyard.stages import build_stages
from switchyard.stages.audit import AuditEvent
from switchyard.stages.redact import Redactor
from switchyard.store.audit import SqliteAuditStore
from switchyard.store.keys import SqliteKeyStore
from switchyard.testing.harness import memory_gateway

TARGET_OVERHEAD_MS = 0.5
TARGET_ROWS_PER_S = 5_000
BLOCK = 50
RESOURCE = "https://gateway.example.com/mcp"
ISSUER = "https://auth.example.com"


def upstream() -> dict[str, MCPServer]:
    server = MCPServer("alpha")

    @server.tool()
    def echo(text: str, api_token: str = "") -> str:
        """Echo."""
        return text

    return {"alpha": server}


def governed_settings(db: Path) -> dict[str, Any]:
    big = {"rate": 1e6, "burst": 1_000_000}
    return {
        "audit": {"path": str(db)},
        "policy": {
            "groups": {"alice": ["dev"]},
            "default": "deny",
            "rules": [{"groups": ["dev"], "servers": {"allow": ["alpha"]}, "tools": {"deny": ["*admin*", "*rm*"]}}],
        },
        "limits": {"per_principal": big, "per_principal_tool": big, "per_upstream": {"*": big}},
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "p50_ms": round(pct(ms, 0.5), 4),
        "p99_ms": round(pct(ms, 0.99), 4),
        "mean_ms": round(statistics.mean(ms), 4),
    }


def paired_added(paired: dict[str, list[float]], name: str) -> float:
    """Median over rounds of (this variant's block median - the bare block median of the same round), in ms."""
    return statistics.median(g - b for g, b in zip(paired[name], paired["bare_call"], strict=True)) * 1000


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def overhead(calls: int, tmp: Path) -> dict[str, Any]:
    """Phase 1: bare vs governed gateway, and the stages alone."""
    settings = governed_settings(tmp / "audit.db")
    config = parse_config({"mcpServers": {"alpha": {"command": "x"}}, "switchyard": settings}, env={})
    built = build_stages(config)
    assert built.audit_store is not None
    built.audit_store.start()
    keys = SqliteKeyStore(tmp / "keys.db")
    _, key = keys.create("alice")
    api_keys = ApiKeyAuthenticator(keys)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    jwt_auth = JwtAuthenticator(JwtSettings(public_key=public_pem, issuer=ISSUER), RESOURCE)
    now = int(time.time())
    claims = {"sub": "alice", "iss": ISSUER, "aud": RESOURCE, "iat": now, "exp": now + 3600}
    bearer = jwt.encode(claims, private, algorithm="RS256")
    params = {"name": "alpha__echo", "arguments": {"text": "hello", "api_token": "sk-" + "x" * 30}}
    bare_t: list[float] = []
    paired: dict[str, list[float]] = {}
    cpu_per_call: dict[str, list[float]] = {}
    gov_t: list[float] = []
    jwt_t: list[float] = []
    async with (
        memory_gateway(upstream(), stages=()) as bare,
        memory_gateway(upstream(), settings=settings, stages=built.stages) as gov,
    ):

        async def bare_call() -> None:
            await bare.request("tools/call", params)

        async def gov_call() -> None:
            principal = await api_keys.authenticate(key)
            await gov.request("tools/call", params, principal=principal)

        async def jwt_call() -> None:
            principal = await jwt_auth.authenticate(bearer)
            await gov.request("tools/call", params, principal=principal.with_groups(frozenset({"dev"})))

        for _ in range(200):  # warm-up
            await bare_call()
            await gov_call()
            await jwt_call()
        # Blocks of calls, variants in a random order per round; before each block the audit writer drains, so
        # a bare block never pays for the governed blocks' rows, and a governed block pays for its own.
        rounds = [(bare_t, bare_call), (gov_t, gov_call), (jwt_t, jwt_call)]
        for _ in range(max(1, calls // BLOCK)):
            random.shuffle(rounds)
            for samples, call in rounds:
                await anyio.to_thread.run_sync(built.audit_store.flush)
                cpu = time.process_time()
                block = [await timed(call) for _ in range(BLOCK)]
                await anyio.to_thread.run_sync(built.audit_store.flush)  # the writer's work counts as this block's CPU
                cpu_per_call.setdefault(call.__name__, []).append((time.process_time() - cpu) / BLOCK)
                samples.extend(block)
                paired.setdefault(call.__name__, []).append(statistics.median(block))

    # The stages alone around a dispatch that returns at once.
    async def nothing(ctx: CallContext) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "hello"}]}

    chain = compose(built.stages, nothing)
    ctx = CallContext("tools/call", "alpha__echo", params, server="alpha", original="echo")
    alice = Principal("alice", "api_key")
    empty = compose((), nothing)
    stage_t: list[float] = []
    stage_jwt_t: list[float] = []
    none_t: list[float] = []

    async def staged() -> None:
        principal = await api_keys.authenticate(key)
        await chain(CallContext(ctx.method, ctx.name, params, server="alpha", principal=principal))

    async def staged_jwt() -> None:
        principal = (await jwt_auth.authenticate(bearer)).with_groups(frozenset({"dev"}))
        await chain(CallContext(ctx.method, ctx.name, params, server="alpha", principal=principal))

    async def unstaged() -> None:
        await empty(CallContext(ctx.method, ctx.name, params, server="alpha", principal=alice))

    alone = [(stage_t, staged), (stage_jwt_t, staged_jwt), (none_t, unstaged)]
    for _ in range(calls * 3):
        random.shuffle(alone)
        for samples, call in alone:
            samples.append(await timed(call))
    built.audit_store.close()
    keys.close()
    bare_s, gov_s, jwt_s = summary(bare_t), summary(gov_t), summary(jwt_t)
    stage_s, stage_jwt_s, none_s = summary(stage_t), summary(stage_jwt_t), summary(none_t)
    return {
        "calls": calls,
        "bare": bare_s,
        "governed_api_key": gov_s,
        "governed_jwt_rs256": jwt_s,
        "added_p50_ms_api_key": round(gov_s["p50_ms"] - bare_s["p50_ms"], 4),
        "added_p50_ms_jwt": round(jwt_s["p50_ms"] - bare_s["p50_ms"], 4),
        "added_block_median_ms_api_key": round(paired_added(paired, "gov_call"), 4),
        "added_block_median_ms_jwt": round(paired_added(paired, "jwt_call"), 4),
        "cpu_ms_per_call": {k: round(statistics.median(v) * 1000, 4) for k, v in cpu_per_call.items()},
        "stages_only": stage_s,
        "no_stages": none_s,
        "stages_only_added_p50_ms": round(stage_s["p50_ms"] - none_s["p50_ms"], 4),
        "stages_only_jwt": stage_jwt_s,
        "stages_only_jwt_added_p50_ms": round(stage_jwt_s["p50_ms"] - none_s["p50_ms"], 4),
        "audit_rows_written": built.audit_store.committed,
    }


def writer_throughput(rows: int, tmp: Path, synchronous: str) -> dict[str, Any]:
    """Phase 2: rows/s from first submit to last commit."""
    store = SqliteAuditStore(tmp / f"throughput-{synchronous}.db", synchronous=synchronous, queue_size=rows + 10)  # type: ignore[arg-type]
    store.start()
    redactor = Redactor(parse_config({}).switchyard.audit.redact_keys, 4096)
    alice = Principal("alice", "api_key")
    args = {"query": "weather in Oslo", "api_token": "secret", "limit": 10}
    result = {"content": [{"type": "text", "text": "sunny " * 20}]}
    events = [
        AuditEvent(
            CallContext(
                "tools/call", "alpha__echo", {"name": "alpha__echo", "arguments": args}, server="alpha", principal=alice
            ),
            result,
            decision="allowed",
            reason="",
            latency=0.001,
            when=time.time(),
            redactor=redactor,
        )
        for _ in range(rows)
    ]
    start = time.perf_counter()
    for event in events:
        store.submit(event)
    submit_s = time.perf_counter() - start
    assert store.flush(timeout=600)
    total = time.perf_counter() - start
    store.close()
    return {
        "synchronous": synchronous,
        "rows": rows,
        "committed": store.committed,
        "dropped": store.dropped,
        "seconds": round(total, 3),
        "rows_per_s": round(rows / total),
        "submit_us_per_row": round(submit_s / rows * 1e6, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("switchyard").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}",
            "overhead": anyio.run(overhead, args.calls, Path(tmp)),
            "writer": [writer_throughput(args.rows, Path(tmp), s) for s in ("normal", "full")],
        }
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    o = result["overhead"]
    print(f"machine: {result['machine']}")
    print(f"per call ({o['calls']} calls each, interleaved; in-memory upstream):")
    for label in ("bare", "governed_api_key", "governed_jwt_rs256"):
        s = o[label]
        print(f"  {label:<20} p50 {s['p50_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms  mean {s['mean_ms']:.3f} ms")
    print(f"  added p50: api key {o['added_p50_ms_api_key']:.3f} ms, jwt {o['added_p50_ms_jwt']:.3f} ms"
          f"  (target <= {TARGET_OVERHEAD_MS} ms)")  # fmt: skip
    cpu = o["cpu_ms_per_call"]
    print(f"  process CPU per call (all threads, incl. the audit writer; median of blocks): bare "
          f"{cpu['bare_call']:.3f} ms, api key {cpu['gov_call']:.3f} ms (+{cpu['gov_call'] - cpu['bare_call']:.3f}),"
          f" jwt {cpu['jwt_call']:.3f} ms (+{cpu['jwt_call'] - cpu['bare_call']:.3f})")  # fmt: skip
    print(f"  added, median over rounds of paired block medians: api key {o['added_block_median_ms_api_key']:.3f} ms,"
          f" jwt {o['added_block_median_ms_jwt']:.3f} ms")  # fmt: skip
    print(f"  stages alone (auth + policy + limits + audit around an instant dispatch): p50 "
          f"{o['stages_only']['p50_ms']:.4f} ms vs {o['no_stages']['p50_ms']:.4f} ms bare chain -> added "
          f"{o['stages_only_added_p50_ms']:.4f} ms; with a JWT instead of a key: added "
          f"{o['stages_only_jwt_added_p50_ms']:.4f} ms")  # fmt: skip
    for w in result["writer"]:
        print(f"audit writer (synchronous={w['synchronous']}): {w['rows']} rows in {w['seconds']} s = "
              f"{w['rows_per_s']} rows/s (target >= {TARGET_ROWS_PER_S}); submit {w['submit_us_per_row']} us/row; "
              f"dropped {w['dropped']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
