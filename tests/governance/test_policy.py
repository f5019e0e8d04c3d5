"""Visibility and policy: hidden items vanish from lists and cannot be reached by guessing their names."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from governance_helpers import ListSink, governed, servers

from switchyard.catalog.pins import Hold
from switchyard.config import PolicySettings
from switchyard.errors import RATE_LIMITED, Hidden, NotFound, Quarantined, SwitchyardError, to_error_data
from switchyard.identity import LOCAL, REQUEST_PRINCIPAL, Principal
from switchyard.server.mcp import FrontServer
from switchyard.stages.policy import Policy, unqualified_names, uri_forms
from switchyard.testing.harness import gateway_client

pytestmark = pytest.mark.anyio

ALICE = Principal("alice", "api_key")
BOB = Principal("bob", "jwt", frozenset({"ops"}))
MALLORY = Principal("mallory", "api_key")

POLICY: dict[str, Any] = {
    "policy": {
        "groups": {"alice": ["dev"]},
        "default": "deny",
        "rules": [
            {"groups": ["dev"], "servers": {"allow": ["alpha"]}, "tools": {"deny": ["*admin*"]},
             "resources": {"deny": ["alpha://secret"]}},
            {"groups": ["ops"]},
        ],
    }
}  # fmt: skip


async def error_of(gateway: Any, principal: Principal, method: str, params: dict[str, Any]) -> SwitchyardError:
    with pytest.raises(SwitchyardError) as info:
        await gateway.request(method, params, principal=principal)
    return info.value


async def test_a_hidden_tool_called_by_name_gives_exactly_the_error_of_a_nonexistent_tool() -> None:
    async with governed(POLICY) as gateway:
        hidden = await error_of(gateway, ALICE, "tools/call", {"name": "alpha__admin_reset", "arguments": {}})
        absent = await error_of(gateway, ALICE, "tools/call", {"name": "alpha__no_such_tool", "arguments": {}})
    assert isinstance(hidden, Hidden)
    assert type(absent) is NotFound
    wire_hidden, wire_absent = to_error_data(hidden), to_error_data(absent)
    assert wire_hidden.code == wire_absent.code
    assert wire_hidden.data == wire_absent.data
    assert wire_hidden.message == "Unknown tool: alpha__admin_reset"
    assert wire_absent.message == "Unknown tool: alpha__no_such_tool"


async def test_the_hidden_error_is_byte_identical_to_the_one_a_gateway_without_the_tool_gives() -> None:
    async with governed(POLICY) as gateway:
        hidden = await error_of(gateway, ALICE, "tools/call", {"name": "beta__lookup", "arguments": {"key": "k"}})
    without_beta = {**POLICY, "policy": {"default": "allow"}}
    async with governed(without_beta) as gateway:
        gateway.upstreams.pop("beta")
        gateway.rebuild()
        absent = await error_of(gateway, ALICE, "tools/call", {"name": "beta__lookup", "arguments": {"key": "k"}})
    assert to_error_data(hidden).model_dump() == to_error_data(absent).model_dump()


async def test_hidden_prompts_and_resources_are_not_found_too() -> None:
    async with governed(POLICY) as gateway:
        prompt = await error_of(gateway, MALLORY, "prompts/get", {"name": "alpha__greet", "arguments": {"name": "x"}})
        resource = await error_of(gateway, ALICE, "resources/read", {"uri": "alpha://secret"})
        allowed = await gateway.request("resources/read", {"uri": "alpha://public"}, principal=ALICE)
    assert to_error_data(prompt).message == "Unknown prompt: alpha__greet"
    assert to_error_data(resource).message == "Resource not found: alpha://secret"
    assert allowed["contents"][0]["text"] == "hello"


async def test_a_hidden_resource_gives_the_data_of_a_nonexistent_one_too() -> None:
    async with governed(POLICY) as gateway:
        hidden = to_error_data(await error_of(gateway, ALICE, "resources/read", {"uri": "alpha://secret"}))
        absent = to_error_data(await error_of(gateway, ALICE, "resources/read", {"uri": "alpha://nope"}))
    assert (hidden.code, hidden.data) == (absent.code, {"uri": "alpha://secret"})
    assert absent.data == {"uri": "alpha://nope"}


async def test_a_hidden_name_spends_the_rate_limit_tokens_an_unknown_name_spends() -> None:
    # Otherwise calling a name a few times past the burst would tell a hidden tool from a nonexistent one.
    limited = {**POLICY, "limits": {"per_principal": {"rate": 0.001, "burst": 3}}}
    outcomes: dict[str, list[int]] = {}
    for name in ("alpha__admin_reset", "alpha__no_such_tool"):
        async with governed(limited) as gateway:
            codes = []
            for _ in range(5):
                error = await error_of(gateway, ALICE, "tools/call", {"name": name, "arguments": {}})
                codes.append(to_error_data(error).code)
            outcomes[name] = codes
    assert outcomes["alpha__admin_reset"] == outcomes["alpha__no_such_tool"]
    assert outcomes["alpha__admin_reset"][3:] == [RATE_LIMITED, RATE_LIMITED]


async def test_lists_are_filtered_per_principal() -> None:
    async with governed(POLICY) as gateway:
        tools = gateway.public("tools")
        for_alice = [t["name"] for t in gateway.policy.visible_tools(ALICE, tools, gateway.catalog)]
        for_bob = [t["name"] for t in gateway.policy.visible_tools(BOB, tools, gateway.catalog)]
        for_mallory = gateway.policy.visible_tools(MALLORY, tools, gateway.catalog)
        for_local = [t["name"] for t in gateway.policy.visible_tools(LOCAL, tools, gateway.catalog)]
        resources = [r["uri"] for r in gateway.policy.visible_resources(ALICE, gateway.catalog.resources)]
    assert for_alice == ["alpha__echo", "alpha__wait"]
    assert for_bob == ["alpha__echo", "alpha__admin_reset", "alpha__wait", "beta__lookup"]
    assert for_mallory == []
    assert for_local == for_bob
    assert resources == ["alpha://public"]


async def test_an_allowed_call_goes_through_for_the_principal_the_rules_allow() -> None:
    async with governed(POLICY) as gateway:
        result = await gateway.request(
            "tools/call", {"name": "alpha__echo", "arguments": {"text": "hi"}}, principal=ALICE
        )
    assert result["content"][0]["text"] == "hi"


async def test_denied_calls_are_audited_as_denied_with_the_policy_reason() -> None:
    sink = ListSink()
    async with governed(POLICY, sink=sink) as gateway:
        await error_of(gateway, ALICE, "tools/call", {"name": "alpha__admin_reset", "arguments": {}})
        await error_of(gateway, ALICE, "tools/call", {"name": "alpha__nothing", "arguments": {}})
    assert [(r.tool, r.decision) for r in sink.rows] == [("alpha__admin_reset", "denied"), ("alpha__nothing", "error")]
    assert "policy hides tool" in sink.rows[0].reason
    assert sink.rows[1].reason == "not found: Unknown tool: alpha__nothing"


async def test_the_local_user_in_process_sees_everything_by_default() -> None:
    async with gateway_client(servers(), settings=POLICY) as (_, client):
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["alpha__echo", "alpha__admin_reset", "alpha__wait", "beta__lookup"]


async def test_a_rule_naming_local_restricts_the_local_user_on_lists_in_process() -> None:
    settings = {"policy": {"rules": [{"principals": ["local"], "tools": {"allow": ["alpha__echo"]}}]}}
    async with gateway_client(servers(), settings=settings) as (_, client):
        names = [t.name for t in (await client.list_tools()).tools]
        prompts = [p.name for p in (await client.list_prompts()).prompts]
    assert names == ["alpha__echo"]
    assert prompts == ["alpha__greet"]


async def test_a_quarantined_tool_the_caller_may_not_see_gives_the_unknown_tool_error() -> None:
    async with governed(POLICY) as gateway:
        entry = gateway.catalog.tools["alpha__admin_reset"]
        hold = Hold("alpha__admin_reset", "alpha", "admin_reset", "changed", "definition changed", entry.definition)
        tools = {n: e for n, e in gateway.catalog.tools.items() if n != "alpha__admin_reset"}
        gateway.catalog = replace(gateway.catalog, tools=tools, quarantined={"alpha__admin_reset": hold})
        hidden = await error_of(gateway, ALICE, "tools/call", {"name": "alpha__admin_reset", "arguments": {}})
        shown = await error_of(gateway, BOB, "tools/call", {"name": "alpha__admin_reset", "arguments": {}})
    assert to_error_data(hidden).message == "Unknown tool: alpha__admin_reset"
    assert isinstance(shown, Quarantined)


async def test_search_tools_only_finds_what_the_caller_may_see() -> None:
    settings = {
        "exposure": "search",
        "retrieval": {"retriever": "bm25"},
        "policy": {"rules": [{"principals": ["local"], "tools": {"deny": ["*admin*"]}}]},
    }
    async with gateway_client(servers(), settings=settings) as (_, client):
        found = await client.call_tool("search_tools", {"query": "dangerous admin reset tool", "k": 10})
    names = [t["name"] for t in (found.structured_content or {})["tools"]]
    assert "alpha__admin_reset" not in names
    assert names


async def test_hidden_tools_take_no_places_in_a_search_for_k_results() -> None:
    # The query matches the hidden tool best: the one result asked for is the best tool the caller may see.
    settings = {
        "exposure": "search",
        "retrieval": {"retriever": "bm25"},
        "policy": {"rules": [{"principals": ["local"], "tools": {"deny": ["*admin*"]}}]},
    }
    async with gateway_client(servers(), settings=settings) as (gateway, client):
        found = await client.call_tool("search_tools", {"query": "dangerous admin reset tool", "k": 1})
        unrestricted = await gateway.exposure.finder.search("dangerous admin reset tool", 2)  # type: ignore[union-attr]
    names = [t["name"] for t in (found.structured_content or {})["tools"]]
    assert unrestricted[0] == "alpha__admin_reset"
    assert names == [unrestricted[1]]


def test_a_uri_is_judged_in_every_form_a_server_could_read_it() -> None:
    # Routing decodes URIs (a template's `{name}` matches `%73alaries` as `salaries`): a deny glob on the raw
    # text alone would let the encoded or dotted spelling of a denied URI through.
    settings = PolicySettings.model_validate(
        {
            "default": "deny",
            "rules": [{"principals": ["*"], "resources": {"allow": ["db://*"], "deny": ["db://tables/salaries"]}}],
        }
    )
    policy = Policy(settings)
    anyone = Principal("anyone", "api_key")
    assert policy.allows(anyone, "resources", "db", "db://tables/orders")
    for spelling in (
        "db://tables/salaries",
        "db://tables/%73alaries",
        "db://tables/x/../salaries",
        "db://tables/./salaries",
    ):
        assert not policy.allows(anyone, "resources", "db", spelling), spelling
    # (`tables` is the authority here: the dots resolve in the path after it.)
    assert uri_forms("db://tables/%2e%2e/x") == {"db://tables/%2e%2e/x", "db://tables/../x", "db://tables/x"}


async def test_the_header_checks_schema_lookup_knows_no_tool_its_caller_may_not_see() -> None:
    # The SDK checks `Mcp-Param-*` headers against the schema this lookup gives: a 400 naming a hidden
    # tool's parameters would tell it apart from a nonexistent one ("Unknown tool").
    async with governed(POLICY) as gateway:
        front = FrontServer(gateway)
        for principal, visible in ((ALICE, True), (MALLORY, False), (None, True)):
            token = REQUEST_PRINCIPAL.set(principal)
            try:
                schema = front._input_schema("alpha__echo")  # pyright: ignore[reportPrivateUsage]
                hidden = front._input_schema("alpha__admin_reset")  # pyright: ignore[reportPrivateUsage]
            finally:
                REQUEST_PRINCIPAL.reset(token)
            assert (schema is not None) is visible, principal
            assert (hidden is not None) is (principal is None), principal  # admin tools: hidden from alice too


def test_a_principal_named_with_its_kind_is_not_another_kind_of_the_same_id() -> None:
    settings = PolicySettings.model_validate(
        {
            "groups": {"api_key:ci": ["ops"], "sam": ["dev"]},
            "default": "deny",
            "rules": [
                {"principals": ["api_key:alice"], "servers": {"allow": ["alpha"]}},
                {"principals": ["carol"], "servers": {"allow": ["beta"]}},
                {"groups": ["ops"], "servers": {"allow": ["beta"]}},
                {"groups": ["dev"], "servers": {"allow": ["alpha"]}},
            ],
        }
    )
    policy = Policy(settings)
    assert policy.allows(Principal("alice", "api_key"), "tools", "alpha", "alpha__echo")
    assert not policy.allows(Principal("alice", "jwt"), "tools", "alpha", "alpha__echo")  # a JWT sub "alice"
    # A bare name names that id of any kind (as before kinds could be written).
    assert policy.allows(Principal("carol", "api_key"), "tools", "beta", "beta__lookup")
    assert policy.allows(Principal("carol", "jwt"), "tools", "beta", "beta__lookup")
    # The keys of `groups` follow the same rule.
    assert policy.groups_of(Principal("ci", "api_key")) == frozenset({"ops"})
    assert policy.groups_of(Principal("ci", "jwt")) == frozenset()
    assert policy.groups_of(Principal("sam", "jwt", frozenset({"x"}))) == frozenset({"x", "dev"})
    # An id that starts with a kind is named only in full: "api_key:alice" is not the JWT sub "api_key:alice".
    assert not policy.allows(Principal("api_key:alice", "jwt"), "tools", "alpha", "alpha__echo")
    # A bare "local" names the local user only, never a JWT whose sub is "local".
    local_rule = Policy(
        PolicySettings.model_validate({"rules": [{"principals": ["local"], "servers": {"deny": ["*"]}}]})
    )
    assert not local_rule.allows(LOCAL, "tools", "alpha", "alpha__echo")
    assert local_rule.allows(Principal("local", "jwt"), "tools", "alpha", "alpha__echo")


def test_the_bare_names_of_a_policy_are_listed_for_the_mixed_mode_warning() -> None:
    settings = PolicySettings.model_validate(
        {
            "groups": {"alice": ["dev"], "jwt:bob": ["ops"]},
            "rules": [{"principals": ["*", "local", "carol", "api_key:dave"]}, {"groups": ["dev"]}],
        }
    )
    assert unqualified_names(settings) == ["alice", "carol"]
