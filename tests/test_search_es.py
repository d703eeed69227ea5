"""Search against the real node, on real pages: what Elasticsearch finds for a query is
what newsflow.query.matches finds for it in Python (the promise standing queries rest
on), article by article, for fixed and for random queries; then filters, paging,
collapsed stories, snippets, facets and the `newsflow search` command.

The corpus is built once for the module: English fundus pages (and a few German ones,
so that --language narrows something) run through the pipeline's own stage functions,
three of them syndicated under a second site an hour later (stages.cluster, not the
test, puts each pair in one story and marks the copy a duplicate of its original), two
left without a publication date (by model_copy), and indexed with processors.index
under a prefix of the module's own.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from newsflow import query as q
from newsflow import search
from newsflow.analysis import FIELDS, stem, tokens
from newsflow.records import EnrichedArticle, Entity, Filtered, RawPage, Source, SourceKind
from newsflow.settings import Settings
from processors import index, stages
from processors.entities import Tagger
from tests import drills
from tests.conftest import ROOT, shared_data_path

pytestmark = pytest.mark.stack

ENGLISH_PAGES = 60
GERMAN_PAGES = 4
SYNDICATED = 3  # pages published again under a second site
UNDATED = 2  # articles whose publication date is removed: placed by their fetch
FETCHED = datetime(2026, 11, 20, 6, tzinfo=UTC)
ALL = 1000  # more than the corpus: every match in one response


@dataclass
class Corpus:
    es: Elasticsearch
    settings: Settings
    prefix: str
    articles: dict[str, EnrichedArticle]
    docs: dict[str, dict[str, Any]]  # as processors.index.document sent them
    read_back: dict[str, dict[str, Any]]  # their _source, as a search returns it
    copies: dict[str, str]  # syndicated copy -> its original
    undated: list[str]

    @property
    def index(self) -> str:
        return index.alias(self.prefix)

    def ids(self, node: q.Node) -> set[str]:
        resp = self.es.search(index=self.index, query=q.to_es(node), size=ALL, source=False)
        return {h["_id"] for h in resp["hits"]["hits"]}

    @cached_property
    def matchers(self) -> dict[str, dict[str, q.Doc]]:
        """Each article for newsflow.query.matches, analysed once: as sent to the index
        (with the terms it was sent) and as read back (analysed again from its text)."""
        return {
            "as sent": {i: q.Doc(d) for i, d in self.docs.items()},
            "read back": {i: q.Doc(d) for i, d in self.read_back.items()},
        }

    def python(self, node: q.Node, side: str = "as sent") -> set[str]:
        return {i for i, doc in self.matchers[side].items() if q.matches(node, doc)}

    def python_filtered(self, filters: q.Filters) -> set[str]:
        return {i for i, doc in self.matchers["as sent"].items() if filters.matches(doc)}

    @cached_property
    def raw_words(self) -> dict[str, set[str]]:
        """The lowercased runs of letters and digits of each article's fields."""
        return {i: set(re.findall(r"[^\W_]+", raw_text(d).lower())) for i, d in self.docs.items()}

    @cached_property
    def words(self) -> dict[str, list[list[str]]]:
        return {i: field_words(d) for i, d in self.docs.items()}

    def run(self, request: search.Request) -> search.Result:
        return search.run(self.es, self.index, request)


# -- the corpus ----------------------------------------------------------------------------


def german_pages(limit: int) -> list[RawPage]:
    root = shared_data_path("extraction", "fundus", "de")
    pages = []
    for path in sorted(root.glob("*.html.gz"))[:limit]:
        publisher, _, date = path.name.removesuffix(".html.gz").partition("_")
        u = f"https://www.{publisher.lower()}.example/de/{date}"
        body = gzip.decompress(path.read_bytes())
        pages.append(drills.page(u, body, "text/html", SourceKind.URLS))
    return pages


