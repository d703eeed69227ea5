"""Every change newsflow makes to how Faust behaves, in one place, pinned to what was read.

Read off faust-streaming 0.15.3, mode-streaming 0.7.1 and aiokafka 0.14.0 (``PINNED``);
importing this module with other versions raises, and ``tests/test_faust_overrides.py``
also checks that the Faust functions whose behaviour is described here are unchanged.

Why Faust alone loses pages (at-least-once is what it promises, not what it does):

* Its commit position comes from acknowledgements with holes filled in: a jump in the
  offsets it fetched is recorded as a "gap" and treated as acknowledged, the check for a
  hole at the head of a partition is off by one, and messages its stream skips (fetched
  before a rebalance, or while flow is suspended) are never acknowledged, so they are
  holes that the next acknowledgement commits over.
* When table recovery ends it resumes the stream partitions, looks up the committed
  offsets one partition at a time while fetching goes on, and then clears every agent's
  queue: what was fetched in between is thrown away, and the next fetch looks like a gap.
* A failed delivery of what an agent produced is only logged; the input's offset is
  committed all the same.
* The local RocksDB store keeps writes whose changelog records never reached Kafka when
  the worker is killed; recovery trusts the store, so another worker never sees them.

What newsflow does instead:

* ``OffsetLedger``: for every partition of the pipeline's topics, the next offset to
  commit and the offsets processed past it. An offset counts as processed only when an
  agent says so (``PipelineApp.done``), after Kafka (or Elasticsearch) acknowledged what
  it produced. The commit moves only over an unbroken run of processed offsets (the
  pipeline's topics use delete retention and no transactions, so their offsets have no
  holes). A hole stalls the commit; a head offset that is neither processed nor in
  flight while its agent is idle is sought back to, logged and counted
  (``LedgerConsumer.heads_sought``).
* ``LedgerConsumer.perform_seek`` (what recovery and rebalances call): stop flow, look
  up the committed offset of every stream partition (the log start where none is
  committed), seek each explicitly, drop what the agents' queues hold; Faust resumes
  flow right after.
* No commit while a table changelog write has failed: the worker stops with the reason,
  and what it processed since the last commit is processed again by whoever takes over.
* ``discard_unclean_state``: a worker that did not stop cleanly rebuilds its tables from
  the changelogs instead of trusting its local store.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import faust
from faust.sensors import Sensor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service
from mode.utils.futures import notify

log = logging.getLogger(__name__)

PINNED = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}


class UnsupportedFaust(RuntimeError):
    """The installed Faust is not the one this module was written against."""


def check_versions() -> None:
    found = {name: version(name) for name in PINNED}
    if found != PINNED:
        raise UnsupportedFaust(
            f"newsflow's changes to Faust were written against {PINNED}, found {found}: "
            "re-read processors/faust_overrides.py against the new versions before "
            "changing the pins in pyproject.toml"
        )


check_versions()


# -- the ledger: what may be committed -----------------------------------------------------


@dataclass
class _Partition:
    base: int | None = None  # next offset to commit (what Kafka stores); None until sought
    committed: int | None = None  # what was last committed (or found committed)
    done: set[int] = field(default_factory=set)  # processed offsets at or past base
    in_flight: set[int] = field(default_factory=set)  # handed to an agent, not done
    stuck_since: float | None = None
    strikes: int = 0  # times in a row the head was sought back to without being processed


class OffsetLedger:
    """Per partition: the next offset to commit, and what was processed past it.

    Pure bookkeeping (no Faust, no Kafka), so it is tested on its own. Offsets are the
    Kafka kind: ``base`` is the next offset to read, the value a commit stores.
    """

    def __init__(self) -> None:
        self._parts: dict[TP, _Partition] = {}

    def _part(self, tp: TP) -> _Partition:
        return self._parts.setdefault(tp, _Partition())

    def partitions(self) -> list[TP]:
        return list(self._parts)

    def reset(self, tp: TP, base: int, committed: int | None) -> None:
        """The partition was sought to ``base`` (its committed offset, or the log start)."""
        part = self._part(tp)
        # Nothing committed yet: the log start counts as committed, so that the first
        # commit is one past a processed offset, never a commit of nothing.
        part.committed = committed if committed is not None else base
        part.base, part.stuck_since = base, None
        # Offsets processed past the new base stay processed: their results were delivered.
        part.done = {o for o in part.done if o >= base}

    def forget(self, tps: Iterable[TP]) -> None:
        """Partitions revoked: their commits are the new owner's business now."""
        for tp in tps:
            self._parts.pop(tp, None)

    # Only partitions sought since they were assigned are tracked: a message of any other
    # (handed over just before a revocation, say) is fetched again by whoever owns it.
    def started(self, tp: TP, offset: int) -> None:
        part = self._parts.get(tp)
        if part is not None:
            part.in_flight.add(offset)

    def done(self, tp: TP, offset: int) -> None:
        part = self._parts.get(tp)
        if part is None or part.base is None:
            return
        part.in_flight.discard(offset)
        if offset >= part.base:
            part.done.add(offset)

    def advance(self, tp: TP) -> int | None:
        """Move the base over the unbroken run of processed offsets; the new base when
        it is past what was committed (the offset to commit), else None."""
        part = self._parts.get(tp)
        if part is None or part.base is None:
            return None
        while part.base in part.done:
            part.done.remove(part.base)
            part.base += 1
            part.strikes = 0
        return None if part.base <= (part.committed or 0) else part.base

    def committed_to(self, tp: TP, offset: int) -> None:
        part = self._parts.get(tp)
        if part is not None:
            part.committed = offset

    def base(self, tp: TP) -> int | None:
        part = self._parts.get(tp)
        return None if part is None else part.base

    def pass_over(self, tp: TP, to: int) -> None:
        """The offsets below ``to`` will never be delivered (deleted by retention, or not
        in the log at all): the commit may move past them."""
        part = self._part(tp)
        part.base = max(part.base or 0, to)
        part.done = {o for o in part.done if o >= part.base}
        part.strikes = 0

    def busy(self, topic: str) -> bool:
        """Whether some message of ``topic`` is in an agent's hands (the agent is working)."""
        return any(tp.topic == topic and p.in_flight for tp, p in self._parts.items())

    def stuck_head(self, tp: TP, highwater: int | None, now: float, grace: float) -> int | None:
        """The head offset to seek back to, when it has been neither processed nor in
        flight for ``grace`` seconds while its agent had nothing of the topic in hand
        and the log holds it (``highwater`` is the next offset to be written)."""
        part = self._parts.get(tp)
        if (
            part is None
            or part.base is None
            or highwater is None
            or highwater <= part.base
            or part.base in part.in_flight
            or self.busy(tp.topic)
        ):
            if part is not None:
                part.stuck_since = None
            return None
        if part.stuck_since is None:
            part.stuck_since = now
            return None
        if now - part.stuck_since < grace:
            return None
        part.stuck_since = None
        part.strikes += 1
        return part.base

    def strikes(self, tp: TP) -> int:
        part = self._parts.get(tp)
        return 0 if part is None else part.strikes

    def pending(self, tp: TP) -> tuple[int, int]:
        """(processed past the base, in flight): for logs and tests."""
        part = self._parts.get(tp) or _Partition()
        return len(part.done), len(part.in_flight)


