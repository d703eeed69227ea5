"""Ingest counters for monitoring, in the Prometheus text format.

`ingest feeds` rewrites ``NEWSFLOW_STATE_DIR/ingest.prom`` as polls finish, so
node_exporter's textfile collector (or anything that reads a file) can scrape it:

    newsflow_ingest_pages_total            pages sent to Kafka
    newsflow_ingest_bytes_total            their body bytes
    newsflow_ingest_already_seen_total     links skipped because they were sent before
    newsflow_ingest_skipped_total{reason}  what could not be ingested, by reason
    newsflow_fetch_requests_total{host}    HTTP requests per host
    newsflow_fetch_errors_total{reason}    failed fetches by reason
    newsflow_feed_failures{feed}           consecutive failures of each feed
    newsflow_feed_lag_seconds{feed}        time since the feed was last read successfully
    newsflow_feed_pending{feed}            articles waiting to be tried again (timeouts, 5xx)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.jobs import IngestStats
from ingest.schedule import FeedHealth


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value:g}" for labels, value in samples]
    return "\n".join(lines)


def _by(label: str, counts: Mapping[str, Any]) -> list[tuple[str, float]]:
    return [(f'{{{label}="{_label(k)}"}}', float(v)) for k, v in sorted(counts.items())]


def render(
    stats: IngestStats, fetch: Mapping[str, Any], feeds: Iterable[FeedHealth], now: datetime
) -> str:
    feeds = list(feeds)
    lag = [
        (f'{{feed="{_label(h.url)}"}}', (now - h.last_success).total_seconds())
        for h in feeds
        if h.last_success is not None
    ]
    families = [
        _family(
            "newsflow_ingest_pages_total", "counter", "Pages sent to Kafka.", [("", stats.pages)]
        ),
        _family(
            "newsflow_ingest_bytes_total",
            "counter",
            "Body bytes of the pages sent.",
            [("", stats.bytes)],
        ),
        _family(
            "newsflow_ingest_already_seen_total",
            "counter",
            "Links not fetched because they were sent before.",
            [("", stats.already_seen)],
        ),
        _family(
            "newsflow_ingest_skipped_total",
            "counter",
            "What could not be ingested.",
            _by("reason", stats.skipped),
        ),
        _family(
            "newsflow_fetch_requests_total",
            "counter",
            "HTTP requests per host.",
            _by("host", fetch.get("requests", {})),
        ),
        _family(
            "newsflow_fetch_errors_total",
            "counter",
            "Failed fetches by reason.",
            _by("reason", fetch.get("errors", {})),
        ),
        _family(
            "newsflow_feed_failures",
            "gauge",
            "Consecutive failures of each feed.",
            _by("feed", {h.url: h.consecutive_failures for h in feeds}),
        ),
        _family(
            "newsflow_feed_lag_seconds",
            "gauge",
            "Seconds since the feed was last read successfully.",
            lag,
        ),
        _family(
            "newsflow_feed_pending",
            "gauge",
            "Articles of each feed waiting to be tried again after a passing failure.",
            _by("feed", {h.url: len(h.pending) for h in feeds}),
        ),
    ]
    return "\n".join(families) + "\n"


def write(path: Path, text: str) -> None:
    """Atomically, so a scraper never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
