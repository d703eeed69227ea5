"""The query language of ``newsflow search`` and of standing queries (``newsflow watch``):
parsed once, then either compiled to an Elasticsearch query or matched against one
article in the stream. Both sides read the same terms (newsflow.analysis), so a watch
fires for exactly the articles a search with its query finds.

The syntax is Elasticsearch's simple query string, which analysts know from Kibana:

    port strike            both words (AND is the default: a search narrows as it grows)
    "port strike"          the phrase; "port strike"~3 lets 3 positions move
    strike | walkout       either word (OR)
    strike -football       not the second (NOT)
    +strike +port          both (+ is AND, as in Elasticsearch)
    strik*                 words starting with "strik"
    (strike | walkout) port    grouping

``AND``, ``OR`` and ``NOT`` in capitals work too, as in Lucene's syntax. ``|`` binds more
loosely than AND, as in every boolean notation (``a b | c`` is ``(a b) | c``); Lucene's
own simple query parser reads mixed operators left to right instead. Words are stemmed
(``strikes`` finds ``strike``), phrases too; a prefix is matched on the unstemmed word.
Unlike Elasticsearch, which ignores what it cannot parse, a malformed query is an error
that says where: a search that silently means something else is worse than none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from newsflow.analysis import FIELDS, Analysed, fold, tokens

EVERYTHING = "*"


class QueryError(ValueError):
    """A query or filter that cannot be read; the message says where and what to do."""


# -- the tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    stem: str
    word: str  # as typed (folded): what messages show


@dataclass(frozen=True)
class Prefix:
    word: str


@dataclass(frozen=True)
class Phrase:
    stems: tuple[str, ...]
    slop: int = 0


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class All:
    pass


Node = Term | Prefix | Phrase | And | Or | Not | All
Leaf = Term | Prefix | Phrase


# -- parsing --------------------------------------------------------------------------------

_OPERATORS = {"AND": "+", "OR": "|", "NOT": "-"}
_LEX = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<phrase>"(?P<inner>[^"]*)"(?:~(?P<slop>\d+))?)
    | (?P<open_quote>")
    | (?P<paren>[()])
    | (?P<op>[+|])
    | (?P<neg>-(?=\S|$))
    | (?P<word>[^\s"()|]+)
    """,
    re.VERBOSE,
)
MAX_SLOP = 50


@dataclass(frozen=True)
class _Lexeme:
    kind: str  # word, phrase, (, ), +, |, -
    text: str
    at: int  # column, from 1
    slop: int = 0


def _lex(text: str) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    pos = 0
    while pos < len(text):
        m = _LEX.match(text, pos)
        if m is None:  # pragma: no cover - every character matches one branch
            raise QueryError(f"cannot read the query at column {pos + 1}")
        at = pos + 1
        pos = m.end()
        if m.lastgroup == "space":
            continue
        if m.group("open_quote"):
            raise QueryError(
                f'the quote at column {at} is never closed: close the phrase with " '
                "(or remove the quote)"
            )
        if m.group("phrase"):
            slop = int(m.group("slop") or 0)
            if slop > MAX_SLOP:
                raise QueryError(f"a phrase's ~ is at most {MAX_SLOP} (column {at})")
            out.append(_Lexeme("phrase", m.group("inner"), at, slop))
        elif m.group("paren"):
            out.append(_Lexeme(m.group("paren"), m.group("paren"), at))
        elif m.group("op"):
            out.append(_Lexeme(m.group("op"), m.group("op"), at))
        elif m.group("neg"):
            out.append(_Lexeme("-", "-", at))
        else:
            word = m.group("word")
            if word in _OPERATORS:
                out.append(_Lexeme(_OPERATORS[word], word, at))
            elif re.search(r"~\d*$", word):
                raise QueryError(
                    f"fuzzy words ({word} at column {at}) are not supported: list the "
                    "spellings with | instead (colour | color)"
                )
            else:
                out.append(_Lexeme("word", word, at))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.lexemes = _lex(text)
        self.i = 0

    def peek(self) -> _Lexeme | None:
        return self.lexemes[self.i] if self.i < len(self.lexemes) else None

    def take(self) -> _Lexeme:
        lexeme = self.lexemes[self.i]
        self.i += 1
        return lexeme

    def parse(self) -> Node | None:
        node = self.either()
        extra = self.peek()
        if extra is not None:  # only a ) can stop the top level early
            raise QueryError(
                f"the ) at column {extra.at} closes nothing: remove it or add its ( before it"
            )
        return node

    def either(self) -> Node | None:
        first = self.peek()
        if first is not None and first.kind == "|":
            raise QueryError(
                f"{first.text} at column {first.at} needs something to search for before it"
            )
        children = [self.both()]
        while (lexeme := self.peek()) is not None and lexeme.kind == "|":
            self.take()
            if self.peek() is None or self.peek().kind in ("|", ")"):  # type: ignore[union-attr]
                raise QueryError(
                    f"{lexeme.text} at column {lexeme.at} needs something to search for after it"
                )
            children.append(self.both())
        return _combine(Or, children)

    def both(self) -> Node | None:
        children: list[Node | None] = []
        while (lexeme := self.peek()) is not None and lexeme.kind not in ("|", ")"):
            if lexeme.kind == "+":
                self.take()
                following = self.peek()
                if following is None or following.kind in ("|", ")", "+"):
                    raise QueryError(
                        f"{lexeme.text} at column {lexeme.at} needs something to search for "
                        "after it"
                    )
                continue
            children.append(self.unary())
        return _combine(And, children)

    def unary(self) -> Node | None:
        lexeme = self.take()
        if lexeme.kind == "-":
            following = self.peek()
            if following is None or following.kind in ("|", ")", "+"):
                raise QueryError(
                    f"{lexeme.text} at column {lexeme.at} needs something to leave out after it"
                )
            inner = self.unary()
            return None if inner is None else Not(inner)
        if lexeme.kind == "(":
            inner = self.either()
            close = self.peek()
            if close is None or close.kind != ")":
                raise QueryError(
                    f"the ( at column {lexeme.at} is never closed: add a ) (or remove the ()"
                )
            self.take()
            return inner
        if lexeme.kind == "phrase":
            return _phrase(lexeme.text, lexeme.slop)
        return _word(lexeme.text)


