"""`newsflow ingest feeds`, the real command in its own process, watching demo sites that
publish while it runs (real HTTP on 127.0.0.1, the real broker): every new article
reaches Kafka once, soon after it is published; polls between publications cost a 304;
Ctrl-C stops it cleanly; a restart fetches nothing again; `ingest status` shows the feeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from newsflow.demo.sites import DemoServer, Publishing, listings
from newsflow.records import RawPage, decode
from newsflow.settings import Settings
from newsflow.topics import Topics
from tests.conftest import ROOT, Process, read_topic

pytestmark = pytest.mark.stack

SITES = ("ledger", "meridian")


def cli_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NEWSFLOW_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        NEWSFLOW_TOPIC_PREFIX=settings.topic_prefix,
        NEWSFLOW_TOPIC_PARTITIONS=str(settings.topic_partitions),
        NEWSFLOW_STATE_DIR=str(settings.state_dir),
        # Seconds, not minutes: the sites publish every second or so.
        NEWSFLOW_FEED_MIN_INTERVAL="1",
        NEWSFLOW_FEED_INITIAL_INTERVAL="1",
        NEWSFLOW_FEED_MAX_INTERVAL="2",
    )
    return env


def newsflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own, run to the end."""
    argv = [sys.executable, "-m", "newsflow.cli", *args]
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def pages_on_kafka(settings: Settings) -> list[RawPage]:
    topic = Topics.from_settings(settings).pages
    return [decode(RawPage, m.value) for m in read_topic(settings, topic)]


def wait_for(count: int, settings: Settings, proc: Process, timeout: float) -> list[RawPage]:
    deadline = time.monotonic() + timeout
    while True:
        pages = pages_on_kafka(settings)
        if len(pages) >= count or time.monotonic() > deadline:
            return pages
        assert proc.running, proc.tail()
        time.sleep(1.0)


def test_ingest_feeds_follows_publishing_sites_and_stops_cleanly(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    publishing = Publishing(every=1.5, initial=6)
    with DemoServer(sites=SITES, publishing=publishing) as server:
        newsroom = server.newsroom
        assert newsroom is not None
        found = listings(server, kinds=("rss", "atom"))
        sources = tmp_path / "sources.yaml"
        sources.write_text(
            yaml.safe_dump({"sources": [{"name": k, **v} for k, v in found.items()]})
        )
        released = newsroom.schedule()
        every_article = {(key, r.article.path) for key, rs in newsroom.releases.items() for r in rs}
        assert len(released) >= 10  # articles that appear while the monitor runs

        argv = [sys.executable, "-m", "newsflow.cli", "ingest", "feeds", "--allow-private"]
        proc = Process([*argv, "--sources", str(sources)], cli_env(s), tmp_path / "ingest.log")
        proc.start()
        try:
            wait = (newsroom.end - datetime.now(UTC)).total_seconds() + 60
            pages = wait_for(len(every_article), s, proc, timeout=wait)
            time.sleep(4)  # a few polls with nothing new
        finally:
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGINT)
            code = proc.proc.wait(timeout=60)
        assert code == 0, proc.tail()
        assert "pages" in proc.tail() and "sent" in proc.tail()  # the summary

        # Every article once: those there from the start and those published meanwhile.
        urls = {server.base_url(k) + path for k, path in every_article}
        pages = pages_on_kafka(s)
        assert sorted(p.url for p in pages) == sorted(urls)

        # Refetches: none. Each article asked for once, never before it was published
        # (a 404 would mean the monitor guessed), each feed polled many times.
        asked = Counter((r.site, r.path) for r in server.requests)
        assert all(asked[a] == 1 for a in every_article), asked
        statuses = Counter(r.status for r in server.requests)
        assert statuses[404] == 0
        feed_paths = {
            (k, u.removeprefix(server.base_url(k))) for k, f in found.items() for u in f["feeds"]
        }
        polls = [r for r in server.requests if (r.site, r.path) in feed_paths]
        assert all(sum(1 for r in polls if (r.site, r.path) == f) >= 3 for f in feed_paths)
        # Between publications and after the last one, polls are conditional: 304s.
        after_last = [r for r in polls if r.at > newsroom.end]
        assert after_last and all(r.conditional for r in after_last)
        assert any(r.status == 304 for r in after_last)

        # Each new article reached Kafka after it was published, within a few polls.
        sent_at = {p.url: p.fetched_at for p in pages}
        lags = [
            (sent_at[server.base_url(k) + path] - at).total_seconds() for k, path, at in released
        ]
        assert min(lags) > 0
        assert max(lags) < 30, sorted(lags)

        # A restart: the schedule and the seen store hold, nothing is fetched again.
        before = len(server.requests)
        again = newsflow(cli_env(s), *argv[3:], "--sources", str(sources), "--once")
        assert again.returncode == 0, again.stderr
        later = server.requests[before:]
        assert not [r for r in later if (r.site, r.path) in every_article]
        assert all(r.status == 304 for r in later if (r.site, r.path) in feed_paths)
        assert len(pages_on_kafka(s)) == len(urls)

    status = newsflow(cli_env(s), "ingest", "status")
    assert status.returncode == 0, status.stderr
    for f in found.values():
        for u in f["feeds"]:
            assert u in status.stdout
    assert status.stdout.count("; ok") == sum(len(f["feeds"]) for f in found.values())


def test_topics_of_another_shape_are_a_clear_error_not_a_traceback(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [{"name": "x", "feeds": ["http://x.test/"]}]}))
    env = cli_env(pipeline_settings)
    env["NEWSFLOW_TOPIC_PARTITIONS"] = str(pipeline_settings.topic_partitions + 2)
    run = newsflow(env, "ingest", "feeds", "--once", "--sources", str(sources))
    assert run.returncode == 2  # a set-up error: the topics are laid out otherwise
    assert "Traceback" not in run.stderr
    assert "wrong partition count" in run.stderr and "NEWSFLOW_TOPIC_PREFIX" in run.stderr
