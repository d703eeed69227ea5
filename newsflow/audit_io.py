"""What ``newsflow audit`` joins, read from Kafka and Elasticsearch; and lost pages sent again.

The order of the reads is what makes the audit sound while the pipeline runs: the
committed offsets first, the outcomes after. The pipeline commits a message's offset only
after its outputs were written, so every page below a committed offset has its outcome
written before the audit looks for it (the index is refreshed first, so every document
Elasticsearch acknowledged is seen). A page past the committed offsets counts as pending.

Topics are read like ``newsflow deadletter list`` does: assigned partitions, no consumer
group, nothing committed, up to the end offsets as of the start of the read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import ScanError, scan
from kafka import TopicPartition
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    NotCoordinatorError,
)

from newsflow import connections, deadletter
from newsflow.audit import (
    REPAIR_HEADER,
    AuditReport,
    Key,
    Kind,
    Outcome,
    Page,
    Problem,
    Sighting,
    join,
)
from newsflow.errors import SetupError
from newsflow.records import Article, DecodeError, Filtered, PageOrigin, RawPage, decode
from newsflow.services import KAFKA_TIMEOUTS, reachable, require_elasticsearch
from newsflow.settings import Settings
from newsflow.topics import MAX_MESSAGE_BYTES, Topics

log = logging.getLogger(__name__)

# Short: an audit run by hand against a wrong address should say so in seconds, not hang.
ES_TIMEOUT = 10.0
STALL_SECONDS = 30.0  # no new record for this long while the end is not reached: give up
PROGRESS_EVERY = 10_000
STAGES = ("clean", "stories", "enrich", "index")  # the pipeline's, with dead-letter topics

Progress = Callable[[str], None] | None
Ranges = dict[TopicPartition, tuple[int, int]]  # [start, end) offsets to read


class AuditError(SetupError):
    """The audit could not be made (a topic missing, a read that stalled)."""


def audit(
    settings: Settings,
    since: datetime | None = None,
    partition: int | None = None,
    progress: Progress = None,
) -> AuditReport:
    """The audit of ``settings``' pipeline (see newsflow.audit.run)."""
    topics = Topics.from_settings(settings)
    with (
        reachable(settings),
        connections.elasticsearch(settings, request_timeout=ES_TIMEOUT, max_retries=1) as es,
    ):
        # Fail now, not after reading all of Kafka; and say so when the address answers
        # but is no Elasticsearch (a proxy's page, say).
        require_elasticsearch(settings)
        with KafkaReader(settings, progress) as kafka:
            committed = kafka.committed(settings.topic_prefix)  # first: see the docstring
            window = kafka.window(topics.pages, since, partition)
            pages = [_page(m) for m in kafka.read(window, "pages")]
            documents = indexed(es, settings.topic_prefix, progress)
            outcomes = [*kafka.outcomes(topics, committed), *documents]
            on_pages = {tp.partition: o for tp, o in committed.items() if tp.topic == topics.pages}
            report = join(topics.pages, pages, outcomes, on_pages)
            if report.missing:  # are they lost, or still between two stages?
                seen = kafka.sightings(topics, committed, report.missing)
                report = join(topics.pages, pages, outcomes, on_pages, seen)
    return report


# -- Kafka -------------------------------------------------------------------------------


