"""Ingest jobs: read a source, put its pages on the pages topic, report what was skipped.

Pages already in the pipeline (the seen-URL store, kept across restarts) are not sent
again. What cannot be ingested is counted by reason, and the bad input among it (a record
that does not decode, a truncated file) also goes to the ingest dead-letter topic with its
reason, so nothing disappears without a trace.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.producer import PageProducer
from ingest.seen import SeenStore
from ingest.warc import WarcSkip, read_warc
from newsflow import deadletter
from newsflow.records import RawPage
from newsflow.settings import Settings
from newsflow.topics import Topics

log = logging.getLogger(__name__)

# Skips that are the normal content of a crawl, not bad input.
ROUTINE_SKIPS = frozenset({"not-html", "not-http", "revisit"})


@dataclass
class IngestStats:
    pages: int = 0
    bytes: int = 0
    already_seen: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return (
            f"{self.pages} pages ({self.bytes / 1e6:.1f} MB) sent, "
            f"{self.already_seen} already seen, skipped: {skipped or 'none'}"
        )


class PageSink:
    """Where ingested pages go: the pages topic, the seen store, the dead-letter topic."""

    def __init__(self, settings: Settings, seen: SeenStore | None) -> None:
        topics = Topics.from_settings(settings)
        self.producer = PageProducer(settings.kafka_bootstrap, topics.pages)
        self.deadletters = topics.deadletter("ingest")
        self.seen = seen
        self.stats = IngestStats()

    def page(self, page: RawPage) -> None:
        if self.seen is not None and page.canonical_url in self.seen:
            self.stats.already_seen += 1
            return
        self.producer.send(page)
        self.stats.pages += 1
        self.stats.bytes += len(page.body)

    def skip(
        self,
        where: str,
        offset: int,
        url: str | None,
        reason: str,
        detail: str,
        *,
        transient: bool = False,
    ) -> None:
        """Count a page that cannot be ingested and, unless routine, dead-letter it.
        ``transient``: the cause may pass (a timeout), so a later try may succeed."""
        self.stats.skipped[reason] += 1
        if reason in ROUTINE_SKIPS:
            return
        log.warning("skipped %s@%d (%s): %s: %s", where, offset, url, reason, detail)
        kind = deadletter.TransientError if transient else deadletter.PermanentError
        error = kind(f"{reason}: {detail} ({where}@{offset})")
        # Not replayable to a topic (it never was a message): the origin names the file.
        origin = deadletter.Origin(topic="", partition=-1, offset=offset)
        headers = deadletter.failure_headers("ingest", error, origin, url=url)
        self.producer.send_raw(self.deadletters, where.encode(), b"", headers)

    def close(self) -> None:
        """Flush the producer, then remember what was delivered: a page is marked seen
        only once Kafka has it, so a crash in between refetches rather than loses it."""
        self.producer.close()
        self.seen_delivered()

    def seen_delivered(self) -> None:
        if self.seen is not None:
            self.seen.add_many(self.producer.delivered())


def ingest_warc(
    files: Iterable[Path], sink: PageSink, progress: Callable[[int], None] = lambda _: None
) -> IngestStats:
    """Every page of the WARC files onto the pages topic; ``progress`` gets bytes read."""
    for path in files:
        last = 0
        for item in read_warc(path):
            if isinstance(item, WarcSkip):
                sink.skip(path.name, item.offset, item.url, item.reason, item.detail)
                offset = item.offset
            else:
                sink.page(item)
                offset = int(item.source.ref.rsplit("@", 1)[-1] or 0)
            progress(max(0, offset - last))
            last = max(last, offset)
        progress(max(0, path.stat().st_size - last))
    return sink.stats
