"""A minimal Faust app for tests/test_faust_smoke.py, run as a real worker process.

It counts words from an input topic in a RocksDB-backed table and emits "word=count" to an
output topic. Configured through SMOKE_* variables so each test gets its own app id,
topics and data directory.
"""

from __future__ import annotations

import os

import faust

app = faust.App(
    os.environ["SMOKE_APP_ID"],
    broker=f"kafka://{os.environ['SMOKE_BROKER']}",
    store="rocksdb://",
    datadir=os.environ["SMOKE_DATADIR"],
    topic_partitions=2,
    topic_replication_factor=1,
    web_enabled=False,
)
source = app.topic(
    os.environ["SMOKE_IN"], key_serializer="raw", value_serializer="raw", partitions=2
)
sink = app.topic(
    os.environ["SMOKE_OUT"], key_serializer="raw", value_serializer="raw", partitions=1
)
counts = app.Table("counts", default=int, partitions=2)


@app.agent(source)
async def count_words(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        word = event.value.decode()
        counts[word] += 1
        await sink.send(key=event.key, value=f"{word}={counts[word]}".encode())


if __name__ == "__main__":
    app.main()