def syndicated(original: RawPage, n: int) -> RawPage:
    """The same page under another site's URL, fetched an hour later."""
    u = f"https://www.syndicate{n}.example/wire/{original.url.rsplit('/', 1)[-1]}"
    copy = drills.page(u, original.body, original.content_type, SourceKind.URLS)
    return copy.model_copy(
        update={"fetched_at": original.fetched_at + timedelta(hours=1, seconds=30)}
    )


def pipeline(pages: list[RawPage]) -> list[EnrichedArticle]:
    """What the clean, stories and enrich stages make of the pages, in order."""
    options = stages.PipelineOptions()
    site_stories: dict[str, Any] = {}
    boilerplate: dict[str, Any] = {}
    story_state: dict[str, Any] = {}
    articles = []
    for p in pages:
        found = stages.extract(p, options)
        if isinstance(found, Filtered):
            continue
        cleaned = stages.deduplicate(p, found, site_stories, boilerplate, options).article
        if stages.too_short_after_dedup(cleaned, options) is None:
            articles.append(stages.cluster(cleaned, story_state, options))
    skipped = {a.article_id: stages.skip_enrichment(a) for a in articles}
    tagged = iter(stages.enrich([a for a in articles if skipped[a.article_id] is None], Tagger()))
    return [skipped[a.article_id] or next(tagged) for a in articles]


def build_pages() -> tuple[list[RawPage], dict[str, str]]:
    """The pages in the order the pipeline reads them, and each copy's original (URLs)."""
    originals = drills.fundus_pages(ENGLISH_PAGES) + german_pages(GERMAN_PAGES)
    # Fetch times of their own, a minute apart: "newest first" has no ties.
    originals = [
        p.model_copy(update={"fetched_at": FETCHED + timedelta(minutes=i)})
        for i, p in enumerate(originals)
    ]
    step = ENGLISH_PAGES // SYNDICATED
    syndication = {}
    for n in range(SYNDICATED):
        original = originals[n * step + 1]
        copy = syndicated(original, n)
        syndication[copy.url] = original.url
        originals.append(copy)
    return originals, syndication


def delete_prefix(es: Elasticsearch, prefix: str) -> None:
    # Deleting by wildcard is refused (action.destructive_requires_name): resolve first.
    concrete = list(es.indices.get(index=f"{index.alias(prefix)}-*", allow_no_indices=True))
    if concrete:
        es.indices.delete(index=",".join(concrete))
    es.options(ignore_status=404).indices.delete_index_template(name=index.alias(prefix))


def write(settings: Settings, prefix: str, articles: list[EnrichedArticle]) -> None:
    async def go() -> list[index.Rejected]:
        async with AsyncElasticsearch(settings.elasticsearch_url) as client:
            # Requests under 1 MB: aiohttp warns of a larger body, and warnings are errors.
            return await index.write(client, prefix, articles, max_request_bytes=2**19)

    assert asyncio.run(go()) == []


@contextmanager
def indexed_corpus(
    settings: Settings,
    articles: list[EnrichedArticle],
    copies: dict[str, str],
    undated: list[str],
) -> Iterator[Corpus]:
    """``articles`` indexed under a prefix of their own, deleted afterwards."""
    es = Elasticsearch(settings.elasticsearch_url, request_timeout=60)
    prefix = f"srch{uuid.uuid4().hex[:8]}"
    try:
        index.ensure_template(es, prefix)
        write(settings, prefix, articles)
        es.indices.refresh(index=index.alias(prefix))
        hits = es.search(index=index.alias(prefix), size=ALL, query={"match_all": {}})
        yield Corpus(
            es=es,
            settings=settings,
            prefix=prefix,
            articles={a.article_id: a for a in articles},
            docs={a.article_id: index.document(a) for a in articles},
            read_back={h["_id"]: h["_source"] for h in hits["hits"]["hits"]},
            copies=copies,
            undated=undated,
        )
    finally:
        delete_prefix(es, prefix)
        es.close()


