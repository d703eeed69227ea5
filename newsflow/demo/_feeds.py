"""What a crawler reads before the pages: RSS 2.0 and Atom feeds, sitemaps (plain and
Google News) and robots.txt. The main feeds and the news sitemap list a site's articles;
its briefs have a feed of their own, as a section of a real site often does, and the
plain sitemap lists both.

Namespaces are written as literal ``xmlns`` attributes and prefixed tag names rather than
through ``ElementTree.register_namespace``, which would change a process-wide table that
other code in the pipeline serialises with.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from string import Template

from newsflow.demo._content import DemoSite

ATOM = "http://www.w3.org/2005/Atom"
DC = "http://purl.org/dc/elements/1.1/"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS = "http://www.google.com/schemas/sitemap-news/0.9"


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{text}\n'.encode()


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


@dataclass(frozen=True)
class _Entry:
    """One entry of a feed: an article or a brief."""

    path: str
    title: str
    published: datetime
    author: str
    category: str
    summary: str
    lang: str
    media_type: str  # of the page the entry links to


def _articles(site: DemoSite) -> list[_Entry]:
    sections = site.config.sections
    return [
        _Entry(
            path=a.path,
            title=a.headline,
            published=a.published,
            author=a.author,
            category=sections[a.section],
            summary=a.standfirst,
            lang=a.lang,
            media_type="text/html",
        )
        for a in site.articles
    ]


def _briefs(site: DemoSite) -> list[_Entry]:
    section = site.brief_template.section
    return [
        _Entry(
            path=b.path,
            title=b.headline,
            published=b.published,
            author=b.author,
            category=section,
            summary=b.standfirst,
            lang=b.lang,
            media_type="text/plain",
        )
        for b in site.briefs
    ]


def rss(site: DemoSite, base_url: str) -> bytes:
    """The site's main RSS feed: its articles."""
    path = site.config.rss or ""
    return _rss(site, base_url, path, site.name, site.config.description, _articles(site))


def atom(site: DemoSite, base_url: str) -> bytes:
    """The site's main Atom feed: its articles."""
    path, config = site.config.atom or "", site.config
    return _atom(site, base_url, path, "/", site.name, config.description, _articles(site))


def briefs_feed(site: DemoSite, base_url: str) -> bytes:
    """The briefs section's own feed, in the format the site uses for it."""
    template = site.brief_template
    title = f"{site.name}: {template.section}"
    entries = _briefs(site)
    if template.feed_format == "atom":
        path = template.feed
        return _atom(site, base_url, path, path, title, template.description, entries)
    return _rss(site, base_url, template.feed, title, template.description, entries)


def _updated(entries: list[_Entry]) -> datetime:
    return max(e.published for e in entries)


def _rss(
    site: DemoSite, base_url: str, path: str, title: str, description: str, entries: list[_Entry]
) -> bytes:
    root = ET.Element("rss", {"version": "2.0", "xmlns:atom": ATOM, "xmlns:dc": DC})
    channel = ET.SubElement(root, "channel")
    _text(channel, "title", title)
    _text(channel, "link", base_url + "/")
    _text(channel, "description", description)
    _text(channel, "language", site.config.lang)
    _text(channel, "lastBuildDate", format_datetime(_updated(entries)))
    ET.SubElement(
        channel, "atom:link", href=f"{base_url}{path}", rel="self", type="application/rss+xml"
    )
    for entry in entries:
        _rss_item(ET.SubElement(channel, "item"), entry, base_url)
    return _xml(root)


def _rss_item(item: ET.Element, entry: _Entry, base_url: str) -> None:
    url = base_url + entry.path
    _text(item, "title", entry.title)
    _text(item, "link", url)
    _text(item, "guid", url, isPermaLink="true")
    _text(item, "pubDate", format_datetime(entry.published))
    _text(item, "dc:creator", entry.author)
    _text(item, "category", entry.category)
    _text(item, "description", entry.summary)


def _atom(
    site: DemoSite,
    base_url: str,
    path: str,
    id_path: str,
    title: str,
    subtitle: str,
    entries: list[_Entry],
) -> bytes:
    root = ET.Element("feed", {"xmlns": ATOM, "xml:lang": site.config.lang})
    _text(root, "id", base_url + id_path)
    _text(root, "title", title)
    _text(root, "subtitle", subtitle)
    _text(root, "updated", _updated(entries).isoformat())
    ET.SubElement(root, "link", rel="self", type="application/atom+xml", href=f"{base_url}{path}")
    ET.SubElement(root, "link", rel="alternate", type="text/html", href=base_url + "/")
    for entry in entries:
        _atom_entry(ET.SubElement(root, "entry"), site, entry, base_url)
    return _xml(root)


def _atom_entry(element: ET.Element, site: DemoSite, entry: _Entry, base_url: str) -> None:
    if entry.lang != site.config.lang:
        element.set("xml:lang", entry.lang)
    url = base_url + entry.path
    _text(element, "id", url)
    _text(element, "title", entry.title)
    ET.SubElement(element, "link", rel="alternate", type=entry.media_type, href=url)
    _text(element, "published", entry.published.isoformat())
    _text(element, "updated", entry.published.isoformat())
    _text(ET.SubElement(element, "author"), "name", entry.author)
    _text(element, "summary", entry.summary)


def sitemap(site: DemoSite, base_url: str, pages: dict[str, datetime | None]) -> bytes:
    """Every public page, with ``lastmod`` where the page has a date."""
    root = ET.Element("urlset", xmlns=SITEMAP)
    for path, modified in pages.items():
        url = ET.SubElement(root, "url")
        _text(url, "loc", base_url + path)
        if modified is not None:
            _text(url, "lastmod", modified.isoformat())
    return _xml(root)


def news_sitemap(site: DemoSite, base_url: str) -> bytes:
    root = ET.Element("urlset", {"xmlns": SITEMAP, "xmlns:news": NEWS})
    for article in site.articles:
        url = ET.SubElement(root, "url")
        _text(url, "loc", base_url + article.path)
        news = ET.SubElement(url, "news:news")
        publication = ET.SubElement(news, "news:publication")
        _text(publication, "news:name", site.name)
        _text(publication, "news:language", article.lang)
        _text(news, "news:publication_date", article.published.isoformat())
        _text(news, "news:title", article.headline)
    return _xml(root)


def robots(site: DemoSite, base_url: str) -> bytes:
    return Template(site.config.robots).substitute(base_url=base_url).encode("utf-8")
