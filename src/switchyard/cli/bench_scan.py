"""`switchyard bench scan`: detection quality and speed of the scanner on a labelled JSONL corpus.

Owns: the `scan` sub-command of the `bench` group (precision, recall, F1, false-positive rate, a table per
category and per source, definitions or megabytes scanned per second on one core) and the metric functions it
prints. Does not own: the CLI entry point (`cli.main` mounts `register`), the rules, or corpus parsing.

    switchyard bench scan --data ../shared/data/security/tool_descriptions.jsonl
    switchyard bench scan --kind outputs --data ../shared/data/security/tool_outputs.jsonl
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from switchyard.security.engine import ScanContext, Scanner, ScanPolicy
from switchyard.security.model import ItemVerdict
from switchyard.security.sources import LabelledItem, load_corpus

__all__ = ["BenchResult", "Counts", "register", "run_bench"]


@dataclass(slots=True)
class Counts:
    """A confusion matrix with the usual rates."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, positive: bool, predicted: bool) -> None:
        """Count one row."""
        if positive and predicted:
            self.tp += 1
        elif positive:
            self.fn += 1
        elif predicted:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        """tp / (tp + fp); 1.0 when nothing was flagged."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn); 1.0 when there are no positives."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fpr(self) -> float:
        """fp / (fp + tn); 0.0 when there are no negatives."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0


@dataclass(slots=True)
class BenchResult:
    """Everything a bench run measured."""

    overall: Counts
    by_category: dict[str, Counts]
    by_source: dict[str, Counts]
    verdicts: list[tuple[LabelledItem, ItemVerdict]]
    seconds: float
    items: int
    chars: int

    @property
    def per_second(self) -> float:
        """Items scanned per second."""
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        """Megabytes (UTF-8) of text scanned per second."""
        return self.chars / 1e6 / self.seconds if self.seconds else 0.0


def run_bench(
    corpus: Sequence[LabelledItem], scanner: Scanner, repeat: int = 3, shared_context: bool = False
) -> BenchResult:
    """Scan every row (alone, or with all rows as one context), count outcomes, and time the best of `repeat`
    runs in CPU seconds of this process (one core)."""
    items = [li.item for li in corpus]
    context = ScanContext(items) if shared_context else None
    best = float("inf")
    verdicts: list[ItemVerdict] = []
    for _ in range(max(1, repeat)):
        # CPU time of this (single-threaded) process: the rate per core, robust to a busy shared machine.
        start = time.process_time()
        verdicts = [scanner.scan_item(item, context) for item in items]
        best = min(best, time.process_time() - start)
    overall = Counts()
    by_category: dict[str, Counts] = defaultdict(Counts)
    by_source: dict[str, Counts] = defaultdict(Counts)
    for li, verdict in zip(corpus, verdicts, strict=True):
        overall.add(li.positive, verdict.malicious)
        by_category[li.category or "-"].add(li.positive, verdict.malicious)
        by_source[li.source or "-"].add(li.positive, verdict.malicious)
    chars = sum(len("".join(it.fields.values()).encode()) for it in items)
    return BenchResult(
        overall, dict(by_category), dict(by_source), list(zip(corpus, verdicts, strict=True)), best, len(items), chars
    )


def _table(title: str, rows: dict[str, Counts]) -> list[str]:
    lines = [f"| {title} | n | positives | flagged | recall | FPR |", "|---|---:|---:|---:|---:|---:|"]
    for name in sorted(rows):
        c = rows[name]
        pos = c.tp + c.fn
        neg = c.fp + c.tn
        recall = f"{c.recall:.3f}" if pos else ""
        fpr = f"{c.fpr:.3f}" if neg else ""
        lines.append(f"| {name} | {pos + neg} | {pos} | {c.tp + c.fp} | {recall} | {fpr} |")
    return lines


def format_result(result: BenchResult, kind: str, data: str) -> str:
    """The Markdown report printed by the command (and pasted into docs/benchmarks.md)."""
    c = result.overall
    speed = (
        f"{result.per_second:,.0f} definitions/s"
        if kind == "descriptions"
        else f"{result.mb_per_second:.1f} MB/s ({result.per_second:,.0f} results/s)"
    )
    lines = [
        f"data: {data} ({result.items} rows, {kind}); machine: {platform.machine()}, Python "
        f"{platform.python_version()}, one thread, speed in CPU time (best of runs)",
        "",
        "| precision | recall | F1 | FPR | TP | FP | TN | FN | speed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {c.fpr:.3f} | {c.tp} | {c.fp} | {c.tn} | {c.fn} "
        f"| {speed} |",
        "",
        *_table("category", result.by_category),
        "",
        *_table("source", result.by_source),
    ]
    return "\n".join(lines)


def latency_10kb(corpus: Sequence[LabelledItem], scanner: Scanner, samples: int = 200) -> tuple[float, float]:
    """p50 and p90 CPU milliseconds to scan a 10 KB benign result (benign rows concatenated, cut at 10,240)."""
    texts = [li.item.fields.get("text", "") for li in corpus if not li.positive]
    texts = [t for t in texts if t]
    if not texts:
        return 0.0, 0.0
    times: list[float] = []
    i = 0
    for _ in range(samples):
        doc = ""
        while len(doc) < 10_240:
            doc += texts[i % len(texts)] + "\n"
            i += 1
        doc = doc[:10_240]
        start = time.process_time()
        scanner.scan_text(doc)
        times.append((time.process_time() - start) * 1000)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.9)]


