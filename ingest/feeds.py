"""Feeds -> the article URLs they announce: RSS 0.9x/1.0/2.0 and Atom through feedparser,
JSON Feed 1.0/1.1 here.

``parse_feed`` never raises on bad input: it returns a ``Feed`` (possibly with
``warnings`` when the document was malformed but entries could still be read) or a
``FeedError`` with a stable ``reason`` code:

- ``empty``: no bytes, or only white space
- ``html``: an HTML page where a feed was expected (a moved feed, a login wall)
- ``not-a-feed``: some other document, neither a feed nor an HTML page
- ``malformed``: broken XML or JSON of which nothing usable could be read
- ``unsafe-xml``: entity declarations that nest or point outside the document (XML bombs)

Entries keep only what ingest needs to fetch and hint: the article URL (resolved against
the feed URL, Google Alerts and FeedBurner wrappers removed), title and summary as plain
text, the publication time in UTC and the entry id.
"""

from __future__ import annotations

import calendar
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import feedparser  # type: ignore[import-untyped]

__all__ = ["Feed", "FeedEntry", "FeedError", "parse_feed"]

JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")
UPDATE_PERIODS = {
    "hourly": 3600,
    "daily": 86400,
    "weekly": 7 * 86400,
    "monthly": 30 * 86400,
    "yearly": 365 * 86400,
}
UTF8_BOM = b"\xef\xbb\xbf"
# An entity whose value refers to another entity (the billion-laughs pattern) or to an
# outside resource: no real feed needs either, and both are how XML is made into a weapon.
_UNSAFE_ENTITY = re.compile(
    rb"""<!ENTITY\s+%?\s*[\w.-]+\s+(?:SYSTEM|PUBLIC|["'][^"']*&(?!#))""", re.I
)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    url: str
    title: str | None
    published_at: datetime | None  # timezone-aware, UTC
    entry_id: str | None
    summary: str | None  # plain text


@dataclass(frozen=True, slots=True)
class Feed:
    title: str | None
    entries: list[FeedEntry]
    ttl_seconds: int | None  # RSS <ttl>, given in minutes
    update_period_seconds: int | None  # sy:updatePeriod divided by sy:updateFrequency
    format: str = ""  # feedparser's version code (rss20, atom10, ...) or json1 / json1.1
    skipped: int = 0  # entries without a usable http(s) link
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FeedError:
    reason: str
    detail: str


def parse_feed(body: bytes, url: str, content_type: str = "") -> Feed | FeedError:
    """Read a feed fetched from ``url``; ``content_type`` is the HTTP header, if any."""
    data = body.removeprefix(UTF8_BOM).lstrip()
    if not data:
        return FeedError("empty", "the response has no content")
    if data.startswith(b"{") or "json" in content_type.lower():
        return _parse_json_feed(data, url)
    if _UNSAFE_ENTITY.search(_prolog(data)):
        return FeedError("unsafe-xml", "nested or external entity declarations refused")
    return _parse_xml_feed(data, url, content_type)


def _prolog(data: bytes) -> bytes:
    """What precedes the root element: the XML declaration and the DOCTYPE, if any."""
    root = re.search(rb"<[A-Za-z_]", data)
    return data[: root.start()] if root else data


# -- RSS and Atom ------------------------------------------------------------------------


