"""The demo's templated plain-text briefs through the clean and stories stages and the
re-cleanings they ask for, in the order a feed lists them (newest first) and in the order
they were published: every brief its own story, its own text whole, and once re-cleaned
no line of the template, no teaser and no repeat left on any of them."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from newsflow.demo.sites import EXPECTED, ExpectedBrief, render
from newsflow.records import RawPage, Source, SourceKind
from processors.paragraphs import DEFAULT_POLICY, normalize
from tests.test_reclean import applied
from tests.test_templated_sites import T0, Pipeline

SITES = sorted({b.site for b in EXPECTED.briefs})


def brief_page(brief: ExpectedBrief, minutes: int) -> RawPage:
    rendered = render(brief.site, brief.path)
    assert rendered is not None
    url = f"https://{brief.site}.example{brief.path}"
    return RawPage(
        url=url,
        canonical_url=url,
        site=f"{brief.site}.example",
        fetched_at=T0 + timedelta(minutes=minutes),
        content_type=rendered[1],
        body=rendered[2],
        source=Source(kind=SourceKind.DEMO),
    )


@pytest.mark.parametrize("order", ["newest-first", "oldest-first"])
@pytest.mark.parametrize("site", SITES)
def test_briefs_end_clean_and_whole_in_either_order(site: str, order: str) -> None:
    briefs = sorted((b for b in EXPECTED.briefs if b.site == site), key=lambda b: b.published)
    if order == "newest-first":
        briefs.reverse()
    pipeline = Pipeline()
    articles = [pipeline.run(brief_page(b, n)) for n, b in enumerate(briefs)]
    ids = [a.article_id for a in articles]
    assert [pipeline.site_story[i] for i in ids] == ids  # each brief its own site story
    assert [a.duplicate_of for a in articles] == [None] * len(briefs)
    final = applied(articles, pipeline.recleans)
    # A template line printed on more briefs than BoilerplatePolicy.min_stories is
    # learnable; an author's bio on two or three briefs is not, and may stay.
    printed = Counter(normalize(t) for b in briefs for t in set(b.site_template))
    learnable = {t for t, n in printed.items() if n > DEFAULT_POLICY.min_stories}
    for brief, article in zip(briefs, final, strict=True):
        kept = [normalize(p) for p in article.paragraphs]
        own = [normalize(p) for p in (brief.standfirst, brief.credited_caption, *brief.paragraphs)]
        assert set(own) <= set(kept), f"{brief.path} lost own text"
        left = set(kept) - set(own) - {normalize(brief.byline)}
        assert not left & learnable, f"{brief.path} keeps {sorted(left & learnable)}"
        assert not left - {normalize(t) for t in brief.site_template}, brief.path
        assert len(kept) == len(set(kept))
    removed = [a.removed for a in final]
    assert sum(r.short_repeats for r in removed) == 2 * len(briefs)
    assert sum(r.near_repeats for r in removed) >= len(briefs)  # the caption, at least
    assert sum(r.teasers for r in removed) > 0 and sum(r.retroactive for r in removed) > 0