def scan_benign_files(patterns: Sequence[str], scanner: Scanner, chunk: int = 4000) -> tuple[int, list[str]]:
    """Scan text files (globs) in `chunk`-character pieces as tool results; all are taken as benign.

    Returns the number of pieces and a line per piece judged an injection (a false positive).
    """
    import glob  # noqa: PLC0415 - only this option needs it

    pieces = 0
    flagged: list[str] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            try:
                with open(path, encoding="utf-8", errors="ignore") as fh:
                    text = fh.read()
            except OSError:
                continue
            for start in range(0, len(text), chunk):
                pieces += 1
                verdict = scanner.scan_text(text[start : start + chunk])
                if verdict.malicious:
                    rules = ",".join(sorted({f.rule_id for f in verdict.findings}))
                    flagged.append(f"{path}@{start} score {verdict.score:.2f} {rules}")
    return pieces, flagged


def _errors(result: BenchResult, limit: int) -> str:
    lines: list[str] = []
    for li, verdict in result.verdicts:
        if li.positive != verdict.malicious and len(lines) < limit:
            what = "FN" if li.positive else "FP"
            rules = ",".join(sorted({f.rule_id for f in verdict.findings})) or "-"
            text = (li.item.fields.get("description") or li.item.fields.get("text") or "")[:100]
            lines.append(f"{what} {verdict.score:.2f} [{li.category}] {li.item.name} {rules} :: {text!r}")
    return "\n".join(lines)


def _main(args: argparse.Namespace) -> int:
    if not args.data and not args.benign_files:
        raise SystemExit("switchyard bench scan: give --data or --benign-files")
    if args.benign_files:
        pieces, flagged = scan_benign_files(args.benign_files, Scanner(policy=ScanPolicy(threshold=args.threshold)))
        print(f"benign text files as tool results: {pieces} pieces of 4,000 characters, {len(flagged)} flagged")
        print("\n".join(flagged))
        return 0
    corpus = load_corpus(args.data)
    wanted = "tool_output" if args.kind == "outputs" else None
    corpus = [li for li in corpus if (li.item.kind == "tool_output") == (wanted is not None)]
    scanner = Scanner(policy=ScanPolicy(threshold=args.threshold))
    result = run_bench(corpus, scanner, repeat=args.repeat, shared_context=args.shared_context)
    if args.json:
        c = result.overall
        print(
            json.dumps(
                {
                    "precision": c.precision,
                    "recall": c.recall,
                    "f1": c.f1,
                    "fpr": c.fpr,
                    "tp": c.tp,
                    "fp": c.fp,
                    "tn": c.tn,
                    "fn": c.fn,
                    "per_second": result.per_second,
                    "mb_per_second": result.mb_per_second,
                    "by_category": {
                        k: {"recall": v.recall, "fpr": v.fpr, "n": v.tp + v.fp + v.tn + v.fn}
                        for k, v in result.by_category.items()
                    },
                },
                indent=2,
            )
        )
    else:
        print(format_result(result, args.kind, args.data))
        if args.kind == "outputs":
            p50, p90 = latency_10kb(corpus, scanner)
            print(f"\n10 KB benign result: p50 {p50:.2f} ms, p90 {p90:.2f} ms (CPU)")
        if args.errors:
            print()
            print(_errors(result, args.errors))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `scan` sub-command to a `bench` sub-parser group."""
    parser = subparsers.add_parser(
        "scan", help="precision/recall/FPR and speed of the threat scanner on a JSONL corpus"
    )
    parser.add_argument("--data", help="labelled JSONL corpus (tool_descriptions.jsonl or tool_outputs.jsonl)")
    parser.add_argument(
        "--benign-files",
        nargs="+",
        metavar="GLOB",
        help="instead of --data: scan these text files (recursive globs) as benign tool results",
    )
    parser.add_argument(
        "--kind",
        choices=("descriptions", "outputs"),
        default="descriptions",
        help="descriptions: definitions labelled malicious/benign; outputs: results labelled injection/benign",
    )
    parser.add_argument("--threshold", type=float, default=ScanPolicy().threshold, help="score for a malicious verdict")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs (best is reported)")
    parser.add_argument(
        "--shared-context",
        action="store_true",
        help="scan all rows as one multi-server catalogue (enables cross-server rules between rows)",
    )
    parser.add_argument("--errors", type=int, default=0, metavar="N", help="also list the first N misclassified rows")
    parser.add_argument("--json", action="store_true", help="print metrics as JSON")
    parser.set_defaults(func=_main)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench without the main CLI: `python -m switchyard.cli.bench_scan --data ...`."""
    parser = argparse.ArgumentParser(prog="switchyard bench")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["scan", *(argv if argv is not None else __import__("sys").argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
