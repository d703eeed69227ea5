"""Dead letters: what a stage could not process, kept with the reason, never dropped.

A dead letter is the original message (key and value bytes untouched) on the stage's
dead-letter topic, with headers saying who failed, when, why and where it came from:

    newsflow-dlq-stage           clean | stories | enrich | index | ingest
    newsflow-dlq-error-class     the exception's class, e.g. DecodeError
    newsflow-dlq-error           its message (truncated to 2000 characters)
    newsflow-dlq-permanent       "1" when a retry cannot help (bad input), "0" when it may
    newsflow-dlq-source-topic    where the message was read from
    newsflow-dlq-source-partition, newsflow-dlq-source-offset
    newsflow-dlq-failed-at       ISO 8601, UTC
    newsflow-dlq-article-id, newsflow-dlq-url   when known, to find it in logs
    newsflow-dlq-input           for ingest failures, which were never a message: the input
                                 they came from (a list file and line, a WARC file and
                                 offset, a feed's URL)

`newsflow deadletter list` shows them; `newsflow deadletter replay` sends them back to
their source topic (original headers restored) once the cause is fixed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from newsflow import connections, redact
from newsflow.errors import SetupError
from newsflow.records import DeadLetter, utcnow
from newsflow.services import KAFKA_TIMEOUTS
from newsflow.settings import Settings
from newsflow.topics import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from kafka import TopicPartition

# Distinct from the headers producers set (newsflow-source), which a replay must keep.
PREFIX = "newsflow-dlq-"
MAX_ERROR_CHARS = 2000

Headers = list[tuple[str, bytes]]


class PipelineError(Exception):
    """Base of the errors a stage routes to its dead-letter topic."""

    permanent = True


class PermanentError(PipelineError):
    """Bad input: retrying the same message can never succeed."""


class TransientError(PipelineError):
    """A dependency failed (timeout, service down); the message may succeed later."""

    permanent = False


@dataclass(frozen=True)
class Origin:
    """Where a failed message was read from."""

    topic: str
    partition: int
    offset: int
    headers: Sequence[tuple[str, bytes]] = ()


def failure_headers(
    stage: str,
    error: BaseException,
    origin: Origin,
    *,
    article_id: str | None = None,
    url: str | None = None,
    source: str | None = None,
    now: datetime | None = None,
) -> Headers:
    """The original message's own headers (minus earlier failure headers), then ours."""
    permanent = getattr(error, "permanent", True)
    ours: dict[str, str] = {
        "stage": stage,
        "error-class": type(error).__name__,
        # A client's error may quote a secret setting (a webhook's token in its URL).
        "error": redact.text(str(error))[:MAX_ERROR_CHARS] or repr(error),
        "permanent": "1" if permanent else "0",
        "source-topic": origin.topic,
        "source-partition": str(origin.partition),
        "source-offset": str(origin.offset),
        "failed-at": (now or utcnow()).isoformat(),
    }
    if article_id:
        ours["article-id"] = article_id
    if url:
        ours["url"] = url
    if source:
        ours["input"] = source
    kept = [(k, v) for k, v in origin.headers if not k.startswith(PREFIX)]
    return kept + [(PREFIX + k, v.encode("utf-8")) for k, v in ours.items()]


def original_headers(headers: Iterable[tuple[str, bytes]]) -> Headers:
    """The headers the message had before it failed (what a replay sends again)."""
    return [(k, v) for k, v in headers if not k.startswith(PREFIX)]


def read(
    headers: Iterable[tuple[str, bytes]], key: bytes | None, value: bytes | None
) -> DeadLetter:
    """A dead letter's record, from the message found on a dead-letter topic."""
    h = {k.removeprefix(PREFIX): v.decode("utf-8", "replace") for k, v in headers}
    return DeadLetter(
        stage=h.get("stage", "?"),
        error_class=h.get("error-class", "?"),
        error=h.get("error", ""),
        topic=h.get("source-topic", ""),
        partition=int(h.get("source-partition", "-1")),
        offset=int(h.get("source-offset", "-1")),
        failed_at=datetime.fromisoformat(h["failed-at"]) if "failed-at" in h else utcnow(),
        permanent=h.get("permanent", "1") == "1",
        url=h.get("url", ""),
        source=h.get("input", ""),
        key=key,
        value=value,
    )


def where(letter: DeadLetter) -> str:
    """Where a dead letter came from, to find it again: ``topic[partition]@offset`` for a
    message; for an ingest failure, which never was a message, its input and URL."""
    if letter.topic:
        return f"{letter.topic}[{letter.partition}]@{letter.offset}"
    # Letters written before the input header existed: the key names the input file.
    named = letter.key.decode("utf-8", "replace") if letter.key else ""
    place = letter.source or (f"{named} at {letter.offset}" if named else "unknown input")
    return f"{place} {letter.url}" if letter.url else place


