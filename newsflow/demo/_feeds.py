"""What a crawler reads before the pages: RSS 2.0 and Atom feeds, sitemaps (plain and
Google News) and robots.txt.

Namespaces are written as literal ``xmlns`` attributes and prefixed tag names rather than
through ``ElementTree.register_namespace``, which would change a process-wide table that
other code in the pipeline serialises with.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from email.utils import format_datetime
from string import Template

from newsflow.demo._content import Article, DemoSite

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


def _updated(site: DemoSite) -> datetime:
    return max(a.published for a in site.articles)


def rss(site: DemoSite, base_url: str) -> bytes:
    root = ET.Element("rss", {"version": "2.0", "xmlns:atom": ATOM, "xmlns:dc": DC})
    channel = ET.SubElement(root, "channel")
    _text(channel, "title", site.name)
    _text(channel, "link", base_url + "/")
    _text(channel, "description", site.config.description)
    _text(channel, "language", site.config.lang)
    _text(channel, "lastBuildDate", format_datetime(_updated(site)))
    ET.SubElement(
        channel,
        "atom:link",
        href=f"{base_url}{site.config.rss}",
        rel="self",
        type="application/rss+xml",
    )
    for article in site.articles:
        _rss_item(ET.SubElement(channel, "item"), site, article, base_url)
    return _xml(root)


def _rss_item(item: ET.Element, site: DemoSite, article: Article, base_url: str) -> None:
    url = base_url + article.path
    _text(item, "title", article.headline)
    _text(item, "link", url)
    _text(item, "guid", url, isPermaLink="true")
    _text(item, "pubDate", format_datetime(article.published))
    _text(item, "dc:creator", article.author)
    _text(item, "category", site.config.sections[article.section])
    _text(item, "description", article.standfirst)


def atom(site: DemoSite, base_url: str) -> bytes:
    root = ET.Element("feed", {"xmlns": ATOM, "xml:lang": site.config.lang})
    _text(root, "id", base_url + "/")
    _text(root, "title", site.name)
    _text(root, "subtitle", site.config.description)
    _text(root, "updated", _updated(site).isoformat())
    ET.SubElement(
        root, "link", rel="self", type="application/atom+xml", href=f"{base_url}{site.config.atom}"
    )
    ET.SubElement(root, "link", rel="alternate", type="text/html", href=base_url + "/")
    for article in site.articles:
        entry = ET.SubElement(root, "entry")
        if article.lang != site.config.lang:
            entry.set("xml:lang", article.lang)
        url = base_url + article.path
        _text(entry, "id", url)
        _text(entry, "title", article.headline)
        ET.SubElement(entry, "link", rel="alternate", type="text/html", href=url)
        _text(entry, "published", article.published.isoformat())
        _text(entry, "updated", article.published.isoformat())
        _text(ET.SubElement(entry, "author"), "name", article.author)
        _text(entry, "summary", article.standfirst)
    return _xml(root)


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