@pytest.fixture(scope="module")
def corpus(settings: Settings) -> Iterator[Corpus]:
    pages, syndication = build_pages()
    articles = {a.url: a for a in pipeline(pages)}
    copies = {articles[c].article_id: articles[o].article_id for c, o in syndication.items()}
    for c, o in syndication.items():  # what the collapse tests rest on: one story each
        assert articles[c].cluster_id == articles[o].cluster_id
        assert articles[c].duplicate_of == articles[o].article_id
    # Articles without a publication date, none of them syndicated.
    others = [a for a in articles.values() if a.article_id not in {*copies, *copies.values()}]
    undated = [a.article_id for a in others[5 : 5 + 30 * UNDATED : 30]]
    assert len(undated) == UNDATED
    indexed = [
        a.model_copy(update={"published_at": None}) if a.article_id in undated else a
        for a in articles.values()
    ]
    with indexed_corpus(settings, indexed, copies, undated) as made:
        yield made


def field_words(doc: dict[str, Any]) -> list[list[str]]:
    """The folded words of each searched field of a document, in order."""
    return [[t.word for t in tokens(doc.get(name) or "")] for name in FIELDS]


def raw_text(doc: dict[str, Any]) -> str:
    return "\n".join(doc.get(name) or "" for name in FIELDS)


# -- the Python side and Elasticsearch agree, article by article ---------------------------

FIXED = [
    "said",
    "police",
    "government",
    "president",
    "Trump",
    '"prime minister"',
    '"according to"',
    '"told the"',
    "elect*",
    "minist*",
    "gov* -police",
    "police | court",
    "(police | court) said",
    "police court | election",
    "said -police -court",
    "-said",
    "NOT trump",
    "trump OR biden",
    "trump AND NOT biden",
    "+year +people",
    '"prime minister"~1',
    '"minister prime"~2',
    '"minister prime"~1',
    '"said the"~3',
    '"of the of"~3',  # a repeated term in a sloppy phrase
    '"the to the"~4',
    '"in the"~0 -"of the"',
    "covid-19",
    "u.s.",
    "reuters's",
    "Zürich | zurich",
    "20*",
    "climat* | weather | storm*",
    "(elect* | vote*) -(trump | biden)",
    "die | der | und",
]


def random_query(rng: random.Random, corpus: Corpus, depth: int = 0) -> str:
    """A query of the corpus's own words, phrases and prefixes under And, Or and Not."""
    if depth >= 2 or rng.random() < 0.35:
        return random_leaf(rng, corpus)
    kind = rng.choice(["and", "or", "not"])
    if kind == "not":
        return "-" + random_query(rng, corpus, depth + 1)
    children = [random_query(rng, corpus, depth + 1) for _ in range(rng.randint(2, 3))]
    return "(" + (" " if kind == "and" else " | ").join(children) + ")"


def random_leaf(rng: random.Random, corpus: Corpus) -> str:
    doc = corpus.words[rng.choice(sorted(corpus.docs))]
    words = [w for field in doc for w in field]
    fields = [f for f in doc if len(f) >= 3]
    r = rng.random()
    if r < 0.45:
        return rng.choice(words)
    if r < 0.8:  # real consecutive words, sometimes loosened or turned round
        field = rng.choice(fields)
        at = rng.randrange(len(field) - 2)
        phrase = field[at : at + rng.choice([2, 2, 3])]
        slop = rng.choice([0, 0, 0, 1, 2, 3])
        if slop >= 2 and rng.random() < 0.5:
            phrase.reverse()
        return f'"{" ".join(phrase)}"' + (f"~{slop}" if slop else "")
    long = [w for w in words if len(w) >= 4] or words
    word = rng.choice(long)
    return word[: rng.randint(2, max(2, min(5, len(word) - 1)))] + "*"


def random_queries(corpus: Corpus, n: int, seed: int = 20261201) -> list[str]:
    rng = random.Random(seed)
    return [random_query(rng, corpus) for _ in range(n)]


