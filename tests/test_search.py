"""The query language, filters, requests, snippets and rendering as pure functions: no
node. (tests/test_search_es.py checks the same queries against the real one.)"""

from __future__ import annotations

import io
import itertools
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflow import query as q
from newsflow import search
from newsflow.analysis import Analysed, fold, stem, tokens
from newsflow.query import All, And, Doc, Filters, Not, Or, Phrase, Prefix, QueryError, Term
from processors import index

# -- building expected trees ----------------------------------------------------------------


def t(word: str) -> Term:
    return Term(stem(fold(word)), fold(word))


def phrase(text: str, slop: int = 0) -> Phrase:
    return Phrase(tuple(stem(fold(w)) for w in text.split()), slop)


# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("strike", t("strike")),
        ("Strikes", Term("strike", "strikes")),
        ("port strike", And((t("port"), t("strike")))),
        ("strike | walkout", Or((t("strike"), t("walkout")))),
        ("strike|walkout", Or((t("strike"), t("walkout")))),
        ("strike -football", And((t("strike"), Not(t("football"))))),
        ("-football", Not(t("football"))),
        ("+strike +port", And((t("strike"), t("port")))),
        ("port AND strike", And((t("port"), t("strike")))),
        ("strike OR walkout", Or((t("strike"), t("walkout")))),
        ("strike NOT football", And((t("strike"), Not(t("football"))))),
        ("NOT football", Not(t("football"))),
        ("and or not", And((t("and"), t("or"), t("not")))),  # only capitals are operators
        ('"port strike"', phrase("port strike")),
        ('"Port  Strikes"', phrase("port strike")),
        ('"port strike"~3', phrase("port strike", 3)),
        ('"port strike"~0', phrase("port strike")),
        ('"strike"', t("strike")),  # a phrase of one word is that word
        ("strik*", Prefix("strik")),
        ("Zür*", Prefix("zur")),  # prefixes are folded, never stemmed
        ("(strike | walkout) port", And((Or((t("strike"), t("walkout"))), t("port")))),
        ("-(strike | walkout)", Not(Or((t("strike"), t("walkout"))))),
        ("((port))", t("port")),
        ("(port strike) dock", And((t("port"), t("strike"), t("dock")))),  # flattened
        ("a | (b | c)", Or((t("a"), t("b"), t("c")))),
        ("covid-19", phrase("covid 19")),  # one word of several tokens is their phrase
        ("U.S.", phrase("u s")),
        ("covid-1*", And((t("covid"), Prefix("1")))),
        ("Reuters's", Term("reuter", "reuters")),
        ("a b | c", Or((And((t("a"), t("b"))), t("c")))),
        ("a | b c", Or((t("a"), And((t("b"), t("c")))))),
        ("a b OR c d", Or((And((t("a"), t("b"))), And((t("c"), t("d")))))),
        ("a -b | c", Or((And((t("a"), Not(t("b")))), t("c")))),
    ],
)
def test_parse(text: str, tree: q.Node) -> None:
    assert q.parse(text) == tree


def test_or_binds_more_loosely_than_and() -> None:
    assert q.parse("a b | c") == q.parse("(a b) | c") != q.parse("a (b | c)")
    assert q.parse("a | b c") == q.parse("a | (b c)")
    assert q.parse("a AND b OR c") == q.parse("(a b) | c")