def _combine(kind: type[And] | type[Or], children: Iterable[Node | None]) -> Node | None:
    kept: list[Node] = []
    for child in children:
        if child is None:
            continue
        # (a b) c is a b c: flat trees make smaller Elasticsearch queries and plainer tests.
        kept.extend(child.children if isinstance(child, kind) else (child,))
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else kind(tuple(kept))


def _phrase(text: str, slop: int) -> Node | None:
    stems = tuple(t.stem for t in tokens(text))
    if not stems:
        return None
    if len(stems) == 1:
        return Term(stems[0], fold(text.strip()))
    return Phrase(stems, slop)


def _word(text: str) -> Node | None:
    if text.endswith("*"):
        found = [t.word for t in tokens(text.rstrip("*"))]
        if not found:
            return None
        prefix: Node = Prefix(found[-1])
        if len(found) == 1:
            return prefix
        # "covid-1*": the words before as a phrase, the last as a prefix.
        return And((_phrase(" ".join(found[:-1]), 0), prefix))  # type: ignore[arg-type]
    return _phrase(text, 0)


def parse(text: str) -> Node:
    """The query's tree; ``*`` (or nothing but spaces) is every article."""
    if text.strip() in ("", EVERYTHING):
        return All()
    node = _Parser(text).parse()
    if node is None:
        raise QueryError(
            f"nothing to search for in {text!r}: give at least one word or number "
            "(punctuation alone is not searched), or * for every article"
        )
    return node


def leaves(node: Node, *, positive: bool = True) -> Iterator[Leaf]:
    """The words, prefixes and phrases an article matching ``node`` may be found by (those
    under a NOT are not): what a snippet marks."""
    if isinstance(node, Term | Prefix | Phrase):
        if positive:
            yield node
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from leaves(child, positive=positive)
    elif isinstance(node, Not):
        yield from leaves(node.child, positive=not positive)


# -- Elasticsearch --------------------------------------------------------------------------


def _fields(kind: str) -> list[str]:
    return [f"{kind}.{name}^{weight:g}" for name, weight in FIELDS.items()]


def to_es(node: Node) -> dict[str, Any]:
    """The Elasticsearch query for ``node``, over the terms processors.index stores."""
    if isinstance(node, All):
        return {"match_all": {}}
    if isinstance(node, Term):
        return {"multi_match": {"query": node.stem, "fields": _fields("stems")}}
    if isinstance(node, Phrase):
        return {
            "multi_match": {
                "query": " ".join(node.stems),
                "type": "phrase",
                "slop": node.slop,
                "fields": _fields("stems"),
            }
        }
    if isinstance(node, Prefix):
        return {
            "bool": {
                "should": [
                    {"prefix": {f"words.{name}": {"value": node.word, "boost": weight}}}
                    for name, weight in FIELDS.items()
                ],
                "minimum_should_match": 1,
            }
        }
    if isinstance(node, Not):
        return {"bool": {"must_not": [to_es(node.child)]}}
    if isinstance(node, And):
        must = [to_es(c) for c in node.children if not isinstance(c, Not)]
        must_not = [to_es(c.child) for c in node.children if isinstance(c, Not)]
        body: dict[str, Any] = {}
        if must:
            body["must"] = must
        if must_not:
            body["must_not"] = must_not
        return {"bool": body}
    return {"bool": {"should": [to_es(c) for c in node.children], "minimum_should_match": 1}}


