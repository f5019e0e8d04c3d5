"""The `switchyard` command line, run as a real process: help everywhere, configuration errors, check, tools, call.

Configuration errors: every error path of `check` and `serve` exits 2 and names the JSON path of each problem,
all at once, and never prints a secret (values of `env` and `headers`, including ones interpolated from the
environment). The commands that start servers use the fixture servers of tests/fixtures/servers/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from switchyard.cli.main import build_parser, main

TIMEOUT = 60.0
SECRETS = ("sk-live-ENV-SECRET-1", "Bearer HEADER-SECRET-2", "INTERPOLATED-SECRET-3", "LIST-SECRET-4")


def switchyard(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `switchyard ARGS` (the console script when installed) and capture its output."""
    script = shutil.which("switchyard", path=str(Path(sys.executable).parent))
    argv = [script] if script else [sys.executable, "-m", "switchyard.cli.main"]
    return subprocess.run(
        [*argv, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def write(path: Path, document: Any) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def fixture_entry(peers: Any, name: str) -> dict[str, Any]:
    return peers.server_entry(peers.fixture_server(name))


# --- --help everywhere -------------------------------------------------------------------------------------


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for action in parser._actions:  # argparse exposes its tree no other way
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*prefix, name))


COMMANDS = sorted(set(_command_paths(build_parser())))


def test_the_command_tree_has_the_core_commands() -> None:
    assert {("serve",), ("check",), ("tools",), ("call",)} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "switchyard")
def test_every_command_has_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: switchyard")
    assert " ".join(("switchyard", *command)) in out.splitlines()[0]


def test_the_installed_command_runs_and_without_a_command_prints_usage() -> None:
    helped = switchyard("--help")
    assert helped.returncode == 0
    assert "check" in helped.stdout
    assert "serve" in helped.stdout
    bare = switchyard()
    assert bare.returncode == 2
    assert "usage: switchyard" in bare.stderr


# --- malformed configuration files -------------------------------------------------------------------------


def bad_documents(tmp_path: Path) -> dict[str, tuple[Any, list[str]]]:
    """Configuration documents, each with the JSON paths (or phrases) its error report must contain."""
    everything_wrong = {
        "mcpServers": {
            "noentry": {"args": ["x"]},  # neither command nor url
            "badargs": {"command": "x", "args": "not-a-list", "env": {"API_KEY": SECRETS[0]}},
            "badtimeout": {"command": "x", "timeout": -1, "colour": "blue"},
            "badenv": {"command": "x", "env": {"TOKENS": [SECRETS[3]]}},
            "unset": {"command": "x", "env": {"TOKEN": "${SWITCHYARD_TEST_UNSET_VAR}"}},
            "interpolated": {"command": "x", "args": 5, "env": {"TOKEN": "${SWITCHYARD_TEST_SECRET}"}},
            "badurl": {"url": "ftp://example.invalid/mcp", "headers": {"Authorization": SECRETS[1]}},
            "sse": {"type": "sse", "url": "http://127.0.0.1:9/sse"},
            "notobject": "npx something",
        },
        "switchyard": {
            "timeouts": {"call": 0},
            "exposure": "everything",
            "colour": "blue",
            "restart": {"initial": "soon"},
        },
        "extra": True,
    }
    return {
        "missing-file": (tmp_path / "does-not-exist.json", ["$: cannot read file"]),
        "not-json": (write(tmp_path / "not-json.json", '{"mcpServers": {'), ["$: not valid JSON", "line 1"]),
        "not-an-object": (write(tmp_path / "array.json", "[1, 2]"), ["$: the configuration must be a JSON object"]),
        "servers-not-an-object": (
            write(tmp_path / "servers-list.json", {"mcpServers": ["a", "b"]}),
            ["$.mcpServers: must be an object"],
        ),
        "both-server-keys": (
            write(tmp_path / "both.json", {"mcpServers": {}, "servers": {}}),
            ["$.servers: use either mcpServers or servers"],
        ),
        "everything-wrong": (
            write(tmp_path / "everything-wrong.json", everything_wrong),
            [
                "$.extra: unknown key",
                "$.mcpServers.noentry: must be an object with either 'command'",
                "$.mcpServers.notobject: must be an object with either 'command'",
                "$.mcpServers.badargs.args",
                "$.mcpServers.badtimeout.timeout",
                "$.mcpServers.badtimeout.colour: unknown key",
                "$.mcpServers.badenv.env.TOKENS: must be an object mapping names to strings",
                "$.mcpServers.unset.env.TOKEN: environment variable SWITCHYARD_TEST_UNSET_VAR is not set",
                "$.mcpServers.interpolated.args",
                "$.mcpServers.badurl.url",
                "$.mcpServers.sse.type",
                "$.switchyard.timeouts.call",
                "$.switchyard.exposure",
                "$.switchyard.colour: unknown key",
                "$.switchyard.restart.initial",
                "15 configuration problem(s)",
            ],
        ),
    }


