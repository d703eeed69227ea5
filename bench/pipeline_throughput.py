"""End-to-end throughput of the pipeline on the local stack: real pages in, searchable
articles out.

Produces N real pages (the fundus golden pages, repeated under distinct URLs as needed)
onto a fresh set of topics, starts one worker process, and measures the time from the
first page produced until every article is in Elasticsearch, plus the worker's peak RSS.

    .venv/bin/newsflow stack up
    .venv/bin/python bench/pipeline_throughput.py --pages 300
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from elasticsearch import Elasticsearch

from ingest.canon import canonicalize, site_of
from ingest.producer import PageProducer
from newsflow.records import RawPage, Source, SourceKind, utcnow
from newsflow.settings import Settings
from newsflow.topics import Topics
from processors.app import prepare
from processors.index import alias

ROOT = Path(__file__).resolve().parent.parent
FUNDUS = ROOT.parent / "shared" / "data" / "extraction" / "fundus"


def pages(n: int) -> list[RawPage]:
    files = sorted(FUNDUS.glob("*/*.html.gz"))
    if not files:
        sys.exit(f"no pages found under {FUNDUS} (../shared/data beside the repository)")
    bodies = [(f, gzip.decompress(f.read_bytes())) for f in files]
    out = []
    for i in range(n):
        path, body = bodies[i % len(bodies)]
        url = f"https://www.{path.name.split('_')[0].lower()}.example/{i}"
        out.append(
            RawPage(
                url=url,
                canonical_url=canonicalize(url),
                site=site_of(url),
                fetched_at=utcnow(),
                content_type="text/html",
                body=body,
                source=Source(kind=SourceKind.URLS, ref="bench"),
            )
        )
    return out


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    settings = Settings(
        topic_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        state_dir=Path(f"/tmp/newsflow-bench-{os.getpid()}"),
    )
    prepare(settings)
    batch = pages(args.pages)
    env = {
        **os.environ,
        "NEWSFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "NEWSFLOW_STATE_DIR": str(settings.state_dir),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "newsflow.cli", "-q", "worker", "--loglevel", "warn"],
        env=env,
        cwd=ROOT,
    )
    try:
        time.sleep(15)  # let the worker join its group and load spaCy before the clock starts
        start = time.monotonic()
        with PageProducer(settings, Topics.from_settings(settings).pages) as p:
            for page in batch:
                p.send(page)
        done, elapsed = wait(settings, len(batch), start, args.timeout)
        print(
            f"{done} articles searchable from {len(batch)} pages in {elapsed:.1f} s: "
            f"{done / elapsed:.1f} articles/s; worker peak RSS {peak_rss_mb(worker.pid):.0f} MB"
        )
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def wait(settings: Settings, expected: int, start: float, timeout: float) -> tuple[int, float]:
    """(articles indexed, seconds until the last one was), once the count has stopped
    growing for 20 s (some pages are filtered, so the final count is not known)."""
    es = Elasticsearch(settings.elasticsearch_url)
    index, last, stable_since = alias(settings.topic_prefix), -1, time.monotonic()
    while time.monotonic() - start < timeout:
        time.sleep(2)
        count = es.count(index=index)["count"] if es.indices.exists_alias(name=index) else 0
        if count != last:
            last, stable_since = count, time.monotonic()
            print(f"  {count}/{expected} after {time.monotonic() - start:.0f} s", flush=True)
        elif count and time.monotonic() - stable_since > 20:
            return int(count), stable_since - start
    return int(last), time.monotonic() - start


if __name__ == "__main__":
    main()
