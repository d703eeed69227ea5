"""The demo sites as they look while they are being watched: articles appear one by one.

A static site tells a monitor nothing about what matters once it runs for hours: how late
a new article reaches Kafka, whether polls between publications cost only a 304, whether
anything is fetched twice. ``Publishing`` holds each site's articles back and releases
them, oldest first, at a steady pace; a released article is dated when it was released,
in its feed entries, sitemap entries and page, as a real newsroom's would be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsflow.demo._content import Article, DemoSite
from newsflow.demo._routes import site


@dataclass(frozen=True)
class Publishing:
    """Each site starts with its ``initial`` oldest articles and publishes another every
    ``every`` seconds; sites take turns, so one of them publishes every
    ``every / number of sites`` seconds."""

    every: float
    initial: int = 2

    def __post_init__(self) -> None:
        if self.every <= 0 or self.initial < 1:
            raise ValueError("every > 0 seconds and initial >= 1 article (a feed needs one)")


@dataclass(frozen=True)
class Release:
    article: Article  # as first written (its own date)
    at: datetime | None  # when it is published on the live site; None: there from the start


class Newsroom:
    """When each article of each site goes out, and the sites as they stand at a moment."""

    def __init__(self, publishing: Publishing, site_keys: Sequence[str], start: datetime) -> None:
        self.publishing, self.start = publishing, start
        self.releases: dict[str, tuple[Release, ...]] = {}
        turn = publishing.every / max(len(site_keys), 1)
        for k, key in enumerate(site_keys):
            oldest_first = tuple(reversed(site(key).articles))
            self.releases[key] = tuple(
                Release(
                    article,
                    None
                    if i < publishing.initial
                    else start
                    + timedelta(seconds=(i - publishing.initial + 1) * publishing.every + k * turn),
                )
                for i, article in enumerate(oldest_first)
            )

    def site(self, key: str, now: datetime) -> DemoSite:
        """Site ``key`` at ``now``: its published articles, newest first, each dated by
        its release."""
        out = [
            r.article if r.at is None else dataclasses.replace(r.article, published=r.at)
            for r in self.releases[key]
            if r.at is None or r.at <= now
        ]
        out.sort(key=lambda a: a.published, reverse=True)
        return dataclasses.replace(site(key), articles=tuple(out))

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

    @property
    def end(self) -> datetime:
        """When the last article goes out."""
        times = [t for _, _, t in self.schedule()]
        return max(times, default=self.start)
