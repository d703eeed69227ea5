"""Standing queries through the whole pipeline on the real stack: watches written to their
topic, a real worker process (as tests/drills.py starts it), real English news pages from
../shared/data and syndicated copies of some of them, then the alerts compared, article
by article, with what Elasticsearch finds for each watch's query and filters; a worker
restart with a watch added while it was down; the webhook against a real HTTP server
in this process.

The expectations come from Elasticsearch (the index's own query engine, fed the compiled
query), not from the matcher the worker runs; the matcher is then checked against it on
every indexed article."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from newsflow import query, watches
from newsflow.query import Filters
from newsflow.records import Alert, RawPage, SourceKind, Watch, decode, utcnow
from newsflow.settings import Settings
from newsflow.topics import Topics, group_lag
from processors.index import alias
from tests import drills
from tests.conftest import Process, read_topic
from tests.test_watches import Received, Receiver

pytestmark = pytest.mark.stack

BROAD = Watch(name="broad", query="police | court | protest*", created_at=utcnow())
PHRASE = Watch(
    name="phrase",
    query='"prime minister" -football',
    filters=Filters(languages=("en",)),
    created_at=utcnow(),
)
FILTERED = Watch(
    name="filtered",
    query="government | minister",
    filters=Filters(sites=("www.bbc.example", "www.metro.example", "www.thetelegraph.example")),
    created_at=utcnow(),
)
NOTHING = Watch(name="nothing", query="zyzzyva | quuxblorf", created_at=utcnow())
BEFORE = [BROAD, PHRASE, FILTERED, NOTHING]
FIRST_PAGES = 40
LATER_PAGES = 12


# -- the pipeline -----------------------------------------------------------------------


def copy_of(original: RawPage, site: str, n: int) -> RawPage:
    """The same page bytes under another site's URL, fetched now: a syndicated copy."""
    return drills.page(
        f"https://{site}/syndicated/{n}", original.body, "text/html", SourceKind.URLS
    )


def read_alerts(s: Settings) -> list[Alert]:
    """The alerts that stand (an alert re-cleaning withdrew is not one)."""
    found = [decode(Alert, m.value) for m in read_topic(s, Topics.from_settings(s).alerts)]
    return watches.live(found)


def settle(s: Settings, es: Any, ids: set[str], worker: Process, timeout: float = 240) -> None:
    """Until every article of ``ids`` is indexed, the index and alert stages have committed
    all they read (so every match became an alert, or was found a repeat) and the alerts
    stopped growing."""
    topics = Topics.from_settings(s)
    index = alias(s.topic_prefix)

    def indexed() -> bool:
        if not es.indices.exists_alias(name=index):
            return False
        es.indices.refresh(index=index)
        found = es.count(index=index, query={"ids": {"values": sorted(ids)}})["count"]
        return int(found) == len(ids)

    drills.wait_for(indexed, timeout, f"{len(ids)} articles indexed", worker)
    seen: list[int] = []

    def quiet() -> bool:
        lag = sum(group_lag(s, topics.group, t) for t in (topics.enriched, topics.matches))
        seen.append(len(read_topic(s, topics.alerts)))
        return lag == 0 and len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]

    drills.wait_for(quiet, 120, "the alerts to stop growing", worker)


@dataclass
class Found:
    """What Elasticsearch holds: every article, and the articles each watch's query and
    filters find (compiled by newsflow.query, run by the index)."""

    articles: dict[str, dict[str, Any]]
    hits: dict[str, set[str]]

    def stories(self, name: str, among: set[str] | None = None) -> set[str]:
        return {
            self.articles[a]["cluster_id"] for a in self.hits[name] if among is None or a in among
        }


def search(es: Any, s: Settings, listed: list[Watch]) -> Found:
    index = alias(s.topic_prefix)
    es.indices.refresh(index=index)
    every = es.search(index=index, size=1000, query={"match_all": {}})["hits"]["hits"]
    articles = {h["_id"]: h["_source"] for h in every}
    assert len(articles) == len(every)  # no id twice
    hits = {}
    for w in listed:
        compiled = {
            "bool": {"must": [query.to_es(query.parse(w.query))], "filter": w.filters.to_es()}
        }
        found = es.search(index=index, size=1000, query=compiled, _source=False)["hits"]["hits"]
        hits[w.name] = {h["_id"] for h in found}
    return Found(articles, hits)


def check_agreement(found: Found, alerts: list[Alert], listed: list[Watch]) -> None:
    """Each watch alerted exactly the stories of the articles Elasticsearch finds for it,
    and the worker's matcher, run on each article as Elasticsearch returns it (its terms
    analysed again from the text), agrees with Elasticsearch on every one."""
    for w in listed:
        for aid, source in found.articles.items():
            fired = bool(watches.fired([w], query.Doc(source)))
            assert fired == (aid in found.hits[w.name]), (w.name, aid, source["url"])
        alerted = {a.story for a in alerts if a.watch == w.name}
        assert alerted == found.stories(w.name), w.name


