"""Tool documents and their text: `ToolDoc`, identifier splitting, the texts we embed and the terms we index.

Owns: what a tool looks like to the retriever (`ToolDoc`), how a tool becomes text for the dense encoder
(`dense_text`) and weighted terms for BM25 (`lexical_terms`), and the one analyser (lower-case, split
identifiers, drop stopwords, Snowball-stem) used for both documents and queries.

Does not own: indexing or scoring (`index.py`), query decomposition (`query.py`).

The stopword list is the generic English function-word list used in IR (no domain words), so it does not
encode anything about any benchmark. Neither does `affirmative`'s list of sentence-initial English negations.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

import snowballstemmer  # pyright: ignore[reportMissingTypeStubs]

__all__ = [
    "STOPWORDS",
    "ToolDoc",
    "affirmative",
    "analyse",
    "dense_text",
    "lexical_terms",
    "server_text",
    "split_identifier",
]

# Generic English function words (a subset of the classic SMART / Lucene lists).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
    on once only or other our ours ourselves out over own please same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves also via using use
    e g i.e etc""".split()  # noqa: SIM905 (a word list reads better as text)
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[A-Za-z]+|[0-9]+|[^\W\d_A-Za-z]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_STEMMER: Any = snowballstemmer.stemmer("english")  # pyright: ignore[reportUnknownMemberType]
# A sentence ends at . ! ? followed by whitespace, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# A sentence that opens with a negation says what the tool is NOT for ("Not for listing multiple secrets.",
# "Do not use this tool for deployments."): its words are evidence against the tool, not for it.
_NEGATED = re.compile(
    r"\W*(?:not|never|avoid|cannot|can't|(?:do|does|should|must)\s+not|(?:don|doesn|shouldn|mustn)'t"
    r"|this\s+tool\s+(?:is|does|should|must|can)\s*not)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ToolDoc:
    """One tool as the retriever sees it.

    Attributes:
        key: the federated (namespaced) tool name the gateway uses; unique in an index.
        server: the upstream server's name.
        name: the tool's own name.
        description: the tool's description.
        input_schema: the tool's JSON schema for arguments.
        server_description: what the server says about itself (optional).
    """

    key: str
    server: str
    name: str
    description: str
    input_schema: Mapping[str, Any] = field(default_factory=dict[str, Any])
    server_description: str = ""


def split_identifier(name: str) -> str:
    """`getWeatherForecast` / `get_weather-forecast` / `get.weather` -> `get weather forecast`."""
    spaced = _CAMEL.sub(" ", name)
    return " ".join(w for w in re.split(r"[\s_\-./:]+", spaced) if w)


def affirmative(text: str) -> str:
    """`text` without its sentences that open with a negation (what a tool is not for); unchanged if none.

    Bi-encoders and BM25 both read "Not for listing multiple secrets" as being about listing secrets, so a
    `get` tool that warns it does not list would otherwise match a request to list.
    """
    kept: list[str] = []
    dropped = False
    pos = 0
    for end in [*_SENTENCE_END.finditer(text), None]:
        stop = end.start() if end is not None else len(text)
        sentence = text[pos:stop]
        if sentence and _NEGATED.match(sentence):
            dropped = True
        elif sentence:
            kept.append(sentence)
        if end is not None:
            pos = end.end()
    return " ".join(kept) if dropped else text


def _parameters(schema: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(name, description) of top-level parameters, in schema order."""
    props: Any = schema.get("properties")
    if not isinstance(props, Mapping):
        return
    for pname, spec in cast(Mapping[str, Any], props).items():
        desc: Any = cast(Mapping[str, Any], spec).get("description", "") if isinstance(spec, Mapping) else ""
        yield str(pname), desc if isinstance(desc, str) else ""


def server_text(doc: ToolDoc) -> str:
    """The server's words: its name split into words, then its description."""
    return f"{split_identifier(doc.server)}. {doc.server_description}".strip()


def dense_text(doc: ToolDoc) -> str:
    """Text embedded for a tool: name words, description, parameter names, then the server (truncated last).

    Order matters because the encoder truncates: the most telling words come first.
    """
    params = ", ".join(split_identifier(n) for n, _ in _parameters(doc.input_schema))
    parts = [split_identifier(doc.name) + ":", affirmative(doc.description).strip()]
    if params:
        parts.append(f"Parameters: {params}.")
    parts.append(f"Server: {server_text(doc)}")
    return " ".join(p for p in parts if p)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))  # pyright: ignore[reportUnknownMemberType]


def analyse(text: str) -> list[str]:
    """Lower-cased, identifier-split, stopword-free, stemmed terms of `text`.

    CJK runs become character bigrams (plus single characters for one-character runs) so Chinese text gets
    useful lexical matches without a word segmenter.
    """
    terms: list[str] = []
    for raw in _WORD.findall(_CAMEL.sub(" ", text)):  # `_WORD` has no underscore, so snake_case splits too
        word = raw.lower()
        if _CJK.match(word):
            chars = [c for c in word if _CJK.match(c)]
            terms.extend(chars[0:1] if len(chars) == 1 else [a + b for a, b in itertools.pairwise(chars)])
            continue
        if word in STOPWORDS or (len(word) == 1 and not word.isdigit()):
            continue
        terms.append(_stem(word))
    return terms


def lexical_terms(doc: ToolDoc, *, name_weight: int = 3, param_weight: int = 1) -> list[str]:
    """Weighted bag of terms for BM25: name words repeated `name_weight` times, then description, parameter names
    (`param_weight` times) and descriptions, and the server's name and description once."""
    name_terms = analyse(split_identifier(doc.name))
    terms = name_terms * name_weight
    terms += analyse(affirmative(doc.description))
    for pname, pdesc in _parameters(doc.input_schema):
        terms += analyse(split_identifier(pname)) * param_weight
        terms += analyse(pdesc)
    terms += analyse(server_text(doc))
    return terms
