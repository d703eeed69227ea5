"""The Faust app: four thin agents around processors.stages.

    pages     --clean-->   articles   (tables: site-stories, boilerplate; key: site)
    articles  --stories--> clustered  (table: stories; one partition, global)
    clustered --enrich-->  enriched   (spaCy, batched)
    enriched  --index-->   Elasticsearch (bulk, acknowledged before the offsets commit)

Agents read raw bytes and decode them themselves, so a message that does not decode is a
value routed to the stage's dead-letter topic, not an exception inside Faust. No agent
body raises: Faust acknowledges the events of a failed batch when the body raises, which
would lose them. Offsets are committed only for events acknowledged after their results
were sent on (or, for index, after Elasticsearch acknowledged the write).

One guard against Faust itself (``_App``): its stream skips, and still acknowledges,
messages fetched before a rebalance or while flow control is suspended (rebalancing,
recovering tables). An acknowledged offset can be committed although the message was
never processed. So on the pipeline's topics only messages an agent was handed are
acknowledged; the others are fetched again (at least once; every stage is idempotent by
article id). This closes one path to a lost page; pages were still lost in rebalances
(see the P3 closing note), so it is not the only one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar, cast
from weakref import WeakSet

import faust
from elasticsearch import AsyncElasticsearch
from mode.utils.futures import notify

from newsflow import deadletter
from newsflow.records import Article, DecodeError, EnrichedArticle, Filtered, RawPage, decode
from newsflow.settings import Settings
from newsflow.topics import MAX_MESSAGE_BYTES, Topics
from processors import index, stages, stories
from processors.entities import Tagger

log = logging.getLogger(__name__)
T = TypeVar("T")

SWEEP_SECONDS = 3600.0


class _App(faust.App):
    """faust.App whose consumer acknowledges, on the pipeline's topics, only messages an
    agent was handed (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guarded_topics: set[str] = set()
        self.received: WeakSet[Any] = WeakSet()  # messages handed to an agent, not yet acked

    def _new_consumer(self) -> Any:
        consumer: Any = super()._new_consumer()
        ack = consumer.ack

        def ack_if_processed(message: Any) -> bool:
            if message.topic not in self.guarded_topics or message in self.received:
                self.received.discard(message)
                return bool(ack(message))
            # Skipped by Faust's stream, never processed: its offset must not be committed
            # (it is fetched again after the seek to the committed offset). But it is no
            # longer waited for either, or a rebalance would wait for it forever.
            message.acked = True
            consumer._unacked_messages.discard(message)
            notify(consumer._waiting_for_ack)
            log.warning(
                "not acknowledging %s[%d]@%d: skipped by the stream (rebalance), fetched again",
                message.topic,
                message.partition,
                message.offset,
            )
            return False

        consumer.ack = ack_if_processed  # per instance: the class is the transport's
        return consumer


def prepare(settings: Settings) -> None:
    """Topics and index template, created if missing: what a worker needs to start."""
    from elasticsearch import Elasticsearch

    from newsflow.topics import ensure_topics

    specs = Topics.from_settings(settings).specs()
    ensure_topics(settings.kafka_bootstrap, specs, settings.topic_replication)
    with Elasticsearch(settings.elasticsearch_url) as es:
        index.ensure_template(es, settings.topic_prefix)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the pipeline in this process until SIGTERM or Ctrl-C (a clean stop commits)."""
    from faust.worker import Worker

    pipeline = Pipeline(settings)
    Worker(pipeline.app, loglevel=loglevel, quiet=True).execute_from_commandline()


class Pipeline:
    """The app and its topics, tables and agents, built from settings (no globals)."""

    def __init__(self, settings: Settings, options: stages.PipelineOptions | None = None) -> None:
        self.settings = settings
        self.options = options or stages.PipelineOptions()
        (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
        self.topics = Topics.from_settings(settings)
        self.app = _App(
            f"{settings.topic_prefix}-pipeline",
            broker=f"kafka://{settings.kafka_bootstrap}",
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
            # A crashed worker's partitions move after 15 s instead of Faust's 60 s; and a
            # restarted worker (spaCy takes longer than that to load) then joins a group
            # its dead predecessor has already left: one rebalance, not two in a row, the
            # case in which Faust was seen to skip pages (see the P3 closing note).
            broker_session_timeout=15.0,
            broker_heartbeat_interval=3.0,
            producer_max_request_size=MAX_MESSAGE_BYTES,
            consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        )
        self._tagger: Tagger | None = None
        self._es: AsyncElasticsearch | None = None
        self._declare()

    def _topic(self, name: str, partitions: int) -> Any:
        return self.app.topic(
            name, key_serializer="raw", value_serializer="raw", partitions=partitions
        )

    def _declare(self) -> None:
        t, p = self.topics, self.settings.topic_partitions
        self.pages, self.articles = self._topic(t.pages, p), self._topic(t.articles, 1)
        self.clustered, self.enriched = self._topic(t.clustered, p), self._topic(t.enriched, p)
        self.filtered = self._topic(t.filtered, p)
        self.dlq = {
            s: self._topic(t.deadletter(s), 1) for s in ("clean", "stories", "enrich", "index")
        }
        # Values are plain lists and dicts (JSON, the app's default serializer).
        self.site_stories = self.app.Table("site-stories", partitions=p)
        self.boilerplate = self.app.Table("boilerplate", partitions=p)
        self.stories = self.app.Table("stories", partitions=1)
        self.app.guarded_topics.update((t.pages, t.articles, t.clustered, t.enriched))
        self.app.agent(self.pages, name="clean")(self._clean)
        self.app.agent(self.articles, name="stories")(self._stories)
        self.app.agent(self.clustered, name="enrich")(self._enrich)
        self.app.agent(self.enriched, name="index")(self._index)
        self._last_sweep = time.monotonic()
        self._last_site_sweep: dict[int, float] = {}
        # mode's receiver type is a union mypy cannot match a bound coroutine method to.
        self.app.on_before_shutdown.connect(cast(Any, self._close_clients))

    async def _close_clients(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        if self._es is not None:
            await self._es.close()
            self._es = None

    # -- shared plumbing ------------------------------------------------------------------

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        """CPU-bound work (trafilatura, spaCy) off the event loop, so heartbeats and the
        other agents keep running while it computes."""
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))

    async def _dead_letter(
        self,
        stage: str,
        event: Any,
        error: BaseException,
        article_id: str | None = None,
        url: str | None = None,
    ) -> None:
        msg = event.message
        origin = deadletter.Origin(msg.topic, msg.partition, msg.offset, list(msg.headers or []))
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
        await self.dlq[stage].send(key=msg.key, value=msg.value, headers=headers)

    async def _guarded(
        self,
        stage: str,
        event: Any,
        work: Callable[[], Awaitable[None]],
    ) -> None:
        try:
            await work()
        except Exception as err:  # never let one message stop the agent
            await self._dead_letter(stage, event, err)

    # -- agents ---------------------------------------------------------------------------

    async def _clean(self, stream: Any) -> None:
        async for event in stream.events():
            self.app.received.add(event.message)
            await self._guarded("clean", event, partial(self._clean_one, event))

    async def _clean_one(self, event: Any) -> None:
        page = decode(RawPage, event.value)
        found = await self._offload(stages.extract, page, self.options)
        if isinstance(found, Filtered):
            log.info("filtered %s (%s): %s", page.url, found.reason, found.detail)
            await self.filtered.send(key=page.site.encode(), value=found.encode())
            return
        partition = event.message.partition
        stages.note_site(self.site_stories, partition, page.site)
        self._maybe_sweep_sites(partition)
        article = stages.deduplicate(page, found, self.site_stories, self.boilerplate, self.options)
        await self.articles.send(key=page.site.encode(), value=article.encode())

    async def _stories(self, stream: Any) -> None:
        async for event in stream.events():
            self.app.received.add(event.message)
            await self._guarded("stories", event, partial(self._stories_one, event))

    async def _stories_one(self, event: Any) -> None:
        self._maybe_sweep()
        article = stages.cluster(decode(Article, event.value), self.stories, self.options)
        key = article.article_id.encode()
        skipped = stages.skip_enrichment(article)
        if skipped is not None:
            await self.enriched.send(key=key, value=skipped.encode())
        else:
            await self.clustered.send(key=key, value=article.encode())

    def _maybe_sweep_sites(self, partition: int) -> None:
        """Once an hour per partition, drop the site tables' expired entries, from inside
        the agent: Faust writes a table's changelog to the current event's partition."""
        last = self._last_site_sweep.setdefault(partition, time.monotonic())
        if time.monotonic() - last < SWEEP_SECONDS:
            return
        self._last_site_sweep[partition] = time.monotonic()
        swept = stages.sweep_sites(
            self.site_stories, self.boilerplate, partition, time.time(), self.options
        )
        log.info("swept %d expired entries of partition %d's sites", swept, partition)

    def _maybe_sweep(self) -> None:
        """Drop expired stories, from inside the agent (see _maybe_sweep_sites); the stories
        table has one partition, so every key is the current event's."""
        if time.monotonic() - self._last_sweep < SWEEP_SECONDS:
            return
        self._last_sweep = time.monotonic()
        swept = stories.sweep(self.stories, time.time(), self.options.stories)
        log.info("swept %d expired entries from the stories table", swept)

    async def _enrich(self, stream: Any) -> None:
        async for events in stream.noack_take(32, within=0.5):
            self.app.received.update(e.message for e in events)
            good = await self._decode_batch("enrich", events, Article)
            if good:
                await self._enrich_batch(good)
            for event in events:
                await stream.ack(event)

    async def _enrich_batch(self, good: list[tuple[Any, Article]]) -> None:
        try:
            tagger = await self._offload(self._get_tagger)
            done = await self._offload(stages.enrich, [a for _, a in good], tagger)
        except Exception as err:  # a batch failed: find the culprit one by one
            log.warning("enrich batch of %d failed (%s); retrying singly", len(good), err)
            for event, article in good:
                await self._guarded("enrich", event, partial(self._enrich_single, article))
            return
        for enriched in done:
            await self.enriched.send(key=enriched.article_id.encode(), value=enriched.encode())

    async def _enrich_single(self, article: Article) -> None:
        tagger = await self._offload(self._get_tagger)
        [enriched] = await self._offload(stages.enrich, [article], tagger)
        await self.enriched.send(key=enriched.article_id.encode(), value=enriched.encode())

    def _get_tagger(self) -> Tagger:
        if self._tagger is None:
            self._tagger = Tagger()
        return self._tagger

    async def _index(self, stream: Any) -> None:
        async for events in stream.noack_take(200, within=1.0):
            self.app.received.update(e.message for e in events)
            good = await self._decode_batch("index", events, EnrichedArticle)
            by_id = {a.article_id: e for e, a in good}
            # Retries until Elasticsearch has acknowledged every document, however long.
            refused = await index.write(
                self._get_es(), self.settings.topic_prefix, [a for _, a in good]
            )
            for r in refused:
                error = deadletter.PermanentError(
                    f"Elasticsearch refused it ({r.status}): {r.reason}"
                )
                await self._dead_letter(
                    "index", by_id[r.article.article_id], error, r.article.article_id, r.article.url
                )
            for event in events:
                await stream.ack(event)

    def _get_es(self) -> AsyncElasticsearch:
        if self._es is None:
            self._es = AsyncElasticsearch(self.settings.elasticsearch_url, request_timeout=60)
        return self._es

    async def _decode_batch(
        self, stage: str, events: list[Any], cls: type[T]
    ) -> list[tuple[Any, T]]:
        good = []
        for event in events:
            try:
                good.append((event, decode(cls, event.value)))  # type: ignore[type-var]
            except DecodeError as err:
                await self._dead_letter(stage, event, err)
        return good
