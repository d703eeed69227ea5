"""The guard in processors.app against a Faust behaviour that lost a page in the
end-to-end test: messages fetched before a rebalance (or while flow is suspended) are
skipped by Faust's stream and acknowledged, so their offsets can be committed without
the message ever being processed. The pipeline's consumer refuses those acknowledgements.

Runs on the real Faust consumer class (no broker needed: acknowledging is bookkeeping)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from newsflow.settings import Settings
from processors.app import Pipeline


def message(tp: TP, offset: int, generation: int) -> ConsumerMessage:
    return ConsumerMessage(
        topic=tp.topic,
        partition=tp.partition,
        offset=offset,
        timestamp=0.0,
        timestamp_type=0,
        headers=[],
        key=b"site",
        value=b"{}",
        checksum=None,
        serialized_key_size=4,
        serialized_value_size=2,
        tp=tp,
        generation_id=generation,
    )


def test_messages_from_before_a_rebalance_are_not_acknowledged(tmp_path: Path) -> None:
    async def run() -> tuple[Any, ...]:
        pipeline = Pipeline(Settings(topic_prefix="guard", state_dir=tmp_path))
        app = pipeline.app
        consumer = app.consumer
        tp = TP(pipeline.topics.pages, 0)
        app.topics._acking_topics.add(tp.topic)  # what subscribing the agents does
        app.consumer_generation_id = 3  # the group has rebalanced twice
        app.flow_control.resume()  # as a worker does once its tables are recovered

        stale, current = message(tp, 18, generation=2), message(tp, 19, generation=3)
        refused, accepted = consumer.ack(stale), consumer.ack(current)
        # While flow is suspended (a rebalance or table recovery under way), the stream
        # skips what it receives: no acknowledgement either.
        app.flow_control.suspend()
        suspended = consumer.ack(message(tp, 20, generation=3))
        app.flow_control.resume()
        acked = list(consumer._acked[tp])
        # Faust's own ack, without the guard, takes the stale message: the loss.
        unguarded = type(consumer).ack(consumer, message(tp, 17, generation=2))
        return refused, accepted, suspended, acked, unguarded

    refused, accepted, suspended, acked, unguarded = asyncio.run(run())
    assert (refused, accepted, suspended) == (False, True, False)
    assert acked == [19]
    assert unguarded is True
