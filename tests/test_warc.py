"""WARC reading: real crawls from ../shared/data/warc and small files written here."""

from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastwarc.stream_io import BrotliWriter, GzipWriter
from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from ingest.canon import canonicalize, site_of
from ingest.warc import PAGE_TYPES, WarcSkip, read_warc
from newsflow.records import RawPage, SourceKind
from tests.conftest import shared_data_path

CC_EXCERPT = ("warc", "resiliparse", "warcfile.warc.gz")
UKWA = ("warc", "ukwa-webarchive-test-suite")
BLACKBOOK = (*UKWA, "IAH-20080430204825-00000-blackbook-truncated.warc.gz")
WGET = (*UKWA, "IAH-urls-wget.warc.gz")


def pages(items: list[RawPage | WarcSkip]) -> list[RawPage]:
    return [item for item in items if isinstance(item, RawPage)]


def reasons(items: list[RawPage | WarcSkip]) -> Counter[str]:
    return Counter(item.reason for item in items if isinstance(item, WarcSkip))


def record_offsets(path: Path) -> list[int]:
    """Where every record starts, as FastWARC sees it (requests and metadata too)."""
    with path.open("rb") as stream:
        return [record.stream_pos for record in ArchiveIterator(stream, parse_http=False)]


# -- real files ------------------------------------------------------------------------


# The blackbook file's name says truncated, but its crawl stopped between two records:
# every record in it is whole, so it reads to the end without a "corrupt" skip.
@pytest.mark.parametrize(
    ("parts", "n_pages", "skips", "years"),
    [
        (CC_EXCERPT, 16, {}, {2020}),
        (BLACKBOOK, 3, {"not-http": 1, "not-html": 4}, {2008}),
        (WGET, 12, {"not-html": 4}, {2013}),
    ],
    ids=["common-crawl", "blackbook", "wget"],
)
def test_real_files(
    parts: tuple[str, ...], n_pages: int, skips: dict[str, int], years: set[int]
) -> None:
    path = shared_data_path(*parts)
    items = list(read_warc(path))
    assert len(pages(items)) == n_pages
    assert reasons(items) == Counter(skips)
    offsets = set(record_offsets(path))
    for page in pages(items):
        assert page.url.startswith(("http://", "https://"))
        assert page.canonical_url == canonicalize(page.url)
        assert page.site == site_of(page.url) != ""
        assert page.fetched_at.utcoffset() == timedelta(0)
        assert page.fetched_at.year in years
        assert page.content_type.partition(";")[0].strip().lower() in PAGE_TYPES
        assert 200 <= page.status < 400
        assert page.body or page.status >= 300  # redirects may have no body
        assert page.source.kind is SourceKind.WARC
        name, _, offset = page.source.ref.rpartition("@")
        assert name == path.name and int(offset) in offsets


def test_charset_status_and_chunked_body_of_real_records() -> None:
    items = pages(list(read_warc(shared_data_path(*WGET))))
    home = next(p for p in items if p.url == "https://archive.org/" and p.status == 200)
    assert home.encoding == "UTF-8"
    # Stored chunked by wget: no chunk-size lines left in the body.
    assert home.body.startswith(b"<!DOCTYPE html>")
    assert home.body.rstrip().endswith(b"</html>")
    assert [p.status for p in items if p.url == "http://archive.org/index.php"] == [301, 301]
    cc = pages(list(read_warc(shared_data_path(*CC_EXCERPT))))
    assert {p.encoding for p in cc} >= {"windows-1251", "gb2312", None}
    assert any("last-modified" in p.headers and "etag" in p.headers for p in cc)


def test_resume_from_an_offset_gives_the_rest() -> None:
    path = shared_data_path(*CC_EXCERPT)
    everything = pages(list(read_warc(path)))
    sixth = everything[5]
    offset = int(sixth.source.ref.rpartition("@")[2])
    rest = pages(list(read_warc(path, start_offset=offset)))
    assert [p.source.ref for p in rest] == [p.source.ref for p in everything[5:]]
    assert rest[0] == sixth


