"""faust-streaming against the real broker: an agent in a consumer group, a RocksDB table
with its changelog topic, and the table recovered by a new worker process."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from newsflow.settings import Settings
from tests.conftest import Process, unique

pytestmark = pytest.mark.stack


def smoke_worker(env: dict[str, str], log: Path) -> Process:
    return Process(
        [sys.executable, "-m", "tests.faust_smoke_app", "worker", "-l", "info"], env, log
    )


@pytest.fixture
def smoke(
    settings: Settings,
    topic_factory: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    import os

    env = dict(os.environ)
    env.update(
        SMOKE_APP_ID=unique("smoke-app"),
        SMOKE_BROKER=settings.kafka_bootstrap,
        SMOKE_IN=topic_factory("smoke-in", partitions=2),
        SMOKE_OUT=topic_factory("smoke-out", partitions=1),
        SMOKE_DATADIR=str(tmp_path / "worker-1"),
    )
    yield env
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    internal = [t for t in admin.list_topics() if t.startswith(env["SMOKE_APP_ID"])]
    if internal:
        admin.delete_topics(internal)
    admin.close()


def _produce(settings: Settings, topic: str, words: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for w in words:
        producer.send(topic, key=w.encode(), value=w.encode())
    producer.flush()
    producer.close()


def _read(consumer: KafkaConsumer, n: int, timeout: float = 90) -> list[str]:
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            out.extend(r.value.decode() for r in records)
    return out


def test_agent_table_changelog_and_recovery(
    settings: Settings, smoke: dict[str, str], tmp_path: Path
) -> None:
    consumer = KafkaConsumer(
        smoke["SMOKE_OUT"],
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    worker = smoke_worker(smoke, tmp_path / "worker.log")
    worker.start()
    try:
        _produce(settings, smoke["SMOKE_IN"], ["alpha", "beta", "alpha", "gamma", "alpha"])
        first = _read(consumer, 5)
        assert sorted(first) == sorted(["alpha=1", "alpha=2", "alpha=3", "beta=1", "gamma=1"]), (
            worker.tail()
        )
    finally:
        worker.stop()

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    changelog = f"{smoke['SMOKE_APP_ID']}-counts-changelog"
    assert changelog in admin.list_topics()
    admin.close()

    # A new worker with an empty data directory can only know the counts from the changelog.
    worker.start(SMOKE_DATADIR=str(tmp_path / "worker-2"))
    try:
        _produce(settings, smoke["SMOKE_IN"], ["alpha", "beta"])
        second = _read(consumer, 2)
        assert sorted(second) == ["alpha=4", "beta=2"], worker.tail()
    finally:
        worker.stop()
        consumer.close()
