"""Continuous monitoring: poll each feed and sitemap when it is due, fetch what is new,
put it on Kafka. Per-feed health (validators, rate, failures, next poll) is saved after
every poll, so a restart resumes the schedule instead of polling everything at once, and
the seen-URL store keeps it from refetching articles already sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

# A feed answering 429/503 with a longer Retry-After is not waited for in the poll: its
# schedule takes the Retry-After as the floor of the next interval instead.
LISTING_RETRY_WAIT = 10.0


@dataclass(frozen=True)
class Link:
    """An article a feed or sitemap points at, with what it already says about it."""

    url: str
    title: str | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class Round:
    """What one fetch_new call did: the canonical URLs it tried (not seen before), and
    those that failed for a passing reason (with the error)."""

    fresh: set[str]
    transient: list[tuple[Link, FetchError]]


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
        """Poll each feed and sitemap whenever it is due, until ``stop`` is set. Each poll
        runs on its own: a feed waiting out a crawl delay or a hanging host holds up no
        other. The ``metrics`` file is rewritten as polls finish. With ``cycles``: that
        many rounds of whatever is due, then return (``--once``, tests)."""
        if cycles is not None:
            for _ in range(cycles):
                now = datetime.now(UTC)
                due = [e for e in self.endpoints if schedule.is_due(self.health.get(e[2]), now)]
                await asyncio.gather(*(self.poll(kind, url) for _, kind, url in due))
                if metrics is not None:
                    self.write_metrics(metrics)
            return
        polling: dict[str, asyncio.Task[None]] = {}
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                now = datetime.now(UTC)
                for _, kind, url in self.endpoints:
                    if url not in polling and schedule.is_due(self.health.get(url), now):
                        polling[url] = asyncio.create_task(self.poll(kind, url), name=url)
                await asyncio.wait(
                    {stopping, *polling.values()},
                    timeout=self._seconds_to_next_due(now, busy=polling.keys()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                finished = [url for url, task in polling.items() if task.done()]
                for url in finished:
                    polling.pop(url).result()  # a poll that raised (Kafka refused) stops us
                if finished and metrics is not None:
                    self.write_metrics(metrics)
        finally:
            # Stopping mid-poll loses nothing: a page is marked seen only once Kafka has it.
            stopping.cancel()
            for task in polling.values():
                task.cancel()
            await asyncio.gather(*polling.values(), return_exceptions=True)
            if metrics is not None:
                self.write_metrics(metrics)

    def write_metrics(self, path: Path) -> None:
        from ingest import metrics

        feeds = [self.health.get(u) for _, _, u in self.endpoints]
        text = metrics.render(
            self.sink.stats, self.fetcher.stats.snapshot(), feeds, datetime.now(UTC)
        )
        metrics.write(path, text)

    def _seconds_to_next_due(self, now: datetime, busy: Collection[str]) -> float:
        """Until the next endpoint not being polled is due (at most a minute: endpoints
        can be added by a sitemap index)."""
        times = [self.health.get(u).next_poll_at for _, _, u in self.endpoints if u not in busy]
        soonest = min((t for t in times if t is not None), default=None)
        if soonest is None:
            return 60.0
        return min(60.0, max(0.0, (soonest - now).total_seconds()))

    async def poll(self, kind: str, url: str) -> None:
        health = self.health.get(url)
        accept = FEED_TYPES if kind == "feed" else SITEMAP_TYPES
        got = await self.fetcher.fetch(
            url,
            etag=health.etag,
            last_modified=health.last_modified,
            accept=accept,
            max_retry_after=LISTING_RETRY_WAIT,
        )
        now = datetime.now(UTC)
        listing: Feed | Sitemap | None = None
        hints: dict[str, Any] = {}  # what a full, readable answer says about the next poll
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
            parsed = (
                parse_feed(got.body, got.url, got.content_type)
                if kind == "feed"
                else parse_sitemap(got.body, got.url)
            )
            if isinstance(parsed, Feed | Sitemap):
                listing = parsed
                feed = parsed if isinstance(parsed, Feed) else None
                hints = {
                    **_validators(got),
                    "ttl_seconds": feed.ttl_seconds if feed else None,
                    "update_period_seconds": feed.update_period_seconds if feed else None,
                }
            else:
                health = schedule.update_after_failure(
                    health, f"{parsed.reason}: {parsed.detail}", now, policy=self.policy
                )
        if isinstance(listing, Sitemap) and listing.kind == "sitemapindex":
            self._add_sitemaps([u.url for u in listing.urls], url)
        listed = _links(listing) if listing is not None else []
        # Articles an earlier poll could not fetch are tried again, whatever the feed says
        # now: a 304 does not list them, and a busy feed may have dropped them already.
        pending = {canonicalize(p.url): p for p in health.pending}
        listed_keys = {canonicalize(link.url) for link in listed}
        retries = [
            Link(p.url, p.title, p.published_at) for k, p in pending.items() if k not in listed_keys
        ]
        kind_of = SourceKind.FEED if kind == "feed" else SourceKind.SITEMAP
        fetched = await self.fetch_new([*listed, *retries], kind_of, url)
        if listing is not None:
            new = len((fetched.fresh & listed_keys) - pending.keys())
            health = schedule.update_after_success(
                health, new, now=now, policy=self.policy, **hints
            )
        still = self._still_pending(fetched.transient, pending, url)
        self.health.put(schedule.with_pending(health, still, now, self.policy))

    def _still_pending(
        self,
        failed: list[tuple[Link, FetchError]],
        before: dict[str, schedule.Pending],
        ref: str,
    ) -> tuple[schedule.Pending, ...]:
        """The articles to try at the next poll; those out of attempts go to the
        dead-letter topic with their last error."""
        out = []
        for link, error in failed:
            earlier = before.get(canonicalize(link.url))
            attempts = (earlier.attempts if earlier else 0) + 1
            if attempts >= self.policy.link_attempts:
                detail = f"{error.detail} (gave up after {attempts} polls)"
                self.sink.skip(ref, -1, link.url, error.reason, detail, transient=True)
                continue
            log.info("will try %s again at the next poll: %s", link.url, error.reason)
            out.append(
                schedule.Pending(
                    url=link.url,
                    title=link.title,
                    published_at=link.published_at,
                    attempts=attempts,
                    last_error=f"{error.reason}: {error.detail}",
                )
            )
        return tuple(out)

    def _add_sitemaps(self, urls: list[str], parent: str) -> None:
        """The sitemaps a sitemap index lists are polled on their own schedules."""
        known = {u for _, _, u in self.endpoints}
        name = next((n for n, _, u in self.endpoints if u == parent), parent)
        self.endpoints += [(name, "sitemap", u) for u in urls if u not in known]

    async def fetch_new(self, links: Sequence[Link], kind: SourceKind, ref: str) -> Round:
        """Fetch the links not seen yet and send their pages. Failures that a later try
        may cure come back in ``Round.transient``; the rest go to the dead-letter topic."""
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

    async def _fetch_claimed(self, fresh: list[Link], kind: SourceKind, ref: str) -> Round:
        results = await asyncio.gather(*(self.fetcher.fetch(link.url) for link in fresh))
        sent, transient = [], []
        for link, got in zip(fresh, results, strict=True):
            if isinstance(got, FetchError):
                if got.transient:
                    transient.append((link, got))
                else:
                    self.sink.skip(ref, -1, link.url, got.reason, got.detail)
                continue
            self.sink.page(_page(link, got, kind, ref))
            sent.append(link.url)
        # Remember only what Kafka acknowledged: a crash before this refetches, never loses.
        # The listed URL too, not only the one a redirect ended at, or it would be refetched.
        # In a thread: a flush waits for Kafka's acks, and other polls must go on meanwhile.
        await asyncio.to_thread(self.sink.producer.flush)
        self.sink.seen_delivered()
        if self.sink.seen is not None and sent:
            self.sink.seen.add_many(sent)
        return Round({canonicalize(link.url) for link in fresh}, transient)

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
                    done = await monitor.fetch_new(chunk, SourceKind.URLS, ref)
                    # One pass over a list: nothing comes back for what failed, so it is
                    # a dead letter now (replayable with the list, minus what is seen).
                    for link, error in done.transient:
                        sink.skip(ref, -1, link.url, error.reason, error.detail, transient=True)
                    progress(len(chunk))
        finally:
            sink.close()
    return sink.stats
