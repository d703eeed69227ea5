"""Elasticsearch: the index template, the documents, and bulk writes that never drop.

Articles go to monthly indices ``<prefix>-articles-YYYY.MM`` (by publication date, else
fetch date, so a replayed message always lands in the same index), all behind the alias
``<prefix>-articles`` that searches and Kibana use. ``_id`` is the article_id, and the
version is external (``version``): a replay neither duplicates a document nor brings back
an older form of it.

The mapping uses only what the minimal Elasticsearch distribution has (the standard and
whitespace analyzers, no ingest pipelines, no scripts), so it works on both the local
stack and the Docker image; the stemmed search terms are made here (newsflow.analysis).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch, Elasticsearch, TransportError

from newsflow import analysis
from newsflow.records import EnrichedArticle, utcnow

log = logging.getLogger(__name__)

# Entity labels (CoreNLP's four, spaCy's OntoNotes ones) -> keyword fields for facets.
# Numbers and dates are never tagged.
ENTITY_FIELDS = {
    "MISC": "misc",
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
STEMS = {"type": "text", "analyzer": "whitespace"}
# Prefixes need neither positions nor lengths.
WORDS = {"type": "text", "analyzer": "whitespace", "index_options": "docs", "norms": False}
TERM_FIELDS = ("stems", "words")
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
                "title_repeats": {"type": "integer"},
                "in_page_repeats": {"type": "integer"},
                "short_repeats": {"type": "integer"},
                "near_repeats": {"type": "integer"},
                "boilerplate": {"type": "integer"},
                "teasers": {"type": "integer"},
                "retroactive": {"type": "integer"},
            }
        },
        "source": {"properties": {"kind": KEYWORD, "ref": KEYWORD}},
        # Where the page was read on the pages topic: what `newsflow audit` matches.
        "origin": {"properties": {"partition": {"type": "integer"}, "offset": {"type": "long"}}},
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
        # The search terms newsflow.analysis makes of each field (newsflow.query reads
        # them): stems for words and phrases, folded words for prefixes. Only split on
        # spaces here, so the node needs no analysis module of its own.
        "stems": {"properties": {name: STEMS for name in analysis.FIELDS}},
        "words": {"properties": {name: WORDS for name in analysis.FIELDS}},
    }
    return {
        "index_patterns": [f"{alias(prefix)}-*"],
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            # Unknown fields are kept in _source but not indexed: a newer record never breaks
            # an older index.
            # The terms are derived from the text: kept out of _source, which stays the
            # article (re-cleaning reads it back and derives them again).
            "mappings": {
                "dynamic": False,
                "_source": {"excludes": list(TERM_FIELDS)},
                "properties": properties,
            },
            "aliases": {alias(prefix): {}},
        },
        "priority": 200,
        "_meta": {"managed_by": "newsflow"},
    }


def ensure_template(es: Elasticsearch, prefix: str) -> None:
    """Install (or update) the index template; indices are created by the first write.

    Indices that exist already (made under an older template) get the fields added since:
    the template applies only to indices created after it, and a field missing from a
    mapping whose ``dynamic`` is off is kept in the source but neither searched nor
    aggregated. A field whose type changed cannot be updated in place; that is logged
    and the index keeps its mapping (reindexing is the way out)."""
    body = template_body(prefix)
    es.indices.put_index_template(name=alias(prefix), **body)
    if not es.indices.exists_alias(name=alias(prefix)):
        return
    properties = body["template"]["mappings"]["properties"]
    try:
        es.indices.put_mapping(index=alias(prefix), properties=properties)
    except ApiError as err:
        log.warning(
            "the mapping of the existing %s indices could not take newsflow's fields (%s); "
            "new indices have them, the existing ones keep theirs",
            alias(prefix),
            err,
        )


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
    doc.update(terms(doc))
    return doc


def terms(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The search terms of a document's text fields (the ``stems`` and ``words`` fields)."""
    stems, words = {}, {}
    for name in analysis.FIELDS:
        analysed = analysis.Analysed.of(doc.get(name))
        if analysed.stems:
            stems[name] = " ".join(analysed.stems)
            # Each word once: a prefix needs only which words there are (half the bytes).
            words[name] = " ".join(dict.fromkeys(analysed.words))
    return {"stems": stems, "words": words}


