"""The guard in processors.app against a Faust behaviour that lost a page in the
end-to-end test: messages its stream skips (fetched before a rebalance, or while flow is
suspended) are acknowledged, so their offsets can be committed without the message ever
being processed. On the pipeline's topics, only messages an agent was handed are
acknowledged; a skipped one is dropped from the messages a rebalance waits for.

Runs on the real Faust consumer class (no broker needed: acknowledging is bookkeeping)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from newsflow.settings import Settings
from processors.app import Pipeline


def message(tp: TP, offset: int) -> ConsumerMessage:
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
    )


def test_only_messages_an_agent_was_handed_are_acknowledged(tmp_path: Path) -> None:
    async def run() -> dict[str, Any]:
        pipeline = Pipeline(Settings(topic_prefix="guard", state_dir=tmp_path))
        app = pipeline.app
        consumer: Any = app.consumer
        tp = TP(pipeline.topics.pages, 0)
        app.topics._acking_topics.add(tp.topic)  # what subscribing the agents does

        handed, skipped = message(tp, 18), message(tp, 19)
        for m in (handed, skipped):  # what the stream does with every message it reads
            m.tracked = True
            consumer.track_message(m)
        app.received.add(handed)  # what the clean agent does with what it is given
        out = {"handed": consumer.ack(handed), "skipped": consumer.ack(skipped)}
        out["acked"] = list(consumer._acked[tp])
        out["waited_for"] = set(consumer._unacked_messages)
        # A topic that is not the pipeline's (a table's changelog) is left to Faust.
        other = message(TP("guard-other", 0), 3)
        app.topics._acking_topics.add(other.topic)
        out["other"] = consumer.ack(other)
        # Faust's own ack, without the guard, takes the skipped kind: the loss.
        out["unguarded"] = type(consumer).ack(consumer, message(tp, 20))
        return out

    out = asyncio.run(run())
    assert (out["handed"], out["skipped"], out["other"]) == (True, False, True)
    assert out["acked"] == [18]  # offset 19 stays uncommitted: it will be read again
    assert out["waited_for"] == set()  # and a rebalance does not wait for it
    assert out["unguarded"] is True
