"""Extraction: a fetched page's bytes become clean paragraphs and metadata, or a reason why not.

``extract`` is pure. It depends only on its arguments and a frozen ``CleanOptions``, and
changes no module state: trafilatura's ``deduplicate`` cache (a module global) is never
enabled, because dedup keeps its state explicitly, in Faust tables (processors.paragraphs).

The stages, one function each::

    guard: size cap, empty body, binary signatures, content type   (before any parsing)
    decode: BOM, declared charsets, near-valid UTF-8, detection     -> str
    HTML: parse once; trafilatura text and metadata in one pass     -> paragraphs, metadata
    text/plain: first line is the title, blocks become paragraphs   -> paragraphs
    checks: empty, too short, not an article; language if undeclared

Bad input never raises: it comes back as ``Rejected(reason, detail)``, ``reason`` being one
of ``REASONS``, for the agent to route to the dead-letter topic. Only bugs raise.

Paragraphs are trafilatura's text blocks, one per line of its plain-text output: a ``<p>``
(split at ``<br>``, which many sites use instead of paragraphs), a list item, a table row, or a
heading. Headings are kept as their own paragraphs: an article record has no sections, and a
subheading carries content that search and entity tagging should see. No dedup happens
here (a standfirst repeated in the body stays): processors.repeats does that within the
page, processors.paragraphs across a site's pages; each paragraph's kind (heading or
paragraph, list item, table row) is handed on for the first.
"""

from __future__ import annotations

import codecs
import itertools
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, cast
from urllib.parse import urljoin, urlsplit

import py3langid  # type: ignore[import-untyped]  # ships no type information
import trafilatura
from charset_normalizer import from_bytes
from lxml import etree  # type: ignore[import-untyped]  # no stubs in use here

from processors.paragraphs import normalize
from processors.repeats import Kind

REASONS: Final = frozenset(
    {
        "too-large",  # over CleanOptions.max_body_bytes, rejected before parsing
        "empty-body",  # no bytes, or only white space
        "binary-body",  # an image, PDF, archive, still-compressed or otherwise binary body
        "not-html",  # a content type that is neither a web page nor plain text
        "undecodable",  # no character encoding makes text of the bytes
        "unparsable",  # decoded, but no HTML tree could be built
        "empty-extraction",  # parsed, but no main text found
        "too-short",  # main text shorter than CleanOptions.min_text_chars
        "not-article",  # the page declares itself as something other than an article
    }
)


@dataclass(frozen=True)
class CleanOptions:
    """How pages are cleaned. The trafilatura settings were chosen on its evaluation set
    (990 pages, bench/extraction_quality.py); F1 figures below are from that set."""

    # A news article is rarely over 1 MB of HTML; 5 MB leaves room for inline scripts
    # while keeping a single page from holding an agent for seconds.
    max_body_bytes: int = 5_000_000
    # Shorter main text is a stub (teaser, video page, paywall) rather than an article. On
    # the evaluation set, 150 rejects 2 of 990 pages (short blog notes); 200 would reject 4.
    # The shortest text among the fundus news pages is 397 characters.
    min_text_chars: int = 150
    # Reader comments are not the article: without them F1 is 0.926, with them 0.921.
    include_comments: bool = False
    # Tables in news are content (results, figures); trafilatura's default.
    include_tables: bool = True
    # Both off ("balanced"): precision mode gives F1 0.922, recall mode 0.920.
    favor_precision: bool = False
    favor_recall: bool = False
    # Fast mode skips the readability/jusText fallbacks, trading recall for speed.
    fast: bool = False
    # Search the page's free text for a date when the markup declares none (trafilatura's
    # default); the publication date is preferred over a later modification date.
    extensive_date_search: bool = True
    # Reject pages that say they are not articles: a site's home page, or a page declaring
    # one of these Open Graph types. "website" is absent on purpose: 8 of the 258 fundus
    # news articles declare it. This is policy, not extraction, so the benchmark scores
    # extraction with it off as well (the evaluation set has shop and home pages on purpose).
    reject_non_articles: bool = True
    non_article_types: frozenset[str] = frozenset(
        {"profile", "product", "book", "music.song", "music.album", "video.movie", "video.tv_show"}
    )
    # Language detection reads this much of the text: enough for a confident guess, and
    # bounded so a very long page costs no more than a normal one.
    language_sample_chars: int = 5_000