@pytest.mark.parametrize("text", ["*", "", "   ", " * "])
def test_star_or_nothing_is_every_article(text: str) -> None:
    assert q.parse(text) == All()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('"port strike', ["quote at column 1", "never closed"]),
        ('strike "port', ["quote at column 8", "never closed"]),
        ('"a" "b', ["column 5", "never closed"]),
        ("(port strike", ["( at column 1", "never closed"]),
        ("port (strike | walkout", ["( at column 6", "never closed"]),
        ("port strike)", [") at column 12", "closes nothing"]),
        (")", ["closes nothing"]),
        ("port |", ["| at column 6", "needs something to search for"]),
        ("port | | strike", ["| at column 6", "needs something"]),
        ("(port |) strike", ["needs something"]),
        ("port OR", ["OR at column 6", "needs something"]),
        ("port +", ["+ at column 6", "needs something"]),
        ("port AND", ["AND at column 6", "needs something"]),
        ("port + | strike", ["needs something"]),
        ("port NOT", ["NOT at column 6", "needs something to leave out"]),
        ("(port -)", ["- at column 7", "leave out"]),
        ("port -| strike", ["leave out"]),
        ("foo~2", ["fuzzy", "foo~2 at column 1", "colour | color"]),
        ("port foo~", ["fuzzy", "column 6"]),
        ("!!!", ["nothing to search for", "punctuation alone"]),
        ("... ---", ["- at column 7", "leave out"]),
        ("!!! ...", ["nothing to search for"]),
        ('""', ["nothing to search for"]),
        ("()", ["nothing to search for"]),
        ('"port strike"~51', [f"at most {q.MAX_SLOP}", "column 1"]),
    ],
)
def test_a_malformed_query_says_where_and_what(text: str, words: list[str]) -> None:
    with pytest.raises(QueryError) as raised:
        q.parse(text)
    for word in words:
        assert word in str(raised.value)


def test_the_largest_slop_is_allowed() -> None:
    assert q.parse(f'"port strike"~{q.MAX_SLOP}') == phrase("port strike", q.MAX_SLOP)


def test_a_minus_at_the_end_is_a_dangling_operator_too() -> None:
    # `port NOT` and `(port -)` are refused as a NOT with nothing to leave out; `port -`
    # must be as well, not read silently as `port`.
    with pytest.raises(QueryError, match="leave out"):
        q.parse("port -")


_QUERY_CHARS = st.sampled_from([*'ab Zü"()|+-*~9 ', "AND", "OR", "NOT", "~2", "\u00ad"])


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.lists(_QUERY_CHARS, max_size=20).map("".join)))
def test_parse_fails_only_with_a_query_error(text: str) -> None:
    try:
        node = q.parse(text)
    except QueryError as err:
        assert str(err)
        return
    json.dumps(q.to_es(node))  # compiles to plain JSON
    q.matches(node, Doc({"title": text, "text": "a b c"}))


# -- to Elasticsearch -----------------------------------------------------------------------

STEM_FIELDS = ["stems.title^3", "stems.description^2", "stems.text^1"]


def test_to_es_of_each_node() -> None:
    assert q.to_es(All()) == {"match_all": {}}
    assert q.to_es(q.parse("Strikes")) == {
        "multi_match": {"query": "strike", "fields": STEM_FIELDS}
    }
    assert q.to_es(q.parse('"port strikes"~2')) == {
        "multi_match": {
            "query": "port strike",
            "type": "phrase",
            "slop": 2,
            "fields": STEM_FIELDS,
        }
    }
    assert q.to_es(q.parse("Strik*")) == {
        "bool": {
            "should": [
                {"prefix": {"words.title": {"value": "strik", "boost": 3.0}}},
                {"prefix": {"words.description": {"value": "strik", "boost": 2.0}}},
                {"prefix": {"words.text": {"value": "strik", "boost": 1.0}}},
            ],
            "minimum_should_match": 1,
        }
    }
    port, strike = q.to_es(t("port")), q.to_es(t("strike"))
    assert q.to_es(q.parse("-port")) == {"bool": {"must_not": [port]}}
    assert q.to_es(q.parse("port strike")) == {"bool": {"must": [port, strike]}}
    assert q.to_es(q.parse("port -strike")) == {"bool": {"must": [port], "must_not": [strike]}}
    assert q.to_es(q.parse("-port -strike")) == {"bool": {"must_not": [port, strike]}}
    assert q.to_es(q.parse("port | strike")) == {
        "bool": {"should": [port, strike], "minimum_should_match": 1}
    }
    assert q.to_es(q.parse("port | -strike")) == {
        "bool": {"should": [port, {"bool": {"must_not": [strike]}}], "minimum_should_match": 1}
    }


