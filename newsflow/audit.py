"""The delivery audit: every page on the pages topic has exactly one outcome.

A page read from the pages topic ends in one of three ways, each written by the pipeline
with the page's place on the topic (``origin``: partition and offset):

    indexed        a document in Elasticsearch (a near or exact duplicate is indexed too,
                   with ``duplicate_of``)
    filtered       a record on the filtered topic: not an article, with the reason
    dead-lettered  a message on a stage's dead-letter topic (clean, stories, enrich, index)

A page without one is *pending* while the pipeline has not finished with it (its offset
is at or past the committed offset of the pipeline's consumer group, or its article still
waits on a topic between two stages), and *missing*, lost, once it has. A page with
outcomes of two kinds is *conflicting*. An outcome found twice is *repeated*: delivery
into Kafka is at least once, which is not a failure.

Matching is by origin. Where no outcome names the page, its article_id is tried: the same
URL sent again and its document rewritten by the later copy (*superseded*), or records
written before outcomes carried an origin. A dead letter that ``newsflow deadletter
replay`` sent back counts only while nothing else came of the page. A page that
``newsflow audit --repair`` sent again is *repaired*: its copy is audited in its place.

From Python (a fault drill, after the pipeline has run)::

    from newsflow import audit

    report = audit.run(settings)  # or since=a datetime, partition=0
    assert report.missing == [] and report.conflicting == [], report.summary()

``join`` is the whole rule, over plain lists; ``newsflow.audit_io`` reads its inputs from
Kafka and Elasticsearch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsflow.settings import Settings

Key = tuple[int, int]  # (partition, offset) of a record on the pages topic

# The header `audit --repair` adds to a page it sends again: "<partition>@<offset>" of the
# lost page, so the next audit knows the copy stands in for it and does not resend it.
REPAIR_HEADER = "newsflow-repair-of"


class Kind(StrEnum):
    INDEXED = "indexed"
    FILTERED = "filtered"
    DEAD_LETTERED = "dead-lettered"


# Which outcome of a superseded page to show: the one a reader of the index sees first.
PREFERENCE = (Kind.INDEXED, Kind.FILTERED, Kind.DEAD_LETTERED)


@dataclass(frozen=True)
class Page:
    """A record of the pages topic; article_id and url are None when it does not decode."""

    partition: int
    offset: int
    article_id: str | None = None
    url: str | None = None
    repair_of: Key | None = None

    @property
    def key(self) -> Key:
        return (self.partition, self.offset)


@dataclass(frozen=True)
class Outcome:
    """Something the pipeline wrote for a page: where it is, and which page it names."""

    kind: Kind
    where: str
    origin: Key | None = None
    article_id: str | None = None
    stage: str | None = None  # of a dead letter
    duplicate: bool = False  # indexed as a duplicate of another article
    replayed: bool = False  # a dead letter already sent back by `deadletter replay`


@dataclass(frozen=True)
class Sighting:
    """A page's article on a topic between two stages (articles, clustered, enriched)."""

    where: str
    consumed: bool  # the pipeline's group has committed past it
    origin: Key | None = None
    article_id: str | None = None


@dataclass(frozen=True)
class Problem:
    """A missing or conflicting page, with what was found of it."""

    partition: int
    offset: int
    article_id: str | None
    url: str | None
    outcomes: tuple[str, ...] = ()
    note: str = ""

    def line(self, topic: str) -> str:
        found = "; ".join(self.outcomes) or "no outcome"
        parts = [f"{topic}[{self.partition}]@{self.offset}", f"article {self.article_id or '?'}"]
        parts += [
            self.url or "(value does not decode)",
            found + (f" ({self.note})" if self.note else ""),
        ]
        return "  ".join(parts)


