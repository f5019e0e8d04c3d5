"""Tool text, the analyser and multi-intent query decomposition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switchyard.retrieval.query import decompose
from switchyard.retrieval.text import ToolDoc, analyse, dense_text, lexical_terms, split_identifier


def test_split_identifier_handles_snake_camel_kebab_and_dots() -> None:
    assert split_identifier("get_weather-forecast") == "get weather forecast"
    assert split_identifier("getWeatherForecast") == "get Weather Forecast"
    assert split_identifier("HTTPServerStatus") == "HTTP Server Status"
    assert split_identifier("fs.read_file") == "fs read file"


def test_analyse_lowercases_stems_and_drops_stopwords() -> None:
    assert analyse("Sending the Emails to getRecipients") == ["send", "email", "get", "recipi"]


def test_analyse_makes_bigrams_of_cjk_text() -> None:
    assert analyse("必应搜索") == ["必应", "应搜", "搜索"]


def test_tool_text_has_name_words_description_parameters_and_server() -> None:
    doc = ToolDoc(
        key="wx/get_forecast",
        server="weather-server",
        name="get_forecast",
        description="Forecast for a city.",
        input_schema={"type": "object", "properties": {"cityName": {"type": "string", "description": "The city"}}},
        server_description="Weather data.",
    )
    assert (
        dense_text(doc)
        == "get forecast: Forecast for a city. Parameters: city Name. Server: weather server. Weather data."
    )
    terms = lexical_terms(doc)
    assert terms.count("forecast") == 3 + 1  # name weight 3, plus the description
    assert "citi" in terms
    assert "weather" in terms


def test_single_intent_query_is_not_decomposed() -> None:
    assert decompose("list my storage accounts in resource group rg1") == []


def test_multi_intent_query_splits_on_sentences_commas_and_conjunctions() -> None:
    query = (
        "Find the weather in Paris, then email it to Bob and draw a bar chart of temperatures. Save it to report.pdf"
    )
    assert decompose(query) == [
        "Find the weather in Paris",
        "email it to Bob",
        "draw a bar chart of temperatures",
        "Save it to report.pdf",
    ]


def test_fragments_without_two_content_terms_join_their_neighbour() -> None:
    assert decompose("Open the file and then, finally, summarise it for me, thanks") == [
        "Open the file",
        "summarise it for me, thanks",
    ]
    assert decompose("read the sales figures, plot a line chart, ok") == [
        "read the sales figures",
        "plot a line chart, ok",
    ]


@given(st.text(max_size=200))
def test_decompose_never_fails_and_parts_are_substrings(text: str) -> None:
    parts = decompose(text)
    assert len(parts) != 1
    for part in parts:
        assert part
        assert part in text


def test_affirmative_drops_sentences_that_open_with_a_negation() -> None:
    from switchyard.retrieval.text import affirmative  # noqa: PLC0415

    assert affirmative("Get one secret. Not for listing multiple secrets.") == "Get one secret."
    assert affirmative("Read a file.\nDo not use this tool for folders. Returns text.") == "Read a file. Returns text."
    assert affirmative("Writes. This tool does not read! Don't loop? Never twice") == "Writes."
    # Only a sentence's first words count, and words that merely start with "not" are not negations.
    assert affirmative("Notes are kept. It is not slow.") == "Notes are kept. It is not slow."
    unchanged = "Line one\n\nline two.  Spaces kept."
    assert affirmative(unchanged) is unchanged  # nothing dropped: the text (and its vector's hash) is untouched


def test_negated_sentences_stay_out_of_the_tool_text() -> None:
    doc = ToolDoc(key="kv/secret_get", server="kv", name="secret_get", description="Show a secret. Not for listing.")
    assert "listing" not in dense_text(doc)
    assert "list" not in lexical_terms(doc)
