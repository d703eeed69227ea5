"""ingest.sitemaps: crafted sitemaps for each rule and each error (shared data has none),
and the demo sites' sitemaps and Google News sitemap."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import sitemaps
from ingest.sitemaps import Sitemap, SitemapError, parse_sitemap
from newsflow.demo.sites import EXPECTED, render

SITEMAP_URL = "https://news.example/sitemaps/sitemap.xml"
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS_NS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def parsed(body: bytes) -> Sitemap:
    sitemap = parse_sitemap(body, SITEMAP_URL)
    assert isinstance(sitemap, Sitemap), sitemap
    return sitemap


def failed(body: bytes) -> SitemapError:
    error = parse_sitemap(body, SITEMAP_URL)
    assert isinstance(error, SitemapError), error
    return error


def urlset(urls: str, namespaces: str = NS) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {namespaces}>{urls}</urlset>'.encode()


# -- the demo sites ----------------------------------------------------------------------


def _demo(site: str, path: str) -> Sitemap:
    result = render(site, path)
    assert result is not None
    return parsed(result[2])


@pytest.mark.parametrize("site", sorted({p.site for p in EXPECTED.pages if p.kind == "sitemap"}))
def test_demo_sitemaps_list_every_public_page(site: str) -> None:
    sitemap = _demo(site, "/sitemap.xml")
    assert (sitemap.kind, sitemap.truncated, sitemap.skipped, sitemap.warnings) == (
        "urlset",
        False,
        0,
        [],
    )
    paths = {urlsplit(u.url).path: u for u in sitemap.urls}
    public = {p.path for p in EXPECTED.pages if p.site == site and p.kind in ("home", "section")}
    assert public <= set(paths)
    for article in (a for a in EXPECTED.articles if a.site == site):
        assert paths[article.path].lastmod == article.published  # the demo never edits


def test_demo_google_news_sitemap() -> None:
    (page,) = [p for p in EXPECTED.pages if p.kind == "news-sitemap"]
    sitemap = _demo(page.site, page.path)
    expected = {a.path: a for a in EXPECTED.articles if a.site == page.site}
    assert {urlsplit(u.url).path for u in sitemap.urls} == set(expected)
    for entry in sitemap.urls:
        article = expected[urlsplit(entry.url).path]
        assert entry.news is not None
        assert (entry.news.title, entry.news.published_at) == (article.headline, article.published)
        assert (entry.news.publication_name, entry.news.publication_language) == (
            "The Rovena Ledger",
            "en",
        )


# -- crafted sitemaps --------------------------------------------------------------------


def test_urlset_with_lastmod_in_every_w3c_precision() -> None:
    sitemap = parsed(
        urlset(
            "<url><loc> https://news.example/a </loc><lastmod>2024-05-01T10:00:00+02:00</lastmod>"
            "<changefreq>daily</changefreq><priority>0.8</priority></url>"
            "<url><loc>https://news.example/b</loc><lastmod>2024-05-01</lastmod></url>"
            "<url><loc>https://news.example/c</loc><lastmod>2024-05</lastmod></url>"
            "<url><loc>https://news.example/d</loc><lastmod>2024</lastmod></url>"
            "<url><loc>https://news.example/e</loc><lastmod>2024-05-01T10:00:00.5Z</lastmod></url>"
            "<url><loc>https://news.example/f</loc><lastmod>yesterday</lastmod></url>"
        )
    )
    assert [u.url for u in sitemap.urls] == [f"https://news.example/{c}" for c in "abcdef"]
    assert [u.lastmod for u in sitemap.urls] == [
        datetime(2024, 5, 1, 8, tzinfo=UTC),
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC),
        None,
    ]


def test_sitemap_index() -> None:
    body = (
        f"<sitemapindex {NS}><sitemap><loc>https://news.example/s1.xml.gz</loc>"
        "<lastmod>2024-05-01T00:00:00Z</lastmod></sitemap>"
        "<sitemap><loc>s2.xml</loc></sitemap></sitemapindex>"
    ).encode()
    sitemap = parsed(body)
    assert sitemap.kind == "sitemapindex"
    assert [(u.url, u.lastmod) for u in sitemap.urls] == [
        ("https://news.example/s1.xml.gz", datetime(2024, 5, 1, tzinfo=UTC)),
        ("https://news.example/sitemaps/s2.xml", None),
    ]


def test_google_news_entry() -> None:
    sitemap = parsed(
        urlset(
            "<url><loc>https://news.example/a</loc><news:news><news:publication>"
            "<news:name>The Example</news:name><news:language>de</news:language>"
            "</news:publication><news:publication_date>2024-05-01T10:00:00+02:00"
            "</news:publication_date><news:title>Titel &amp; mehr</news:title>"
            "</news:news></url>",
            f"{NS} {NEWS_NS}",
        )
    )
    (entry,) = sitemap.urls
    assert entry.news == sitemaps.NewsInfo(
        publication_name="The Example",
        publication_language="de",
        title="Titel & mehr",
        published_at=datetime(2024, 5, 1, 8, tzinfo=UTC),
    )


def test_no_namespace_and_unusable_locs() -> None:
    sitemap = parsed(
        b"<urlset><url><loc>/relative</loc></url><url><loc>ftp://x/y</loc></url>"
        b"<url></url><url><loc>javascript:alert(1)</loc></url></urlset>"
    )
    assert [u.url for u in sitemap.urls] == ["https://news.example/relative"]
    assert sitemap.skipped == 3


def test_gzip_body_is_recognised_by_its_magic_bytes() -> None:
    body = urlset("<url><loc>https://news.example/a</loc></url>")
    assert parsed(gzip.compress(body)) == parsed(body)
    assert failed(b"\x1f\x8b" + b"not really gzip").reason == "bad-gzip"


def test_plain_text_sitemap() -> None:
    sitemap = parsed(b"https://news.example/a\r\n\r\nhttps://news.example/b\nnot a url\n")
    assert sitemap.kind == "text"
    assert [u.url for u in sitemap.urls] == ["https://news.example/a", "https://news.example/b"]
    assert sitemap.skipped == 1


def test_raw_ampersand_is_repaired_without_losing_the_parameter() -> None:
    sitemap = parsed(urlset("<url><loc>https://news.example/a?x=1&y=2&amp;z=3</loc></url>"))
    assert [u.url for u in sitemap.urls] == ["https://news.example/a?x=1&y=2&z=3"]
    assert sitemap.warnings


def test_cut_off_sitemap_keeps_the_complete_entries() -> None:
    body = urlset("<url><loc>https://news.example/a</loc></url><url><loc>https://news.ex")
    sitemap = parsed(body[: -len("</urlset>")])
    assert [u.url for u in sitemap.urls][:1] == ["https://news.example/a"]
    assert sitemap.warnings


def test_more_than_50000_urls_are_capped() -> None:
    body = urlset("".join(f"<url><loc>https://news.example/{i}</loc></url>" for i in range(50_003)))
    sitemap = parsed(body)
    assert len(sitemap.urls) == sitemaps.MAX_URLS
    assert sitemap.truncated and sitemap.warnings
    assert sitemap.urls[-1].url == "https://news.example/49999"


def test_more_than_50_mb_is_read_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same rule on a small limit: building 50 MB in a unit test would only be slow.
    monkeypatch.setattr(sitemaps, "MAX_BYTES", 400)
    entries = "".join(f"<url><loc>https://news.example/{i}</loc></url>" for i in range(20))
    sitemap = parsed(gzip.compress(urlset(entries)))
    assert sitemap.truncated
    assert 0 < len(sitemap.urls) < 20
    assert sitemap.urls[0].url == "https://news.example/0"


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * (sitemaps.MAX_BYTES + 1024) + b"</urlset>")
    assert len(bomb) < 200_000
    result = parse_sitemap(bomb, SITEMAP_URL)
    assert isinstance(result, Sitemap | SitemapError)
    assert not isinstance(result, Sitemap) or (result.truncated and result.urls == [])


def test_xml_bombs_are_refused() -> None:
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )
    bomb = f'<?xml version="1.0"?><!DOCTYPE urlset [{entities}]>'
    bomb += "<urlset><url><loc>https://x/&a9;</loc></url></urlset>"
    assert failed(bomb.encode()).reason == "unsafe-xml"
    external = b'<!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    assert failed(external + b"<urlset><url><loc>&x;</loc></url></urlset>").reason == ("unsafe-xml")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"\n  \n", "empty"),
        (gzip.compress(b""), "empty"),
        (b"<!DOCTYPE html><html><body><p>Not found</p></body></html>", "html"),
        (b'<rss version="2.0"><channel><title>x</title></channel></rss>', "feed"),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>', "feed"),
        (b"<note><to>someone</to></note>", "not-a-sitemap"),
        (b"User-agent: *\nDisallow: /private/\n", "not-a-sitemap"),
        (b"<", "malformed"),
        (b'<?xml version="1.0"?>', "malformed"),
    ],
)
def test_errors_are_values(body: bytes, reason: str) -> None:
    assert failed(body).reason == reason


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_never_raises(body: bytes) -> None:
    assert isinstance(parse_sitemap(body, SITEMAP_URL), Sitemap | SitemapError)
