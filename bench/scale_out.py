"""Scale-out: 1, 2 and 3 workers in one consumer group on the same topics.

For each worker count, a fresh pipeline (its own topics, 6 partitions so that three
workers all get some) is started with that many worker processes, each with its own state
directory, as they would run on separate machines. A warm-up batch is indexed first (each
worker loads spaCy on its first enrich batch), then N real pages are produced and the
clock runs until articles from 80% of them are searchable (about a tenth of the real
pages are filtered, so "all" is not a count known in advance). Prints articles/s, the
ratio to one worker, and each worker's peak RSS.

    .venv/bin/newsflow stack up          # the local stack on 9092/9200
    .venv/bin/python bench/scale_out.py --pages 300 --workers 1,2,3

On a 2-core machine three workers compete for two cores: the ratios say how much of the
cores the pipeline uses, not what three machines would give.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

from elasticsearch import Elasticsearch

from ingest.producer import PageProducer
from newsflow.settings import Settings, as_env
from newsflow.topics import Topics
from processors.app import prepare

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from pipeline_throughput import pages, peak_rss_mb  # noqa: E402

from tests.drills import group_members as members  # noqa: E402
from tests.drills import indexed_count as indexed  # noqa: E402

PARTITIONS = 6


def wait_count(es: Elasticsearch, s: Settings, target: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if indexed(es, s) >= target:
            return time.monotonic()
        time.sleep(0.5)
    raise SystemExit(f"only {indexed(es, s)} of {target} indexed after {timeout:.0f}s")


def run(n: int, batch_size: int, base: Settings, tmp: Path) -> tuple[float, list[float]]:
    s = base.model_copy(
        update={"topic_prefix": f"scale-{uuid.uuid4().hex[:6]}", "topic_partitions": PARTITIONS}
    )
    prepare(s)
    env = {**os.environ, **as_env(s)}
    argv = [sys.executable, "-m", "newsflow.cli", "-q", "worker", "--loglevel", "warn"]
    workers = [
        subprocess.Popen(argv, env={**env, "NEWSFLOW_STATE_DIR": str(tmp / f"{n}-{i}")}, cwd=ROOT)
        for i in range(n)
    ]
    es = Elasticsearch(s.elasticsearch_url, request_timeout=30)
    try:
        deadline = time.monotonic() + 180
        while members(s) < n and time.monotonic() < deadline:
            time.sleep(1)
        warm, batch = pages(4 * PARTITIONS), pages(batch_size + 4 * PARTITIONS)[4 * PARTITIONS :]
        topic = Topics.from_settings(s).pages
        with PageProducer(s, topic) as producer:
            for p in warm:
                producer.send(p)
        wait_count(es, s, len(warm) // 2, 600)
        time.sleep(10)  # the warm-up's stragglers, and a settled group
        before = indexed(es, s)
        start = time.monotonic()
        with PageProducer(s, topic) as producer:
            for p in batch:
                producer.send(p)
        expected = before + int(len(batch) * 0.8)  # some real pages are filtered
        end = wait_count(es, s, expected, 1800)
        rate = (indexed(es, s) - before) / (end - start)
        return rate, [peak_rss_mb(w.pid) for w in workers]
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=60)
        es.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--workers", default="1,2,3", help="worker counts, comma-separated")
    args = parser.parse_args()
    base = Settings()
    rows = []
    with TemporaryDirectory(prefix="scale-") as tmp:
        for n in (int(x) for x in args.workers.split(",")):
            rate, rss = run(n, args.pages, base, Path(tmp))
            rows.append((n, rate, rss))
            print(f"{n} worker(s): {rate:.2f} articles/s", file=sys.stderr)
    one = rows[0][1]
    print(f"\n{args.pages} pages, {PARTITIONS} partitions, {os.cpu_count()} cores")
    print(f"{'workers':>8}{'articles/s':>12}{'vs first':>10}  peak RSS per worker (MB)")
    for n, rate, rss in rows:
        print(f"{n:>8}{rate:>12.2f}{rate / one:>9.2f}x  " + ", ".join(f"{r:.0f}" for r in rss))


if __name__ == "__main__":
    main()