def es_ids(corpus: Corpus, nodes: list[q.Node]) -> list[set[str]]:
    """The ids Elasticsearch finds for each query (one msearch: ~200 queries at once)."""
    searches: list[dict[str, Any]] = []
    for node in nodes:
        searches += [{}, {"query": q.to_es(node), "size": ALL, "_source": False}]
    resp = corpus.es.msearch(index=corpus.index, searches=searches)
    out = []
    for r in resp["responses"]:
        assert "error" not in r, r
        out.append({h["_id"] for h in r["hits"]["hits"]})
    return out


def disagreements(corpus: Corpus, texts: list[str]) -> list[str]:
    nodes = [q.parse(t) for t in texts]
    found = []
    for text, node, got in zip(texts, nodes, es_ids(corpus, nodes), strict=True):
        for side in corpus.matchers:
            want = corpus.python(node, side)
            if got != want:
                found.append(
                    f"{text!r} ({side}): only Elasticsearch {sorted(got - want)}, "
                    f"only Python {sorted(want - got)}"
                )
    return found


def test_fixed_queries_find_the_same_articles_in_elasticsearch_and_in_python(
    corpus: Corpus,
) -> None:
    assert disagreements(corpus, FIXED) == []
    counts = [len(corpus.python(q.parse(t))) for t in FIXED]
    # Most of them narrow the corpus without emptying it: the comparison means something.
    assert sum(0 < n < len(corpus.docs) for n in counts) >= len(FIXED) - 5, counts


def test_random_queries_of_the_corpus_find_the_same_articles_in_both(corpus: Corpus) -> None:
    texts = random_queries(corpus, 150)
    assert disagreements(corpus, texts) == []
    counts = [len(corpus.python(q.parse(t))) for t in texts]
    some = sum(0 < n < len(corpus.docs) for n in counts)
    assert some >= 60, counts  # not vacuous: many find some articles and not others
    assert any(n == 0 for n in counts) and any(n > len(corpus.docs) // 2 for n in counts)
    kinds = {type(n).__name__ for t in texts for n in walk(q.parse(t))}
    assert kinds >= {"Term", "Phrase", "Prefix", "And", "Or", "Not"}, kinds
    assert any(isinstance(n, q.Phrase) and n.slop for t in texts for n in walk(q.parse(t)))


def walk(node: q.Node) -> Iterator[q.Node]:
    yield node
    if isinstance(node, q.And | q.Or):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, q.Not):
        yield from walk(node.child)


# -- stemming ------------------------------------------------------------------------------


def docs_with_word(corpus: Corpus, word: str) -> set[str]:
    """Articles whose raw text has ``word`` as a word, in any case: no analysis involved."""
    return {i for i, words in corpus.raw_words.items() if word in words}


def test_singular_and_plural_find_the_same_articles(corpus: Corpus) -> None:
    vocabulary = {w for d in corpus.words.values() for f in d for w in f}
    pairs = []
    for word in sorted(vocabulary):
        plural = word + "s"
        if word.isalpha() and plural in vocabulary and stem(word) == stem(plural):
            only_one, only_other = docs_with_word(corpus, word), docs_with_word(corpus, plural)
            if only_one - only_other and only_other - only_one:
                pairs.append((len(only_one | only_other), word, plural))
    assert pairs, "no word of the corpus is there in both forms in different articles"
    _, word, plural = max(pairs)
    singular_ids, plural_ids = corpus.ids(q.parse(word)), corpus.ids(q.parse(plural))
    assert singular_ids == plural_ids
    written = docs_with_word(corpus, word) | docs_with_word(corpus, plural)
    assert singular_ids >= written
    assert singular_ids != docs_with_word(corpus, word)  # found by the other form too