def _parse_xml_feed(data: bytes, url: str, content_type: str) -> Feed | FeedError:
    # A stream, never bytes or str: feedparser opens a str as a URL or a file name.
    parsed = feedparser.parse(
        io.BytesIO(data),
        response_headers=_feedparser_headers(url, content_type),
        # Entry HTML (summaries, content) is reduced to text here, never shown as HTML:
        # feedparser's sanitizer and URI rewriting of it were most of the parse time.
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries: list[Any] = list(parsed.entries)
    problem = _bozo_message(parsed)
    if not parsed.version and not entries:
        if _looks_like_html(data):
            return FeedError("html", "an HTML page, not a feed")
        if not data.startswith(b"<"):
            return FeedError("not-a-feed", "neither XML nor JSON")
        return FeedError("malformed" if problem else "not-a-feed", problem or "no feed element")
    if problem and not entries:
        return FeedError("malformed", problem)
    read = [_xml_entry(entry, url) for entry in entries]
    channel = parsed.feed
    return Feed(
        title=_text_of(channel, "title"),
        entries=[entry for entry in read if entry is not None],
        ttl_seconds=_ttl_seconds(channel.get("ttl")),
        update_period_seconds=_update_period_seconds(
            channel.get("sy_updateperiod"), channel.get("sy_updatefrequency")
        ),
        format=str(parsed.version or "unknown"),
        skipped=sum(entry is None for entry in read),
        warnings=[problem] if problem else [],
    )


def _feedparser_headers(url: str, content_type: str) -> dict[str, str]:
    # feedparser takes the document's base URI from Content-Location. The media type is
    # always given as application/xml: with text/xml and no charset it would apply RFC 3023's
    # us-ascii default and flag every real feed; a declared charset is kept.
    charset = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.I)
    media = f"application/xml; charset={charset.group(1)}" if charset else "application/xml"
    return {"content-location": url, "content-type": media}


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    error = parsed.get("bozo_exception")
    return f"{type(error).__name__}: {error}" if error is not None else "malformed feed"


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _xml_entry(entry: Any, feed_url: str) -> FeedEntry | None:
    link = _first_link(_xml_link_candidates(entry), feed_url)
    if link is None:
        return None
    return FeedEntry(
        url=link,
        title=_text_of(entry, "title"),
        published_at=_xml_published(entry),
        entry_id=_str(entry.get("id")),
        summary=_text_of(entry, "summary"),
    )


def _xml_link_candidates(entry: Any) -> list[str | None]:
    # FeedBurner's origLink is the publisher's own URL behind its feedproxy redirect.
    links = [
        _str(link.get("href"))
        for link in entry.get("links", [])
        if link.get("rel", "alternate") == "alternate"
    ]
    return [_str(entry.get("feedburner_origlink")), _str(entry.get("link")), *links]


def _text_of(item: Any, key: str) -> str | None:
    """Plain text of a title or summary: HTML ones (Google Alerts titles carry <b> tags)
    lose their markup, plain ones are only squashed."""
    value = _str(item.get(key))
    detail = item.get(f"{key}_detail")
    if not detail and key == "summary" and item.get("content"):
        detail = item["content"][0]  # an Atom entry with <content> and no <summary>
    kind = str(detail.get("type") or "") if detail else ""
    return _plain(value) if "html" in kind else _squash(value)


def _xml_published(entry: Any) -> datetime | None:
    # dict.get: feedparser's own get() warns when updated_parsed is absent.
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = dict.get(entry, key)
        if parsed is not None:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (TypeError, ValueError, OverflowError, OSError):
                continue
    # Dates feedparser cannot read, such as Portuguese RFC 822 ("Seg, 24 Set 2018 ...").
    raw = _str(dict.get(entry, "published")) or _str(dict.get(entry, "updated"))
    return _localized_rfc822(raw) if raw else None


def _ttl_seconds(value: object) -> int | None:
    minutes = _positive_int(value)
    return minutes * 60 if minutes else None


def _update_period_seconds(period: object, frequency: object) -> int | None:
    seconds = UPDATE_PERIODS.get(str(period or "").strip().lower())
    if seconds is None:
        return None
    return seconds // (_positive_int(frequency) or 1)


# -- JSON Feed ---------------------------------------------------------------------------


def _parse_json_feed(data: bytes, url: str) -> Feed | FeedError:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        return FeedError("malformed", f"not JSON: {error}")
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        return FeedError("not-a-feed", "JSON without an items list")
    warnings = []
    version = document.get("version")
    if version not in JSON_FEED_VERSIONS:
        warnings.append(f"unknown JSON Feed version {version!r}")
    read = [_json_entry(item, url) for item in document["items"]]
    return Feed(
        title=_squash(_str(document.get("title"))),
        entries=[entry for entry in read if entry is not None],
        ttl_seconds=None,
        update_period_seconds=None,
        format="json1.1" if version == JSON_FEED_VERSIONS[1] else "json1",
        skipped=sum(entry is None for entry in read),
        warnings=warnings,
    )


