"""The records on newsflow's topics, declared once.

One class per topic value, each with a ``schema_version``. Fields are only ever added, as
optional; a breaking change gets a new topic. Timestamps are timezone-aware (UTC).

Values travel as JSON (bytes as base64). Agents consume raw bytes and decode them with
``decode``, so a message that does not decode is a value the agent can route to the
dead-letter topic with its original bytes, instead of an exception inside Faust's
deserialiser that would skip it silently.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from newsflow.query import Filters

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def article_id(canonical_url: str) -> str:
    """The stable id of an article: Kafka key where it fits and Elasticsearch ``_id``.

    It hashes the URL that ingest canonicalised (tracking parameters, fragments, default
    ports and case removed), not the page's own ``<link rel=canonical>``: some sites point
    every page's canonical link at their home page, and trusting it would merge their
    articles into one. Identical articles under different URLs are caught by the exact
    duplicate check instead.
    """
    return hashlib.blake2b(canonical_url.encode("utf-8"), digest_size=16).hexdigest()


class SourceKind(StrEnum):
    FEED = "feed"
    SITEMAP = "sitemap"
    WARC = "warc"
    URLS = "urls"
    DEMO = "demo"


class Record(BaseModel):
    model_config = ConfigDict(
        extra="ignore",  # a newer producer may add fields; an older consumer still reads it
        ser_json_bytes="base64",
        val_json_bytes="base64",
        frozen=True,
    )

    schema_version: int = SCHEMA_VERSION

    def encode(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


R = TypeVar("R", bound=Record)


class DecodeError(ValueError):
    """A message value that is not a valid record of the expected type (a poison message)."""


def decode(cls: type[R], data: bytes | None) -> R:
    if data is None:
        raise DecodeError(f"empty message: expected a {cls.__name__}")
    try:
        return cls.model_validate_json(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "value"
        raise DecodeError(
            f"not a {cls.__name__}: {where}: {first['msg']} ({err.error_count()} error(s))"
        ) from err


class Source(Record):
    """Where a page came from."""

    kind: SourceKind
    ref: str = Field("", description="the feed or sitemap URL, WARC file and offset, list file")


class RawPage(Record):
    """A fetched page, as ingest puts it on the pages topic (key: ``site``)."""

    url: str = Field(description="the URL the page was fetched from (after redirects)")
    canonical_url: str = Field(description="url canonicalised by ingest; hashed to article_id")
    site: str = Field(description="registered domain (or host:port); the partitioning key")
    fetched_at: AwareDatetime
    status: int = 200
    content_type: str = ""
    encoding: str | None = Field(None, description="charset declared by the HTTP headers")
    headers: dict[str, str] = Field(
        default_factory=dict, description="headers that matter: last-modified, etag, language"
    )
    body: bytes
    source: Source
    # Metadata a feed or sitemap already gave for this URL; extraction may fill what it lacks.
    hint_title: str | None = None
    hint_published_at: AwareDatetime | None = None

    @property
    def article_id(self) -> str:
        return article_id(self.canonical_url)


class PageOrigin(Record):
    """Where a page was read on the pages topic. Every output of the pipeline carries it, so
    ``newsflow audit`` can tell which page each outcome came from (an article_id alone
    cannot: the same URL may be sent twice)."""

    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class Entity(Record):
    text: str = Field(description="normalised name, e.g. 'Vladimir Putin', 'Financial Times'")
    label: str = Field(
        description="PERSON, ORG, LOC or MISC (CoreNLP); spaCy's are GPE, NORP, EVENT, ..."
    )
    count: int = Field(ge=1)
    first_offset: int = Field(ge=0, description="character offset in the joined text")
    paragraphs: list[int] = Field(description="indices of the paragraphs it appears in")
    variants: list[str] = Field(default_factory=list, description="surface forms merged into it")


class Removed(Record):
    """What cleaning took out, so nothing leaves the text without a trace."""

    title_repeats: int = Field(0, description="the title printed again as the first paragraph")
    in_page_repeats: int = Field(0, description="exact repeats within the page")
    short_repeats: int = Field(0, description="short headings or lines printed again")
    near_repeats: int = Field(0, description="paragraphs a fuller one of the page contains")
    boilerplate: int = 0
    teasers: int = Field(0, description="headlines of the site's other articles, and theirs")
    boilerplate_samples: list[str] = Field(default_factory=list)
    retroactive: int = Field(
        0, description="paragraphs removed after indexing, once known as boilerplate or teasers"
    )


class Article(Record):
    """A clean, deduplicated article (articles topic, key: site)."""

    article_id: str
    url: str
    canonical_url: str
    declared_canonical_url: str | None = None
    site: str
    site_name: str | None = None
    title: str | None = None
    authors: list[str] = Field(default_factory=list)
    published_at: AwareDatetime | None = None
    fetched_at: AwareDatetime
    language: str | None = None
    language_detected: bool = Field(False, description="True if guessed from the text")
    description: str | None = None
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    paragraphs: list[str]
    removed: Removed = Field(default_factory=Removed)
    text_hash: str = Field(description="hash of the normalised text: equal hash, same article")
    cluster_id: str = Field(description="story cluster: the first article_id seen of the story")
    duplicate_of: str | None = Field(None, description="article_id of the exact/near original")
    duplicate_kind: Literal["exact", "near"] | None = None
    source: Source
    origin: PageOrigin | None = Field(None, description="the page it was cleaned from")

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


class EnrichedArticle(Article):
    """An article with its named entities (enriched topic, key: article_id)."""

    entities: list[Entity] = Field(default_factory=list)
    ner_skipped: str | None = Field(None, description="why NER did not run, if it did not")


class Teaser(Record):
    """A story's headline as other pages print it in their "More from" blocks, and its own
    lines (normalised), which may follow the headline there."""

    headline: str
    lines: list[str] = Field(default_factory=list)


class Reclean(Record):
    """Text of a site known to be not its articles' own only after some of them were
    indexed with it: those are cleaned again and re-indexed (recleans topic, key: site).

    ``articles``: the articles known to carry it (the first page of each site story that
    kept it); other articles of the site that carry it are looked for as well.
    ``boilerplate``: paragraphs now known as the site's boilerplate. ``teaser``: a story
    whose headline earlier pages printed before it was seen. ``before``: only articles
    fetched before this time: later ones were judged knowing it.
    """

    site: str
    articles: list[str]
    boilerplate: list[str] = Field(default_factory=list)
    teaser: Teaser | None = None
    before: AwareDatetime
    requested_by: str = Field(description="article_id of the page that made it known")
    attempt: int = Field(0, description="times asked before, for articles not indexed yet")


class Watch(Record):
    """A standing query (watches topic, compacted, key: name; a null value removes it).

    ``created_at`` tells a watch from an earlier one of the same name: alerts are once per
    story per watch, and a watch removed and added again is a new one."""

    name: str = Field(min_length=1, max_length=200)
    query: str
    filters: Filters = Field(default_factory=Filters)
    created_at: AwareDatetime


def alert_id(watch: str, created_at: datetime, story: str) -> str:
    """One id per story per watch: what a receiver deduplicates on when an alert comes
    twice (delivery is at least once)."""
    key = f"{watch}\x1f{created_at.isoformat()}\x1f{story}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


class Alert(Record):
    """An indexed article a watch matched: on the matches topic keyed by story (where the
    first of a story's articles wins), then on the alerts topic keyed by watch."""

    alert_id: str
    watch: str
    watch_created_at: AwareDatetime
    query: str
    article_id: str
    story: str = Field(description="the article's story cluster: one alert per story")
    title: str | None = None
    url: str
    site: str
    snippet: str = Field("", description="the matched words marked «thus»")
    published_at: AwareDatetime | None = None
    fetched_at: AwareDatetime
    indexed_at: AwareDatetime = Field(description="when the article was searchable")
    matched_at: AwareDatetime
    withdrawn: bool = Field(
        False,
        description="the alert no longer holds: re-cleaning removed the text it matched (a "
        "teaser of another story, boilerplate learnt later) from the article that raised it",
    )


class Filtered(Record):
    """A page that is not an article, or whose extraction came out empty: not an error, but
    never dropped silently either (filtered topic, key: site)."""

    article_id: str
    url: str
    site: str
    reason: str = Field(description="stable code: not-html, too-short, empty-extraction, ...")
    detail: str
    fetched_at: AwareDatetime
    source: Source
    origin: PageOrigin | None = Field(None, description="the page it was read from")


class DeadLetter(Record):
    """How a dead letter is shown and replayed; the message itself keeps the original bytes
    and carries this information in its headers (see newsflow.deadletter)."""

    stage: str
    error_class: str
    error: str
    topic: str
    partition: int
    offset: int
    failed_at: AwareDatetime
    permanent: bool = True
    url: str = ""
    # For a failure that was never a message (ingest): the input it came from.
    source: str = ""
    key: Annotated[bytes | None, Field(repr=False)] = None
    value: Annotated[bytes | None, Field(repr=False)] = None


class NameVote(Record):
    """One article's label for one of its names (processors.name_labels)."""

    name: str = Field(description="the name's key: its text, case and apostrophes folded")
    label: str
    article_id: str
    at: float = Field(description="event time of the article (fetch time), seconds")


class NameLabel(Record):
    """The label the stream has settled on for a name (the labels topic's value)."""

    name: str
    label: str
