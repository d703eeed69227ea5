"""kafka-python against the real broker: the client ingest uses to produce pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka import KafkaConsumer, KafkaProducer

from newsflow.settings import Settings

pytestmark = pytest.mark.stack


def test_produce_consume_round_trip_keeps_keys_headers_and_partitioning(
    settings: Settings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("roundtrip", partitions=3)
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type="gzip",
    )
    sent = {}
    for i in range(30):
        key = f"site-{i % 4}".encode()
        meta = producer.send(
            topic, key=key, value=f"page {i}".encode(), headers=[("source", b"test")]
        ).get(timeout=30)
        sent[f"page {i}".encode()] = (key, meta.partition)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=10_000,
    )
    got = {m.value: m for m in consumer}
    consumer.close()

    assert set(got) == set(sent)
    for value, message in got.items():
        key, partition = sent[value]
        assert message.key == key
        assert message.partition == partition
        assert message.headers == [("source", b"test")]
    # The same key always lands on the same partition: what keeps a site's pages together.
    by_key: dict[bytes, set[int]] = {}
    for key, partition in sent.values():
        by_key.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in by_key.values())


def test_broker_refuses_to_auto_create_topics(settings: Settings) -> None:
    # Auto-created topics get one partition and would break co-partitioned Faust tables.
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_block_ms=3000)
    with pytest.raises(Exception, match=r"not|Timeout|Unknown"):
        producer.send("newsflow-never-declared-topic", b"x").get(timeout=5)
    producer.close()