# -- matching one article -------------------------------------------------------------------


def doc(text: str = "", title: str = "", description: str = "") -> Doc:
    return Doc({"title": title, "description": description, "text": text})


def sent(text: str) -> Doc:
    """The document as processors.index sends it, its terms with it."""
    source: dict[str, Any] = {"title": "", "text": text}
    source.update(index.terms(source))
    return Doc(source)


def found(query: str, d: Doc) -> bool:
    return q.matches(q.parse(query), d)


def test_a_word_is_found_in_any_field() -> None:
    assert found("strike", doc(title="Strike ends"))
    assert found("strike", doc(description="The strike ends"))
    assert found("strike", doc(text="Dockers strike."))
    assert not found("strike", doc(title="Port", description="closed", text="again"))
    assert found("strike", Doc({"text": "strike"}))  # missing fields are empty
    assert not found("strike", Doc({}))


def test_stems_words_and_prefixes() -> None:
    for form in ("strike", "strikes", "striking", "STRIKES", "Strike\u2019s"):
        assert found("strike", doc(form)), form
        assert found("striking", doc(form)), form
    assert not found("striker", doc("strike"))  # another word
    assert found("strik*", doc("Striking dockers"))
    assert found("dock*", doc("Dockers"))
    assert not found("docks*", doc("Dockers"))  # a prefix is matched on the word as written
    assert not found("strike*", doc("Striking"))


def test_folding_accents_case_and_possessives() -> None:
    assert found("zurich", doc("Talks in Zürich"))
    assert found("Zürich", doc("talks in zurich"))
    assert found("ZURICH", doc("Zürich"))
    assert found("reuters", doc("Reuters's reporters"))
    assert found("Reuters's", doc("said Reuters"))
    assert found("reuters", doc("Reuters\u2019s desk"))  # a typographic apostrophe too
    assert found("don't", doc("Don\u2019t go"))


def test_phrases() -> None:
    assert found('"port strike"', doc("The port strike ended"))
    assert found('"port strikes"', doc("Port striking"))  # stemmed too
    assert not found('"port strike"', doc("strike at the port"))
    assert not found('"port strike"', doc("port workers strike"))
    assert found('"port strike"~1', doc("port workers strike"))
    assert not found('"port strike"', doc(title="port", text="strike"))  # one field
    assert not found('"port strike"~5', doc(title="port", text="strike"))


def test_a_sloppy_phrase_moves_as_many_positions_as_it_says() -> None:
    assert found('"a b"~2', doc("b a"))  # turned round: two moves
    assert not found('"a b"~1', doc("b a"))
    assert not found('"a b"', doc("b a"))
    assert found('"a b c"~2', doc("a x b c"))
    assert not found('"a b c"~0', doc("a x b c"))
    assert found('"a b"~3', doc("a x x b"))
    assert not found('"a b"~1', doc("a x x b"))


def _brute_phrase_at(stems: tuple[str, ...], terms: tuple[str, ...], slop: int) -> bool:
    """Lucene's phrase match, by trying every way of placing the terms."""
    places = [[p for p, s in enumerate(stems) if s == term] for term in terms]
    for chosen in itertools.product(*places):
        if len(set(chosen)) < len(chosen):
            continue  # a repeated term takes distinct positions
        moved = [p - i for i, p in enumerate(chosen)]
        if max(moved) - min(moved) <= slop:
            return True
    return False


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from("abc"), max_size=8).map(tuple),
    st.lists(st.sampled_from("abc"), min_size=2, max_size=3).map(tuple),
    st.integers(0, 4),
)
def test_phrase_at_is_lucenes_phrase_match(
    stems: tuple[str, ...], terms: tuple[str, ...], slop: int
) -> None:
    assert q.phrase_at(stems, terms, slop) == _brute_phrase_at(stems, terms, slop)


