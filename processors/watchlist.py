"""A worker's live copy of the standing queries (newsflow.watches): the whole watches topic,
read from its start and followed.

Every worker needs every watch, whichever partitions of the pipeline it holds, so the
topic is read by a consumer of its own, outside the pipeline's consumer group (a Faust
agent in the group would get only the partitions assigned to it; a Faust global table
would need a changelog topic of Faust's making instead of the one `newsflow watch`
writes). Matching waits until the copy has caught up with the topic's end as it was at
start: an article indexed just after a restart is matched against every watch, never
against the few read so far.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from newsflow.records import Watch
from newsflow.watches import fold

log = logging.getLogger(__name__)


class WatchList:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.watches: dict[str, Watch] = {}
        self.ready = asyncio.Event()

    async def follow(self, retry: float = 5.0) -> None:
        """Read the topic for as long as the worker runs; Kafka unreachable is waited for
        (matching waits meanwhile, as the index stage does)."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning(
                    "reading the watches (%s) failed (%s); again in %.0fs", self.topic, err, retry
                )
                await asyncio.sleep(retry)

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(self.topic, 0)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            found: dict[str, Watch] = {}
            caught_up = False
            while True:
                batch: dict[Any, list[Any]] = await consumer.getmany(timeout_ms=1000)
                skipped: list[str] = []
                for records in batch.values():
                    for r in records:
                        fold(found, r.key, r.value, skipped)
                for problem in skipped:
                    log.warning(
                        "a watch on %s does not decode and is left out: %s", self.topic, problem
                    )
                if not caught_up:
                    positions = [await consumer.position(tp) for tp in partitions]
                    caught_up = all(
                        p >= end[tp] for p, tp in zip(positions, partitions, strict=True)
                    )
                if caught_up and (batch or not self.ready.is_set()):
                    self._publish(found)
        finally:
            await consumer.stop()

    def _publish(self, found: dict[str, Watch]) -> None:
        before = set(self.watches)
        self.watches = dict(found)  # a new dict: a matcher holding the old one is unaffected
        added, removed = set(found) - before, before - set(found)
        if added or removed or not self.ready.is_set():
            log.info(
                "watches: %d (%s%s)",
                len(found),
                f"added {', '.join(sorted(added))}" if added else "none added",
                f"; removed {', '.join(sorted(removed))}" if removed else "",
            )
        self.ready.set()
