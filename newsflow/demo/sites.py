"""The demo's three fictional news sites, written for newsflow and served locally.

- ``courier``: The Kessling Courier, a city daily. RSS, a sitemap, a robots.txt with a
  crawl delay and a private area, and two articles also served flattened to text/plain.
- ``ledger``: The Rovena Ledger, a national business and politics paper. Atom, a sitemap
  and a Google News sitemap, JSON-LD in its article pages.
- ``meridian``: Meridian Wire, a news agency with English and German editions. RSS,
  Atom and a sitemap. Its port-strike and seagrass stories are syndicated, with edits, by
  the other two sites.

Each site repeats navigation, footer, a newsletter pitch, a comment widget and related
links across its pages; some pages repeat a paragraph (a pull-quote, a broken template).
Each also has a section of six briefs, short articles served only as text/plain, flattened
the way a crawler stores a page: the site's template (captions printed three times, the
lead twice, a comment widget, an author bio, teasers of other briefs) is longer than the
brief's own text. They have a feed of their own (``briefs-feed`` in ``EXPECTED.pages``,
which ``listings`` declares) and are in the sitemap; ``EXPECTED.briefs`` says which line
of each should go by which rule.
``EXPECTED`` says what the pipeline should make of all this::

    with DemoServer() as server:
        for url in article_urls(server):
            ...

``DemoServer(publishing=Publishing(every=30))`` serves the same sites as they would look
while watched: each starts with a few articles and publishes the rest one by one.
"""

from __future__ import annotations

from newsflow.demo._content import Article, Brief, DemoSite, Entities
from newsflow.demo._expected import (
    EXPECTED,
    Boilerplate,
    Expected,
    ExpectedArticle,
    ExpectedBrief,
    ExpectedPage,
)
from newsflow.demo._live import Newsroom, Publishing
from newsflow.demo._routes import SITES, render, site
from newsflow.demo._server import DemoServer, Request

__all__ = [
    "EXPECTED",
    "SITES",
    "Article",
    "Boilerplate",
    "Brief",
    "DemoServer",
    "DemoSite",
    "Entities",
    "Expected",
    "ExpectedArticle",
    "ExpectedBrief",
    "ExpectedPage",
    "Newsroom",
    "Publishing",
    "Request",
    "article_urls",
    "brief_urls",
    "listings",
    "render",
    "site",
    "url",
]


def url(server: DemoServer, site_key: str, path: str) -> str:
    """Where ``server`` serves ``path`` of a site (``EXPECTED`` names pages by path)."""
    return server.base_url(site_key) + path


def article_urls(server: DemoServer, *, plain_text: bool = False) -> list[str]:
    """Every HTML article ``server`` serves, newest first within each site; with
    ``plain_text``, the text/plain flattenings of some articles as well."""
    urls = [url(server, a.site, a.path) for a in EXPECTED.articles if a.site in server.site_keys]
    if plain_text:
        urls += [
            url(server, a.site, a.plain_text_path)
            for a in EXPECTED.articles
            if a.plain_text_path and a.site in server.site_keys
        ]
    return urls


def brief_urls(server: DemoServer) -> list[str]:
    """Every brief ``server`` serves (text/plain), newest first within each site."""
    return [url(server, b.site, b.path) for b in EXPECTED.briefs if b.site in server.site_keys]


LISTING_KINDS = {
    "rss": "feeds",
    "atom": "feeds",
    "briefs-feed": "feeds",
    "news-sitemap": "sitemaps",
    "sitemap": "sitemaps",
}


def listings(
    server: DemoServer, kinds: tuple[str, ...] = ("rss", "atom", "briefs-feed", "news-sitemap")
) -> dict[str, dict[str, list[str]]]:
    """What a sources file would declare for the served sites: per site key, its
    ``feeds`` and ``sitemaps`` URLs of the given page kinds (see ``EXPECTED.pages``)."""
    out: dict[str, dict[str, list[str]]] = {}
    for key in server.site_keys:
        found: dict[str, list[str]] = {"feeds": [], "sitemaps": []}
        for p in EXPECTED.pages:
            if p.site == key and p.kind in kinds:
                found[LISTING_KINDS[p.kind]].append(url(server, key, p.path))
        out[key] = found
    return out
