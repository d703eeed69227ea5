"""Sitemaps -> the URLs they list: ``urlset`` (pages, with ``lastmod`` and, in Google News
sitemaps, the ``news:`` publication, title and date), ``sitemapindex`` (child sitemaps),
and plain-text sitemaps (one URL per line, which the protocol also allows). Bodies may be
gzip-compressed (recognised by their magic bytes, whatever the URL or headers say).

The protocol's limits are enforced, not trusted: at most 50,000 URLs and 50 MB
uncompressed per file. A larger file is read up to the limit and marked ``truncated``.

XML is parsed by lxml with entities left unresolved, no network, no DTD loading and
libxml2's huge-tree safeguards on; a document that declares entities at all is refused
(``unsafe-xml``): sitemaps have no use for them and they are how XML bombs work.

``parse_sitemap`` never raises on bad input; a ``SitemapError.reason`` is one of
``empty``, ``html``, ``feed``, ``not-a-sitemap``, ``malformed``, ``unsafe-xml``,
``bad-gzip``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urljoin, urlsplit

from lxml import etree  # type: ignore[import-untyped]

__all__ = ["NewsInfo", "Sitemap", "SitemapError", "SitemapUrl", "parse_sitemap"]

MAX_URLS = 50_000
MAX_BYTES = 50 * 1024 * 1024  # uncompressed, as the protocol counts it
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
_YEAR_MONTH = re.compile(r"(\d{4})(?:-(\d{2}))?")
_BARE_AMPERSAND = re.compile(rb"&(?!#\d+;|#x[0-9a-fA-F]+;|[A-Za-z][\w.-]*;)")


@dataclass(frozen=True, slots=True)
class NewsInfo:
    """A Google News sitemap's ``<news:news>``."""

    publication_name: str | None
    publication_language: str | None
    title: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class SitemapUrl:
    url: str
    lastmod: datetime | None  # timezone-aware, UTC
    news: NewsInfo | None = None


@dataclass(frozen=True, slots=True)
class Sitemap:
    kind: Literal["urlset", "sitemapindex", "text"]
    urls: list[SitemapUrl]  # pages (urlset, text) or child sitemaps (sitemapindex)
    truncated: bool = False  # over 50,000 URLs or 50 MB: only the first ones are listed
    skipped: int = 0  # entries without a usable http(s) loc
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SitemapError:
    reason: str
    detail: str


def parse_sitemap(body: bytes, url: str) -> Sitemap | SitemapError:
    """Read a sitemap fetched from ``url`` (relative locs are resolved against it)."""
    inflated = _decompress(body)
    if isinstance(inflated, SitemapError):
        return inflated
    data = inflated.removeprefix(UTF8_BOM).lstrip()
    cut = _Cut(truncated=len(data) > MAX_BYTES)
    if cut.truncated:
        data = data[:MAX_BYTES]
        cut.warnings.append(f"larger than {MAX_BYTES} bytes: read up to the limit")
    if not data:
        return SitemapError("empty", "the sitemap has no content")
    if not data.startswith(b"<"):
        return _parse_text(data, cut)
    if re.search(rb"<!ENTITY", _prolog(data)):
        return SitemapError("unsafe-xml", "entity declarations refused")
    return _parse_xml(data, url, cut)


@dataclass(slots=True)
class _Cut:
    """What parsing noticed along the way: truncation and recovered errors."""

    truncated: bool = False
    warnings: list[str] = field(default_factory=list)


