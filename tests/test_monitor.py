"""Continuous monitoring against real HTTP (the demo sites on 127.0.0.1) and the real
broker: every article of the feeds reaches Kafka once; a second poll and a restart fetch
nothing again (conditional GET, seen-URL memory, saved feed health)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ingest.fetch import Fetcher, FetchPolicy
from ingest.jobs import PageSink
from ingest.monitor import HealthStore, Monitor
from ingest.seen import SeenStore
from newsflow.demo.sites import EXPECTED, DemoServer, url
from newsflow.records import RawPage, SourceKind, decode
from newsflow.settings import Settings
from newsflow.topics import Topics
from tests.conftest import read_topic

pytestmark = pytest.mark.stack

SITES = ("ledger", "meridian")  # the courier's Crawl-delay of 2 s would only slow this down
POLICY = FetchPolicy(allow_private_addresses=True, min_delay_seconds=0.05)


def read_pages(settings: Settings) -> list[RawPage]:
    return [
        decode(RawPage, m.value) for m in read_topic(settings, Topics.from_settings(settings).pages)
    ]


def poll_once(settings: Settings, endpoints: list[tuple[str, str, str]], state: Path) -> Any:
    async def run() -> Any:
        with SeenStore(state / "seen.sqlite") as seen:
            sink = PageSink(settings, seen)
            async with Fetcher(POLICY) as fetcher:
                monitor = Monitor(endpoints, fetcher, sink, HealthStore(state / "feeds.json"))
                await monitor.run(asyncio.Event(), cycles=1, metrics=state / "ingest.prom")
                stats = fetcher.stats.snapshot()
            sink.close()
        return sink.stats, stats

    return asyncio.run(run())


def test_feeds_reach_kafka_once_and_a_restart_refetches_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    with DemoServer(sites=SITES) as server:
        endpoints = [
            (p.site, "feed", url(server, p.site, p.path))
            for p in EXPECTED.pages
            if p.site in SITES and p.kind in ("rss", "atom")
        ]
        first, first_fetches = poll_once(s, endpoints, tmp_path)
        exported = (tmp_path / "ingest.prom").read_text().splitlines()
        assert f"newsflow_ingest_pages_total {first.pages}" in exported
        articles = {url(server, a.site, a.path) for a in EXPECTED.articles if a.site in SITES}
        pages = read_pages(s)
        assert {p.url for p in pages} == articles
        assert len(pages) == len(articles)  # each once, though two feeds list meridian's
        assert all(p.source.kind == SourceKind.FEED and p.hint_title for p in pages)
        # No refetches: one request per feed, per robots.txt and per article, though both
        # of meridian's feeds list the same articles and are polled at the same time.
        requests = sum(first_fetches["requests"].values())
        assert requests == len(endpoints) + first_fetches["robots_fetches"] + len(articles)

        # A restart resumes the saved schedule: nothing is due yet, nothing is fetched.
        second, fetch_stats = poll_once(s, endpoints, tmp_path)
        assert (second.pages, fetch_stats["fetched"], fetch_stats["not_modified"]) == (0, 0, 0)

        # Even with the feed health lost, the seen-URL store keeps every article from
        # being fetched again: only the feeds themselves are.
        (tmp_path / "feeds.json").unlink()
        third, fetch_stats = poll_once(s, endpoints, tmp_path)
        assert third.pages == 0
        assert fetch_stats["fetched"] + fetch_stats["not_modified"] == len(endpoints)
        assert len(read_pages(s)) == len(articles)
    assert first.pages == len(articles)
