"""Ingest jobs: read a source, put its pages on the pages topic, report what was skipped.

Pages already in the pipeline (the seen-URL store, kept across restarts) are not sent
again. What cannot be ingested is a ``Failure``: where it came from (a list file and line,
a WARC file and offset, a feed's URL), a stable reason code and what happened. Each is
counted by reason and logged once; the bad input among them (a record that does not
decode, a truncated file, a page that answers 404) also goes to the ingest dead-letter
topic with its reason and origin, so nothing disappears without a trace. Routine skips,
the normal content of a crawl (a WARC's images, its revisit records), are only counted.
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
# Permanent failures not remembered as such: they depend on how the command was run
# (--allow-private), not on the URL, and must not outlive a run with other options.
NOT_REMEMBERED = frozenset({"private-address"})


@dataclass(frozen=True)
class Failure:
    """One input that could not be ingested, and where it came from."""

    where: str  # "urls.txt:2", "cc.warc.gz@1234", "https://x.example/feed.xml"
    reason: str  # a stable code: "bad-url", "http-404", "corrupt", ...
    detail: str
    url: str | None = None  # the page's URL, when there is one
    transient: bool = False  # the cause may pass (a timeout): a later try may succeed
    offset: int = -1  # the byte offset in a WARC file; -1 for other inputs

    @property
    def routine(self) -> bool:
        return self.reason in ROUTINE_SKIPS

    def line(self) -> str:
        """The one log line that says it, where first."""
        if self.reason == "corrupt":  # its detail says where in the file, and what it costs
            return f"{self.where}: {self.detail}"
        url = self.url if self.reason != "bad-url" else repr(self.url)  # quoted: it may be odd
        page = f" {url}" if self.url and self.url != self.where else ""
        return f"{self.where}: skipped{page}: {self.detail} ({self.reason})"


@dataclass
class IngestStats:
    pages: int = 0
    bytes: int = 0
    already_seen: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    # Canonical URLs (or list lines) not tried because they failed for good on an
    # earlier run: a set, as a feed polled again lists the same ones again.
    failed_before: set[str] = field(default_factory=set)
    failed_polls: int = 0  # polls of a feed or sitemap that got no listing

    @property
    def failures(self) -> int:
        """Inputs that failed in this run: every skip but the routine ones."""
        return sum(n for reason, n in self.skipped.items() if reason not in ROUTINE_SKIPS)

    @property
    def ok(self) -> bool:
        """Nothing failed in this run (what failed before is not tried, so not counted)."""
        return not self.failures and not self.failed_polls

    def summary(self, retry_hint: str = "") -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        text = (
            f"{self.pages} pages ({self.bytes / 1e6:.1f} MB) sent, "
            f"{self.already_seen} already seen, skipped: {skipped or 'none'}"
        )
        if self.failed_polls:
            text += f"; {self.failed_polls} poll(s) of a feed or sitemap failed"
        if self.failed_before:
            hint = f" ({retry_hint})" if retry_hint else ""
            text += f"; {len(self.failed_before)} failed before, not tried again{hint}"
        return text


class PageSink:
    """Where ingested pages go: the pages topic, the seen store, the dead-letter topic."""

    def __init__(self, settings: Settings, seen: SeenStore | None) -> None:
        topics = Topics.from_settings(settings)
        self.producer = PageProducer(settings, topics.pages)
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

    def fail(self, failure: Failure, *, remember: bool = False) -> None:
        """Count an input that cannot be ingested and, unless routine, log it and
        dead-letter it. ``remember``: a permanent failure of a URL is kept in the seen
        store, so the next run skips it as failed before instead of failing it again."""
        self.stats.skipped[failure.reason] += 1
        if failure.routine:
            return
        log.warning("%s", failure.line())
        kind = deadletter.TransientError if failure.transient else deadletter.PermanentError
        error = kind(f"{failure.reason}: {failure.detail}")
        # Not replayable to a topic (it never was a message): ``source`` names the input.
        origin = deadletter.Origin(topic="", partition=-1, offset=failure.offset)
        headers = deadletter.failure_headers(
            "ingest", error, origin, url=failure.url, source=failure.where
        )
        self.producer.send_raw(self.deadletters, failure.where.encode(), b"", headers)
        lasting = not failure.transient and failure.reason not in NOT_REMEMBERED
        if remember and lasting and self.seen is not None and failure.url:
            self.seen.add_failed(failure.url, f"{failure.reason}: {failure.detail}")

    def close(self) -> None:
        """Flush the producer, then remember what was delivered: a page is marked seen
        only once Kafka has it, so a crash in between refetches rather than loses it."""
        self.producer.close()
        self.seen_delivered()

    def seen_delivered(self) -> None:
        if self.seen is not None:
            self.seen.add_many(self.producer.delivered())


def warc_failure(name: str, skip: WarcSkip) -> Failure:
    """A WARC skip as a failure. A corrupt file's detail names the offset itself."""
    where = name if skip.reason in ("corrupt", "empty") else f"{name}@{skip.offset}"
    return Failure(where, skip.reason, skip.detail, url=skip.url, offset=skip.offset)


def ingest_warc(
    files: Iterable[Path], sink: PageSink, progress: Callable[[int], None] = lambda _: None
) -> IngestStats:
    """Every page of the WARC files onto the pages topic; ``progress`` gets bytes read."""
    for path in files:
        last = 0
        for item in read_warc(path):
            if isinstance(item, WarcSkip):
                sink.fail(warc_failure(path.name, item))
                offset = item.offset
            else:
                sink.page(item)
                offset = int(item.source.ref.rsplit("@", 1)[-1] or 0)
            progress(max(0, offset - last))
            last = max(last, offset)
        progress(max(0, path.stat().st_size - last))
    return sink.stats