# -- matching one article -------------------------------------------------------------------


@dataclass
class Doc:
    """An article as the index stores it (processors.index.document), with its fields
    analysed on first use."""

    source: Mapping[str, Any]
    _analysed: dict[str, Analysed] = field(default_factory=dict)

    def field(self, name: str) -> Analysed:
        if name not in self._analysed:
            stems = (self.source.get("stems") or {}).get(name)
            words = (self.source.get("words") or {}).get(name)
            if stems is not None and words is not None:  # the terms the index was sent
                self._analysed[name] = Analysed(tuple(words.split()), tuple(stems.split()))
            else:  # a document read back (its _source leaves the terms out)
                self._analysed[name] = Analysed.of(self.source.get(name))
        return self._analysed[name]

    def fields(self) -> Iterator[Analysed]:
        return (self.field(name) for name in FIELDS)


def matches(node: Node, doc: Doc) -> bool:
    """Whether Elasticsearch would return ``doc`` for ``to_es(node)``."""
    if isinstance(node, All):
        return True
    if isinstance(node, Term):
        return any(node.stem in f.stem_set for f in doc.fields())
    if isinstance(node, Prefix):
        return any(w.startswith(node.word) for f in doc.fields() for w in f.words)
    if isinstance(node, Phrase):
        return any(phrase_at(f.stems, node.stems, node.slop) for f in doc.fields())
    if isinstance(node, Not):
        return not matches(node.child, doc)
    if isinstance(node, And):
        return all(matches(c, doc) for c in node.children)
    return any(matches(c, doc) for c in node.children)


def phrase_at(stems: tuple[str, ...], phrase: tuple[str, ...], slop: int) -> bool:
    """Lucene's phrase match. Each phrase term i is taken at a position p_i of the text;
    the match holds when the spread of p_i - i is at most ``slop`` (0: consecutive, in
    order; "a b"~2 also finds "b a"), a repeated term taking distinct positions."""
    where: dict[str, list[int]] = {}
    for pos, s in enumerate(stems):
        if s in phrase:
            where.setdefault(s, []).append(pos)
    if any(term not in where for term in phrase):
        return False
    if slop == 0:
        first = where[phrase[0]]
        later = [set(where[t]) for t in phrase[1:]]
        return any(all(p + i + 1 in later[i] for i in range(len(later))) for p in first)
    starts = sorted({p - i for i, t in enumerate(phrase) for p in where[t]})
    return any(_window(where, phrase, m, slop) is not None for m in starts)


def _window(
    where: dict[str, list[int]], phrase: tuple[str, ...], m: int, slop: int
) -> list[int] | None:
    """Positions for each term i in [m + i, m + i + slop], repeats distinct, or None. The
    windows of one term's repeats are equally long and in order, so taking the earliest
    free position for each in turn finds an assignment whenever one exists."""
    taken: dict[str, int] = {}
    chosen = []
    for i, term in enumerate(phrase):
        low = max(m + i, taken.get(term, -1) + 1)
        found = next((p for p in where[term] if low <= p <= m + i + slop), None)
        if found is None:
            return None
        taken[term] = found
        chosen.append(found)
    return chosen


def phrase_positions(stems: tuple[str, ...], phrase: tuple[str, ...], slop: int) -> set[int]:
    """The positions of ``stems`` that take part in a match of ``phrase``: what a
    snippet marks."""
    where: dict[str, list[int]] = {}
    for pos, s in enumerate(stems):
        if s in phrase:
            where.setdefault(s, []).append(pos)
    if any(term not in where for term in phrase):
        return set()
    marked: set[int] = set()
    for m in sorted({p - i for i, t in enumerate(phrase) for p in where[t]}):
        found = _window(where, phrase, m, slop)
        if found is not None:
            marked.update(found)
    return marked