def test_an_offset_inside_a_record_is_corrupt_not_an_exception() -> None:
    items = list(read_warc(shared_data_path(*CC_EXCERPT), start_offset=941))
    assert len(items) == 1 and isinstance(items[0], WarcSkip)
    assert items[0].reason == "corrupt"


def test_a_file_cut_off_inside_a_record_ends_with_corrupt(tmp_path: Path) -> None:
    data = shared_data_path(*CC_EXCERPT).read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[:100_000])  # inside the response record at 99077
    items = list(read_warc(cut))
    assert len(pages(items)) == 10
    last = items[-1]
    assert isinstance(last, WarcSkip) and last.reason == "corrupt"
    assert last.offset == 99077 and "280 of 35,214" in last.detail
    assert reasons(items) == Counter({"corrupt": 1})


def test_garbage_after_the_last_record_is_corrupt(tmp_path: Path) -> None:
    data = shared_data_path(*CC_EXCERPT).read_bytes()
    for name, tail in (("gz", data), ("raw", gzip.decompress(data))):
        path = tmp_path / f"garbage.{name}"
        path.write_bytes(tail + b"\x00 this is not a WARC record\r\n\r\n" * 3)
        items = list(read_warc(path))
        assert len(pages(items)) == 16, name
        assert isinstance(items[-1], WarcSkip) and items[-1].reason == "corrupt", name


@pytest.mark.parametrize(
    ("data", "reason", "detail"),
    [
        (
            b"this is no WARC file\r\n" * 20,
            "corrupt",
            "not a WARC file or damaged at offset 0: Invalid WARC header; "
            "nothing after it could be read",
        ),
        (
            "the first 30 bytes of a real file",
            "corrupt",
            "not a WARC file or damaged at offset 0: the file ends inside the gzip member "
            "that starts there; nothing after it could be read",
        ),
        (
            b"\x1f\x8b\x08\x00 a gzip header, then garbage",
            "corrupt",
            "not a WARC file or damaged at offset 0: Gzip decompression error: data error; "
            "nothing after it could be read",
        ),
        (b"", "empty", "the file is empty"),
        (
            b"\0" * 4096,
            "corrupt",
            "not a WARC file or damaged at offset 0: Invalid WARC header; "
            "nothing after it could be read",
        ),
    ],
    ids=["garbage", "truncated-gzip", "bad-gzip", "empty", "zeros"],
)
def test_files_that_are_no_warc_say_so_in_one_item(
    tmp_path: Path, data: bytes | str, reason: str, detail: str
) -> None:
    path = tmp_path / "bad.warc.gz"
    if isinstance(data, str):
        data = shared_data_path(*CC_EXCERPT).read_bytes()[:30]
    path.write_bytes(data)
    assert list(read_warc(path)) == [WarcSkip(0, None, reason, detail)]


def test_a_cut_record_says_its_offset_and_url_once(tmp_path: Path) -> None:
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(shared_data_path(*CC_EXCERPT).read_bytes()[:5000])
    (last,) = list(read_warc(cut))
    assert last.reason == "corrupt"
    assert last.detail == (
        "damaged at offset 940, in the record of http://003338.cn/l41/481397.html: the "
        "record ends after 11,582 of 36,331 payload bytes; nothing after it could be read"
    )