def test_and_or_not() -> None:
    d = doc("Dockers strike at the port")
    assert found("strike port", d) and not found("strike football", d)
    assert found("strike | football", d) and not found("football | rugby", d)
    assert found("-football", d) and not found("-strike", d)
    assert found("strike -football", d) and not found("strike -port", d)
    assert found("-(football | rugby)", d) and not found("-(football | port)", d)
    assert found("--strike", d)
    assert found("*", doc()) and found("*", Doc({}))
    assert found("-strike", Doc({}))  # an article without the word: NOT finds it


def test_an_article_as_sent_and_as_read_back_match_alike() -> None:
    text = "Dockers\u2019 strike: Zürich port closed. COVID-19 cases rise"
    for query in ["strike", '"port closed"', "zur*", "covid-19", '"closed port"~2', "-dock*"]:
        assert found(query, sent(text)) == found(query, doc(text)), query


@pytest.mark.parametrize("letter", ["\ufdfa", "\u037a"])
def test_every_term_is_one_token_for_the_index(letter: str) -> None:
    # processors.index sends the terms space-separated and the node splits them on
    # spaces, so a term with a space in it (U+FDFA folds to four Arabic words, U+037A to a
    # space) is several terms, or none, to Elasticsearch but one to newsflow.analysis.
    text = f"port {letter} strike"
    analysed = Analysed.of(text)
    assert all(w.strip() and not re.search(r"\s", w) for w in analysed.words), analysed
    assert found('"port strike"', sent(text)) == found('"port strike"', doc(text))


# -- filters --------------------------------------------------------------------------------

NOV_30 = datetime(2026, 11, 30, tzinfo=UTC)


def article(**fields: Any) -> Doc:
    base: dict[str, Any] = {
        "site": "news.example",
        "site_name": "The News",
        "language": "en",
        "published_at": "2026-11-30T08:00:00+00:00",
        "fetched_at": "2026-11-30T09:00:00+00:00",
        "persons": ["Jane Doe", "John Roe"],
        "organizations": ["Dock Union"],
        "places": ["Zürich"],
        "cluster_id": "story-1",
    }
    base.update(fields)
    return Doc(base)


