"""The whole pipeline on the real stack, undisturbed: real pages from ../shared/data and
the demo sites produced onto Kafka, a real Faust worker process, and the result read back
from Elasticsearch. The same pipeline under faults is in tests/test_drills.py."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from newsflow import query, watches
from newsflow.demo.sites import EXPECTED
from newsflow.records import Alert, Filtered, RawPage, Watch, decode, utcnow
from newsflow.settings import Settings
from newsflow.topics import Topics, group_lag, recleans_left
from processors import paragraphs
from processors.faust_overrides import CLEAN_MARK
from processors.index import alias
from processors.stages import PipelineOptions, extract
from tests import drills
from tests.conftest import Process, read_topic

pytestmark = pytest.mark.stack


def _wait_for(
    es: Any, index: str, ids: set[str], worker: Process, target: int, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    found = 0
    while time.monotonic() < deadline:
        assert worker.running, worker.tail()
        if es.indices.exists_alias(name=index):
            es.indices.refresh(index=index)
            found = es.count(index=index, query={"ids": {"values": sorted(ids)}})["count"]
            if found >= target:
                return int(found)
        time.sleep(1)
    raise AssertionError(f"{found} of {target} indexed in {timeout}s\n{worker.tail()}")


@pytest.mark.timeout(900)  # a spaCy load on a 2-core machine
def test_pages_become_searchable_articles_exactly_once(
    pipeline_settings: Settings, es: Any, tmp_path: Path
) -> None:
    s = pipeline_settings
    topics = Topics.from_settings(s)
    # Demo pages first: the site boilerplate is learnt in this order.
    pages = drills.drill_pages()
    options = PipelineOptions()
    filtered = {p.article_id for p in pages if isinstance(extract(p, options), Filtered)}
    expected = {p.article_id for p in pages} - filtered
    assert len(expected) >= 50
    assert len(filtered) >= 10  # the demo's section pages: lists of headlines

    # Standing queries, added before any page: their alerts must end up agreeing with the
    # index once the early articles are re-cleaned (teasers and boilerplate they matched
    # in are withdrawn).
    standing = [
        Watch(name=name, query=text, created_at=utcnow())
        for name, text in (("docks", "(strike | walkout) (port | dock*)"), ("broad", "said"))
    ]
    for w in standing:
        watches.put(s, w, w.name)
    worker = drills.worker(s, tmp_path / "worker.log", tmp_path / "state")
    worker.start()
    drills.produce(s, pages)

    index = alias(s.topic_prefix)
    try:
        _wait_for(es, index, expected, worker, len(expected), 400)
        # The re-cleanings of early articles come after those are indexed.
        drills.wait_for(lambda: recleans_left(s) == 0, 300, "re-cleanings", worker)
        drills.wait_for(
            lambda: group_lag(s, topics.group, topics.matches) == 0,
            60,
            "matches and withdrawals",
            worker,
        )
    finally:
        worker.stop()
    # A SIGTERM is a clean stop: the next start may trust the local tables.
    assert (tmp_path / "state" / "faust" / CLEAN_MARK).is_file(), worker.tail()

    es.indices.refresh(index=index)
    docs = es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    by_id = {d["_id"]: d["_source"] for d in docs}
    # Exactly once: every expected article, nothing else, no id twice (ids are unique per
    # index, and all documents of the run are in one monthly index or another).
    assert sorted(by_id) == sorted(expected)
    assert len(docs) == len(expected)

    _check_articles(by_id)
    _check_boilerplate(by_id, pages)
    _check_briefs(by_id)
    _check_demo_articles(by_id)
    _check_dead_letters_and_filtered(s, topics, filtered)
    _check_alerts(s, es, index, standing)


def _check_alerts(s: Settings, es: Any, index: str, standing: list[Watch]) -> None:
    """The alerts that stand are, story by story, what a search with each watch's query
    finds in the re-cleaned index; re-cleaning withdrew some on the demo's briefs."""
    sent = [decode(Alert, m.value) for m in read_topic(s, Topics.from_settings(s).alerts)]
    standing_alerts = watches.live(sent)
    for w in standing:
        hits = es.search(index=index, size=500, query=query.to_es(query.parse(w.query)))
        stories = {h["_source"]["cluster_id"] for h in hits["hits"]["hits"]}
        alerted = [a.story for a in standing_alerts if a.watch == w.name]
        assert len(alerted) == len(set(alerted)), f"{w.name}: a story alerted twice"
        assert set(alerted) == stories, w.name
        assert 0 < len(stories) < len({h["_source"]["cluster_id"] for h in _all(es, index)})
    assert any(a.withdrawn for a in sent), "no alert was withdrawn: the briefs' teasers match"


