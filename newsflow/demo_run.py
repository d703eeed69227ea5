"""`newsflow demo`: proves the stack end to end on a built-in page.

Starts the local stack, produces a page to Kafka with kafka-python, consumes it back,
indexes it into Elasticsearch and finds it with a highlighted search.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import click

from deploy.stack import Stack
from newsflow.records import RawPage, Source, SourceKind, decode, utcnow
from newsflow.settings import Settings, StackSettings
from newsflow.topics import Topics, ensure_topics

log = logging.getLogger(__name__)

SAMPLE_URL = "http://127.0.0.1/harbour/port-strike-ends"
SAMPLE_HTML = b"""<!doctype html><html lang="en"><head><title>Port strike ends</title></head>
<body><article><h1>Port strike ends after nine days</h1>
<p>Dock workers in Rotterdam voted on Tuesday to end a nine-day strike that had left more
than two hundred container ships waiting off the Dutch coast.</p>
<p>The union FNV Havens said the agreement with the port employers raises wages by six
per cent over two years.</p></article></body></html>"""


def run(settings: Settings, stack_settings: StackSettings) -> None:
    click.secho("1/4 starting Kafka and Elasticsearch (first run downloads them)...", bold=True)
    for row in Stack(stack_settings).up():
        click.echo(f"    {row.name} {row.version} at {row.address}: {row.state}")
    topics = Topics.from_settings(settings)
    ensure_topics(settings.kafka_bootstrap, topics.specs(), settings.topic_replication)

    click.secho("2/4 producing a page to Kafka...", bold=True)
    page = RawPage(
        url=SAMPLE_URL,
        canonical_url=SAMPLE_URL,
        site="127.0.0.1",
        fetched_at=utcnow(),
        content_type="text/html; charset=utf-8",
        body=SAMPLE_HTML,
        source=Source(kind=SourceKind.DEMO, ref="built-in page"),
    )
    _produce(settings, topics.pages, page)

    click.secho("3/4 consuming it back and indexing it...", bold=True)
    received = _consume_one(settings, topics.pages, page.article_id)
    index = f"{settings.topic_prefix}-demo-smoke"
    hits = _index_and_search(settings, index, received)

    click.secho("4/4 search 'strike' found:", bold=True)
    for hit in hits:
        click.echo(f"    {hit['_id']}: {' ... '.join(hit['highlight']['text'])}")


def _produce(settings: Settings, topic: str, page: RawPage) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    producer.send(topic, key=page.site.encode(), value=page.encode()).get(timeout=30)
    producer.close()


def _consume_one(settings: Settings, topic: str, wanted_id: str) -> RawPage:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=f"newsflow-demo-{uuid.uuid4().hex[:6]}",
        consumer_timeout_ms=30_000,
    )
    try:
        for message in consumer:
            page = decode(RawPage, message.value)
            if page.article_id == wanted_id:
                return page
    finally:
        consumer.close()
    raise click.ClickException(f"the page did not come back from {topic} within 30 s")


def _index_and_search(settings: Settings, index: str, page: RawPage) -> list[Any]:
    from elasticsearch import Elasticsearch

    es = Elasticsearch(settings.elasticsearch_url)
    text = page.body.decode("utf-8")
    es.index(
        index=index,
        id=page.article_id,
        document={"url": page.url, "text": text},
        refresh="wait_for",
    )
    deadline = time.monotonic() + 10
    while True:
        found = es.search(
            index=index, query={"match": {"text": "strike"}}, highlight={"fields": {"text": {}}}
        )
        if found["hits"]["hits"] or time.monotonic() > deadline:
            es.close()
            return list(found["hits"]["hits"])
        time.sleep(0.5)
