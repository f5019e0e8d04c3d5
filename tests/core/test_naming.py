"""Federated names are valid for strict clients, deterministic, and never merge two different originals."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from switchyard.catalog.catalog import build_catalog
from switchyard.catalog.naming import federated_name, is_valid_name
from switchyard.config import parse_config
from switchyard.upstream.base import UpstreamSnapshot


def test_plain_names_are_prefixed_with_the_server() -> None:
    assert federated_name("time", "get_current_time") == "time__get_current_time"
    assert federated_name("time", "now", separator="-") == "time-now"
    assert federated_name("time", "now", prefix=False) == "now"


def test_invalid_characters_are_replaced_and_tagged_with_a_hash() -> None:
    name = federated_name("my.server", "tool name")
    assert is_valid_name(name)
    assert name.startswith("my_server__tool_name_")
    assert federated_name("my.server", "tool name") == name


def test_long_names_are_shortened_to_64_characters() -> None:
    name = federated_name("server", "x" * 100)
    assert len(name) == 64
    assert is_valid_name(name)


def test_names_that_sanitise_alike_stay_distinct() -> None:
    assert federated_name("s", "a.b") != federated_name("s", "a_b")
    assert federated_name("s", "a.b") != federated_name("s", "a b")


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=120), st.booleans())
def test_every_federated_name_is_valid_and_deterministic(server: str, tool: str, prefix: bool) -> None:
    name = federated_name(server, tool, prefix=prefix)
    assert is_valid_name(name)
    assert name == federated_name(server, tool, prefix=prefix)


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_two_different_tools_of_one_server_never_share_a_name(server: str, a: str, b: str) -> None:
    if a != b:
        assert federated_name(server, a) != federated_name(server, b)


def _tools(*names: str) -> UpstreamSnapshot:
    tools = tuple({"name": n, "inputSchema": {"type": "object"}} for n in names)
    return UpstreamSnapshot(era="2026-07-28", tools=tools)


def _names(servers: dict[str, UpstreamSnapshot], **naming: Any) -> dict[str, tuple[str, str]]:
    config = parse_config({"mcpServers": {s: {"command": "x"} for s in servers}, "switchyard": {"naming": naming}})
    return {n: (e.server, e.original) for n, e in build_catalog(servers, config).tools.items()}


def test_a_tool_whose_name_holds_the_separator_never_takes_another_servers_name() -> None:
    # `github`'s `enterprise-delete_repo` and `github-enterprise`'s `delete_repo` both spell
    # github-enterprise-delete_repo: the tool that is what the name says keeps it, whichever server is first.
    for order in (("github", "github-enterprise"), ("github-enterprise", "github")):
        servers = {s: _tools("enterprise-delete_repo" if s == "github" else "delete_repo") for s in order}
        names = _names(servers, separator="-")
        assert names["github-enterprise-delete_repo"] == ("github-enterprise", "delete_repo")
        [(other, _)] = [(n, v) for n, v in names.items() if v == ("github", "enterprise-delete_repo")]
        assert other.startswith("github-enterprise-delete_repo_")  # the same name, tagged with a hash


def test_a_renamed_collision_keeps_its_name_when_other_servers_lists_change() -> None:
    # `a`'s `b__x` and `a__b`'s `x` both spell a__b__x, and prefixing cannot help: `a__b` keeps it (its tool's
    # name holds no separator) and `a`'s gets a hash of its own server and name, whatever else comes and goes.
    before = _names({"a": _tools("b__x"), "a__b": _tools("x"), "c": _tools("x")})
    after = _names({"a": _tools("b__x", "y"), "a__b": _tools("w", "x"), "c": _tools()})
    assert before["a__b__x"] == after["a__b__x"] == ("a__b", "x")
    renamed = {v: n for n, v in before.items()}[("a", "b__x")]
    assert renamed.startswith("a__b__x_")
    assert {v: n for n, v in after.items()}[("a", "b__x")] == renamed
    assert all(is_valid_name(n) for n in (*before, *after))
    dashed = _names({"a": _tools("b-x"), "a-b": _tools("x")}, separator="-")
    moved = {v: n for n, v in dashed.items()}[("a", "b-x")]
    assert moved.startswith("a-b-x_")  # prefixed with the configured separator, never the default `__`
    assert "__" not in moved


def test_with_prefixing_off_a_replacement_name_never_takes_a_name_a_server_really_offers() -> None:
    # `a` (listed first) offers `b__x` and `x`; `b` offers `x`, which collides and would be renamed `b__x`.
    names = _names({"a": _tools("b__x", "x"), "b": _tools("x")}, prefix=False)
    assert names["b__x"] == ("a", "b__x")  # a's own tool keeps its own name
    assert names["x"] == ("a", "x")
    [(renamed, _)] = [(n, v) for n, v in names.items() if v == ("b", "x")]
    assert renamed.startswith("b__x_")  # the prefixed name is taken: the replacement gets a hash


def test_resource_template_collisions_are_reported_and_the_most_specific_template_routes() -> None:
    def with_templates(*templates: str) -> UpstreamSnapshot:
        return UpstreamSnapshot(era="2026-07-28", templates=tuple({"uriTemplate": t, "name": t} for t in templates))

    servers = {
        "a": with_templates("file:///{+path}", "x://{id}"),
        "b": with_templates("file:///docs/{name}", "x://{id}"),
    }
    config = parse_config({"mcpServers": {s: {"command": "x"} for s in servers}})
    catalog = build_catalog(servers, config)
    assert [str(c) for c in catalog.collisions] == ["resource template 'x://{id}' offered by a, b: routed to a"]
    assert [(s, t["uriTemplate"]) for s, t in catalog.templates] == [
        ("a", "file:///{+path}"),
        ("a", "x://{id}"),
        ("b", "file:///docs/{name}"),
    ]
    assert catalog.owner_of("file:///docs/readme.md") == "b"  # the narrower template, though b comes second
    assert catalog.owner_of("file:///etc/hosts") == "a"
    assert catalog.owner_of("x://7") == "a"
