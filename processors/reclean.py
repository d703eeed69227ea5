"""Cleaning indexed articles again, once their site's boilerplate or teasers are known.

A site's boilerplate is learnt from its pages, so the first pages of a site are indexed
with it; a "More from" block printed before the story it teases was seen is indexed too.
The clean stage notices the moment this becomes known (processors.paragraphs:
``newly_boilerplate``, ``teased_before``) and sends a ``Reclean`` request; the reclean
agent finds the articles in Elasticsearch, removes the paragraphs with ``apply``, and
re-indexes them under the same id. Entities found only in removed paragraphs go with
them; the others keep their paragraphs, renumbered, and their counts less the mentions
removed. Nothing is tagged again.

``apply`` is pure; ``find`` reads Elasticsearch. Applying a request twice, or to an
article already clean, changes nothing, so a request delivered twice is harmless. The
requests of a site are keyed by it, so one worker takes them one after the other, each
reading the articles as the one before left them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError, TransportError

from newsflow.records import EnrichedArticle, Entity, Reclean
from processors import index, stories
from processors.paragraphs import DEFAULT_POLICY, BoilerplatePolicy, normalize

log = logging.getLogger(__name__)

# Articles of a site looked for beyond those named: the pages of the stories named (a
# story under several URLs) and pages the clean stage could not name.
MAX_FOUND = 200


def from_document(source: Mapping[str, Any]) -> EnrichedArticle:
    """The article an index document was made from (processors.index.document): its text
    is the paragraphs joined by blank lines, and paragraphs never hold a line break."""
    text = source.get("text") or ""
    return EnrichedArticle.model_validate(
        {**source, "paragraphs": text.split("\n\n") if text else []}
    )


def apply(
    article: EnrichedArticle, request: Reclean, policy: BoilerplatePolicy = DEFAULT_POLICY
) -> EnrichedArticle | None:
    """The article without the request's boilerplate and teaser, or None if it has none
    of them (or would keep no paragraph at all: then it is left as it is)."""
    norms = [normalize(p) for p in article.paragraphs]
    drop = _to_drop(article, norms, request, policy)
    if not drop or len(drop) == len(norms):
        return None
    kept = [p for i, p in enumerate(article.paragraphs) if i not in drop]
    removed = article.removed.model_copy(
        update={"retroactive": article.removed.retroactive + len(drop)}
    )
    return article.model_copy(
        update={
            "paragraphs": kept,
            "removed": removed,
            "text_hash": stories.text_hash(kept),
            "entities": _entities(article, drop, kept),
        }
    )


def _to_drop(
    article: EnrichedArticle, norms: list[str], request: Reclean, policy: BoilerplatePolicy
) -> set[int]:
    boilerplate = {normalize(p) for p in request.boilerplate}
    drop = {i for i, n in enumerate(norms) if n in boilerplate}
    teaser = request.teaser
    if teaser is None:
        return drop
    headline = normalize(teaser.headline)
    if normalize(article.title or "") == headline:
        return drop  # the story itself, or a copy of it
    lines = set(teaser.lines)
    for i, norm in enumerate(norms):
        if norm != headline:
            continue
        drop.add(i)
        for j in range(i + 1, min(len(norms), i + 1 + policy.teaser_lines)):
            if norms[j] not in lines:
                break
            drop.add(j)
    return drop


def _entities(article: EnrichedArticle, drop: set[int], kept: list[str]) -> list[Entity]:
    renumber: dict[int, int] = {}
    for old in range(len(article.paragraphs)):
        if old not in drop:
            renumber[old] = len(renumber)
    text = "\n\n".join(kept)
    out = []
    for entity in article.entities:
        paragraphs = [renumber[i] for i in entity.paragraphs if i in renumber]
        if not paragraphs:
            continue
        forms = _mention(entity)
        gone = sum(
            len(forms.findall(article.paragraphs[i])) for i in entity.paragraphs if i in drop
        )
        first = forms.search(text)
        start = first.start() if first else _offset(kept, paragraphs[0])
        count = max(len(paragraphs), entity.count - gone)
        out.append(
            entity.model_copy(
                update={"paragraphs": paragraphs, "count": count, "first_offset": start}
            )
        )
    return sorted(out, key=lambda e: (-e.count, e.first_offset))


def _mention(entity: Entity) -> re.Pattern[str]:
    # Longest form first, so "Ingrid Falk" is one mention, not also one of "Falk".
    forms = sorted({entity.text, *entity.variants}, key=len, reverse=True)
    return re.compile("|".join(rf"(?<!\w){re.escape(f)}(?!\w)" for f in forms if f))


def _offset(paragraphs: Sequence[str], index: int) -> int:
    return sum(len(p) + 2 for p in paragraphs[:index])


# Rounds of writing and reading back: another writer (a worker that left the group but
# has not stopped yet, re-cleaning the same article) can take a version first, once or
# twice in a rebalance; more than this means something else is wrong.
MAX_ROUNDS = 5


@dataclass(frozen=True)
class Outcome:
    found: int  # articles the request concerns
    changed: int  # of them, cleaned again and re-indexed
    refused: list[index.Rejected]  # what Elasticsearch would not take
    missing: set[str]  # named, not indexed yet: to ask about again later
    # Each article changed: as it was found, and as last written.
    rewritten: list[tuple[EnrichedArticle, EnrichedArticle]] = field(default_factory=list)


async def run(
    es: AsyncElasticsearch,
    prefix: str,
    request: Reclean,
    wait_seconds: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
    *,
    poll: float = 1.0,
) -> Outcome:
    """Find the articles, clean them again and re-index them, until each as it is now in
    the index holds nothing of the request. ``Outcome.missing`` are the articles named
    that were not indexed within ``wait_seconds``.

    A write is kept only if its version is newer (processors.index.version); one that
    loses to a concurrent writer (409) is taken as done by ``index.write``. So every
    article written is read back by id, in real time, and cleaned again if what won still
    holds some of the request: a re-cleaning never overwrites another's, and is never lost
    to one."""
    found, missing = await find(es, prefix, request, wait_seconds, poll=poll)
    pending, last = found, dict[str, EnrichedArticle]()
    first = {a.article_id: a for a in found}
    refused: list[index.Rejected] = []
    for _ in range(MAX_ROUNDS):
        cleaned = [a for a in (apply(f, request, policy) for f in pending) if a is not None]
        if not cleaned:
            pairs = [(first[aid], a) for aid, a in last.items() if aid in first]
            return Outcome(len(found), len(last), refused, missing, pairs)
        refused += await index.write(es, prefix, cleaned)
        gone = {r.article.article_id for r in refused}
        written = [a for a in cleaned if a.article_id not in gone]
        last.update((a.article_id, a) for a in written)
        pending = await _read(es, prefix, written)
    raise RuntimeError(
        f"re-cleaning {request.site} for {request.requested_by}: articles still hold the "
        f"request after {MAX_ROUNDS} rounds of writing and reading back"
    )


async def _read(
    es: AsyncElasticsearch, prefix: str, articles: Sequence[EnrichedArticle]
) -> list[EnrichedArticle]:
    """The articles as the index holds them now."""
    return await _get(es, [(index.index_for(prefix, a), a.article_id) for a in articles])


async def _get(es: AsyncElasticsearch, where: Sequence[tuple[str, str]]) -> list[EnrichedArticle]:
    """The documents at (index, id), read by id: real time, unlike a search."""
    if not where:
        return []
    docs = [{"_index": name, "_id": doc_id} for name, doc_id in where]
    found = await _patiently(lambda: es.mget(docs=docs, realtime=True))
    return [from_document(d["_source"]) for d in found["docs"] if d.get("found")]


async def find(
    es: AsyncElasticsearch,
    prefix: str,
    request: Reclean,
    wait_seconds: float,
    *,
    poll: float = 1.0,
) -> tuple[list[EnrichedArticle], set[str]]:
    """The indexed articles the request may concern, and the ids it names that are not
    indexed yet (they may still be on their way through the stages behind this one).

    Those it names are waited for, ``wait_seconds`` at most: briefly, since a rebalance
    of the worker group waits for the message being processed; the caller asks again
    later for the missing ones. Besides them, the articles of the site fetched before the
    request that hold one of its paragraphs (a story's other URLs, pages it could not
    name)."""
    wanted = set(request.articles)
    deadline = time.monotonic() + wait_seconds
    while True:
        named = await _search(es, prefix, {"ids": {"values": sorted(wanted)}}, len(wanted))
        missing = wanted - {a.article_id for a in named}
        if not missing or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        poll = min(poll * 2, 10.0)
    phrases = [*request.boilerplate, *([request.teaser.headline] if request.teaser else [])]
    query = {
        "bool": {
            "filter": [
                {"term": {"site": request.site}},
                {"range": {"fetched_at": {"lt": request.before.isoformat()}}},
            ],
            "should": [{"match_phrase": {"text": p}} for p in phrases],
            "minimum_should_match": 1,
        }
    }
    more = await _search(es, prefix, query, MAX_FOUND)
    found = {a.article_id: a for a in [*named, *more]}
    return [found[i] for i in sorted(found)], missing - set(found)


async def _search(
    es: AsyncElasticsearch, prefix: str, query: dict[str, Any], size: int
) -> list[EnrichedArticle]:
    """The articles matching ``query``, each as it is now. A search sees the index as of
    its last refresh, which may be before the last re-cleaning of an article; so the
    search only finds them, and a get by id (real time) reads them: re-cleaning what a
    search returned would put back what the previous request removed."""
    if size == 0:
        return []
    try:
        resp = await _patiently(
            lambda: es.search(index=index.alias(prefix), query=query, size=size, source=False)
        )
    except NotFoundError:  # nothing indexed yet: no alias
        return []
    return await _get(es, [(h["_index"], h["_id"]) for h in resp["hits"]["hits"]])


async def _patiently(call: Callable[[], Awaitable[Any]], max_backoff: float = 30.0) -> Any:
    """``call()``, again with backoff for as long as Elasticsearch is unreachable or answers
    that it cannot now (processors.index.RETRYABLE), as the index stage does: a request is
    done only once it could be looked at, so a stopped node pauses re-cleaning."""
    delay = 0.5
    while True:
        try:
            return await call()
        except ApiError as err:
            if err.status_code not in index.RETRYABLE:
                raise
            log.warning("Elasticsearch answered %s; re-cleaning waits", err)
        except TransportError as err:
            log.warning("Elasticsearch unavailable (%s); re-cleaning waits", type(err).__name__)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff)
