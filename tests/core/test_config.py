"""Configuration: Claude-style files load unchanged, every problem is reported at once, secrets never leak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchyard.config import (
    HttpServerConfig,
    MrtrSettings,
    StdioServerConfig,
    interpolate,
    load_config,
    mask_secrets,
    parse_config,
)
from switchyard.errors import ConfigError


def test_a_claude_desktop_config_loads_unchanged() -> None:
    doc = {
        "mcpServers": {
            "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
            "remote": {"url": "https://example.test/mcp", "headers": {"Authorization": "Bearer x"}},
            "vscode": {"type": "http", "url": "http://127.0.0.1:9/mcp"},
            "cursor": {"transport": "streamable-http", "url": "http://127.0.0.1:9/mcp"},
        }
    }
    config = parse_config(doc, env={})
    assert isinstance(config.servers["time"], StdioServerConfig)
    assert config.servers["time"].args == ("mcp-server-time",)
    assert isinstance(config.servers["remote"], HttpServerConfig)
    assert isinstance(config.servers["cursor"], HttpServerConfig)
    assert config.servers["cursor"].type == "streamable-http"
    assert config.switchyard.naming.separator == "__"


def test_vscode_servers_key_is_accepted() -> None:
    config = parse_config({"servers": {"a": {"type": "stdio", "command": "x"}}}, env={})
    assert list(config.servers) == ["a"]


def test_every_problem_is_reported_at_once_with_its_json_path() -> None:
    doc = {
        "mcpServers": {
            "a": {"command": "", "timeout": -1},
            "b": {"args": ["x"]},
            "c": {"url": "ftp://nope"},
            "d": {"command": "x", "comand": "typo"},
        },
        "switchyard": {"exposure": "everything", "naming": {"separator": "::"}},
        "extra": 1,
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, env={})
    paths = {p.path for p in info.value.problems}
    assert "$.mcpServers.a.command" in paths
    assert "$.mcpServers.a.timeout" in paths
    assert "$.mcpServers.b" in paths
    assert "$.mcpServers.c.url" in paths
    assert "$.mcpServers.d.comand" in paths
    assert "$.switchyard.exposure" in paths
    assert "$.switchyard.naming.separator" in paths
    assert "$.extra" in paths
    text = str(info.value)
    assert "'all'" in text
    assert "'search'" in text


def test_secrets_in_env_and_headers_never_appear_in_errors_or_repr() -> None:
    secret = "sk-live-SECRET-123456"
    doc = {
        "mcpServers": {
            "a": {"command": "x", "env": {"API_KEY": secret, "BAD": 5}},
            "b": {"url": "http://h/mcp", "headers": {"Authorization": f"Bearer {secret}", "X": ["list"]}},
        }
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, env={})
    assert secret not in str(info.value)
    assert "$.mcpServers.a.env.BAD" in {p.path for p in info.value.problems}
    ok = parse_config({"mcpServers": {"a": {"command": "x", "env": {"API_KEY": secret}}}}, env={})
    assert secret not in repr(ok.servers["a"])
    assert secret not in repr(ok)


def test_environment_variables_are_interpolated_with_defaults() -> None:
    doc = {"mcpServers": {"a": {"command": "${BIN}", "args": ["${MISSING:-fallback}", "$${LITERAL}"]}}}
    config = parse_config(doc, env={"BIN": "/usr/bin/tool"})
    server = config.servers["a"]
    assert isinstance(server, StdioServerConfig)
    assert server.command == "/usr/bin/tool"
    assert server.args == ("fallback", "${LITERAL}")


def test_an_unset_variable_without_default_is_a_problem_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"mcpServers": {"a": {"command": "x", "env": {"K": "${TOKEN}"}}}}, env={})
    assert "TOKEN" in str(info.value)
    assert info.value.problems[0].path == "$.mcpServers.a.env.K"


def test_a_variable_set_to_empty_is_used_and_only_a_default_replaces_it() -> None:
    # As the shell expands them: ${VAR} is "" when VAR is set but empty; ${VAR:-x} is x for an empty VAR too.
    assert interpolate("[${EMPTY}]", {"EMPTY": ""}) == ("[]", [])
    assert interpolate("[${EMPTY:-x}]", {"EMPTY": ""}) == ("[x]", [])
    _, problems = interpolate("[${UNSET}]", {})
    assert [p.message for p in problems] == ["environment variable UNSET is not set (use ${UNSET:-default})"]


def test_a_misplaced_env_or_headers_key_is_reported_as_unknown_not_as_a_bad_value() -> None:
    secret = "sk-live-SECRET-123456"
    doc = {
        "mcpServers": {
            "a": {"command": "x", "headers": {"Authorization": f"Bearer {secret}"}},
            "b": {"url": "https://h/mcp", "env": {"T": secret}},
        }
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, env={})
    problems = {p.path: p.message for p in info.value.problems}
    assert problems == {"$.mcpServers.a.headers": "unknown key", "$.mcpServers.b.env": "unknown key"}
    assert secret not in str(info.value)


def test_a_header_value_with_a_line_break_is_a_problem_that_does_not_quote_it() -> None:
    doc = {"mcpServers": {"web": {"url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}}}
    with pytest.raises(ConfigError) as info:
        parse_config(doc, env={"TOKEN": "sk-live-SECRET123\n"})
    [problem] = info.value.problems
    assert problem.path == "$.mcpServers.web.headers"
    assert "Authorization holds a control character" in problem.message
    assert "SECRET" not in str(info.value)
    # A tab is allowed in a header value (RFC 9110 field content), and so is the same token without the newline.
    assert parse_config(doc, env={"TOKEN": "sk-live\tSECRET123"}).servers["web"]


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        (
            "Illegal header value b'Bearer sk-live-SECRET123\\n'",
            {"Authorization": "Bearer sk-live-SECRET123\n"},
            "Illegal header value b'***'",
        ),
        ("401 for token sk-live-SECRET123", {"Authorization": "Bearer sk-live-SECRET123"}, "401 for token ***"),
        ("KEY=abcd in use", {"API_KEY": "abcd"}, "KEY=*** in use"),  # a secret by its name
        ("using ghp1234567890abcdef", {"GH": "ghp1234567890abcdef"}, "using ***"),  # a secret by its look
        ("[debug] verbose=true", {"LOG_LEVEL": "debug", "VERBOSE": "true"}, "[debug] verbose=true"),
        ("mode production at https://api.example.com", {"NODE_ENV": "production", "URL": "https://api.example.com"},
         "mode production at https://api.example.com"),
        ("exit 1", {"TOKEN": "1"}, "exit 1"),  # too short to mask
        ("nothing here", {}, "nothing here"),
    ],
)  # fmt: skip
def test_secret_values_are_masked_in_messages(text: str, secrets: dict[str, str], expected: str) -> None:
    assert mask_secrets(text, secrets) == expected


def test_disabled_servers_are_not_active() -> None:
    doc = {
        "mcpServers": {
            "a": {"command": "x", "enabled": False},
            "b": {"command": "y", "disabled": True},
            "c": {"command": "z"},
        }
    }
    assert list(parse_config(doc, env={}).active_servers()) == ["c"]


def test_per_server_timeout_overrides_the_default() -> None:
    config = parse_config({"mcpServers": {"a": {"command": "x", "timeout": 5}, "b": {"command": "y"}}}, env={})
    assert config.call_timeout("a") == 5
    assert config.call_timeout("b") == config.switchyard.timeouts.call


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{not json", "not valid JSON"), ("[]", "must be a JSON object"), ('{"mcpServers": []}', "must be an object")],
)
def test_malformed_files_are_reported(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "servers.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert needle in str(info.value)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.json")
    assert "cannot read file" in str(info.value)


def test_the_old_sse_transport_is_refused_with_a_reason() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"mcpServers": {"a": {"type": "sse", "url": "http://h/sse"}}}, env={})
    assert "Streamable HTTP" in str(info.value)


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40))
def test_interpolation_leaves_text_without_dollar_signs_unchanged(text: str) -> None:
    assert interpolate(text, {}) == (text, [])


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=4))
def test_any_json_object_either_loads_or_raises_config_error(servers: dict[str, str]) -> None:
    try:
        parse_config(json.loads(json.dumps({"mcpServers": servers})), env={})
    except ConfigError as exc:
        problems = exc.problems
    else:
        return
    assert problems, "a ConfigError names at least one problem"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-${B}}", {"A": "v"}, "v"),  # a default holding a reference: the set variable wins, nothing trails
        ("${A:-${B}}", {"B": "b"}, "b"),
        ('${A:-{"k": 1}}', {}, '{"k": 1}'),  # braces inside a default
        ("${env:HOME}/x", {"HOME": "/h"}, "/h/x"),  # VS Code's spelling of an environment variable
        ("cost: $5 and $$", {}, "cost: $5 and $"),
    ],
)
def test_interpolation_handles_nested_defaults_and_vs_code_env(text: str, env: dict[str, str], expected: str) -> None:
    value, problems = interpolate(text, env)
    assert (value, problems) == (expected, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Bearer ${TOKEN", "is never closed"),
        ("${input:github_token}", "not a variable reference"),
        ("${not-a-name}", "not a variable reference"),
    ],
)
def test_a_reference_that_cannot_be_resolved_is_reported_not_sent_half_replaced(text: str, message: str) -> None:
    value, problems = interpolate({"headers": {"Authorization": text}}, {"TOKEN": "secret"})
    assert value == {"headers": {"Authorization": text}}
    assert [p.path for p in problems] == ["$.headers.Authorization"]
    assert message in problems[0].message
    assert "secret" not in problems[0].message


def test_a_store_path_from_the_file_is_resolved_once(tmp_path: Path) -> None:
    doc = {"mcpServers": {}, "switchyard": {"store": {"path": str(tmp_path / "$${HOME}" / "s.db")}}}
    config = parse_config(doc, env={"HOME": "/home/x"})
    assert config.switchyard.store.resolved_path == tmp_path / "${HOME}" / "s.db"


def test_sealing_keys_never_print() -> None:
    settings = MrtrSettings(keys=("TOPSECRETKEY",))
    assert "TOPSECRETKEY" not in f"{settings} {settings!r} {settings!s}"
