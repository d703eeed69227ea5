"""Pages from WARC files: what Common Crawl's CC-NEWS and web archives give us.

``read_warc`` streams over a ``.warc`` or ``.warc.gz`` file (gzip per record, as Common
Crawl writes them) and yields a ``RawPage`` for each HTTP response whose type is a web page
or plain text, and a ``WarcSkip`` for each response it will not turn into a page, with a
stable reason code:

- ``not-html``: the HTTP content type is neither HTML, XHTML nor plain text
- ``not-http``: a response record that holds no HTTP message (``dns:`` lookups, ...)
- ``bad-warc-header``: no target URI, or no readable WARC-Date
- ``bad-http-header``: the HTTP status line does not parse
- ``revisit``: a revisit record (the payload is elsewhere: deduplicated by the crawler)
- ``truncated``: the crawler marked the record ``WARC-Truncated`` (size or time limit)
- ``oversized``: the payload, raw or decoded, is over ``max_body_bytes``
- ``undecodable``: the chunked, gzip, deflate or brotli encoding is broken
- ``bad-url``: the target URI does not parse as a URL
- ``corrupt``: the file cannot be read on from here (a cut-off or damaged tail, or no
  WARC file at all); always the last item
- ``empty``: the file holds no WARC record at all (an empty file); the only item

Errors are values: nothing in a file makes iteration raise (a file that cannot be opened
still raises ``OSError``). Request, metadata, warcinfo and resource records are passed over
without a word: they hold no HTTP response.

Every page and skip carries the byte offset of its record (``Source.ref`` is
``"<file name>@<offset>"``). ``read_warc(path, start_offset=offset)`` starts reading at that
record, so a consumer that stopped can resume from the last offset it finished; that record
comes again, which the ``article_id`` keys downstream make harmless. Offsets are record
boundaries in uncompressed files and in files gzipped per record (what the WARC standard
recommends and Common Crawl does); in a file gzipped whole they are only positions in the
compressed stream, several records share one, and they cannot be resumed from.

Parsing is FastWARC's (Rust, about five times warcio's speed on Common Crawl files). Its
own payload decoding is not used: a record with a broken gzip body made its iterator stop
without an error, silently losing the rest of the file. We read the raw payload and decode
it here, where each failure becomes a ``WarcSkip``. FastWARC also takes a file cut off inside
a record for a short record or for its end; so every record's length is checked, and so is
the gzip member of the last one (``_gzip_tail_problem``).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from fastwarc.stream_io import BrotliReader
from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from ingest.canon import canonicalize, site_of
from newsflow.records import RawPage, Source, SourceKind

PAGE_TYPES: Final = frozenset({"text/html", "application/xhtml+xml", "text/plain"})
# Response headers worth keeping on the page (RawPage.headers), under lower-case names.
KEPT_HEADERS: Final = ("last-modified", "etag", "content-language")
DEFAULT_MAX_BODY_BYTES: Final = 5_000_000
GZIP_MAGIC: Final = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class WarcSkip:
    """A record of the file that gives no page, and why (see the module's reason codes)."""

    offset: int
    url: str | None
    reason: str
    detail: str


class _Corrupt(Exception):
    """The file ends or breaks inside a record: nothing after it can be trusted."""


class _Skip(Exception):
    """This record gives no page; the file goes on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def read_warc(
    path: Path, *, start_offset: int = 0, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> Iterator[RawPage | WarcSkip]:
    """Pages and skips of the WARC file ``path``, from the record at ``start_offset`` on."""
    with path.open("rb") as stream:
        stream.seek(start_offset)
        yield from _read_stream(stream, path.name, start_offset, max_body_bytes)


def _read_stream(
    stream: BinaryIO, name: str, start_offset: int, max_body_bytes: int
) -> Iterator[RawPage | WarcSkip]:
    offset = start_offset
    records = 0
    try:
        # Every record type, not only responses: a file cut off inside a request or
        # metadata record must show as corrupt too.
        for record in ArchiveIterator(stream, auto_decode="none"):  # we decode: see above
            offset = record.stream_pos
            records += 1
            item = _item(record, name, max_body_bytes)
            if item is not None:
                yield item
            if isinstance(item, WarcSkip) and item.reason == "corrupt":
                return
    except (OSError, ValueError) as err:  # FastWARC's errors for unreadable bytes
        yield _corrupt(offset, None, str(err))
        return
    problem = _gzip_tail_problem(stream, offset)
    if problem is not None:
        yield _corrupt(offset, None, problem)
    elif records == 0 and start_offset == 0:
        # FastWARC reads an empty file as a WARC file with no records: most likely a
        # download or copy that went wrong, which must not pass for a quiet file.
        size = stream.seek(0, io.SEEK_END)
        what = "the file is empty" if size == 0 else f"no WARC record in its {size:,} bytes"
        yield WarcSkip(0, None, "empty", what)


def _gzip_tail_problem(stream: BinaryIO, offset: int) -> str | None:
    """Whether a gzipped file goes on, cut off, after the gzip member at ``offset``.

    FastWARC ends without an error when the file stops inside a gzip member before any of
    its bytes decompress: the record checks never see that record. So the last member is
    read again here (one record, as Common Crawl writes them) and must end, and end the file.
    """
    stream.seek(offset)
    if stream.read(2) != GZIP_MAGIC:
        return None  # uncompressed: a cut-off record shows in the record checks
    stream.seek(offset)
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        while not inflater.eof and (chunk := stream.read(1 << 16)):
            inflater.decompress(chunk)  # only whether it ends matters, not the bytes
    except zlib.error:
        # FastWARC read this member; so ``offset`` is no member start after all (a file
        # gzipped whole, not per record), and there is nothing to check here.
        return None
    if not inflater.eof:
        return "the file ends inside the gzip member that starts there"
    rest = inflater.unused_data + stream.read(1 << 16)
    if rest.strip(b"\0"):  # some writers pad with zeros
        return "the bytes after the gzip member that starts there hold no readable record"
    return None


def _item(record: WarcRecord, name: str, max_body_bytes: int) -> RawPage | WarcSkip | None:
    """What one record gives: a page, a skip, or nothing (requests, metadata, ...)."""
    url = record.headers.get("WARC-Target-URI")
    item: RawPage | WarcSkip | None = None
    try:
        if record.record_type in (WarcRecordType.response, WarcRecordType.revisit):
            item = _page(record, name, max_body_bytes)
        problem = _incomplete(record)
    except _Skip as skip:
        item = WarcSkip(record.stream_pos, url, skip.reason, skip.detail)
        problem = _incomplete(record)
    except (_Corrupt, OSError) as err:
        problem = str(err)
    if problem is not None:
        return _corrupt(record.stream_pos, url, problem)
    return item


def _incomplete(record: WarcRecord) -> str | None:
    """Why the record is cut off, if it is; reads past whatever was left unread of it."""
    # FastWARC takes a header cut off before its Content-Length for a record of length 0.
    if not (record.headers.get("Content-Length") or "").strip().isdigit():
        return "the record has no Content-Length: its header is cut off"
    try:
        record.reader.consume()
    except OSError as err:
        return str(err)
    got = record.reader.tell()
    if got < record.content_length:
        return f"the record ends after {got:,} of {record.content_length:,} bytes"
    return None


def _corrupt(offset: int, url: str | None, problem: str) -> WarcSkip:
    """The last item of a file that breaks at ``offset``. Not logged here: the consumer
    logs each skip once, with the file's name in front."""
    # Bytes that do not start like a WARC record at the very start are most often a file
    # of another kind; further in, a damaged or cut-off file.
    damaged = "not a WARC file or damaged" if offset == 0 else "damaged"
    record = f", in the record of {url}" if url else ""
    detail = f"{damaged} at offset {offset}{record}: {problem}; nothing after it could be read"
    return WarcSkip(offset, url, "corrupt", detail)


def _page(record: WarcRecord, name: str, max_body_bytes: int) -> RawPage:
    """The page of one response record, or ``_Skip``/``_Corrupt`` saying why not."""
    url = _check_record(record)
    fetched_at = _fetched_at(record)
    status, content_type = _check_http(record)
    raw = _read_payload(record, max_body_bytes)
    body = _decode(raw, record, max_body_bytes)
    http = record.http_headers
    kept = {key: value for key in KEPT_HEADERS if (value := http.get(key)) is not None}
    return RawPage(
        url=url,
        canonical_url=_canonical(url),
        site=site_of(url),
        fetched_at=fetched_at,
        status=status,
        content_type=content_type,
        encoding=_charset(content_type),
        headers=kept,
        body=body,
        source=Source(kind=SourceKind.WARC, ref=f"{name}@{record.stream_pos}"),
    )


def _canonical(url: str) -> str:
    try:
        return canonicalize(url)
    except ValueError as err:  # urlsplit refuses some hosts ("http://[oops/") and ports
        raise _Skip("bad-url", f"the target URI does not parse: {err}") from err


def _check_record(record: WarcRecord) -> str:
    """The record's target URL, if it is a complete HTTP response."""
    url = record.headers.get("WARC-Target-URI")
    if record.record_type == WarcRecordType.revisit:
        refers = record.headers.get("WARC-Refers-To-Target-URI") or "an earlier capture"
        raise _Skip("revisit", f"payload not stored again: same as {refers}")
    if not url:
        raise _Skip("bad-warc-header", "the record has no WARC-Target-URI")
    if not record.is_http:
        kind = record.headers.get("Content-Type") or "no content type"
        raise _Skip("not-http", f"the record holds no HTTP message ({kind})")
    truncated = record.headers.get("WARC-Truncated")
    if truncated is not None:
        raise _Skip("truncated", f"the crawler cut the payload short (reason: {truncated})")
    return url


def _fetched_at(record: WarcRecord) -> datetime:
    # The stubs promise a datetime; FastWARC gives None for a missing or unreadable date.
    date: datetime | None = record.record_date
    if date is None:
        raise _Skip("bad-warc-header", f"no valid WARC-Date: {record.headers.get('WARC-Date')!r}")
    return date.astimezone(UTC) if date.tzinfo else date.replace(tzinfo=UTC)


def _check_http(record: WarcRecord) -> tuple[int, str]:
    """Status and Content-Type of a response that holds a page."""
    http = record.http_headers
    status = http.status_code
    if status is None:
        raise _Skip("bad-http-header", f"no HTTP status line: {http.status_line!r}")
    content_type = http.get("Content-Type") or ""
    mime = content_type.partition(";")[0].strip().lower()
    if mime not in PAGE_TYPES:
        raise _Skip("not-html", f"content type {content_type!r} is not a web page")
    return status, content_type


def _charset(content_type: str) -> str | None:
    """``text/html; charset="UTF-8"`` -> ``UTF-8``: the charset as the server declared it."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip(" \"'"):
            return value.strip(" \"'")
    return None


def _read_payload(record: WarcRecord, max_body_bytes: int) -> bytes:
    """The HTTP payload as stored. Short means the file was cut off inside this record."""
    # After the HTTP headers are parsed, content_length counts the payload alone.
    expected = record.content_length
    if expected > max_body_bytes:
        raise _Skip("oversized", f"payload of {expected:,} bytes, over {max_body_bytes:,}")
    try:
        raw = record.reader.read(expected)
    except OSError as err:
        raise _Corrupt(str(err)) from err
    if len(raw) < expected:
        raise _Corrupt(f"the record ends after {len(raw):,} of {expected:,} payload bytes")
    return raw


def _decode(raw: bytes, record: WarcRecord, max_body_bytes: int) -> bytes:
    """Undo the transfer and content encodings the record kept (crawlers differ in this)."""
    http = record.http_headers
    body = raw
    if "chunked" in (http.get("Transfer-Encoding") or "").lower():
        body = _dechunk(body)
    # Encodings apply in the order listed; undo them from the last.
    codings = [c.strip().lower() for c in (http.get("Content-Encoding") or "").split(",")]
    for coding in reversed([c for c in codings if c and c != "identity"]):
        body = _decompress(body, coding, max_body_bytes)
    return body


def _dechunk(raw: bytes) -> bytes:
    """Chunked transfer coding undone; the bytes as they are if they are not chunked.

    Some crawlers store the payload de-chunked but keep the header (warcio reads such
    records the same way), so a body that does not parse as chunks is taken as it is.
    """
    out = bytearray()
    pos = 0
    while True:
        line_end = raw.find(b"\r\n", pos)
        try:
            size = int(raw[pos:line_end].split(b";", 1)[0], 16)  # drops chunk extensions
        except ValueError:
            size = -1
        if line_end < 0 or size < 0:
            # Not chunks at all, or chunks cut short by the server: keep what there is.
            return raw if pos == 0 else bytes(out)
        if size == 0:
            return bytes(out)
        out += raw[line_end + 2 : line_end + 2 + size]
        pos = line_end + 2 + size + 2


def _decompress(data: bytes, coding: str, max_body_bytes: int) -> bytes:
    """One content coding undone, at most ``max_body_bytes`` of it (a gzip bomb is cheap)."""
    try:
        if coding in ("gzip", "x-gzip"):
            return _inflate(data, zlib.MAX_WBITS | 32, max_body_bytes)  # 32: gzip or zlib
        if coding == "deflate":
            return _deflate(data, max_body_bytes)
        if coding == "br":
            out = BrotliReader(io.BytesIO(data)).read(max_body_bytes + 1)
            return _bounded(out, max_body_bytes)
    except (zlib.error, OSError) as err:
        raise _Skip("undecodable", f"{coding} content encoding: {err}") from err
    raise _Skip("undecodable", f"unknown content encoding {coding!r}")


def _deflate(data: bytes, max_body_bytes: int) -> bytes:
    # "deflate" should be zlib-wrapped; many servers send the raw stream instead.
    try:
        return _inflate(data, zlib.MAX_WBITS, max_body_bytes)
    except zlib.error:
        return _inflate(data, -zlib.MAX_WBITS, max_body_bytes)


def _inflate(data: bytes, wbits: int, max_body_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, max_body_bytes + 1)
    if len(out) <= max_body_bytes and not inflater.eof:
        raise zlib.error("the compressed stream ends early")
    return _bounded(out, max_body_bytes)


def _bounded(out: bytes, max_body_bytes: int) -> bytes:
    if len(out) > max_body_bytes:
        raise _Skip("oversized", f"decoded body over {max_body_bytes:,} bytes")
    return out
