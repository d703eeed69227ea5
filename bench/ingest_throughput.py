"""How fast ingest goes when politeness is not what bounds it.

1. Feed parsing: the real feeds of ../shared/data, parsed again and again.
2. Fetch -> Kafka: real news pages (fundus, ../shared/data) served by ``--hosts`` local
   HTTP servers (one host each), fetched by the monitor's fetch path with no delay between
   requests, produced to Kafka and marked seen. The production default (1 s between two
   requests to a host) would cap this at ``--hosts`` pages/s; this shows the ceiling
   behind that cap.
3. WARC -> Kafka: a WARC.gz written here from the same pages (one gzip member per record,
   as Common Crawl writes them), read and produced.

Prints rates, bytes, and CPU seconds per 1,000 pages. Needs Kafka
(`newsflow stack up`, or NEWSFLOW_KAFKA_BOOTSTRAP).

    .venv/bin/python bench/ingest_throughput.py --pages 2000 --hosts 20
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import resource
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ingest.feeds import Feed, parse_feed
from ingest.fetch import Fetcher, FetchPolicy
from ingest.jobs import PageSink, ingest_warc
from ingest.monitor import HealthStore, Link, Monitor
from ingest.seen import SeenStore
from newsflow.records import SourceKind
from newsflow.settings import Settings
from newsflow.topics import Topics, ensure_topics

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, n: int, unit: str, work: Callable[[], Any]) -> Any:
    c0, t0 = cpu(), time.perf_counter()
    result = work()
    wall, used = time.perf_counter() - t0, cpu() - c0
    print(
        f"{label}: {n} {unit} in {wall:.2f} s = {n / wall:,.0f} {unit}/s; "
        f"CPU {used:.2f} s ({1000 * used / n:.2f} s per 1,000)"
    )
    return result


def bench_feeds(rounds: int) -> None:
    files = [
        f for f in sorted((DATA / "feeds").glob("*/*")) if f.suffix in (".rss", ".xml", ".atom")
    ]
    bodies = [f.read_bytes() for f in files]

    def parse() -> int:
        entries = 0
        for _ in range(rounds):
            for body in bodies:
                feed = parse_feed(body, "https://feeds.example/f", "")
                assert isinstance(feed, Feed)
                entries += len(feed.entries)
        return entries

    entries = timed("feed parsing", rounds * len(bodies), "feeds", parse)
    print(f"  ({entries / (rounds * len(bodies)):.0f} entries per feed on average)")


class _Pages(ThreadingHTTPServer):
    daemon_threads = True
    pages: list[bytes]


class _Handler(BaseHTTPRequestHandler):
    server: _Pages
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            body, status = b"User-agent: *\nAllow: /\n", 200
        else:
            pages = self.server.pages
            body, status = pages[int(self.path.strip("/")) % len(pages)], 200
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(hosts: int, pages: list[bytes]) -> list[_Pages]:
    servers = []
    for _ in range(hosts):
        server = _Pages(("127.0.0.1", 0), _Handler)
        server.pages = pages
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return servers


def bench_fetch(settings: Settings, pages: list[bytes], n: int, hosts: int, state: Path) -> None:
    servers = serve(hosts, pages)
    urls = [f"http://127.0.0.1:{servers[i % hosts].server_address[1]}/{i}" for i in range(n)]
    policy = FetchPolicy(
        allow_private_addresses=True, min_delay_seconds=0.0, per_host_concurrency=4
    )

    async def run() -> PageSink:
        with SeenStore(state / "seen.sqlite") as seen:
            sink = PageSink(settings, seen)
            async with Fetcher(policy) as fetcher:
                monitor = Monitor([], fetcher, sink, HealthStore(state / "feeds.json"))
                for start in range(0, n, 200):
                    await monitor.fetch_new(
                        [Link(u) for u in urls[start : start + 200]], SourceKind.URLS, "bench"
                    )
            sink.close()
        return sink

    sink = timed(
        f"fetch -> Kafka ({hosts} hosts, no delay)", n, "pages", lambda: asyncio.run(run())
    )
    print(f"  {sink.stats.summary()}; {sink.stats.bytes / 1e6 / n * 1000:.0f} MB per 1,000 pages")
    for server in servers:
        server.shutdown()


def write_warc(pages: list[bytes], n: int, path: Path) -> None:
    with path.open("wb") as out:
        for i in range(n):
            body = pages[i % len(pages)]
            http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            http += f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            head = (
                "WARC/1.0\r\nWARC-Type: response\r\n"
                f"WARC-Record-ID: <urn:uuid:{uuid.uuid4()}>\r\n"
                "WARC-Date: 2026-11-30T12:00:00Z\r\n"
                f"WARC-Target-URI: https://site{i % 50}.example/article/{i}\r\n"
                "Content-Type: application/http; msgtype=response\r\n"
                f"Content-Length: {len(http)}\r\n\r\n"
            ).encode()
            buffer = io.BytesIO()
            with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6) as member:
                member.write(head + http + b"\r\n\r\n")
            out.write(buffer.getvalue())


def bench_warc(settings: Settings, pages: list[bytes], n: int, state: Path) -> None:
    path = state / "bench.warc.gz"
    write_warc(pages, n, path)
    print(f"WARC written: {n} records, {path.stat().st_size / 1e6:.1f} MB gzipped")

    def run() -> PageSink:
        with SeenStore(state / "warc-seen.sqlite") as seen:
            sink = PageSink(settings, seen)
            ingest_warc([path], sink)
            sink.close()
        return sink

    sink = timed("WARC.gz -> Kafka", n, "records", run)
    print(f"  {sink.stats.summary()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages fetched, and WARC records")
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--feed-rounds", type=int, default=50)
    args = parser.parse_args()
    files = sorted((DATA / "extraction" / "fundus").glob("*/*.html.gz"))
    if not files:
        sys.exit(
            f"no pages under {DATA / 'extraction' / 'fundus'} (../shared/data beside the repo)"
        )
    pages = [gzip.decompress(f.read_bytes()) for f in files]
    settings = Settings(topic_prefix=f"bench-ingest-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings, Topics.from_settings(settings).specs())
    with tempfile.TemporaryDirectory(prefix="newsflow-bench-") as tmp:
        bench_feeds(args.feed_rounds)
        bench_fetch(settings, pages, args.pages, args.hosts, Path(tmp))
        bench_warc(settings, pages, args.pages, Path(tmp))
    print(f"(topics under the prefix {settings.topic_prefix}; delete them when done)")


if __name__ == "__main__":
    main()