def _json_entry(item: object, feed_url: str) -> FeedEntry | None:
    if not isinstance(item, dict):
        return None
    # url is the item's own page; external_url is what a link blog points at.
    link = _first_link([_str(item.get("url")), _str(item.get("external_url"))], feed_url)
    if link is None:
        return None
    summary = _str(item.get("summary")) or _str(item.get("content_text"))
    entry_id = item.get("id")
    return FeedEntry(
        url=link,
        title=_squash(_str(item.get("title"))),
        published_at=_iso_datetime(_str(item.get("date_published")))
        or _iso_datetime(_str(item.get("date_modified"))),
        entry_id=str(entry_id) if isinstance(entry_id, str | int) else None,
        summary=_squash(summary) or _plain(_str(item.get("content_html"))),
    )


def _iso_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- links -------------------------------------------------------------------------------


def _first_link(candidates: list[str | None], feed_url: str) -> str | None:
    for candidate in candidates:
        if candidate:
            link = _unwrap_redirect(urljoin(feed_url, candidate.strip()))
            parts = urlsplit(link)
            if parts.scheme in ("http", "https") and parts.hostname:
                return link
    return None


def _unwrap_redirect(link: str) -> str:
    """The target of a Google redirect (``https://www.google.com/url?...&url=TARGET``), as
    Google Alerts wraps every link; any other link unchanged."""
    parts = urlsplit(link)
    host = (parts.hostname or "").lower()
    if parts.path != "/url" or not (host.startswith("www.google.") or host == "google.com"):
        return link
    query = parse_qs(parts.query)
    for key in ("url", "q"):
        target = next(iter(query.get(key, [])), "")
        if urlsplit(target).scheme in ("http", "https"):
            return target
    return link


# -- text --------------------------------------------------------------------------------


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _plain(html: str | None) -> str | None:
    """Text of an HTML fragment, white space squashed."""
    if not html:
        return None
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return _squash(" ".join(collector.parts))


def _squash(text: str | None) -> str | None:
    squashed = " ".join(text.split()) if text else ""
    return squashed or None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _positive_int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


# -- dates in other languages ------------------------------------------------------------

# Month abbreviations (accents removed) in the languages news feeds localise RFC 822 into.
_MONTHS = {
    **dict.fromkeys(("jan", "ene", "gen", "janv"), 1),
    **dict.fromkeys(("feb", "fev", "fevr"), 2),
    **dict.fromkeys(("mar", "mrt", "mars"), 3),
    **dict.fromkeys(("apr", "abr", "avr"), 4),
    **dict.fromkeys(("may", "mai", "mag", "mei"), 5),
    **dict.fromkeys(("jun", "giu", "juin"), 6),
    **dict.fromkeys(("jul", "lug", "juil"), 7),
    **dict.fromkeys(("aug", "ago", "aou", "aout"), 8),
    **dict.fromkeys(("sep", "set"), 9),
    **dict.fromkeys(("oct", "out", "okt", "ott"), 10),
    **dict.fromkeys(("nov",), 11),
    **dict.fromkeys(("dec", "dez", "dic"), 12),
}
_RFC822ISH = re.compile(
    r"(\d{1,2})\s+([^\W\d_]+)\.?\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4})?"
)


def _localized_rfc822(raw: str) -> datetime | None:
    match = _RFC822ISH.search(raw)
    if not match:
        return None
    day, month_name, year, hour, minute, second, offset = match.groups()
    ascii_month = unicodedata.normalize("NFKD", month_name).encode("ascii", "ignore").decode()
    month = _MONTHS.get(ascii_month.lower()[:4]) or _MONTHS.get(ascii_month.lower()[:3])
    if month is None:
        return None
    zone = UTC
    if offset:
        minutes = int(offset[1:3]) * 60 + int(offset[3:])
        zone = timezone(timedelta(minutes=-minutes if offset[0] == "-" else minutes))
    try:
        local = datetime(int(year), month, int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None
    return local.replace(tzinfo=zone).astimezone(UTC)
