"""Pages onto Kafka with kafka-python: acks from all replicas, idempotent, compressed,
keyed by site so all of a site's pages share a partition (and its dedup state)."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from newsflow import connections
from newsflow.records import RawPage
from newsflow.settings import Settings

log = logging.getLogger(__name__)

# Pages are capped well below this at fetch time; base64 in JSON adds a third.
MAX_REQUEST_BYTES = 16 * 1024 * 1024


class PageProducer:
    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self._producer = connections.kafka_producer(
            settings,
            acks="all",
            enable_idempotence=True,
            # zstd: 9x gzip-9's speed on news HTML, and smaller (bench/ingest_throughput.py).
            compression_type="zstd",
            linger_ms=20,
            max_request_size=MAX_REQUEST_BYTES,
            client_id="newsflow-ingest",
        )
        self._failures: list[BaseException] = []
        self._delivered: list[str] = []

    def send(self, page: RawPage, headers: list[tuple[str, bytes]] | None = None) -> Any:
        """Queue a page; delivery errors are collected and raised by ``flush``."""
        future = self._producer.send(
            self.topic,
            key=page.site.encode(),
            value=page.encode(),
            headers=[("newsflow-source", page.source.kind.value.encode()), *(headers or [])],
        )
        future.add_callback(lambda _meta: self._delivered.append(page.canonical_url))
        future.add_errback(self._failed, page)
        return future

    def send_raw(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Any:
        """Another topic (the ingest dead letters), same delivery guarantees."""
        future = self._producer.send(topic, key=key, value=value, headers=headers)
        future.add_errback(lambda err: self._failures.append(err))
        return future

    def delivered(self) -> list[str]:
        """Canonical URLs of the pages Kafka acknowledged since the last call."""
        done, self._delivered = self._delivered, []
        return done

    def _failed(self, error: BaseException, page: RawPage) -> None:
        log.error("could not deliver %s to %s: %s", page.url, self.topic, error)
        self._failures.append(error)

    def flush(self, timeout: float = 60.0) -> None:
        self._producer.flush(timeout=timeout)
        if self._failures:
            failures, self._failures = self._failures, []
            raise RuntimeError(f"{len(failures)} page(s) not delivered; first: {failures[0]}")

    def close(self) -> None:
        self.flush()
        self._producer.close()

    def __enter__(self) -> PageProducer:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.close()