@dataclass(frozen=True)
class StageLetters:
    """What one stage's dead-letter topic holds, and the newest letters read from it."""

    topic: str
    exists: bool = True
    held: int = 0  # every letter on the topic: dead-letter topics are never compacted
    in_window: int = 0  # of those, the ones written since the time asked (all without one)
    letters: Sequence[DeadLetter] = ()  # newest first

    def by_error_class(self) -> list[tuple[str, int]]:
        """How many of the letters read failed with each error class, most common first."""
        return Counter(d.error_class for d in self.letters).most_common()


@dataclass(frozen=True)
class Replayed:
    """What a replay sent back (or, dry, would send), counted per source topic."""

    topic: str
    exists: bool = True
    sent: Mapping[str, int] = field(default_factory=dict)
    # Letters with no source topic: ingest failures, never messages, so nothing to send
    # back to; their input is to be ingested again instead.
    unsendable: int = 0

    @property
    def count(self) -> int:
        return sum(self.sent.values())


def heading(stage: str, found: StageLetters, since: datetime | None = None) -> str:
    """One stage's line of ``newsflow deadletter list``: how many letters, and how many of
    them are shown."""
    if not found.exists:
        return f"{stage}: none (topic {found.topic} not created yet)"
    if not found.held:
        return f"{stage}: none"
    text = f"{stage}: {found.held} dead letter(s)"
    if since is not None:
        text += f", {found.in_window} since {since:%Y-%m-%d %H:%M:%S %Z}"
    if 0 < len(found.letters) < found.in_window:
        text += f"; the newest {len(found.letters)} shown"
    return text


def describe(letter: DeadLetter) -> str:
    """A dead letter in one line: when, where from, what failed and why."""
    kind = "permanent" if letter.permanent else "transient"
    return (
        f"{letter.failed_at:%Y-%m-%d %H:%M:%S} {where(letter)} "
        f"{letter.error_class} ({kind}): {letter.error[:200]}"
    )


def tail_range(start: int, end: int, limit: int) -> tuple[int, int]:
    """The offsets [from, end) of the last ``limit`` records of a partition's [start, end)."""
    return max(start, end - limit), end


# -- reading and replaying (Kafka I/O) ---------------------------------------------------

# No record for this long while the end offsets are not reached: the broker is not serving
# the topic (a partition without a leader), said rather than waited on.
STALL_SECONDS = 15.0

Ranges = dict["TopicPartition", tuple[int, int]]


class DeadLetterError(SetupError):
    """A dead-letter topic could not be read to its end."""


def list_stages(
    settings: Settings, topics: Mapping[str, str], limit: int, since: datetime | None = None
) -> dict[str, StageLetters]:
    """For each stage's dead-letter topic (``topics``: stage -> topic), its totals and its
    last ``limit`` letters, newest first (of those written since ``since``). Reads assigned
    partitions up to the end offsets as of the call: no consumer group, no subscription,
    nothing committed, no topic created."""
    with closing(_consumer(settings)) as consumer:
        partitions = _partitions(consumer, topics.values(), consumer.topics())
        tps = [tp for tps in partitions.values() for tp in tps]
        begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        start = _since_offsets(consumer, tps, since, end) if since else begin
        ranges = {tp: tail_range(start[tp], end[tp], limit) for tp in tps}
        read: dict[str, list[tuple[int, int, DeadLetter]]] = {t: [] for t in partitions}
        for m in _read(consumer, ranges):
            letter = read_message(m)
            read[m.topic].append((m.timestamp, m.offset, letter))
    out = {}
    for stage, topic in topics.items():
        if topic not in partitions:
            out[stage] = StageLetters(topic, exists=False)
            continue
        newest = [d for *_, d in sorted(read[topic], key=lambda r: r[:2], reverse=True)]
        out[stage] = StageLetters(
            topic,
            held=sum(end[tp] - begin[tp] for tp in partitions[topic]),
            in_window=sum(end[tp] - start[tp] for tp in partitions[topic]),
            letters=newest[:limit],
        )
    return out


