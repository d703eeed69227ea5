"""Searching the articles: the query language of newsflow.query with filters, ranking,
paging, facets, syndicated copies collapsed into their story, and snippets marked by the
same terms the query matched. ``newsflow search`` is a thin shell around ``run``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from newsflow import query as q
from newsflow.analysis import tokens

FACETS = ("persons", "organizations", "places", "site_name", "language")
ENTITY_KINDS = ("persons", "organizations", "places")

BOLD = ("\x1b[1m", "\x1b[0m")
PLAIN = ("«", "»")  # for output that is not a terminal: a file, a pipe, a log
MAX_SIZE = 100  # stories per page: more is a report, not a search (Kibana exports those)
# Elasticsearch's index.max_result_window: from + size may not pass it.
MAX_WINDOW = 10_000
SNIPPET_CHARS = 160
SNIPPETS = 2
WIDEN = 40  # characters a passage may grow by to end on a word boundary
Sort = Literal["relevance", "newest"]

_SOURCE = [
    "title",
    "url",
    "site",
    "site_name",
    "language",
    "published_at",
    "fetched_at",
    "cluster_id",
    "duplicate_of",
    "duplicate_kind",
    "description",
    "text",
    *ENTITY_KINDS,
]


def markers_for(stream: Any) -> tuple[str, str]:
    """Bold on a terminal; elsewhere printable marks, never escape sequences in a file."""
    isatty = getattr(stream, "isatty", None)
    return BOLD if isatty is not None and isatty() else PLAIN


@dataclass(frozen=True)
class Request:
    """One search. ``sort`` None ranks words by relevance and lists ``*`` newest first."""

    text: str = q.EVERYTHING
    filters: q.Filters = field(default_factory=q.Filters)
    sort: Sort | None = None
    page: int = 1
    size: int = 5
    collapse: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.size <= MAX_SIZE:
            raise q.QueryError(f"--size must be 1 to {MAX_SIZE}, not {self.size}")
        if self.page < 1:
            raise q.QueryError(f"--page counts from 1, not {self.page}")
        if self.page * self.size > MAX_WINDOW:
            raise q.QueryError(
                f"page {self.page} of {self.size} goes past the first {MAX_WINDOW} hits "
                "Elasticsearch pages through: narrow the search (--since, --site) instead"
            )
        self.node  # noqa: B018 - a malformed query fails here, before any request

    @cached_property
    def node(self) -> q.Node:
        return q.parse(self.text)

    @property
    def everything(self) -> bool:
        return isinstance(self.node, q.All)

    @property
    def order(self) -> Sort:
        return self.sort or ("newest" if self.everything else "relevance")

    def body(self) -> dict[str, Any]:
        newest = [
            {"published_at": {"order": "desc", "missing": "_last"}},
            {"fetched_at": {"order": "desc"}},
        ]
        body: dict[str, Any] = {
            "from": (self.page - 1) * self.size,
            "size": self.size,
            "query": {"bool": {"must": [q.to_es(self.node)], "filter": self.filters.to_es()}},
            "sort": newest if self.order == "newest" else ["_score", *newest],
            "track_total_hits": True,
            "aggs": {
                # Counted on every shard (a monthly index has one) well past the top six,
                # so that the six and their counts are right across months.
                **{f: {"terms": {"field": f, "size": 6, "shard_size": 200}} for f in FACETS},
                "stories": {"cardinality": {"field": "cluster_id"}},
            },
            "_source": _SOURCE,
        }
        if self.collapse:
            body["collapse"] = {
                "field": "cluster_id",
                "inner_hits": {
                    "name": "copies",
                    "size": 5,
                    "_source": ["site", "site_name", "url"],
                    "sort": [{"fetched_at": "asc"}],
                },
            }
        return body


@dataclass
class Copy:
    id: str
    url: str
    site: str


@dataclass
class Hit:
    id: str
    title: str
    url: str
    site: str
    snippets: list[str]
    copies: list[Copy] = field(default_factory=list)
    copies_total: int = 0
    site_name: str | None = None
    language: str | None = None
    published_at: str | None = None
    fetched_at: str | None = None
    story: str | None = None
    duplicate_of: str | None = None
    entities: dict[str, list[str]] = field(default_factory=dict)
    score: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "title": self.title,
                "url": self.url,
                "site": self.site,
                "site_name": self.site_name,
                "language": self.language,
                "published_at": self.published_at,
                "fetched_at": self.fetched_at,
                "snippets": self.snippets,
                "entities": self.entities,
                "story": self.story,
                "duplicate_of": self.duplicate_of,
                "copies": [vars(c) for c in self.copies],
                "copies_total": self.copies_total,
                "score": self.score,
            },
            ensure_ascii=False,
        )


@dataclass
class Result:
    total: int  # articles matching
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]
    stories: int | None = None  # stories matching (approximate past 3000)
    request: Request = field(default_factory=Request)


def run(es: Any, index: str, request: Request, markers: tuple[str, str] = PLAIN) -> Result:
    return parse(es.search(index=index, **request.body()), request, markers)


def parse(resp: Any, request: Request, markers: tuple[str, str] = PLAIN) -> Result:
    hits = []
    for h in resp["hits"]["hits"]:
        src = h["_source"]
        inner = h.get("inner_hits", {}).get("copies", {}).get("hits", {})
        others = [c for c in inner.get("hits", []) if c["_id"] != h["_id"]]
        total_inner = inner.get("total", {}).get("value", 0) if inner else 0
        hits.append(
            Hit(
                id=h["_id"],
                title=src.get("title") or "(untitled)",
                url=src["url"],
                site=src.get("site_name") or src["site"],
                snippets=snippets(src.get("text") or "", request.node, markers),
                copies=[
                    Copy(
                        c["_id"],
                        c["_source"]["url"],
                        c["_source"].get("site_name") or c["_source"]["site"],
                    )
                    for c in others
                ],
                copies_total=max(0, total_inner - 1),
                site_name=src.get("site_name"),
                language=src.get("language"),
                published_at=src.get("published_at"),
                fetched_at=src.get("fetched_at"),
                story=src.get("cluster_id"),
                duplicate_of=src.get("duplicate_of"),
                entities={k: src.get(k) or [] for k in ENTITY_KINDS},
                score=h.get("_score"),
            )
        )
    aggs = resp.get("aggregations", {})
    facets = {
        name: [(b["key"], b["doc_count"]) for b in aggs[name]["buckets"]]
        for name in FACETS
        if name in aggs
    }
    stories = aggs.get("stories", {}).get("value")
    return Result(resp["hits"]["total"]["value"], hits, facets, stories, request)


# -- snippets -------------------------------------------------------------------------------


def marks(text: str, node: q.Node) -> list[tuple[int, int]]:
    """Character spans of ``text`` the query matched: its words, prefixes and phrases
    (not what it leaves out), analysed as the index analyses them; marked words only
    spaces apart are one span."""
    found = list(tokens(text))
    leaves = list(q.leaves(node))
    if not found or not leaves:
        return []
    hit = [False] * len(found)
    stems = tuple(t.stem for t in found)
    for leaf in leaves:
        if isinstance(leaf, q.Term):
            for i, t in enumerate(found):
                hit[i] |= t.stem == leaf.stem
        elif isinstance(leaf, q.Prefix):
            for i, t in enumerate(found):
                hit[i] |= t.word.startswith(leaf.word)
        elif leaf.slop == 0:
            n = len(leaf.stems)
            for i in range(len(found) - n + 1):
                if stems[i : i + n] == leaf.stems:
                    for j in range(i, i + n):
                        hit[j] = True
        else:  # a sloppy phrase: the words of each match
            for i in q.phrase_positions(stems, leaf.stems, leaf.slop):
                hit[i] = True
    spans: list[tuple[int, int]] = []
    for t, h in zip(found, hit, strict=True):
        if not h:
            continue
        if spans and not text[spans[-1][1] : t.start].strip():
            spans[-1] = (spans[-1][0], t.end)  # «Port of Kessling», not «Port» «of» «Kessling»
        else:
            spans.append((t.start, t.end))
    return spans


def snippets(
    text: str,
    node: q.Node,
    markers: tuple[str, str] = PLAIN,
    size: int = SNIPPET_CHARS,
    count: int = SNIPPETS,
) -> list[str]:
    """Up to ``count`` passages of about ``size`` characters, those with the most marked
    words first, shown in the text's order, each mark whole (never cut by the passage's
    end). A text with no mark (the match was in the title) gives its opening."""
    text = text or ""
    if not text.strip():
        return []
    spans = marks(text, node)
    if not spans:
        return [_passage(text, 0, size, [], markers)]

    def window(span: tuple[int, int]) -> tuple[int, int]:
        start = max(0, span[0] - size // 3)  # a little before the mark, more after it
        return start, start + size

    def weight(span: tuple[int, int]) -> tuple[int, int]:
        a, b = window(span)
        return sum(1 for o in spans if a <= o[0] < b), -span[0]

    chosen: list[tuple[int, int]] = []
    remaining = list(spans)
    while remaining and len(chosen) < count:
        best = window(max(remaining, key=weight))
        chosen.append(best)
        remaining = [
            s for s in remaining if all(window(s)[0] >= b or window(s)[1] <= a for a, b in chosen)
        ]
    chosen.sort()
    return [_passage(text, a, b - a, spans, markers) for a, b in chosen]


def _passage(
    text: str, start: int, size: int, spans: list[tuple[int, int]], markers: tuple[str, str]
) -> str:
    """The passage from about ``start``, ``size`` characters long, at word boundaries
    where there is one near (a long URL has none), and never through a mark."""
    for back in range(start, max(0, start - WIDEN) - 1, -1):
        if back == 0 or text[back - 1].isspace():
            start = back
            break
    end = min(len(text), start + size)
    for ahead in range(end, min(len(text), end + WIDEN) + 1):
        if ahead == len(text) or text[ahead].isspace():
            end = ahead
            break
    for a, b in spans:
        if a < start < b:
            start = a
        if a < end < b:
            end = b
    out, pos = [], start
    for a, b in spans:
        if a >= start and b <= end:
            out += [text[pos:a], markers[0], text[a:b], markers[1]]
            pos = b
    out.append(text[pos:end])
    passage = " ".join("".join(out).split())
    return ("…" if start > 0 else "") + passage + ("…" if end < len(text) else "")


# -- text output ----------------------------------------------------------------------------


def heading(result: Result) -> str:
    req = result.request
    what = "every article" if req.everything else repr(req.text)
    narrowed = req.filters.describe()
    if narrowed:
        what += f" ({narrowed})"
    if not result.hits:
        if result.total:
            return f"search {what}: no more hits: page {req.page} is past the last"
        return f"search {what}: no article matches"
    order = "newest first" if req.order == "newest" else "best first"
    stories = (
        f" in {result.stories} stor{'y' if result.stories == 1 else 'ies'}"
        if (req.collapse and result.stories is not None)
        else ""
    )
    first = (req.page - 1) * req.size + 1
    shown = f"{first}-{first + len(result.hits) - 1}"
    unit = "stories" if req.collapse else "articles"
    return f"search {what}: {result.total} article(s){stories}, {order}; {unit} {shown}:"


def render(result: Result) -> str:
    lines = [heading(result)]
    for hit in result.hits:
        when = (hit.published_at or hit.fetched_at or "")[:16].replace("T", " ")
        lines.append(f"  * {hit.title}  [{hit.site}{', ' + when if when else ''}]")
        lines.append(f"    {hit.url}")
        lines.extend(f"      {s}" for s in hit.snippets)
        if hit.copies_total:
            listed = ", ".join(c.url for c in hit.copies)
            more = hit.copies_total - len(hit.copies)
            lines.append(
                f"    + {hit.copies_total} more cop{'y' if hit.copies_total == 1 else 'ies'} "
                f"of this story: {listed}{f' and {more} more' if more > 0 else ''}"
            )
    if result.hits:
        for name, buckets in result.facets.items():
            if buckets:
                lines.append(f"  {name}: " + ", ".join(f"{k} ({n})" for k, n in buckets))
    return "\n".join(lines)
