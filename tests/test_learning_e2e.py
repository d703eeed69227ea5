"""Labels learnt across articles (processors.name_labels) through the whole pipeline on the
real stack: pages produced onto Kafka, a real worker process, the votes, the settled labels
and the indexed articles read back from Kafka and Elasticsearch.

The articles are the test's own. Three call "Talmora" a place, and the tagger agrees in
each; the fourth says "Talmora said on Tuesday it would raise prices", and the tagger alone
calls it a person there. Learning settles at three votes, so:

* the first article delivered three times votes once: nothing is settled after it;
* a worker that starts afresh (no local state) recovers the votes from the table's
  changelog, so two more articles settle "Talmora" as a place;
* the fourth article is then indexed with Talmora as a place, and votes with its own
  label (a person), never the learnt one.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import pytest

from newsflow.records import NameLabel, NameVote, RawPage, SourceKind, decode
from newsflow.settings import Settings
from newsflow.topics import Topics, group_lag
from processors.entities import Tagger
from processors.index import alias
from tests import drills
from tests.conftest import Process, read_topic

pytestmark = pytest.mark.stack

NAME = "talmora"  # the table's key of "Talmora" (name_labels.key)
VOTES = 3

ARTICLES = {
    "bridge": (
        "A new bridge opens in Talmora",
        "The mayor of Talmora, Greta Lind, opened a new bridge across the river on Monday, "
        "two years after the old crossing was closed for repairs.",
        "Traffic into Talmora is expected to ease once the bridge carries buses as well as "
        "cars, the council's transport office said in a statement.",
        "The works cost more than the council had planned, and the final bill will be "
        "published with the annual accounts in the spring.",
    ),
    "hotels": (
        "Hotels report a record summer",
        "Hotels in Talmora reported record bookings this summer, with most rooms taken "
        "from June until the end of September.",
        "Visitors travelled to Talmora from across the region, many of them on the new "
        "night train that began running in May.",
        "Owners said staff were hard to find and that wages had risen faster than prices "
        "over the season.",
    ),
    "treaty": (
        "Water agreement signed",
        "Talmora signed the agreement on Friday after months of talks over the river's "
        "water, which three towns downstream also draw on.",
        "Farmers in Talmora will be allowed to take less water in dry months, and the "
        "towns will share the cost of a new reservoir.",
        "The agreement runs for ten years and can be renewed once both sides have "
        "reviewed how much water was taken.",
    ),
    "prices": (
        "Prices to rise",
        "Talmora said on Tuesday it would raise prices by five percent from January, "
        "blaming the cost of energy and transport.",
        "Talmora expects profits to fall this year, and it will publish its results at "
        "the end of the month.",
        "Customers have until the end of December to buy at the old prices, the notice said.",
    ),
}


def _page(slug: str) -> RawPage:
    title, *paragraphs = ARTICLES[slug]
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    doc = (
        f"<!doctype html><html lang='en'><head><title>{html.escape(title)}</title></head>"
        f"<body><article><h1>{html.escape(title)}</h1>{body}</article></body></html>"
    )
    # Each article on a site of its own: no paragraph is another's boilerplate.
    url = f"https://{slug}.talmora.example/news/{slug}"
    return drills.page(url, doc.encode(), "text/html; charset=utf-8", SourceKind.URLS)


def _label_of(es: Any, s: Settings, article_id: str) -> str | None:
    index = alias(s.topic_prefix)
    if not es.indices.exists_alias(name=index):
        return None
    es.indices.refresh(index=index)
    hits = es.search(index=index, query={"ids": {"values": [article_id]}})["hits"]["hits"]
    if not hits:
        return None
    labels = [e["label"] for e in hits[0]["_source"]["entities"] if e["text"] == "Talmora"]
    assert len(labels) == 1, hits[0]["_source"]["entities"]
    return str(labels[0])


def _votes(s: Settings) -> list[NameVote]:
    found = [decode(NameVote, m.value) for m in read_topic(s, Topics.from_settings(s).names)]
    return [v for v in found if v.name == NAME]


def _settled(s: Settings) -> list[str | None]:
    """The labels topic's records for the name, in order (None: a tombstone)."""
    records = read_topic(s, Topics.from_settings(s).labels)
    return [
        decode(NameLabel, m.value).label if m.value is not None else None
        for m in records
        if m.key == NAME.encode()
    ]


def _settle(s: Settings, es: Any, pages: list[RawPage], worker: Process) -> None:
    """Wait until the pages are indexed and the names agent has taken every vote."""
    topics = Topics.from_settings(s)
    for p in pages:
        # Bound now: the check is called later, by wait_for.
        def indexed(aid: str = p.article_id) -> bool:
            return _label_of(es, s, aid) is not None

        drills.wait_for(indexed, 300, p.url, worker)
    drills.wait_for(
        lambda: group_lag(s, topics.group, topics.names) == 0,
        120,
        "the names agent",
        worker,
    )


@pytest.mark.timeout(900)
def test_a_name_most_articles_call_a_place_is_shown_as_one(
    pipeline: Settings, es: Any, tmp_path: Path
) -> None:
    s = pipeline
    pages = {slug: _page(slug) for slug in ARTICLES}
    # The tagger alone: a place in three articles, a person in the fourth. Without this
    # the test would show nothing learnt.
    own = drills.undisturbed(list(pages.values()), Tagger()).entities
    alone = {
        slug: [e["label"] for e in own[p.article_id] if e["text"] == "Talmora"]
        for slug, p in pages.items()
    }
    assert alone == {"bridge": ["LOC"], "hotels": ["LOC"], "treaty": ["LOC"], "prices": ["PERSON"]}

    learn = {"NEWSFLOW_NER_LEARN_VOTES": str(VOTES), "NEWSFLOW_NER_LEARN_SHARE": "0.75"}
    first = drills.worker(s, tmp_path / "first.log", tmp_path / "first")
    first.start(**learn)
    try:
        drills.produce(s, [pages["bridge"]] * 3)
        _settle(s, es, [pages["bridge"]], first)
        # Three deliveries of one article reached the names agent as three votes...
        bridge = pages["bridge"].article_id
        assert [v.article_id for v in _votes(s)] == [bridge] * 3
        # ...and counted as one: three votes would have settled the label.
        assert _settled(s) == []
    finally:
        first.stop()

    # A worker with no local state: the votes so far come back from the changelog.
    second = drills.worker(s, tmp_path / "second.log", tmp_path / "second")
    second.start(**learn)
    try:
        drills.produce(s, [pages["hotels"], pages["treaty"]])
        _settle(s, es, [pages["hotels"], pages["treaty"]], second)
        assert _settled(s) == ["LOC"], second.tail()
        # Every worker follows the labels topic, polling it every second: give this one
        # a few seconds to read the new label before the article that needs it arrives.
        time.sleep(5)
        drills.produce(s, [pages["prices"]])
        _settle(s, es, [pages["prices"]], second)
    finally:
        second.stop()

    assert _label_of(es, s, pages["prices"].article_id) == "LOC"
    for slug in ("bridge", "hotels", "treaty"):
        assert _label_of(es, s, pages[slug].article_id) == "LOC"
    # The article voted with what it says itself, not with what it was shown as.
    prices = [v.label for v in _votes(s) if v.article_id == pages["prices"].article_id]
    assert prices == ["PERSON"]
    # One place vote against one person vote out of five: the label stays settled.
    assert _settled(s) == ["LOC"]