def test_filters_to_es_of_each_filter() -> None:
    assert Filters().to_es() == []
    [site] = Filters(sites=("News.Example", "Other")).to_es()
    assert site == {
        "bool": {
            "should": [
                {"term": {"site": "news.example"}},
                {"term": {"site": "other"}},
                {"term": {"site_name": {"value": "News.Example", "case_insensitive": True}}},
                {"term": {"site_name": {"value": "Other", "case_insensitive": True}}},
            ],
            "minimum_should_match": 1,
        }
    }
    assert Filters(languages=("EN", "de")).to_es() == [{"terms": {"language": ["en", "de"]}}]
    persons = Filters(persons=("Jane Doe", "john roe"), places=("Zürich",)).to_es()
    assert persons == [
        {"term": {"persons": {"value": "Jane Doe", "case_insensitive": True}}},
        {"term": {"persons": {"value": "john roe", "case_insensitive": True}}},
        {"term": {"places": {"value": "Zürich", "case_insensitive": True}}},
    ]
    assert Filters(organizations=("Dock Union",)).to_es() == [
        {"term": {"organizations": {"value": "Dock Union", "case_insensitive": True}}}
    ]
    assert Filters(stories=("s1", "s2")).to_es() == [{"terms": {"cluster_id": ["s1", "s2"]}}]
    since = datetime(2026, 11, 30, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    [when] = Filters(since=since, until=NOV_30 + timedelta(days=1)).to_es()
    bounds = {"gte": "2026-11-30T12:00:00.123+00:00", "lt": "2026-12-01T00:00:00.000+00:00"}
    assert when == {
        "bool": {
            "should": [
                {"range": {"published_at": bounds}},
                {
                    "bool": {
                        "must_not": [{"exists": {"field": "published_at"}}],
                        "filter": [{"range": {"fetched_at": bounds}}],
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def test_filters_match_sites_languages_and_stories() -> None:
    a = article()
    assert Filters().matches(a)
    assert Filters(sites=("news.example",)).matches(a)
    assert Filters(sites=("NEWS.example",)).matches(a)
    assert Filters(sites=("the news",)).matches(a)  # its name, in any case
    assert Filters(sites=("other.example", "news.example")).matches(a)  # either
    assert not Filters(sites=("other.example",)).matches(a)
    assert not Filters(sites=("news",)).matches(a)
    assert Filters(languages=("EN",)).matches(a)
    assert not Filters(languages=("de",)).matches(a)
    assert not Filters(languages=("en",)).matches(article(language=None))
    assert Filters(stories=("story-2", "story-1")).matches(a)
    assert not Filters(stories=("story-2",)).matches(a)


def test_filters_match_entities_in_any_case_all_of_them() -> None:
    a = article()
    assert Filters(persons=("jane doe",)).matches(a)
    assert Filters(persons=("JANE DOE", "John Roe")).matches(a)  # all of several
    assert not Filters(persons=("Jane Doe", "Max Mustermann")).matches(a)
    assert not Filters(persons=("Jane",)).matches(a)  # a whole name, not a part
    assert Filters(organizations=("dock union",)).matches(a)
    assert Filters(places=("ZÜRICH",)).matches(a)
    assert not Filters(places=("Zurich",)).matches(a)  # names are not folded: as the facets
    assert not Filters(persons=("Jane Doe",)).matches(article(persons=None))
    assert not Filters(organizations=("Dock Union",)).matches(
        article(organizations=[], places=["Dock Union"])
    )


def test_since_is_inclusive_until_exclusive_and_an_undated_article_goes_by_its_fetch() -> None:
    at = datetime(2026, 11, 30, 8, tzinfo=UTC)
    a = article()
    assert Filters(since=at).matches(a) and not Filters(until=at).matches(a)
    assert Filters(since=at - timedelta(hours=1), until=at + timedelta(seconds=1)).matches(a)
    assert not Filters(since=at + timedelta(milliseconds=1)).matches(a)
    # Elasticsearch keeps milliseconds: an until of 08:00:00.0004 is 08:00:00.000 there,
    # which an article published at 08:00 is not before.
    assert not Filters(until=at + timedelta(microseconds=400)).matches(a)
    undated = article(published_at=None)  # fetched at 09:00
    assert Filters(since=at + timedelta(minutes=30)).matches(undated)
    assert not Filters(since=at + timedelta(minutes=30)).matches(a)
    assert not Filters(until=at + timedelta(minutes=30)).matches(undated)
    assert not Filters(since=at).matches(article(published_at=None, fetched_at=None))
    naive = article(published_at="2026-11-30T08:00:00")  # read as UTC
    assert Filters(since=at).matches(naive) and not Filters(until=at).matches(naive)


@pytest.mark.parametrize("gap", [timedelta(0), timedelta(hours=-1)])
def test_since_must_be_before_until(gap: timedelta) -> None:
    with pytest.raises(QueryError, match=r"--since \(2026-11-30 00:00\) is not before.*swap"):
        Filters(since=NOV_30, until=NOV_30 + gap)


def test_filters_describe_themselves() -> None:
    f = Filters(
        sites=("a.example", "b.example"),
        languages=("en",),
        persons=("Jane Doe",),
        places=("Zürich",),
        stories=("s1",),
        since=NOV_30,
    )
    assert f.describe() == (
        "site a.example or b.example, language en, person Jane Doe, place Zürich, "
        "story s1, since 2026-11-30 00:00"
    )
    assert Filters().describe() == ""


# -- times ----------------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "end_of_day", "when"),
    [
        ("2026-11-30", False, NOV_30),
        ("2026-11-30", True, NOV_30 + timedelta(days=1)),  # --until includes the day
        (" 2026-11-30 ", True, NOV_30 + timedelta(days=1)),
        ("2026-11-30T14:00", False, NOV_30 + timedelta(hours=14)),
        ("2026-11-30T14:00", True, NOV_30 + timedelta(hours=14)),
        ("2026-11-30 14:00", False, NOV_30 + timedelta(hours=14)),
        ("2026-11-30T14:00+02:00", False, NOV_30 + timedelta(hours=12)),
        ("2026-11-30T14:00Z", False, NOV_30 + timedelta(hours=14)),
        ("90m", False, NOW - timedelta(minutes=90)),
        ("6h", True, NOW - timedelta(hours=6)),
        ("2d", False, NOW - timedelta(days=2)),
        ("1w", False, NOW - timedelta(weeks=1)),
        ("2D", False, NOW - timedelta(days=2)),
        ("20261130", True, NOV_30 + timedelta(days=1)),  # a date in ISO's basic format
    ],
)
def test_parse_time(text: str, end_of_day: bool, when: datetime) -> None:
    got = q.parse_time(text, option="--until", end_of_day=end_of_day, now=NOW)
    assert got == when and got.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "1.5h", "3y", "", "-2d"])
def test_a_time_that_is_none_says_what_would_be(text: str) -> None:
    with pytest.raises(QueryError) as raised:
        q.parse_time(text, option="--since", now=NOW)
    message = str(raised.value)
    assert message.startswith(f"--since {text.strip()!r} is not a time")
    assert "2026-11-30" in message and "2d" in message


# -- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"size": 0}, "--size must be 1 to 100, not 0"),
        ({"size": search.MAX_SIZE + 1}, "--size must be 1 to 100"),
        ({"page": 0}, "--page counts from 1, not 0"),
        ({"page": -2}, "--page counts from 1"),
        ({"page": 101, "size": 100}, "goes past the first 10000 hits"),
        ({"page": 2001, "size": 5}, "goes past"),
        ({"text": '"port strike'}, "never closed"),
        ({"text": "port |"}, "needs something"),
    ],
)
def test_a_bad_request_is_refused_before_any_search(changes: dict[str, Any], words: str) -> None:
    class Unreachable:
        def search(self, **_: Any) -> Any:
            raise AssertionError("no request should be made")

    with pytest.raises(QueryError, match=re.escape(words)):
        search.run(Unreachable(), "idx", search.Request(**changes))


def test_the_last_page_elasticsearch_pages_through_is_allowed() -> None:
    assert search.Request("port", page=100, size=100).body()["from"] == 9900


def test_request_body() -> None:
    words = search.Request("port strike", Filters(languages=("en",)), page=3, size=7)
    body = words.body()
    assert (body["from"], body["size"]) == (14, 7)
    assert body["query"] == {
        "bool": {
            "must": [q.to_es(q.parse("port strike"))],
            "filter": Filters(languages=("en",)).to_es(),
        }
    }
    assert words.order == "relevance" and body["sort"][0] == "_score"
    assert body["collapse"]["field"] == "cluster_id" and body["track_total_hits"] is True
    assert set(body["aggs"]) == {*search.FACETS, "stories"}
    everything = search.Request("*")
    assert everything.everything and everything.order == "newest"
    assert everything.body()["sort"][0] == {"published_at": {"order": "desc", "missing": "_last"}}
    assert everything.body()["query"]["bool"]["must"] == [{"match_all": {}}]
    assert search.Request("port", sort="newest").body()["sort"][0] != "_score"
    assert search.Request("*", sort="relevance").body()["sort"][0] == "_score"
    assert "collapse" not in search.Request("port", collapse=False).body()


# -- marks and snippets ---------------------------------------------------------------------


def marked(text: str, query: str) -> list[str]:
    return [text[a:b] for a, b in search.marks(text, q.parse(query))]


def test_marks_are_the_words_the_query_matched() -> None:
    text = "Port strikes spread; the strike at Zürich's port ended. Football unaffected."
    assert marked(text, "strike") == ["strikes", "strike"]
    assert marked(text, "zurich") == ["Zürich's"]
    assert marked(text, "strike -football") == ["strikes", "strike"]  # not what is left out
    assert marked(text, "-(football | rugby) port") == ["Port", "port"]
    assert marked(text, "foot* | end*") == ["ended", "Football"]
    assert marked(text, '"the strike"') == ["the strike"]
    assert marked(text, '"port strike"') == ["Port strikes"]  # the phrase, not each word
    assert marked(text, "--football") == ["Football"]  # twice negated: wanted
    assert marked(text, "*") == [] and marked(text, "rugby") == []


def test_a_sloppy_phrase_marks_only_words_of_a_match() -> None:
    # "Port strike" is the phrase; the second "port" is three moves from "strike", more
    # than ~1 allows, and is no part of any match of it.
    assert marked("Port strike: port closed", '"port strike"~1') == ["Port strike"]


LONG = (
    "Dockers walked out at dawn. " * 4
    + "The strike closed the port. "
    + "Talks went on into the night. " * 6
    + "A second strike was called for Monday, and a third strike for Friday. "
    + "Nothing else happened. " * 8
    + "The union said the strike would go on. "
)


def _unmarked(snippet: str, markers: tuple[str, str] = search.PLAIN) -> str:
    return re.sub(re.escape(markers[0]) + ".*?" + re.escape(markers[1]), " ", snippet)


def test_snippets_are_few_in_text_order_and_never_cut_a_mark() -> None:
    found = search.snippets(LONG, q.parse("strike"))
    assert 1 <= len(found) <= search.SNIPPETS
    starts = [LONG.find(s.strip("…").split("«")[0].strip()) for s in found]
    assert starts == sorted(starts)
    for s in found:
        assert "«strike»" in s and "strike" not in _unmarked(s)
        assert s.count("«") == s.count("»")
        assert "\x1b" not in s
        assert len(s) <= search.SNIPPET_CHARS + 60
    # the passage with two marks comes before a passage with one
    assert any(s.count("«strike»") == 2 for s in found)


def test_snippets_on_a_terminal_are_bold() -> None:
    [s, *_] = search.snippets(LONG, q.parse("strike"), search.BOLD)
    assert f"{search.BOLD[0]}strike{search.BOLD[1]}" in s and "«" not in s


def test_a_text_without_a_mark_gives_its_opening() -> None:
    [opening] = search.snippets(LONG, q.parse("rugby"))
    assert opening.startswith("Dockers walked out") and opening.endswith("…")
    assert "«" not in opening
    assert search.snippets("", q.parse("strike")) == []
    assert search.snippets("  \n ", q.parse("strike")) == []
    assert search.snippets("A strike.", q.parse("strike")) == ["A «strike»."]


def test_a_snippet_shows_a_mark_that_follows_a_long_unbroken_run() -> None:
    # A long URL before the word: the passage must still hold the word it was chosen for.
    text = "Read more at https://news.example/" + "a-very-long-slug-" * 12 + "strike-ends now."
    [s] = search.snippets(text, q.parse("strike"))
    assert "«strike»" in s


def test_a_snippet_never_ends_inside_a_marked_word() -> None:
    # Words joined by hyphens past the passage's end: the end may stop in one of them,
    # which then shows cut and unmarked ("-strik…").
    text = "word " * 30 + "x" * 152 + "-strike" * 8 + " rest of the text"
    for s in search.snippets(text, q.parse("strike")):
        assert "stri" not in _unmarked(s), s


_WORDS = st.sampled_from(["port", "strike", "strikes", "Zürich", "the", "dock", "x-ray", "a"])
_GAPS = st.sampled_from([" ", "  ", "\n\n", "-", ", ", "\u2019s ", "", "\t"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_WORDS, _GAPS), max_size=120).map(
        lambda pairs: "".join(w + g for w, g in pairs)
    ),
    st.sampled_from(
        ["strike", "port | zurich", '"port strike"', '"strike port"~2', "dock*", "the -x"]
    ),
    st.integers(20, 200),
)
def test_snippet_marks_are_balanced(text: str, query: str, size: int) -> None:
    found = search.snippets(text, q.parse(query), size=size)
    assert len(found) <= search.SNIPPETS
    for s in found:
        depth = 0
        for c in s:
            if c in "«»":
                depth += 1 if c == "«" else -1
                assert depth in (0, 1), s
        assert depth == 0, s
        assert "«»" not in s
        for inner in re.findall("«(.*?)»", s):
            assert list(tokens(inner)), s


