"""Faust's real consumer and stream, no broker: what is committed when the stream skips a
message. Run as a script (``python -m tests.faust_guard_scenario``) so that the test can
choose the stream iterator: Faust picks its compiled one at import unless NO_CYTHON is
set. Prints one JSON object.

The stream is handed four messages of one partition; the second was fetched in an older
consumer generation (before a rebalance), so Faust's stream skips it without handing it
to the agent. The agent marks what it is handed as processed, as newsflow's agents do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import faust
import faust.streams
from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from processors.faust_overrides import LedgerConsumer, PipelineApp

TOPIC = "pages"
tp = TP(TOPIC, 0)


def message(offset: int, generation: int) -> ConsumerMessage:
    return ConsumerMessage(
        topic=TOPIC,
        partition=0,
        offset=offset,
        timestamp=0.0,
        timestamp_type=0,
        headers=[],
        key=b"k",
        value=b"v",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=1,
        tp=tp,
        generation_id=generation,
    )


async def scenario(app: Any, ledger: bool) -> dict[str, Any]:
    app.topics._acking_topics.add(TOPIC)
    app.flow_control.resume()
    app.consumer_generation_id = 2
    consumer = app.consumer
    if ledger:
        app.guarded_topics.add(TOPIC)
        app.ledger.reset(tp, 10, None)
    consumer._committed_offset[tp] = 10
    channel = app.topic(TOPIC, key_serializer="raw", value_serializer="raw").clone(is_iterator=True)
    for offset, generation in [(10, 2), (11, 1), (12, 2), (13, 2)]:
        m = message(offset, generation)
        channel.queue.put_nowait(app.create_event(m.key, m.value, m.headers, m))
    handed: list[int] = []

    async def agent() -> None:
        async for event in app.stream(channel).events():
            if ledger:
                app.processing(event.message)
            handed.append(event.message.offset)
            if ledger:
                app.done(event.message)

    task = asyncio.ensure_future(agent())
    await asyncio.sleep(0.3)
    task.cancel()
    # Two commit rounds, each recording what it committed as Faust's _commit_offsets does:
    # Faust's head-gap check lets the second one past a hole the first one stopped at.
    committed = 10
    for _ in range(2):
        offset = consumer._filter_committable_offsets([tp]).get(tp)
        if offset is not None:
            committed = offset
            consumer._committed_offset[tp] = offset
            if ledger:
                app.ledger.committed_to(tp, offset)
    return {"handed": handed, "committed": committed, "consumer": type(consumer).__name__}


async def main() -> None:
    iterator = "compiled" if faust.streams._CStreamIterator is not None else "python"
    guarded = PipelineApp("sim-guarded", broker="kafka://127.0.0.1:1", store="memory://")
    assert isinstance(guarded.consumer, LedgerConsumer)
    plain = faust.App("sim-plain", broker="kafka://127.0.0.1:1", store="memory://")
    out = {
        "iterator": iterator,
        "newsflow": await scenario(guarded, ledger=True),
        "faust": await scenario(plain, ledger=False),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
