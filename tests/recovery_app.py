"""A small Faust app for tests/test_recovery_reproducer.py, run as a real worker process:
an agent that records every message it processes (partition and offset) on an output
topic, with a table so that a worker started on an empty state recovers it from its
changelog first. REPRO_GUARDED=1 runs it on newsflow's PipelineApp (the ledger
consumer, the agent marking each message done once its record is acknowledged);
REPRO_GUARDED=0 on plain faust.App."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import faust

from processors.faust_overrides import PipelineApp

GUARDED = os.environ["REPRO_GUARDED"] == "1"
options: dict[str, Any] = {
    "broker": f"kafka://{os.environ['REPRO_BROKER']}",
    "store": "rocksdb://",
    "datadir": os.environ["REPRO_DATADIR"],
    "topic_partitions": 4,
    "topic_replication_factor": 1,
    "web_enabled": False,
    "consumer_auto_offset_reset": "earliest",
    "broker_commit_interval": 1.0,
    "broker_session_timeout": 10.0,
    "broker_heartbeat_interval": 2.0,
}
app = (
    PipelineApp(os.environ["REPRO_APP_ID"], **options)
    if GUARDED
    else faust.App(os.environ["REPRO_APP_ID"], **options)
)
source = app.topic(os.environ["REPRO_IN"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["REPRO_OUT"], key_serializer="raw", value_serializer="raw")
last_seen = app.Table("last-seen", default=int, partitions=4)
if GUARDED:
    app.guarded_topics.add(source.get_topic_name())


@app.agent(source)
async def record(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        message = event.message
        if GUARDED:
            app.processing(message)
        last_seen[event.key.decode()] = message.offset
        await asyncio.sleep(0.01)  # some work: the agent's queue fills up meanwhile
        fut = await sink.send(key=event.key, value=f"{message.partition}:{message.offset}".encode())
        await fut  # delivered before the message counts as done
        if GUARDED:
            app.done(message)


if __name__ == "__main__":
    app.main()
