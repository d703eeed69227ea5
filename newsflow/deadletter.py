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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from newsflow.records import DeadLetter, utcnow

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
        "error": str(error)[:MAX_ERROR_CHARS] or repr(error),
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


# -- reading and replaying (Kafka I/O) ---------------------------------------------------


def read_topic(bootstrap: str, topic: str, limit: int | None = None) -> list[DeadLetter]:
    """Every dead letter on ``topic`` (from the beginning), without committing anything."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    letters = []
    try:
        for message in consumer:
            letters.append(read(message.headers or [], message.key, message.value))
            if limit is not None and len(letters) >= limit:
                break
    finally:
        consumer.close()
    return letters


def replay(bootstrap: str, topic: str, group: str, dry_run: bool = False) -> int:
    """Send the dead letters on ``topic`` not replayed yet back to their source topics, with
    their original headers. Progress is kept by the consumer group ``group``, committed
    after the producer has flushed: a letter is replayed at least once, and not again."""
    from kafka import KafkaConsumer, KafkaProducer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    count = 0
    try:
        for message in consumer:
            letter = read(message.headers or [], message.key, message.value)
            if not letter.topic:
                continue  # not written by newsflow: nothing says where it came from
            if not dry_run:
                producer.send(
                    letter.topic,
                    key=message.key,
                    value=message.value,
                    headers=original_headers(message.headers or []),
                )
            count += 1
        if not dry_run:
            producer.flush()
            consumer.commit()
    finally:
        producer.close()
        consumer.close()
    return count
