"""Instructions per output-guard call, counted by valgrind: a speed comparison the VM's drift cannot blur.

    python bench/guard_instructions.py [--base HEAD] [--data-dir ../shared/data/security] [--calls 20]

Wall and CPU times on this shared VM move by 2x within minutes, so a 10% change in the guard cannot be seen in
them. `valgrind --tool=callgrind` counts the instructions a process executes, which depends only on the code
and its input. For each side (the working tree, and `--base`, a git revision extracted with `git archive`),
each workload runs in its own process under callgrind, with `PYTHONHASHSEED=0` (string hashing changes dict
and set layouts, and so the count, from run to run):

- `setup`: imports, the guard built, the data read, one warm-up call (every count below subtracts it);
- `ping`: `--calls` x 10 calls of `OutputGuard.apply` on the 4-byte result the overhead benchmark's `echo`
  returns through the gateway (text block, structured copy, `_meta`);
- `10kb`: `--calls` calls on the 10,240-character benign result of `bench/guards.py`.

Printed: thousands of instructions per call for each side and workload, and the change. Each run takes
30-90 s (callgrind runs Python about 50x slower). Not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from revision import revision_src

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "security"
WORKLOADS = ("ping", "10kb")
_PING = {
    "content": [{"type": "text", "text": "ping"}],
    "isError": False,
    "structuredContent": {"result": "ping"},
    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "fast", "version": "1.0.0"}},
}


def _child(workload: str, data_dir: Path, calls: int) -> None:
    """Run one workload in this process (the one valgrind counts)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from guards import load, ten_kb  # noqa: PLC0415 - bench/guards.py, beside this file
    from switchyard.config import GuardSettings  # noqa: PLC0415 - from whichever src is on the path
    from switchyard.stages.guards import OutputGuard  # noqa: PLC0415

    guard = OutputGuard(GuardSettings())
    big = {"content": [{"type": "text", "text": ten_kb(load(data_dir / "tool_outputs.jsonl"))}]}
    guard.apply(_PING, "tools/call", "fast", "echo")
    guard.apply(big, "tools/call", "fast", "echo")
    if workload == "ping":
        for _ in range(calls * 10):
            guard.apply(_PING, "tools/call", "fast", "echo")
    elif workload == "10kb":
        for _ in range(calls):
            guard.apply(big, "tools/call", "fast", "echo")


def _count(src: Path, workload: str, data_dir: Path, calls: int) -> int:
    """Instructions callgrind counted for one workload run with `src` first on the path."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "_child",
            workload,
            str(data_dir),
            str(calls),
        ],
        env={"PYTHONPATH": str(src), "PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_call(src: Path, data_dir: Path, calls: int) -> dict[str, float]:
    """Thousands of instructions per call for each workload (setup subtracted)."""
    # Byte-compiled first: otherwise the first run alone would pay for compiling a fresh checkout.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)
    setup = _count(src, "setup", data_dir, calls)
    out: dict[str, float] = {}
    for workload in WORKLOADS:
        n = calls * 10 if workload == "ping" else calls
        out[workload] = (_count(src, workload, data_dir, calls) - setup) / n / 1000.0
    return out


def main(argv: list[str] | None = None) -> int:
    """Count both sides and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--base", default="HEAD", help="git revision to compare with (default HEAD)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--calls", type=int, default=20, help="10 KB calls per run (ping: 10x as many)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with revision_src(args.base) as src:
        base = per_call(src, args.data_dir, args.calls)
    tree = per_call(ROOT / "src", args.data_dir, args.calls)
    print("| workload | " + args.base + " (k instr./call) | working tree | change |\n|---|---:|---:|---:|")
    for workload in WORKLOADS:
        change = (tree[workload] - base[workload]) / base[workload] * 100.0
        print(f"| {workload} | {base[workload]:,.0f} | {tree[workload]:,.0f} | {change:+.1f}% |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))  # "setup" runs only the common part
        raise SystemExit(0)
    raise SystemExit(main())
