"""The search request and its rendering, as pure functions (the search against a real
index is in tests/test_index_and_deadletters.py)."""

from __future__ import annotations

import io

import pytest

from newsflow import search


def test_everything_is_every_article_newest_first() -> None:
    for text in ("*", " * ", ""):
        body = search.query_body(text)
        assert body["query"] == {"match_all": {}}
        assert body["sort"][0]["published_at"]["order"] == "desc"
    words = search.query_body("port strike")
    assert "sort" not in words and words["query"]["multi_match"]["query"] == "port strike"


@pytest.mark.parametrize("size", [0, -1, search.MAX_SIZE + 1])
def test_a_size_out_of_range_is_refused_before_elasticsearch_sees_it(size: int) -> None:
    with pytest.raises(ValueError, match="size must be 1 to"):
        search.query_body("port", size=size)


def test_escape_sequences_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert search.markers_for(Terminal()) == search.BOLD
    assert search.markers_for(io.StringIO()) == search.PLAIN
    assert search.markers_for(object()) == search.PLAIN


def test_a_snippet_never_ends_inside_a_highlight() -> None:
    start, end = search.BOLD
    assert search.balanced(f"a {start}strike{end} and {start}str", search.BOLD).endswith(end)
    closed = f"{start}x{end}"
    assert search.balanced(closed, search.BOLD) == closed


def test_render_says_when_nothing_matches_and_what_everything_is() -> None:
    empty = search.Result(total=0, hits=[], facets={})
    assert search.render(empty, "zzz") == 'search "zzz": no article matches'
    one = search.Result(
        total=7, hits=[search.Hit("T", "http://x/1", "X", ["«a» b"], ["http://y/1"])], facets={}
    )
    assert search.render(one, "*").startswith('search "*": all 7 article(s), newest first')
    rendered = search.render(one, "a")
    assert "7 matching article(s)" in rendered and "+ 1 more copy" in rendered
