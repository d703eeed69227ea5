"""What the pipeline should make of the demo sites, derived from the same content files
the pages are rendered from, so end-to-end tests check against it without hard-coding.

Pages are named by ``(site key, path)``: the host and port change with every server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

from newsflow.demo import _pages
from newsflow.demo._content import Article, DemoSite, Entities
from newsflow.demo._routes import ATOM, HTML, RSS, SITES, TEXT, XML, plain_text_path

PageKind = Literal[
    "home", "section", "about", "private", "plain-text", "rss", "atom", "sitemap",
    "news-sitemap", "robots",
]  # fmt: skip
BoilerplateKind = Literal["newsletter", "comments", "footer", "related-heading"]


@dataclasses.dataclass(frozen=True)
class ExpectedArticle:
    site: str
    path: str
    lang: str
    headline: str
    standfirst: str
    caption: str  # of the lead image, shown in a figure (not body)
    author: str
    published: datetime
    paragraphs: tuple[str, ...]  # the body in reading order, each once
    repeated: tuple[str, ...]  # body paragraphs the page prints twice (pull-quote, bad template)
    note: str | None  # a closing line of this copy only, after the body
    related: tuple[str, ...]  # headlines in the page's related-links block (not body)
    entities: Entities
    syndication: str | None  # shared by all copies of one story ("site/slug" of the original)
    translation_of: tuple[str, str] | None  # (site, path) of the same story in another language
    plain_text_path: str | None  # the same article flattened to text/plain, if served


@dataclasses.dataclass(frozen=True)
class ExpectedPage:
    """A served file that is not an HTML article."""

    site: str
    path: str
    kind: PageKind
    content_type: str


@dataclasses.dataclass(frozen=True)
class Boilerplate:
    """A block of text that a site repeats across its pages (``lang``: the edition's)."""

    site: str
    lang: str
    kind: BoilerplateKind
    text: str


@dataclasses.dataclass(frozen=True)
class Expected:
    articles: tuple[ExpectedArticle, ...]
    pages: tuple[ExpectedPage, ...]
    boilerplate: tuple[Boilerplate, ...]
    syndicated: tuple[tuple[tuple[str, str], ...], ...]  # groups of (site, path), original first

    def article(self, site: str, path: str) -> ExpectedArticle:
        return next(a for a in self.articles if (a.site, a.path) == (site, path))


def _article(site: DemoSite, article: Article, paths: dict[str, str]) -> ExpectedArticle:
    repeated = [article.paragraphs[0]] if article.pullquote else []
    if article.repeat_paragraph is not None:
        repeated.append(article.paragraphs[article.repeat_paragraph])
    translated = article.translation_of
    return ExpectedArticle(
        site=article.site,
        path=article.path,
        lang=article.lang,
        headline=article.headline,
        standfirst=article.standfirst,
        caption=article.image.caption,
        author=article.author,
        published=article.published,
        paragraphs=article.paragraphs,
        repeated=tuple(repeated),
        note=article.note,
        related=tuple(a.headline for a in _pages.related(site, article)),
        entities=article.entities,
        syndication=article.syndication,
        translation_of=(translated.split("/")[0], paths[translated]) if translated else None,
        plain_text_path=plain_text_path(article.slug)
        if article.slug in site.config.plain_text
        else None,
    )


def _pages_of(site: DemoSite) -> Iterator[ExpectedPage]:
    config = site.config
    yield ExpectedPage(site.key, "/", "home", HTML)
    for section in config.sections:
        yield ExpectedPage(site.key, _pages.section_path(site, section), "section", HTML)
    for page in config.pages:
        yield ExpectedPage(site.key, page.path, page.kind, HTML)
    for slug in config.plain_text:
        yield ExpectedPage(site.key, plain_text_path(slug), "plain-text", TEXT)
    feeds: list[tuple[str | None, PageKind, str]] = [
        (config.rss, "rss", RSS),
        (config.atom, "atom", ATOM),
        (config.sitemap, "sitemap", XML),
        (config.news_sitemap, "news-sitemap", XML),
        ("/robots.txt", "robots", TEXT),
    ]
    for path, kind, content_type in feeds:
        if path:
            yield ExpectedPage(site.key, path, kind, content_type)


def _boilerplate(site: DemoSite) -> Iterator[Boilerplate]:
    for lang, chrome in site.config.chrome.items():
        blocks: list[tuple[BoilerplateKind, str]] = [
            ("newsletter", chrome.newsletter),
            *(("comments", line) for line in chrome.comments),
            *(("footer", line) for line in chrome.footer),
            ("related-heading", chrome.related_heading),
        ]
        for kind, text in blocks:
            yield Boilerplate(site.key, lang, kind, text)


def build(sites: tuple[DemoSite, ...] = SITES) -> Expected:
    paths = {a.ref: a.path for s in sites for a in s.articles}
    articles = tuple(_article(s, a, paths) for s in sites for a in s.articles)
    groups: dict[str, list[ExpectedArticle]] = {}
    for article in articles:
        if article.syndication:
            groups.setdefault(article.syndication, []).append(article)
    syndicated = tuple(
        tuple(sorted(((a.site, a.path) for a in members), key=lambda page: page != original))
        for ref, members in groups.items()
        for original in [(ref.split("/")[0], paths[ref])]
    )
    return Expected(
        articles=articles,
        pages=tuple(page for s in sites for page in _pages_of(s)),
        boilerplate=tuple(b for s in sites for b in _boilerplate(s)),
        syndicated=syndicated,
    )


EXPECTED = build()
