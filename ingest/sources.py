"""The sources newsflow watches, declared as data (a YAML file), not as code.

    # sources.yaml
    user_agent: "newsflow/0.1 (+mailto:desk@example.org)"   # optional
    sources:
      - name: Kessling Courier
        feeds: ["https://courier.example/feed.xml"]
      - name: Rovena Ledger
        feeds: ["https://ledger.example/atom.xml"]
        sitemaps: ["https://ledger.example/news-sitemap.xml"]

A source is one publisher; its feeds and sitemaps are polled on their own schedules.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class SourcesError(ValueError):
    """The sources file cannot be used; the message says where and why."""


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    feeds: list[str] = Field(default_factory=list, description="RSS, Atom or JSON Feed URLs")
    sitemaps: list[str] = Field(
        default_factory=list, description="sitemap, sitemap index or Google News sitemap URLs"
    )

    @field_validator("feeds", "sitemaps")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        return [_http_url(u) for u in urls]

    def endpoints(self) -> list[tuple[str, str]]:
        """(kind, url) of everything this source has to poll."""
        return [("feed", u) for u in self.feeds] + [("sitemap", u) for u in self.sitemaps]


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_agent: str | None = None
    sources: list[SourceSpec] = Field(min_length=1)

    def endpoints(self) -> list[tuple[str, str, str]]:
        """(source name, kind, url) of every feed and sitemap, each URL once."""
        seen: set[str] = set()
        out = []
        for source in self.sources:
            for kind, url in source.endpoints():
                if url not in seen:
                    seen.add(url)
                    out.append((source.name, kind, url))
        return out


def load(path: Path) -> SourcesFile:
    """Read and validate a sources file; errors name the file and the offending entry."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SourcesError(f"cannot read {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise SourcesError(f"{path} is not UTF-8 text (byte {err.start:,})") from err
    except yaml.YAMLError as err:
        # One line: the problem and where, not PyYAML's multi-line excerpt of the file.
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SourcesError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from err
    try:
        return SourcesFile.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise SourcesError(f"{path}: {problems}") from err
