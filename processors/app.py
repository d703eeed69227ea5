"""The Faust app: five thin agents around processors.stages.

    pages     --clean-->   articles   (tables: site-stories, boilerplate; key: site)
                           recleans   (earlier articles of the site to clean again)
    articles  --stories--> clustered  (table: stories; one partition, global)
    clustered --enrich-->  enriched   (spaCy, batched)
    enriched  --index-->   Elasticsearch (bulk)
                           matches    (what the watches match, once indexed; key: story)
    recleans  --reclean--> Elasticsearch (found, cleaned again, re-indexed: processors.reclean)
    matches   --alert-->   alerts     (table: alerted; the first of each story per watch)
    alerts    --webhook--> the user's URL (only with NEWSFLOW_WEBHOOK_URL)

Delivery is at least once, into Kafka and into Elasticsearch, with idempotent ids. An
agent tells the app a message is done (``PipelineApp.done``) only after what it produced
was acknowledged: every record it sent by Kafka (awaited, and sent again while Kafka
cannot take it), or the documents by Elasticsearch; what it could not process was
delivered to its dead-letter topic. Only then may the message's offset be committed
(processors.faust_overrides owns how, and every other change to Faust's behaviour).

Agents read raw bytes and decode them themselves, so a message that does not decode is
a value routed to the stage's dead-letter topic, not an exception inside Faust. No agent
body raises on bad input; what is not about one message (spaCy's model cannot load, a
dead letter Kafka refuses) stops the worker with the reason instead, before anything is
acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

from elasticsearch import AsyncElasticsearch
from faust.exceptions import PartitionsMismatch

from newsflow import connections, deadletter, query, watches
from newsflow.records import (
    Alert,
    Article,
    DecodeError,
    EnrichedArticle,
    Filtered,
    NameLabel,
    NameVote,
    PageOrigin,
    RawPage,
    Reclean,
    decode,
)
from newsflow.services import require_elasticsearch, require_kafka, wait_for
from newsflow.settings import Settings
from newsflow.topics import MAX_MESSAGE_BYTES, Topics
from processors import (
    corenlp,
    faust_overrides,
    index,
    name_labels,
    reclean,
    stages,
    stories,
    sweep,
    webhook,
)
from processors.entities import EntityOptions, Tagger
from processors.follow import Follower
from processors.watchlist import WatchList

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds the reclean agent waits, per message, for the articles a request names to be
# indexed; NEWSFLOW_RECLEAN_WAIT is the total, over the times it asks again.
RECLEAN_POLL = 5.0


def wait_for_services(settings: Settings, interval: float = 5.0) -> None:
    """Return once Kafka, then Elasticsearch, answer. A worker started before the stack
    (or while it restarts) waits for it, saying so once in one line, instead of failing.
    SIGTERM meanwhile stops it as a stop of the running worker would (exit 0); Ctrl-C is
    the command line's (exit 130)."""
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        wait_for(partial(require_kafka, settings), _say(), interval)
        wait_for(partial(require_elasticsearch, settings), _say(), interval)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_cleanly(signum: int, frame: Any) -> None:
    log.info("stopped while waiting for the services")
    raise SystemExit(0)


def _say() -> Callable[[str], None]:
    """wait_for says at most twice: that it waits (a warning: nothing is processed
    meanwhile), then that it goes on."""
    said: list[str] = []

    def say(message: str) -> None:
        log.log(logging.INFO if said else logging.WARNING, "%s", message)
        said.append(message)

    return say


