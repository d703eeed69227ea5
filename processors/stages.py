"""What each stage does to one record, with its state passed in: no Faust, no Kafka.

The Faust agents in processors.app only decode messages, call these, send the results on
and route failures; the tests call these directly with dicts as state.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from newsflow.records import (
    Article,
    EnrichedArticle,
    Filtered,
    PageOrigin,
    RawPage,
    Reclean,
    Removed,
    Teaser,
)
from processors import clean, paragraphs, repeats, stories
from processors.entities import Tagger

State = MutableMapping[str, Any]


class SiteState(MutableMapping[str, Any]):
    """One site's view of a table that many sites share, its keys prefixed by the site.

    processors.stories keeps keys shared by all the articles it has seen (time slots, LSH
    bands). In a table split over partitions each partition's store keeps its own copy of
    such a key, so they must never be written from two partitions: prefixing them with the
    site (whose pages all arrive on one partition) keeps every key on one partition.
    """

    def __init__(self, table: State, site: str) -> None:
        self._table, self._prefix = table, f"{site}\x1e"

    def __getitem__(self, key: str) -> Any:
        return self._table[self._prefix + key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._table[self._prefix + key] = value

    def __delitem__(self, key: str) -> None:
        del self._table[self._prefix + key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self._prefix + key) in self._table

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in list(self._table) if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class PipelineOptions:
    clean: clean.CleanOptions = field(default_factory=clean.CleanOptions)
    repeats: repeats.RepeatPolicy = repeats.DEFAULT_POLICY
    boilerplate: paragraphs.BoilerplatePolicy = paragraphs.DEFAULT_POLICY
    stories: stories.StoryPolicy = stories.DEFAULT_POLICY
    boilerplate_samples: int = 3


def sites_key(partition: int) -> str:
    # One registry per partition: a key written from two partitions' events would have a
    # copy in each partition's store (see SiteState).
    return f"\x00sites:{partition}"


def note_site(site_stories: State, partition: int, site: str) -> None:
    """Remember that ``site`` lives on ``partition``, for processors.sweep."""
    sites = site_stories.get(sites_key(partition)) or []
    if site not in sites:
        site_stories[sites_key(partition)] = sorted([*sites, site])


def extract(
    page: RawPage, options: PipelineOptions, origin: PageOrigin | None = None
) -> clean.Extracted | Filtered:
    """The CPU-heavy, stateless half of the clean stage (runs off the event loop).

    ``origin`` is where the page was read on the pages topic; a Filtered record carries it
    so that `newsflow audit` can match it to exactly that page."""
    found = clean.extract(page.body, page.url, page.content_type, page.encoding, options.clean)
    if isinstance(found, clean.Rejected):
        return Filtered(
            article_id=page.article_id,
            url=page.url,
            site=page.site,
            reason=found.reason,
            detail=found.detail,
            fetched_at=page.fetched_at,
            source=page.source,
            origin=origin,
        )
    return found


@dataclass(frozen=True)
class Cleaned:
    """The clean stage's answer for a page: its article, and the re-cleanings of earlier
    articles of its site that this page made necessary (processors.reclean)."""

    article: Article
    recleans: list[Reclean] = field(default_factory=list)


# Lines of a teased story sent with a request to re-clean: teaser lines are a standfirst
# and a caption, short; a long article's other paragraphs need not travel.
TEASER_LINE_CHARS = 300
TEASER_LINES = 50


def deduplicate(
    page: RawPage,
    found: clean.Extracted,
    site_stories: State,
    boilerplate: State,
    options: PipelineOptions,
    origin: PageOrigin | None = None,
) -> Cleaned:
    """The stateful half of the clean stage: in-page repeats, then site boilerplate.

    Boilerplate is counted per story, not per page, so a story republished under several
    URLs of a site does not turn its own text into boilerplate. The story here is the
    site-level one (this partition's table): the global clustering comes later, in the
    stories stage, and cannot be waited for. Its fingerprint is taken on the text without
    the boilerplate already known, and a near match within the site must be alike in
    its own text too (processors.stories), so a shared template cannot make two different
    articles one story before it is known as boilerplate. ``origin`` (the page's place on
    the pages topic) travels with the article to the index, as in ``extract``.
    """
    now = page.fetched_at.timestamp()
    in_page = repeats.dedup_in_page(
        found.paragraphs, found.kinds or None, options.repeats, title=found.title
    )
    unique = in_page.paragraphs
    known, _ = paragraphs.strip_boilerplate(
        page.site, page.article_id, unique, boilerplate, now, options.boilerplate
    )
    fp = stories.fingerprint(known, options.stories)
    site_state = SiteState(site_stories, page.site)
    site_story = stories.assign(
        page.article_id, fp, site_state, now, options.stories, site=page.site
    )
    result = paragraphs.dedup(
        page.site,
        site_story.cluster_id,
        unique,
        boilerplate,
        now,
        options.boilerplate,
        headlines=(found.title or page.hint_title, found.description),
        also_seen=[*in_page.near, *in_page.short],
    )
    removed = Removed(
        title_repeats=len(in_page.title),
        in_page_repeats=len(in_page.exact),
        short_repeats=len(in_page.short),
        near_repeats=len(in_page.near),
        boilerplate=len(result.boilerplate),
        teasers=len(result.teasers),
        boilerplate_samples=result.boilerplate[: options.boilerplate_samples],
    )
    article = _article(page, found, result.paragraphs, removed, site_story.cluster_id, origin)
    own = [*unique, *in_page.near, *in_page.short]
    recleans = _recleans(page, article, result, own, boilerplate, now, options)
    return Cleaned(article, recleans)


def _recleans(
    page: RawPage,
    article: Article,
    result: paragraphs.Deduped,
    own: list[str],
    boilerplate: State,
    now: float,
    options: PipelineOptions,
) -> list[Reclean]:
    """Requests to clean earlier articles again: those that kept what this page is the
    first to strip as boilerplate (one request per group of articles), and those that
    printed this story's headline before the story was seen."""
    story, policy = article.cluster_id, options.boilerplate
    newly = paragraphs.newly_boilerplate(
        page.site, story, result.boilerplate, boilerplate, now, policy, result.teased_by
    )
    groups: dict[tuple[str, ...], list[str]] = {}
    for paragraph, kept_by in newly.items():
        groups.setdefault(tuple(kept_by), []).append(paragraph)
    requests = [
        Reclean(
            site=page.site,
            articles=list(kept_by),
            boilerplate=texts,
            before=page.fetched_at,
            requested_by=page.article_id,
        )
        for kept_by, texts in sorted(groups.items())
    ]
    teased = result.teased_by
    first = paragraphs.first_sighting(page.site, story, article.title, boilerplate, now, policy)
    if teased and first and article.title:
        lines = [paragraphs.normalize(p) for p in own if len(p) <= TEASER_LINE_CHARS]
        teaser = Teaser(headline=article.title, lines=lines[:TEASER_LINES])
        requests.append(
            Reclean(
                site=page.site,
                articles=teased,
                teaser=teaser,
                before=page.fetched_at,
                requested_by=page.article_id,
            )
        )
    return requests


def too_short_after_dedup(article: Article, options: PipelineOptions) -> Filtered | None:
    """The length check again, on what dedup kept: a stub whose own text is one line
    ("Watch the video of the storm.") passed the first check only because its template
    made it long enough. Nothing is taken out of one that had nothing taken out."""
    removed = article.removed
    repeated = (
        removed.title_repeats
        + removed.in_page_repeats
        + removed.short_repeats
        + removed.near_repeats
    )
    if not (removed.boilerplate or removed.teasers or repeated):
        return None
    chars = sum(len(p) for p in article.paragraphs)
    needed = options.clean.min_text_chars
    if chars >= needed:
        return None
    return Filtered(
        article_id=article.article_id,
        url=article.url,
        site=article.site,
        reason="too-short",
        detail=f"{chars} characters are its own after {removed.boilerplate} boilerplate, "
        f"{removed.teasers} teaser and {repeated} repeated paragraph(s) were removed, fewer "
        "than the "
        f"{needed} an article needs",
        fetched_at=article.fetched_at,
        source=article.source,
        origin=article.origin,
    )


def _article(
    page: RawPage,
    found: clean.Extracted,
    kept: list[str],
    removed: Removed,
    story: str,
    origin: PageOrigin | None,
) -> Article:
    return Article(
        article_id=page.article_id,
        url=page.url,
        canonical_url=page.canonical_url,
        declared_canonical_url=found.declared_canonical_url,
        site=page.site,
        site_name=found.site_name,
        title=found.title or page.hint_title,
        authors=found.authors,
        published_at=found.published_at or page.hint_published_at,
        fetched_at=page.fetched_at,
        language=found.language,
        language_detected=found.language_detected,
        description=found.description,
        categories=found.categories,
        tags=found.tags,
        paragraphs=kept,
        removed=removed,
        text_hash=stories.text_hash(kept),
        cluster_id=story,
        source=page.source,
        origin=origin,
    )


def cluster(article: Article, state: State, options: PipelineOptions) -> Article:
    """The stories stage: the article's global story cluster, across all sites."""
    fp = stories.fingerprint(article.paragraphs, options.stories)
    now = article.fetched_at.timestamp()
    found = stories.assign(article.article_id, fp, state, now, options.stories, site=article.site)
    return article.model_copy(
        update={
            "text_hash": fp.text_hash,
            "cluster_id": found.cluster_id,
            "duplicate_of": found.duplicate_of,
            "duplicate_kind": found.kind,
        }
    )


def skip_enrichment(article: Article) -> EnrichedArticle | None:
    """Exact duplicates are not tagged again: the original carries the entities."""
    if article.duplicate_kind != "exact":
        return None
    return EnrichedArticle(
        **article.model_dump(), ner_skipped=f"exact duplicate of {article.duplicate_of}"
    )


def enrich(articles: Sequence[Article], tagger: Tagger) -> list[EnrichedArticle]:
    """The enrich stage, batched: the taggers over all paragraphs of the batch."""
    results = tagger.tag_many(
        [(a.paragraphs, a.language) for a in articles], [a.site_name for a in articles]
    )
    return [
        EnrichedArticle(**a.model_dump(), entities=r.entities, ner_skipped=r.skipped)
        for a, r in zip(articles, results, strict=True)
    ]
