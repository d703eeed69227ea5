"""Standing queries: kept in a compacted Kafka topic, matched against each article once it
is indexed, alerting once per story.

The watches topic is the only store. Each watch is a record keyed by its name; removing
one writes a null value (a tombstone), and compaction keeps the last record of each name,
so the topic read from its start is the current set, on every worker and for every
command, without a database. ``newsflow watch add/list/remove`` use the functions here
(kafka-python); the workers keep a live copy with processors.watchlist.

Matching is pure (``fired``): the query language's own matcher (newsflow.query) over the
document as the index stores it, so a watch fires for the articles a search with the
same query and filters finds (tests/test_watches_e2e.py compares them, article by
article).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from datetime import datetime
from functools import lru_cache
from typing import Any

from newsflow import connections, query
from newsflow.records import Alert, DecodeError, Watch, alert_id, decode, utcnow
from newsflow.search import snippets
from newsflow.settings import Settings
from newsflow.topics import Topics, ensure_topics

NAME_CHARS = "letters, digits, '-', '_' and '.'"


def check_name(name: str) -> str:
    if not name or len(name) > 200 or not all(c.isalnum() or c in "-_." for c in name):
        raise query.QueryError(
            f"a watch's name is 1 to 200 of {NAME_CHARS}, not {name!r}: it names the watch "
            "in alerts and in `newsflow watch remove`"
        )
    return name


@lru_cache(maxsize=4096)
def compiled(text: str) -> query.Node:
    """A watch's query, parsed once per worker (the text is checked when it is added)."""
    return query.parse(text)


def fired(watches: Iterable[Watch], doc: query.Doc) -> list[Watch]:
    """The watches ``doc`` (an indexed document) matches, by name."""
    return [
        w
        for w in sorted(watches, key=lambda w: w.name)
        if w.filters.matches(doc) and query.matches(compiled(w.query), doc)
    ]


def alert(watch: Watch, source: Mapping[str, Any], now: datetime | None = None) -> Alert:
    """The alert ``watch`` raises for the indexed document ``source``."""
    text = source.get("text") or ""
    marked = snippets(text, compiled(watch.query), count=1)
    story = source.get("cluster_id") or source["article_id"]
    return Alert(
        alert_id=alert_id(watch.name, watch.created_at, story),
        watch=watch.name,
        watch_created_at=watch.created_at,
        query=watch.query,
        article_id=source["article_id"],
        story=story,
        title=source.get("title"),
        url=source["url"],
        site=source.get("site_name") or source["site"],
        snippet=marked[0] if marked else "",
        published_at=source.get("published_at"),
        fetched_at=source["fetched_at"],
        indexed_at=source.get("indexed_at") or utcnow(),
        matched_at=now or utcnow(),
    )


def admit(entry: Any, found: Alert, partition: int) -> tuple[dict[str, Any] | None, bool]:
    """What the alerted table makes of an alert or a withdrawal for its story:
    (the entry to store, or None to leave the table as it is; whether to pass it on).

    An alert passes once per story per watch. A withdrawal passes only from the article
    that raised the alert (another copy's match was never sent), and frees the story: a
    copy that still matches may alert. A withdrawal that comes first (the re-cleaning read
    the article between its indexing and its match being sent) is kept, so that the late
    match of the same article is dropped."""
    mark = {"a": found.article_id, "p": partition, "t": found.fetched_at.timestamp()}
    current = entry if isinstance(entry, dict) else None
    if found.withdrawn:
        if current is None or current.get("w"):
            return {**mark, "w": True}, False
        if current.get("a") != found.article_id:
            return None, False
        return {**mark, "w": True}, True
    if current is None:
        return mark, True
    if current.get("w") and current.get("a") != found.article_id:
        return mark, True
    return None, False


def live(alerts: Iterable[Alert]) -> list[Alert]:
    """The alerts that stand, read in the alerts topic's order (an alert and its
    withdrawal share a key, so a partition keeps them in order)."""
    standing: dict[str, Alert] = {}
    for a in alerts:
        if a.withdrawn:
            standing.pop(a.alert_id, None)
        else:
            standing[a.alert_id] = a
    return list(standing.values())