def replay(settings: Settings, topic: str, group: str, dry_run: bool = False) -> Replayed:
    """Send the dead letters on ``topic`` not replayed yet back to their source topics, with
    their original headers. Progress is kept by the consumer group ``group``, committed
    after the producer has flushed and every send is acknowledged: a letter is replayed at
    least once, and not again. The letters are those up to the end offsets as of the call,
    read from assigned partitions (the group's committed offsets, nothing joined)."""
    from kafka.structs import OffsetAndMetadata

    with closing(_consumer(settings, group)) as consumer:
        existing = consumer.topics()
        partitions = _partitions(consumer, [topic], existing).get(topic)
        if partitions is None:
            return Replayed(topic, exists=False)
        begin, end = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
        # An offset below the beginning was committed before retention removed its letters.
        done = {tp: max(begin[tp], consumer.committed(tp) or 0) for tp in partitions}
        ranges = {tp: (done[tp], end[tp]) for tp in partitions if done[tp] < end[tp]}
        sent, unsendable = _send_back(settings, _read(consumer, ranges), existing, dry_run)
        if ranges and not dry_run:
            consumer.commit({tp: OffsetAndMetadata(to, "", -1) for tp, (_, to) in ranges.items()})
    return Replayed(topic, sent=dict(sent), unsendable=unsendable)


def read_message(message: Any) -> DeadLetter:
    """The dead letter of a consumed record (its headers, key and value)."""
    return read(message.headers or [], message.key, message.value)


def _send_back(
    settings: Settings, messages: Iterable[Any], existing: Container[str], dry_run: bool
) -> tuple[Counter[str], int]:
    """Send each dead letter to its source topic with its original headers, then wait for
    every acknowledgement: a failed send raises here, before anything is committed.
    Returns the count per source topic and how many letters had none."""
    sent: Counter[str] = Counter()
    unsendable = 0
    producer, futures = None, []
    try:
        for m in messages:
            letter = read_message(m)
            if not letter.topic:  # an ingest failure, or not written by newsflow
                unsendable += 1
                continue
            if letter.topic not in existing:
                # Said now: the producer would wait a minute for the topic, then time out.
                raise DeadLetterError(
                    f"the dead letter at {m.topic}[{m.partition}]@{m.offset} came from "
                    f"{letter.topic}, which does not exist (nothing was committed: a replay "
                    "sends every letter from there again)",
                    "create that pipeline's topics with `newsflow topics create` under the "
                    "NEWSFLOW_TOPIC_PREFIX the letter was written with",
                )
            sent[letter.topic] += 1
            if dry_run:
                continue
            producer = producer or _producer(settings)  # only when there is something to send
            headers = original_headers(m.headers or [])
            futures.append(producer.send(letter.topic, key=m.key, value=m.value, headers=headers))
        if producer is not None:
            producer.flush()
            for future in futures:
                future.get(timeout=KAFKA_TIMEOUTS["request_timeout_ms"] / 1000)
    finally:
        if producer is not None:
            producer.close()
    return sent, unsendable


def _producer(settings: Settings) -> Any:
    return connections.kafka_producer(
        settings,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES,
        client_id="newsflow-replay",
        **KAFKA_TIMEOUTS,
    )


def _consumer(settings: Settings, group: str | None = None) -> Any:
    return connections.kafka_consumer(
        settings,
        group_id=group,
        enable_auto_commit=False,
        allow_auto_create_topics=False,  # listing a stage must not create its topic
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        client_id="newsflow-deadletter",
        **KAFKA_TIMEOUTS,
    )


def _partitions(
    consumer: Any, topics: Iterable[str], existing: Container[str]
) -> dict[str, list[TopicPartition]]:
    """The partitions of each of ``topics`` that is among the ``existing`` ones."""
    from kafka import TopicPartition

    return {
        t: [TopicPartition(t, p) for p in sorted(consumer.partitions_for_topic(t))]
        for t in topics
        if t in existing
    }


def _since_offsets(
    consumer: Any, tps: list[TopicPartition], since: datetime, end: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Each partition's first offset written at or after ``since`` (its end when none)."""
    at = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
    return {tp: at[tp].offset if at.get(tp) else end[tp] for tp in tps}


def _read(consumer: Any, ranges: Ranges) -> Iterator[Any]:
    """The records of ``ranges`` ([from, to) offsets per partition), in offset order within
    each partition; ends when every partition's position reaches its ``to``."""
    todo = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
    if not todo:
        return
    consumer.assign(list(todo))
    for tp, (start, _) in todo.items():
        consumer.seek(tp, start)
    last = time.monotonic()
    while todo:
        batches = consumer.poll(timeout_ms=500)
        if not batches and time.monotonic() - last > STALL_SECONDS:
            raise DeadLetterError(
                f"reading {', '.join(sorted({tp.topic for tp in todo}))}: nothing came for "
                f"{STALL_SECONDS:.0f} s before the end",
                "check the broker's health with `newsflow stack status`",
            )
        for tp, records in batches.items():
            to = todo[tp][1] if tp in todo else -1
            yield from (r for r in records if r.offset < to)
            last = time.monotonic()
        for tp in [tp for tp, (_, to) in todo.items() if consumer.position(tp) >= to]:
            del todo[tp]
