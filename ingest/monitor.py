"""Continuous monitoring: poll each feed and sitemap when it is due, fetch what is new,
put it on Kafka. Per-feed health (validators, rate, failures, next poll) is saved after
every poll, so a restart resumes the schedule instead of polling everything at once, and
the seen-URL store keeps it from refetching articles already sent, or those that failed
for good before (until asked to retry them).
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
from ingest.canon import canonicalize, site_of, url_problem
from ingest.feeds import Feed, parse_feed
from ingest.fetch import FEED_TYPES, SITEMAP_TYPES, Fetched, Fetcher, FetchError
from ingest.jobs import Failure, IngestStats, PageSink
from ingest.sitemaps import Sitemap, parse_sitemap
from ingest.sources import SourcesFile
from ingest.urllist import Listed
from newsflow.errors import SetupError
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
    where: str | None = None  # where it was listed, when not the feed (urls.txt:2)


@dataclass(frozen=True)
class Round:
    """What one fetch_new call did: the canonical URLs it tried (not seen before), and
    those that failed for a passing reason (with the error)."""

    fresh: set[str]
    transient: list[tuple[Link, FetchError]]
    sent: int = 0  # pages put on the pages topic


Progress = Callable[[str], None]


class HealthStore:
    """Per-feed health in one JSON file, written atomically after each poll."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            raw = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            self.health = {u: schedule.FeedHealth.model_validate(h) for u, h in raw.items()}
        except (OSError, ValueError, AttributeError) as err:  # pydantic's errors are too
            raise SetupError(
                f"cannot read the feed health in {path}: {type(err).__name__}: {err}",
                "move the file away to start every feed's schedule afresh",
            ) from err

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
        *,
        retry_failed: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.endpoints, self.fetcher, self.sink = list(endpoints), fetcher, sink
        self.health, self.policy = health, policy
        # Try again what failed for good on an earlier run, instead of skipping it.
        self.retry_failed = retry_failed
        self.progress = progress
        # Canonical URLs being fetched by some poll right now: two feeds of one site list
        # the same articles, and are polled concurrently.
        self._claimed: set[str] = set()

    async def run(
        self,
        stop: asyncio.Event,
        cycles: int | None = None,
        metrics: Path | None = None,
        *,
        now: bool = False,
    ) -> None:
        """Poll each feed and sitemap whenever it is due, until ``stop`` is set. Each poll
        runs on its own: a feed waiting out a crawl delay or a hanging host holds up no
        other. The ``metrics`` file is rewritten as polls finish. With ``cycles``: that
        many rounds of whatever is due, then return (``--once``, tests). ``now``: the
        first round polls every feed and sitemap, due or not (``--now``)."""
        forced = {url for _, _, url in self.endpoints} if now else set()
        if cycles is not None:
            for _ in range(cycles):
                at = datetime.now(UTC)
                due = [e for e in self.endpoints if e[2] in forced or self._due(e[2], at)]
                forced.clear()
                await asyncio.gather(*(self.poll(kind, url) for _, kind, url in due))
                if metrics is not None:
                    self.write_metrics(metrics)
            return
        polling: dict[str, asyncio.Task[None]] = {}
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                at = datetime.now(UTC)
                for _, kind, url in self.endpoints:
                    if url not in polling and (url in forced or self._due(url, at)):
                        forced.discard(url)
                        polling[url] = asyncio.create_task(self.poll(kind, url), name=url)
                await asyncio.wait(
                    {stopping, *polling.values()},
                    timeout=self._seconds_to_next_due(at, busy=polling.keys()),
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

    def _due(self, url: str, now: datetime) -> bool:
        return schedule.is_due(self.health.get(url), now)

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
        before = self.health.get(url)
        now = datetime.now(UTC)
        health, listing, hints, error = await self._poll_listing(kind, url, before, now)
        if isinstance(listing, Sitemap) and listing.kind == "sitemapindex":
            self._add_sitemaps([u.url for u in listing.urls], url)
        listed = self.usable(_links(listing) if listing is not None else [], url)
        # Articles an earlier poll could not fetch are tried again, whatever the feed says
        # now: a 304 does not list them, and a busy feed may have dropped them already.
        pending = {canonicalize(p.url): p for p in health.pending}
        listed_keys = {canonicalize(link.url) for link in listed}
        retries = [
            Link(p.url, p.title, p.published_at) for k, p in pending.items() if k not in listed_keys
        ]
        kind_of = SourceKind.FEED if kind == "feed" else SourceKind.SITEMAP
        failures = self.sink.stats.failures
        fetched = await self.fetch_new([*listed, *retries], kind_of, url)
        new = 0
        if listing is not None:
            new = len((fetched.fresh & listed_keys) - pending.keys())
            health = schedule.update_after_success(
                health, new, now=now, policy=self.policy, **hints
            )
        still = self._still_pending(fetched.transient, pending, url)
        health = schedule.with_pending(health, still, now, self.policy)
        self.health.put(health)
        if error is not None:
            self.sink.stats.failed_polls += 1
            log.warning("%s: poll failed: %s; %s", url, error, _next_poll(health, now))
        if self.progress is not None:
            failed = self.sink.stats.failures - failures
            self.progress(_poll_line(url, error, new, fetched.sent, failed, len(still)))

    async def _poll_listing(
        self, kind: str, url: str, health: schedule.FeedHealth, now: datetime
    ) -> tuple[schedule.FeedHealth, Feed | Sitemap | None, dict[str, Any], str | None]:
        """Fetch and read a feed or sitemap: its health updated unless the answer is a
        full listing (updated once its articles are fetched), the listing, what the
        answer says about the next poll, and why the poll failed, if it did."""
        accept = FEED_TYPES if kind == "feed" else SITEMAP_TYPES
        got = await self.fetcher.fetch(
            url,
            etag=health.etag,
            last_modified=health.last_modified,
            accept=accept,
            max_retry_after=LISTING_RETRY_WAIT,
        )
        if isinstance(got, FetchError):
            error = f"{got.reason}: {got.detail}"
            retry_after = None if got.retry_after is None else str(got.retry_after)
            failed = schedule.update_after_failure(
                health, error, now, policy=self.policy, retry_after=retry_after
            )
            return failed, None, {}, error
        if got.status == 304:
            same = schedule.update_after_not_modified(
                health, now=now, policy=self.policy, **_validators(got)
            )
            return same, None, {}, None
        parsed = (
            parse_feed(got.body, got.url, got.content_type)
            if kind == "feed"
            else parse_sitemap(got.body, got.url)
        )
        if not isinstance(parsed, Feed | Sitemap):
            error = f"{parsed.reason}: {parsed.detail}"
            failed = schedule.update_after_failure(health, error, now, policy=self.policy)
            return failed, None, {}, error
        feed = parsed if isinstance(parsed, Feed) else None
        hints = {
            **_validators(got),
            "ttl_seconds": feed.ttl_seconds if feed else None,
            "update_period_seconds": feed.update_period_seconds if feed else None,
        }
        return health, parsed, hints, None

    def usable(self, links: list[Link], ref: str) -> list[Link]:
        """The links that are fetchable URLs; each other one is a failure where it was
        listed (its feed, or its line of a list), unless it failed so before."""
        out = []
        for link in links:
            problem = url_problem(link.url)
            if problem is None:
                out.append(link)
            elif not self._failed_before(link.url):
                failure = Failure(link.where or ref, "bad-url", problem, url=link.url)
                self.sink.fail(failure, remember=True)
        return out

    def _failed_before(self, url: str) -> bool:
        """Whether ``url`` failed for good on an earlier run, so is not tried again
        (counted, not dead-lettered again); never with ``retry_failed``."""
        if self.retry_failed or self.sink.seen is None:
            return False
        found = self.sink.seen.failed_before(url)
        if found is None:
            return False
        self.sink.stats.failed_before.add(_key(url))
        log.debug("not trying %s again: it failed on %s: %s", url, found.at, found.reason)
        return True

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
                where = link.where or ref
                self.sink.fail(Failure(where, error.reason, detail, link.url, transient=True))
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
            if key in self._claimed:
                continue
            if self._seen(link.url):
                self.sink.stats.already_seen += 1
                continue
            if self._failed_before(link.url):
                continue
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
                    failure = Failure(link.where or ref, got.reason, got.detail, link.url)
                    self.sink.fail(failure, remember=True)
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
        return Round({canonicalize(link.url) for link in fresh}, transient, len(sent))

    def _seen(self, url: str) -> bool:
        seen = self.sink.seen
        return seen is not None and canonicalize(url) in seen


def _key(url: str) -> str:
    """The canonical URL, or the text itself for what is no URL (a bad line of a list)."""
    return canonicalize(url) if url_problem(url) is None else url.strip()


def _next_poll(health: schedule.FeedHealth, now: datetime) -> str:
    from ingest import report

    return f"next poll {report.when(health.next_poll_at, now)}"


def _poll_line(url: str, error: str | None, new: int, sent: int, failed: int, pending: int) -> str:
    """One short line on a finished poll, for a progress display."""
    if error is not None:
        head = f"{url}: poll failed ({error.partition(':')[0]})"
    else:
        head = f"{url}: {new} new"
    tail = [f"{sent} page{'s' if sent != 1 else ''} sent"]
    if failed:
        tail.append(f"{failed} failed")
    if pending:
        tail.append(f"{pending} to try again")
    return f"{head}, {', '.join(tail)}"


def not_due(
    endpoints: Sequence[tuple[str, str, str]], health: HealthStore, now: datetime
) -> list[schedule.FeedHealth]:
    """The health of each endpoint a round at ``now`` would not poll, soonest first."""
    waiting = [h for _, _, url in endpoints if not schedule.is_due(h := health.get(url), now)]
    return sorted(waiting, key=lambda h: (h.next_poll_at or now, h.url))


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
    settings: Settings,
    sources: SourcesFile,
    *,
    once: bool = False,
    allow_private: bool = False,
    now: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
) -> IngestStats:
    """The `ingest feeds` job: until SIGINT/SIGTERM (or one round with ``once``), then
    flush what it holds. ``now``: the first round polls every feed and sitemap, due or
    not; ``retry_failed``: articles that failed for good before are tried again;
    ``progress`` gets one short line per finished poll."""
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
    health = HealthStore(settings.state_dir / "feeds.json")
    with SeenStore(settings.state_dir / "seen.sqlite") as seen:
        sink = PageSink(settings, seen)
        try:
            async with Fetcher(policy) as fetcher:
                poll = schedule.PollPolicy(
                    min_interval=settings.feed_min_interval,
                    max_interval=settings.feed_max_interval,
                    initial_interval=settings.feed_initial_interval,
                )
                monitor = Monitor(
                    sources.endpoints(),
                    fetcher,
                    sink,
                    health,
                    poll,
                    retry_failed=retry_failed,
                    progress=progress,
                )
                log.info("watching %d feeds and sitemaps", len(monitor.endpoints))
                await monitor.run(
                    stop,
                    cycles=1 if once else None,
                    metrics=settings.state_dir / "ingest.prom",
                    now=now,
                )
        finally:
            sink.close()
    return sink.stats


