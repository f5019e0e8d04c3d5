"""Same findings, before and after: a speed change to the scanner's rules must not change what they find.

    python bench/guard_equivalence.py [--base HEAD] [--data-dir ../shared/data/security]

Scans, with the default rules and policy, (a) every row of `tool_descriptions.jsonl` (as the corpus loader
builds the items), (b) every row of `tool_outputs.jsonl` as a tool result, and (c) long results made by
joining runs of consecutive output rows (2, 5 and 20 rows: texts of 4-40 KB, where the rules' windowed
scans, not their short-text paths, do the work). Each scan is reduced to its verdict (score, malicious) and
every finding (rule, field, span, severity, score, message, tags). The same is done with the code of
`--base` (a git revision, extracted with `git archive` into a temporary directory and run in a subprocess
with that `src` first on `PYTHONPATH`), and the two lists are compared. Prints the first differences and
exits 1 if there are any; also prints the CPU time each side spent scanning.

Not a test: it reads the benchmark data, which CI does not depend on. Run it before committing a change that
is meant to keep detection unchanged.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from revision import revision_src

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "security"


def _texts(data_dir: Path) -> list[str]:
    rows = [json.loads(line) for line in (data_dir / "tool_outputs.jsonl").read_text("utf-8").splitlines() if line]
    texts = [str(r["text"]) for r in rows]
    joined: list[str] = []
    for size in (2, 5, 20):
        joined.extend("\n\n".join(texts[i : i + size]) for i in range(0, len(texts), size))
    return texts + joined


def scan_all(data_dir: Path) -> tuple[list[Any], float]:
    """Every scan's summary, and the CPU seconds the scans took (imports excluded)."""
    from switchyard.security import Scanner  # noqa: PLC0415 - imported from whichever src is on the path
    from switchyard.security.sources import load_corpus  # noqa: PLC0415

    scanner = Scanner()
    items = [li.item for li in load_corpus(data_dir / "tool_descriptions.jsonl")]
    texts = _texts(data_dir)
    out: list[Any] = []
    start = time.process_time()
    verdicts = [scanner.scan_item(item) for item in items] + [scanner.scan_text(t) for t in texts]
    spent = time.process_time() - start
    for v in verdicts:
        out.append(
            [
                round(v.score, 9),
                v.malicious,
                [
                    [
                        *(f.rule_id, f.field, f.evidence.start, f.evidence.end),
                        *(str(f.severity), round(f.score, 9), f.message, list(f.tags)),
                    ]
                    for f in v.findings
                ],
            ]
        )
    return out, spent


def _base_run(base: str, data_dir: Path) -> tuple[list[Any], float]:
    with revision_src(base) as src:
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); "
            "from guard_equivalence import scan_all; from pathlib import Path; "
            "print(json.dumps(scan_all(Path(sys.argv[2]))))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(Path(__file__).parent), str(data_dir)],
            env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        found, spent = json.loads(done.stdout)
        return found, spent


def main(argv: list[str] | None = None) -> int:
    """Compare findings of `--base` and of the working tree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--base", default="HEAD", help="git revision to compare with (default HEAD)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--show", type=int, default=5, help="differences to print")
    args = parser.parse_args(argv)
    old, old_cpu = _base_run(args.base, args.data_dir)
    sys.path.insert(0, str(ROOT / "src"))
    new, new_cpu = scan_all(args.data_dir)
    differ = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if json.dumps(a) != json.dumps(b)]
    print(f"{len(new)} scans; CPU {args.base}: {old_cpu:.2f} s, working tree: {new_cpu:.2f} s")
    for i in differ[: args.show]:
        print(f"scan {i} differs:\n  {args.base}: {json.dumps(old[i])[:600]}\n  tree: {json.dumps(new[i])[:600]}")
    print("identical" if not differ else f"{len(differ)} scans differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
