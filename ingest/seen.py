"""The URLs ingest has already sent on, remembered across restarts.

A restarted ingest would otherwise fetch every URL its feeds and sitemaps still list and
put it on the pages topic again. ``SeenStore`` keeps them in a SQLite file: one row per
article, keyed by the 16 bytes of its ``article_id`` (the hash of the canonical URL), with
the time it was last seen, so rows stay small and ``forget_older_than`` keeps the file
bounded.

Add a URL once its page is on the pages topic (the producer's send succeeded), not when it
is scheduled: a crash in between would otherwise lose the page for good.

It also remembers the URLs whose fetch failed for good (a 404, robots.txt forbidding it,
a line of a URL list that is no URL), in the ``failed`` table with when and why: a rerun of
the same list, or the next poll of a feed that still lists them, skips them as "failed
before" instead of fetching and dead-lettering them again. A URL that succeeds later
(``add_many``) is forgotten from it; ``forget_older_than`` bounds both tables.

Durability: WAL journal with ``synchronous=NORMAL``. A committed ``add`` survives the
process being killed; a power cut may lose the last few, which costs a refetch that the
duplicate check downstream absorbs, not a lost article.

Threads and the event loop: each call is one indexed statement and one commit, tens of
microseconds on a local disk, so calling from the asyncio event loop is fine.
``add_many`` of thousands of URLs, or ``forget_older_than`` over a large file, may take
milliseconds: run those in a thread (``asyncio.to_thread``). A lock serialises calls, so
the loop and threads may share one store; other processes may open the same file (SQLite
locks it; a writer waits up to ``busy_timeout``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from ingest.canon import canonicalize
from newsflow.records import article_id, utcnow

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS seen (
    id BLOB PRIMARY KEY,          -- article_id as 16 bytes
    last_seen INTEGER NOT NULL    -- unix seconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_last_seen ON seen (last_seen);
CREATE TABLE IF NOT EXISTS failed (
    id BLOB PRIMARY KEY,          -- article_id as 16 bytes (of the text, if it is no URL)
    failed_at INTEGER NOT NULL,   -- unix seconds, of the last failure
    reason TEXT NOT NULL          -- "http-404: ...", as dead-lettered
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS failed_failed_at ON failed (failed_at);
"""
# Re-seeing a URL moves its time on: one still listed in a feed must not be forgotten
# (and refetched) just because it was first seen long ago.
_INSERT: Final = "INSERT OR IGNORE INTO seen (id, last_seen) VALUES (?, ?)"
_TOUCH: Final = "UPDATE seen SET last_seen = max(last_seen, ?) WHERE id = ?"
_FAILED: Final = "INSERT OR REPLACE INTO failed (id, failed_at, reason) VALUES (?, ?, ?)"
MAX_REASON_CHARS: Final = 500


@dataclass(frozen=True)
class FailedBefore:
    """A URL whose fetch failed for good on an earlier run: when, and why."""

    at: datetime
    reason: str


class SeenStore:
    """Which canonical URLs were already sent on; see the module docstring."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        # check_same_thread off: the lock, not the thread, keeps calls apart.
        self._db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def add(self, url: str, when: datetime | None = None) -> bool:
        """Remember ``url`` (canonicalised here too); True if it was not seen before."""
        return bool(self.add_many([url], when))

    def add_many(self, urls: Iterable[str], when: datetime | None = None) -> list[str]:
        """Remember all ``urls`` in one transaction; the ones that were new, in order.
        They are no longer failed: an earlier failure of theirs is forgotten."""
        stamp = _seconds(when)
        new: list[str] = []
        with self._lock, _transaction(self._db):
            for url in urls:
                key = _key(url)
                if self._db.execute(_INSERT, (key, stamp)).rowcount:
                    new.append(url)
                else:
                    self._db.execute(_TOUCH, (stamp, key))
                self._db.execute("DELETE FROM failed WHERE id = ?", (key,))
        return new

    def add_failed(self, url: str, reason: str, when: datetime | None = None) -> None:
        """Remember that ``url`` (or a line that is no URL) failed for good, and why."""
        row = (_failed_key(url), _seconds(when), reason[:MAX_REASON_CHARS])
        with self._lock, _transaction(self._db):
            self._db.execute(_FAILED, row)

    def failed_before(self, url: str) -> FailedBefore | None:
        """When and why ``url`` failed for good, if it did and has not succeeded since."""
        with self._lock:
            found = self._db.execute(
                "SELECT failed_at, reason FROM failed WHERE id = ?", (_failed_key(url),)
            ).fetchone()
        if found is None:
            return None
        return FailedBefore(datetime.fromtimestamp(found[0], UTC), found[1])

    def forget_failed(self, url: str) -> bool:
        """Forget an earlier failure of ``url`` (to try it again); True if there was one."""
        with self._lock, _transaction(self._db):
            gone = self._db.execute("DELETE FROM failed WHERE id = ?", (_failed_key(url),))
            return bool(gone.rowcount)

    def contains(self, url: str) -> bool:
        with self._lock:
            found = self._db.execute("SELECT 1 FROM seen WHERE id = ?", (_key(url),))
            return found.fetchone() is not None

    __contains__ = contains

    def forget_older_than(self, cutoff: datetime) -> int:
        """Forget URLs last seen, and failures last met, before ``cutoff``; how many URLs
        were forgotten from the seen ones."""
        stamp = _seconds(cutoff)
        with self._lock, _transaction(self._db):
            gone = self._db.execute("DELETE FROM seen WHERE last_seen < ?", (stamp,))
            self._db.execute("DELETE FROM failed WHERE failed_at < ?", (stamp,))
            return gone.rowcount

    def failed_count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM failed").fetchone()
            return int(count)

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM seen").fetchone()
            return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an error (the connection autocommits)."""
    # IMMEDIATE takes the write lock up front, so two processes cannot both read, then
    # fail to upgrade to writing halfway through a batch.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _key(url: str) -> bytes:
    # Canonicalising again is idempotent for a canonical URL and saves callers who pass
    # the URL as found from a silent miss.
    return bytes.fromhex(article_id(canonicalize(url)))


def _failed_key(text: str) -> bytes:
    # A line of a URL list that is no URL at all is remembered by its text, so that it too
    # is not dead-lettered again on every run of the list.
    try:
        return _key(text)
    except ValueError:
        return bytes.fromhex(article_id(text.strip()))


def _seconds(when: datetime | None) -> int:
    moment = utcnow() if when is None else when
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: seen times must be timezone-aware")
    return int(moment.timestamp())
