"""Elasticsearch: the index template, the documents, and bulk writes that never drop.

Articles go to monthly indices ``<prefix>-articles-YYYY.MM`` (by publication date, else
fetch date, so a replayed message always lands in the same index), all behind the alias
``<prefix>-articles`` that searches and Kibana use. ``_id`` is the article_id: a replay
overwrites instead of duplicating.

The mapping uses only what the minimal Elasticsearch distribution has (the standard
analyzer, no ingest pipelines, no scripts), so it works on both the local stack and the
Docker image.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

from newsflow.records import EnrichedArticle, utcnow

log = logging.getLogger(__name__)

# spaCy labels -> keyword fields for facets. Numbers and dates are never tagged.
ENTITY_FIELDS = {
    "PERSON": "persons",
    "ORG": "organizations",
    "GPE": "places",
    "LOC": "places",
    "NORP": "groups",
    "EVENT": "events",
    "FAC": "facilities",
    "PRODUCT": "products",
    "WORK_OF_ART": "works",
    "LAW": "laws",
}

KEYWORD = {"type": "keyword"}
TEXT_WITH_KEYWORD = {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}}


def alias(prefix: str) -> str:
    return f"{prefix}-articles"


def index_for(prefix: str, article: EnrichedArticle) -> str:
    when = article.published_at or article.fetched_at
    return f"{alias(prefix)}-{when:%Y.%m}"


def template_body(prefix: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "article_id": KEYWORD,
        "url": KEYWORD,
        "canonical_url": KEYWORD,
        "site": KEYWORD,
        "site_name": KEYWORD,
        "title": TEXT_WITH_KEYWORD,
        # Offsets in the index make highlighting of long articles fast and exact.
        "text": {"type": "text", "index_options": "offsets"},
        "description": {"type": "text"},
        "authors": KEYWORD,
        "language": KEYWORD,
        "language_detected": {"type": "boolean"},
        "categories": KEYWORD,
        "tags": KEYWORD,
        "published_at": {"type": "date"},
        "fetched_at": {"type": "date"},
        "indexed_at": {"type": "date"},
        "cluster_id": KEYWORD,
        "duplicate_of": KEYWORD,
        "duplicate_kind": KEYWORD,
        "is_duplicate": {"type": "boolean"},
        "paragraph_count": {"type": "integer"},
        "ner_skipped": KEYWORD,
        "removed": {
            "properties": {
                "in_page_repeats": {"type": "integer"},
                "boilerplate": {"type": "integer"},
            }
        },
        "source": {"properties": {"kind": KEYWORD, "ref": KEYWORD}},
        "entities": {
            "type": "nested",
            "properties": {
                "text": KEYWORD,
                "label": KEYWORD,
                "count": {"type": "integer"},
                "first_offset": {"type": "integer"},
                "paragraphs": {"type": "integer"},
            },
        },
        **{field: KEYWORD for field in set(ENTITY_FIELDS.values())},
    }
    return {
        "index_patterns": [f"{alias(prefix)}-*"],
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            # Unknown fields are kept in _source but not indexed: a newer record never breaks
            # an older index.
            "mappings": {"dynamic": False, "properties": properties},
            "aliases": {alias(prefix): {}},
        },
        "priority": 200,
        "_meta": {"managed_by": "newsflow"},
    }


def ensure_template(es: Elasticsearch, prefix: str) -> None:
    """Install (or update) the index template; indices are created by the first write."""
    body = template_body(prefix)
    es.indices.put_index_template(name=alias(prefix), **body)


def document(article: EnrichedArticle) -> dict[str, Any]:
    doc = article.model_dump(
        mode="json", exclude={"paragraphs", "schema_version", "declared_canonical_url"}
    )
    doc["text"] = article.text
    doc["paragraph_count"] = len(article.paragraphs)
    doc["is_duplicate"] = article.duplicate_of is not None
    doc["indexed_at"] = utcnow().isoformat()
    for entity in article.entities:
        field = ENTITY_FIELDS.get(entity.label)
        if field:
            doc.setdefault(field, []).append(entity.text)
    for entity_field in doc.keys() & set(ENTITY_FIELDS.values()):
        doc[entity_field] = sorted(set(doc[entity_field]))
    return doc


@dataclass(frozen=True)
class Rejected:
    """A document Elasticsearch refused for good (a mapping conflict, say)."""

    article: EnrichedArticle
    status: int
    reason: str


RETRYABLE = {408, 429, 500, 502, 503, 504}


async def write(
    es: AsyncElasticsearch,
    prefix: str,
    articles: Sequence[EnrichedArticle],
    *,
    max_backoff: float = 30.0,
) -> list[Rejected]:
    """Bulk-index ``articles``; returns only what Elasticsearch refused permanently.

    Connection failures, timeouts and 429/5xx answers are retried with backoff for as long
    as it takes: the caller acknowledges its Kafka messages only after this returns, so a
    slow or stopped Elasticsearch pauses the pipeline and loses nothing.
    """
    pending = {a.article_id: a for a in articles}
    delay = 0.5
    rejected: list[Rejected] = []
    while pending:
        pending, refused = await _attempt(es, prefix, pending)
        rejected.extend(refused)
        if pending:
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
    return rejected


async def _attempt(
    es: AsyncElasticsearch, prefix: str, pending: dict[str, EnrichedArticle]
) -> tuple[dict[str, EnrichedArticle], list[Rejected]]:
    """One bulk request: (what to retry, what was refused for good)."""
    operations: list[dict[str, Any]] = []
    for a in pending.values():
        operations.append({"index": {"_index": index_for(prefix, a), "_id": a.article_id}})
        operations.append(document(a))
    try:
        resp = await es.bulk(operations=operations)
    except Exception as err:  # refused, timed out, 5xx for the whole request: retry it all
        log.warning("Elasticsearch unavailable (%s: %s); will retry", type(err).__name__, err)
        return pending, []
    retry: dict[str, EnrichedArticle] = {}
    refused: list[Rejected] = []
    for item in resp["items"]:
        info = item["index"]
        article = pending[info["_id"]]
        status = int(info.get("status", 500))
        if status in RETRYABLE:
            retry[article.article_id] = article
        elif status >= 300:
            refused.append(Rejected(article, status, str(info.get("error"))[:2000]))
    if retry:
        log.warning("Elasticsearch asked to retry %d of %d documents", len(retry), len(pending))
    return retry, refused
