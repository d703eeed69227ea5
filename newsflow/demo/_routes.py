"""Which path of a demo site serves what. Pure: the same path and base URL give the same
bytes, so tests can render pages without a server and the server only adds HTTP."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from newsflow.demo import _feeds, _pages
from newsflow.demo._content import DemoSite, load_sites

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
XML = "application/xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"

Body = Callable[[str], bytes]  # base URL -> body

SITES: tuple[DemoSite, ...] = load_sites()


def site(key: str) -> DemoSite:
    for candidate in SITES:
        if candidate.key == key:
            return candidate
    raise KeyError(f"no demo site {key!r}; there are {[s.key for s in SITES]}")


def _utf8(render: Callable[[str], str]) -> Body:
    return lambda base_url: render(base_url).encode("utf-8")


def html_pages(demo: DemoSite) -> dict[str, Body]:
    """Every HTML page of a site: home, sections, hand-written pages and articles."""
    listing = _pages.listing_page
    home = demo.chrome(demo.config.lang).home_heading
    pages = {"/": _utf8(functools.partial(listing, demo, demo.articles, heading=home, path="/"))}
    for section, label in demo.config.sections.items():
        listed = tuple(a for a in demo.articles if a.section == section)
        path = _pages.section_path(demo, section)
        pages[path] = _utf8(functools.partial(listing, demo, listed, heading=label, path=path))
    for page in demo.config.pages:
        pages[page.path] = _utf8(functools.partial(_pages.text_page, demo, page))
    for article in demo.articles:
        pages[article.path] = _utf8(functools.partial(_pages.article_page, demo, article))
    return pages


def plain_text_path(slug: str) -> str:
    return f"/text/{slug}.txt"


def sitemap_pages(demo: DemoSite) -> dict[str, datetime | None]:
    """Public HTML pages (robots.txt keeps crawlers out of private ones) and the briefs,
    with their date."""
    dated = {a.path: a.published for a in demo.articles}
    private = {p.path for p in demo.config.pages if p.kind == "private"}
    pages = {path: dated.get(path) for path in html_pages(demo) if path not in private}
    return pages | {b.path: b.published for b in demo.briefs}


def last_modified(demo: DemoSite, path: str) -> datetime | None:
    """The newest date among what the feed or sitemap at ``path`` lists (its
    Last-Modified), or None if ``path`` is not one or lists nothing."""
    config = demo.config
    articles = [a.published for a in demo.articles]
    briefs = [b.published for b in demo.briefs]
    listed = {config.rss: articles, config.atom: articles, config.news_sitemap: articles}
    listed[config.sitemap] = articles + briefs
    if config.briefs:
        listed[config.briefs.feed] = briefs
    return max(listed.get(path, []), default=None)


def briefs_feed_type(demo: DemoSite) -> str:
    return ATOM if demo.brief_template.feed_format == "atom" else RSS


def _same_for_any_base(body: bytes, base_url: str) -> bytes:
    return body


@functools.cache
def routes(key: str) -> dict[str, tuple[str, Body]]:
    """path -> (content type, body builder) for every file a site serves."""
    return site_routes(site(key))


def site_routes(demo: DemoSite) -> dict[str, tuple[str, Body]]:
    """The route table of ``demo`` as given (a live server passes a copy of a site that
    holds only the articles published so far)."""
    config = demo.config
    table = {path: (HTML, body) for path, body in html_pages(demo).items()}
    published = {a.slug for a in demo.articles}
    for slug in (s for s in config.plain_text if s in published):
        text = _pages.plain_text(demo, demo.article(slug)).encode("utf-8")
        table[plain_text_path(slug)] = (TEXT, functools.partial(_same_for_any_base, text))
    for brief in demo.briefs:
        text = _pages.brief_text(demo, brief).encode("utf-8")
        table[brief.path] = (TEXT, functools.partial(_same_for_any_base, text))
    table["/robots.txt"] = (TEXT, functools.partial(_feeds.robots, demo))
    pages = sitemap_pages(demo)
    table[config.sitemap] = (XML, functools.partial(_feeds.sitemap, demo, pages=pages))
    if config.news_sitemap:
        table[config.news_sitemap] = (XML, functools.partial(_feeds.news_sitemap, demo))
    if config.rss:
        table[config.rss] = (RSS, functools.partial(_feeds.rss, demo))
    if config.atom:
        table[config.atom] = (ATOM, functools.partial(_feeds.atom, demo))
    if config.briefs and demo.briefs:
        body = functools.partial(_feeds.briefs_feed, demo)
        table[config.briefs.feed] = (briefs_feed_type(demo), body)
    return table


def render(site_key: str, path: str, base_url: str | None = None) -> tuple[int, str, bytes] | None:
    """``(status, content type, body)`` of ``path`` on a demo site, or None where the site
    has no such page. ``base_url`` is where the site is served (default: its nominal
    origin); absolute links in feeds, sitemaps and canonical tags are built from it."""
    return _render(routes(site_key), site(site_key), path, base_url)


def render_site(
    demo: DemoSite, path: str, base_url: str | None = None
) -> tuple[int, str, bytes] | None:
    """``render`` for a site object rather than a key: the same site with fewer articles,
    say, as a live server shows it before the rest are published."""
    return _render(site_routes(demo), demo, path, base_url)


def _render(
    table: dict[str, tuple[str, Body]], demo: DemoSite, path: str, base_url: str | None
) -> tuple[int, str, bytes] | None:
    route = table.get(path)
    if route is None:
        return None
    content_type, body = route
    return 200, content_type, body((base_url or demo.config.origin).rstrip("/"))
