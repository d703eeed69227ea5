"""Expiring the alerted table: only the swept partition's entries, only those past the
window, and the table left as it was when nothing has expired."""

from __future__ import annotations

import asyncio

from processors import sweep

DAY = 86400.0


def test_alerted_sweep_drops_only_expired_entries_of_its_partition() -> None:
    now = 100 * DAY
    table = {
        "old-0": {"a": "x", "p": 0, "t": now - 15 * DAY},
        "new-0": {"a": "y", "p": 0, "t": now - 1 * DAY},
        "old-1": {"a": "z", "p": 1, "t": now - 15 * DAY},  # another partition's: kept
        "edge-0": {"a": "w", "p": 0, "t": now - 14 * DAY},  # exactly the window: kept
    }
    swept = asyncio.run(sweep.alerted(table, 0, now, 14 * DAY, chunk=1))
    assert swept == 1
    assert sorted(table) == ["edge-0", "new-0", "old-1"]
    assert asyncio.run(sweep.alerted(table, 0, now, 14 * DAY)) == 0
    assert sorted(table) == ["edge-0", "new-0", "old-1"]
