"""Searching the articles: the query newsflow's users run most, with highlighted snippets,
entity facets and syndicated copies collapsed into their story."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FACETS = ("persons", "organizations", "places", "site_name")


BOLD = ("\x1b[1m", "\x1b[0m")
PLAIN = ("«", "»")  # for output that is not a terminal: a file, a pipe, a log
MAX_SIZE = 100  # stories per search: more is a report, not a search (Kibana exports those)
EVERYTHING = "*"


def markers_for(stream: Any) -> tuple[str, str]:
    """Bold on a terminal; elsewhere printable marks, never escape sequences in a file."""
    isatty = getattr(stream, "isatty", None)
    return BOLD if isatty is not None and isatty() else PLAIN


def query_body(
    text: str, *, size: int = 5, collapse: bool = True, markers: tuple[str, str] = PLAIN
) -> dict[str, Any]:
    """The search request; ``*`` (or nothing) asks for every article, newest first."""
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be 1 to {MAX_SIZE}, not {size}")
    everything = text.strip() in ("", EVERYTHING)
    body: dict[str, Any] = {
        "size": size,
        "query": (
            {"match_all": {}}
            if everything
            else {"multi_match": {"query": text, "fields": ["title^3", "description^2", "text"]}}
        ),
        "highlight": {
            "fields": {"text": {"fragment_size": 160, "number_of_fragments": 2}},
            "pre_tags": [markers[0]],
            "post_tags": [markers[1]],
        },
        "aggs": {f: {"terms": {"field": f, "size": 6}} for f in FACETS},
        "_source": [
            "title",
            "url",
            "site",
            "site_name",
            "published_at",
            "cluster_id",
            "duplicate_of",
            "duplicate_kind",
        ],
    }
    if everything:
        body["sort"] = [{"published_at": {"order": "desc", "missing": "_last"}}]
    if collapse:
        # One hit per story; the copies are counted with a cardinality-free inner_hits.
        body["collapse"] = {
            "field": "cluster_id",
            "inner_hits": {"name": "copies", "size": 5, "_source": ["site", "url"]},
        }
    return body


@dataclass
class Hit:
    title: str
    url: str
    site: str
    snippets: list[str]
    copies: list[str] = field(default_factory=list)


@dataclass
class Result:
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]


def parse(resp: Any) -> Result:
    hits = []
    for h in resp["hits"]["hits"]:
        src = h["_source"]
        copies = h.get("inner_hits", {}).get("copies", {}).get("hits", {}).get("hits", [])
        hits.append(
            Hit(
                title=src.get("title") or "(untitled)",
                url=src["url"],
                site=src.get("site_name") or src["site"],
                snippets=h.get("highlight", {}).get("text", []),
                copies=[c["_source"]["url"] for c in copies if c["_id"] != h["_id"]],
            )
        )
    facets = {
        name: [(b["key"], b["doc_count"]) for b in agg["buckets"]]
        for name, agg in resp.get("aggregations", {}).items()
    }
    return Result(resp["hits"]["total"]["value"], hits, facets)


def balanced(snippet: str, markers: tuple[str, str]) -> str:
    """A snippet whose every opening marker is closed: an unclosed bold escape would bold
    the rest of the terminal, an unclosed « reads as a typo."""
    start, end = markers
    opened = snippet.count(start) - snippet.count(end)
    return snippet + end * max(0, opened)


def render(result: Result, query: str, markers: tuple[str, str] = PLAIN) -> str:
    if not result.hits:
        return f'search "{query}": no article matches'
    if query.strip() in ("", EVERYTHING):
        heading = f"all {result.total} article(s), newest first, by story:"
    else:
        heading = f"{result.total} matching article(s), by story:"
    lines = [f'search "{query}": {heading}']
    for hit in result.hits:
        lines.append(f"  * {hit.title}  [{hit.site}]")
        lines.append(f"    {hit.url}")
        lines.extend(f"      ...{balanced(' '.join(s.split()), markers)}..." for s in hit.snippets)
        if hit.copies:
            lines.append(
                f"    + {len(hit.copies)} more cop{'y' if len(hit.copies) == 1 else 'ies'} "
                f"of this story: {', '.join(hit.copies)}"
            )
    for name, buckets in result.facets.items():
        if buckets:
            lines.append(f"  {name}: " + ", ".join(f"{k} ({n})" for k, n in buckets))
    return "\n".join(lines)
