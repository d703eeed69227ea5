"""A deterministic reproducer of pages lost when Faust ends table recovery, on the real
broker: a worker killed mid-stream, and a new one started on an empty state with every
committed-offset lookup slowed down by 200 ms (tests/hooks/sitecustomize.py). Plain
Faust throws away what it fetched while it looked the offsets up: it commits over those
messages, or, when they were the last of a partition, never fetches them again and sits
idle with the partition unfinished. newsflow's consumer (processors.faust_overrides)
processes every message."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from newsflow.settings import Settings
from tests.conftest import ROOT, Process, read_topic, unique

pytestmark = pytest.mark.stack

PARTITIONS, MESSAGES = 4, 480


def _worker(env: dict[str, str], log: Path) -> Process:
    return Process([sys.executable, "-m", "tests.recovery_app", "worker", "-l", "info"], env, log)


def _committed(settings: Settings, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in offsets.items()
        if tp.topic == topic and meta.offset >= 0
    }


def _wait(check: Callable[[], bool], timeout: float, worker: Process, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.running, worker.tail()
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached in {timeout}s\n{worker.tail()}")


def _run(
    guarded: bool,
    settings: Settings,
    topic_factory: Callable[..., str],
    tmp: Path,
    iterator: str = "compiled",
) -> dict:
    source, sink = topic_factory("repro-in", PARTITIONS), topic_factory("repro-out", 1)
    app_id = unique("repro")
    env = dict(os.environ)
    env.pop("NO_CYTHON", None)
    if iterator == "python":  # Faust's pure-Python stream iterator instead of the compiled one
        env["NO_CYTHON"] = "1"
    env.update(
        REPRO_GUARDED="1" if guarded else "0",
        REPRO_APP_ID=app_id,
        REPRO_BROKER=settings.kafka_bootstrap,
        REPRO_IN=source,
        REPRO_OUT=sink,
        REPRO_DATADIR=str(tmp / "state-1"),
    )
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for i in range(MESSAGES):
        producer.send(source, key=f"k{i}".encode(), value=b"x", partition=i % PARTITIONS)
    producer.flush()
    producer.close()

    first = _worker(env, tmp / "first.log")
    first.start()
    try:  # killed once every partition has a commit past its start, mid-stream
        _wait(
            lambda: (
                all(o > 5 for o in _committed(settings, app_id, source).values())
                and len(_committed(settings, app_id, source)) == PARTITIONS
            ),
            120,
            first,
            "a commit on every partition",
        )
    finally:
        first.stop(signal.SIGKILL)
    killed_at = _committed(settings, app_id, source)
    second = _worker(env, tmp / "second.log")
    second.start(
        REPRO_DATADIR=str(tmp / "state-2"),
        PYTHONPATH=str(ROOT / "tests" / "hooks"),
        NEWSFLOW_TEST_DELAY_COMMITTED="0.2",
    )
    end = MESSAGES // PARTITIONS
    try:  # until the group has committed everything, or has stopped moving
        last: dict[int, int] = {}
        still = time.monotonic()
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            assert second.running, second.tail()
            now = _committed(settings, app_id, source)
            if now and all(now.get(p) == end for p in range(PARTITIONS)):
                break
            if now != last:
                last, still = now, time.monotonic()
            elif time.monotonic() - still > 30:
                break
            time.sleep(1)
        time.sleep(2)
    finally:
        second.stop()
    processed = {m.value.decode() for m in read_topic(settings, sink)}
    committed = _committed(settings, app_id, source)
    lost = [
        f"{p}:{o}"
        for p in range(PARTITIONS)
        for o in range(committed.get(p, 0))
        if f"{p}:{o}" not in processed
    ]
    return {
        "killed_at": killed_at,
        "committed": committed,
        "lost": lost,
        "unprocessed": [
            f"{p}:{o}" for p in range(PARTITIONS) for o in range(end) if f"{p}:{o}" not in processed
        ],
        "sought_back": second.tail(10**7).count("seeking back to it"),
        "log": second.tail(),
    }


@pytest.mark.timeout(400)
def test_plain_faust_loses_what_it_threw_away(
    settings: Settings, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    result = _run(False, settings, topic_factory, tmp_path)
    # Lost either way: committed over, or never fetched again while the worker sits idle.
    assert result["unprocessed"], f"plain Faust lost nothing this time: {result['committed']}"


@pytest.mark.timeout(400)
@pytest.mark.parametrize("iterator", ["compiled", "python"])
def test_newsflow_processes_every_message_across_the_recovery(
    iterator: str, settings: Settings, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    result = _run(True, settings, topic_factory, tmp_path, iterator)
    assert result["lost"] == [] and result["unprocessed"] == [], result
    assert result["committed"] == {p: MESSAGES // PARTITIONS for p in range(PARTITIONS)}
    # Closed at its source: the safety net that seeks back to a stuck head never fired.
    assert result["sought_back"] == 0, result["log"]