# -- the consumer ----------------------------------------------------------------------------


async def _committed_or_log_start(consumer: Any, tps: list[TP]) -> dict[TP, tuple[int, int | None]]:
    """(offset to seek to, committed offset or None) for each partition. Runs in the
    consumer's thread: aiokafka's client lives on that thread's event loop."""
    committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
    missing = [tp for tp, offset in zip(tps, committed, strict=True) if offset is None]
    starts = await consumer.beginning_offsets(missing) if missing else {}
    return {
        tp: (offset if offset is not None else int(starts[tp]), offset)
        for tp, offset in zip(tps, committed, strict=True)
    }


MAX_STRIKES = 3


class LedgerConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, committing what the ledger allows on the pipeline's topics."""

    heads_sought = 0  # head offsets sought back to: each one a hole some path left

    @property
    def _app(self) -> PipelineApp:
        return cast(PipelineApp, self.app)

    def _guarded(self, tp: TP) -> bool:
        return tp.topic in self._app.guarded_topics

    # Faust's acknowledgements still tell it when a message is finished (a rebalance waits
    # for them), but they no longer decide what is committed on the pipeline's topics.
    def ack(self, message: Any) -> bool:
        if message.topic not in self._app.guarded_topics:
            return bool(super().ack(message))
        if message.acked:
            return False
        message.acked = True
        self._unacked_messages.discard(message)
        notify(self._waiting_for_ack)
        return True

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        seen = set()
        for tp in [*super()._filter_tps_with_pending_acks(topics), *self._app.ledger.partitions()]:
            if tp not in seen and (topics is None or tp in topics or tp.topic in topics):
                seen.add(tp)
                yield tp

    def _filter_committable_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        tps = list(tps)
        others = [tp for tp in tps if not self._guarded(tp)]
        offsets = dict(super()._filter_committable_offsets(others))
        for tp in (tp for tp in tps if self._guarded(tp)):
            # The compiled stream iterator appends to these itself; they mean nothing here.
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._gap.pop(tp, None)
            offset = self._app.ledger.advance(tp)
            if offset is not None:
                offsets[tp] = offset
        return offsets

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        # Called after the producer was flushed: every changelog write of the offsets
        # being committed has been answered by now.
        failure = self._app.changelog_failure
        if failure is not None:
            await self.crash(
                RuntimeError(
                    f"a table changelog write failed ({failure}); not committing, so the "
                    "pages since the last commit are processed again when a worker restarts"
                )
            )
            return False
        did_commit = bool(await super()._commit(offsets))
        if did_commit:
            for tp, offset in offsets.items():
                self._app.ledger.committed_to(tp, offset)
        return did_commit

    async def perform_seek(self) -> None:
        """Seek every stream partition to its committed offset (the log start where none
        is), with flow stopped, and drop what was fetched before. Faust's recovery calls
        this and resumes flow right after, with no await between."""
        self.stop_flow()
        self.app.flow_control.clear()
        tps = sorted(tp for tp in self.assignment() if not self._is_changelog_tp(tp))
        if not tps:
            return
        thread = self._thread
        found = await thread.call_thread(_committed_or_log_start, thread._ensure_consumer(), tps)
        await thread.seek_wait({tp: offset for tp, (offset, _) in found.items()})
        for tp, (offset, committed) in found.items():
            self._read_offset[tp] = offset if offset else None
            self._committed_offset[tp] = committed if committed else None
            if self._guarded(tp):
                self._app.ledger.reset(tp, offset, committed)
        # Anything an agent queue received while the offsets were looked up was fetched
        # from before the seek, and is fetched again from the offsets above.
        self.app.flow_control.clear()
        sought = ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, (o, _) in found.items())
        log.info("sought %s", sought)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        await super().on_partitions_revoked(revoked)
        self._app.ledger.forget(revoked)

    @Service.task
    async def _watch_heads(self) -> None:
        """Seek back to a partition's head when nothing will otherwise ever process it."""
        interval = self._app.head_check_interval
        async for _ in self.itertimer(interval, name="newsflow-heads"):
            if self.app.rebalancing or not self.flow_active or self.should_stop:
                continue
            await self._seek_stuck_heads()

    async def _seek_stuck_heads(self) -> None:
        ledger, now = self._app.ledger, time.monotonic()
        assigned, active = self.assignment(), self._get_active_partitions()
        for tp in ledger.partitions():
            if tp not in assigned or tp not in active:
                continue
            head = ledger.stuck_head(tp, self.highwater(tp), now, self._app.head_grace)
            if head is None:
                continue
            start = (await self.earliest_offsets(tp)).get(tp)
            if start is not None and head < start:
                log.error(
                    "%s[%d]: offsets %d..%d were deleted by retention before they were "
                    "processed: they are lost",
                    tp.topic,
                    tp.partition,
                    head,
                    start - 1,
                )
                ledger.pass_over(tp, start)
                head = start
            elif ledger.strikes(tp) > MAX_STRIKES:
                # Sought back to again and again and never delivered: the offset is not in
                # the log (the pipeline's topics have none such, but a topic written with
                # transactions has markers). Stalling every later commit would be worse.
                log.error(
                    "%s[%d]@%d was never delivered after %d seeks: not in the log; passing over it",
                    tp.topic,
                    tp.partition,
                    head,
                    MAX_STRIKES,
                )
                ledger.pass_over(tp, head + 1)
                continue
            LedgerConsumer.heads_sought += 1
            done, in_flight = ledger.pending(tp)
            log.warning(
                "%s[%d]@%d was never processed (%d later offsets processed, %d in flight): "
                "seeking back to it (%d time(s) since the worker started)",
                tp.topic,
                tp.partition,
                head,
                done,
                in_flight,
                LedgerConsumer.heads_sought,
            )
            await self.seek(tp, head)