BAD_CASES = [
    "missing-file",
    "not-json",
    "not-an-object",
    "servers-not-an-object",
    "both-server-keys",
    "everything-wrong",
]


def assert_reports(stderr: str, expected: list[str]) -> None:
    report = " ".join(stderr.split())  # rich wraps long lines
    for needle in expected:
        assert needle in report, f"{needle!r} not in:\n{stderr}"


def assert_no_secret(*outputs: str) -> None:
    for secret in SECRETS:
        for output in outputs:
            assert secret.split()[-1] not in output


@pytest.mark.parametrize("command", ["check", "serve", "tools", "call"])
@pytest.mark.parametrize("case", BAD_CASES)
def test_a_malformed_configuration_exits_2_naming_every_problem_and_no_secret(
    tmp_path: Path, case: str, command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In process (the configuration is read before anything starts); the test below runs real processes.
    path, expected = bad_documents(tmp_path)[case]
    monkeypatch.setenv("SWITCHYARD_TEST_SECRET", SECRETS[2])
    monkeypatch.setenv("COLUMNS", "200")
    extra = ["fast__echo", "{}"] if command == "call" else []
    assert main([command, "-c", str(path), *extra]) == 2
    out, err = capsys.readouterr()
    assert_reports(err, expected)
    assert_no_secret(out, err)
    assert out == ""  # nothing on stdout: for serve, stdout is the protocol channel


@pytest.mark.parametrize("command", ["check", "serve"])
def test_a_malformed_configuration_stops_the_real_process_with_exit_2(tmp_path: Path, command: str) -> None:
    path, expected = bad_documents(tmp_path)["everything-wrong"]
    done = switchyard(command, "-c", str(path), env={"SWITCHYARD_TEST_SECRET": SECRETS[2]})
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert_reports(done.stderr, expected)
    assert_no_secret(done.stdout, done.stderr)
    assert done.stdout == ""


# --- check, tools, call ------------------------------------------------------------------------------------


def live_and_dead_config(peers: Any, tmp_path: Path) -> Path:
    quitter = write(tmp_path / "quitter.py", "import sys\nsys.stderr.write('quitter: no API key\\n')\nsys.exit(3)\n")
    return write(
        tmp_path / "servers.json",
        {
            "mcpServers": {
                "fast": fixture_entry(peers, "fast"),
                "nocommand": {"command": str(tmp_path / "no-such-server"), "env": {"API_KEY": SECRETS[0]}},
                "quitter": {"command": sys.executable, "args": [str(quitter)]},
                "badcwd": {"command": sys.executable, "cwd": str(tmp_path / "no-such-dir")},
                "notexec": {"command": str(quitter)},  # a file, but not executable
                "off": {"command": "never-started", "enabled": False},
            },
            "switchyard": {"timeouts": {"connect": 10}},
        },
    )


def test_check_shows_a_dead_server_down_with_its_error_and_exits_1(peers: Any, tmp_path: Path) -> None:
    cfg = live_and_dead_config(peers, tmp_path)
    done = switchyard("check", "--json", "-c", str(cfg))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    servers = {s["server"]: s for s in report["servers"]}
    assert set(servers) == {"fast", "nocommand", "quitter", "badcwd", "notexec"}  # disabled ones are not started
    assert servers["fast"]["status"] == "up"
    assert servers["fast"]["tools"] == 2
    assert servers["fast"]["error"] is None
    assert servers["nocommand"]["status"] == "down"
    assert "cannot start" in servers["nocommand"]["error"]
    assert servers["quitter"]["status"] == "down"
    assert "quitter: no API key" in servers["quitter"]["error"]
    assert "no-such-dir" in servers["badcwd"]["error"]
    assert "Permission denied" in servers["notexec"]["error"]
    assert {servers[name]["status"] for name in ("badcwd", "notexec")} == {"down"}
    assert SECRETS[0] not in done.stdout + done.stderr


def test_check_prints_a_table_of_every_server(peers: Any, tmp_path: Path) -> None:
    cfg = live_and_dead_config(peers, tmp_path)
    done = switchyard("check", "-c", str(cfg))
    assert done.returncode == 1, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") > 3}
    assert "up" in rows["fast"]
    assert "down" in rows["nocommand"]
    assert "cannot start" in rows["nocommand"]
    assert "down" in rows["quitter"]
    assert "disabled: off" in done.stdout
    assert SECRETS[0] not in done.stdout + done.stderr


def test_check_exits_0_when_every_server_is_up(peers: Any, tmp_path: Path) -> None:
    cfg = write(tmp_path / "ok.json", {"mcpServers": {"fast": fixture_entry(peers, "fast")}})
    done = switchyard("check", "--json", "-c", str(cfg))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["servers"][0]["era"] == "2026-07-28"


def test_tools_json_lists_the_federated_catalog(peers: Any, tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "servers.json",
        {"mcpServers": {"fast": fixture_entry(peers, "fast"), "other": fixture_entry(peers, "crash")}},
    )
    done = switchyard("tools", "--json", "-c", str(cfg))
    assert done.returncode == 0, done.stderr
    tools = {t["name"]: t for t in json.loads(done.stdout)["tools"]}
    assert set(tools) == {"fast__echo", "fast__add", "other__crash_now", "other__ok", "other__pid"}
    assert tools["fast__add"]["server"] == "fast"
    assert tools["fast__add"]["upstreamName"] == "add"
    assert tools["fast__add"]["inputSchema"]["properties"].keys() == {"a", "b"}


def test_call_prints_the_result_as_json(peers: Any, tmp_path: Path) -> None:
    cfg = write(tmp_path / "servers.json", {"mcpServers": {"fast": fixture_entry(peers, "fast")}})
    done = switchyard("call", "-c", str(cfg), "fast__add", '{"a": 2, "b": 3}')
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["content"][0]["text"] == "5"
    assert not result.get("isError")


def test_call_exits_1_when_the_tool_reports_an_error(peers: Any, tmp_path: Path) -> None:
    cfg = write(tmp_path / "servers.json", {"mcpServers": {"fast": fixture_entry(peers, "fast")}})
    done = switchyard("call", "-c", str(cfg), "fast__add", '{"a": "two"}')
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["isError"] is True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"a": 2,', "arguments are not valid JSON"),
        ("[1, 2]", "arguments must be a JSON object"),
        ("'a': 1", "arguments are not valid JSON"),
    ],
)
def test_call_rejects_arguments_that_are_not_a_json_object(
    tmp_path: Path, arguments: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path / "servers.json", {"mcpServers": {}})
    assert main(["call", "-c", str(cfg), "fast__add", arguments]) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert out == ""