@dataclass(frozen=True)
class Extracted:
    """The main text of an article, as paragraphs, and what the page says about itself."""

    paragraphs: list[str]
    title: str | None = None
    # What each paragraph is, as processors.repeats reads it: "text" (a heading or a
    # paragraph), "item" (a list item), "cell" (a table row), "line" (a line of a plain-text
    # page, whose kind nobody knows) or "other". Empty: unknown, all "other".
    kinds: list[Kind] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None  # timezone-aware, UTC
    site_name: str | None = None
    language: str | None = None  # ISO 639-1 (or 639-3 where there is no 639-1 code)
    language_detected: bool = False  # True if guessed from the text: the page declared none
    description: str | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    declared_canonical_url: str | None = None  # the page's own <link rel=canonical>, resolved

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True)
class Rejected:
    """Why a page yields no article: ``reason`` is a stable code from ``REASONS``."""

    reason: str
    detail: str


def extract(
    body: bytes,
    url: str,
    content_type: str = "",
    declared_encoding: str | None = None,
    options: CleanOptions = CleanOptions(),
) -> Extracted | Rejected:
    """Clean one fetched page: its main text as paragraphs plus metadata, or why not.

    ``declared_encoding`` is the charset of the HTTP headers; a ``charset`` parameter in
    ``content_type`` counts as one too. Bad input gives a ``Rejected``, never an exception.
    """
    mime, header_charset = _parse_content_type(content_type)
    declared = declared_encoding or header_charset
    problem = _guard(body, mime, declared, options)
    if problem is not None:
        return problem
    text = decode(body, declared)
    if isinstance(text, Rejected):
        return text
    if _is_plain_text(mime, text):
        found: Extracted | Rejected = _from_plain_text(text)
    else:
        found = _from_html(text, url, options)
    if isinstance(found, Rejected):
        return found
    problem = _check(found, options)
    return problem or _with_language(found, options)


# --- guard: cheap checks on the raw bytes, before any decoding or parsing -------------

_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
# Types that say nothing about the content: the body is sniffed instead.
_VAGUE_TYPES: Final = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)
_PLAIN_TYPE: Final = "text/plain"

# File signatures of bodies that fetchers hand over by mistake. Checked whatever the
# declared type: servers do send PDFs and images as text/html.
_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an icon"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "gzip-compressed data (the fetcher did not undo Content-Encoding)"),
    (b"(\xb5/\xfd", "zstd-compressed data (the fetcher did not undo Content-Encoding)"),
    (b"BZh91AY&SY", "bzip2-compressed data"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"\x7fELF", "an executable"),
    (b"\x00asm", "a WebAssembly module"),
    (b"wOFF", "a web font"),
    (b"wOF2", "a web font"),
    (b"OggS", "Ogg media"),
    (b"fLaC", "FLAC audio"),
    (b"ID3", "MP3 audio"),
)
# C0 control bytes other than tab, line feed, vertical tab, form feed, carriage return and
# escape (which ISO-2022-JP uses). Text has essentially none; binary data has them everywhere.
_CONTROL_BYTES: Final = bytes([*range(0, 9), *range(14, 27), *range(28, 32)])


def _parse_content_type(content_type: str) -> tuple[str, str | None]:
    """``text/html; charset=UTF-8`` -> (``text/html``, ``UTF-8``)."""
    mime, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip(" \"'"):
            charset = value.strip(" \"'")
    return mime.strip().lower(), charset


