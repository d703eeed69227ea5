"""The reclean agent's work against the real Elasticsearch: finding the articles,
waiting for those not indexed yet, and two re-cleanings of one article at once (a worker
that left the group still finishing one while its successor takes the next)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from newsflow.records import Reclean
from newsflow.settings import Settings
from processors import index, reclean
from tests.test_reclean import ARTICLE, ENTITIES, enriched

pytestmark = pytest.mark.stack

P0, P1, P2 = ARTICLE.paragraphs
BEFORE = ARTICLE.fetched_at + timedelta(minutes=1)


def request(*boilerplate: str, articles: list[str] | None = None) -> Reclean:
    return Reclean(
        site=ARTICLE.site,
        articles=["a1"] if articles is None else articles,
        boilerplate=list(boilerplate),
        before=BEFORE,
        requested_by="a9",
    )


def stored(es: Any, prefix: str) -> dict[str, Any]:
    name = index.index_for(prefix, enriched(ARTICLE))
    return dict(es.get(index=name, id="a1")["_source"])


def test_two_re_cleanings_of_one_article_at_once_both_hold(
    settings: Settings, es: Any, index_factory: Callable[[str], str]
) -> None:
    prefix = index_factory("nf")
    index.ensure_template(es, prefix)

    async def run() -> list[reclean.Outcome]:
        async with AsyncElasticsearch(settings.elasticsearch_url) as client:
            assert await index.write(client, prefix, [enriched(ARTICLE, ENTITIES)]) == []
            es.indices.refresh(index=index.alias(prefix))  # a search finds it
            return list(
                await asyncio.gather(
                    reclean.run(client, prefix, request(P1), 5),
                    reclean.run(client, prefix, request(P2), 5),
                )
            )

    outcomes = asyncio.run(run())
    assert [o.refused for o in outcomes] == [[], []]
    doc = stored(es, prefix)
    assert doc["text"] == P0
    assert doc["removed"]["retroactive"] == 2
    assert [e["text"] for e in doc["entities"]] == ["Ingrid Falk"]


def test_articles_named_are_waited_for_and_missing_ones_reported(
    settings: Settings, es: Any, index_factory: Callable[[str], str]
) -> None:
    prefix = index_factory("nf")
    index.ensure_template(es, prefix)

    async def run() -> reclean.Outcome:
        async with AsyncElasticsearch(settings.elasticsearch_url) as client:
            late = asyncio.create_task(_index_later(client, prefix))
            outcome = await reclean.run(
                client, prefix, request(P1, articles=["a1", "never"]), wait_seconds=8, poll=0.2
            )
            await late
            return outcome

    outcome = asyncio.run(run())
    assert (outcome.found, outcome.changed, outcome.refused) == (1, 1, [])
    assert outcome.missing == {"never"}  # for the agent to ask about again, later
    assert stored(es, prefix)["text"] == f"{P0}\n\n{P2}"


async def _index_later(client: AsyncElasticsearch, prefix: str) -> None:
    await asyncio.sleep(1.5)  # the request came before its article was indexed
    assert await index.write(client, prefix, [enriched(ARTICLE)]) == []
