"""Soak: `newsflow ingest feeds` watching sites that publish while it runs.

The three demo sites are served on 127.0.0.1 and publish their articles one by one
(newsflow.demo's ``Publishing``: each site starts with a few and releases another every
``--every`` seconds). The real `newsflow ingest feeds` command watches their feeds and
sitemaps with its default politeness (1 s between requests to a host, the courier's
robots.txt asks for 2 s) until the last article is out and a few quiet polls have
passed, then gets Ctrl-C. With ``--pipeline`` a worker runs too, and each article is
followed into Elasticsearch.

Reported: articles published and sent (each once?), publication -> Kafka lag (and ->
searchable with ``--pipeline``), requests by kind (feed polls answered 200 or 304,
robots.txt, articles, other pages), refetches, requests per host per second, the
smallest gap between two requests to a host against the delay it asked for, requests to
paths robots.txt disallows, and the ingest process's CPU time and peak memory.

    .venv/bin/newsflow stack up
    .venv/bin/python bench/ingest_soak.py --every 20 --pipeline     # about 5 minutes
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, TopicPartition

from ingest.canon import canonicalize
from newsflow.demo.sites import EXPECTED, DemoServer, Publishing, listings
from newsflow.records import RawPage, article_id, decode
from newsflow.settings import Settings
from newsflow.topics import Topics, ensure_topics
from processors.index import alias

ROOT = Path(__file__).resolve().parent.parent
DISALLOWED = {"courier": ("/private/",), "ledger": ("/search", "/newsletters/")}
ASKED_DELAY = {"courier": 2.0}  # robots.txt Crawl-delay; the others get the 1 s default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--every", type=float, default=20.0, help="seconds between two articles of a site"
    )
    parser.add_argument("--initial", type=int, default=2, help="articles each site starts with")
    parser.add_argument(
        "--min-interval", type=float, default=10.0, help="NEWSFLOW_FEED_MIN_INTERVAL"
    )
    parser.add_argument(
        "--max-interval", type=float, default=60.0, help="NEWSFLOW_FEED_MAX_INTERVAL"
    )
    parser.add_argument(
        "--quiet", type=float, default=60.0, help="seconds to go on after the last article"
    )
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="also run a worker, follow articles into Elasticsearch",
    )
    args = parser.parse_args()

    prefix = f"soak-{uuid.uuid4().hex[:6]}"
    state = Path(tempfile.mkdtemp(prefix="newsflow-soak-"))
    settings = Settings(topic_prefix=prefix, state_dir=state)
    if args.pipeline:
        from processors.app import prepare

        prepare(settings)
    else:
        ensure_topics(settings, Topics.from_settings(settings).specs())
    env = {
        **os.environ,
        "NEWSFLOW_TOPIC_PREFIX": prefix,
        "NEWSFLOW_STATE_DIR": str(state),
        "NEWSFLOW_FEED_MIN_INTERVAL": str(args.min_interval),
        "NEWSFLOW_FEED_INITIAL_INTERVAL": str(args.min_interval),
        "NEWSFLOW_FEED_MAX_INTERVAL": str(args.max_interval),
    }
    worker = None
    if args.pipeline:
        worker = subprocess.Popen(
            [sys.executable, "-m", "newsflow.cli", "-q", "worker", "--loglevel", "warn"],
            env=env,
            cwd=ROOT,
            stdout=(state / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        time.sleep(15)  # the worker joins its group and loads spaCy
    try:
        run(args, settings, env, state)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)


def run(args: argparse.Namespace, settings: Settings, env: dict[str, str], state: Path) -> None:
    publishing = Publishing(every=args.every, initial=args.initial)
    with DemoServer(publishing=publishing) as server:
        newsroom = server.newsroom
        assert newsroom is not None
        kinds = ("rss", "atom", "news-sitemap", "sitemap")
        sources = state / "sources.yaml"
        declared = [{"name": k, **v} for k, v in listings(server, kinds).items()]
        sources.write_text(yaml.safe_dump({"sources": declared}))
        released = newsroom.schedule()
        print(
            f"{len(server.site_keys)} sites, {sum(len(r) for r in newsroom.releases.values())} "
            f"articles, {len(released)} of them published during the run, one every "
            f"{args.every / len(server.site_keys):.1f} s, last at "
            f"+{(newsroom.end - newsroom.start).total_seconds():.0f} s",
            flush=True,
        )
        argv = [sys.executable, "-m", "newsflow.cli", "ingest", "feeds", "--allow-private"]
        log = (state / "ingest.log").open("wb")
        started = time.monotonic()
        proc = subprocess.Popen(
            [*argv, "--sources", str(sources)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        until = (newsroom.end - datetime.now(UTC)).total_seconds() + args.quiet
        while time.monotonic() - started < until:
            time.sleep(10)
            if proc.poll() is not None:
                sys.exit(f"ingest feeds exited early; see {state / 'ingest.log'}")
            print(
                f"  +{time.monotonic() - started:.0f} s: {len(server.requests)} requests served",
                flush=True,
            )
        cpu, rss = cpu_seconds(proc.pid), peak_rss_mb(proc.pid)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        duration = time.monotonic() - started
        print(f"ingest feeds stopped by SIGINT: exit {code} after {duration:.0f} s")
        report(server, newsroom, settings, duration, cpu, rss, args.pipeline)


def report(
    server: DemoServer,
    newsroom: Any,
    settings: Settings,
    duration: float,
    cpu: float,
    rss: float,
    pipeline: bool,
) -> None:
    pages = read_pages(settings)
    articles = {(key, r.article.path) for key, rs in newsroom.releases.items() for r in rs}
    url_of = {(k, p): server.base_url(k) + p for k, p in articles}
    sent = Counter(p.canonical_url for p in pages)
    article_urls = {canonicalize(u) for u in url_of.values()}
    once = sum(1 for u in article_urls if sent[u] == 1)
    print(
        f"\narticles: {len(articles)}; on Kafka exactly once: {once}; "
        f"missing: {sum(1 for u in article_urls if sent[u] == 0)}; "
        f"duplicates: {sum(n - 1 for n in sent.values() if n > 1)}; other pages sent: "
        f"{sum(1 for u in sent if u not in article_urls)}"
    )

    at_kafka = {p.canonical_url: p.fetched_at for p in pages}
    lags = [
        (at_kafka[canonicalize(url_of[(k, p)])] - at).total_seconds()
        for k, p, at in newsroom.schedule()
        if canonicalize(url_of[(k, p)]) in at_kafka
    ]
    print("publication -> Kafka lag (s): " + summary(lags))

    listing_paths = {
        (p.site, p.path)
        for p in EXPECTED.pages
        if p.kind in ("rss", "atom", "news-sitemap", "sitemap")
    }
    kinds: Counter[str] = Counter()
    per_url: Counter[tuple[str, str]] = Counter()
    by_host: dict[str, list[float]] = defaultdict(list)
    forbidden = 0
    for r in server.requests:
        path = r.path.split("?", 1)[0]
        by_host[r.site].append(r.monotonic)
        if path == "/robots.txt":
            kinds["robots.txt"] += 1
        elif (r.site, path) in listing_paths:
            kinds[f"listing polls answered {r.status}"] += 1
        else:
            kinds["articles" if (r.site, path) in articles else "other pages"] += 1
            per_url[(r.site, path)] += 1
        forbidden += any(path.startswith(d) for d in DISALLOWED.get(r.site, ()))
    refetches = sum(n - 1 for n in per_url.values() if n > 1)
    print("requests: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    print(f"refetches: {refetches}; requests to paths robots.txt disallows: {forbidden}")
    polls = sum(n for k, n in kinds.items() if k.startswith("listing"))
    print(
        f"listing polls answered 304: {kinds['listing polls answered 304']} of {polls} "
        f"({kinds['listing polls answered 304'] / max(polls, 1):.0%})"
    )
    for site, times in sorted(by_host.items()):
        times.sort()
        gaps = [b - a for a, b in itertools.pairwise(times)]
        per_s = len(times) / duration
        busiest = max(sum(1 for t in times if s <= t < s + 10) for s in times) / 10
        print(
            f"  {site}: {len(times)} requests, {per_s:.3f}/s on average, busiest 10 s "
            f"{busiest:.1f}/s, smallest gap {min(gaps):.2f} s (asked for "
            f"{ASKED_DELAY.get(site, 1.0):.0f} s)"
        )
    print(
        f"pages sent: {len(pages)} in {duration:.0f} s ({len(pages) / duration:.2f}/s, set by "
        f"the publishing rate); ingest CPU {cpu:.1f} s ({cpu / duration:.1%} of one core), "
        f"peak RSS {rss:.0f} MB"
    )
    if pipeline:
        searchable(settings, newsroom, url_of)


def searchable(settings: Settings, newsroom: Any, url_of: dict[tuple[str, str], str]) -> None:
    es = Elasticsearch(settings.elasticsearch_url)
    index = alias(settings.topic_prefix)
    deadline = time.monotonic() + 120
    ids = {article_id(canonicalize(u)): key for key, u in url_of.items()}
    while True:
        es.indices.refresh(index=index)
        found = es.search(
            index=index, query={"ids": {"values": list(ids)}}, size=len(ids), source=["indexed_at"]
        )["hits"]["hits"]
        if len(found) == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(5)
    indexed = {ids[h["_id"]]: datetime.fromisoformat(h["_source"]["indexed_at"]) for h in found}
    lags = [
        (indexed[(k, p)] - at).total_seconds()
        for k, p, at in newsroom.schedule()
        if (k, p) in indexed
    ]
    print(
        f"searchable in Elasticsearch: {len(found)} of {len(ids)} articles; "
        f"publication -> indexed lag (s): {summary(lags)}"
    )


def read_pages(settings: Settings) -> list[RawPage]:
    topic = Topics.from_settings(settings).pages
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    out: list[RawPage] = []
    while any(consumer.position(tp) < end[tp] for tp in partitions):
        for batch in consumer.poll(timeout_ms=1000).values():
            out.extend(decode(RawPage, m.value) for m in batch)
    consumer.close()
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    q = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else values * 19
    return (
        f"n {len(values)}, median {statistics.median(values):.1f}, p95 {q[18]:.1f}, "
        f"max {max(values):.1f}"
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


if __name__ == "__main__":
    main()