def _guard(body: bytes, mime: str, declared: str | None, options: CleanOptions) -> Rejected | None:
    if len(body) > options.max_body_bytes:
        return Rejected(
            "too-large",
            f"body is {len(body):,} bytes, over the {options.max_body_bytes:,} byte limit",
        )
    if not body.strip():
        return Rejected("empty-body", "the body is empty or only white space")
    binary = _binary_kind(body, declared)
    if binary is not None:
        return Rejected("binary-body", f"the body is {binary}, not text (type {mime!r})")
    if mime not in _HTML_TYPES | _VAGUE_TYPES and mime != _PLAIN_TYPE:
        return Rejected("not-html", f"content type {mime!r} is neither a web page nor plain text")
    return None


def _binary_kind(body: bytes, declared: str | None) -> str | None:
    """What binary format the body is in, or None if it may be text."""
    for signature, kind in _SIGNATURES:
        if body.startswith(signature):
            return kind
    if body[8:12] == b"WEBP" and body.startswith(b"RIFF"):
        return "a WebP image"
    if body[4:8] == b"ftyp":
        return "an MP4/HEIF media file"
    if _bom_codec(body) is not None or _is_wide(_codecs(declared)):
        return None  # UTF-16/32 text is full of NUL bytes
    sample = body[:4096]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if b"\x00" in sample or controls * 100 > len(sample):
        return "binary data (control bytes where text has none)"
    return None


# --- decode: bytes -> str --------------------------------------------------------------

_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_LABEL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}")
_META_CHARSET: Final = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9][A-Za-z0-9_.:-]*)""", re.IGNORECASE
)
_XML_ENCODING: Final = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
# Labels that browsers (WHATWG Encoding) decode with a superset: a page declared
# ISO-8859-1 is really windows-1252, whose curly quotes and dashes latin-1 lacks.
_SUPERSETS: Final = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}


# Web labels Python does not know by that name.
_WEB_LABELS: Final = {"windows-874": "cp874", "x-sjis": "cp932", "x-mac-roman": "mac-roman"}
# Python codecs that no web page is in, some of which raise or warn on arbitrary bytes;
# UTF-7 too, which browsers refuse because it smuggles markup past filters.
_NOT_CHARSETS: Final = frozenset(
    {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "utf-7"}
)


def decode(body: bytes, declared: str | None = None) -> str | Rejected:
    """The text of a body, deciding its encoding from the evidence in this order:

    1. a byte order mark, which the HTML standard puts above any declaration;
    2. a declared UTF-16/32 (no BOM), which the UTF-8 check below would misread;
    3. (nearly) valid UTF-8: legacy encodings almost never form valid multi-byte sequences,
       so this wins over a declaration (servers default to "ISO-8859-1" for UTF-8 pages);
    4. the declared charsets (HTTP, then ``<meta>``) that decode the bytes into plausible
       text (``_workable``); when two do and disagree, charset-normalizer picks;
    5. charset-normalizer's detection over all encodings.
    """
    bom = _bom_codec(body)
    if bom is not None:
        return body.decode(bom, errors="replace")
    labels = [declared, _meta_charset(body)]
    wide = [c for c in _codecs(declared) if _is_wide([c])]
    text = _strict(body, wide[0]) if wide else None
    if text is None:
        text = _nearly_utf8(body)
    if text is not None:
        return text
    workable = _workable(body, labels)
    codec = workable[0] if len(workable) == 1 else _detect(body, workable)
    if codec is None and len(workable) > 1:
        codec = workable[0]  # detection undecided: the HTTP header comes first
    if codec is None:
        return Rejected("undecodable", "no character encoding makes text of the body")
    return body.decode(codec, errors="replace")  # detection samples: a stray byte may remain


def _bom_codec(body: bytes) -> str | None:
    return next((codec for bom, codec in _BOMS if body.startswith(bom)), None)


def _meta_charset(body: bytes) -> str | None:
    """The charset in a ``<meta>`` tag or XML declaration near the start of the page."""
    head = body[:8192]
    match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    return match.group(1).decode("ascii") if match else None


def _codecs(label: str | None) -> list[str]:
    """Python codecs for a charset label, the browsers' superset first; [] if unknown."""
    if not label or not _LABEL.fullmatch(label.strip()):
        return []
    label = label.strip().lower()
    try:
        name = codecs.lookup(_WEB_LABELS.get(label, label)).name
    except LookupError:
        return []
    if name in _NOT_CHARSETS:
        return []
    superset = _SUPERSETS.get(name)
    return [superset, name] if superset else [name]


