"""Pure parts of ingest's failure reporting: reading URL lists, telling a URL from what
is none, the one line each failure is logged with, and the times `ingest status` and
`ingest feeds --once` show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import report, urllist
from ingest.canon import canonicalize, url_problem
from ingest.jobs import Failure, IngestStats
from ingest.monitor import HealthStore, _poll_line, not_due
from ingest.schedule import FeedHealth, Pending
from newsflow.errors import SetupError

NOW = datetime(2026, 12, 1, 18, 0, 0, tzinfo=UTC)


def test_a_list_keeps_where_each_url_stands() -> None:
    data = "\ufeff# my list\nhttps://a.example/1\n\n   https://b.example/2  \nhttp://[::1\n"
    listed = urllist.parse(data.encode("utf-8"), "urls.txt")
    assert listed == [
        urllist.Listed("urls.txt:2", "https://a.example/1"),
        urllist.Listed("urls.txt:4", "https://b.example/2"),
        urllist.Listed("urls.txt:5", "http://[::1"),
    ]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"https://a.example/\n\xe9t\xe9 caf\xe9\n", "urls.txt:2: not UTF-8 text (byte 0xe9)"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "urls.txt is not a text file"),
        ("https://a.example/\n".encode("utf-16"), "urls.txt is not a text file"),
    ],
    ids=["latin-1", "gzip", "utf-16"],
)
def test_a_file_that_is_not_utf8_text_is_a_setup_error(data: bytes, said: str) -> None:
    with pytest.raises(SetupError, match="one http\\(s\\) URL per line") as caught:
        urllist.parse(data, "urls.txt")
    assert str(caught.value).startswith(said)


def test_an_unreadable_file_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="cannot read"):
        urllist.read(tmp_path)  # a directory


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://x.example:99999/", "Port out of range"),
        ("ftp://x.example/a", "scheme 'ftp'"),
        ("mailto:desk@x.example", "scheme 'mailto'"),
        ("x.example/a", "no http:// or https://"),
        ("http:///a", "no host name"),
        ("http://a b.example/", "white space"),
        ("", "empty"),
    ],
)
def test_what_is_no_fetchable_url_says_why(text: str, problem: str) -> None:
    said = url_problem(text)
    assert said is not None and problem in said


@given(st.text(max_size=40) | st.builds("http://{}".format, st.text(max_size=30)))
def test_url_problem_never_raises_and_passes_only_what_canonicalizes(text: str) -> None:
    if url_problem(text) is None:
        canonical = canonicalize(text)
        assert canonical.startswith(("http://", "https://"))
        assert url_problem(canonical) is None


def test_each_failure_is_one_line_saying_where_without_placeholders() -> None:
    lines = [
        Failure("urls.txt:2", "bad-url", "not a URL (Invalid IPv6 URL)", url="http://[::1"),
        Failure("https://x.example/feed.xml", "http-404", "Not Found", "https://x.example/a"),
        Failure(
            "bad.warc",
            "corrupt",
            "not a WARC file or damaged at offset 0: Invalid WARC header; "
            "nothing after it could be read",
            offset=0,
        ),
    ]
    assert [f.line() for f in lines] == [
        "urls.txt:2: skipped 'http://[::1': not a URL (Invalid IPv6 URL) (bad-url)",
        "https://x.example/feed.xml: skipped https://x.example/a: Not Found (http-404)",
        "bad.warc: not a WARC file or damaged at offset 0: Invalid WARC header; "
        "nothing after it could be read",
    ]


def test_routine_skips_and_earlier_failures_do_not_fail_a_run() -> None:
    stats = IngestStats()
    stats.skipped.update({"not-html": 5, "revisit": 2})
    stats.failed_before.add("https://x.example/gone")
    assert stats.ok
    assert "1 failed before, not tried again (--retry-failed)" in stats.summary("--retry-failed")
    stats.skipped["http-404"] += 1
    assert not stats.ok and stats.failures == 1
    polls = IngestStats(failed_polls=1)
    assert not polls.ok and "1 poll(s) of a feed or sitemap failed" in polls.summary()


def test_times_are_to_the_second_with_how_long_ago() -> None:
    moment = NOW - timedelta(minutes=3, microseconds=123456)
    assert report.when(moment, NOW) == "2026-12-01 17:56:59 UTC (3 min ago)"
    assert report.when(None, NOW) == "now"
    assert report.relative(NOW + timedelta(minutes=31, seconds=5), NOW) == "in 31 min"
    assert report.span(2 * 3600 + 5 * 60) == "2 h 5 min"
    assert report.span(3 * 86400) == "3 d"


def test_not_due_says_when_and_why() -> None:
    failing = FeedHealth(
        url="https://x.example/feed.xml",
        consecutive_failures=2,
        last_error="timeout: ReadTimeout",
        next_poll_at=NOW + timedelta(minutes=31, seconds=5),
    )
    line = report.not_due_line(failing, NOW)
    assert line == (
        "not due: https://x.example/feed.xml: next poll at 18:31:05 UTC "
        "(in 31 min; 2 failures, last: timeout: ReadTimeout)"
    )
    tomorrow = FeedHealth(url="https://y.example/", next_poll_at=NOW + timedelta(days=1))
    assert "at 2026-12-02 18:00:00 UTC (in 1 d)" in report.not_due_line(tomorrow, NOW)


def test_not_due_lists_only_what_waits_soonest_first(tmp_path: Path) -> None:
    store = HealthStore(tmp_path / "feeds.json")
    later = FeedHealth(url="https://a.example/", next_poll_at=NOW + timedelta(hours=2))
    sooner = FeedHealth(url="https://b.example/", next_poll_at=NOW + timedelta(minutes=5))
    due = FeedHealth(url="https://c.example/", next_poll_at=NOW - timedelta(seconds=1))
    for health in (later, sooner, due):
        store.put(health)
    endpoints = [("s", "feed", u) for u in ("https://a.example/", "https://b.example/")]
    endpoints += [("s", "feed", "https://c.example/"), ("s", "sitemap", "https://new.example/")]
    assert [h.url for h in not_due(endpoints, HealthStore(store.path), NOW)] == [
        "https://b.example/",
        "https://a.example/",
    ]


def test_status_lines_show_seconds_not_microseconds() -> None:
    health = FeedHealth(
        url="https://x.example/feed.xml",
        last_success=NOW - timedelta(minutes=3, microseconds=654321),
        items_seen_total=7,
        next_poll_at=NOW + timedelta(minutes=12),
        pending=(Pending(url="https://x.example/a", last_error="timeout: slow"),),
    )
    text = "\n".join(report.status_lines(health, NOW))
    assert "last success 2026-12-01 17:56:59 UTC (3 min ago); 7 items" in text
    assert "next poll 2026-12-01 18:12:00 UTC (in 12 min); ok" in text
    assert "pending (1 attempt(s)): https://x.example/a: timeout: slow" in text
    assert "654321" not in text and "+00:00" not in text


def test_a_damaged_feed_health_file_is_a_setup_error(tmp_path: Path) -> None:
    path = tmp_path / "feeds.json"
    path.write_text('{"https://x.example/": {"url": 3')
    with pytest.raises(SetupError, match="cannot read the feed health"):
        HealthStore(path)


def test_a_poll_line_is_short() -> None:
    assert _poll_line("https://x/f", None, 3, 3, 0, 0) == "https://x/f: 3 new, 3 pages sent"
    assert (
        _poll_line("https://x/f", "timeout: ReadTimeout", 0, 1, 1, 2)
        == "https://x/f: poll failed (timeout), 1 page sent, 1 failed, 2 to try again"
    )