def check_once_per_story(alerts: list[Alert]) -> None:
    repeated = [k for k, n in Counter((a.watch, a.story) for a in alerts).items() if n > 1]
    assert repeated == []
    assert len({a.alert_id for a in alerts}) == len(alerts)


# -- agreement, once per story, a restart ---------------------------------------------------


@pytest.mark.timeout(900)
def test_watches_alert_once_per_story_as_search_finds_and_survive_a_restart(
    pipeline: Settings, es: Any, tmp_path: Path
) -> None:
    s = pipeline
    pages = drills.fundus_pages(FIRST_PAGES + LATER_PAGES)
    first, later = pages[:FIRST_PAGES], pages[FIRST_PAGES:]
    assert len(later) == LATER_PAGES
    for w in BEFORE:
        watches.put(s, w, w.name)

    state = tmp_path / "state"
    worker = drills.worker(s, tmp_path / "worker-1.log", state)
    worker.start()
    try:
        drills.produce(s, first)
        settle(s, es, {p.article_id for p in first}, worker)
        # Syndicated copies, once their originals are indexed: a copy of a Canadian story
        # on a site the filtered watch takes (the story alerts there by its copy), a copy
        # within those sites (a repeat for it), and two elsewhere.
        copies = {
            first[8].article_id: copy_of(first[8], "www.bbc.example", 1),
            first[12].article_id: copy_of(first[12], "www.metro.example", 2),
            first[22].article_id: copy_of(first[22], "www.wire-two.example", 3),
            first[30].article_id: copy_of(first[30], "www.wire-one.example", 4),
        }
        drills.produce(s, list(copies.values()))
        settle(s, es, {p.article_id for p in first + list(copies.values())}, worker)
    finally:
        worker.stop()
    assert not worker.running

    before = read_alerts(s)
    found = search(es, s, BEFORE)
    assert len(found.articles) == FIRST_PAGES + len(copies)
    check_agreement(found, before, BEFORE)
    check_once_per_story(before)
    _check_not_vacuous(found, before)
    _check_copies(found, before, copies)

    # A watch added while no worker runs, then a new worker on the same state: new pages,
    # a copy of a story every earlier watch had alerted, and a copy of one only the new
    # watch finds, among the earlier articles.
    added = Watch(name="later", query="war | ukraine", created_at=utcnow())
    watches.put(s, added, added.name)
    more = [
        *later,
        copy_of(first[0], "www.wire-three.example", 5),
        copy_of(first[6], "www.wire-four.example", 6),
    ]
    second = drills.worker(s, tmp_path / "worker-2.log", state)
    second.start()
    try:
        drills.produce(s, more)
        settle(s, es, set(found.articles) | {p.article_id for p in more}, second)
    finally:
        second.stop()

    everything = read_alerts(s)
    after = [a for a in everything if a.alert_id not in {b.alert_id for b in before}]
    assert len(everything) == len(before) + len(after)  # nothing from before came again
    check_once_per_story(everything)
    final = search(es, s, [*BEFORE, added])
    check_agreement(final, everything, BEFORE)
    new_ids = {p.article_id for p in more}
    # The new watch: the stories of the articles indexed after it was added, only.
    assert final.hits["later"] - new_ids, "the new watch should find earlier articles too"
    assert {a.story for a in after if a.watch == "later"} == final.stories("later", new_ids)
    assert not [a for a in before if a.watch == "later"]
    assert {a.article_id for a in after if a.watch == "later"} <= new_ids
    # The watches from before: the new pages' stories they had not alerted yet.
    for w in BEFORE:
        alerted_before = {a.story for a in before if a.watch == w.name}
        expected = final.stories(w.name, new_ids) - alerted_before
        assert {a.story for a in after if a.watch == w.name} == expected, w.name
    assert {a.story for a in after if a.watch == "broad"}, "broad should match a new page"
    copied_story = first[0].article_id
    assert final.articles[more[-2].article_id]["cluster_id"] == copied_story
    assert more[-2].article_id in final.hits["broad"]
    assert copied_story in {a.story for a in before if a.watch == "broad"}
    assert final.articles[more[-1].article_id]["cluster_id"] == first[6].article_id
    assert first[6].article_id in {a.story for a in after if a.watch == "later"}


def _check_not_vacuous(found: Found, alerts: list[Alert]) -> None:
    total = len(found.articles)
    assert all(0 < len(found.hits[w.name]) < total for w in (BROAD, PHRASE, FILTERED))
    assert found.hits["nothing"] == set()
    assert [a for a in alerts if a.watch == "nothing"] == []
    # The filter acts: the filtered watch's words are on more articles than it takes.
    unfiltered = Watch(name="unfiltered", query=FILTERED.query, created_at=utcnow())
    words = {a for a, src in found.articles.items() if watches.fired([unfiltered], query.Doc(src))}
    assert len(words) > len(found.hits["filtered"])


