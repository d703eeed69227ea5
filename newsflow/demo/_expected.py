"""What the pipeline should make of the demo sites, derived from the same content files
the pages are rendered from, so end-to-end tests check against it without hard-coding.

Pages are named by ``(site key, path)``: the host and port change with every server.

For a brief (a short article served only as flattened text, template and all), what the
pipeline should keep is its own text: the title, the standfirst, the credited caption,
the byline and ``paragraphs``; every other line is listed under the rule that should
remove it (``ExpectedBrief``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

from newsflow.demo import _pages
from newsflow.demo._content import Article, Brief, DemoSite, Entities
from newsflow.demo._routes import (
    ATOM,
    HTML,
    RSS,
    SITES,
    TEXT,
    XML,
    briefs_feed_type,
    plain_text_path,
)

PageKind = Literal[
    "home", "section", "about", "private", "plain-text", "brief", "rss", "atom",
    "briefs-feed", "sitemap", "news-sitemap", "robots",
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
class ExpectedBrief:
    """A brief, served as ``text/plain`` at ``path``, and what the pipeline should make of
    its text. Each paragraph of the text is in exactly one of: ``headline`` (the first
    line, the title), ``standfirst``, ``credited_caption``, ``byline``, ``paragraphs``, or
    one of the five template fields, which list every printing a rule should remove (a
    line printed twice there is listed twice).

    Own text, to be kept: ``standfirst`` (a paragraph of the text, but not listed in
    ``paragraphs``), ``credited_caption`` (the fullest of the caption's three printings)
    and ``paragraphs``, the body in reading order, each once: the lead first, in its
    fuller form (where the lead's second printing carries an edit, a clause added, that
    second printing is the one listed and the one to survive; the shorter first printing
    is in ``near_repeats``), then the rest. The byline stays too (no rule is for it).

    Template, by the rule that should remove it:

    - ``near_repeats``: what keeping the fuller of two near-equal lines removes: both
      uncredited printings of the caption, and the lead's shorter first printing where
      there is one. (Where the two uncredited printings are equal, an exact-repeat rule
      run first takes the second of them; either way both go.)
    - ``exact_repeats``: the lead's second printing where it is the same as the first.
    - ``short_repeats``: the comment widget's heading, printed again over the widget's
      second and third lines (its first printing is site template).
    - ``site_template``: lines the site prints on many briefs: the same on every brief
      (the widget's heading, first printing, and its three lines; the "read more" line;
      the "more from" heading) or on every brief of one author (the bio).
    - ``teasers``: the "more from" block's headline, standfirst and caption of each of
      three other briefs of the site (``teased``: their paths), in that order.
    """

    site: str
    path: str
    lang: str
    headline: str
    standfirst: str
    caption: str  # as printed twice, without credit
    credited_caption: str  # the third printing: the caption and the photographer's credit
    author: str
    published: datetime
    byline: str  # author and date, one line
    paragraphs: tuple[str, ...]
    near_repeats: tuple[str, ...]
    exact_repeats: tuple[str, ...]
    short_repeats: tuple[str, ...]
    site_template: tuple[str, ...]
    teasers: tuple[str, ...]
    teased: tuple[str, ...]  # paths of the briefs the teasers come from, on the same site
    entities: Entities

    @property
    def template(self) -> tuple[str, ...]:
        """Every paragraph of the text that the rules should remove."""
        return (
            self.near_repeats
            + self.exact_repeats
            + self.short_repeats
            + self.site_template
            + self.teasers
        )


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
    briefs: tuple[ExpectedBrief, ...] = ()  # newest first within each site

    def article(self, site: str, path: str) -> ExpectedArticle:
        return next(a for a in self.articles if (a.site, a.path) == (site, path))

    def brief(self, site: str, path: str) -> ExpectedBrief:
        return next(b for b in self.briefs if (b.site, b.path) == (site, path))


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


def _brief(site: DemoSite, brief: Brief) -> ExpectedBrief:
    template = site.brief_template
    edited = brief.lead_first_copy != brief.lead
    heading = template.comments_heading
    teased = _pages.teased(site, brief)
    return ExpectedBrief(
        site=brief.site,
        path=brief.path,
        lang=brief.lang,
        headline=brief.headline,
        standfirst=brief.standfirst,
        caption=brief.caption,
        credited_caption=brief.credited_caption,
        author=brief.author,
        published=brief.published,
        byline=_pages.brief_byline(site, brief),
        paragraphs=brief.paragraphs,
        near_repeats=(brief.caption, brief.caption) + ((brief.lead_first_copy,) if edited else ()),
        exact_repeats=() if edited else (brief.lead,),
        short_repeats=(heading, heading),
        site_template=(
            heading,
            *template.comments,
            template.bios[brief.author],
            template.read_more.format(section=template.section),
            template.more_from.format(site=site.name),
        ),
        teasers=tuple(text for b in teased for text in (b.headline, b.standfirst, b.caption)),
        teased=tuple(b.path for b in teased),
        entities=brief.entities,
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
    for brief in site.briefs:
        yield ExpectedPage(site.key, brief.path, "brief", TEXT)
    if config.briefs and site.briefs:
        yield ExpectedPage(site.key, config.briefs.feed, "briefs-feed", briefs_feed_type(site))
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
        briefs=tuple(_brief(s, b) for s in sites for b in s.briefs),
    )


EXPECTED = build()