@dataclass(frozen=True)
class Rejected:
    """A document Elasticsearch refused for good (a mapping conflict, say)."""

    article: EnrichedArticle
    status: int
    reason: str


# Answers that can turn into a success later: the node is overloaded (429), restarting or
# behind a proxy that is (5xx), or too slow this time (408).
RETRYABLE = {408, 429, 500, 502, 503, 504}
TOO_LARGE = 413
VERSION_CONFLICT = 409
# Elasticsearch refuses a request larger than http.max_content_length (100 MB by default)
# as a whole (413), and answers 429 to one over its indexing pressure limit (10% of the
# heap: 80 MB on the test stack's 768 MB) every time it is sent. Pages of up to 5 MB of
# text, 200 to a batch, would go far over both in one request; 20 MB is a quarter of the
# test stack's pressure limit.
MAX_REQUEST_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class _Operation:
    """One document's bulk lines (action and source), serialised once for every request
    it is sent in: a retry or a split re-sends the same bytes."""

    article: EnrichedArticle
    lines: bytes


@dataclass(frozen=True)
class _RefusedWhole:
    """A bulk request refused as a whole, for a reason that will not pass with time."""

    status: int
    reason: str


async def write(
    es: AsyncElasticsearch,
    prefix: str,
    articles: Sequence[EnrichedArticle],
    *,
    max_backoff: float = 30.0,
    max_request_bytes: int = MAX_REQUEST_BYTES,
) -> list[Rejected]:
    """Bulk-index ``articles``; returns only what Elasticsearch refused permanently.

    What can pass later is retried with backoff for as long as it takes: no answer at all
    (connection refused or reset, timeouts) and 408, 429 and 5xx answers, for the whole
    request or for single documents. The caller acknowledges its Kafka messages only after
    this returns, so a slow or stopped Elasticsearch pauses the pipeline and loses nothing.

    What cannot pass as it is never stalls the caller. Requests are cut at
    ``max_request_bytes``; a request refused as a whole anyway (413 for its size, a 400 for
    one malformed document) is sent again in halves, down to single documents where it
    must, so that only the documents refused on their own are returned, with the status
    and reason, for the caller to dead-letter.
    """
    latest = {a.article_id: a for a in articles}  # one _id once per batch: the last copy
    rejected: list[Rejected] = []
    for request in _requests(prefix, latest.values(), max_request_bytes):
        rejected += await _settle(es, request, max_backoff)
    for r in rejected:
        log.warning(
            "Elasticsearch refused article %s (%s) for good (%d): %s",
            r.article.article_id,
            r.article.url,
            r.status,
            r.reason,
        )
    return rejected


def version(article: EnrichedArticle) -> int:
    """The document's external version: its fetch time in milliseconds, and below that
    how many paragraphs re-cleaning has removed from it (processors.reclean).

    Elasticsearch keeps a write only if its version is higher than the document's, so a
    message the index stage gets again after a crash (an older or the same version) never
    puts back what a re-cleaning removed meanwhile, while a page fetched again later (a
    live story updated) replaces its older version."""
    fetched_ms = int(article.fetched_at.timestamp() * 1000)
    return fetched_ms * RECLEAN_SLOTS + min(article.removed.retroactive, RECLEAN_SLOTS - 1)


# Versions left between two fetches of a page for its re-cleanings (a re-cleaning
# removes one paragraph at least).
RECLEAN_SLOTS = 1000


def _lines(prefix: str, article: EnrichedArticle) -> bytes:
    action = {
        "index": {
            "_index": index_for(prefix, article),
            "_id": article.article_id,
            "version": version(article),
            "version_type": "external",
        }
    }
    return b"%s\n%s\n" % (_json(action), _json(document(article)))