class LedgerTransport(faust_aiokafka.Transport):
    Consumer = LedgerConsumer


class _ChangelogSensor(Sensor):
    """Remembers a failed changelog delivery; Faust itself only logs it."""

    def __init__(self, app: PipelineApp) -> None:
        super().__init__()
        self._pipeline_app = app

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> Any:
        return topic

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        app = self._pipeline_app
        if isinstance(state, str) and state in app.tables.changelog_topics:
            app.changelog_failure = f"{state}: {type(exc).__name__}: {exc}"
            log.error("table changelog write to %s failed: %r", state, exc)


class PipelineApp(faust.App):
    """faust.App with the ledger consumer, and the calls the agents make to it.

    Agents call ``processing(message)`` when they are handed a message and ``done(message)``
    once what it produced was acknowledged; only then may its offset be committed.
    """

    def __init__(
        self, *args: Any, head_grace: float = 30.0, head_check_interval: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = OffsetLedger()
        self.guarded_topics: set[str] = set()
        self.head_grace = head_grace
        self.head_check_interval = head_check_interval
        self.changelog_failure: str | None = None
        self.sensors.add(_ChangelogSensor(self))

    def _new_transport(self) -> Any:
        return LedgerTransport(self.conf.broker_consumer, self)

    def limit_producer_buffer(self, max_messages: int) -> None:
        """How many table changelog writes may wait in Faust's producer buffer before the
        stream waits for them. Faust has no setting for it: ``ProducerBuffer.max_messages``
        (100 in 0.15.3) is read by ``ProducerBuffer.wait_until_ebb`` (hash-checked in
        RELIED_ON), which warns "producer buffer full" and flushes past it."""
        self.producer.buffer.max_messages = max_messages

    def processing(self, message: Any) -> None:
        if message.topic in self.guarded_topics:
            self.ledger.started(message.tp, message.offset)

    def done(self, message: Any) -> None:
        if message.topic in self.guarded_topics:
            self.ledger.done(message.tp, message.offset)


# -- local state ---------------------------------------------------------------------------

CLEAN_MARK = "newsflow-clean-stop"


def discard_unclean_state(datadir: Path) -> bool:
    """Before a worker starts: if it did not stop cleanly last time, delete its local
    tables so they are rebuilt from the changelogs. After a kill, the store can hold
    writes whose changelog records never reached Kafka; processing the pages again
    would find them already there and write nothing, so no other worker would ever see
    them. Returns whether anything was discarded."""
    mark = datadir / CLEAN_MARK
    if mark.exists():
        mark.unlink()
        return False
    tables = [p for p in datadir.iterdir() if p.is_dir()] if datadir.is_dir() else []
    for path in tables:
        shutil.rmtree(path)
    if tables:
        log.warning("the worker did not stop cleanly: its tables are rebuilt from Kafka")
    return bool(tables)


def mark_clean_stop(datadir: Path) -> None:
    """After a clean stop (everything committed, the producer flushed)."""
    datadir.mkdir(parents=True, exist_ok=True)
    (datadir / CLEAN_MARK).touch()


# -- what this module relies on ------------------------------------------------------------

# Faust functions whose behaviour the module docstring describes, and the hash of their
# source as read. A change in any of them means the reasoning here must be redone.
RELIED_ON = {
    "Consumer._new_offset": "1d2c7ea89a7ad4f1",
    "Consumer._commit_offsets": "1a69799041188441",
    "Consumer._commit_tps": "a20e230b05ae8b15",
    "Consumer._filter_committable_offsets": "dc5e9baf5d994485",
    "Consumer.perform_seek": "0e8c130ff4b0afd8",
    "Consumer.getmany": "4b168d84882a70d6",
    "Consumer._drain_messages": "44a2500309e83c63",
    "Recovery._resume_streams": "d986a6710c1aca98",
    "Recovery.on_recovery_completed": "6ef567acf072e46d",
    "AIOKafkaConsumerThread._commit": "932852ce7a23f658",
    "AIOKafkaConsumerThread._seek_wait": "9d221e816d940467",
    "ProducerBuffer.wait_until_ebb": "758dd5744044071b",
}


def relied_on_sources() -> dict[str, str]:
    """Qualified name -> sha256 of the source of each Faust function read for this module."""
    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer
    from faust.transport.producer import ProducerBuffer

    thread = faust_aiokafka.AIOKafkaConsumerThread
    functions = {
        "Consumer._new_offset": Consumer._new_offset,
        "Consumer._commit_offsets": Consumer._commit_offsets,
        "Consumer._commit_tps": Consumer._commit_tps,
        "Consumer._filter_committable_offsets": Consumer._filter_committable_offsets,
        "Consumer.perform_seek": Consumer.perform_seek,
        "Consumer.getmany": Consumer.getmany,
        "Consumer._drain_messages": Consumer._drain_messages,
        "Recovery._resume_streams": Recovery._resume_streams,
        "Recovery.on_recovery_completed": Recovery.on_recovery_completed,
        "AIOKafkaConsumerThread._commit": thread._commit,
        "AIOKafkaConsumerThread._seek_wait": thread._seek_wait,
        "ProducerBuffer.wait_until_ebb": ProducerBuffer.wait_until_ebb,
    }
    return {
        name: hashlib.sha256(inspect.getsource(cast(Any, fn)).encode()).hexdigest()[:16]
        for name, fn in functions.items()
    }