def _is_wide(codec_names: list[str]) -> bool:
    return any(name.startswith(("utf-16", "utf-32")) for name in codec_names)


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeError, LookupError):  # LookupError: a bytes-to-bytes codec (base64)
        return None


def _nearly_utf8(body: bytes) -> str | None:
    """The body as UTF-8 if it is, allowing one bad sequence per 20 non-ASCII bytes: a
    page truncated mid-character, or one stray windows-1252 byte pasted into UTF-8."""
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - body.count("\ufffd".encode())
    if bad == 0:
        return text
    non_ascii = len(body.translate(None, bytes(range(128))))
    return text if bad * 20 <= non_ascii - bad else None


def _workable(body: bytes, labels: list[str | None]) -> list[str]:
    """For each declared label, the first of its codecs that decodes the body into text.

    Decoding without error is not enough: a single-byte codec decodes any bytes, so a
    Russian windows-1251 page declared ISO-8859-1 (a common server default) would become
    mojibake. charset-normalizer, held to that one codec, judges whether the result reads
    as text (on the re-encoded fundus pages it tells every such case apart)."""
    found: list[str] = []
    for label in labels:
        usable = (c for c in _codecs(label) if _strict(body, c) is not None)
        codec = next((c for c in usable if _detect(body, [c]) is not None), None)
        if codec is not None and codec not in found:
            found.append(codec)
    return found


def _detect(body: bytes, candidates: list[str]) -> str | None:
    """charset-normalizer's best encoding among ``candidates`` (all if empty), or None if
    none of them gives plausible text."""
    best = from_bytes(body, cp_isolation=candidates or None).best()
    return None if best is None else best.encoding


# --- text/plain ------------------------------------------------------------------------

_SPACES: Final = re.compile(r"[^\S\n]+")
_LINE_END: Final = re.compile(r"\r\n?")
# Closing punctuation after which a line may end a paragraph (escapes: ruff flags the glyphs).
_SENTENCE_END: Final = tuple(".!?:;\"')\u2026\u00bb\u201d\u2019")


def _is_plain_text(mime: str, text: str) -> bool:
    """Plain text unless it looks like HTML: crawlers label flattened pages text/plain, and
    some servers label HTML text/plain, so the start of the text decides for those two."""
    if mime in _HTML_TYPES:
        return False
    head = _LEADING_COMMENTS.sub("", text[:65536], count=1)[:1024].lower()
    looks_html = head.startswith(_HTML_STARTS) or "<body" in head
    return not looks_html


# Comments and white space a CMS puts before the markup (a build stamp, a licence): they
# can run longer than the head that is looked at, and are no text of the page.
_LEADING_COMMENTS: Final = re.compile(r"\A(?:\s*<!--.*?-->)*\s*", re.DOTALL)
_HTML_STARTS: Final = ("<!doctype html", "<html", "<?xml", "<head")


def _from_plain_text(text: str) -> Extracted:
    title, paragraphs = split_plain_text(text)
    return Extracted(paragraphs=paragraphs, title=title, kinds=["line"] * len(paragraphs))


