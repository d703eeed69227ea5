"""Latency at a steady ingest rate: publication -> searchable, and publication -> alert.

Real pages (the fundus golden pages, every country, in a fixed shuffled order; repeated
under distinct URLs when more are asked than there are) are produced onto a fresh
pipeline at ``--rate`` pages a second, each page's ``fetched_at`` set to the wall time
just before it is sent. Two clocks stop for each page:

* searchable: the first search that finds it. Elasticsearch is asked every 100 ms, with a
  ``terms`` query on ``article_id`` against the articles alias, for the articles not seen
  yet. Searches see only refreshed documents, which is what a user sees; nothing forces a
  refresh (the shards are searched all the time, so they refresh each second as usual);
* alert: its alert arriving on the alerts topic, for a watch matching every article
  (``*``) added before the workers start. Alerts are once per story, so copies of a page
  (asked for beyond the distinct pages) are searched for but raise no alert of their own.

``written`` is when the index stage had the article acknowledged by Elasticsearch (the
alert's ``indexed_at``): the part of the delay spent before the refresh. A few English
warm-up pages go first (spaCy loads on a worker's first batch) and count in no figure.

The stack is the benchmark's own (``.stack-bench-latency``, Kafka on 39092 and
Elasticsearch on 39200 by default, beside the demo's 9092/9200 and the tests'
19092/19200): reused if it is healthy, started otherwise, and stopped at the end unless
``--keep-stack``. The run's topics and indices are deleted at the end either way.

    .venv/bin/python bench/latency.py                  # 120 pages at 2 pages/s, 1 worker
    .venv/bin/python bench/latency.py --rate 5 --workers 2 --json
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the drills' helpers live with the tests

from elasticsearch import Elasticsearch  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition  # noqa: E402

from deploy.stack import Stack  # noqa: E402
from ingest.producer import PageProducer  # noqa: E402
from newsflow import watches  # noqa: E402
from newsflow.records import Alert, Filtered, RawPage, SourceKind, Watch, decode, utcnow  # noqa: E402
from newsflow.settings import Settings, as_env  # noqa: E402
from newsflow.topics import Topics  # noqa: E402
from processors.app import prepare  # noqa: E402
from processors.index import alias  # noqa: E402
from tests.conftest import SHARED_DATA, TEST_STACK, Process  # noqa: E402
from tests.drills import ENGLISH, group_members, page, wait_for  # noqa: E402

FUNDUS = SHARED_DATA / "extraction" / "fundus"
WATCH = "everything"
PROGRESS_EVERY = 5.0


# -- pages -----------------------------------------------------------------------------------


def corpus(n: int, warmup: int) -> tuple[list[RawPage], list[RawPage]]:
    """``warmup`` English pages, then ``n`` others (distinct files first, then copies of
    them under new URLs). The warm-up files are never measured, not even as copies: a
    copy of one would be a known story, tagged and alerted on by no one."""
    files = sorted(FUNDUS.glob("*/*.html.gz"))
    random.Random(0).shuffle(files)  # countries mixed, the same order every run
    warm = [f for f in files if f.parent.name in ENGLISH][:warmup]
    rest = [f for f in files if f not in warm]
    return [_page(f, 0) for f in warm], [
        _page(rest[i % len(rest)], i // len(rest)) for i in range(n)
    ]


def _page(path: Path, copy: int) -> RawPage:
    publisher, _, date = path.name.removesuffix(".html.gz").partition("_")
    u = f"https://www.{publisher.lower()}.example/{path.parent.name}/{date}"
    u += f"/{copy}" if copy else ""
    return page(u, gzip.decompress(path.read_bytes()), "text/html", SourceKind.URLS)


# -- what the pipeline did, as seen from outside -----------------------------------------------


@dataclass
class Observed:
    """Wall times (time.time()) by article_id, written by the sender, the alert reader and
    the search poller."""

    sent: dict[str, float] = field(default_factory=dict)
    searchable: dict[str, float] = field(default_factory=dict)
    story: dict[str, str] = field(default_factory=dict)  # of the articles found
    alerts: dict[str, tuple[float, Alert]] = field(default_factory=dict)
    filtered: dict[str, str] = field(default_factory=dict)  # reason
    done_sending: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def waiting(self) -> list[str]:
        with self.lock:
            sent = list(self.sent)
        return [a for a in sent if a not in self.searchable and a not in self.filtered]

    def settled(self, ids: list[str]) -> bool:
        """Every page searchable or filtered, and every story found alerted."""
        if any(a not in self.searchable and a not in self.filtered for a in ids):
            return False
        alerted = {alert.story for _, alert in list(self.alerts.values())}
        return all(self.story[a] in alerted for a in ids if a in self.searchable)

    def progress(self) -> int:
        return len(self.searchable) + len(self.filtered) + len(self.alerts)


def send_steady(s: Settings, pages: list[RawPage], rate: float, obs: Observed) -> None:
    """Produce ``pages`` at ``rate`` a second, each stamped with the moment it is sent."""
    try:
        with PageProducer(s, Topics.from_settings(s).pages) as producer:
            start = time.monotonic()
            for i, p in enumerate(pages):
                delay = start + i / rate - time.monotonic()
                if delay > 0 and obs.done_sending.wait(delay):
                    return  # stopped
                now = time.time()
                with obs.lock:
                    obs.sent[p.article_id] = now
                stamped = p.model_copy(update={"fetched_at": datetime.fromtimestamp(now, UTC)})
                producer.send(stamped)
    except BaseException as err:
        obs.errors.append(err)
    finally:
        obs.done_sending.set()


def read_outcomes(s: Settings, obs: Observed, stop: threading.Event) -> None:
    """Alerts and filtered pages as they arrive, from the start of their topics."""
    topics = Topics.from_settings(s)
    consumer = KafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    try:
        with closing(consumer):
            parts = [
                TopicPartition(t, p)
                for t in (topics.alerts, topics.filtered)
                for p in range(s.topic_partitions)
            ]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            while not stop.is_set():
                for tp, records in consumer.poll(timeout_ms=100).items():
                    now = time.time()
                    for r in records:
                        if tp.topic == topics.alerts:
                            alert = decode(Alert, r.value)
                            obs.alerts.setdefault(alert.article_id, (now, alert))
                        else:
                            seen = decode(Filtered, r.value)
                            obs.filtered.setdefault(seen.article_id, seen.reason)
    except BaseException as err:
        obs.errors.append(err)


def poll_search(es: Elasticsearch, index: str, obs: Observed) -> None:
    """One search for the articles sent and not found yet; stamps those it finds."""
    waiting = obs.waiting()
    if not waiting:
        return
    resp = es.search(
        index=index,
        query={"terms": {"article_id": waiting}},
        size=len(waiting),
        source_includes=["cluster_id"],
    )
    now = time.time()
    for hit in resp["hits"]["hits"]:
        if hit["_id"] not in obs.searchable:
            obs.story[hit["_id"]] = hit["_source"].get("cluster_id") or hit["_id"]
            obs.searchable[hit["_id"]] = now


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Options:
    rate: float
    pages: int
    workers: int
    partitions: int
    warmup: int
    poll: float
    idle: float


def start_workers(s: Settings, n: int, tmp: Path) -> list[Process]:
    env = {**os.environ, **as_env(s)}
    argv = [sys.executable, "-m", "newsflow.cli", "-q", "worker", "--loglevel", "warn"]
    workers = []
    for i in range(n):
        w = Process(argv, {**env, "NEWSFLOW_STATE_DIR": str(tmp / f"state-{i}")}, tmp / f"{i}.log")
        w.start()
        workers.append(w)
    return workers


def check(workers: list[Process], obs: Observed) -> None:
    for w in workers:
        if not w.running:
            raise RuntimeError(f"a worker exited:\n{w.tail()}")
    if obs.errors:
        raise obs.errors[0]


def warm_up(s: Settings, es: Elasticsearch, pages: list[RawPage], workers: list[Process]) -> None:
    """The group formed, then warm-up pages through every stage (spaCy loaded)."""
    say(f"waiting for {len(workers)} worker(s) to join the group...")
    wait_for(lambda: group_members(s) >= len(workers), 300, "the workers joining", *workers)
    obs, stop = Observed(), threading.Event()
    reader = threading.Thread(target=read_outcomes, args=(s, obs, stop), daemon=True)
    reader.start()
    started = time.monotonic()
    try:
        send_steady(s, pages, 1000.0, obs)
        ids = [p.article_id for p in pages]

        def ready() -> bool:
            check(workers, obs)
            if es.indices.exists_alias(name=alias(s.topic_prefix)):
                poll_search(es, alias(s.topic_prefix), obs)
            return obs.settled(ids)

        wait_for(ready, 600, "the warm-up pages indexed and alerted", *workers)
    finally:
        stop.set()
        reader.join(timeout=10)
    say(f"warmed up in {time.monotonic() - started:.0f} s ({len(pages)} pages)")


def measure(
    s: Settings, es: Elasticsearch, pages: list[RawPage], workers: list[Process], o: Options
) -> Observed:
    """Send ``pages`` at the rate while polling the index, until every page has its outcome
    or nothing new came for ``o.idle`` seconds after the last was sent."""
    obs, stop = Observed(), threading.Event()
    threads = [
        threading.Thread(target=read_outcomes, args=(s, obs, stop), daemon=True),
        threading.Thread(target=send_steady, args=(s, pages, o.rate, obs), daemon=True),
    ]
    for t in threads:
        t.start()
    ids, index = [p.article_id for p in pages], alias(s.topic_prefix)
    started = last_said = time.monotonic()
    last_progress, moved = -1, time.monotonic()
    try:
        while not (obs.done_sending.is_set() and obs.settled(ids)):
            check(workers, obs)
            poll_search(es, index, obs)
            if obs.progress() != last_progress:
                last_progress, moved = obs.progress(), time.monotonic()
            elif obs.done_sending.is_set() and time.monotonic() - moved > o.idle:
                say(f"nothing new for {o.idle:.0f} s: stopping with pages unaccounted")
                break
            if time.monotonic() - last_said >= PROGRESS_EVERY:
                last_said = time.monotonic()
                say(_progress_line(obs, len(pages), last_said - started))
            time.sleep(o.poll)
        say(_progress_line(obs, len(pages), time.monotonic() - started))
        return obs
    finally:
        obs.done_sending.set()  # stops the sender if it is still going
        stop.set()
        for t in threads:
            t.join(timeout=70)


def _progress_line(obs: Observed, total: int, elapsed: float) -> str:
    with obs.lock:
        sent = set(obs.sent)  # the warm-up's alerts and filtered pages are read too
    return (
        f"  {elapsed:5.0f} s: sent {len(sent)}/{total}, searchable {len(obs.searchable)}, "
        f"filtered {len(sent & obs.filtered.keys())}, alerts {len(sent & obs.alerts.keys())}"
    )


def run(stack: Stack, o: Options) -> dict[str, Any]:
    warm, pages = corpus(o.pages, o.warmup)
    s = Settings(
        kafka_bootstrap=stack.settings.kafka_bootstrap,
        elasticsearch_url=stack.settings.elasticsearch_url,
        topic_prefix=f"latency-{uuid.uuid4().hex[:8]}",
        topic_partitions=o.partitions,
    )
    es = Elasticsearch(s.elasticsearch_url, request_timeout=30)
    workers: list[Process] = []
    with TemporaryDirectory(prefix="latency-") as tmp, closing(es):
        try:
            prepare(s)
            watches.put(s, Watch(name=WATCH, query="*", created_at=utcnow()), WATCH)
            workers = start_workers(s, o.workers, Path(tmp))
            warm_up(s, es, warm, workers)
            say(f"sending {len(pages)} pages at {o.rate:g} pages/s...")
            obs = measure(s, es, pages, workers, o)
            return summary(obs, pages, o)
        finally:
            for w in workers:
                w.stop()
            cleanup(s, es)


def cleanup(s: Settings, es: Elasticsearch) -> None:
    """The run's topics and indices deleted (best effort: the stack may be half down)."""
    try:
        with closing(KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)) as admin:
            admin.delete_topics([t for t in admin.list_topics() if t.startswith(s.topic_prefix)])
        concrete = list(es.indices.get(index=f"{s.topic_prefix}-*", allow_no_indices=True))
        if concrete:
            es.indices.delete(index=",".join(concrete))
    except Exception as err:
        say(f"could not delete the run's topics and indices: {err}")


