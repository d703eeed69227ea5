"""index.write() against the real node: what it retries, what it splits, what it refuses.

Every refusal here is the node's own answer to a real request (a request over its
http.max_content_length, an _id over 512 bytes, a keyword over Lucene's term limit, a
flood-stage block); the client is the real one, recording only what it sends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from newsflow.records import EnrichedArticle
from newsflow.settings import Settings
from processors import index
from tests.test_index_and_deadletters import article

pytestmark = pytest.mark.stack

# The node's http.max_content_length (the default): a request over it is refused as a whole.
NODE_MAX_CONTENT = 100 * 2**20


class Recording(AsyncElasticsearch):
    """The real client; it notes the (_id, bytes) of each document of every bulk request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[list[tuple[str, int]]] = []

    async def bulk(self, *, operations: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.requests.append([_id_and_size(lines) for lines in operations])
        return await super().bulk(operations=operations, **kwargs)

    def ids(self) -> list[list[str]]:
        return [[doc_id for doc_id, _ in request] for request in self.requests]


def _id_and_size(lines: bytes) -> tuple[str, int]:
    action = json.loads(lines.split(b"\n", 1)[0])
    return action["index"]["_id"], len(lines)


def run_write(client: Recording, prefix: str, articles: list[EnrichedArticle], **kw: Any) -> Any:
    async def run() -> list[index.Rejected]:
        try:
            return await asyncio.wait_for(index.write(client, prefix, articles, **kw), 120)
        finally:
            await client.close()

    return asyncio.run(run())


def indexed(es: Any, prefix: str) -> dict[str, str]:
    es.indices.refresh(index=index.alias(prefix))
    hits = es.search(index=index.alias(prefix), size=100, source=["text"])["hits"]["hits"]
    return {hit["_id"]: hit["_source"]["text"] for hit in hits}


@pytest.fixture
def prefix(es: Any, index_factory: Callable[[str], str]) -> str:
    name = index_factory("nf")
    index.ensure_template(es, name)
    return name


def test_requests_are_cut_by_bytes_and_every_document_is_indexed(
    settings: Settings, es: Any, prefix: str
) -> None:
    words = " ".join(f"harbour{n}" for n in range(8000))  # about 80 KB of text
    articles = [article(n, paragraphs=[f"Day {n}.", words]) for n in range(10)]
    client = Recording(settings.elasticsearch_url)
    # A document's bulk lines (its text, and its search terms): two fit, three do not.
    one = max(len(index._lines(prefix, a)) for a in articles)
    limit = 2 * one + one // 2

    assert run_write(client, prefix, articles, max_request_bytes=limit) == []

    sizes = [sum(size for _, size in request) for request in client.requests]
    assert len(client.requests) == 5, sizes
    assert all(size <= limit for size in sizes), sizes
    assert [i for ids in client.ids() for i in ids] == [a.article_id for a in articles]
    assert indexed(es, prefix) == {a.article_id: a.text for a in articles}


# aiohttp warns about any body over 1 MB sent from bytes (it is copied in one go); the
# tests turn warnings into errors, which the client would report as a connection error.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
def test_a_request_over_the_node_limit_is_halved_and_an_oversized_document_refused(
    settings: Settings, es: Any, prefix: str
) -> None:
    huge = article(9, paragraphs=["x" * (NODE_MAX_CONTENT + 2**20)])
    small = [article(n) for n in (1, 2, 3)]
    client = Recording(settings.elasticsearch_url, request_timeout=60)

    # No byte cap of ours: the node itself refuses the first request (413) and each one
    # that still holds the huge document.
    [refused] = run_write(client, prefix, [*small, huge], max_request_bytes=2**40)

    assert client.ids() == [
        ["id-1", "id-2", "id-3", "id-9"],
        ["id-1", "id-2"],
        ["id-3", "id-9"],
        ["id-3"],
        ["id-9"],
    ]
    assert (refused.article.article_id, refused.status) == ("id-9", 413)
    assert "too large" in refused.reason
    assert sorted(indexed(es, prefix)) == ["id-1", "id-2", "id-3"]

    # With the default cap the huge document goes alone, and only it is refused.
    client = Recording(settings.elasticsearch_url, request_timeout=60)
    [refused] = run_write(client, prefix, [article(4), huge])
    assert client.ids() == [["id-4"], ["id-9"]]
    assert (refused.article.article_id, refused.status) == ("id-9", 413)


def test_a_request_refused_as_a_whole_is_split_down_to_the_culprit(
    settings: Settings, es: Any, prefix: str
) -> None:
    # An _id over 512 bytes fails the validation of the whole bulk request (400), not
    # just its own item.
    culprit = article(4, article_id="x" * 600)
    articles = [article(1), article(2), article(3), culprit, article(5), article(6)]
    client = Recording(settings.elasticsearch_url)

    [refused] = run_write(client, prefix, articles)

    long_id = culprit.article_id
    assert client.ids() == [
        ["id-1", "id-2", "id-3", long_id, "id-5", "id-6"],
        ["id-1", "id-2", "id-3"],
        [long_id, "id-5", "id-6"],
        [long_id],
        ["id-5", "id-6"],
    ]
    assert (refused.article.article_id, refused.status) == (long_id, 400)
    assert "too long" in refused.reason
    assert sorted(indexed(es, prefix)) == ["id-1", "id-2", "id-3", "id-5", "id-6"]


def test_a_document_refused_on_its_own_is_returned_and_the_rest_indexed(
    settings: Settings, es: Any, prefix: str
) -> None:
    # "authors" is a keyword: one term, and Lucene refuses a term over 32766 bytes.
    bad = article(2, authors=["A" * 40_000])
    client = Recording(settings.elasticsearch_url)

    [refused] = run_write(client, prefix, [article(1), bad, article(3)])

    assert client.ids() == [["id-1", "id-2", "id-3"]]  # neither retried nor split
    assert (refused.article.article_id, refused.status) == ("id-2", 400)
    assert "authors" in refused.reason
    assert sorted(indexed(es, prefix)) == ["id-1", "id-3"]


def test_a_blocked_index_is_retried_until_it_takes_the_document(
    settings: Settings, es: Any, prefix: str
) -> None:
    march = f"{index.alias(prefix)}-2026.03"
    es.indices.create(index=march)  # from the template
    # The flood-stage block: Elasticsearch answers 429 for each document until it is lifted.
    es.indices.put_settings(index=march, settings={"index.blocks.read_only_allow_delete": True})
    april = article(2, published_at=datetime(2026, 4, 2, tzinfo=UTC))
    client = Recording(settings.elasticsearch_url)

    async def run() -> list[index.Rejected]:
        try:
            task = asyncio.ensure_future(
                index.write(client, prefix, [article(1), april], max_backoff=0.2)
            )
            while len(client.requests) < 3:
                await asyncio.sleep(0.05)
            assert not task.done()
            es.indices.put_settings(
                index=march, settings={"index.blocks.read_only_allow_delete": None}
            )
            return await asyncio.wait_for(task, 30)
        finally:
            await client.close()

    assert asyncio.run(run()) == []
    ids = client.ids()
    assert ids[0] == ["id-1", "id-2"]
    assert all(request == ["id-1"] for request in ids[1:])  # only the blocked one again
    assert sorted(indexed(es, prefix)) == ["id-1", "id-2"]


def test_an_unreachable_node_is_retried_not_rejected() -> None:
    client = Recording("http://127.0.0.1:1", request_timeout=1)

    async def run() -> None:
        try:
            await asyncio.wait_for(index.write(client, "nf", [article(1)], max_backoff=0.2), 3)
        finally:
            await client.close()

    with pytest.raises(TimeoutError):
        asyncio.run(run())
    assert len(client.requests) >= 2  # sent again, and never given up on
