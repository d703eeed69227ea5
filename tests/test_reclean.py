"""Re-cleaning indexed articles once their site's boilerplate or teasers are known: the
requests the clean stage makes, and what applying them does to an article (pure); the
agent against the real Elasticsearch is in tests/test_pipeline_e2e.py."""

from __future__ import annotations

from datetime import timedelta

from newsflow.records import Article, EnrichedArticle, Entity, Reclean, Teaser
from processors import index, reclean
from processors.paragraphs import normalize
from tests.test_templated_sites import (
    CAPTIONS,
    OWN,
    STANDFIRSTS,
    T0,
    TEMPLATE,
    TITLES,
    Pipeline,
    plain,
    teased_page,
)


def enriched(article: Article, entities: list[Entity] | None = None) -> EnrichedArticle:
    return EnrichedArticle(**article.model_dump(), entities=entities or [])


def applied(articles: list[Article], requests: list[Reclean]) -> list[EnrichedArticle]:
    """What the reclean agent makes of the index: each request to the site's articles
    fetched before it."""
    out = [enriched(a) for a in articles]
    for request in requests:
        for i, article in enumerate(out):
            if article.site == request.site and article.fetched_at < request.before:
                out[i] = reclean.apply(article, request) or article
    return out


def test_a_sites_first_pages_end_as_clean_as_its_later_ones() -> None:
    pipeline = Pipeline()
    articles = [pipeline.run(plain(n, own)) for n, own in enumerate(OWN)]
    template = {normalize(t) for t in TEMPLATE}
    assert all(template <= {normalize(p) for p in a.paragraphs} for a in articles[:3])
    # The fourth page is the first to strip the template: it asks, naming the three
    # stories that kept it; the later pages ask nothing more.
    [request] = pipeline.recleans
    assert request.articles == [a.article_id for a in articles[:3]]
    assert sorted(request.boilerplate) == sorted(TEMPLATE)
    assert (
        request.before == articles[3].fetched_at and request.requested_by == articles[3].article_id
    )
    for article, own in zip(applied(articles, pipeline.recleans), OWN, strict=True):
        assert [normalize(p) for p in article.paragraphs] == [normalize(p) for p in own]
    first = applied(articles, pipeline.recleans)[0]
    assert first.removed.retroactive == len(TEMPLATE) and first.removed.boilerplate == 0


def test_teasers_printed_before_their_story_was_seen_are_removed_when_it_is() -> None:
    """Brief 1's page lists brief 0, which arrives after it (the crawler found the
    "More from" block first): when brief 0 comes, brief 1 is cleaned of its teaser."""
    pipeline = Pipeline()
    late = teased_page(1).model_copy(update={"fetched_at": T0 - timedelta(minutes=5)})
    lister = pipeline.run(late)
    assert lister.removed.teasers == 0
    teased = pipeline.run(plain(0, [STANDFIRSTS[0], CAPTIONS[0], *OWN[0]]))
    requests = [r for r in pipeline.recleans if r.teaser]
    assert [r.articles for r in requests] == [[lister.article_id]]
    assert requests[0].teaser is not None and requests[0].teaser.headline == TITLES[0]
    lister_after, teased_after = applied([lister, teased], requests)
    gone = {normalize(t) for t in (TITLES[0], STANDFIRSTS[0], CAPTIONS[0])}
    assert not gone & {normalize(p) for p in lister_after.paragraphs}
    assert lister_after.removed.retroactive == 3
    assert teased_after == enriched(teased)  # the story itself keeps its own lines
    # a second sighting of the story asks nothing again
    again = plain(0, [STANDFIRSTS[0], CAPTIONS[0], *OWN[0], "Update."], minutes=30)
    pipeline.run(again)
    assert len([r for r in pipeline.recleans if r.teaser]) == 1


ARTICLE = Article(
    article_id="a1",
    url="https://gazette.example/a1",
    canonical_url="https://gazette.example/a1",
    site="gazette.example",
    title="Ferry leaves earlier",
    fetched_at=T0,
    paragraphs=[
        "Ingrid Falk said the ferry leaves earlier.",
        "Subscribe to the Gazette, says Ingrid Falk of Harbour Media.",
        "Falk added that Lindholm agreed.",
    ],
    text_hash="x",
    cluster_id="a1",
    source={"kind": "demo"},
)
ENTITIES = [
    Entity(
        text="Ingrid Falk",
        label="PERSON",
        count=3,
        first_offset=0,
        paragraphs=[0, 1, 2],
        variants=["Ingrid Falk", "Falk"],
    ),
    Entity(
        text="Harbour Media",
        label="ORG",
        count=1,
        first_offset=80,
        paragraphs=[1],
        variants=["Harbour Media"],
    ),
    Entity(
        text="Lindholm",
        label="GPE",
        count=1,
        first_offset=110,
        paragraphs=[2],
        variants=["Lindholm"],
    ),
]
REQUEST = Reclean(
    site="gazette.example",
    articles=["a1"],
    boilerplate=[ARTICLE.paragraphs[1].upper()],
    before=T0 + timedelta(minutes=1),
    requested_by="a9",
)


def test_entities_of_removed_paragraphs_go_the_others_are_renumbered() -> None:
    after = reclean.apply(enriched(ARTICLE, ENTITIES), REQUEST)
    assert after is not None
    assert after.paragraphs == [ARTICLE.paragraphs[0], ARTICLE.paragraphs[2]]
    by_name = {e.text: e for e in after.entities}
    assert set(by_name) == {"Ingrid Falk", "Lindholm"}  # Harbour Media was only boilerplate
    falk = by_name["Ingrid Falk"]
    assert (falk.paragraphs, falk.count, falk.first_offset) == ([0, 1], 2, 0)
    lindholm = by_name["Lindholm"]
    assert lindholm.paragraphs == [1]
    assert after.text[lindholm.first_offset :].startswith("Lindholm")
    assert after.text_hash != ARTICLE.text_hash and after.removed.retroactive == 1


def test_applying_a_request_twice_or_to_an_article_without_it_changes_nothing() -> None:
    once = reclean.apply(enriched(ARTICLE, ENTITIES), REQUEST)
    assert once is not None and reclean.apply(once, REQUEST) is None
    # an article that would keep no paragraph is left as it is
    everything = REQUEST.model_copy(update={"boilerplate": ARTICLE.paragraphs})
    assert reclean.apply(enriched(ARTICLE), everything) is None
    # a teaser request leaves the teased story itself alone
    own = REQUEST.model_copy(
        update={"boilerplate": [], "teaser": Teaser(headline=ARTICLE.title or "", lines=[])}
    )
    headline_inside = enriched(ARTICLE).model_copy(
        update={"paragraphs": [ARTICLE.title or "", *ARTICLE.paragraphs]}
    )
    assert reclean.apply(headline_inside, own) is None


def test_an_index_document_reads_back_as_the_article_it_was_made_from() -> None:
    article = enriched(ARTICLE, ENTITIES)
    doc = index.document(article)
    back = reclean.from_document(doc)
    assert back.model_dump(exclude={"declared_canonical_url"}) == article.model_dump(
        exclude={"declared_canonical_url"}
    )
