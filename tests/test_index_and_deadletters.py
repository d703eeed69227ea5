"""The indexer against the real node (template, idempotent ids, refusals, an unreachable
node), and dead letters replayed through the real broker."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from kafka import KafkaConsumer, KafkaProducer

from newsflow import deadletter
from newsflow.records import EnrichedArticle, Entity, Source, SourceKind
from newsflow.settings import Settings
from processors import index

pytestmark = pytest.mark.stack


def article(n: int, **changes: Any) -> EnrichedArticle:
    fields: dict[str, Any] = {
        "article_id": f"id-{n}",
        "url": f"https://news.example/{n}",
        "canonical_url": f"https://news.example/{n}",
        "site": "news.example",
        "title": f"Harbour strike day {n}",
        "fetched_at": datetime(2026, 3, 9, tzinfo=UTC),
        "published_at": datetime(2026, 3, 9, 8, tzinfo=UTC),
        "language": "en",
        "paragraphs": [f"Dockers in Kessling walked out for day {n}.", "Talks resume Monday."],
        "text_hash": f"h{n}",
        "cluster_id": "id-1",
        "source": Source(kind=SourceKind.URLS),
        "entities": [
            Entity(text="Kessling", label="GPE", count=1, first_offset=11, paragraphs=[0])
        ],
    }
    fields.update(changes)
    return EnrichedArticle(**fields)


def test_write_is_idempotent_and_searchable(
    settings: Settings, es: Any, index_factory: Callable[[str], str]
) -> None:
    prefix = index_factory("nf")
    index.ensure_template(es, prefix)
    client = AsyncElasticsearch(settings.elasticsearch_url)

    async def run() -> list[index.Rejected]:
        try:
            first = await index.write(client, prefix, [article(1), article(2)])
            again = await index.write(client, prefix, [article(1), article(2)])  # a replay
            return first + again
        finally:
            await client.close()

    assert asyncio.run(run()) == []
    es.indices.refresh(index=index.alias(prefix))
    assert es.count(index=index.alias(prefix))["count"] == 2
    assert list(es.indices.get(index=index.alias(prefix))) == [f"{prefix}-articles-2026.03"]
    hit = es.search(
        index=index.alias(prefix),
        query={
            "bool": {
                "filter": {"term": {"places": "Kessling"}},
                "must": {"match": {"text": "Kessling"}},
            }
        },
        highlight={"fields": {"text": {}}},
    )["hits"]["hits"]
    assert len(hit) == 2
    assert "<em>Kessling</em>" in hit[0]["highlight"]["text"][0]


def test_an_older_version_written_again_never_replaces_a_re_cleaned_document(
    settings: Settings, es: Any, index_factory: Callable[[str], str]
) -> None:
    """The index stage may get an article again after a crash, once re-cleaning has
    removed paragraphs from it: the re-cleaned document stays. A page fetched later
    replaces it."""
    prefix = index_factory("nf")
    index.ensure_template(es, prefix)
    client = AsyncElasticsearch(settings.elasticsearch_url)
    original = article(1)
    recleaned = original.model_copy(
        update={
            "paragraphs": original.paragraphs[:1],
            "removed": original.removed.model_copy(update={"retroactive": 1}),
        }
    )
    later = original.model_copy(
        update={"fetched_at": datetime(2026, 3, 9, 0, 0, 1, tzinfo=UTC), "paragraphs": ["New."]}
    )

    def text() -> str:
        doc = es.get(index=index.alias(prefix) + "-2026.03", id="id-1")["_source"]
        return str(doc["text"])

    async def write(a: EnrichedArticle) -> list[index.Rejected]:
        return await index.write(client, prefix, [a])

    async def run() -> list[str]:
        try:
            seen = []
            for a in (original, recleaned, original, recleaned, later, recleaned):
                assert await write(a) == []  # a conflict is no refusal: it is done
                seen.append(text())
            return seen
        finally:
            await client.close()

    first, cleaned = original.text, recleaned.text
    assert asyncio.run(run()) == [first, cleaned, cleaned, cleaned, "New.", "New."]


def test_indices_made_under_an_older_template_get_the_fields_added_since(
    settings: Settings, es: Any, index_factory: Callable[[str], str]
) -> None:
    prefix = index_factory("nf")
    body = copy.deepcopy(index.template_body(prefix))
    removed = body["template"]["mappings"]["properties"]["removed"]["properties"]
    del removed["retroactive"]  # as an index made before re-cleaning existed
    es.indices.put_index_template(name=index.alias(prefix), **body)

    def recleaned(n: int) -> EnrichedArticle:
        return article(1).model_copy(
            update={"removed": article(1).removed.model_copy(update={"retroactive": n})}
        )

    async def write(a: EnrichedArticle) -> list[index.Rejected]:
        async with AsyncElasticsearch(settings.elasticsearch_url) as client:
            return await index.write(client, prefix, [a])

    assert asyncio.run(write(recleaned(2))) == []

    def total() -> float:
        es.indices.refresh(index=index.alias(prefix))
        aggs = {"r": {"sum": {"field": "removed.retroactive"}}}
        resp = es.search(index=index.alias(prefix), size=0, aggs=aggs)
        return float(resp["aggregations"]["r"]["value"])

    assert total() == 0  # in the source, not in the mapping
    index.ensure_template(es, prefix)
    assert asyncio.run(write(recleaned(3))) == []  # the next re-cleaning of it
    assert total() == 3


def test_a_document_elasticsearch_refuses_is_returned_not_retried(
    settings: Settings, es: Any, index_factory: Callable[[str], str]
) -> None:
    prefix = index_factory("nf")
    index.ensure_template(es, prefix)
    # A mapping conflict: the monthly index exists with "title" as a date field.
    es.indices.create(
        index=f"{prefix}-articles-2026.03", mappings={"properties": {"title": {"type": "date"}}}
    )
    client = AsyncElasticsearch(settings.elasticsearch_url)

    async def run() -> list[index.Rejected]:
        try:
            return await asyncio.wait_for(index.write(client, prefix, [article(3)]), 30)
        finally:
            await client.close()

    [refused] = asyncio.run(run())
    assert refused.status == 400
    assert refused.article.article_id == "id-3"


def test_an_unreachable_node_is_waited_for_not_dropped() -> None:
    # Nothing listens on port 9: write() keeps retrying instead of returning or raising.
    client = AsyncElasticsearch("http://127.0.0.1:9", request_timeout=1)

    async def run() -> None:
        try:
            await asyncio.wait_for(index.write(client, "nf", [article(4)], max_backoff=0.5), 4)
        finally:
            await client.close()

    with pytest.raises(TimeoutError):
        asyncio.run(run())


def test_replay_sends_dead_letters_back_once_with_their_original_headers(
    settings: Settings, topic_factory: Callable[..., str]
) -> None:
    source, dlq = topic_factory("src"), topic_factory("dlq")
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    origin = deadletter.Origin(source, 0, 41, [("newsflow-source", b"feed")])
    headers = deadletter.failure_headers("clean", ValueError("bad page"), origin, url="https://x")
    producer.send(dlq, key=b"site", value=b"original bytes", headers=headers).get(timeout=30)
    producer.close()

    found = deadletter.list_stages(settings, {"clean": dlq}, limit=5)
    [letter] = found["clean"].letters
    assert (letter.stage, letter.error_class, letter.error) == ("clean", "ValueError", "bad page")
    assert (letter.topic, letter.offset, letter.value) == (source, 41, b"original bytes")

    group = f"replay-{dlq}"
    assert deadletter.replay(settings, dlq, group, dry_run=True).count == 1
    assert deadletter.replay(settings, dlq, group).sent == {source: 1}
    assert deadletter.replay(settings, dlq, group).count == 0  # not twice

    consumer = KafkaConsumer(
        source,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    [replayed] = list(consumer)
    consumer.close()
    assert (replayed.key, replayed.value) == (b"site", b"original bytes")
    assert replayed.headers == [("newsflow-source", b"feed")]


def test_search_collapses_copies_of_a_story_and_facets_entities(
    settings: Settings, es: Any, index_factory: Callable[[str], str]
) -> None:
    from newsflow import search

    prefix = index_factory("nf")
    index.ensure_template(es, prefix)
    copies = [
        article(1),
        article(2, duplicate_of="id-1", duplicate_kind="near"),
        article(3, cluster_id="id-3"),
    ]
    client = AsyncElasticsearch(settings.elasticsearch_url)

    async def run() -> list[index.Rejected]:
        try:
            return await index.write(client, prefix, copies)
        finally:
            await client.close()

    assert asyncio.run(run()) == []
    es.indices.refresh(index=index.alias(prefix))
    result = search.run(es, index.alias(prefix), search.Request("Kessling dockers"))
    assert result.total == 3 and result.stories == 2
    assert sorted(len(h.copies) for h in result.hits) == [0, 1]
    assert any("\u00abKessling\u00bb" in s for h in result.hits for s in h.snippets)
    assert ("Kessling", 3) in result.facets["places"]
    text = search.render(result)
    assert "1 more copy of this story" in text
    uncollapsed = search.Request("Kessling dockers", collapse=False)
    assert len(search.run(es, index.alias(prefix), uncollapsed).hits) == 3