@dataclass
class AuditReport:
    """How many pages of the window ended in each way; the failures listed one by one.

    Every page is counted once: indexed + filtered + dead-lettered + pending + repaired +
    missing + conflicting is the number of pages. ``superseded``, ``duplicates`` and
    ``repeated`` say more about pages counted under their outcome.
    """

    topic: str
    pages: dict[int, int] = field(default_factory=dict)  # per partition
    indexed: int = 0
    duplicates: int = 0
    superseded: int = 0
    filtered: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)  # per stage
    pending: int = 0
    repaired: int = 0
    repeated: int = 0
    missing: list[Problem] = field(default_factory=list)
    conflicting: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.conflicting

    @property
    def total(self) -> int:
        return sum(self.pages.values())

    def summary(self) -> str:
        lines = [self._title(), *self._rows()]
        for title, problems in (("missing", self.missing), ("conflicting", self.conflicting)):
            if problems:
                lines.append(f"{title}:")
                lines += ["  " + p.line(self.topic) for p in problems]
        return "\n".join(lines)

    def _title(self) -> str:
        per_partition = ", ".join(f"partition {p}: {n}" for p, n in sorted(self.pages.items()))
        return f"{self.topic}: {self.total} page(s)" + (f" ({per_partition})" if self.pages else "")

    def _rows(self) -> list[str]:
        dead = ", ".join(f"{s} {n}" for s, n in sorted(self.dead_lettered.items()))
        rows = [
            ("indexed", self.indexed, f"{self.duplicates} of them duplicates"),
            ("filtered", self.filtered, "not articles"),
            ("dead-lettered", sum(self.dead_lettered.values()), dead),
            ("pending", self.pending, "not processed yet"),
            ("repaired", self.repaired, "sent again by --repair: the copy counts instead"),
            ("missing", len(self.missing), "LOST" if self.missing else ""),
            ("conflicting", len(self.conflicting), "outcomes of two kinds"),
            # These two say more about pages counted above.
            ("superseded", self.superseded, "the outcome of another copy of the URL"),
            ("repeated", self.repeated, "an outcome written twice (at least once: no loss)"),
        ]
        return [f"  {name:<14}{n:>7}" + (f"  {note}" if note else "") for name, n, note in rows]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["pages"] = {str(p): n for p, n in sorted(self.pages.items())}
        data.update(total=self.total, ok=self.ok)
        return data


# -- the rule ----------------------------------------------------------------------------


@dataclass
class _Found:
    """The outcomes and sightings of a window, looked up by origin and by article_id."""

    by_origin: dict[Key, list[Outcome]] = field(default_factory=lambda: defaultdict(list))
    by_id: dict[str, list[Outcome]] = field(default_factory=lambda: defaultdict(list))
    seen_at: dict[Key, list[Sighting]] = field(default_factory=lambda: defaultdict(list))
    seen_id: dict[str, list[Sighting]] = field(default_factory=lambda: defaultdict(list))
    copies: Counter[str] = field(default_factory=Counter)  # pages per article_id
    repaired: set[Key] = field(default_factory=set)  # pages that have a repair copy

    @classmethod
    def build(
        cls, pages: Sequence[Page], outcomes: Iterable[Outcome], sightings: Iterable[Sighting]
    ) -> _Found:
        found = cls()
        for o in outcomes:
            _file(o, o.origin, o.article_id, found.by_origin, found.by_id)
        for s in sightings:
            _file(s, s.origin, s.article_id, found.seen_at, found.seen_id)
        found.copies.update(p.article_id for p in pages if p.article_id)
        found.repaired.update(p.repair_of for p in pages if p.repair_of)
        return found


def _file(item: Any, origin: Key | None, aid: str | None, at: Any, by_id: Any) -> None:
    # Under both: a page with no outcome of its own finds another copy's by article_id.
    if origin is not None:
        at[origin].append(item)
    if aid is not None:
        by_id[aid].append(item)


def join(
    topic: str,
    pages: Sequence[Page],
    outcomes: Iterable[Outcome],
    committed: Mapping[int, int],
    sightings: Iterable[Sighting] = (),
) -> AuditReport:
    """The outcome of every page. ``committed``: the pipeline group's committed offset per
    partition of the pages topic (the next offset it would read; absent: nothing yet)."""
    found = _Found.build(pages, outcomes, sightings)
    report = AuditReport(topic, pages=dict(Counter(p.partition for p in pages)))
    for page in pages:
        _classify(page, found, committed, report)
    return report