def withdrawals(
    watches: Iterable[Watch], before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[Alert]:
    """Alerts that ``before`` (an indexed document) raised and ``after`` (the same
    article, cleaned again) would not: to withdraw."""
    still = {w.name for w in fired(watches, query.Doc(after))}
    return [
        alert(w, before).model_copy(update={"withdrawn": True})
        for w in fired(watches, query.Doc(before))
        if w.name not in still
    ]


# -- the topic ------------------------------------------------------------------------------


def _ensure(settings: Settings) -> Topics:
    topics = Topics.from_settings(settings)
    ensure_topics(
        settings,
        [s for s in topics.specs() if s.name in (topics.watches, topics.alerts)],
        client={"request_timeout_ms": 10_000},
    )
    return topics


def put(settings: Settings, watch: Watch | None, name: str) -> None:
    """Write ``watch`` under ``name`` (None removes it), acknowledged by every replica."""
    topics = _ensure(settings)
    producer = connections.kafka_producer(settings, acks="all", request_timeout_ms=10_000)
    with closing(producer):
        value = watch.encode() if watch is not None else None
        producer.send(topics.watches, key=name.encode(), value=value).get(timeout=15)


def read_all(settings: Settings, skipped: list[str] | None = None) -> dict[str, Watch]:
    """The current watches: the topic read from its start to its end. A record that does
    not decode is left out (named in ``skipped``): one bad record never hides the rest."""
    from kafka import TopicPartition

    topics = _ensure(settings)
    consumer = connections.kafka_consumer(
        settings,
        enable_auto_commit=False,
        group_id=None,
        request_timeout_ms=15_000,
    )
    found: dict[str, Watch] = {}
    with closing(consumer):
        partitions = [TopicPartition(topics.watches, 0)]  # its one partition (topics.py)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topics.watches} took over 30 s")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    fold(found, r.key, r.value, skipped)
    return found


def fold(
    found: dict[str, Watch], key: bytes | None, value: bytes | None, skipped: list[str] | None
) -> None:
    """Apply one record of the watches topic to ``found``. A record that is no watch, or
    whose query does not parse (written by hand, or by a newsflow whose query language
    differs), is left out and named in ``skipped``; the others match as before."""
    name = (key or b"").decode("utf-8", "replace")
    if value is None:
        found.pop(name, None)
        return
    try:
        watch = decode(Watch, value)
        compiled(watch.query)  # a query this version cannot read would fail every match
    except (DecodeError, query.QueryError) as err:
        found.pop(name, None)
        if skipped is not None:
            skipped.append(f"{name}: {err}")
        return
    found[name] = watch


def tail(
    settings: Settings,
    *,
    from_beginning: bool = False,
    watch: str | None = None,
    idle: float | None = None,
) -> Iterator[Alert]:
    """Alerts as they arrive on the alerts topic (from its end, or its start), until no
    alert came for ``idle`` seconds (never, if None). A record that does not decode is
    skipped; the worker wrote it, so it is a bug, not the user's to handle."""
    from kafka import TopicPartition

    topics = _ensure(settings)
    consumer = connections.kafka_consumer(settings, enable_auto_commit=False, group_id=None)
    with closing(consumer):
        parts: set[int] = set()
        deadline = time.monotonic() + 15
        while not parts and time.monotonic() < deadline:  # metadata of a topic just made
            parts = consumer.partitions_for_topic(topics.alerts) or set()
            if not parts:
                time.sleep(0.2)
        partitions = [TopicPartition(topics.alerts, p) for p in sorted(parts)]
        consumer.assign(partitions)
        if from_beginning:
            consumer.seek_to_beginning(*partitions)
        else:
            consumer.seek_to_end(*partitions)
            for tp in partitions:  # seek_to_end is lazy: fix the position now, not at poll
                consumer.position(tp)
        last = time.monotonic()
        while idle is None or time.monotonic() - last < idle:
            batch = consumer.poll(timeout_ms=500)
            records = sorted((r for rs in batch.values() for r in rs), key=lambda r: r.timestamp)
            for r in records:
                last = time.monotonic()
                try:
                    found = decode(Alert, r.value)
                except DecodeError:
                    continue
                if watch is None or found.watch == watch:
                    yield found