async def fetch_urls(
    settings: Settings,
    urls: Sequence[str | Listed],
    *,
    ref: str,
    allow_private: bool = False,
    retry_failed: bool = False,
    progress: Callable[[int], None] = lambda _: None,
    batch: int = 50,
) -> IngestStats:
    """The `ingest urls` job: fetch each URL politely once (unless already seen, or
    failed for good before and not ``retry_failed``), send its page; ``progress`` gets
    the number of URLs done after each batch. A ``Listed`` entry says where it stands in
    its list (a failure names it); a plain string stands in ``ref``. What is no URL is
    a failure of its own, and the rest is fetched."""
    from ingest.fetch import FetchPolicy
    from ingest.seen import SeenStore

    entries = [u if isinstance(u, Listed) else Listed(ref, u) for u in urls]
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with SeenStore(settings.state_dir / "seen.sqlite") as seen:
        sink = PageSink(settings, seen)
        try:
            async with Fetcher(FetchPolicy(allow_private_addresses=allow_private)) as fetcher:
                health = HealthStore(settings.state_dir / "feeds.json")
                monitor = Monitor([], fetcher, sink, health, retry_failed=retry_failed)
                for start in range(0, len(entries), batch):
                    chunk = entries[start : start + batch]
                    links = [Link(e.text, where=e.where) for e in chunk]
                    done = await monitor.fetch_new(monitor.usable(links, ref), SourceKind.URLS, ref)
                    # One pass over a list: nothing comes back for what failed, so it is
                    # a dead letter now (replayable with the list, minus what is seen).
                    for link, error in done.transient:
                        where = link.where or ref
                        sink.fail(Failure(where, error.reason, error.detail, link.url, True))
                    progress(len(chunk))
        finally:
            sink.close()
    return sink.stats
