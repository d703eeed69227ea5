"""Expiring old entries from the dedup tables without holding up the event loop.

The boilerplate and alerted tables are swept by reading every key of a partition: on a large
table a plain loop would keep the event loop busy for seconds, long enough to miss
broker heartbeats and cause the rebalances the pipeline must avoid. So its keys are
copied in chunks (yielding to the loop between them), the pure sweep runs on the copy
in a thread, and only the changes are written back, again in chunks. The stories sweeps
read only the expired time slots by key, so they run as they are, one site at a time.

Run from inside the agent that owns the table, while it processes an event of the
partition: Faust writes a table's changelog to the current event's partition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any

from processors import paragraphs, stages, stories

CHUNK = 1000


class StreamClock:
    """The time the stream has reached, per key (a partition of the pages, the one
    stories table): the latest page time seen there, never later than the wall clock.

    Table entries are stamped with their page's time (``fetched_at``: in a backfill of a
    crawl, the WARC record's date), so they must expire against that time too. Swept
    against the wall clock, a backfill of last year's CC-NEWS would lose all of its story
    and boilerplate state at every sweep; swept against the stream, it keeps the window
    it would have had live. The wall clock caps it, so a page stamped in the future (a
    producer's clock off) cannot expire everything before its time. A worker that takes
    over a partition starts from the first page it sees there: nothing is swept before.
    """

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._latest: dict[Hashable, float] = {}
        self._wall = wall

    def saw(self, key: Hashable, when: float) -> None:
        capped = min(when, self._wall())
        self._latest[key] = max(self._latest.get(key, capped), capped)

    def now(self, key: Hashable) -> float | None:
        """The stream's time at ``key``, or None before its first page."""
        return self._latest.get(key)


async def sites(
    site_stories: MutableMapping[str, Any],
    boilerplate: MutableMapping[str, Any],
    partition: int,
    now: float,
    options: stages.PipelineOptions,
    chunk: int = CHUNK,
) -> int:
    """Drop the expired entries of the sites on ``partition`` from both site tables."""
    on_partition = set(site_stories.get(stages.sites_key(partition)) or [])
    swept = 0
    for site in sorted(on_partition):
        swept += stories.sweep(stages.SiteState(site_stories, site), now, options.stories)
        await asyncio.sleep(0)

    def mine(key: str) -> bool:
        return key.partition(paragraphs.KEY_SEPARATOR)[0] in on_partition

    before = await _copy(boilerplate, mine, chunk)
    after = dict(before)
    loop = asyncio.get_running_loop()
    swept += await loop.run_in_executor(None, paragraphs.sweep, after, now, options.boilerplate)
    await _write_back(boilerplate, before, after, chunk)
    return swept


async def alerted(
    table: MutableMapping[str, Any],
    partition: int,
    now: float,
    keep_seconds: float,
    chunk: int = CHUNK,
) -> int:
    """Drop the alerted table's entries of ``partition`` older than ``keep_seconds``.

    An entry only has to outlive its story: a copy arriving after the story window has
    closed starts a story of its own (processors.stories), with its own alert. Each entry
    names the partition it was written from, since its key (an alert id) does not."""

    def expired(value: Any) -> bool:
        return (
            isinstance(value, dict)
            and value.get("p") == partition
            and float(value.get("t", now)) < now - keep_seconds
        )

    gone: list[str] = []
    for i, (key, value) in enumerate(table.items(), 1):
        if expired(value):
            gone.append(key)
        if i % chunk == 0:
            await asyncio.sleep(0)
    for i, key in enumerate(gone, 1):
        del table[key]
        if i % chunk == 0:
            await asyncio.sleep(0)
    return len(gone)


async def _copy(
    table: MutableMapping[str, Any], keep: Callable[[str], bool], chunk: int
) -> dict[str, Any]:
    copy: dict[str, Any] = {}
    for i, (key, value) in enumerate(table.items(), 1):
        if isinstance(key, str) and keep(key):
            copy[key] = value
        if i % chunk == 0:
            await asyncio.sleep(0)
    return copy


async def _write_back(
    table: MutableMapping[str, Any], before: dict[str, Any], after: dict[str, Any], chunk: int
) -> None:
    changes = 0
    for key, value in before.items():
        if key not in after:
            del table[key]
        elif after[key] != value:
            table[key] = after[key]
        else:
            continue
        changes += 1
        if changes % chunk == 0:
            await asyncio.sleep(0)


async def names(
    table: MutableMapping[str, Any],
    partition: int,
    now: float,
    forgotten: Callable[[dict[str, Any], float], bool],
    chunk: int = CHUNK,
) -> list[tuple[str, bool]]:
    """Drop the name-labels table's entries of ``partition`` that ``forgotten`` says have
    faded (processors.name_labels.expired); (name, whether a label was published for it)
    for each, so that the caller takes the published ones off the labels topic too.
    Each entry names the partition it was written from ("q")."""
    gone: list[tuple[str, bool]] = []
    for i, (key, value) in enumerate(table.items(), 1):
        if isinstance(value, dict) and value.get("q") == partition and forgotten(value, now):
            gone.append((key, value.get("p") is not None))
        if i % chunk == 0:
            await asyncio.sleep(0)
    for i, (key, _) in enumerate(gone, 1):
        del table[key]
        if i % chunk == 0:
            await asyncio.sleep(0)
    return gone
