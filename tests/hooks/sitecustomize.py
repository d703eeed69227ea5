"""A test-only hook, loaded by Python at start-up when this folder is on PYTHONPATH:
with NEWSFLOW_TEST_DELAY_COMMITTED=<seconds> set, every committed-offset lookup of
aiokafka's consumer in the process takes that much longer. A slow lookup widens the
window in which Faust, ending table recovery, has resumed fetching but not yet sought
its stream partitions (tests/test_recovery_reproducer.py)."""

import os

_delay = os.environ.get("NEWSFLOW_TEST_DELAY_COMMITTED")
if _delay:
    import asyncio

    from aiokafka.consumer import consumer as _consumer

    _committed = _consumer.AIOKafkaConsumer.committed

    async def _slow_committed(self, partition):  # type: ignore[no-untyped-def]
        await asyncio.sleep(float(_delay))
        return await _committed(self, partition)

    _consumer.AIOKafkaConsumer.committed = _slow_committed
