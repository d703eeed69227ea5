"""Story identity on a site whose long template dwarfs its short articles, in text/plain
and in HTML: each article is its own story, in the site stage and in the global stories
stage, while a story republished under another URL, a live story updated under its URL
and a wire copy edited on the way stay one story; the template goes once learnt, and no
paragraph of an article's own text is ever lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import pytest

from newsflow.records import Article, RawPage, Reclean, Source, SourceKind
from processors import clean
from processors.paragraphs import normalize
from processors.stages import PipelineOptions, cluster, deduplicate, extract

OPTIONS = PipelineOptions()
T0 = datetime(2026, 3, 1, tzinfo=UTC)
SITE = "gazette.example"

TEMPLATE = [
    "The Harbour Gazette has covered the city and its port since 1911, with a newsroom on "
    "the quay and correspondents in every district.",
    "Subscribe to the Harbour Gazette for the morning briefing, delivered before seven, "
    "with the tides, the ferries and the council's agenda.",
    "Our journalism is paid for by readers: support the Gazette from two euros a month, "
    "and read every article without a limit.",
    "Comments are moderated and may take an hour to appear under an article; read our "
    "community guidelines before you post.",
    "Report an error or send us a tip: the newsdesk answers every message within a day, "
    "and corrections are published at the foot of the article.",
]

# Short articles: each about a third of the template's length.
OWN = [
    [
        "The ferry to Lindholm will leave at quarter past six from April, the operator said, "
        "after commuters complained that the first crossing missed the early trains.",
    ],
    [
        "Dredging of the inner basin starts in May and will close berths four to seven for "
        "three weeks, the port authority told fishermen at a meeting on Friday.",
    ],
    [
        "Parents at Eastgate primary collected four hundred signatures against the plan to "
        "move school meals to a central kitchen across the river.",
    ],
    [
        "A consortium of two utilities won the licence for a wind farm of forty turbines off "
        "the northern cape, with a cable landing beside the old lighthouse.",
    ],
    [
        "Bus fares rise by ten cents in July, the transport board decided, the first increase "
        "since the pandemic, while monthly passes keep their price.",
    ],
    [
        "The old fish hall reopens as a food market in June after a renovation of two years, "
        "with thirty stalls and a bakery that bakes on the premises.",
    ],
]
TITLES = [
    "Lindholm ferry to leave earlier from April",
    "Dredging closes four berths in the inner basin",
    "Parents petition against school meals plan",
    "Utilities win licence for northern wind farm",
    "Bus fares rise by ten cents in July",
    "Old fish hall reopens as a food market",
]


def plain(n: int, own: list[str], path: str | None = None, minutes: int | None = None) -> RawPage:
    text = "\n\n".join([TITLES[n % len(TITLES)], *own, *TEMPLATE])
    return _page(path or f"/news/{n}.txt", "text/plain; charset=utf-8", text, minutes or n)


def html(n: int, own: list[str], path: str | None = None, minutes: int | None = None) -> RawPage:
    # The template sits inside <article>, where extraction keeps it: as many sites do
    # with an "about us" box, a subscription pitch and comment rules below the text.
    body = "".join(f"<p>{escape(p)}</p>" for p in [*own, *TEMPLATE])
    doc = (
        f"<!doctype html><html lang='en'><head><title>{TITLES[n % len(TITLES)]}</title></head>"
        f"<body><article><h1>{TITLES[n % len(TITLES)]}</h1>{body}</article></body></html>"
    )
    return _page(path or f"/news/{n}.html", "text/html; charset=utf-8", doc, minutes or n)


def _page(path: str, content_type: str, text: str, minutes: int) -> RawPage:
    url = f"https://{SITE}{path}"
    return RawPage(
        url=url,
        canonical_url=url,
        site=SITE,
        fetched_at=T0 + timedelta(minutes=minutes),
        content_type=content_type,
        body=text.encode(),
        source=Source(kind=SourceKind.DEMO),
    )


class Pipeline:
    """The clean stage's two tables and the stories stage's table, as dicts."""

    def __init__(self) -> None:
        self.site_stories: dict[str, Any] = {}
        self.boilerplate: dict[str, Any] = {}
        self.stories: dict[str, Any] = {}
        self.site_story: dict[str, str] = {}  # article id -> its story in the site stage
        self.recleans: list[Reclean] = []

    def run(self, page: RawPage) -> Article:
        found = extract(page, OPTIONS)
        assert isinstance(found, clean.Extracted), found
        cleaned = deduplicate(page, found, self.site_stories, self.boilerplate, OPTIONS)
        article = cleaned.article
        self.recleans += cleaned.recleans
        self.site_story[article.article_id] = article.cluster_id
        return cluster(article, self.stories, OPTIONS)


def own_text(article: Article) -> set[str]:
    return {normalize(p) for p in article.paragraphs}


@pytest.mark.parametrize("make", [plain, html], ids=["text-plain", "html"])
def test_short_articles_under_one_template_are_each_their_own_story(make: Any) -> None:
    pipeline = Pipeline()
    articles = [pipeline.run(make(n, own)) for n, own in enumerate(OWN)]
    # Each its own story in the site stage and in the global one, where no article is
    # called a duplicate of another.
    ids = [a.article_id for a in articles]
    assert [pipeline.site_story[i] for i in ids] == ids
    assert [a.duplicate_of for a in articles] == [None] * len(OWN)
    assert [a.cluster_id for a in articles] == [a.article_id for a in articles]
    # Each was a story of its own, so the template counted on three stories by the
    # fourth page and is gone from it and every later one ...
    template = {normalize(t) for t in TEMPLATE}
    for article in articles[3:]:
        assert not own_text(article) & template, article.url
        assert article.removed.boilerplate == len(TEMPLATE)
    # ... and no page lost a paragraph of its own.
    for article, own in zip(articles, OWN, strict=True):
        assert {normalize(p) for p in own} <= own_text(article), article.url


@pytest.mark.parametrize("make", [plain, html], ids=["text-plain", "html"])
def test_a_story_republished_under_a_second_url_is_one_story(make: Any) -> None:
    pipeline = Pipeline()
    first = pipeline.run(make(0, OWN[0]))
    pipeline.run(make(1, OWN[1]))
    again = pipeline.run(make(0, OWN[0], path="/amp/news/0", minutes=5))
    assert again.article_id != first.article_id
    assert again.cluster_id == first.cluster_id
    assert again.duplicate_of == first.article_id and again.duplicate_kind == "exact"


@pytest.mark.parametrize("make", [plain, html], ids=["text-plain", "html"])
def test_a_live_story_updated_under_its_url_stays_one_story(make: Any) -> None:
    pipeline = Pipeline()
    for n in range(1, 4):
        pipeline.run(make(n, OWN[n]))
    versions = [OWN[0][:1]]
    versions.append([*versions[-1], "Update: the operator added a second early crossing."])
    versions.append(
        [*versions[-1], "Update: the council welcomed the change and will review it in June."]
    )
    clusters = {pipeline.run(make(0, v, minutes=10 + i)).cluster_id for i, v in enumerate(versions)}
    assert len(clusters) == 1


@pytest.mark.parametrize("make", [plain, html], ids=["text-plain", "html"])
def test_a_wire_copy_edited_on_the_way_joins_the_original_on_the_same_site(make: Any) -> None:
    wire = [
        "Shipping lines diverted six container ships from Kessling to Gdansk on Monday as a "
        "strike by dockworkers over twelve-hour shifts entered its second day.",
        "The union said the walkout would last at least until Wednesday, when talks with "
        "Nordcastle Terminals are due to resume at the city hall.",
        "Port officials said about forty thousand containers were waiting on the quays and "
        "that perishable cargo would be given priority once cranes restart.",
    ]
    edited = [
        wire[0].replace("on Monday", "on Monday morning"),
        wire[1].replace("at the city hall", "at Kessling city hall"),
        wire[2],
        "Additional reporting by the Gazette's port correspondent.",
    ]
    pipeline = Pipeline()
    original = pipeline.run(make(0, wire))
    pipeline.run(make(1, OWN[1]))
    copy = pipeline.run(make(2, edited, path="/news/wire-copy", minutes=7))
    assert copy.cluster_id == original.cluster_id
    assert copy.duplicate_of == original.article_id and copy.duplicate_kind == "near"


def test_the_same_articles_on_two_sites_are_wire_copies_across_sites() -> None:
    """Across sites the shared paragraphs are the point: the own-text check is made
    within a site only, so a copy of an article under another site's template joins it."""
    pipeline = Pipeline()
    long_own = [*OWN[0], *OWN[1], *OWN[2], *OWN[3]]  # one long article
    first = pipeline.run(plain(0, long_own))
    other = plain(1, long_own, path="/copy")
    other = other.model_copy(update={"site": "other.example", "url": "https://other.example/copy"})
    copy = pipeline.run(other)
    assert copy.cluster_id == first.cluster_id


