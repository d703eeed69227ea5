"""The demo sites' content, read once from the files under ``sites/``.

Each site is a folder: ``site.yaml`` (name, URL patterns, feeds, robots.txt and the
boilerplate of each language edition), ``page.html`` and ``article.html`` (the site's own
templates) and ``articles/*.yaml``, one file per article. A syndicated copy does not repeat
the original's text: it names it (``syndicated_from: site/slug``) and lists its edits, so
the differences between copies are written down in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import resources
from importlib.resources.abc import Traversable
from string import Template
from typing import Literal

import yaml
from pydantic import AwareDatetime, ConfigDict, TypeAdapter
from pydantic.dataclasses import dataclass

# Unknown keys are typos in hand-written files: fail loudly instead of ignoring them.
_FILE = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_FILE)
class Entities:
    """Names the text mentions verbatim, in the form a tagger should find them."""

    persons: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()
    places: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return self.persons + self.organisations + self.places


@dataclass(frozen=True, config=_FILE)
class Image:
    src: str
    caption: str


@dataclass(frozen=True, config=_FILE)
class Edits:
    """How a syndicated copy differs from its original. Indices are the original's."""

    replace: tuple[tuple[str, str], ...] = ()
    drop: tuple[int, ...] = ()
    insert_after: Mapping[int, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, config=_FILE)
class ArticleFile:
    """One ``articles/<slug>.yaml``: an original (with ``body``) or a syndicated copy."""

    headline: str
    standfirst: str
    author: str
    published: AwareDatetime
    section: str
    image: Image
    body: tuple[str, ...] = ()
    entities: Entities | None = None  # a copy inherits its original's
    lang: str | None = None  # the site's language unless given
    pullquote: bool = False  # the template repeats the lead as a pull-quote
    repeat_paragraph: int | None = None  # a broken template prints this paragraph twice
    note: str | None = None  # a closing line of this copy only ("first published by ...")
    syndicated_from: str | None = None
    edits: Edits = dataclasses.field(default_factory=Edits)
    translation_of: str | None = None


@dataclass(frozen=True, config=_FILE)
class Chrome:
    """The boilerplate of one language edition of a site."""

    nav: tuple[tuple[str, str], ...]  # (label, path)
    newsletter: str
    comments: tuple[str, ...]
    footer: tuple[str, ...]
    related_heading: str
    home_heading: str
    byline_prefix: str = "By"
    months: tuple[str, ...] = (
        *("January", "February", "March", "April", "May", "June", "July"),
        *("August", "September", "October", "November", "December"),
    )
    date_format: str = "{day} {month} {year}, {time}"
    more_from: str = "More from {site}"


@dataclass(frozen=True, config=_FILE)
class Page:
    """A hand-written page that is not an article (about us, a private area)."""

    path: str
    kind: Literal["about", "private"]
    title: str
    description: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True, config=_FILE)
class SiteConfig:
    """One ``site.yaml``."""

    name: str
    origin: str  # the site's nominal address, used when rendering outside a server
    lang: str
    tagline: str
    description: str
    article_path: str  # str.format pattern: {section} {slug} {lang} {yyyy} {mm} {dd}
    section_path: str  # str.format pattern: {section} {lang}
    sections: Mapping[str, str]
    chrome: Mapping[str, Chrome]  # language -> boilerplate
    pages: tuple[Page, ...]
    robots: str  # $base_url is replaced by the server's address
    rss: str | None = None
    atom: str | None = None
    sitemap: str = "/sitemap.xml"
    news_sitemap: str | None = None
    plain_text: tuple[str, ...] = ()  # slugs also served flattened, at /text/<slug>.txt
    newsletter_inline_after: int | None = None  # paragraph the pitch follows, in the body
    json_ld: bool = False


@dataclasses.dataclass(frozen=True)
class Article:
    """An article as its site publishes it, syndication edits already applied."""

    site: str
    slug: str
    path: str
    lang: str
    section: str
    headline: str
    standfirst: str
    author: str
    published: datetime
    image: Image
    paragraphs: tuple[str, ...]
    entities: Entities
    pullquote: bool
    repeat_paragraph: int | None
    note: str | None
    syndication: str | None  # "site/slug" of the original, on the original too
    translation_of: str | None

    @property
    def ref(self) -> str:
        return f"{self.site}/{self.slug}"


@dataclasses.dataclass(frozen=True)
class DemoSite:
    key: str
    config: SiteConfig
    articles: tuple[Article, ...]  # newest first
    page_template: Template
    article_template: Template

    @property
    def name(self) -> str:
        return self.config.name

    def article(self, slug: str) -> Article:
        return next(a for a in self.articles if a.slug == slug)

    def chrome(self, lang: str) -> Chrome:
        return self.config.chrome[lang]


_SITE = TypeAdapter(SiteConfig)
_ARTICLE = TypeAdapter(ArticleFile)