def test_call_of_an_unknown_tool_exits_2_without_a_traceback(peers: Any, tmp_path: Path) -> None:
    cfg = write(tmp_path / "servers.json", {"mcpServers": {"fast": fixture_entry(peers, "fast")}})
    done = switchyard("call", "-c", str(cfg), "fast__nope", "{}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "fast__nope" in done.stderr


def test_search_ranks_tools_across_servers_and_takes_k_from_the_config(peers: Any, tmp_path: Path) -> None:
    servers = {"fast": fixture_entry(peers, "fast"), "other": fixture_entry(peers, "crash")}
    settings = {"retrieval": {"retriever": "bm25", "default_k": 1}, "store": {"path": str(tmp_path / "s.db")}}
    cfg = write(tmp_path / "servers.json", {"mcpServers": servers, "switchyard": settings})
    done = switchyard("search", "--json", "-c", str(cfg), "add two numbers")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["query"] == "add two numbers"
    assert [(t["rank"], t["name"], t["server"]) for t in found["tools"]] == [(1, "fast__add", "fast")]
    wider = switchyard("search", "--json", "-k", "3", "-c", str(cfg), "add two numbers")
    assert wider.returncode == 0, wider.stderr
    names = [t["name"] for t in json.loads(wider.stdout)["tools"]]
    assert names[0] == "fast__add"
    assert 1 < len(names) <= 3


def test_search_exits_1_when_nothing_matches_and_2_on_a_bad_k(peers: Any, tmp_path: Path) -> None:
    settings = {"retrieval": {"retriever": "bm25"}, "store": {"path": str(tmp_path / "s.db")}}
    servers = {"fast": fixture_entry(peers, "fast")}
    cfg = write(tmp_path / "servers.json", {"mcpServers": servers, "switchyard": settings})
    none = switchyard("search", "--json", "-c", str(cfg), "xylophone quasar")
    assert none.returncode == 1, none.stderr
    assert json.loads(none.stdout)["tools"] == []
    for bad in ("0", "51", "two"):
        refused = switchyard("search", "-k", bad, "-c", str(cfg), "add")
        assert refused.returncode == 2, refused.stderr
        assert "-k" in refused.stderr
