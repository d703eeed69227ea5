"""ingest.feeds: real feeds from ../shared/data (with another parser's reading of three of
them), the demo sites' feeds, and crafted documents for each rule and each error."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.feeds import Feed, FeedError, parse_feed
from newsflow.demo.sites import EXPECTED, render
from tests.conftest import shared_data_path

FEED_URL = "https://news.example/feeds/all.xml"


def parsed(body: bytes, url: str = FEED_URL, content_type: str = "") -> Feed:
    feed = parse_feed(body, url, content_type)
    assert isinstance(feed, Feed), feed
    return feed


def failed(body: bytes, content_type: str = "") -> FeedError:
    error = parse_feed(body, FEED_URL, content_type)
    assert isinstance(error, FeedError), error
    return error


def rss(items: str, channel: str = "", namespaces: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {namespaces}><channel>'
        f"<title>News</title>{channel}{items}</channel></rss>"
    ).encode()


# -- real feeds --------------------------------------------------------------------------


def _same_text(expected: str, ours: str) -> bool:
    """rss-parser decoded the ISO-8859-1 feed as UTF-8: each byte it could not read became
    U+FFFD. There, any one non-ASCII character of ours (read correctly) matches, or a space
    (ours squashes the no-break spaces of the original to plain ones)."""
    pattern = "".join("(?:[^\\x00-\\x7f]|\\s)" if c == "\ufffd" else re.escape(c) for c in expected)
    return re.fullmatch(pattern, ours) is not None


@pytest.mark.parametrize("name", ["guardian.rss", "heise.atom", "uolNoticias.rss"])
def test_titles_and_links_agree_with_rss_parser(name: str) -> None:
    folder = shared_data_path("feeds", "rbren-rss-parser")
    stem = name.rsplit(".", 1)[0]
    expected = json.loads((folder / "expected" / f"{stem}.json").read_text("utf-8"))["feed"]
    feed = parsed((folder / name).read_bytes(), url=expected.get("feedUrl", FEED_URL))
    assert feed.title == expected["title"]
    assert feed.skipped == 0
    assert [e.url for e in feed.entries] == [item["link"] for item in expected["items"]]
    for entry, item in zip(feed.entries, expected["items"], strict=True):
        assert entry.title is not None
        assert _same_text(" ".join(item["title"].split()), entry.title), (item, entry)


def test_iso_8859_1_feed_without_declaration_is_read_as_latin() -> None:
    feed = parsed(shared_data_path("feeds", "rbren-rss-parser", "uolNoticias.rss").read_bytes())
    first = feed.entries[0]
    assert (
        first.title == "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno"
    )
    # "Seg, 24 Set 2018 19:42:40 -0300": RFC 822 with Portuguese names, which feedparser
    # does not read.
    assert first.published_at == datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)
    assert all(entry.published_at is not None for entry in feed.entries)


def test_blank_line_before_xml_declaration() -> None:
    feed = parsed(shared_data_path("feeds", "feedjira", "TechCrunch.xml").read_bytes())
    assert feed.warnings == []  # read by the strict XML parser, as UTF-8
    assert len(feed.entries) == 20
    assert feed.entries[0].title is not None and "Angie\u2019s List" in feed.entries[0].title
    assert feed.update_period_seconds == 3600  # sy:updatePeriod hourly, frequency 1
    # feedburner:origLink: the publisher's URL, not the feedproxy redirect.
    assert all(urlsplit(e.url).hostname == "techcrunch.com" for e in feed.entries)


def test_google_alerts_links_are_unwrapped_and_titles_plain() -> None:
    feed = parsed(shared_data_path("feeds", "feedjira", "google_alerts_atom.xml").read_bytes())
    assert len(feed.entries) == 20
    assert feed.entries[1].url == "https://investorplace.com/2019/07/slack-stock-truly-compelling/"
    assert all("google." not in (urlsplit(e.url).hostname or "") for e in feed.entries)
    assert (
        feed.entries[1].title == "Slack Stock Has a Compelling Story and the Numbers to Back It Up"
    )
    assert all("<" not in (e.title or "") + (e.summary or "") for e in feed.entries)


@pytest.mark.parametrize("name", ["HuffPostCanada.xml", "TypePadNews.xml"])
def test_other_real_feeds(name: str) -> None:
    feed = parsed(shared_data_path("feeds", "feedjira", name).read_bytes())
    assert feed.entries and feed.skipped == 0 and feed.warnings == []
    for entry in feed.entries:
        assert entry.title and entry.published_at and entry.published_at.tzinfo is UTC


# -- the demo sites ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "path"),
    [(p.site, p.path) for p in EXPECTED.pages if p.kind in ("rss", "atom")],
)
def test_demo_feeds_announce_every_article(site: str, path: str) -> None:
    result = render(site, path)
    assert result is not None
    _, content_type, body = result
    feed = parsed(body, url="https://demo.example" + path, content_type=content_type)
    expected = {a.path: a for a in EXPECTED.articles if a.site == site}
    assert {urlsplit(e.url).path for e in feed.entries} == set(expected)
    for entry in feed.entries:
        article = expected[urlsplit(entry.url).path]
        assert (entry.title, entry.published_at) == (article.headline, article.published)


# -- rules, on crafted feeds -------------------------------------------------------------


def test_relative_links_resolve_against_the_feed_url_and_linkless_entries_are_counted() -> None:
    feed = parsed(
        rss(
            "<item><title>a</title><link>/news/a.html</link></item>"
            "<item><title>b</title><link>b.html</link></item>"
            "<item><title>no link</title></item>"
            "<item><title>mail</title><link>mailto:desk@news.example</link></item>"
        )
    )
    assert [e.url for e in feed.entries] == [
        "https://news.example/news/a.html",
        "https://news.example/feeds/b.html",
    ]
    assert feed.skipped == 2


def test_ttl_and_syndication_period() -> None:
    sy = 'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"'
    channel = "<ttl>30</ttl><sy:updatePeriod>daily</sy:updatePeriod>"
    channel += "<sy:updateFrequency>4</sy:updateFrequency>"
    feed = parsed(rss("", channel, sy))
    assert (feed.ttl_seconds, feed.update_period_seconds) == (1800, 6 * 3600)
    assert parsed(rss("", "<ttl>soon</ttl>")).ttl_seconds is None


def test_rss_1_0_and_atom() -> None:
    rdf = (
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        b'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b'<channel rdf:about="https://news.example/"><title>R</title></channel>'
        b'<item rdf:about="https://news.example/1"><title>One</title>'
        b"<link>https://news.example/1</link><dc:date>2024-05-01T10:00:00+02:00</dc:date></item>"
        b"</rdf:RDF>"
    )
    feed = parsed(rdf)
    assert feed.format == "rss10"
    assert feed.entries[0].published_at == datetime(2024, 5, 1, 8, tzinfo=UTC)
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">A &amp;amp; B</title>'
        b'<entry><id>urn:x:1</id><title>E</title><link href="/e/1"/>'
        b"<updated>2024-05-01T10:00:00Z</updated></entry></feed>"
    )
    feed = parsed(atom)
    assert (feed.format, feed.title) == ("atom10", "A & B")
    assert feed.entries[0].url == "https://news.example/e/1"
    assert feed.entries[0].entry_id == "urn:x:1"


def test_json_feed() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {
                "id": "1",
                "url": "/posts/1",
                "title": "First",
                "content_html": "<p>Hello <b>world</b></p>",
                "date_published": "2024-05-01T10:00:00-05:00",
            },
            {"id": 2, "external_url": "https://elsewhere.example/x", "summary": " S "},
            {"id": "3", "title": "no link"},
            "not an object",
        ],
    }
    feed = parsed(json.dumps(document).encode(), content_type="application/feed+json")
    assert (feed.title, feed.format, feed.skipped, feed.warnings) == ("J", "json1.1", 2, [])
    first, second = feed.entries
    assert (first.url, first.summary) == ("https://news.example/posts/1", "Hello world")
    assert first.published_at == datetime(2024, 5, 1, 15, tzinfo=UTC)
    assert (second.url, second.entry_id, second.summary) == (
        "https://elsewhere.example/x",
        "2",
        "S",
    )


def test_json_feed_of_unknown_version_is_read_with_a_warning() -> None:
    feed = parsed(b'{"items": [{"url": "https://news.example/1"}]}')
    assert len(feed.entries) == 1 and feed.warnings


def test_malformed_feed_with_entries_is_read_with_a_warning() -> None:
    body = rss("<item><title>a</title><link>https://news.example/a</link></item>")
    feed = parsed(body[: body.index(b"</channel>")] + b"<item><title>cut")
    assert [e.url for e in feed.entries] == ["https://news.example/a"]
    assert feed.warnings


def test_an_empty_feed_is_a_feed() -> None:
    feed = parsed(rss(""))
    assert (feed.title, feed.entries, feed.warnings) == ("News", [], [])


def test_charset_from_content_type_is_honoured_and_text_xml_is_not_taken_for_ascii() -> None:
    body = '<rss version="2.0"><channel><title>Café</title></channel></rss>'
    assert parsed(body.encode("latin-1"), content_type="text/xml; charset=ISO-8859-1").title == (
        "Café"
    )
    assert parsed(body.encode("utf-8"), content_type="text/xml").warnings == []


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"", "", "empty"),
        (b" \n\t ", "application/rss+xml", "empty"),
        (
            b"<!DOCTYPE html><html><head><title>Moved</title></head><body>x</body></html>",
            "",
            "html",
        ),
        (b"<html><body><p>Log in</p></body></html>", "text/html", "html"),
        (b"<note><to>someone</to></note>", "", "not-a-feed"),
        (b"just some text", "text/plain", "not-a-feed"),
        (b'<rss version="2.0"><channel><title>cut', "", "malformed"),
        (b'{"items": [', "application/json", "malformed"),
        (b'{"title": "no items"}', "", "not-a-feed"),
        (b"\xff\xfe\x00garbage", "application/json", "malformed"),
    ],
)
def test_errors_are_values(body: bytes, content_type: str, reason: str) -> None:
    assert failed(body, content_type).reason == reason


def test_xml_bombs_are_refused() -> None:
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )
    bomb = f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]><rss version="2.0"><channel>'
    bomb += "<title>&a9;</title></channel></rss>"
    assert failed(bomb.encode()).reason == "unsafe-xml"
    external = b'<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss><channel>'
    assert failed(external + b"<title>&x;</title></channel></rss>").reason == "unsafe-xml"


def test_a_plain_entity_declaration_is_allowed() -> None:
    body = (
        b'<!DOCTYPE rss [<!ENTITY nbsp "&#160;">]>'
        + rss("<item><title>a&nbsp;b</title><link>https://news.example/a</link></item>").split(
            b"?>", 1
        )[1]
    )
    assert parsed(body).entries[0].title == "a b"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_never_raises(body: bytes) -> None:
    assert isinstance(parse_feed(body, FEED_URL), Feed | FeedError)