@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "raw"])
def test_every_cut_ends_with_corrupt_unless_between_records(
    tmp_path: Path, compressed: bool
) -> None:
    """Cuts all through a real file: no exception, and a "corrupt" skip at the end unless
    the cut falls between two records (where a shorter file is indistinguishable)."""
    source = shared_data_path(*WGET)
    data = source.read_bytes() if compressed else gzip.decompress(source.read_bytes())
    whole = tmp_path / "whole.warc"
    whole.write_bytes(data)
    starts = [*record_offsets(whole), len(data)]
    path = tmp_path / "cut.warc"
    step = 41 if compressed else 173
    for cut in range(0, len(data), step):
        path.write_bytes(data[:cut])
        items = list(read_warc(path))
        next_start = min(s for s in starts if s >= cut)
        # Only white space left before the next record: the CRLFs that end a record (or
        # the last bytes of a block that ends in white space: either outcome is right).
        between = data[cut:next_start].strip() == b""
        ends_corrupt = (
            bool(items) and isinstance(items[-1], WarcSkip) and items[-1].reason == "corrupt"
        )
        assert ends_corrupt or between, f"cut at {cut}: the damage went unreported"
        assert not (ends_corrupt and cut in starts), f"cut at {cut}: a whole file is corrupt"


# -- a WARC written here ---------------------------------------------------------------

HTML = b"<html><body><p>" + b"A story worth reading. " * 20 + b"</p></body></html>"
WHEN = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


def chunked(data: bytes, size: int = 100) -> bytes:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    out = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in parts)
    return out + b"0\r\n\r\n"


def http(head: str, body: bytes) -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body


def brotli(data: bytes) -> bytes:
    out = io.BytesIO()
    with BrotliWriter(out) as writer:
        writer.write(data)
    return out.getvalue()


def record(kind: WarcRecordType, url: str, block: bytes, **headers: str) -> WarcRecord:
    rec = WarcRecord()
    rec.init_headers(kind)
    rec.headers.append("WARC-Target-URI", url)
    rec.record_date = WHEN
    for name, value in headers.items():
        rec.headers.append(name.replace("_", "-"), value)
    rec.set_bytes_content(block)
    return rec


def response(url: str, head: str, body: bytes, **headers: str) -> WarcRecord:
    headers.setdefault("Content_Type", "application/http; msgtype=response")
    return record(WarcRecordType.response, url, http(head, body), **headers)


OK_HTML = "HTTP/1.1 200 OK\nContent-Type: text/html"


def undated(rec: WarcRecord) -> WarcRecord:
    rec.headers["WARC-Date"] = "the day before yesterday"
    return rec


def crafted() -> list[tuple[WarcRecord, str]]:
    """Records and what each should give ("-": nothing). Fresh ones each time: writing a
    record consumes its content."""
    return [
        (record(WarcRecordType.warcinfo, "", b"software: test\r\n"), "-"),
        (
            response(
                "https://News.example.com/a?utm_source=x",
                'HTTP/1.1 200 OK\nContent-Type: text/html; charset="ISO-8859-1"\n'
                'Transfer-Encoding: chunked\nContent-Encoding: gzip\nETag: "e1"',
                chunked(gzip.compress(HTML)),
            ),
            "page",
        ),
        (
            record(
                WarcRecordType.request,
                "https://news.example.com/a",
                http("GET /a HTTP/1.1\nHost: news.example.com", b""),
                Content_Type="application/http; msgtype=request",
            ),
            "-",
        ),
        (
            response(
                "https://news.example.com/b", f"{OK_HTML}\nContent-Encoding: br", brotli(HTML)
            ),
            "page",
        ),
        (
            response(
                "https://news.example.com/c",
                f"{OK_HTML}\nContent-Encoding: deflate",
                zlib.compress(HTML)[2:-4],
            ),
            "page",
        ),
        (
            response(
                "https://news.example.com/logo.png",
                "HTTP/1.1 200 OK\nContent-Type: image/png",
                b"\x89PNG\r\n\x1a\n",
            ),
            "not-html",
        ),
        (
            record(
                WarcRecordType.revisit,
                "https://news.example.com/a",
                http(OK_HTML, b""),
                Content_Type="application/http; msgtype=response",
                WARC_Profile="http://netpreserve.org/warc/1.1/revisit/identical-payload-digest",
                WARC_Refers_To_Target_URI="https://news.example.com/a",
            ),
            "revisit",
        ),
        (response("https://news.example.com/big", OK_HTML, b"<p>" + b"x" * 3000), "oversized"),
        (
            response(
                "https://news.example.com/bomb",
                f"{OK_HTML}\nContent-Encoding: gzip",
                gzip.compress(b" " * 50_000),
            ),
            "oversized",
        ),
        (
            response(
                "https://news.example.com/broken",
                f"{OK_HTML}\nContent-Encoding: gzip",
                b"not gzip at all",
            ),
            "undecodable",
        ),
        (
            response(
                "https://news.example.com/odd",
                "NOT AN HTTP STATUS LINE\nContent-Type: text/html",
                HTML,
            ),
            "bad-http-header",
        ),
        (
            response("https://news.example.com/cut", OK_HTML, HTML[:100], WARC_Truncated="length"),
            "truncated",
        ),
        (
            record(
                WarcRecordType.response,
                "dns:news.example.com",
                b"news.example.com. 300 IN A 192.0.2.1",
                Content_Type="text/dns",
            ),
            "not-http",
        ),
        (
            record(
                WarcRecordType.metadata,
                "https://news.example.com/a",
                b"via: x\r\n",
                Content_Type="application/warc-fields",
            ),
            "-",
        ),
        (undated(response("https://news.example.com/d", OK_HTML, HTML)), "bad-warc-header"),
        (response("http://[news.example.com/e", OK_HTML, HTML), "bad-url"),
        (
            response(
                "https://news.example.com/robots.txt",
                "HTTP/1.1 404 Not Found\nContent-Type: text/plain",
                b"gone",
            ),
            "page",
        ),
    ]


