"""The demo sites as they look while they are being watched: articles appear one by one,
and so do briefs.

A static site tells a monitor nothing about what matters once it runs for hours: how late
a new article reaches Kafka, whether polls between publications cost only a 304, whether
anything is fetched twice. ``Publishing`` holds each site's articles back and releases
them, oldest first, at a steady pace; a released article is dated when it was released,
in its feed entries, sitemap entries and page, as a real newsroom's would be. Briefs go
out the same way, on a timetable of their own: half a turn after an article, at the
same pace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsflow.demo._content import Article, Brief, DemoSite
from newsflow.demo._routes import site


@dataclass(frozen=True)
class Publishing:
    """Each site starts with its ``initial`` oldest articles and publishes another every
    ``every`` seconds; sites take turns, so one of them publishes every
    ``every / number of sites`` seconds. Briefs go out likewise (``initial`` of them there
    from the start), each half a turn after an article."""

    every: float
    initial: int = 2

    def __post_init__(self) -> None:
        if self.every <= 0 or self.initial < 1:
            raise ValueError("every > 0 seconds and initial >= 1 article (a feed needs one)")


@dataclass(frozen=True)
class Release:
    article: Article  # as first written (its own date)
    at: datetime | None  # when it is published on the live site; None: there from the start


@dataclass(frozen=True)
class BriefRelease:
    brief: Brief  # as first written (its own date)
    at: datetime | None  # as Release.at


class Newsroom:
    """When each article and brief of each site goes out, and the sites as they stand at a
    moment."""

    def __init__(self, publishing: Publishing, site_keys: Sequence[str], start: datetime) -> None:
        self.publishing, self.start = publishing, start
        self.releases: dict[str, tuple[Release, ...]] = {}
        self.brief_releases: dict[str, tuple[BriefRelease, ...]] = {}
        turn = publishing.every / max(len(site_keys), 1)
        for k, key in enumerate(site_keys):
            articles = tuple(reversed(site(key).articles))  # oldest first
            times = self._times(len(articles), k * turn)
            self.releases[key] = tuple(map(Release, articles, times))
            briefs = tuple(reversed(site(key).briefs))
            times = self._times(len(briefs), k * turn + turn / 2)
            self.brief_releases[key] = tuple(map(BriefRelease, briefs, times))

    def _times(self, count: int, offset: float) -> list[datetime | None]:
        """Release times of ``count`` items, oldest first: the first ``initial`` there from
        the start, then one every ``every`` seconds, ``offset`` seconds into each period."""
        every, initial = self.publishing.every, self.publishing.initial
        return [
            None
            if i < initial
            else self.start + timedelta(seconds=(i - initial + 1) * every + offset)
            for i in range(count)
        ]

    def site(self, key: str, now: datetime) -> DemoSite:
        """Site ``key`` at ``now``: its published articles and briefs, newest first, each
        dated by its release."""
        articles = [
            r.article if r.at is None else dataclasses.replace(r.article, published=r.at)
            for r in self.releases[key]
            if r.at is None or r.at <= now
        ]
        briefs = [
            r.brief if r.at is None else dataclasses.replace(r.brief, published=r.at)
            for r in self.brief_releases[key]
            if r.at is None or r.at <= now
        ]
        articles.sort(key=lambda a: a.published, reverse=True)
        briefs.sort(key=lambda b: b.published, reverse=True)
        return dataclasses.replace(site(key), articles=tuple(articles), briefs=tuple(briefs))

    def schedule(self) -> list[tuple[str, str, datetime]]:
        """(site key, article path, release time) of every article not there from the
        start, in release order."""
        timed = [
            (key, r.article.path, r.at)
            for key, releases in self.releases.items()
            for r in releases
            if r.at is not None
        ]
        return sorted(timed, key=lambda t: t[2])

    def brief_schedule(self) -> list[tuple[str, str, datetime]]:
        """``schedule`` for the briefs."""
        timed = [
            (key, r.brief.path, r.at)
            for key, releases in self.brief_releases.items()
            for r in releases
            if r.at is not None
        ]
        return sorted(timed, key=lambda t: t[2])

    @property
    def end(self) -> datetime:
        """When the last article or brief goes out."""
        times = [t for _, _, t in self.schedule() + self.brief_schedule()]
        return max(times, default=self.start)