def _check_copies(found: Found, alerts: list[Alert], copies: dict[str, RawPage]) -> None:
    """Each copy joined its original's story, and alerted no watch its original had."""
    for original, page in copies.items():
        copy = page.article_id
        assert found.articles[copy]["cluster_id"] == found.articles[original]["cluster_id"]
        for name, hits in found.hits.items():
            if original in hits:
                assert copy not in {a.article_id for a in alerts if a.watch == name}, name
    # The Canadian story is on the filtered watch's sites only by its copy: it alerted so.
    bbc_copy = next(p.article_id for p in copies.values() if p.site == "www.bbc.example")
    [by_copy] = [
        a
        for a in alerts
        if a.watch == "filtered" and a.story == found.articles[bbc_copy]["cluster_id"]
    ]
    assert by_copy.article_id == bbc_copy
    assert sum(1 for a in alerts if a.article_id in {p.article_id for p in copies.values()}) == 1


# -- the webhook ----------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_webhook_gets_each_alert_once_and_refusals_are_dead_lettered(
    pipeline: Settings, es: Any, tmp_path: Path
) -> None:
    s = pipeline
    taken = Watch(name="taken", query="police | court | trump", created_at=utcnow())
    refused = Watch(name="refused", query="minister | government", created_at=utcnow())
    for w in (taken, refused):
        watches.put(s, w, w.name)

    def answer(got: Received, earlier: list[Received]) -> int:
        if json.loads(got.body)["watch"] == refused.name:
            return 400
        key = got.headers["idempotency-key"]
        return 200 if any(r.headers["idempotency-key"] == key for r in earlier) else 503

    pages = drills.fundus_pages(10)
    topics = Topics.from_settings(s)
    with Receiver(answer) as rx:
        worker = drills.worker(s, tmp_path / "worker.log", tmp_path / "state")
        worker.start(NEWSFLOW_WEBHOOK_URL=rx.url, NEWSFLOW_WEBHOOK_ATTEMPTS="3")
        try:
            drills.produce(s, pages)
            settle(s, es, {p.article_id for p in pages}, worker)
            alerts = read_alerts(s)
            accepted = {a.alert_id: a for a in alerts if a.watch == taken.name}
            said_no = {a.alert_id: a for a in alerts if a.watch == refused.name}
            assert accepted and said_no

            def delivered() -> bool:
                letters = read_topic(s, topics.deadletter("webhook"))
                ok = {r.headers["idempotency-key"] for r in rx.received if r.status == 200}
                return ok == set(accepted) and len(letters) >= len(said_no)

            drills.wait_for(delivered, 120, "the webhook's deliveries", worker)
            time.sleep(3)  # anything posted twice would come now
        finally:
            worker.stop()

    posts: dict[str, list[Received]] = {}
    for r in rx.received:
        posts.setdefault(r.headers["idempotency-key"], []).append(r)
    assert set(posts) == set(accepted) | set(said_no)
    for key, alert in accepted.items():
        # Refused once with 503, taken after a wait: exactly one success per alert.
        assert [r.status for r in posts[key]] == [503, 200], key
        assert posts[key][1].at - posts[key][0].at >= 0.9  # the first backoff, 1 s
        assert decode(Alert, posts[key][1].body) == alert
    for key in said_no:
        assert [r.status for r in posts[key]] == [400], key  # a refusal is not retried

    letters = read_topic(s, topics.deadletter("webhook"))
    assert sorted(decode(Alert, m.value).alert_id for m in letters) == sorted(said_no)
    raw = {decode(Alert, m.value).alert_id: m.value for m in read_topic(s, topics.alerts)}
    for m in letters:
        headers = {k: v.decode() for k, v in m.headers}
        assert headers["newsflow-dlq-stage"] == "webhook"
        assert headers["newsflow-dlq-error-class"] == "PermanentError"
        assert headers["newsflow-dlq-permanent"] == "1"
        assert headers["newsflow-dlq-source-topic"] == topics.alerts
        assert "answered 400" in headers["newsflow-dlq-error"], headers
        assert m.value == raw[decode(Alert, m.value).alert_id]  # the original bytes


# -- one bad watch --------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_a_watch_whose_query_does_not_parse_leaves_the_worker_and_the_others_alerting(
    pipeline: Settings, es: Any, tmp_path: Path
) -> None:
    """A record on the watches topic that decodes but whose query does not parse (written
    by hand, or by a version that read the query language differently) is one bad
    record, as one that does not decode is: left out, never the end of matching."""
    s = pipeline
    good = Watch(name="good", query="police | court", created_at=utcnow())
    broken = Watch(name="broken", query="strike |", created_at=utcnow())
    for w in (broken, good):
        watches.put(s, w, w.name)
    pages = drills.fundus_pages(6)
    worker = drills.worker(s, tmp_path / "worker.log", tmp_path / "state")
    worker.start()
    try:
        drills.produce(s, pages)
        settle(s, es, {p.article_id for p in pages}, worker, timeout=180)
    finally:
        worker.stop()
    found = search(es, s, [good])
    assert found.hits["good"], "the good watch should find one of the pages"
    check_agreement(found, read_alerts(s), [good])