def _classify(page: Page, found: _Found, committed: Mapping[int, int], r: AuditReport) -> None:
    outcomes, exact = _outcomes_of(page, found)
    if outcomes and exact:
        _count_exact(page, outcomes, r)
    elif outcomes:
        _count(min(outcomes, key=lambda o: PREFERENCE.index(o.kind)), r)
        r.superseded += 1
    elif page.key in found.repaired:
        r.repaired += 1
    elif page.offset >= committed.get(page.partition, 0):
        r.pending += 1
    else:
        _count_unfinished(page, found, r)


def _outcomes_of(page: Page, found: _Found) -> tuple[list[Outcome], bool]:
    """The page's outcomes, and whether they are its own (not another copy's of the URL).

    Its own by origin first; else those of its article_id. A replayed dead letter only
    counts when nothing else is found: the replay's outcome replaces it."""
    own = found.by_origin.get(page.key, [])
    same_url = found.by_id.get(page.article_id, []) if page.article_id else []
    for replayed in (False, True):
        mine = [o for o in own if o.replayed == replayed]
        if mine:
            return mine, True
        others = [o for o in same_url if o.replayed == replayed]
        if others:
            # Records without origins (written before outcomes carried one) of a URL sent
            # once are as good as the page's own.
            aid = page.article_id or ""
            legacy = found.copies[aid] == 1 and all(o.origin is None for o in others)
            return others, legacy
    return [], False


def _count_exact(page: Page, outcomes: list[Outcome], r: AuditReport) -> None:
    if len({o.kind for o in outcomes}) > 1:
        r.conflicting.append(_problem(page, outcomes))
        return
    _count(outcomes[0], r)
    if len(outcomes) > 1:
        r.repeated += 1


def _count(outcome: Outcome, r: AuditReport) -> None:
    if outcome.kind is Kind.INDEXED:
        r.indexed += 1
        r.duplicates += outcome.duplicate
    elif outcome.kind is Kind.FILTERED:
        r.filtered += 1
    else:
        stage = outcome.stage or "?"
        r.dead_lettered[stage] = r.dead_lettered.get(stage, 0) + 1


def _count_unfinished(page: Page, found: _Found, r: AuditReport) -> None:
    """A page the clean stage has committed past with no outcome: lost, unless its article
    still waits on a topic between two stages."""
    seen = found.seen_at.get(page.key) or (
        found.seen_id.get(page.article_id, []) if page.article_id else []
    )
    if any(not s.consumed for s in seen):
        r.pending += 1
        return
    note = f"last seen on {seen[-1].where}, consumed" if seen else ""
    r.missing.append(_problem(page, [], note))


def _problem(page: Page, outcomes: list[Outcome], note: str = "") -> Problem:
    described = tuple(f"{o.kind} ({o.where})" for o in outcomes)
    return Problem(page.partition, page.offset, page.article_id, page.url, described, note)


# -- the command's arguments ---------------------------------------------------------------

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``2h``, ``1d`` (before ``now``) or an ISO 8601 time (UTC unless it says)."""
    value = text.strip()
    number, unit = value[:-1], value[-1:].lower()
    if unit in UNITS and number.isdigit():
        return now - timedelta(seconds=int(number) * UNITS[unit])
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 2h, 1d) nor an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- against the real services -----------------------------------------------------------


def run(
    settings: Settings,
    since: datetime | None = None,
    partition: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditReport:
    """Audit the pages topic of ``settings``' pipeline (all of it, or what was written
    since ``since``, of one partition); raises ``audit_io.Unreachable`` when Kafka or
    Elasticsearch does not answer."""
    from newsflow import audit_io

    return audit_io.audit(settings, since=since, partition=partition, progress=progress)
