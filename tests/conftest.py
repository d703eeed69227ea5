"""Shared fixtures. Real-world pages come from ../shared/data (next to the repository);
tests that need them skip with a clear message where that folder is absent."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.stack import Stack
from newsflow.settings import Settings, StackSettings

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the calling test if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real-world data not found at {path} (expected ../shared/data beside the repo)"
        )
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_path()


# -- the real stack, once per session ----------------------------------------------------

# Ports of their own, so the test stack and a demo stack (9092/9200) can run side by side.
TEST_STACK = StackSettings(
    dir=ROOT / ".stack-test",
    kafka_port=19092,
    kafka_controller_port=19093,
    es_port=19200,
    es_transport_port=19300,
    es_heap="768m",
    kafka_heap="768m",
)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Kafka and Elasticsearch, started once for the whole session. A stack that is already
    up (NEWSFLOW_TEST_KEEP_STACK=1 leaves it running after the session) is reused."""
    stack = Stack(TEST_STACK)
    # Health, not pid files: a stack on these ports started from another checkout will do.
    already_up = all(node.healthy() for node in stack.nodes)
    if not already_up:
        stack.up()
    yield stack
    if not already_up and os.environ.get("NEWSFLOW_TEST_KEEP_STACK") != "1":
        stack.down()


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    return Settings(
        kafka_bootstrap=stack.settings.kafka_bootstrap,
        elasticsearch_url=stack.settings.elasticsearch_url,
        topic_partitions=2,
    )


class Process:
    """A command run as a real child process (a Faust worker, say), output to a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, dict(env), log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, **env: str) -> None:
        self.env.update(env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic_factory(settings: Settings) -> Iterator[Callable[..., str]]:
    """Creates topics of the test's own; deletes them afterwards."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    made: list[str] = []

    def make(prefix: str = "t", partitions: int = 1) -> str:
        name = unique(prefix)
        admin.create_topics([NewTopic(name, partitions, 1)])
        made.append(name)
        return name

    yield make
    if made:
        admin.delete_topics(made)
    admin.close()


@pytest.fixture
def pipeline_settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a pipeline of the test's own: topics under a unique prefix (created
    with the index template, and deleted afterwards) and state in a temporary directory."""
    from kafka import KafkaAdminClient

    from processors.app import prepare

    s = settings.model_copy(update={"topic_prefix": unique("nf"), "state_dir": tmp_path})
    prepare(s)
    yield s
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    admin.delete_topics([t for t in admin.list_topics() if t.startswith(s.topic_prefix)])
    admin.close()


@pytest.fixture
def pipeline(pipeline_settings: Settings, es: Any) -> Iterator[Settings]:
    """``pipeline_settings``, and its indices deleted afterwards as well (a run that indexes
    makes one per month its pages were published in) with their template."""
    from processors.index import alias

    yield pipeline_settings
    found = es.indices.get(index=f"{alias(pipeline_settings.topic_prefix)}-*")
    if found:
        es.indices.delete(index=",".join(found))
    es.options(ignore_status=404).indices.delete_index_template(
        name=alias(pipeline_settings.topic_prefix)
    )


def read_topic(settings: Settings, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every message on ``topic`` from the beginning up to its end offsets as of the call
    (no consumer group, nothing committed)."""
    import time

    from kafka import TopicPartition

    from newsflow import connections

    consumer = connections.kafka_consumer(
        settings,
        group_id=None,
        enable_auto_commit=False,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: read {len(messages)} messages, end not reached")
            for batch in consumer.poll(timeout_ms=500).values():
                messages.extend(batch)
        return sorted(messages, key=lambda m: (m.partition, m.offset))
    finally:
        consumer.close()


@pytest.fixture
def es(settings: Settings) -> Iterator[Any]:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(settings.elasticsearch_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def index_factory(es: Any) -> Iterator[Callable[[str], str]]:
    """Index names of the test's own; every index (and alias) made under them is deleted."""
    names: list[str] = []

    def make(prefix: str = "idx") -> str:
        name = unique(f"test-{prefix}")
        names.append(name)
        return name

    yield make
    for name in names:
        # Deleting by wildcard is refused (action.destructive_requires_name): resolve first.
        concrete = list(es.indices.get(index=f"{name}*", allow_no_indices=True))
        if concrete:
            es.indices.delete(index=",".join(concrete))
        found = es.options(ignore_status=404).indices.get_index_template(name=f"{name}*")
        for template in found.get("index_templates", []):
            es.indices.delete_index_template(name=template["name"])


# -- the secured stack, once per session, for the tests that need it ----------------------

# Ports and a directory of its own: it runs beside the plain test stack, never instead of it.
SECURE_TEST_STACK = StackSettings(
    dir=ROOT / ".stack-secure-test",
    kafka_port=29092,
    kafka_controller_port=29093,
    es_port=29200,
    es_transport_port=29300,
    es_heap="768m",
    kafka_heap="768m",
    secure=True,
)


@pytest.fixture(scope="session")
def secure_stack() -> Iterator[Stack]:
    """Kafka over SASL_SSL and Elasticsearch with TLS and an API key, started once for the
    session and reused when already up (NEWSFLOW_TEST_KEEP_STACK=1 leaves it running).
    `up` runs either way: on a running stack it only checks health and the API key, and
    writes client.env, which the tests read."""
    stack = Stack(SECURE_TEST_STACK)
    already_up = all(node.healthy() for node in stack.nodes)
    stack.up()
    yield stack
    if not already_up and os.environ.get("NEWSFLOW_TEST_KEEP_STACK") != "1":
        stack.down()
