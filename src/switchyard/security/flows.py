"""Cross-server data flows: what each tool does with data (labels), and what a conversation has touched.

Owns: the flow labels of a tool, from configuration or from generic heuristics on its definition (verbs and
objects in its name, description and parameter names, and its annotations), each with the reason it was given;
and `FlowTracker`, the per-conversation record of which labels' data has been read, expiring after a window of
inactivity and bounded in count. Does not own the decision taken when a flow turns toxic, nor where the
conversation key comes from (stages/flows.py).

Labels (after "the lethal trifecta"):
- `private`: reads private data (files, e-mail, databases, secrets, contacts, calendars, repositories);
- `untrusted`: ingests content others wrote (web pages, e-mail, issues, comments, messages, feeds);
- `egress`: can send data out (a recipient or URL parameter, send/post/publish verbs, writes to files or
  shared places). A tool that fetches an arbitrary URL is `untrusted` AND `egress`: the URL itself carries data.

The heuristics are deliberately coarse and generic: a false label costs an approval prompt, a missed one a
leak. Configuration (`labels` on a server entry) replaces them for the tools it names.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from switchyard.config import FlowLabel

__all__ = ["LABELS", "Conversation", "FlowTracker", "Labelled", "config_labels", "label_definition", "label_uri"]

LABELS: tuple[FlowLabel, ...] = ("private", "untrusted", "egress")


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_READ = _set(
    "read get list search query find fetch open cat show view load download export dump lookup retrieve "
    "browse scan check inspect describe print tail head grep scrape crawl extract summarize summarise"
)
_SEND = _set(
    "send post publish upload share forward reply email mail tweet submit notify message push broadcast "
    "transmit invite comment dm sms webhook exfiltrate leak"
)
_WRITE = _set("write save create append edit put move copy add update insert set store overwrite")
_PRIVATE_OBJECTS = _set(
    "file files document documents doc docs email emails mail mails inbox message messages db database "
    "databases sql table tables record records row rows secret secrets credential credentials password "
    "passwords token tokens env environment contact contacts calendar note notes drive repo repository "
    "repositories commit commits account accounts customer customers profile profiles bank transaction "
    "transactions balance history memory memories clipboard photo photos directory directories folder folders "
    "dir keychain vault wallet ssh diary journal medical patient patients payroll invoice invoices"
)
_UNTRUSTED_OBJECTS = _set(
    "web webpage webpages page pages url urls website websites site html http https internet browser email "
    "emails mail mails inbox message messages issue issues comment comments pull pr prs post posts tweet "
    "tweets feed feeds rss news review reviews chat chats slack discord channel channels forum reddit ticket "
    "tickets thread threads article articles"
)
_PUBLIC_OBJECTS = _set(
    "page pages post posts issue issues comment comments message messages event events gist gists wiki tweet "
    "tweets status review reviews invitation invite"
)
_FILE_OBJECTS = _set("file files document documents doc docs note notes")
_DEST_WORDS = _set("recipient recipients cc bcc webhook attendees participants")
_DEST_HEADS = _set("to channel chat phone sms callback")
_DEST_TAILS = _set("id ids email emails address addresses number numbers url")
_URL_PARAMS = _set("url uri urls uris endpoint href")
_EXEC_VERBS = _set("run execute exec start spawn eval evaluate")
_EXEC_OBJECTS = _set("command commands process shell terminal script scripts bash code")
_EXEC_PARAMS = _set("command cmd script code shell")
_BODY_PARAMS = _set("body message content contents text subject payload data edits")
_PATH_PARAMS = _set("path file filename filepath paths directory dir folder sql database")
_NOUN_VERBS = _set("email mail message comment post tweet dm sms webhook share store set list")
_ALL_VERBS = _READ | _SEND | _WRITE
_UNTRUSTED_FETCH = _set("fetch browse scrape crawl navigate visit")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
_FIRST_SENTENCE = re.compile(r"^(.{0,240}?)(?:[.!?](?:\s|$)|\n|$)", re.S)


def _words(text: str) -> list[str]:
    return _WORD.findall(_CAMEL.sub(" ", text).lower())


def _forms(word: str) -> set[str]:
    """The word and its plausible bases: sends -> send, posted -> post, sharing -> share, submitted -> submit."""
    out = {word}
    for suffix, extra in (("s", ""), ("es", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            base = word[: -len(suffix)]
            out.add(base + extra)
            if len(base) > 2 and base[-1] == base[-2]:
                out.add(base[:-1])
    return out


def _verbs(words: Iterable[str]) -> list[str]:
    """The verbs among `words` (base forms). Noun-verbs ("email", "post") count only when no plain verb does."""
    plain: list[str] = []
    ambiguous: list[str] = []
    for word in words:
        forms = _forms(word)
        for verb in sorted(forms & _ALL_VERBS):
            (ambiguous if verb in _NOUN_VERBS else plain).append(verb)
    return plain or ambiguous


@dataclass(frozen=True, slots=True)
class Labelled:
    """A tool's (or resource's) labels, with one reason per label."""

    labels: frozenset[FlowLabel]
    reasons: Mapping[FlowLabel, str] = field(default_factory=dict[FlowLabel, str])
    source: str = "heuristics"

    def explain(self, label: FlowLabel) -> str:
        """Why the item carries `label` (empty when it does not)."""
        return self.reasons.get(label, "")


def _param_words(definition: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    schema: Any = definition.get("inputSchema")
    props: Any = cast(Mapping[str, Any], schema).get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(props, Mapping):
        return []
    return [(str(k), _words(str(k))) for k in cast(Mapping[Any, Any], props)]


def _destination(params: list[tuple[str, list[str]]]) -> str | None:
    """A parameter that names where data goes: `recipients`, `cc`, `to`, `channel_id`, `to_email` (not
    `to_station`: a head word like "to" counts alone or with an address-like tail)."""
    for name, words in params:
        if set(words) & _DEST_WORDS:
            return name
        if words and words[0] in _DEST_HEADS and (len(words) == 1 or words[-1] in _DEST_TAILS):
            return name
    return None


def label_definition(definition: Mapping[str, Any]) -> Labelled:
    """Label a tool from its definition (name, description, parameter names, annotations)."""
    name = str(definition.get("name", ""))
    name_words = _words(name)
    description = str(definition.get("description") or "")
    match = _FIRST_SENTENCE.match(description.strip())
    desc_words = _words(match.group(1) if match else description[:240])
    params = _param_words(definition)
    param_words = {w for _, ws in params for w in ws}
    annotations: Any = definition.get("annotations")
    notes: Mapping[str, Any] = cast(Mapping[str, Any], annotations) if isinstance(annotations, Mapping) else {}
    read_only = notes.get("readOnlyHint") is True
    open_world = notes.get("openWorldHint") is True

    # The name decides the verbs; the first sentence of the description stands in when the name has none.
    verbs = _verbs(name_words)
    where = "name"
    if not verbs:
        verbs, where = _verbs(desc_words), "description"
    send = next((v for v in verbs if v in _SEND), None)
    write = None if read_only else next((v for v in verbs if v in _WRITE), None)
    read = next((v for v in verbs if v in _READ), None)
    objects = set(name_words) | set(desc_words)
    reasons: dict[FlowLabel, str] = {}

    # egress: a verb that sends, a destination or URL parameter, a write to a shared place, an open world.
    dest = _destination(params)
    urls = sorted(param_words & _URL_PARAMS)
    verb_words = name_words if where == "name" or any(_forms(w) & _EXEC_VERBS for w in name_words) else desc_words
    runs = any(_forms(w) & _EXEC_VERBS for w in verb_words)
    exec_param = any(name.lower() in _EXEC_PARAMS for name, _ in params)
    executes = bool((runs and set(name_words + desc_words) & _EXEC_OBJECTS) or exec_param)
    if send and not read_only:
        reasons["egress"] = f"verb '{send}' in the {where}"
    elif dest:
        reasons["egress"] = f"destination parameter '{dest}'"
    elif executes:
        reasons["egress"] = "runs commands or code (which can reach the network)"
    elif urls:
        reasons["egress"] = f"network parameter '{urls[0]}' (a URL carries data out)"
    elif write and objects & _PUBLIC_OBJECTS:
        reasons["egress"] = f"publishes ('{write}') a {sorted(objects & _PUBLIC_OBJECTS)[0]}"
    elif write and param_words & _BODY_PARAMS and (objects & _FILE_OBJECTS or param_words & _PATH_PARAMS):
        reasons["egress"] = f"writes content ('{write}') to files"
    elif open_world and not read_only:
        reasons["egress"] = "annotated openWorldHint and not read-only"

    sends_only = (send or write) and not read
    # private: reads files, mail, databases, secrets ... (not a tool whose verb only sends or writes).
    private_objects = sorted(objects & _PRIVATE_OBJECTS)
    private_params = sorted(param_words & _PATH_PARAMS)
    if executes:
        reasons["private"] = "runs commands or code (which can read local files)"
    elif not sends_only and (private_objects or private_params):
        what = private_objects[0] if private_objects else f"parameter '{private_params[0]}'"
        reasons["private"] = f"reads {what}" + (f" (verb '{read}')" if read else "")

    # untrusted: ingests what others wrote (web, mail, issues, messages), or fetches an arbitrary URL.
    untrusted_objects = sorted(objects & _UNTRUSTED_OBJECTS)
    fetch = next((w for w in name_words if _forms(w) & _UNTRUSTED_FETCH), None)
    if fetch or (urls and not sends_only):
        reasons["untrusted"] = f"fetches outside content ('{fetch or urls[0]}')"
    elif not sends_only and untrusted_objects:
        reasons["untrusted"] = f"reads {untrusted_objects[0]} written by others"
    elif open_world and read_only:
        reasons["untrusted"] = "annotated openWorldHint (reads the open world)"
    return Labelled(frozenset(reasons), reasons)


def label_uri(uri: str) -> Labelled:
    """Label a resource read by its URI scheme: local files are private, web pages untrusted."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme in ("http", "https"):
        return Labelled(frozenset({"untrusted"}), {"untrusted": f"web resource ({scheme})"})
    if scheme in ("file", "db", "postgres", "mysql", "sqlite", "git", "mail", "imap"):
        return Labelled(frozenset({"private"}), {"private": f"{scheme} resource"})
    return Labelled(frozenset())