def test_a_phrase_finds_fewer_articles_than_its_words(corpus: Corpus) -> None:
    fewer = []
    for phrase in ("prime minister", "according to", "last year", "told the", "white house"):
        exact, both = corpus.ids(q.parse(f'"{phrase}"')), corpus.ids(q.parse(phrase))
        assert exact <= both
        written = re.compile(r"\b" + r"\W+".join(phrase.split()) + r"\b", re.IGNORECASE)
        in_a_field = {
            i for i, d in corpus.docs.items() if any(written.search(d.get(f) or "") for f in FIELDS)
        }
        assert exact >= in_a_field
        if exact and exact < both:
            fewer.append(phrase)
    assert fewer


# -- filters -------------------------------------------------------------------------------


def most_common(values: Counter[str], corpus: Corpus) -> str:
    """The most frequent value that some articles have and others do not."""
    fitting = [(n, v) for v, n in values.items() if 2 <= n < len(corpus.docs)]
    return max(fitting)[1]


def expected(corpus: Corpus, kind: str) -> tuple[q.Filters, set[str]]:
    """A filter of each kind, and the articles it should keep, read off the articles
    themselves (not through Filters)."""
    arts = corpus.articles
    if kind == "site":
        site = most_common(Counter(a.site for a in arts.values()), corpus)
        return q.Filters(sites=(site.upper(),)), {i for i, a in arts.items() if a.site == site}
    if kind == "site name":
        name = most_common(Counter(a.site_name for a in arts.values() if a.site_name), corpus)
        keep = {i for i, a in arts.items() if a.site_name == name}
        return q.Filters(sites=(name.lower(),)), keep
    if kind == "language":
        return q.Filters(languages=("DE",)), {i for i, a in arts.items() if a.language == "de"}
    if kind in ("since", "until", "between"):
        dated = sorted(a.published_at for a in arts.values() if a.published_at)
        low, high = dated[len(dated) // 3], dated[2 * len(dated) // 3]
        when = {i: a.published_at or a.fetched_at for i, a in arts.items()}
        if kind == "since":
            return q.Filters(since=low), {i for i, w in when.items() if w >= low}
        if kind == "until":
            return q.Filters(until=high), {i for i, w in when.items() if w < high}
        return q.Filters(since=low, until=high), {i for i, w in when.items() if low <= w < high}
    if kind in ("person", "org", "place"):
        field = {"person": "persons", "org": "organizations", "place": "places"}[kind]
        names = Counter(n for d in corpus.docs.values() for n in d.get(field) or ())
        name = most_common(names, corpus)
        keep = {i for i, d in corpus.docs.items() if name in (d.get(field) or ())}
        return q.Filters(**{field: (name.upper(),)}), keep
    assert kind == "story"
    copy, original = sorted(corpus.copies.items())[0]
    return q.Filters(stories=(arts[original].cluster_id,)), {copy, original}


@pytest.mark.parametrize(
    "kind",
    [
        "site",
        "site name",
        "language",
        "since",
        "until",
        "between",
        "person",
        "org",
        "place",
        "story",
    ],
)
def test_each_filter_keeps_in_elasticsearch_what_it_keeps_in_python(
    corpus: Corpus, kind: str
) -> None:
    filters, keep = expected(corpus, kind)
    result = corpus.run(search.Request("*", filters, size=search.MAX_SIZE, collapse=False))
    found = {h.id for h in result.hits}
    assert result.total == len(found)
    assert found == corpus.python_filtered(filters)
    assert found == keep
    assert 0 < len(found) < len(corpus.docs)
    if kind == "since":  # the articles without a date are placed by their (recent) fetch
        assert set(corpus.undated) <= found
    if kind == "until":
        assert not set(corpus.undated) & found


def test_words_and_filters_together(corpus: Corpus) -> None:
    filters, _ = expected(corpus, "since")
    node = q.parse("said | says")
    result = corpus.run(search.Request("said | says", filters, size=100, collapse=False))
    want = {
        i for i, d in corpus.docs.items() if q.matches(node, q.Doc(d)) and filters.matches(q.Doc(d))
    }
    assert {h.id for h in result.hits} == want
    assert 0 < len(want) < min(len(corpus.ids(node)), len(expected(corpus, "since")[1]))


# -- paging, stories -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "sort"), [("*", None), ("said", "newest"), ("said", None)])
def test_two_pages_of_five_are_the_first_page_of_ten(
    corpus: Corpus, text: str, sort: search.Sort | None
) -> None:
    def page(n: int, size: int) -> list[str]:
        request = search.Request(text, sort=sort, page=n, size=size)
        return [h.id for h in corpus.run(request).hits]

    first, second, ten = page(1, 5), page(2, 5), page(1, 10)
    assert len(first) == len(second) == 5
    assert not set(first) & set(second)
    assert first + second == ten
    if search.Request(text, sort=sort).order == "newest":
        dates = [corpus.articles[i].published_at for i in ten]
        assert None not in dates  # the undated go last: their fetch is no publication
        assert dates == sorted(dates, reverse=True)  # type: ignore[type-var]


def test_a_syndicated_copy_shows_under_its_original_unless_asked_not_to(
    corpus: Corpus,
) -> None:
    for copy, original in corpus.copies.items():
        title = corpus.articles[original].title or ""
        text = '"' + " ".join(t.word for t in tokens(title)) + '"'
        collapsed = corpus.run(search.Request(text, size=search.MAX_SIZE))
        story = [h for h in collapsed.hits if h.id in (copy, original)]
        assert len(story) == 1, text
        [hit] = story
        assert {hit.id, *(c.id for c in hit.copies)} == {copy, original}
        assert hit.copies_total == 1 and hit.story == corpus.articles[original].cluster_id
        assert "1 more copy of this story" in search.render(collapsed)
        every = corpus.run(search.Request(text, size=search.MAX_SIZE, collapse=False))
        assert {copy, original} <= {h.id for h in every.hits}
        assert all(not h.copies for h in every.hits)
        assert every.total == collapsed.total


# -- snippets and facets -------------------------------------------------------------------


def mid_frequency_words(corpus: Corpus, n: int) -> list[str]:
    df = Counter(w for d in corpus.words.values() for w in {w for f in d for w in f})
    fitting = [
        (count, w)
        for w, count in df.items()
        if w.isalpha() and len(w) >= 6 and 5 <= count <= len(corpus.docs) // 2
    ]
    return [w for _, w in sorted(fitting, reverse=True)[:n]]


MARK = re.compile("«([^»]*)»")


def test_every_snippet_marks_the_words_it_shows_and_only_those(corpus: Corpus) -> None:
    words = mid_frequency_words(corpus, 4)
    assert len(words) == 4
    for word in words:
        term = stem(word)
        result = corpus.run(search.Request(word, size=search.MAX_SIZE, collapse=False))
        assert result.hits
        for hit in result.hits:
            text = corpus.read_back[hit.id].get("text") or ""
            if any(t.stem == term for t in tokens(text)):
                assert any(MARK.search(s) for s in hit.snippets), (word, hit.url)
            for snippet in hit.snippets:
                marked = MARK.findall(snippet)
                # What is marked is the word (words next to each other are one mark)...
                assert all({t.stem for t in tokens(m)} == {term} for m in marked), snippet
                # ...and nothing left unmarked is.
                unmarked = MARK.sub(" ", snippet)
                assert term not in {t.stem for t in tokens(unmarked)}, snippet
            assert len(hit.snippets) <= search.SNIPPETS


def test_entity_facets_count_the_matching_articles(corpus: Corpus) -> None:
    for text in ["said", "*"]:
        node = q.parse(text)
        matching = corpus.python(node)
        result = corpus.run(search.Request(text))
        assert result.total == len(matching)
        for facet in search.ENTITY_KINDS:
            counts = Counter(n for i in matching for n in corpus.docs[i].get(facet) or ())
            buckets = result.facets[facet]
            assert buckets and len(buckets) == min(6, len(counts))
            assert all(counts[name] == n for name, n in buckets), (facet, buckets)
            left_out = [n for name, n in counts.items() if name not in dict(buckets)]
            assert min(n for _, n in buckets) >= max(left_out, default=0)


# -- the command ---------------------------------------------------------------------------


def newsflow(corpus: Corpus, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NEWSFLOW_ELASTICSEARCH_URL": corpus.settings.elasticsearch_url,
        "NEWSFLOW_TOPIC_PREFIX": corpus.prefix,
    }
    argv = [str(ROOT / ".venv" / "bin" / "newsflow"), "search", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)


JSON_KEYS = {"id", "title", "url", "site", "published_at", "fetched_at", "snippets"}
JSON_KEYS |= {"entities", "story", "copies"}


def test_the_command_prints_one_json_object_per_hit(corpus: Corpus) -> None:
    _, keep = expected(corpus, "site")
    site = corpus.articles[next(iter(keep))].site
    for args, collapse in ((["said | says"], True), (["*", "--no-collapse"], False)):
        done = newsflow(corpus, *args, "--json", "--site", site, "--size", "20")
        assert done.returncode == 0, done.stderr
        hits = [json.loads(line) for line in done.stdout.splitlines()]
        assert hits and all(set(h) >= JSON_KEYS for h in hits)
        request = search.Request(args[0], q.Filters(sites=(site,)), size=20, collapse=collapse)
        assert [h["id"] for h in hits] == [h.id for h in corpus.run(request).hits]
        assert all(h["url"] == corpus.articles[h["id"]].url for h in hits)
        assert all("\x1b" not in s for h in hits for s in h["snippets"])


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["said", "--since", "yesterday"], "--since"),
        (['"port strike'], "never closed"),
        (["said", "--page", "0"], "--page"),
        (["said", "--until", "2020-01-01", "--since", "2021-01-01"], "swap"),
        (["(said"], "never closed"),
    ],
)
def test_a_bad_query_or_option_exits_2_with_a_message(
    corpus: Corpus, args: list[str], said: str
) -> None:
    done = newsflow(corpus, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert said in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


# -- two articles of unusual letters, in an index of their own ----------------------------


def small_article(n: int, paragraph: str, places: list[str]) -> EnrichedArticle:
    return EnrichedArticle(
        article_id=f"odd-{n}",
        url=f"https://odd.example/{n}",
        canonical_url=f"https://odd.example/{n}",
        site="odd.example",
        title=f"Dispatch {n}",
        fetched_at=FETCHED,
        language="en",
        paragraphs=[paragraph],
        text_hash=f"odd-{n}",
        cluster_id=f"odd-{n}",
        source=Source(kind=SourceKind.URLS),
        entities=[
            Entity(text=p, label="GPE", count=1, first_offset=0, paragraphs=[0]) for p in places
        ],
    )


@pytest.fixture(scope="module")
def odd(settings: Settings) -> Iterator[Corpus]:
    """A ligature that folds to four words (U+FDFA), and a place with an ß."""
    articles = [
        small_article(1, "The caller wrote \ufdfa after the name.", ["Straße"]),
        small_article(2, "Only \u0627\u0644\u0644\u0647 here.", ["Berlin"]),
    ]
    with indexed_corpus(settings, articles, {}, []) as made:
        yield made


def test_a_word_that_folds_to_several_is_one_term_on_both_sides(odd: Corpus) -> None:
    # The ligature folds to four words with spaces between: four terms in the index, which
    # splits what it is sent on spaces, so four for the matcher and the query as well.
    assert disagreements(odd, ["\ufdfa"]) == []


def test_an_entity_filter_ignores_case_the_same_way_on_both_sides(odd: Corpus) -> None:
    # Elasticsearch's case_insensitive term lowercases letter by letter, so "STRASSE" is
    # never "Straße" there; casefolding (ß -> ss) would make it so in Python.
    for name in ("STRASSE", "strasse", "STRAßE"):
        filters = q.Filters(places=(name,))
        result = odd.run(search.Request("*", filters, collapse=False))
        assert {h.id for h in result.hits} == odd.python_filtered(filters), name