# -- teasers: the "More from" block of other articles' headlines ---------------------------

STANDFIRSTS = [
    "Commuters get the crossing they asked for.",
    "Fishermen lose four berths for three weeks.",
    "Four hundred parents sign against a central kitchen.",
    "Forty turbines will turn off the northern cape.",
    "The first fare rise since the pandemic.",
    "Thirty stalls and a bakery in the old hall.",
]
CAPTIONS = [
    f"Photo of story {n}: the harbour seen from the {side} quay at dawn."
    for n, side in enumerate(["north", "south", "east", "west", "old", "new"])
]


def teased_page(n: int) -> RawPage:
    """Brief n, then "More from the Gazette": headline, standfirst and caption of the
    briefs before it, three at most, as a site links its latest articles."""
    shown = [n - k for k in (1, 2, 3) if n - k >= 0]
    block = [
        "More from the Harbour Gazette",
        *(line for m in shown for line in (TITLES[m], STANDFIRSTS[m], CAPTIONS[m])),
    ]
    own = [STANDFIRSTS[n], CAPTIONS[n], *OWN[n]]
    return plain(n, [*own, *block])


def test_the_headlines_of_other_articles_and_their_lines_are_teasers() -> None:
    pipeline = Pipeline()
    articles = [pipeline.run(teased_page(n)) for n in range(len(OWN))]
    assert articles[0].removed.teasers == 0
    for n, article in enumerate(articles[1:], start=1):
        seen_before = [n - k for k in (1, 2, 3) if n - k >= 0]
        assert article.removed.teasers == 3 * len(seen_before), article.url
        kept = own_text(article)
        for m in seen_before:
            assert not {normalize(t) for t in (TITLES[m], STANDFIRSTS[m], CAPTIONS[m])} & kept
        # its own standfirst and caption are its own, though other pages print them
        assert {normalize(STANDFIRSTS[n]), normalize(CAPTIONS[n])} <= kept
        assert {normalize(p) for p in OWN[n]} <= kept
    assert [a.cluster_id for a in articles] == [a.article_id for a in articles]


def test_a_headline_inside_an_article_is_not_a_teaser_of_its_own_story() -> None:
    pipeline = Pipeline()
    first = pipeline.run(plain(0, [TITLES[0], *OWN[0]]))
    again = pipeline.run(plain(0, [TITLES[0], *OWN[0], "Update: a second crossing."], minutes=9))
    assert first.removed.teasers == again.removed.teasers == 0