# -- figures -----------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """p50, p95 (nearest rank) and max, in seconds, and how many values."""
    v = sorted(values)
    if not v:
        return {"p50": None, "p95": None, "max": None, "n": 0}

    def rank(q: float) -> float:
        return round(v[max(0, math.ceil(q * len(v)) - 1)], 3)

    return {"p50": rank(0.5), "p95": rank(0.95), "max": round(v[-1], 3), "n": len(v)}


def summary(obs: Observed, pages: list[RawPage], o: Options) -> dict[str, Any]:
    ids = [p.article_id for p in pages if p.article_id in obs.sent]
    sent = [obs.sent[a] for a in ids]
    found = [a for a in ids if a in obs.searchable]
    alerts = {a: obs.alerts[a] for a in ids if a in obs.alerts}
    filtered = Counter(obs.filtered[a] for a in ids if a in obs.filtered)
    elapsed = max(sent) - min(sent) if len(sent) > 1 else 0.0
    return {
        "settings": {
            "rate": o.rate,
            "pages": o.pages,
            "workers": o.workers,
            "partitions": o.partitions,
            "warmup": o.warmup,
            "cores": os.cpu_count(),
        },
        "rate_achieved": round((len(sent) - 1) / elapsed, 3) if elapsed else None,
        "pages_sent": len(ids),
        "articles_indexed": len(found),
        "stories": len({obs.story[a] for a in found}),
        "alerts_received": len(alerts),
        "pages_filtered": sum(filtered.values()),
        "filtered_reasons": dict(filtered),
        "unaccounted": len(ids) - len(found) - sum(filtered.values()),
        "seconds": {
            "written": percentiles(
                [alert.indexed_at.timestamp() - obs.sent[a] for a, (_, alert) in alerts.items()]
            ),
            "searchable": percentiles([obs.searchable[a] - obs.sent[a] for a in found]),
            "alert": percentiles([t - obs.sent[a] for a, (t, _) in alerts.items()]),
        },
    }