def _all(es: Any, index: str) -> list[Any]:
    return list(es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"])


def _check_articles(by_id: dict[str, Any]) -> None:
    english = [d for d in by_id.values() if d.get("language") == "en"]
    assert len(english) >= 40
    with_entities = [d for d in english if d.get("entities")]
    assert len(with_entities) >= 0.9 * len(english)
    for doc in by_id.values():
        paras = doc["text"].split("\n\n")
        long = [paragraphs.normalize(p) for p in paras if len(paragraphs.normalize(p)) >= 50]
        assert len(long) == len(set(long)), f"in-page repeat left in {doc['url']}"
    removed = sum(d["removed"]["in_page_repeats"] for d in by_id.values())
    assert removed > 0


def _check_boilerplate(by_id: dict[str, Any], pages: list[RawPage]) -> None:
    """A boilerplate block that survives extraction (the comment widgets, a newsletter
    pitch) is stripped from a site's pages once it was seen on three other stories of the
    site (BoilerplatePolicy.min_stories), and from the first pages by re-cleaning them:
    it is left on no page."""
    for block in EXPECTED.boilerplate:
        needle = paragraphs.normalize(block.text)
        if len(needle) < 20:
            continue
        holders = [
            d["url"]
            for d in by_id.values()
            if needle in {paragraphs.normalize(p) for p in d["text"].split("\n\n")}
        ]
        assert holders == [], f"{block.kind} of {block.site} kept on {holders}"
    assert sum(d["removed"]["boilerplate"] for d in by_id.values()) > 0
    assert sum(d["removed"]["retroactive"] for d in by_id.values()) > 0


def _check_demo_articles(by_id: dict[str, Any]) -> None:
    """The demo's HTML articles keep every paragraph of their body (dedup takes none of
    them, nor does re-cleaning), and the copies of a syndicated story share its cluster."""
    by_path = {urlsplit(d["url"]).path: d for d in by_id.values()}
    clusters: dict[str, set[str]] = {}
    for article in EXPECTED.articles:
        doc = by_path[article.path]
        kept = {paragraphs.normalize(p) for p in doc["text"].split("\n\n")}
        lost = [p for p in article.paragraphs if paragraphs.normalize(p) not in kept]
        assert lost == [], f"{article.site} {article.path} lost {lost}"
        if article.syndication:
            clusters.setdefault(article.syndication, set()).add(doc["cluster_id"])
    assert clusters and all(len(ids) == 1 for ids in clusters.values()), clusters


def _check_briefs(by_id: dict[str, Any]) -> None:
    """The templated plain-text briefs: each its own story, its own text whole, and no
    line of its site's template that is printed on more briefs than min_stories."""
    by_path = {urlsplit(d["url"]).path: d for d in by_id.values()}
    briefs = [b for b in EXPECTED.briefs if b.path in by_path]
    assert len(briefs) == len(EXPECTED.briefs)
    printed = Counter(
        paragraphs.normalize(t) for b in EXPECTED.briefs for t in set(b.site_template)
    )
    learnable = {t for t, n in printed.items() if n > paragraphs.DEFAULT_POLICY.min_stories}
    for brief in briefs:
        doc = by_path[brief.path]
        kept = [paragraphs.normalize(p) for p in doc["text"].split("\n\n")]
        own = [brief.standfirst, brief.credited_caption, *brief.paragraphs]
        assert {paragraphs.normalize(p) for p in own} <= set(kept), brief.path
        assert not set(kept) & learnable, brief.path
        assert not {paragraphs.normalize(t) for t in brief.teasers} & set(kept), brief.path
        assert doc["duplicate_of"] is None, brief.path
    removed = [by_path[b.path]["removed"] for b in briefs]
    for rule in ("short_repeats", "near_repeats", "teasers"):
        assert sum(r[rule] for r in removed) >= len(briefs), rule


def _check_dead_letters_and_filtered(s: Settings, topics: Topics, filtered: set[str]) -> None:
    letters = read_topic(s, topics.deadletter("clean"))
    poison_values = {m.value for m in letters}
    assert set(drills.POISON) <= poison_values
    for m in letters:
        headers = dict(m.headers)
        assert headers["newsflow-dlq-stage"] == b"clean"
        assert headers["newsflow-dlq-source-topic"] == topics.pages.encode()
        assert headers["newsflow-dlq-error-class"] == b"DecodeError"
    seen = {decode(Filtered, m.value).article_id for m in read_topic(s, topics.filtered)}
    assert seen == filtered
