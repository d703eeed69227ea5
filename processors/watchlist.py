"""A worker's live copy of the standing queries (newsflow.watches): the whole watches topic,
read from its start and followed (processors.follow). Matching waits until the copy has
caught up with the topic's end as it was at start: an article indexed just after a restart
is matched against every watch, never against the few read so far.
"""

from __future__ import annotations

import logging

from newsflow.records import Watch
from newsflow.settings import Settings
from newsflow.watches import fold
from processors.follow import Follower

log = logging.getLogger(__name__)


class WatchList(Follower[Watch]):
    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(settings, topic, fold, "watches", _say)

    @property
    def watches(self) -> dict[str, Watch]:
        return self.items


def _say(before: dict[str, Watch], now: dict[str, Watch]) -> None:
    added, removed = set(now) - set(before), set(before) - set(now)
    if added or removed or not before:
        log.info(
            "watches: %d (%s%s)",
            len(now),
            f"added {', '.join(sorted(added))}" if added else "none added",
            f"; removed {', '.join(sorted(removed))}" if removed else "",
        )