# libyaml's loader where PyYAML was built with it: several times faster at import time.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(file: Traversable) -> object:
    return yaml.load(file.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader


def _read_articles(folder: Traversable) -> dict[str, ArticleFile]:
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return {f.name.removesuffix(".yaml"): _ARTICLE.validate_python(_yaml(f)) for f in files}


def load_sites(root: Traversable | None = None) -> tuple[DemoSite, ...]:
    """Every site under ``root`` (the packaged ``sites/`` folder), in folder-name order."""
    root = root or resources.files(__package__) / "sites"
    folders = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.name)
    configs = {d.name: _SITE.validate_python(_yaml(d / "site.yaml")) for d in folders}
    files = {
        f"{d.name}/{slug}": data
        for d in folders
        for slug, data in _read_articles(d / "articles").items()
    }
    originals = {data.syndicated_from for data in files.values()} - {None}
    articles = [_resolve(ref, data, files, configs, originals) for ref, data in files.items()]
    return tuple(
        DemoSite(
            key=d.name,
            config=configs[d.name],
            articles=_newest_first(a for a in articles if a.site == d.name),
            page_template=Template((d / "page.html").read_text(encoding="utf-8")),
            article_template=Template((d / "article.html").read_text(encoding="utf-8")),
        )
        for d in folders
    )


def _newest_first(articles: Iterable[Article]) -> tuple[Article, ...]:
    return tuple(sorted(articles, key=lambda a: (a.published, a.slug), reverse=True))


def _resolve(
    ref: str,
    data: ArticleFile,
    files: Mapping[str, ArticleFile],
    configs: Mapping[str, SiteConfig],
    originals: set[str | None],
) -> Article:
    site, slug = ref.split("/")
    config = configs[site]
    paragraphs, entities = _text(ref, data, files)
    _check(ref, data, paragraphs, files, config)
    lang = data.lang or config.lang
    return Article(
        site=site,
        slug=slug,
        path=_article_path(config, data, slug, lang),
        lang=lang,
        section=data.section,
        headline=data.headline,
        standfirst=data.standfirst,
        author=data.author,
        published=data.published,
        image=data.image,
        paragraphs=paragraphs,
        entities=entities,
        pullquote=data.pullquote,
        repeat_paragraph=data.repeat_paragraph,
        note=data.note,
        syndication=data.syndicated_from or (ref if ref in originals else None),
        translation_of=data.translation_of,
    )


def _text(
    ref: str, data: ArticleFile, files: Mapping[str, ArticleFile]
) -> tuple[tuple[str, ...], Entities]:
    """The paragraphs and entities of an article: its own, or its original's, edited."""
    if not data.syndicated_from:
        original = data
        paragraphs = data.body
    else:
        original = files.get(data.syndicated_from, data)
        if original is data or original.syndicated_from:
            raise ValueError(f"{ref}: {data.syndicated_from!r} is not an original article")
        paragraphs = apply_edits(original.body, data.edits, ref)
    entities = data.entities or original.entities
    if not paragraphs or entities is None:
        raise ValueError(f"{ref}: no body or no entities")
    return paragraphs, entities


def _check(
    ref: str,
    data: ArticleFile,
    paragraphs: tuple[str, ...],
    files: Mapping[str, ArticleFile],
    config: SiteConfig,
) -> None:
    """Mistakes in an article file that would otherwise render silently wrong."""
    if data.section not in config.sections:
        raise ValueError(f"{ref}: unknown section {data.section!r}")
    if data.translation_of and data.translation_of not in files:
        raise ValueError(f"{ref}: translates {data.translation_of!r}, which does not exist")
    if (data.repeat_paragraph or 0) >= len(paragraphs):
        raise ValueError(f"{ref}: repeat_paragraph {data.repeat_paragraph} is past the end")


def _article_path(config: SiteConfig, data: ArticleFile, slug: str, lang: str) -> str:
    day = data.published
    return config.article_path.format(
        section=data.section,
        slug=slug,
        lang=lang,
        yyyy=f"{day.year:04d}",
        mm=f"{day.month:02d}",
        dd=f"{day.day:02d}",
    )


def apply_edits(body: tuple[str, ...], edits: Edits, ref: str) -> tuple[str, ...]:
    """The original's paragraphs with a copy's edits: replacements everywhere, then the
    dropped paragraphs left out and the new ones put after the paragraph they follow."""
    if not set(edits.drop) | set(edits.insert_after) <= set(range(len(body))):
        raise ValueError(f"{ref}: an edit names a paragraph the original does not have")
    text = "\n\n".join(body)
    for old, new in edits.replace:
        if old not in text:
            raise ValueError(f"{ref}: replacement target {old!r} is not in the original")
        text = text.replace(old, new)
    edited = text.split("\n\n")
    out: list[str] = []
    for index, paragraph in enumerate(edited):
        if index not in edits.drop:
            out.append(paragraph)
        if index in edits.insert_after:
            out.append(edits.insert_after[index])
    return tuple(out)