def _decompress(body: bytes) -> bytes | SitemapError:
    """The uncompressed bytes, one more than MAX_BYTES at most (a gzip bomb stops there)."""
    if not body.startswith(GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    try:
        return inflater.decompress(body, MAX_BYTES + 1)
    except zlib.error as error:
        return SitemapError("bad-gzip", str(error))


def _prolog(data: bytes) -> bytes:
    root = re.search(rb"<[A-Za-z_]", data)
    return data[: root.start()] if root else data


# -- XML ---------------------------------------------------------------------------------


def _xml_parser(recover: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=recover,
    )


def _parse_xml(data: bytes, url: str, cut: _Cut) -> Sitemap | SitemapError:
    try:
        root = etree.fromstring(data, parser=_xml_parser(recover=False))
    except etree.XMLSyntaxError as error:
        root = _recover(data)
        if root is None:
            return SitemapError("malformed", str(error))
        cut.warnings.append(f"malformed XML, read what could be recovered: {error}")
    kind = _local(root).lower()
    if kind not in ("urlset", "sitemapindex"):
        return _wrong_root(kind)
    child = "url" if kind == "urlset" else "sitemap"
    return _collect(
        (_xml_entry(element, url) for element in root if _local(element) == child),
        "urlset" if kind == "urlset" else "sitemapindex",
        cut,
    )


def _recover(data: bytes) -> etree._Element | None:
    """Real sitemaps break in small ways. The commonest, a raw & in a query string, is
    escaped (libxml2's recovery would drop the parameter after it); for the rest, such as
    a file cut off at the size limit, recovery mode reads what comes before the damage."""
    escaped = _BARE_AMPERSAND.sub(b"&amp;", data)
    for parser in (_xml_parser(recover=False), _xml_parser(recover=True)):
        try:
            root: etree._Element | None = etree.fromstring(escaped, parser=parser)
        except etree.XMLSyntaxError:
            continue
        if root is not None:
            return root
    return None


def _wrong_root(kind: str) -> SitemapError:
    if kind == "html":
        return SitemapError("html", "an HTML page, not a sitemap")
    if kind in ("rss", "feed", "rdf"):
        return SitemapError("feed", f"an RSS/Atom feed (<{kind}>): read it with parse_feed")
    return SitemapError("not-a-sitemap", f"root element <{kind}>")


def _xml_entry(element: etree._Element, base: str) -> SitemapUrl | None:
    fields = {_local(child): child for child in element}
    loc = _absolute(_text(fields.get("loc")), base)
    if loc is None:
        return None
    news = fields.get("news")
    return SitemapUrl(
        url=loc,
        lastmod=_w3c_datetime(_text(fields.get("lastmod"))),
        news=_news_info(news) if news is not None else None,
    )


def _news_info(news: etree._Element) -> NewsInfo:
    fields = {_local(child): child for child in news}
    publication = fields.get("publication")
    about = {} if publication is None else {_local(child): child for child in publication}
    return NewsInfo(
        publication_name=_text(about.get("name")),
        publication_language=_text(about.get("language")),
        title=_text(fields.get("title")),
        published_at=_w3c_datetime(_text(fields.get("publication_date"))),
    )


def _local(element: etree._Element) -> str:
    # Local names only: sitemaps come with the 0.9 namespace, Google's old 0.84 one, or none.
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


# -- plain text --------------------------------------------------------------------------


def _parse_text(data: bytes, cut: _Cut) -> Sitemap | SitemapError:
    text = data.decode("utf-8", errors="replace")  # the protocol requires UTF-8
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # The first line decides: a text sitemap opens with a URL, robots.txt and prose do not.
    if not lines or urlsplit(lines[0]).scheme not in ("http", "https"):
        return SitemapError("not-a-sitemap", "neither XML nor a list of URLs")
    return _collect((_text_entry(line) for line in lines), "text", cut)


def _text_entry(line: str) -> SitemapUrl | None:
    # Full URLs only: a line of prose would otherwise resolve into a URL of the site.
    parts = urlsplit(line)
    ok = parts.scheme in ("http", "https") and parts.hostname and " " not in line
    return SitemapUrl(url=line, lastmod=None) if ok else None


# -- shared ------------------------------------------------------------------------------


def _collect(
    entries: Iterator[SitemapUrl | None],
    kind: Literal["urlset", "sitemapindex", "text"],
    cut: _Cut,
) -> Sitemap:
    urls: list[SitemapUrl] = []
    skipped = 0
    for entry in entries:
        if entry is None:
            skipped += 1
        elif len(urls) == MAX_URLS:
            cut.truncated = True
            cut.warnings.append(f"more than {MAX_URLS} URLs: the rest ignored")
            break
        else:
            urls.append(entry)
    return Sitemap(kind, urls, cut.truncated, skipped, cut.warnings)


def _absolute(loc: str | None, base: str) -> str | None:
    if not loc:
        return None
    # Locs are absolute nearly always: skipping urljoin halves the time of a full sitemap.
    absolute = loc if loc.startswith(("https://", "http://")) else urljoin(base, loc)
    parts = urlsplit(absolute)
    return absolute if parts.scheme in ("http", "https") and parts.hostname else None


def _w3c_datetime(value: str | None) -> datetime | None:
    """A W3C datetime (YYYY, YYYY-MM, YYYY-MM-DD or a full ISO 8601 time) in UTC; a time
    without a zone is taken as UTC."""
    if not value:
        return None
    partial = _YEAR_MONTH.fullmatch(value)
    try:
        if partial:
            year, month = partial.groups()
            moment = datetime(int(year), int(month or 1), 1)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
