"""The monitoring file: Prometheus text format with the counters a user alerts on."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from ingest.jobs import IngestStats
from ingest.metrics import render
from ingest.schedule import FeedHealth, Pending

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)


def test_render_counts_skips_requests_and_feed_lag() -> None:
    stats = IngestStats(
        pages=12,
        bytes=34_000,
        already_seen=3,
        skipped=Counter({"http-404": 2, "robots-disallowed": 1}),
    )
    fetch = {"requests": {"a.example:443": 9, "b.example:443": 4}, "errors": {"timeout": 1}}
    feeds = [
        FeedHealth(url="https://a.example/feed", last_success=NOW - timedelta(minutes=5)),
        FeedHealth(
            url='https://b.example/"odd"',
            consecutive_failures=3,
            pending=(Pending(url="https://b.example/1", last_error="timeout: ReadTimeout"),),
        ),
    ]
    text = render(stats, fetch, feeds, NOW)
    lines = set(text.splitlines())
    assert "newsflow_ingest_pages_total 12" in lines
    assert "newsflow_ingest_bytes_total 34000" in lines
    assert 'newsflow_ingest_skipped_total{reason="http-404"} 2' in lines
    assert 'newsflow_fetch_requests_total{host="a.example:443"} 9' in lines
    assert 'newsflow_fetch_errors_total{reason="timeout"} 1' in lines
    assert 'newsflow_feed_lag_seconds{feed="https://a.example/feed"} 300' in lines
    assert 'newsflow_feed_failures{feed="https://b.example/\\"odd\\""} 3' in lines
    assert 'newsflow_feed_pending{feed="https://b.example/\\"odd\\""} 1' in lines
    assert 'newsflow_feed_pending{feed="https://a.example/feed"} 0' in lines
    # A feed never read has no lag sample rather than a made-up one.
    assert not any(line.startswith('newsflow_feed_lag_seconds{feed="https://b') for line in lines)
    # Every sample belongs to a declared family.
    declared = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    samples = {line.split("{")[0].split()[0] for line in lines if not line.startswith("#")}
    assert samples <= declared
