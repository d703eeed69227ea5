"""The monitor against the real feeds of ../shared/data, served over real HTTP with their
own bytes and links (tests.webrig routes every host to one loopback server), each article
answered with a real news page from ../shared/data, and the real broker.

What the web does to a crawler is staged here, per host: robots rules and a crawl delay,
a 429 with Retry-After, a page that hangs, a feed that keeps answering 429, and the second
poll of every feed answered 304 by its ETag.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ingest.canon import canonicalize, site_of
from ingest.feeds import Feed, parse_feed
from ingest.fetch import Fetcher, FetchPolicy
from ingest.jobs import PageSink
from ingest.monitor import HealthStore, Monitor
from ingest.schedule import PollPolicy
from ingest.seen import SeenStore
from newsflow.records import RawPage, SourceKind, decode
from newsflow.settings import Settings
from newsflow.topics import Topics
from tests import webrig
from tests.conftest import read_topic, shared_data_path

pytestmark = pytest.mark.stack

FEEDS_HOST = "feeds.newsflow.test"
# name -> (file under ../shared/data/feeds, Content-Type it is served with). No charset
# anywhere: the ISO-8859-1 feed without a declaration must be recognised from its bytes.
FEEDS = {
    "guardian": ("rbren-rss-parser/guardian.rss", "application/rss+xml"),
    "heise": ("rbren-rss-parser/heise.atom", "application/atom+xml"),
    "uol": ("rbren-rss-parser/uolNoticias.rss", "application/rss+xml"),
    "techcrunch": ("feedjira/TechCrunch.xml", "text/xml"),  # blank line before <?xml
    "huffpost": ("feedjira/HuffPostCanada.xml", "application/rss+xml"),
    "alerts": ("feedjira/google_alerts_atom.xml", "application/atom+xml"),
}
REFUSING_FEED = "typepad"  # answers 429 with a Retry-After of two minutes, every time
RETRY_AFTER = 120

GUARDIAN_ROBOTS = b"User-agent: *\nDisallow: /commentisfree/\nCrawl-delay: 0.1\n"
POLICY = FetchPolicy(
    allow_private_addresses=True,  # webrig answers every host from 127.0.0.1
    min_delay_seconds=0.0,
    read_timeout_seconds=1.0,
    total_timeout_seconds=3.0,
    retries=2,
    backoff_seconds=0.1,
)


def feed_url(name: str) -> str:
    return f"https://{FEEDS_HOST}/{name}"


@pytest.fixture(scope="module")
def real_pages() -> list[bytes]:
    folder = shared_data_path("extraction", "fundus")
    return [gzip.decompress(p.read_bytes()) for p in sorted(folder.glob("*/*.html.gz"))[:60]]


@pytest.fixture(scope="module")
def feeds() -> dict[str, tuple[bytes, str]]:
    root = shared_data_path("feeds")
    return {name: ((root / file).read_bytes(), ctype) for name, (file, ctype) in FEEDS.items()}


class Staged:
    """The web as the monitor meets it in this file."""

    def __init__(self, feeds: dict[str, tuple[bytes, str]], pages: list[bytes]) -> None:
        self.web = webrig.Web()
        self.links: dict[str, Feed] = {}
        for name, (body, ctype) in feeds.items():
            self.web.add(feed_url(name), webrig.document(body, ctype))
            parsed = parse_feed(body, feed_url(name), ctype)
            assert isinstance(parsed, Feed), parsed
            self.links[name] = parsed
        self.web.add(feed_url(REFUSING_FEED), webrig.status(429, {"Retry-After": "120"}))
        self.web.add(
            "https://www.theguardian.com/robots.txt", webrig.document(GUARDIAN_ROBOTS, "text/plain")
        )
        articles = sorted({e.url for f in self.links.values() for e in f.entries})
        # One article refused once with a short Retry-After, one hanging past the timeout.
        self.throttled, self.hanging = articles[3], articles[7]
        self.web.add(
            self.throttled,
            webrig.in_turn(
                webrig.status(429, {"Retry-After": "1"}), self.page_for(self.throttled, pages)
            ),
        )
        self.web.add(self.hanging, webrig.hang(3.0))
        self.web.fallback = lambda host, path: (
            None if path == "/robots.txt" else self.page_for(f"https://{host}{path}", pages)
        )

    @staticmethod
    def page_for(url: str, pages: list[bytes]) -> webrig.Route:
        digest = hashlib.blake2b(url.encode(), digest_size=4).digest()
        return webrig.document(pages[int.from_bytes(digest) % len(pages)], "text/html")

    def articles(self) -> set[str]:
        return {canonicalize(e.url) for f in self.links.values() for e in f.entries}

    def disallowed(self) -> set[str]:
        return {
            u
            for u in self.articles()
            if urlsplit(u).hostname == "www.theguardian.com"
            and urlsplit(u).path.startswith("/commentisfree/")
        }


@pytest.fixture
def staged(feeds: dict[str, tuple[bytes, str]], real_pages: list[bytes]) -> Iterator[Staged]:
    world = Staged(feeds, real_pages)
    yield world
    world.web.close()


def poll(settings: Settings, staged: Staged, state: Path) -> dict[str, Any]:
    endpoints = [(n, "feed", feed_url(n)) for n in [*FEEDS, REFUSING_FEED]]

    async def run() -> dict[str, Any]:
        with SeenStore(state / "seen.sqlite") as seen:
            sink = PageSink(settings, seen)
            fetcher = Fetcher(POLICY, resolve=staged.web.resolve, transport=staged.web.transport())
            async with fetcher:
                health = HealthStore(state / "feeds.json")
                monitor = Monitor(endpoints, fetcher, sink, health, PollPolicy(link_attempts=2))
                await monitor.run(asyncio.Event(), cycles=1)
            sink.close()
        return {"sink": sink.stats, "fetch": fetcher.stats.snapshot()}

    return asyncio.run(run())


def make_all_due(state: Path) -> None:
    store = HealthStore(state / "feeds.json")
    for health in list(store.health.values()):
        store.put(health.model_copy(update={"next_poll_at": None}))


def test_real_feeds_over_http_reach_kafka_once_politely(
    pipeline_settings: Settings, staged: Staged, tmp_path: Path
) -> None:
    s, web = pipeline_settings, staged.web
    started = datetime.now(UTC)
    first = poll(s, staged, tmp_path)

    topics = Topics.from_settings(s)
    pages = [decode(RawPage, m.value) for m in read_topic(s, topics.pages)]
    letters = [
        {k: v.decode() for k, v in m.headers} for m in read_topic(s, topics.deadletter("ingest"))
    ]
    articles, disallowed = staged.articles(), staged.disallowed()
    assert len(disallowed) >= 3  # the Guardian's opinion pieces
    expected = articles - disallowed - {canonicalize(staged.hanging)}

    # Every other article exactly once, keyed by its site, with what its feed said of it.
    assert sorted(p.canonical_url for p in pages) == sorted(expected)
    assert all(p.source.kind == SourceKind.FEED and p.site == site_of(p.url) for p in pages)
    titles = {canonicalize(e.url): e.title for f in staged.links.values() for e in f.entries}
    assert all(p.hint_title == titles[p.canonical_url] for p in pages)

    # The ISO-8859-1 feed without a declaration gave its titles accented, not mangled.
    uol = [p.hint_title or "" for p in pages if p.source.ref == feed_url("uol")]
    assert any("ç" in t or "ã" in t for t in uol) and not any("\ufffd" in t for t in uol)
    # Google Alerts links were unwrapped: nothing was fetched from google.com.
    assert not web.requests(host="www.google.com")

    # robots.txt: read once per host, its Disallow obeyed, its Crawl-delay kept.
    robots = [h for h in web.hits if h.path == "/robots.txt"]
    assert len(robots) == len({h.host for h in robots})
    at_guardian = web.requests("www.theguardian.com")
    assert not any(h.path.startswith("/commentisfree/") for h in at_guardian)
    times = sorted(h.at for h in at_guardian if h.path != "/robots.txt")
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.1 - 0.03

    # The throttled article: asked twice (429, then after its Retry-After), sent once.
    throttled = urlsplit(staged.throttled)
    tries = web.requests(throttled.hostname, throttled.path)
    assert [h.status for h in tries] == [429, 200]
    assert tries[1].at - tries[0].at >= 1.0 - 0.03

    # Disallowed articles are dead letters with their reason; the hanging one (a
    # passing failure) is kept on its feed, to be tried again at the next poll.
    reasons = {d["newsflow-dlq-url"]: d["newsflow-dlq-error"] for d in letters}
    assert {canonicalize(u) for u in reasons} == disallowed
    assert all(r.startswith("robots-disallowed") for r in reasons.values())
    health = HealthStore(tmp_path / "feeds.json")
    pending = [p for n in FEEDS for p in health.get(feed_url(n)).pending]
    assert [(p.url, p.attempts) for p in pending] == [(staged.hanging, 1)]
    assert pending[0].last_error.startswith("timeout")

    # The feed that keeps answering 429 waits at least as long as it asked.
    refused = health.get(feed_url(REFUSING_FEED))
    assert refused.consecutive_failures == 1 and refused.last_error is not None
    assert "429" in refused.last_error
    assert refused.next_poll_at is not None
    assert refused.next_poll_at >= started + timedelta(seconds=RETRY_AFTER)
    assert all(health.get(feed_url(n)).last_success is not None for n in FEEDS)
    assert first["sink"].pages == len(expected)

    # Second poll of everything: each feed answers 304 to its ETag, and the only article
    # asked for is the pending one. It hangs again: out of attempts, it is a dead letter.
    make_all_due(tmp_path)
    before = len(web.hits)
    second = poll(s, staged, tmp_path)
    again = web.hits[before:]
    feed_hits = [h for h in again if h.host == FEEDS_HOST and h.path != "/robots.txt"]
    assert sorted(h.path.strip("/") for h in feed_hits) == sorted([*FEEDS, REFUSING_FEED])
    answered = [h for h in feed_hits if h.path != f"/{REFUSING_FEED}"]
    assert all(h.status == 304 and "if-none-match" in h.headers for h in answered)
    assert second["fetch"]["not_modified"] == len(FEEDS)
    hanging = urlsplit(staged.hanging)
    fetched = [(h.host, h.path) for h in again if h.path != "/robots.txt"]
    assert [f for f in fetched if f[0] != FEEDS_HOST] == [(hanging.hostname, hanging.path)]
    assert second["sink"].pages == 0
    assert len(read_topic(s, topics.pages)) == len(expected)
    letters = [
        {k: v.decode() for k, v in m.headers} for m in read_topic(s, topics.deadletter("ingest"))
    ]
    gave_up = [d for d in letters if d["newsflow-dlq-url"] == staged.hanging]
    assert len(gave_up) == 1 and "gave up after 2 polls" in gave_up[0]["newsflow-dlq-error"]
    assert gave_up[0]["newsflow-dlq-permanent"] == "0"  # a timeout may pass
    assert all(d["newsflow-dlq-permanent"] == "1" for d in letters if d is not gave_up[0])
    health = HealthStore(tmp_path / "feeds.json")
    assert not any(health.get(feed_url(n)).pending for n in FEEDS)


def test_url_lists_fetch_each_once_and_dead_letter_the_rest(
    pipeline_settings: Settings, real_pages: list[bytes]
) -> None:
    from ingest.monitor import fetch_urls

    s = pipeline_settings
    web = webrig.Web()
    try:
        base = f"http://127.0.0.1:{web.port}"
        good = [f"{base}/news/{i}" for i in range(3)]
        for i, address in enumerate(good):
            web.add(address, webrig.document(real_pages[i], "text/html"))
        gone, busy = f"{base}/gone", f"{base}/busy"
        web.add(gone, webrig.status(404))
        web.add(busy, webrig.status(503, {"Retry-After": "86400"}))  # beyond what we wait
        listed = [*good, good[0] + "?utm_source=x", gone, busy]

        first = asyncio.run(fetch_urls(s, listed, ref="list.txt", allow_private=True))
        assert first.pages == 3 and first.skipped == {"http-404": 1, "http-5xx-exhausted": 1}
        letters = {
            d["newsflow-dlq-url"]: d
            for d in (
                {k: v.decode() for k, v in m.headers}
                for m in read_topic(s, Topics.from_settings(s).deadletter("ingest"))
            )
        }
        assert set(letters) == {gone, busy}
        assert letters[gone]["newsflow-dlq-permanent"] == "1"
        assert letters[busy]["newsflow-dlq-permanent"] == "0"  # worth another try later

        # The same list again: what Kafka has is not fetched again, nor what failed for
        # good (it is remembered); what failed for a passing reason is tried again.
        before = len(web.hits)
        second = asyncio.run(fetch_urls(s, listed, ref="list.txt", allow_private=True))
        again = sorted(h.path for h in web.hits[before:] if h.path != "/robots.txt")
        assert again == ["/busy"]
        assert (second.pages, second.already_seen, len(second.failed_before)) == (0, 4, 1)
        pages = [decode(RawPage, m.value) for m in read_topic(s, Topics.from_settings(s).pages)]
        assert sorted(p.url for p in pages) == sorted(good)
        assert all(p.source.kind == SourceKind.URLS and p.source.ref == "list.txt" for p in pages)
    finally:
        web.close()