def split_plain_text(text: str) -> tuple[str | None, list[str]]:
    """(title, paragraphs) of a page flattened to plain text: the first line is the title;
    blank lines separate blocks; a block's lines are one paragraph each, unless the block is
    hard-wrapped prose, whose lines are joined back (see ``_unwrap``)."""
    text = unicodedata.normalize("NFC", _LINE_END.sub("\n", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    blocks = [block for block in blocks if block]
    if not blocks:
        return None, []
    title = blocks[0].pop(0)
    return title, [paragraph for block in blocks if block for paragraph in _unwrap(block)]


def _unwrap(lines: list[str]) -> list[str]:
    """A block's paragraphs. Hard-wrapped prose (a third or more of its line breaks fall
    mid-sentence: the next line goes on in lower case) is joined, breaking only after a
    short line that ends a sentence; anything else (headlines, captions, comment widget
    lines) keeps one paragraph per line."""
    breaks = list(itertools.pairwise(lines))
    mid_sentence = sum(1 for before, after in breaks if _continues(before, after))
    if not breaks or mid_sentence * 3 < len(breaks):
        return lines
    width = max(len(line) for line in lines)
    paragraphs = [lines[0]]
    for before, line in breaks:
        if before.endswith(_SENTENCE_END) and len(before) < 0.7 * width:
            paragraphs.append(line)
        else:
            paragraphs[-1] = f"{paragraphs[-1]} {line}"
    return paragraphs


def _continues(before: str, after: str) -> bool:
    return not before.endswith(_SENTENCE_END) and after[:1].islower()


# --- HTML ------------------------------------------------------------------------------

_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_LANGUAGE_KEYS: Final = frozenset({"content-language", "language", "dc.language", "og:locale"})
_NO_LANGUAGE: Final = frozenset({"und", "mul", "zxx", "xx"})
_LANGUAGE_CODE: Final = re.compile(r"[a-z]{2,3}")
_PUBLISHED_KEYS: Final = frozenset(
    {"article:published_time", "og:article:published_time", "datepublished", "dc.date.issued"}
)
_JSON_LD_PUBLISHED: Final = re.compile(r'"datePublished"\s*:\s*"([^"]{10,40})"')


def _from_html(text: str, url: str, options: CleanOptions) -> Extracted | Rejected:
    tree = _parse(text)
    if tree is None:
        return Rejected("unparsable", "no HTML document could be parsed from the body")
    not_article = _not_article(tree, url, options)
    if not_article is not None:
        return not_article
    # The tree is parsed once; bare_extraction copies it before cleaning it.
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        include_comments=options.include_comments,
        include_tables=options.include_tables,
        favor_precision=options.favor_precision,
        favor_recall=options.favor_recall,
        fast=options.fast,
        deduplicate=False,  # its cache is a module global; dedup state lives in Faust tables
        date_extraction_params=_date_params(options),
    )
    if doc is None:
        return Rejected("empty-extraction", "trafilatura found no main text in the page")
    found = _extracted(doc, tree, url)
    return _link_list(found, tree, options) or found


def _link_list(found: Extracted, tree: Any, options: CleanOptions) -> Rejected | None:
    """A section or index page: its "main text" is mostly headlines that are links.

    Measured on the 990 trafilatura evaluation pages and the 258 fundus articles before
    choosing the share: an article's paragraphs are almost never whole links.
    """
    if not options.reject_non_articles or len(found.paragraphs) < LINK_LIST_MIN_PARAGRAPHS:
        return None
    anchors = {" ".join(a.text_content().split()) for a in tree.iter("a")}
    linked = sum(1 for p in found.paragraphs if " ".join(p.split()) in anchors)
    if linked / len(found.paragraphs) < LINK_LIST_SHARE:
        return None
    return Rejected(
        "not-article",
        f"{linked} of its {len(found.paragraphs)} paragraphs are links: a list of articles",
    )


def _parse(text: str) -> Any:
    """An lxml tree (trafilatura's loader, with its repairs), or None. A fragment without
    ``<html>`` is wrapped: the loader takes a single block for "not HTML" otherwise."""
    tree = trafilatura.load_html(text)
    if tree is None:
        tree = trafilatura.load_html(f"<html><body>{text}</body></html>")
    return tree


def _date_params(options: CleanOptions) -> dict[str, Any]:
    # No max_date: htmldate then allows up to the end of today, where trafilatura's own
    # default (today at midnight) would reject an article published earlier today.
    return {
        "original_date": True,  # publication, not last modification
        "extensive_search": options.extensive_date_search,
        "outputformat": "%Y-%m-%dT%H:%M:%S%z",  # keep the time and zone where the page has them
    }


def _extracted(doc: Any, tree: Any, url: str) -> Extracted:
    paragraphs = _paragraphs(doc.text or "")
    return Extracted(
        paragraphs=paragraphs,
        kinds=_kinds(paragraphs, doc.body),
        title=doc.title or None,
        authors=_authors(doc.author),
        published_at=_published_at(tree, doc.date),
        site_name=doc.sitename or None,
        language=_declared_language(tree),
        description=doc.description or None,
        categories=list(doc.categories or []),
        tags=list(doc.tags or []),
        declared_canonical_url=_canonical_url(tree, url),
    )


def _paragraphs(text: str) -> list[str]:
    # NFC, as trafilatura.extract does for its output: pages mix composed and decomposed
    # forms (Bengali, or a "u" plus combining diaeresis), and search and dedup compare text.
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return [unicodedata.normalize("NFC", line) for line in lines if line]


def _kinds(paragraphs: list[str], body: Any) -> list[Kind]:
    """Each text line's kind, read back from trafilatura's XML, which the text was made of.

    Its text output writes a list item as "- item" and a table row as "| cell | cell |";
    any other line is a heading, a paragraph or a quote (or a part of one between line
    breaks) when its normalised text is one of theirs, and "other" when it cannot be placed.
    """
    prose: set[str] = set()
    if body is not None:
        for element in body.iter("p", "head", "quote"):
            if not any(a.tag in ("item", "cell") for a in element.iterancestors()):
                prose.update(normalize(piece) for piece in _lines_of(element).split("\n"))
    kinds: list[Kind] = []
    for line in paragraphs:
        if line.startswith("| "):
            kinds.append("cell")
        elif line.startswith("- "):
            kinds.append("item")
        else:
            kinds.append("text" if normalize(line) in prose else "other")
    return kinds


def _lines_of(element: Any) -> str:
    """An element's text, a line break where it has ``<lb/>``, without its tail."""
    parts: list[str] = []
    for event, node in etree.iterwalk(element, events=("start", "end")):
        if event == "start":
            parts.append("\n" if node.tag == "lb" else node.text or "")
        elif node is not element:
            parts.append(node.tail or "")
    return "".join(parts)


def _authors(author: str | None) -> list[str]:
    # trafilatura joins the authors it finds with "; ".
    names = (name.strip() for name in (author or "").split(";"))
    return list(dict.fromkeys(name for name in names if name))


def _published_at(tree: Any, found: str | None) -> datetime | None:
    """When the article was published, as an aware UTC datetime.

    First the instants the page states with their zone (Open Graph, schema.org JSON-LD):
    htmldate reads them too but can drop the zone and label the local time UTC (on the
    fundus pages, hours off for most sites east of Greenwich). Else htmldate's find
    (``found``); if it has no zone (or no time) it is taken as UTC: the site's zone is
    unknown, and the error is at most a day.
    """
    declared = (_utc(_parse_instant(value)) for value in _declared_dates(tree))
    moment = next((m for m in declared if m is not None), None)
    return moment if moment is not None else _utc(_parse_instant(found or ""), assume_utc=True)


def _utc(moment: datetime | None, assume_utc: bool = False) -> datetime | None:
    """``moment`` in UTC; None when it has no zone (unless ``assume_utc``) or cannot be
    shown in UTC: year 1 with a positive offset is before the first instant a datetime
    holds (a CMS's placeholder date), which is no publication date."""
    if moment is None or (moment.tzinfo is None and not assume_utc):
        return None
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        return None


def _declared_dates(tree: Any) -> list[str]:
    values = [value for key, value in _metas(tree) if key in _PUBLISHED_KEYS]
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() == "application/ld+json":
            values += _JSON_LD_PUBLISHED.findall(script.text or "")
    return values


def _parse_instant(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _metas(tree: Any) -> list[tuple[str, str]]:
    """(key, content) of the page's ``<meta>`` tags, the key from http-equiv, name, property
    or itemprop, lower case."""
    found = []
    for meta in tree.iter("meta"):
        key = meta.get("http-equiv") or meta.get("name") or meta.get("property") or ""
        key = key or meta.get("itemprop") or ""
        found.append((key.strip().lower(), (meta.get("content") or "").strip()))
    return found


def _not_article(tree: Any, url: str, options: CleanOptions) -> Rejected | None:
    """A page that says what it is, and it is not an article: a declared non-article
    Open Graph type, or a site's home page (a list of teasers, whatever it declares)."""
    if not options.reject_non_articles:
        return None
    page_type = next((value.lower() for key, value in _metas(tree) if key == "og:type"), None)
    if page_type in options.non_article_types:
        return Rejected("not-article", f"the page declares itself a {page_type!r} (og:type)")
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed URL is no evidence either way
        return None
    if parts.path in ("", "/") and not parts.query:
        return Rejected("not-article", f"{url} is a site's home page, not an article")
    return None


def _declared_language(tree: Any) -> str | None:
    """The language the page declares: ``<html lang>``, else a language ``<meta>``."""
    values = [tree.get("lang"), tree.get(_XML_LANG)]
    values += [value for key, value in _metas(tree) if key in _LANGUAGE_KEYS]
    return next((code for value in values if (code := _language_code(value))), None)


def _language_code(value: str | None) -> str | None:
    """``de-AT``, ``de_AT``, ``de, en`` -> ``de``; None for no or a non-language value."""
    primary = re.split(r"[-_,;\s]", (value or "").strip().lower())[0]
    if _LANGUAGE_CODE.fullmatch(primary) and primary not in _NO_LANGUAGE:
        return primary
    return None


def _canonical_url(tree: Any, url: str) -> str | None:
    """The page's ``<link rel=canonical>`` (else ``og:url``), resolved against its URL."""
    hrefs = [
        link.get("href") or ""
        for link in tree.iter("link")
        if "canonical" in (link.get("rel") or "").lower().split()
    ]
    hrefs += [value for key, value in _metas(tree) if key == "og:url"]
    href = next((h.strip() for h in hrefs if h.strip()), None)
    if href is None:
        return None
    try:
        return str(urljoin(url, href))
    except ValueError:  # a malformed URL (e.g. a broken IPv6 host) in either
        return None


LINK_LIST_MIN_PARAGRAPHS: Final = 3
LINK_LIST_SHARE: Final = 0.6

# --- checks and language ---------------------------------------------------------------


def _check(found: Extracted, options: CleanOptions) -> Rejected | None:
    if not found.paragraphs:
        return Rejected("empty-extraction", "the page has no text besides its title")
    chars = sum(len(paragraph) for paragraph in found.paragraphs)
    if chars < options.min_text_chars:
        return Rejected(
            "too-short",
            f"the main text has {chars} characters, fewer than the {options.min_text_chars}"
            " an article needs",
        )
    return None


def _with_language(found: Extracted, options: CleanOptions) -> Extracted:
    if found.language is not None:
        return found
    sample = found.text[: options.language_sample_chars]
    language, _score = py3langid.classify(sample)
    return replace(found, language=cast(str, language), language_detected=True)
