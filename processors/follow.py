"""A worker's copy of a compacted topic of one partition, read from its start and followed.

Every worker needs all of such a topic, whichever partitions of the pipeline it holds
(the standing queries, the labels the stream has learnt), so it is read by a consumer of
its own, outside the pipeline's consumer group (a Faust agent in the group would get only
the partitions assigned to it; a Faust global table would need a changelog topic of
Faust's making). ``ready`` is set once the copy has caught up with the topic's end as it
was at start, so that a user of the copy can wait for all of it rather than the few
records read so far.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from newsflow import connections
from newsflow.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
# Applies one record (key, value; None for a tombstone) to the copy; appends to the list
# of problems what it leaves out.
Fold = Callable[[dict[str, T], bytes | None, bytes | None, list[str]], None]


class Follower(Generic[T]):
    def __init__(
        self,
        settings: Settings,
        topic: str,
        fold: Fold[T],
        what: str,
        published: Callable[[dict[str, T], dict[str, T]], None] | None = None,
    ) -> None:
        self.settings, self.topic, self.what = settings, topic, what
        self._fold, self._published = fold, published
        self.items: dict[str, T] = {}
        self.ready = asyncio.Event()

    async def follow(self, retry: float = 5.0) -> None:
        """Read the topic for as long as the worker runs; Kafka unreachable is waited for."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning(
                    "reading the %s (%s) failed (%s); again in %.0fs",
                    self.what,
                    self.topic,
                    err,
                    retry,
                )
                await asyncio.sleep(retry)

    async def _follow(self) -> None:
        from aiokafka import TopicPartition  # type: ignore[import-untyped]

        consumer = connections.aiokafka_consumer(
            self.settings, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(self.topic, 0)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            found: dict[str, T] = {}
            caught_up = False
            while True:
                batch: dict[Any, list[Any]] = await consumer.getmany(timeout_ms=1000)
                skipped: list[str] = []
                for records in batch.values():
                    for r in records:
                        self._fold(found, r.key, r.value, skipped)
                for problem in skipped:
                    log.warning("a record of %s is left out: %s", self.topic, problem)
                if not caught_up:
                    positions = [await consumer.position(tp) for tp in partitions]
                    caught_up = all(
                        p >= end[tp] for p, tp in zip(positions, partitions, strict=True)
                    )
                if caught_up and (batch or not self.ready.is_set()):
                    self._publish(found)
        finally:
            await consumer.stop()

    def _publish(self, found: dict[str, T]) -> None:
        before = self.items
        self.items = dict(found)  # a new dict: a reader holding the old one is unaffected
        if self._published is not None:
            self._published(before, self.items)
        self.ready.set()