def config_labels(
    configured: tuple[FlowLabel, ...] | Mapping[str, tuple[FlowLabel, ...]] | None, name: str
) -> Labelled | None:
    """Labels the configuration gives `name` (a tool's own name or a URI), or None when it says nothing."""
    if configured is None:
        return None
    if isinstance(configured, tuple):
        chosen: tuple[FlowLabel, ...] | None = configured
    else:
        chosen = next((v for k, v in configured.items() if fnmatch.fnmatchcase(name, k)), None)
    if chosen is None:
        return None
    return Labelled(frozenset(chosen), dict.fromkeys(chosen, "configured"), source="config")


_SOURCES_KEPT = 3


@dataclass(slots=True)
class Conversation:
    """What one conversation has read so far: label -> the first few items that brought it in."""

    seen: dict[FlowLabel, list[str]] = field(default_factory=dict[FlowLabel, list[str]])
    last: float = 0.0

    def sources(self, label: FlowLabel) -> str:
        """The items that brought `label` in, quoted and comma-separated."""
        return ", ".join(f"'{s}'" for s in self.seen.get(label, ()))


class FlowTracker:
    """Conversations by key, forgotten after `window` seconds of inactivity; the oldest beyond `limit`."""

    def __init__(self, window: float, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.limit = limit
        self.clock = clock
        self._table: OrderedDict[str, Conversation] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def get(self, key: str) -> Conversation:
        """The conversation's current state (a fresh one after the window expired)."""
        now = self.clock()
        conv = self._table.get(key)
        if conv is None or now - conv.last > self.window:
            conv = Conversation(last=now)
            self._table[key] = conv
            while len(self._table) > self.limit:
                self._table.popitem(last=False)
        self._table.move_to_end(key)
        return conv

    def record(self, key: str, labels: Iterable[FlowLabel], source: str) -> None:
        """Note that `source` brought data of these labels into the conversation."""
        conv = self.get(key)
        conv.last = self.clock()
        for label in labels:
            if label != "egress":
                sources = conv.seen.setdefault(label, [])
                if source not in sources and len(sources) < _SOURCES_KEPT:
                    sources.append(source)

    def touch(self, key: str) -> None:
        """Keep the conversation alive (any call counts as activity)."""
        self.get(key).last = self.clock()
