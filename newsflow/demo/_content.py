"""The demo sites' content, read once from the files under ``sites/``.

Each site is a folder: ``site.yaml`` (name, URL patterns, feeds, robots.txt and the
boilerplate of each language edition), ``page.html`` and ``article.html`` (the site's own
templates) and ``articles/*.yaml``, one file per article. A syndicated copy does not repeat
the original's text: it names it (``syndicated_from: site/slug``) and lists its edits, so
the differences between copies are written down in one place.

A site may also have a section of briefs (``briefs/*.yaml``, with the template strings
around them under ``briefs:`` in ``site.yaml``): short articles served only as the plain
text a crawler stores when it flattens a page, the whole site template inside.
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
class BriefsConfig:
    """The ``briefs:`` key of a ``site.yaml``: the section of briefs and the template a
    crawler's flattening of their pages keeps around each brief's own text."""

    section: str  # the section's name, as the "read more" line gives it
    description: str  # of the section's feed
    path: str  # str.format pattern: {slug} {lang} {yyyy} {mm} {dd}
    feed: str  # the section's own feed (the site's main feeds list articles only)
    feed_format: Literal["rss", "atom"]
    comments_heading: str  # the comment widget's heading, printed over each line below
    comments: tuple[str, str, str]
    bios: Mapping[str, str]  # author -> the author box under their briefs
    photographers: Mapping[str, str]  # key -> "Name Surname/Agency"
    credit: str = "Photo: {photographer}"  # appended to the caption's third printing
    read_more: str = "Read More On {section}"
    more_from: str = "More from {site}"  # heading of the teasers of three other briefs


@dataclass(frozen=True, config=_FILE)
class BriefFile:
    """One ``briefs/<slug>.yaml``."""

    headline: str
    standfirst: str
    author: str  # a key of the site's ``briefs.bios``
    published: AwareDatetime
    caption: str
    photographer: str  # a key of the site's ``briefs.photographers``
    lead: str  # the lead's fuller form: its second printing
    body: tuple[str, ...]  # the rest, after the lead
    entities: Entities
    lead_first_copy: str | None = None  # the lead's first printing, if shorter (an edit)


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
    briefs: BriefsConfig | None = None


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
class Brief:
    """A brief as its site publishes it. Its own text: headline, standfirst, caption,
    ``paragraphs``; the rest of its page is template."""

    site: str
    slug: str
    path: str
    lang: str
    headline: str
    standfirst: str
    author: str
    published: datetime
    caption: str
    credited_caption: str  # the caption with the photographer's credit appended
    lead: str  # the fuller form, printed second
    lead_first_copy: str  # printed first: the lead itself, or a shorter form of it
    body: tuple[str, ...]  # after the lead
    entities: Entities

    @property
    def paragraphs(self) -> tuple[str, ...]:
        return (self.lead, *self.body)

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
    briefs: tuple[Brief, ...] = ()  # newest first

    @property
    def name(self) -> str:
        return self.config.name

    def article(self, slug: str) -> Article:
        return next(a for a in self.articles if a.slug == slug)

    def chrome(self, lang: str) -> Chrome:
        return self.config.chrome[lang]

    @property
    def brief_template(self) -> BriefsConfig:
        if self.config.briefs is None:
            raise ValueError(f"{self.key} has no briefs section")
        return self.config.briefs


_SITE = TypeAdapter(SiteConfig)
_ARTICLE = TypeAdapter(ArticleFile)
_BRIEF = TypeAdapter(BriefFile)


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
            briefs=_read_briefs(d, configs[d.name]),
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


# -- briefs ------------------------------------------------------------------------------


def _read_briefs(folder: Traversable, config: SiteConfig) -> tuple[Brief, ...]:
    """The site's briefs, newest first; none without a ``briefs:`` key and folder."""
    files = folder / "briefs"
    if not files.is_dir():
        return ()
    if config.briefs is None:
        raise ValueError(f"{folder.name}: briefs/ but no briefs: key in site.yaml")
    found = sorted((f for f in files.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    briefs = (
        _brief(folder.name, f.name.removesuffix(".yaml"), _BRIEF.validate_python(_yaml(f)), config)
        for f in found
    )
    return tuple(sorted(briefs, key=lambda b: (b.published, b.slug), reverse=True))


def _brief(site: str, slug: str, data: BriefFile, config: SiteConfig) -> Brief:
    assert config.briefs is not None
    template = config.briefs
    ref = f"{site}/{slug}"
    if data.author not in template.bios:
        raise ValueError(f"{ref}: author {data.author!r} has no bio in site.yaml")
    if data.photographer not in template.photographers:
        raise ValueError(f"{ref}: unknown photographer {data.photographer!r}")
    if not 1 <= len(data.body) <= 3:
        raise ValueError(f"{ref}: a brief has 1 to 3 paragraphs after its lead")
    first = data.lead_first_copy
    if first is not None and (first == data.lead or len(first) >= len(data.lead)):
        raise ValueError(f"{ref}: lead_first_copy must be a shorter form of the lead")
    day, lang = data.published, config.lang
    credit = template.credit.format(photographer=template.photographers[data.photographer])
    return Brief(
        site=site,
        slug=slug,
        path=template.path.format(
            slug=slug, lang=lang, yyyy=f"{day.year:04d}", mm=f"{day.month:02d}", dd=f"{day.day:02d}"
        ),
        lang=lang,
        headline=data.headline,
        standfirst=data.standfirst,
        author=data.author,
        published=data.published,
        caption=data.caption,
        credited_caption=f"{data.caption} {credit}",
        lead=data.lead,
        lead_first_copy=first or data.lead,
        body=data.body,
        entities=data.entities,
    )