def test_markers_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert search.markers_for(Terminal()) == search.BOLD
    assert search.markers_for(io.StringIO()) == search.PLAIN
    assert search.markers_for(object()) == search.PLAIN


# -- rendering ------------------------------------------------------------------------------


def hit(n: int, **fields: Any) -> search.Hit:
    base: dict[str, Any] = {
        "id": f"id-{n}",
        "title": f"Port strike day {n}",
        "url": f"https://news.example/{n}",
        "site": "The News",
        "snippets": ["the «strike» goes on"],
        "published_at": "2026-11-30T08:15:00+00:00",
    }
    base.update(fields)
    return search.Hit(**base)


def test_heading_when_nothing_matches_and_past_the_last_page() -> None:
    none = search.Result(0, [], {}, request=search.Request("zzz"))
    assert search.render(none) == f"search {'zzz'!r}: no article matches"
    past = search.Result(7, [], {}, stories=3, request=search.Request("port", page=4))
    assert search.heading(past) == f"search {'port'!r}: no more hits: page 4 is past the last"
    narrowed = search.Request("port", Filters(languages=("en",)))
    assert search.heading(search.Result(0, [], {}, request=narrowed)) == (
        f"search {'port'!r} (language en): no article matches"
    )


def test_render_lists_hits_copies_and_facets() -> None:
    copies = [search.Copy("id-9", "https://wire.example/9", "Wire")]
    result = search.Result(
        total=3,
        hits=[hit(1, copies=copies, copies_total=1), hit(2, copies=copies, copies_total=3)],
        facets={"persons": [("Jane Doe", 2)], "places": []},
        stories=2,
        request=search.Request("strike", page=2, size=2),
    )
    lines = search.render(result).splitlines()
    assert lines[0] == f"search {'strike'!r}: 3 article(s) in 2 stories, best first; stories 3-4:"
    assert lines[1] == "  * Port strike day 1  [The News, 2026-11-30 08:15]"
    assert lines[2] == "    https://news.example/1"
    assert lines[3] == "      the «strike» goes on"
    assert lines[4] == "    + 1 more copy of this story: https://wire.example/9"
    assert lines[8] == "    + 3 more copies of this story: https://wire.example/9 and 2 more"
    assert lines[-1] == "  persons: Jane Doe (2)"
    assert not any(line.startswith("  places") for line in lines)


def test_render_every_article_uncollapsed() -> None:
    result = search.Result(
        1, [hit(1, published_at=None)], {}, request=search.Request(collapse=False)
    )
    lines = search.render(result).splitlines()
    assert lines[0] == "search every article: 1 article(s), newest first; articles 1-1:"
    assert lines[1] == "  * Port strike day 1  [The News]"


def test_hit_json() -> None:
    copies = [search.Copy("id-9", "https://wire.example/9", "Wire")]
    line = hit(1, copies=copies, copies_total=1, story="s1", entities={"persons": ["Zoë"]})
    parsed = json.loads(line.to_json())
    assert parsed["id"] == "id-1" and parsed["story"] == "s1"
    assert parsed["copies"] == [{"id": "id-9", "url": "https://wire.example/9", "site": "Wire"}]
    assert parsed["entities"] == {"persons": ["Zoë"]} and "Zoë" in line.to_json()
    assert {"title", "url", "site", "published_at", "fetched_at", "snippets"} <= set(parsed)
