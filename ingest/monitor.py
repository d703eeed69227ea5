"""Continuous monitoring: poll each feed and sitemap when it is due, fetch what is new,
put it on Kafka. Per-feed health (validators, rate, failures, next poll) is saved after
every poll, so a restart resumes the schedule instead of polling everything at once, and
the seen-URL store keeps it from refetching articles already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest import schedule
from ingest.canon import canonicalize, site_of
from ingest.feeds import Feed, parse_feed
from ingest.fetch import FEED_TYPES, SITEMAP_TYPES, Fetched, Fetcher, FetchError
from ingest.jobs import IngestStats, PageSink
from ingest.sitemaps import Sitemap, parse_sitemap
from ingest.sources import SourcesFile
from newsflow.records import RawPage, Source, SourceKind
from newsflow.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Link:
    """An article a feed or sitemap points at, with what it already says about it."""

    url: str
    title: str | None = None
    published_at: datetime | None = None


class HealthStore:
    """Per-feed health in one JSON file, written atomically after each poll."""

    def __init__(self, path: Path) -> None:
        self.path = path
        raw = json.loads(path.read_text()) if path.is_file() else {}
        self.health = {u: schedule.FeedHealth.model_validate(h) for u, h in raw.items()}

    def get(self, url: str) -> schedule.FeedHealth:
        return self.health.get(url) or schedule.FeedHealth(url=url)

    def put(self, health: schedule.FeedHealth) -> None:
        self.health[health.url] = health
        data = {u: h.model_dump(mode="json") for u, h in self.health.items()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.path)


class Monitor:
    def __init__(
        self,
        endpoints: Sequence[tuple[str, str, str]],
        fetcher: Fetcher,
        sink: PageSink,
        health: HealthStore,
        policy: schedule.PollPolicy = schedule.DEFAULT_POLICY,
    ) -> None:
        self.endpoints, self.fetcher, self.sink = list(endpoints), fetcher, sink
        self.health, self.policy = health, policy
        # Canonical URLs being fetched by some poll right now: two feeds of one site list
        # the same articles, and are polled concurrently.
        self._claimed: set[str] = set()

    async def run(
        self, stop: asyncio.Event, cycles: int | None = None, metrics: Path | None = None
    ) -> None:
        """Poll whatever is due until ``stop`` is set (or ``cycles`` rounds are done);
        rewrite the ``metrics`` file after each round."""
        done = 0
        while not stop.is_set() and (cycles is None or done < cycles):
            now = datetime.now(UTC)
            due = [e for e in self.endpoints if schedule.is_due(self.health.get(e[2]), now)]
            await asyncio.gather(*(self.poll(kind, url) for _, kind, url in due))
            done += 1
            if metrics is not None:
                self.write_metrics(metrics)
            await _sleep_until(stop, self._next_due(), cycles is not None)

    def write_metrics(self, path: Path) -> None:
        from ingest import metrics

        feeds = [self.health.get(u) for _, _, u in self.endpoints]
        text = metrics.render(
            self.sink.stats, self.fetcher.stats.snapshot(), feeds, datetime.now(UTC)
        )
        metrics.write(path, text)

    def _next_due(self) -> datetime | None:
        times = [self.health.get(u).next_poll_at for _, _, u in self.endpoints]
        return min((t for t in times if t is not None), default=None)

    async def poll(self, kind: str, url: str) -> None:
        health = self.health.get(url)
        accept = FEED_TYPES if kind == "feed" else SITEMAP_TYPES
        got = await self.fetcher.fetch(
            url, etag=health.etag, last_modified=health.last_modified, accept=accept
        )
        now = datetime.now(UTC)
        if isinstance(got, FetchError):
            health = schedule.update_after_failure(
                health,
                f"{got.reason}: {got.detail}",
                now,
                policy=self.policy,
                retry_after=None if got.retry_after is None else str(got.retry_after),
            )
        elif got.status == 304:
            health = schedule.update_after_not_modified(
                health, now=now, policy=self.policy, **_validators(got)
            )
        else:
            health = await self._read_listing(kind, url, got, health, now)
        self.health.put(health)

    async def _read_listing(
        self, kind: str, url: str, got: Fetched, health: schedule.FeedHealth, now: datetime
    ) -> schedule.FeedHealth:
        parsed = (
            parse_feed(got.body, got.url, got.content_type)
            if kind == "feed"
            else (parse_sitemap(got.body, got.url))
        )
        if not isinstance(parsed, Feed | Sitemap):
            return schedule.update_after_failure(
                health, f"{parsed.reason}: {parsed.detail}", now, policy=self.policy
            )
        if isinstance(parsed, Sitemap) and parsed.kind == "sitemapindex":
            self._add_sitemaps([u.url for u in parsed.urls], url)
        links = _links(parsed)
        new = await self.fetch_new(
            links, SourceKind.FEED if kind == "feed" else SourceKind.SITEMAP, url
        )
        feed = parsed if isinstance(parsed, Feed) else None
        return schedule.update_after_success(
            health,
            new,
            now=now,
            policy=self.policy,
            **_validators(got),
            ttl_seconds=feed.ttl_seconds if feed else None,
            update_period_seconds=feed.update_period_seconds if feed else None,
        )

    def _add_sitemaps(self, urls: list[str], parent: str) -> None:
        """The sitemaps a sitemap index lists are polled on their own schedules."""
        known = {u for _, _, u in self.endpoints}
        name = next((n for n, _, u in self.endpoints if u == parent), parent)
        self.endpoints += [(name, "sitemap", u) for u in urls if u not in known]

    async def fetch_new(self, links: Sequence[Link], kind: SourceKind, ref: str) -> int:
        """Fetch the links not seen yet and send their pages; how many were new."""
        fresh = self._claim(links)
        try:
            return await self._fetch_claimed(fresh, kind, ref)
        finally:
            self._claimed.difference_update(canonicalize(link.url) for link in fresh)

    def _claim(self, links: Sequence[Link]) -> list[Link]:
        fresh = []
        for link in links:
            key = canonicalize(link.url)
            if key not in self._claimed and not self._seen(link.url):
                self._claimed.add(key)
                fresh.append(link)
        return fresh

    async def _fetch_claimed(self, fresh: list[Link], kind: SourceKind, ref: str) -> int:
        results = await asyncio.gather(*(self.fetcher.fetch(link.url) for link in fresh))
        sent = []
        for link, got in zip(fresh, results, strict=True):
            if isinstance(got, FetchError):
                self.sink.skip(ref, -1, link.url, got.reason, got.detail)
                continue
            self.sink.page(_page(link, got, kind, ref))
            sent.append(link.url)
        # Remember only what Kafka acknowledged: a crash before this refetches, never loses.
        # The listed URL too, not only the one a redirect ended at, or it would be refetched.
        self.sink.producer.flush()
        self.sink.seen_delivered()
        if self.sink.seen is not None and sent:
            self.sink.seen.add_many(sent)
        return len(fresh)

    def _seen(self, url: str) -> bool:
        seen = self.sink.seen
        return seen is not None and canonicalize(url) in seen


def _links(parsed: Feed | Sitemap) -> list[Link]:
    if isinstance(parsed, Feed):
        return [Link(e.url, e.title, e.published_at) for e in parsed.entries]
    # A sitemap index lists sitemaps, not articles: those are polled when declared.
    if parsed.kind == "sitemapindex":
        return []
    return [
        Link(
            u.url,
            u.news.title if u.news else None,
            (u.news.published_at if u.news else None) or u.lastmod,
        )
        for u in parsed.urls
    ]


def _page(link: Link, got: Fetched, kind: SourceKind, ref: str) -> RawPage:
    return RawPage(
        url=got.url,
        canonical_url=canonicalize(got.url),
        site=site_of(got.url),
        fetched_at=datetime.now(UTC),
        status=got.status,
        content_type=got.headers.get("content-type", ""),
        encoding=got.encoding,
        headers={k: v for k, v in got.headers.items() if k != "content-type"},
        body=got.body,
        source=Source(kind=kind, ref=ref),
        hint_title=link.title,
        hint_published_at=link.published_at,
    )


def _validators(got: Fetched) -> dict[str, str | None]:
    h = got.headers
    return {
        "etag": h.get("etag"),
        "last_modified": h.get("last-modified"),
        "cache_control": h.get("cache-control"),
        "expires": h.get("expires"),
    }


async def _sleep_until(stop: asyncio.Event, when: datetime | None, no_wait: bool) -> None:
    if no_wait:
        return
    seconds = 60.0 if when is None else max(0.0, (when - datetime.now(UTC)).total_seconds())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 1.0))


async def run_monitor(
    settings: Settings, sources: SourcesFile, *, once: bool = False, allow_private: bool = False
) -> IngestStats:
    """The `ingest feeds` job: until SIGINT/SIGTERM (or one round with ``once``), then
    flush what it holds."""
    import signal

    from ingest.fetch import FetchPolicy
    from ingest.seen import SeenStore

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    policy = FetchPolicy(allow_private_addresses=allow_private)
    if sources.user_agent:
        policy = dataclasses.replace(policy, user_agent=sources.user_agent)
    with SeenStore(settings.state_dir / "seen.sqlite") as seen:
        sink = PageSink(settings, seen)
        try:
            async with Fetcher(policy) as fetcher:
                health = HealthStore(settings.state_dir / "feeds.json")
                poll = schedule.PollPolicy(
                    min_interval=settings.feed_min_interval,
                    max_interval=settings.feed_max_interval,
                    initial_interval=settings.feed_initial_interval,
                )
                monitor = Monitor(sources.endpoints(), fetcher, sink, health, poll)
                log.info("watching %d feeds and sitemaps", len(monitor.endpoints))
                await monitor.run(
                    stop, cycles=1 if once else None, metrics=settings.state_dir / "ingest.prom"
                )
        finally:
            sink.close()
    return sink.stats


async def fetch_urls(
    settings: Settings,
    urls: Sequence[str],
    *,
    ref: str,
    allow_private: bool = False,
    progress: Callable[[int], None] = lambda _: None,
    batch: int = 50,
) -> IngestStats:
    """The `ingest urls` job: fetch each URL politely once (unless already seen), send its
    page; ``progress`` gets the number of URLs done after each batch."""
    from ingest.fetch import FetchPolicy
    from ingest.seen import SeenStore

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with SeenStore(settings.state_dir / "seen.sqlite") as seen:
        sink = PageSink(settings, seen)
        try:
            async with Fetcher(FetchPolicy(allow_private_addresses=allow_private)) as fetcher:
                monitor = Monitor([], fetcher, sink, HealthStore(settings.state_dir / "feeds.json"))
                for start in range(0, len(urls), batch):
                    chunk = [Link(u) for u in urls[start : start + batch]]
                    await monitor.fetch_new(chunk, SourceKind.URLS, ref)
                    progress(len(chunk))
        finally:
            sink.close()
    return sink.stats