def prepare(settings: Settings) -> None:
    """Topics and index template, created if missing: what a worker needs to start."""
    from newsflow.topics import ensure_topics

    specs = Topics.from_settings(settings).specs()
    ensure_topics(settings, specs)
    with connections.elasticsearch(settings) as es:
        index.ensure_template(es, settings.topic_prefix)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the pipeline in this process until SIGTERM or Ctrl-C (a clean stop commits)."""
    from faust.worker import Worker

    datadir = settings.state_dir / "faust"
    faust_overrides.discard_unclean_state(datadir)
    if settings.ner_backend == "corenlp":
        # Here, in the main thread: the tagger itself is loaded in an executor's thread.
        corenlp.start_jvm(settings.ner_dir, settings.ner_heap, settings.ner_java_home)
    pipeline = Pipeline(settings)
    # Logging stays as the command line set it (processors.worker_logs), and without
    # mode's set-up nothing drives Faust's terminal spinner, which would only write its
    # cursor escapes into the log.
    worker = Worker(pipeline.app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    finally:
        # Reached after Faust's last commit and producer flush; never after a kill.
        crashed = worker.crash_reason or pipeline.app.crash_reason
        if crashed is None and pipeline.app.changelog_failure is None:
            faust_overrides.mark_clean_stop(datadir)


# Articles whose table writes Faust's producer buffer holds before it pauses intake; the
# demo's bursts reach about 4 (a peak of 410 records in the buffer).
BUFFERED_ARTICLES = 16
# Boilerplate counts written per article: one per paragraph seen (7 on average in the
# demo), for a long article.
BOILERPLATE_WRITES = 16


def producer_buffer_size(policy: stories.StoryPolicy) -> int:
    """How many table writes may wait in Faust's producer buffer before the next message
    waits for them (Faust warns "producer buffer full" then).

    Faust's own bound, 100 records, is sized for a write or two per event. An article
    writes far more, and must: each story table (the site's, in clean, and the global
    one, in stories) indexes it under one key per LSH band (42 with the default policy,
    fixed by the threshold and recall) besides its entry, text hash and time slot, so
    about 97 changelog records per article in all, in one synchronous burst. It stays
    a bound (1728 records of about 1 kB with the default policy), and backpressure
    still acts past it.
    """
    per_article = 2 * (policy.bands + 4) + BOILERPLATE_WRITES
    return BUFFERED_ARTICLES * per_article


# The stories table's key in the stream clock: one partition, fed by every site.
STORIES_CLOCK = "stories"


class FatalError(Exception):
    """Not about one message: the worker stops with this reason (nothing acknowledged)."""


@dataclass(frozen=True)
class Outgoing:
    """A record an agent produces for one input."""

    topic: Any  # a faust Topic
    key: bytes | None
    value: bytes | None  # None: a tombstone, on a compacted topic
    headers: list[tuple[str, bytes]] | None = None


def _refused_for_good(err: BaseException) -> bool:
    """Kafka will never take this record (too large, say): retrying cannot help."""
    from aiokafka.errors import (  # type: ignore[import-untyped]
        MessageSizeTooLargeError,
        RecordTooLargeError,
    )

    cause = err.__cause__ if err.__cause__ is not None else err
    return isinstance(cause, MessageSizeTooLargeError | RecordTooLargeError)


def _transient(err: BaseException) -> bool:
    """A failure of something outside the message (a timeout, a connection): the dead
    letter says the message may pass later."""
    retriable = bool(getattr(err, "retriable", False))
    return retriable or isinstance(err, TimeoutError | ConnectionError | asyncio.TimeoutError)


class Pipeline:
    """The app and its topics, tables and agents, built from settings (no globals)."""

    def __init__(self, settings: Settings, options: stages.PipelineOptions | None = None) -> None:
        self.settings = settings
        self.options = options or stages.PipelineOptions()
        (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
        self.topics = Topics.from_settings(settings)
        self.app = faust_overrides.PipelineApp(
            self.topics.group,
            head_grace=settings.head_grace,
            **connections.faust_broker(settings),
            store="rocksdb://",
            datadir=str(settings.state_dir / "faust"),
            topic_partitions=settings.topic_partitions,
            topic_replication_factor=settings.topic_replication,
            web_enabled=False,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
            # The agents batch their own work; Faust's default of 2.8 s between commits only
            # widens the window of messages redelivered after a crash.
            broker_commit_every=100,
            broker_commit_interval=1.0,
            # A crashed worker's partitions move after 15 s instead of Faust's 60 s.
            broker_session_timeout=15.0,
            broker_heartbeat_interval=3.0,
            producer_max_request_size=MAX_MESSAGE_BYTES,
            consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        )
        # Faust's bound of 100 buffered table writes is about one article's (see below).
        self.app.limit_producer_buffer(producer_buffer_size(self.options.stories))
        self._tagger: Tagger | None = None
        self._es: AsyncElasticsearch | None = None
        self._http: Any = None  # the webhook's httpx client, made on first use
        self.watchlist = WatchList(settings, self.topics.watches)
        self.learning = name_labels.Policy(
            votes=settings.ner_learn_votes,
            share=settings.ner_learn_share,
            half_life=settings.ner_learn_half_life,
        )
        self.labelbook: Follower[str] = Follower(
            settings, self.topics.labels, name_labels.fold, "learnt labels"
        )
        self._declare()

    def _topic(self, name: str, partitions: int) -> Any:
        return self.app.topic(
            name, key_serializer="raw", value_serializer="raw", partitions=partitions
        )

    def _declare(self) -> None:
        t, p = self.topics, self.settings.topic_partitions
        self.pages, self.articles = self._topic(t.pages, p), self._topic(t.articles, 1)
        self.clustered, self.enriched = self._topic(t.clustered, p), self._topic(t.enriched, p)
        self.filtered, self.recleans = self._topic(t.filtered, p), self._topic(t.recleans, p)
        self.matches, self.alerts = self._topic(t.matches, p), self._topic(t.alerts, p)
        self.names, self.labels = self._topic(t.names, p), self._topic(t.labels, 1)
        self.dlq = {
            s: self._topic(t.deadletter(s), 1)
            for s in ("clean", "stories", "enrich", "index", "reclean", "alert", "webhook", "names")
        }
        # Values are plain lists and dicts (JSON, the app's default serializer).
        parts = t.tables()
        self.site_stories = self.app.Table("site-stories", partitions=parts["site-stories"])
        self.boilerplate = self.app.Table("boilerplate", partitions=parts["boilerplate"])
        self.stories = self.app.Table("stories", partitions=parts["stories"])
        self.alerted = self.app.Table("alerted", partitions=parts["alerted"])
        self.name_labels = self.app.Table("name-labels", partitions=parts["name-labels"])
        self.app.guarded_topics.update(
            (t.pages, t.articles, t.clustered, t.enriched, t.recleans, t.matches, t.alerts)
        )
        self.app.agent(self.pages, name="clean")(self._clean)
        self.app.agent(self.articles, name="stories")(self._stories)
        self.app.agent(self.clustered, name="enrich")(self._enrich)
        self.app.agent(self.enriched, name="index")(self._index)
        self.app.agent(self.recleans, name="reclean")(self._reclean)
        self.app.agent(self.matches, name="alert")(self._alert)
        if self.learning.on:
            self.app.agent(self.names, name="names")(self._names)
            self.app.task(self._follow_labels)
        if self.settings.webhook_url:
            self.app.agent(self.alerts, name="webhook")(self._webhook)
        self.app.task(self._follow_watches)
        self._last_sweep = time.monotonic()
        self._last_site_sweep: dict[Any, float] = {}  # by partition (and alerted partition)
        self._clock = sweep.StreamClock()  # what the sweeps expire entries against
        # mode's receiver type is a union mypy cannot match a bound coroutine method to.
        self.app.on_before_shutdown.connect(cast(Any, self._close_clients))

    async def _close_clients(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        if self._es is not None:
            await self._es.close()
            self._es = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- shared plumbing ------------------------------------------------------------------

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        """CPU-bound work (trafilatura, spaCy) off the event loop, so heartbeats and the
        other agents keep running while it computes."""
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))

    async def deliver(self, outgoing: Iterable[Outgoing], max_backoff: float = 30.0) -> None:
        """Send every record and wait until Kafka has acknowledged each. A failed delivery
        is sent again, with backoff, for as long as it takes: the input stays
        unacknowledged meanwhile, so a stopped broker pauses the stage and loses nothing.
        A record Kafka refuses for good raises PermanentError (its input is dead-lettered)."""
        pending, delay = list(outgoing), 0.5
        while pending:
            results = await asyncio.gather(*map(self._send, pending), return_exceptions=True)
            failed = []
            for record, result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    if _refused_for_good(result):
                        raise deadletter.PermanentError(f"Kafka refused a result: {result}")
                    failed.append((record, result))
            if failed:
                log.warning(
                    "%d of %d deliveries failed (%r); sending again in %.1fs",
                    len(failed),
                    len(pending),
                    failed[0][1],
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_backoff)
            pending = [record for record, _ in failed]

    async def _send(self, record: Outgoing) -> Any:
        fut = await record.topic.send(key=record.key, value=record.value, headers=record.headers)
        return await fut

    def _dead_letter(
        self,
        stage: str,
        event: Any,
        error: BaseException,
        article_id: str | None = None,
        url: str | None = None,
    ) -> Outgoing:
        msg = event.message
        origin = deadletter.Origin(msg.topic, msg.partition, msg.offset, list(msg.headers or []))
        if _transient(error) and not isinstance(error, deadletter.PipelineError):
            error = deadletter.TransientError(f"{type(error).__name__}: {error}")
        headers = deadletter.failure_headers(stage, error, origin, article_id=article_id, url=url)
        log.warning(
            "%s: %s[%d]@%d -> dead letter: %s: %s (article %s, %s)",
            stage,
            msg.topic,
            msg.partition,
            msg.offset,
            type(error).__name__,
            error,
            article_id,
            url,
        )
        return Outgoing(self.dlq[stage], msg.key, msg.value, headers)

    async def _process(
        self, stage: str, event: Any, work: Callable[[], Awaitable[list[Outgoing]]]
    ) -> None:
        """One message: its results delivered (or its dead letter), then done."""
        try:
            out = await work()
            await self.deliver(out)
        except FatalError:
            raise
        except PartitionsMismatch as err:
            # A table cannot write its changelog: true of every message, not this one.
            raise FatalError(f"the {stage} stage cannot write its table: {err}") from err
        except Exception as err:  # never let one message stop the agent
            await self.deliver([self._dead_letter(stage, event, err)])
        self.app.done(event.message)

    async def _fatal(self, err: FatalError) -> None:
        log.critical("stopping the worker: %s", err)
        await self.app.crash(err)

    # -- agents ---------------------------------------------------------------------------

    async def _guard(self, name: str, loop: Awaitable[None]) -> None:
        """Run an agent's loop. What escapes it is not about one message (the dead-letter
        topic refused a letter, a bug): the worker stops with the reason rather than go
        on with a message left unfinished, which would hold back every later commit of
        its partition. Nothing unfinished was acknowledged: it is processed again."""
        try:
            await loop
        except FatalError as err:
            await self._fatal(err)
        except Exception as err:
            await self._fatal(FatalError(f"the {name} agent failed: {type(err).__name__}: {err}"))

    async def _clean(self, stream: Any) -> None:
        await self._guard("clean", self._clean_loop(stream))

    async def _clean_loop(self, stream: Any) -> None:
        async for event in stream.events():
            self.app.processing(event.message)
            await self._process("clean", event, partial(self._clean_one, event))
            await self._maybe_sweep_sites(event.message.partition)

    async def _clean_one(self, event: Any) -> list[Outgoing]:
        page = decode(RawPage, event.value)
        self._clock.saw(event.message.partition, page.fetched_at.timestamp())
        origin = PageOrigin(partition=event.message.partition, offset=event.message.offset)
        found = await self._offload(stages.extract, page, self.options, origin)
        if isinstance(found, Filtered):
            log.info("filtered %s (%s): %s", page.url, found.reason, found.detail)
            return [Outgoing(self.filtered, page.site.encode(), found.encode())]
        stages.note_site(self.site_stories, event.message.partition, page.site)
        cleaned = stages.deduplicate(
            page, found, self.site_stories, self.boilerplate, self.options, origin
        )
        key = page.site.encode()
        out = [Outgoing(self.recleans, key, r.encode()) for r in cleaned.recleans]
        for r in cleaned.recleans:
            log.info(
                "%s makes %d earlier article(s) of %s to clean again (%d boilerplate "
                "paragraph(s)%s)",
                page.url,
                len(r.articles),
                page.site,
                len(r.boilerplate),
                ", its teasers" if r.teaser else "",
            )
        stub = stages.too_short_after_dedup(cleaned.article, self.options)
        if stub is not None:
            log.info("filtered %s (%s): %s", page.url, stub.reason, stub.detail)
            return [*out, Outgoing(self.filtered, key, stub.encode())]
        return [*out, Outgoing(self.articles, key, cleaned.article.encode())]

    async def _stories(self, stream: Any) -> None:
        await self._guard("stories", self._stories_loop(stream))

    async def _stories_loop(self, stream: Any) -> None:
        async for event in stream.events():
            self.app.processing(event.message)
            await self._process("stories", event, partial(self._stories_one, event))
            await self._maybe_sweep_stories()

    async def _stories_one(self, event: Any) -> list[Outgoing]:
        article = decode(Article, event.value)
        self._clock.saw(STORIES_CLOCK, article.fetched_at.timestamp())
        article = stages.cluster(article, self.stories, self.options)
        key = article.article_id.encode()
        skipped = stages.skip_enrichment(article)
        if skipped is not None:
            return [Outgoing(self.enriched, key, skipped.encode())]
        return [Outgoing(self.clustered, key, article.encode())]

    async def _maybe_sweep_sites(self, partition: int) -> None:
        """Once an interval per partition, drop the site tables' expired entries, from
        inside the agent (Faust writes a table's changelog to the current event's
        partition), after the page is done: a failed sweep is logged, never blamed on it."""
        last = self._last_site_sweep.setdefault(partition, time.monotonic())
        now = self._clock.now(partition)  # the pages' time, not the wall clock's
        if now is None or time.monotonic() - last < self.settings.sweep_interval:
            return
        self._last_site_sweep[partition] = time.monotonic()
        try:
            swept = await sweep.sites(
                self.site_stories, self.boilerplate, partition, now, self.options
            )
            log.info("swept %d expired entries of partition %d's sites", swept, partition)
        except Exception:
            log.exception(
                "sweeping partition %d's site tables failed; tried again later", partition
            )

    async def _maybe_sweep_stories(self) -> None:
        """Drop expired stories (see _maybe_sweep_sites); the stories table has one
        partition, so every key is the current event's."""
        now = self._clock.now(STORIES_CLOCK)
        if now is None or time.monotonic() - self._last_sweep < self.settings.sweep_interval:
            return
        self._last_sweep = time.monotonic()
        try:
            swept = stories.sweep(self.stories, now, self.options.stories)
            log.info("swept %d expired entries from the stories table", swept)
        except Exception:
            log.exception("sweeping the stories table failed; tried again later")

    async def _enrich(self, stream: Any) -> None:
        await self._guard("enrich", self._enrich_loop(stream))

    async def _enrich_loop(self, stream: Any) -> None:
        async for events in stream.noack_take(32, within=0.5):
            for event in events:
                self.app.processing(event.message)
            await self._enrich_events(events)
            for event in events:
                self.app.done(event.message)
                await stream.ack(event)

    async def _enrich_events(self, events: list[Any]) -> None:
        good, out = await self._decode_batch("enrich", events, Article)
        if good:
            tagger = await self._tagger_or_fatal()
            try:
                done = await self._offload(stages.enrich, [a for _, a in good], tagger)
            except Exception as err:  # a batch failed: find the culprit one by one
                log.warning("enrich batch of %d failed (%s); retrying singly", len(good), err)
                for event, article in good:
                    await self._process(
                        "enrich", event, partial(self._enrich_single, tagger, article)
                    )
                await self.deliver(out)
                return
            out += self._learnt(done)
        await self.deliver(out)

    async def _enrich_single(self, tagger: Tagger, article: Article) -> list[Outgoing]:
        [enriched] = await self._offload(stages.enrich, [article], tagger)
        return self._learnt([enriched])

    def _learnt(self, done: list[EnrichedArticle]) -> list[Outgoing]:
        """The enriched articles, relabelled from what the stream has learnt (the copy as
        it is: a worker that has not read it all yet shows the articles' own labels), and
        each article's own labels as votes (processors.name_labels)."""
        out = []
        book = self.labelbook.items
        for article in done:
            shown = article
            if self.learning.on and book:
                shown = article.model_copy(
                    update={"entities": name_labels.relabel(article.entities, book)}
                )
            out.append(Outgoing(self.enriched, shown.article_id.encode(), shown.encode()))
            if not self.learning.on:
                continue
            at = article.fetched_at.timestamp()
            for name, label in name_labels.votes_of(article.entities):
                vote = NameVote(name=name, label=label, article_id=article.article_id, at=at)
                out.append(Outgoing(self.names, name.encode(), vote.encode()))
        return out

    # -- names learnt across articles ------------------------------------------------------

    async def _follow_labels(self) -> None:
        await self.labelbook.follow()

    async def _names(self, stream: Any) -> None:
        await self._guard("names", self._names_loop(stream))

    async def _names_loop(self, stream: Any) -> None:
        async for event in stream.events():
            self.app.processing(event.message)
            await self._process("names", event, partial(self._name_one, event))
            await self._maybe_sweep_names(event.message.partition)

    async def _name_one(self, event: Any) -> list[Outgoing]:
        """Fold one vote into the name's state; publish the name when its settled label
        changes (a tombstone when it is no longer settled)."""
        found = decode(NameVote, event.value)
        partition = event.message.partition
        self._clock.saw(("names", partition), found.at)
        before = self.name_labels.get(found.name)
        state = name_labels.vote(before, found.label, found.article_id, found.at, self.learning)
        if state is before:
            return []
        was = before.get("p") if before else None
        now = name_labels.settled(state, self.learning)
        state = {**state, "p": now, "q": partition}
        self.name_labels[found.name] = state
        if now == was:
            return []
        key = found.name.encode()
        if now is None:
            return [Outgoing(self.labels, key, None)]
        return [Outgoing(self.labels, key, NameLabel(name=found.name, label=now).encode())]

    async def _tagger_or_fatal(self) -> Tagger:
        if self._tagger is None:
            try:
                options = EntityOptions.from_settings(self.settings)
                self._tagger = await self._offload(Tagger, options)
            except Exception as err:
                raise FatalError(f"the entity tagger could not be loaded: {err}") from err
        return self._tagger

    async def _index(self, stream: Any) -> None:
        await self._guard("index", self._index_loop(stream))

    async def _index_loop(self, stream: Any) -> None:
        async for events in stream.noack_take(200, within=1.0):
            for event in events:
                self.app.processing(event.message)
            good, out = await self._decode_batch("index", events, EnrichedArticle)
            by_id = {a.article_id: e for e, a in good}
            # Retries until Elasticsearch has acknowledged every document, however long.
            written = [a for _, a in good]
            refused = await index.write(self._get_es(), self.settings.topic_prefix, written)
            rejected = {r.article.article_id for r in refused}
            out += await self._matched([a for a in written if a.article_id not in rejected])
            for r in refused:
                error = deadletter.PermanentError(
                    f"Elasticsearch refused it ({r.status}): {r.reason}"
                )
                event = by_id[r.article.article_id]
                out.append(
                    self._dead_letter("index", event, error, r.article.article_id, r.article.url)
                )
            await self.deliver(out)
            for event in events:
                self.app.done(event.message)
                await stream.ack(event)

    # -- standing queries -----------------------------------------------------------------

    async def _follow_watches(self) -> None:
        await self.watchlist.follow()

    async def _matched(self, articles: list[EnrichedArticle]) -> list[Outgoing]:
        """The alerts the watches raise for articles just indexed, to the matches topic
        keyed by story (so the first of a story's articles, whichever partition it came
        from, is the one alerted). Matching starts once the worker has read every watch."""
        if not articles:
            return []
        while not self.watchlist.ready.is_set():
            try:
                await asyncio.wait_for(self.watchlist.ready.wait(), timeout=30)
            except TimeoutError:
                log.warning(
                    "matching waits for the watches (%s) to be read; the indexed articles "
                    "are acknowledged once they are matched",
                    self.topics.watches,
                )
        current = list(self.watchlist.watches.values())
        if not current:
            return []
        out = []
        for article in articles:
            doc = index.document(article)
            for watch in watches.fired(current, query.Doc(doc)):
                found = watches.alert(watch, doc)
                out.append(Outgoing(self.matches, found.story.encode(), found.encode()))
        return out

    async def _withdrawn(
        self, rewritten: list[tuple[EnrichedArticle, EnrichedArticle]]
    ) -> list[Outgoing]:
        """Withdrawals of the alerts that re-cleaning took the ground from, to the matches
        topic (the alert agent passes on those of alerts it sent)."""
        if not rewritten:
            return []
        await self.watchlist.ready.wait()
        current = list(self.watchlist.watches.values())
        out = []
        for before, after in rewritten:
            gone = watches.withdrawals(current, index.document(before), index.document(after))
            out += [Outgoing(self.matches, w.story.encode(), w.encode()) for w in gone]
        return out

    async def _alert(self, stream: Any) -> None:
        await self._guard("alert", self._alert_loop(stream))

    async def _alert_loop(self, stream: Any) -> None:
        async for event in stream.events():
            self.app.processing(event.message)
            await self._process("alert", event, partial(self._alert_one, event))
            await self._maybe_sweep_alerted(event.message.partition)

    async def _alert_one(self, event: Any) -> list[Outgoing]:
        """An alert once per story per watch: a second copy of the story, or the same
        match again after a crash, finds its id in the table (newsflow.watches.admit)."""
        found = decode(Alert, event.value)
        partition = event.message.partition
        self._clock.saw(("alerted", partition), found.fetched_at.timestamp())
        entry, passes = watches.admit(self.alerted.get(found.alert_id), found, partition)
        if entry is not None:
            self.alerted[found.alert_id] = entry
        if not passes:
            return []
        said = "withdrawn" if found.withdrawn else "alert"
        log.info("watch %s: %s: %s (%s)", found.watch, said, found.title, found.url)
        return [Outgoing(self.alerts, found.watch.encode(), found.encode())]

    async def _maybe_sweep_alerted(self, partition: int) -> None:
        """Once an interval per partition, forget the alerts of stories that have closed
        (see _maybe_sweep_sites for why from here, and against the stream's time)."""
        key = ("alerted", partition)
        last = self._last_site_sweep.setdefault(key, time.monotonic())
        now = self._clock.now(key)
        if now is None or time.monotonic() - last < self.settings.sweep_interval:
            return
        self._last_site_sweep[key] = time.monotonic()
        keep = 2 * self.options.stories.window_seconds
        try:
            swept = await sweep.alerted(self.alerted, partition, now, keep)
            log.info("swept %d alerts of closed stories from partition %d", swept, partition)
        except Exception:
            log.exception(
                "sweeping partition %d's alerted table failed; tried again later", partition
            )

    async def _maybe_sweep_names(self, partition: int) -> None:
        """Once an interval per partition, forget the names whose votes have faded, and
        take the published ones off the labels topic (see _maybe_sweep_sites for why from
        here, and against the stream's time)."""
        key = ("names", partition)
        last = self._last_site_sweep.setdefault(key, time.monotonic())
        now = self._clock.now(key)
        if now is None or time.monotonic() - last < self.settings.sweep_interval:
            return
        self._last_site_sweep[key] = time.monotonic()
        try:
            gone = await sweep.names(
                self.name_labels,
                partition,
                now,
                lambda state, at: name_labels.expired(state, at, self.learning),
            )
            await self.deliver(
                Outgoing(self.labels, name.encode(), None) for name, published in gone if published
            )
            log.info("forgot %d faded names of partition %d", len(gone), partition)
        except Exception:
            log.exception("sweeping partition %d's names failed; tried again later", partition)

    async def _webhook(self, stream: Any) -> None:
        await self._guard("webhook", self._webhook_loop(stream))

    async def _webhook_loop(self, stream: Any) -> None:
        async for event in stream.events():
            self.app.processing(event.message)
            await self._process("webhook", event, partial(self._webhook_one, event))

    async def _webhook_one(self, event: Any) -> list[Outgoing]:
        import httpx

        found = decode(Alert, event.value)
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.webhook_timeout)
        assert self.settings.webhook_url is not None  # the agent runs only when it is set
        url = self.settings.webhook_url.get_secret_value()
        done = await webhook.deliver(self._http, url, found, self.settings.webhook_attempts)
        if done.delivered:
            return []
        if done.refused:
            raise deadletter.PermanentError(f"the webhook refused the alert: {done.reason}")
        raise deadletter.TransientError(f"the webhook did not take the alert: {done.reason}")

    async def _reclean(self, stream: Any) -> None:
        await self._guard("reclean", self._reclean_loop(stream))

    async def _reclean_loop(self, stream: Any) -> None:
        async for event in stream.events():
            self.app.processing(event.message)
            await self._process("reclean", event, partial(self._reclean_one, event))

    async def _reclean_one(self, event: Any) -> list[Outgoing]:
        """Find the articles a request concerns, clean them again and re-index them;
        done only once Elasticsearch has acknowledged every one."""
        request = decode(Reclean, event.value)
        es, prefix = self._get_es(), self.settings.topic_prefix
        done = await reclean.run(es, prefix, request, RECLEAN_POLL, self.options.boilerplate)
        if done.refused:
            listing = "; ".join(
                f"{r.article.article_id} ({r.status}): {r.reason}" for r in done.refused
            )
            raise deadletter.PermanentError(f"Elasticsearch refused re-cleaned articles: {listing}")
        log.info(
            "re-cleaned %d of %d article(s) of %s found for %s",
            done.changed,
            done.found,
            request.site,
            request.requested_by,
        )
        out = await self._withdrawn(done.rewritten)
        if not done.missing:
            return out
        # Articles named but not indexed yet are asked about again, by a request of their
        # own at the end of the topic: waiting here would hold up every rebalance of the
        # group, and with it the stages that are to index them.
        if request.attempt + 1 >= max(1, math.ceil(self.settings.reclean_wait / RECLEAN_POLL)):
            log.info(
                "re-cleaning %s: %d article(s) named were never indexed (filtered?): %s",
                request.site,
                len(done.missing),
                ", ".join(sorted(done.missing)),
            )
            return out
        again = request.model_copy(
            update={"articles": sorted(done.missing), "attempt": request.attempt + 1}
        )
        return [*out, Outgoing(self.recleans, request.site.encode(), again.encode())]

    def _get_es(self) -> AsyncElasticsearch:
        if self._es is None:
            self._es = connections.async_elasticsearch(self.settings, request_timeout=60)
        return self._es

    async def _decode_batch(
        self, stage: str, events: list[Any], cls: type[T]
    ) -> tuple[list[tuple[Any, T]], list[Outgoing]]:
        """The events that decode, and the dead letters of those that do not."""
        good, letters = [], []
        for event in events:
            try:
                good.append((event, decode(cls, event.value)))  # type: ignore[type-var]
            except DecodeError as err:
                letters.append(self._dead_letter(stage, event, err))
        return good, letters