def write_warc(path: Path, records: list[WarcRecord], *, compressed: bool) -> None:
    with path.open("wb") as stream:
        for rec in records:
            if compressed:  # one gzip member per record, as Common Crawl writes them
                writer = GzipWriter(stream)
                rec.write(writer)
                writer.finish()
            else:
                rec.write(stream)


@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "raw"])
def test_crafted_records(tmp_path: Path, compressed: bool) -> None:
    path = tmp_path / ("crafted.warc.gz" if compressed else "crafted.warc")
    records = crafted()
    write_warc(path, [rec for rec, _ in records], compressed=compressed)
    items = list(read_warc(path, max_body_bytes=2_000))
    expected = [want for _, want in records if want != "-"]
    assert [item.reason if isinstance(item, WarcSkip) else "page" for item in items] == expected
    chunked_gzip, br, deflate, not_found = pages(items)
    assert chunked_gzip.body == br.body == deflate.body == HTML
    assert chunked_gzip.url == "https://News.example.com/a?utm_source=x"
    assert chunked_gzip.canonical_url == "https://news.example.com/a"
    assert chunked_gzip.site == "example.com"
    assert chunked_gzip.fetched_at == WHEN
    assert chunked_gzip.encoding == "ISO-8859-1"
    assert chunked_gzip.headers == {"etag": '"e1"'}
    assert (not_found.status, not_found.content_type, not_found.body) == (
        404,
        "text/plain",
        b"gone",
    )
    skips = {item.reason: item for item in items if isinstance(item, WarcSkip)}
    assert skips["revisit"].url == "https://news.example.com/a"
    oversized = [i.detail for i in items if isinstance(i, WarcSkip) and i.reason == "oversized"]
    assert "payload of 3,003 bytes" in oversized[0]
    assert "decoded body over 2,000" in oversized[1]
    # Offsets found in the skips and pages resume reading exactly there.
    refs = [item.source.ref for item in pages(items)]
    resumed = list(read_warc(path, start_offset=skips["undecodable"].offset, max_body_bytes=2_000))
    assert [i.reason if isinstance(i, WarcSkip) else i.source.ref for i in resumed] == [
        "undecodable",
        "bad-http-header",
        "truncated",
        "not-http",
        "bad-warc-header",
        "bad-url",
        refs[-1],
    ]