class KafkaReader:
    """One consumer without a group for the topics, one admin client for the offsets."""

    def __init__(self, settings: Settings, progress: Progress = None) -> None:
        self.progress = progress
        self.consumer = connections.kafka_consumer(
            settings,
            group_id=None,
            enable_auto_commit=False,
            allow_auto_create_topics=False,  # an audit must not create the topics it reads
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            client_id="newsflow-audit",
            **KAFKA_TIMEOUTS,
        )
        try:
            self.admin = connections.kafka_admin(
                settings, client_id="newsflow-audit", **KAFKA_TIMEOUTS
            )
        except BaseException:
            self.consumer.close()
            raise

    def __enter__(self) -> KafkaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.admin.close()
        self.consumer.close()

    def committed(self, prefix: str) -> dict[TopicPartition, int]:
        """The pipeline group's committed offsets, and on each dead-letter topic the offset
        `newsflow deadletter replay` has replayed up to (the replay groups')."""
        # One mapping serves both: the pipeline never reads a dead-letter topic, and the
        # replay groups read nothing else.
        groups = [f"{prefix}-pipeline", *(f"{prefix}-replay-{s}" for s in STAGES)]
        found = _retry_coordinator(lambda: self.admin.list_group_offsets(dict.fromkeys(groups)))
        offsets: dict[TopicPartition, int] = {}
        for by_tp in found.values():
            offsets.update({tp: om.offset for tp, om in by_tp.items() if om.offset >= 0})
        return offsets

    def window(
        self, topic: str, since: datetime | None, partition: int | None, required: bool = True
    ) -> Ranges:
        """The offsets of ``topic`` to read: all, or from ``since``, of one partition."""
        partitions = self.consumer.partitions_for_topic(topic)
        if not partitions:
            if required:
                raise AuditError(f"topic {topic} does not exist (is NEWSFLOW_TOPIC_PREFIX right?)")
            return {}
        if partition is not None and partition not in partitions:
            raise AuditError(f"{topic} has no partition {partition} (it has {len(partitions)})")
        chosen = sorted(partitions) if partition is None else [partition]
        tps = [TopicPartition(topic, p) for p in chosen]
        end = self.consumer.end_offsets(tps)
        start = self.consumer.beginning_offsets(tps)
        if since is not None:
            at = self.consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
            start = {tp: at[tp].offset if at.get(tp) else end[tp] for tp in tps}
        return {tp: (start[tp], end[tp]) for tp in tps}

    def read(self, ranges: Ranges, label: str) -> Iterator[Any]:
        """The records of ``ranges``, in offset order within each partition."""
        todo = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
        if not todo:
            return
        total = sum(end - start for start, end in todo.values())
        if self.progress and total >= PROGRESS_EVERY:
            self.progress(f"{label}: reading {total:,} records")
        self.consumer.assign(list(todo))
        self.consumer.resume(*todo)  # paused at the end of an earlier read of the same topic
        for tp, (start, _) in todo.items():
            self.consumer.seek(tp, start)
        count, last = 0, time.monotonic()
        while todo:
            batches = self.consumer.poll(timeout_ms=500)
            if not batches and time.monotonic() - last > STALL_SECONDS:
                raise AuditError(f"reading {label}: nothing came for {STALL_SECONDS:.0f} s")
            for tp, records in batches.items():
                end = todo[tp][1] if tp in todo else -1
                for record in (r for r in records if r.offset < end):
                    yield record
                    count += 1
                    if self.progress and count % PROGRESS_EVERY == 0:
                        self.progress(f"{label}: {count:,} records read")
                last = time.monotonic()
            self._drop_done(todo)

    def _drop_done(self, todo: Ranges) -> None:
        done = [tp for tp, (_, end) in todo.items() if self.consumer.position(tp) >= end]
        for tp in done:
            del todo[tp]
        if done:
            self.consumer.pause(*done)

    def outcomes(self, topics: Topics, committed: Mapping[TopicPartition, int]) -> list[Outcome]:
        """The filtered records and the dead letters of every stage, all of each topic (an
        outcome written before the window may still name no page in it: it is unused)."""
        found: list[Outcome | None] = []
        filtered = self.window(topics.filtered, None, None, required=False)
        found += [_filtered(m) for m in self.read(filtered, "filtered")]
        for stage in STAGES:
            name = topics.deadletter(stage)
            letters = self.read(self.window(name, None, None, required=False), name)
            found += [_dead_letter(m, stage, topics.pages, committed) for m in letters]
        return [o for o in found if o is not None]

    def sightings(
        self, topics: Topics, committed: Mapping[TopicPartition, int], pages: Sequence[Problem]
    ) -> list[Sighting]:
        """Where the articles of ``pages`` wait between stages, in the stages' order."""
        keys = {(p.partition, p.offset) for p in pages}
        ids = {p.article_id for p in pages if p.article_id}
        seen: list[Sighting] = []
        for name in (topics.articles, topics.clustered, topics.enriched):
            for m in self.read(self.window(name, None, None, required=False), name):
                s = _sighting(m, committed)
                if s is not None and (s.origin in keys or s.article_id in ids):
                    seen.append(s)
        return seen


def _retry_coordinator(call: Callable[[], Any], attempts: int = 10) -> Any:
    # A group's coordinator is found on the first request for it: a fresh broker (or
    # group) answers "not available" for a moment.
    for attempt in range(attempts):
        try:
            return call()
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _where(message: Any) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"


def _key(origin: PageOrigin | None) -> Key | None:
    return None if origin is None else (origin.partition, origin.offset)


def _page(message: Any) -> Page:
    repair_of = _repair_of(message.headers or [])
    try:
        raw = decode(RawPage, message.value)
    except DecodeError:
        return Page(message.partition, message.offset, repair_of=repair_of)
    return Page(message.partition, message.offset, raw.article_id, raw.url, repair_of)


def _repair_of(headers: Sequence[tuple[str, bytes]]) -> Key | None:
    for name, value in headers:
        if name == REPAIR_HEADER:
            partition, _, offset = value.decode("ascii", "replace").partition("@")
            if partition.isdigit() and offset.isdigit():
                return (int(partition), int(offset))
    return None


def _filtered(message: Any) -> Outcome | None:
    try:
        record = decode(Filtered, message.value)
    except DecodeError as err:
        log.warning("%s: not a Filtered record (%s); names no page", _where(message), err)
        return None
    where = _where(message)
    return Outcome(Kind.FILTERED, where, _key(record.origin), record.article_id)


