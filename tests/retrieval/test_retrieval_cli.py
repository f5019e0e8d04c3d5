"""`switchyard bench retrieval` end to end on two tiny data sets written by the test."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from retrieval_fakes import small_catalog

from switchyard.cli.bench_retrieval import register


def _write_set(folder: Path, queries: list[dict[str, object]]) -> None:
    folder.mkdir(parents=True)
    tools = [
        {
            "id": d.key,
            "server": d.server,
            "name": d.name,
            "description": d.description,
            "input_schema": dict(d.input_schema),
        }
        for d in small_catalog()
    ]
    (folder / "tools.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tools), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard bench")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_bench_retrieval_scores_every_set_and_retriever_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _write_set(
        tmp_path / "data" / "single",
        [
            {"id": "q1", "query": "send an email to Ann", "gold": ["mail/send_email"]},
            {"id": "q2", "query": "weather forecast in Oslo", "gold": ["weather/get_forecast"]},
        ],
    )
    _write_set(
        tmp_path / "data" / "merged",
        [
            {"id": "a:1", "query": "draw a bar chart", "gold": ["charts/generate_bar_chart"]},
            {
                "id": "b:1",
                "query": "read a file then email it",
                "gold": ["files/read_file", "mail/send_email"],
                "gold_groups": [["files/read_file", "files/write-file"], ["mail/send_email"]],
            },
        ],
    )
    args = _parser().parse_args(
        [
            "retrieval",
            "--data",
            str(tmp_path / "data"),
            "--retriever",
            "all",
            "--json",
            "--cache",
            str(tmp_path / "vectors.sqlite"),
        ]
    )
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    results = report["results"]
    assert [(r["name"], r["retriever"]) for r in results] == [
        (s, r) for s in ("merged", "single") for r in ("bm25", "dense", "hybrid")
    ]
    for r in results:
        assert set(r["metrics"]) == {"R@1", "R@5", "R@10", "nDCG@10", "Compl@10", "srvR@5"}
        assert r["metrics"]["R@5"] == 1.0
        assert r["p95_ms"] >= r["p50_ms"] > 0
    assert set(results[0]["by_source"]) == {"a", "b"}
    assert set(report["tool_list_tokens"]) == {"merged", "single"}


def test_bench_retrieval_prints_tables_and_rejects_missing_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_set(tmp_path / "one", [{"id": "q1", "query": "send an email", "gold": ["mail/send_email"]}])
    parser = _parser()
    args = parser.parse_args(["retrieval", "--data", str(tmp_path / "one"), "--retriever", "bm25"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "Tool retrieval" in out
    assert "bm25" in out
    assert "1.000" in out
    missing = parser.parse_args(["retrieval", "--data", str(tmp_path / "nope")])
    assert missing.func(missing) == 2


def test_bench_retrieval_refuses_a_set_without_queries_and_a_cache_it_cannot_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from switchyard.cli.main import main  # noqa: PLC0415 - the whole command line, for its exit codes

    _write_set(tmp_path / "empty", [])
    (tmp_path / "lonely").mkdir()
    (tmp_path / "lonely" / "tools.jsonl").write_text((tmp_path / "empty" / "tools.jsonl").read_text(), "utf-8")
    assert main(["bench", "retrieval", "--data", str(tmp_path / "empty"), "--retriever", "bm25"]) == 2
    assert "no queries in" in capsys.readouterr().err
    assert main(["bench", "retrieval", "--data", str(tmp_path / "lonely"), "--retriever", "bm25"]) == 2
    assert "no tools.jsonl + queries.jsonl" in capsys.readouterr().err
    _write_set(tmp_path / "one", [{"id": "q1", "query": "send an email", "gold": ["mail/send_email"]}])
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    cache = str(blocked / "vectors.db")  # its parent is a file: the folder cannot be made
    assert main(["bench", "retrieval", "--data", str(tmp_path / "one"), "--retriever", "bm25", "--cache", cache]) == 1
    err = capsys.readouterr().err
    assert "cannot open vector cache" in err
    assert "Traceback" not in err


def test_search_reports_a_gateway_error_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys  # noqa: PLC0415

    from switchyard.cli.main import main  # noqa: PLC0415
    from switchyard.errors import InvalidRequest  # noqa: PLC0415
    from switchyard.exposure import ToolFinder  # noqa: PLC0415

    async def refuse(self: object, query: str, k: int, server: str | None = None, only: object = None) -> list[str]:
        raise InvalidRequest("the index refused the query")

    monkeypatch.setattr(ToolFinder, "search", refuse)
    fast = Path(__file__).resolve().parents[1] / "fixtures" / "servers" / "fast.py"
    config = tmp_path / "servers.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {"fast": {"command": sys.executable, "args": [str(fast)]}},
                "switchyard": {"store": {"path": str(tmp_path / "s.db")}, "retrieval": {"retriever": "bm25"}},
            }
        ),
        encoding="utf-8",
    )
    assert main(["search", "-c", str(config), "echo text", "--json"]) == 2
    err = capsys.readouterr().err
    assert "the index refused the query" in err
    assert "Traceback" not in err
