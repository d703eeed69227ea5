"""The whole pipeline on the real stack: real pages from ../shared/data and the demo sites
produced onto Kafka, a real Faust worker process, and the result read back from
Elasticsearch. Two recovery tests (a worker crashed with SIGKILL midway and started again
on an empty state directory; a second worker joining and leaving) reproduce an open
problem and run on demand (NEWSFLOW_RECOVERY_TESTS=1)."""

from __future__ import annotations

import gzip
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from ingest.canon import canonicalize, site_of
from ingest.producer import PageProducer
from newsflow.demo.sites import EXPECTED, DemoServer, article_urls, url
from newsflow.records import Filtered, RawPage, Source, SourceKind, decode, utcnow
from newsflow.settings import Settings
from newsflow.topics import Topics
from processors import paragraphs
from processors.index import alias
from processors.stages import PipelineOptions, extract
from tests.conftest import Process, read_topic, shared_data_path

pytestmark = pytest.mark.stack

ENGLISH = ("uk", "us", "au", "ca", "ie", "nz", "in")
POISON = [b"not json at all", b'{"url": 1}', b"\x89PNG\r\n\x1a\n\x00\x00"]


def fundus_pages(limit: int) -> list[RawPage]:
    root = shared_data_path("extraction", "fundus")
    files = sorted(p for c in ENGLISH if (root / c).is_dir() for p in (root / c).glob("*.html.gz"))
    pages = []
    for path in files[:limit]:
        publisher, _, date = path.name.removesuffix(".html.gz").partition("_")
        url = f"https://www.{publisher.lower()}.example/{path.parent.name}/{date}"
        pages.append(_page(url, gzip.decompress(path.read_bytes()), "text/html", SourceKind.URLS))
    return pages


def _page(url: str, body: bytes, content_type: str, kind: SourceKind) -> RawPage:
    return RawPage(
        url=url,
        canonical_url=canonicalize(url),
        site=site_of(url),
        fetched_at=utcnow(),
        content_type=content_type,
        body=body,
        source=Source(kind=kind, ref="e2e test"),
    )


def demo_pages() -> list[RawPage]:
    import urllib.request

    pages = []
    with DemoServer() as server:
        sections = [url(server, p.site, p.path) for p in EXPECTED.pages if p.kind == "section"]
        for u in article_urls(server) + sections:
            with urllib.request.urlopen(u) as resp:
                pages.append(_page(u, resp.read(), resp.headers["content-type"], SourceKind.DEMO))
    return pages


def pipeline_worker(settings: Settings, log: Path) -> Process:
    env = dict(os.environ)
    env.update(
        NEWSFLOW_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        NEWSFLOW_ELASTICSEARCH_URL=settings.elasticsearch_url,
        NEWSFLOW_TOPIC_PREFIX=settings.topic_prefix,
        NEWSFLOW_TOPIC_PARTITIONS=str(settings.topic_partitions),
    )
    argv = [sys.executable, "-m", "newsflow.cli", "worker", "--loglevel", "warn"]
    return Process(argv, env, log)


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


# Losing no page across a crash or a rebalance is an open problem (see the P3 closing
# note): Faust was seen to skip pages then, in fresh-clone CI runs. These reproducers run
# on demand until it is solved; the pipeline itself is tested without them below.
RECOVERY = pytest.mark.skipif(
    os.environ.get("NEWSFLOW_RECOVERY_TESTS") != "1",
    reason="reproduces an open problem (pages lost now and then when the worker group "
    "rebalances; see the P3 closing note); run with NEWSFLOW_RECOVERY_TESTS=1",
)


@pytest.mark.timeout(900)  # a spaCy load on a 2-core machine
def test_pages_become_searchable_articles_exactly_once(
    pipeline_settings: Settings, es: Any, tmp_path: Path
) -> None:
    _pipeline_end_to_end(pipeline_settings, es, tmp_path, crash=False)


@RECOVERY
@pytest.mark.timeout(900)  # two worker starts and a spaCy load on a 2-core machine
def test_pages_become_searchable_articles_exactly_once_across_a_crash(
    pipeline_settings: Settings, es: Any, tmp_path: Path
) -> None:
    _pipeline_end_to_end(pipeline_settings, es, tmp_path, crash=True)


