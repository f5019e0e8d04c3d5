"""Federated names are valid for strict clients, deterministic, and never merge two different originals."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switchyard.catalog.naming import federated_name, is_valid_name


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
