"""Searching the articles: the query newsflow's users run most, with highlighted snippets,
entity facets and syndicated copies collapsed into their story."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FACETS = ("persons", "organizations", "places", "site_name")


BOLD = ("\x1b[1m", "\x1b[0m")
PLAIN = ("«", "»")  # for output that is not a terminal


def query_body(
    text: str, *, size: int = 5, collapse: bool = True, markers: tuple[str, str] = BOLD
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "size": size,
        "query": {"multi_match": {"query": text, "fields": ["title^3", "description^2", "text"]}},
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


def render(result: Result, query: str) -> str:
    lines = [f'search "{query}": {result.total} matching article(s), by story:']
    for hit in result.hits:
        lines.append(f"  * {hit.title}  [{hit.site}]")
        lines.append(f"    {hit.url}")
        lines.extend(f"      ...{' '.join(s.split())}..." for s in hit.snippets)
        if hit.copies:
            lines.append(
                f"    + {len(hit.copies)} more cop{'y' if len(hit.copies) == 1 else 'ies'} "
                f"of this story: {', '.join(hit.copies)}"
            )
    for name, buckets in result.facets.items():
        if buckets:
            lines.append(f"  {name}: " + ", ".join(f"{k} ({n})" for k, n in buckets))
    return "\n".join(lines)