# -- filters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What narrows a query besides its words. Values of one filter are alternatives
    (``--site a --site b``: either); different filters all apply. Entity names match
    the facets' names, in any case."""

    sites: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    persons: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    stories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise QueryError(
                f"--since ({self.since:%Y-%m-%d %H:%M}) is not before --until "
                f"({self.until:%Y-%m-%d %H:%M}): swap them"
            )

    def to_es(self) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        if self.sites:
            clauses.append(
                _any(
                    [{"term": {"site": s.lower()}} for s in self.sites]
                    + [_term_ci("site_name", s) for s in self.sites]
                )
            )
        if self.languages:
            clauses.append({"terms": {"language": [lang.lower() for lang in self.languages]}})
        for name, values in self.entity_filters():
            clauses.extend(_term_ci(name, v) for v in values)
        if self.stories:
            clauses.append({"terms": {"cluster_id": list(self.stories)}})
        if self.since or self.until:
            bounds = {}
            if self.since:
                bounds["gte"] = _es_time(self.since)
            if self.until:
                bounds["lt"] = _es_time(self.until)
            # An article without a publication date is placed by its fetch, as its index is.
            clauses.append(
                _any(
                    [
                        {"range": {"published_at": bounds}},
                        {
                            "bool": {
                                "must_not": [{"exists": {"field": "published_at"}}],
                                "filter": [{"range": {"fetched_at": bounds}}],
                            }
                        },
                    ]
                )
            )
        return clauses

    def entity_filters(self) -> list[tuple[str, tuple[str, ...]]]:
        return [
            ("persons", self.persons),
            ("organizations", self.organizations),
            ("places", self.places),
        ]

    def matches(self, doc: Doc) -> bool:
        src = doc.source
        if self.sites:
            wanted = {s.lower() for s in self.sites}
            name = _lower(src.get("site_name") or "")
            if src.get("site") not in wanted and name not in {_lower(s) for s in self.sites}:
                return False
        if self.languages and src.get("language") not in {x.lower() for x in self.languages}:
            return False
        for name, values in self.entity_filters():
            have = {_lower(v) for v in src.get(name) or ()}
            if any(_lower(v) not in have for v in values):
                return False
        if self.stories and src.get("cluster_id") not in self.stories:
            return False
        if self.since or self.until:
            when = _when(src)
            if when is None:
                return False
            if self.since and when < _ms(self.since):
                return False
            if self.until and when >= _ms(self.until):
                return False
        return True

    def describe(self) -> str:
        parts = [f"site {' or '.join(self.sites)}"] if self.sites else []
        if self.languages:
            parts.append(f"language {' or '.join(self.languages)}")
        for name, values in self.entity_filters():
            parts += [f"{name[:-1] if name != 'places' else 'place'} {v}" for v in values]
        if self.stories:
            parts.append(f"story {' or '.join(self.stories)}")
        if self.since:
            parts.append(f"since {self.since:%Y-%m-%d %H:%M}")
        if self.until:
            parts.append(f"until {self.until:%Y-%m-%d %H:%M}")
        return ", ".join(parts)


def _any(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def _lower(text: str) -> str:
    """Lowercase as Elasticsearch's case-insensitive term query compares: letter by letter,
    never one letter into two (Python's casefold makes "Straße" "strasse"; the node does
    not)."""
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


def _term_ci(name: str, value: str) -> dict[str, Any]:
    return {"term": {name: {"value": value, "case_insensitive": True}}}


def _ms(when: datetime) -> datetime:
    """Elasticsearch keeps dates to the millisecond: compare as it does."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _es_time(when: datetime) -> str:
    return _ms(when).astimezone(UTC).isoformat(timespec="milliseconds")


def _when(src: Mapping[str, Any]) -> datetime | None:
    raw = src.get("published_at") or src.get("fetched_at")
    if raw is None:
        return None
    when = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return _ms(when if when.tzinfo else when.replace(tzinfo=UTC))


def _date_only(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(
    text: str, *, option: str, end_of_day: bool = False, now: datetime | None = None
) -> datetime:
    """``--since``/``--until``: an ISO date or time (UTC unless it says), or an age such as
    ``90m``, ``6h``, ``2d``, ``1w`` before now. A date alone given to --until means the end
    of that day: ``--until 2026-11-30`` includes the 30th."""
    text = text.strip()
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text.lower())
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(
            f"{option} {text!r} is not a time: give a date (2026-11-30), a time "
            "(2026-11-30T14:00, UTC unless it has an offset) or an age (90m, 6h, 2d, 1w)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if end_of_day and _date_only(text):
        when += timedelta(days=1)
    return when