def _json(value: Any) -> bytes:
    # As the client's own serialiser writes it: compact UTF-8, a stray surrogate passed on
    # for Elasticsearch to refuse with that one document rather than failing the batch here.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


def _requests(
    prefix: str, articles: Iterable[EnrichedArticle], max_bytes: int
) -> Iterator[list[_Operation]]:
    """The articles in order, serialised as they are needed and cut into requests of at
    most ``max_bytes``, so that a batch is held in memory one request at a time. A document
    larger than that on its own is sent alone: the node may still take it, and if it does
    not, only that document is refused."""
    request: list[_Operation] = []
    size = 0
    for article in articles:
        op = _Operation(article, _lines(prefix, article))
        if request and size + len(op.lines) > max_bytes:
            yield request
            request, size = [], 0
        request.append(op)
        size += len(op.lines)
    if request:
        yield request


async def _settle(
    es: AsyncElasticsearch, operations: list[_Operation], max_backoff: float
) -> list[Rejected]:
    """Send ``operations`` until each is indexed or refused for good; returns the refused."""
    pending, delay = operations, 0.5
    rejected: list[Rejected] = []
    while pending:
        outcome = await _attempt(es, pending)
        if isinstance(outcome, _RefusedWhole):
            return rejected + await _split(es, pending, outcome, max_backoff)
        pending, refused = outcome
        rejected += refused
        if pending:
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
    return rejected


async def _split(
    es: AsyncElasticsearch,
    operations: list[_Operation],
    refusal: _RefusedWhole,
    max_backoff: float,
) -> list[Rejected]:
    """A request refused as a whole. A single document is refused for good; more are sent
    in two halves, each settled on its own: a half under the size limit goes through, and
    halving again isolates a document that makes any request holding it invalid."""
    if len(operations) == 1:
        return [Rejected(operations[0].article, refusal.status, refusal.reason)]
    log.warning(
        "Elasticsearch refused a request of %d documents as a whole (%s); sending it in halves",
        len(operations),
        refusal.reason[:200],
    )
    half = len(operations) // 2
    first = await _settle(es, operations[:half], max_backoff)
    return first + await _settle(es, operations[half:], max_backoff)


async def _attempt(
    es: AsyncElasticsearch, operations: list[_Operation]
) -> tuple[list[_Operation], list[Rejected]] | _RefusedWhole:
    """One bulk request: (what to retry, what was refused for good), or the refusal of the
    request as a whole."""
    # The client's ndjson serialiser sends bytes lines as they are; its annotation names
    # only the dict form.
    lines: Any = [op.lines for op in operations]
    try:
        resp = await es.bulk(operations=lines)
    except ApiError as err:  # an answer, for the whole request
        if err.status_code in RETRYABLE:
            log.warning("Elasticsearch answered %s; will retry", err)
            return operations, []
        return _RefusedWhole(err.status_code, _whole_reason(err, operations))
    except TransportError as err:  # no answer: refused, reset, timed out
        log.warning("Elasticsearch unavailable (%s: %s); will retry", type(err).__name__, err)
        return operations, []
    retry: list[_Operation] = []
    refused: list[Rejected] = []
    # Items come back in the order of the request.
    for op, item in zip(operations, resp["items"], strict=True):
        info = item["index"]
        status = int(info.get("status", 500))
        if status == VERSION_CONFLICT:
            continue  # the index holds this version or a newer one: done
        if status in RETRYABLE:
            retry.append(op)
        elif status >= 300:
            refused.append(Rejected(op.article, status, str(info.get("error"))[:2000]))
    if retry:
        log.warning("Elasticsearch asked to retry %d of %d documents", len(retry), len(operations))
    return retry, refused


def _whole_reason(err: ApiError, operations: list[_Operation]) -> str:
    size = sum(len(op.lines) for op in operations)
    if err.status_code == TOO_LARGE:  # answered with an empty body
        return f"request too large ({size} bytes; over http.max_content_length)"
    return f"{str(err)[:1900]} ({len(operations)} documents, {size} bytes)"