def _pipeline_end_to_end(s: Settings, es: Any, tmp_path: Path, *, crash: bool) -> None:
    topics = Topics.from_settings(s)
    # Demo pages first: the site boilerplate is learnt in this order.
    pages = demo_pages() + fundus_pages(30)
    options = PipelineOptions()
    filtered = {p.article_id for p in pages if isinstance(extract(p, options), Filtered)}
    expected = {p.article_id for p in pages} - filtered
    assert len(expected) >= 50
    assert len(filtered) >= 10  # the demo's section pages: lists of headlines

    worker = pipeline_worker(s, tmp_path / "worker.log")
    worker.start(NEWSFLOW_STATE_DIR=str(tmp_path / "state-1"))
    with PageProducer(s.kafka_bootstrap, topics.pages) as producer:
        for page in pages:
            producer.send(page)
    raw = KafkaProducer(bootstrap_servers=s.kafka_bootstrap)
    for poison in POISON:
        raw.send(topics.pages, key=b"poison.example", value=poison)
    raw.close()

    index = alias(s.topic_prefix)
    try:
        if crash:  # midway: no clean shutdown, no final commit, local state thrown away
            _wait_for(es, index, expected, worker, len(expected) // 3, 300)
            worker.stop(signal.SIGKILL)
            worker.start(NEWSFLOW_STATE_DIR=str(tmp_path / "state-2"))
        _wait_for(es, index, expected, worker, len(expected), 400)
    finally:
        worker.stop()

    es.indices.refresh(index=index)
    docs = es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    by_id = {d["_id"]: d["_source"] for d in docs}
    # Exactly once: every expected article, nothing else, no id twice (ids are unique per
    # index, and all documents of the run are in one monthly index or another).
    assert sorted(by_id) == sorted(expected)
    assert len(docs) == len(expected)

    _check_articles(by_id)
    _check_boilerplate(by_id, pages)
    _check_dead_letters_and_filtered(s, topics, filtered)


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
    pitch) may stay on a site's first pages, never on later ones: it is stripped once it
    was seen on three other stories of the site (BoilerplatePolicy.min_stories)."""
    order = {p.article_id: i for i, p in enumerate(pages)}
    docs = sorted(by_id.items(), key=lambda kv: order[kv[0]])
    for block in EXPECTED.boilerplate:
        needle = paragraphs.normalize(block.text)
        if len(needle) < 20:
            continue
        holders = [d["url"] for _, d in docs if needle in paragraphs.normalize(d["text"])]
        assert len(holders) <= 3, f"{block.kind} of {block.site} kept on {holders}"
    assert sum(d["removed"]["boilerplate"] for d in by_id.values()) > 0


def _check_dead_letters_and_filtered(s: Settings, topics: Topics, filtered: set[str]) -> None:
    letters = read_topic(s, topics.deadletter("clean"))
    poison_values = {m.value for m in letters}
    assert set(POISON) <= poison_values
    for m in letters:
        headers = dict(m.headers)
        assert headers["newsflow-dlq-stage"] == b"clean"
        assert headers["newsflow-dlq-source-topic"] == topics.pages.encode()
        assert headers["newsflow-dlq-error-class"] == b"DecodeError"
    seen = {decode(Filtered, m.value).article_id for m in read_topic(s, topics.filtered)}
    assert seen == filtered


@RECOVERY
@pytest.mark.timeout(900)
def test_no_page_is_lost_when_workers_join_and_leave(
    pipeline_settings: Settings, es: Any, tmp_path: Path
) -> None:
    """Scaling out and in while pages keep arriving: a second worker joins the group
    (partitions and their tables move to it) and leaves again (they move back). Every
    page should still end as an indexed article or a filtered page, each article once."""
    import threading

    s = pipeline_settings
    topics = Topics.from_settings(s)
    pages = fundus_pages(65)
    options = PipelineOptions()
    filtered = {p.article_id for p in pages if isinstance(extract(p, options), Filtered)}
    expected = {p.article_id for p in pages} - filtered
    first = pipeline_worker(s, tmp_path / "first.log")
    second = pipeline_worker(s, tmp_path / "second.log")
    first.start(NEWSFLOW_STATE_DIR=str(tmp_path / "state-first"))

    def trickle() -> None:  # pages keep coming while the group changes
        with PageProducer(s.kafka_bootstrap, topics.pages) as producer:
            for page in pages:
                producer.send(page)
                producer.flush()
                time.sleep(1.0)

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    index = alias(s.topic_prefix)
    try:
        _wait_for(es, index, expected, first, 5, 300)
        second.start(NEWSFLOW_STATE_DIR=str(tmp_path / "state-second"))
        _wait_for(es, index, expected, first, len(expected) // 2, 300)
        second.stop()  # SIGTERM: a clean leave, its partitions go back to the first
        feeder.join(timeout=120)
        _wait_for(es, index, expected, first, len(expected), 400)
    finally:
        first.stop()
        second.stop()
    es.indices.refresh(index=index)
    docs = es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    assert sorted(d["_id"] for d in docs) == sorted(expected)
    seen = {decode(Filtered, m.value).article_id for m in read_topic(s, topics.filtered)}
    assert seen == filtered