def render(r: dict[str, Any]) -> str:
    st = r["settings"]
    lines = [
        f"\n{r['pages_sent']} pages at {st['rate']:g} pages/s (achieved {r['rate_achieved']}), "
        f"{st['partitions']} partitions, {st['workers']} worker(s), {st['cores']} cores",
        f"{'publication ->':<16}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'n':>6}",
    ]
    for name, p in r["seconds"].items():
        cells = "".join(
            f"{p[k]:>8.2f}" if p[k] is not None else f"{'-':>8}" for k in ("p50", "p95", "max")
        )
        lines.append(f"{name:<16}{cells}{p['n']:>6}")
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["filtered_reasons"].items()))
    lines.append(
        f"articles indexed {r['articles_indexed']} ({r['stories']} stories), alerts "
        f"{r['alerts_received']}, pages filtered {r['pages_filtered']}"
        + (f" ({reasons})" if reasons else "")
        + f", unaccounted {r['unaccounted']}"
    )
    return "\n".join(lines)


# -- the command -------------------------------------------------------------------------------


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_stack(kafka_port: int, es_port: int) -> Stack:
    return Stack(
        TEST_STACK.model_copy(
            update={
                "dir": ROOT / ".stack-bench-latency",
                "kafka_port": kafka_port,
                "kafka_controller_port": kafka_port + 1,
                "es_port": es_port,
                "es_transport_port": es_port + 100,
            }
        )
    )


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rate", type=float, default=2.0, help="pages a second (default 2)")
    ap.add_argument("--pages", type=int, default=120, help="pages measured (default 120)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--partitions", type=int, default=4, help="pipeline topics' partitions (4)")
    ap.add_argument("--warmup", type=int, default=8, help="warm-up pages, not measured (8)")
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between searches (0.1)")
    ap.add_argument(
        "--idle", type=float, default=60.0, help="give up after this many seconds without news"
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--kafka-port", type=int, default=39092, help="the stack's Kafka (39092)")
    ap.add_argument("--es-port", type=int, default=39200, help="its Elasticsearch (39200)")
    ap.add_argument("--keep-stack", action="store_true", help="leave the stack running")
    args = ap.parse_args()
    if args.rate <= 0 or args.pages < 1 or args.workers < 1 or args.warmup < 1:
        ap.error("--rate must be positive; --pages, --workers and --warmup at least 1")
    return args


def main() -> None:
    args = parse_args()
    if not FUNDUS.is_dir():
        say(f"skipped: real pages not found under {FUNDUS} (../shared/data beside the repo)")
        return
    o = Options(
        args.rate, args.pages, args.workers, args.partitions, args.warmup, args.poll, args.idle
    )
    signal.signal(signal.SIGTERM, _interrupted)
    stack = bench_stack(args.kafka_port, args.es_port)
    where = f"{stack.settings.kafka_bootstrap}, {stack.settings.elasticsearch_url}"
    try:
        if all(node.healthy() for node in stack.nodes):
            say(f"reusing the benchmark's stack ({where})")
        else:
            say(f"starting the benchmark's stack ({where})...")
            stack.up()
        result = run(stack, o)
    finally:
        if args.keep_stack:
            say(
                f"stack left running; stop it with a run without --keep-stack, or "
                f"NEWSFLOW_STACK_DIR={stack.settings.dir.name} .venv/bin/newsflow stack down"
            )
        else:
            say("stopping the benchmark's stack...")
            stack.down()
    print(json.dumps(result) if args.json else render(result))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # everything started is stopped by then
        say("interrupted")
        sys.exit(130)