def _dead_letter(
    message: Any, stage: str, pages_topic: str, committed: Mapping[TopicPartition, int]
) -> Outcome | None:
    """A clean dead letter's headers name its page; a later stage's value is the article,
    which carries its origin."""
    letter = deadletter.read(message.headers or [], message.key, message.value)
    replayed_to = committed.get(TopicPartition(message.topic, message.partition), 0)
    common: dict[str, Any] = {"stage": stage, "replayed": message.offset < replayed_to}
    where = _where(message)
    if letter.topic == pages_topic and letter.partition >= 0:
        return Outcome(Kind.DEAD_LETTERED, where, (letter.partition, letter.offset), **common)
    try:
        article = decode(Article, message.value)
    except DecodeError:
        log.info("%s: a dead letter that names no page (its value is no article)", where)
        return None
    return Outcome(Kind.DEAD_LETTERED, where, _key(article.origin), article.article_id, **common)


def _sighting(message: Any, committed: Mapping[TopicPartition, int]) -> Sighting | None:
    try:
        article = decode(Article, message.value)
    except DecodeError:
        return None
    consumed = message.offset < committed.get(TopicPartition(message.topic, message.partition), 0)
    return Sighting(_where(message), consumed, _key(article.origin), article.article_id)


# -- Elasticsearch -----------------------------------------------------------------------


def indexed(es: Elasticsearch, prefix: str, progress: Progress = None) -> list[Outcome]:
    """Every document behind the articles alias (none while it does not exist yet)."""
    from processors.index import alias

    name = alias(prefix)
    if not es.indices.exists(index=name):
        return []
    # A monthly index the pipeline has just created may have its shard still starting:
    # a scroll over it then fails on that shard. Wait for the shards, and read again if
    # one was not ready after all (the read is whole or not at all).
    for attempt in range(SCAN_ATTEMPTS):
        es.cluster.health(index=name, wait_for_status="yellow", timeout="30s")
        es.indices.refresh(index=name)  # documents acknowledged but not yet searchable count
        try:
            return _scan_documents(es, name, progress)
        except ScanError as err:
            if attempt == SCAN_ATTEMPTS - 1:
                raise AuditError(f"reading {name} from Elasticsearch failed: {err}") from err
            log.info("reading %s failed on a shard (%s); reading it again", name, err)
            time.sleep(2)
    return []


SCAN_ATTEMPTS = 5


def _scan_documents(es: Elasticsearch, name: str, progress: Progress) -> list[Outcome]:
    fields = ["article_id", "origin", "duplicate_of", "cluster_id"]
    query = {"query": {"match_all": {}}, "_source": fields}
    found = []
    for hit in scan(es, query=query, index=name, size=1000):
        found.append(_document(hit))
        if progress and len(found) % PROGRESS_EVERY == 0:
            progress(f"{name}: {len(found):,} documents read")
    return found


def _document(hit: Mapping[str, Any]) -> Outcome:
    source = hit.get("_source") or {}
    origin = source.get("origin") or {}
    key = (int(origin["partition"]), int(origin["offset"])) if "offset" in origin else None
    where = f"{hit['_index']}/{hit['_id']}"
    duplicate = source.get("duplicate_of") is not None
    return Outcome(Kind.INDEXED, where, key, str(hit["_id"]), duplicate=duplicate)


# -- repair ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resent:
    """A lost page as it is (or would be) sent again."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def lost_pages(settings: Settings, missing: Sequence[Problem]) -> list[Resent]:
    """The records of the missing pages, read again from the pages topic, each with the
    header that ties its copy to it."""
    topic = Topics.from_settings(settings).pages
    found: list[Resent] = []
    with reachable(settings), KafkaReader(settings) as kafka:
        for p in missing:
            tp = TopicPartition(topic, p.partition)
            for m in kafka.read({tp: (p.offset, p.offset + 1)}, topic):
                kept = [(k, v) for k, v in m.headers or [] if k != REPAIR_HEADER]
                mark = (REPAIR_HEADER, f"{m.partition}@{m.offset}".encode("ascii"))
                found.append(Resent(m.partition, m.offset, m.key, m.value, [*kept, mark]))
    return found


def resend(settings: Settings, pages: Sequence[Resent]) -> int:
    """Send ``pages`` to the pages topic, each to its own partition (a site's pages share
    one: its dedup state lives there); returns how many Kafka acknowledged."""
    topic = Topics.from_settings(settings).pages
    with reachable(settings):
        producer = connections.kafka_producer(
            settings,
            acks="all",
            enable_idempotence=True,
            max_request_size=MAX_MESSAGE_BYTES,
            client_id="newsflow-audit",
            **KAFKA_TIMEOUTS,
        )
        try:
            futures = [
                producer.send(
                    topic, value=p.value, key=p.key, headers=p.headers, partition=p.partition
                )
                for p in pages
            ]
            producer.flush()
            for future in futures:
                future.get(timeout=30)  # raises if a page was not delivered
        finally:
            producer.close()
    return len(futures)
