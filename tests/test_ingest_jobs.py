"""Ingest jobs against the real broker: a real Common Crawl WARC excerpt onto the pages
topic, nothing sent twice after a restart, bad records to the ingest dead-letter topic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest.jobs import PageSink, ingest_warc
from ingest.seen import SeenStore
from newsflow.records import RawPage, decode
from newsflow.settings import Settings
from newsflow.topics import Topics
from tests.conftest import read_topic, shared_data_path

pytestmark = pytest.mark.stack


def run(settings: Settings, files: list[Path], seen_path: Path) -> Any:
    with SeenStore(seen_path) as seen:
        sink = PageSink(settings, seen)
        progress: list[int] = []
        try:
            stats = ingest_warc(files, sink, progress.append)
        finally:
            sink.close()
    assert sum(progress) == sum(f.stat().st_size for f in files)
    return stats


def test_warc_pages_reach_kafka_once_across_restarts(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    warc = shared_data_path("warc", "resiliparse", "warcfile.warc.gz")
    seen = tmp_path / "seen.sqlite"

    first = run(s, [warc], seen)
    assert first.pages == 16
    topics = Topics.from_settings(s)
    messages = read_topic(s, topics.pages)
    pages = [decode(RawPage, m.value) for m in messages]
    assert len(pages) == 16
    assert len({p.article_id for p in pages}) == 16
    # Keyed by site: all of a site's pages share a partition.
    assert all(m.key == p.site.encode() for m, p in zip(messages, pages, strict=True))

    # A second run (a restart) finds every page in the seen-URL store: nothing refetched.
    second = run(s, [warc], seen)
    assert (second.pages, second.already_seen) == (0, 16)
    assert len(read_topic(s, topics.pages)) == 16


def test_unreadable_records_become_dead_letters(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    original = shared_data_path("warc", "resiliparse", "warcfile.warc.gz").read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(original[: len(original) // 2])  # ends inside a record

    stats = run(s, [cut], tmp_path / "seen.sqlite")
    assert 0 < stats.pages < 16
    assert stats.skipped["corrupt"] == 1
    letters = read_topic(s, Topics.from_settings(s).deadletter("ingest"))
    assert len(letters) == sum(
        n for r, n in stats.skipped.items() if r not in ("not-html", "not-http", "revisit")
    )
    headers = dict(letters[-1].headers)
    assert headers["newsflow-dlq-stage"] == b"ingest"
    assert b"corrupt" in headers["newsflow-dlq-error"]
