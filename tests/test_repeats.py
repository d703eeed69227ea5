"""Repeats within one page: the exact, short and near rules, their invariants
(hypothesis), and pages flattened to plain text and HTML pages run through extraction."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors import clean
from processors.paragraphs import normalize
from processors.repeats import Kind, RepeatPolicy, dedup_in_page

LONG = "The council voted on Tuesday to extend the tram line to the northern suburbs."
CAPTION = "Pickets at the Nordcastle terminal gate on Dock Road on Monday."
CREDITED = f"{CAPTION} Photo: Anna Berg/Kessling Courier"
LEAD = (
    "Container traffic at the Port of Kessling stopped on Monday after dockworkers began a "
    "72-hour strike over twelve-hour shifts."
)
EDITED_LEAD = LEAD.replace("shifts.", "shifts, the union said.")
# Long enough that one changed word leaves 95% of its word pairs in the other copy.
LONG_LEAD = (
    "Container traffic at the Port of Kessling stopped on Monday after dockworkers began a "
    "72-hour strike over twelve-hour shifts, and shipping lines diverted six vessels to "
    "Gdansk while the union and the terminal operator traded blame for the breakdown of "
    "talks that had run for three months at the city hall."
)
WIDGET = "Join the Conversation"

POOL = ["Yes.", "No.", "Advertisement", WIDGET, "Fill: Synthetic", CAPTION, CREDITED, LONG, ""]
KINDS: list[Kind] = ["text", "item", "cell", "line", "other"]
paragraph = st.one_of(st.sampled_from(POOL), st.text(max_size=80))
page = st.lists(st.tuples(paragraph, st.sampled_from(KINDS)), max_size=25)


def run(lines: list[str], kind: Kind) -> list[str]:
    return dedup_in_page(lines, [kind] * len(lines)).paragraphs


# --- exact repeats -----------------------------------------------------------------------


def test_a_long_paragraph_printed_twice_keeps_its_first_copy_whatever_its_kind() -> None:
    for kind in KINDS:
        found = dedup_in_page([LONG, "Between.", f"“{LONG.upper()}”"], [kind] * 3)
        assert found.paragraphs == [LONG, "Between."]
        assert found.exact == [f"“{LONG.upper()}”"]


def test_without_kinds_only_long_exact_repeats_go() -> None:
    lines = [WIDGET, "a", WIDGET, "b", WIDGET, CAPTION, CREDITED, LONG, LONG]
    found = dedup_in_page(lines)
    assert found.paragraphs == lines[:-1]
    assert (found.short, found.near) == ([], [])


# --- short repeats -----------------------------------------------------------------------


def test_a_widget_heading_printed_at_each_widget_keeps_its_first_copy() -> None:
    lines = [LONG, WIDGET, "Comments are reviewed.", "x" * 60, WIDGET, "Be kind.", "y" * 60, WIDGET]
    for kind in ("text", "line"):
        found = dedup_in_page(lines, [kind] * len(lines))  # type: ignore[list-item]
        assert found.paragraphs == lines[:4] + lines[5:7]
        assert found.short == [WIDGET, WIDGET]


def test_short_repeats_of_list_items_and_table_rows_are_content() -> None:
    lines = ["- Fill: Synthetic", "- Shell: Nylon", "- Fill: Synthetic", "| Team 0 | Yes |"] * 2
    for kind in ("item", "cell", "other"):
        assert run(lines, kind) == lines  # type: ignore[arg-type]


def test_very_short_and_one_word_repeats_stay() -> None:
    lines = [
        "Q: Did you know?",
        "Yes.",
        "Q: Before the vote?",
        "Yes.",
        "Ankara",
        "x",
        "y",
        "Ankara",
    ]
    assert run(lines, "text") == lines
    assert run(lines, "line") == lines


def test_in_plain_text_a_repeat_right_after_its_copy_stays() -> None:
    # a run of equal lines is a flattened table or a chorus, not a widget at two places
    lines = ["Standing by the water", "Standing by the water", "The tide comes in"]
    assert run(lines, "line") == lines
    assert run(lines, "text") == lines[1:]


# --- near repeats ------------------------------------------------------------------------


def test_a_caption_with_and_without_its_credit_keeps_the_credited_form() -> None:
    lines = [CAPTION, CAPTION, "Byline", CREDITED, LONG]
    found = dedup_in_page(lines, ["line"] * 5)
    assert found.paragraphs == ["Byline", CREDITED, LONG]
    assert found.exact == [CAPTION]
    assert found.near == [CAPTION]


def test_a_lead_repeated_with_a_small_edit_keeps_the_fuller_form_in_its_place() -> None:
    found = dedup_in_page([LEAD, EDITED_LEAD, LONG], ["text"] * 3)
    assert found.paragraphs == [EDITED_LEAD, LONG]  # the longer form
    found = dedup_in_page([LONG_LEAD, LONG_LEAD.replace("Monday", "Sunday"), LONG], ["text"] * 3)
    assert found.paragraphs == [LONG_LEAD, LONG]  # equally long: the first
    # in a short lead one changed word is too much of it: both stay
    lines = [LEAD, LEAD.replace("Monday", "Sunday")]
    assert dedup_in_page(lines, ["text"] * 2).paragraphs == lines


def test_a_sentence_that_only_shares_words_is_no_near_repeat() -> None:
    lines = [
        "The council voted on Tuesday to extend the tram line.",
        "On Tuesday the council voted to extend the line of the tram.",
        "Extend the tram line, the council voted on Tuesday.",
    ]
    assert run(lines, "text") == lines


def test_headings_contained_in_sentences_and_list_items_are_no_near_repeats() -> None:
    lines = ["The port strike", "The port strike began on Monday at dawn in Kessling.", LONG]
    assert run(lines, "text") == lines  # under near_min_words
    items = [
        "- red apples and green pears for sale",
        "- red apples and green pears for sale, cheap",
    ]
    assert run(items, "item") == items


def test_near_repeats_chain_down_to_the_fullest_form() -> None:
    a = "Pickets at the terminal gate on Dock Road."
    b = "Pickets at the terminal gate on Dock Road on Monday."
    c = f"{b} Photo: Anna Berg/Kessling Courier"
    found = dedup_in_page([a, b, c], ["text"] * 3)
    assert found.paragraphs == [c]
    assert found.near == [a, b]


def test_a_paragraph_that_holds_several_others_whole_is_not_their_fuller_form() -> None:
    cities = [
        "In Sivas the temperature fell to minus twelve degrees on Tuesday night.",
        "In Erzurum the temperature fell to minus nineteen degrees on Tuesday night.",
        "In Kars the temperature fell to minus twenty-two degrees on Tuesday night.",
        "In Ardahan the temperature fell to minus twenty-five degrees on Tuesday night.",
    ]
    lines = [" ".join(cities), *cities]
    assert run(lines, "text") == lines


@pytest.mark.parametrize(
    "kwargs", [{"near_containment": 0}, {"near_min_words": 1}, {"near_max_ratio": 0.5}]
)
def test_policy_rejects_settings_that_cannot_work(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RepeatPolicy(**kwargs)  # type: ignore[arg-type]


def test_kinds_must_match_the_paragraphs() -> None:
    with pytest.raises(ValueError):
        dedup_in_page(["a", "b"], ["text"])


# --- invariants --------------------------------------------------------------------------


@given(page)
def test_dedup_in_page_is_idempotent(lines: list[tuple[str, Kind]]) -> None:
    once = dedup_in_page([p for p, _ in lines], [k for _, k in lines])
    twice = dedup_in_page(once.paragraphs, once.kinds)
    assert twice.paragraphs == once.paragraphs
    assert twice.removed == 0


@given(page)
def test_what_is_kept_is_a_subsequence_and_removals_add_up(lines: list[tuple[str, Kind]]) -> None:
    paragraphs = [p for p, _ in lines]
    found = dedup_in_page(paragraphs, [k for _, k in lines])
    it = iter(paragraphs)
    assert all(any(p == q for q in it) for p in found.paragraphs)  # order kept
    assert Counter(paragraphs) == Counter(found.paragraphs) + Counter(
        found.exact + found.short + found.near
    )


@given(page)
def test_text_that_occurs_once_is_only_ever_removed_as_a_near_repeat(
    lines: list[tuple[str, Kind]],
) -> None:
    """A paragraph printed once is removed only when a fuller paragraph that contains it
    stays, and only if it is prose."""
    paragraphs = [p for p, _ in lines]
    found = dedup_in_page(paragraphs, [k for _, k in lines])
    counts = Counter(normalize(p) for p in paragraphs)
    for gone in found.exact + found.short:
        assert counts[normalize(gone)] > 1
    for gone in found.near:
        assert any(p == gone and k in ("text", "line") for p, k in lines)
        assert any(len(normalize(k)) >= len(normalize(gone)) for k in found.paragraphs)


# --- through extraction ------------------------------------------------------------------

WIDGET_HTML = f"""<!doctype html><html><head><title>Strike</title></head><body><article>
<h1>Port strike</h1>
<p>{LEAD}</p><p>{EDITED_LEAD}</p>
<figure><img src="a.jpg"><figcaption>{CAPTION}</figcaption></figure>
<p>{LONG} The vote was eleven to four, after a debate of three hours.</p>
<h3>{WIDGET}</h3><p>Comments are reviewed before they appear.</p>
<h3>{WIDGET}</h3><p>Please be kind to each other in the comments.</p>
<ul><li>Fill: Synthetic</li><li>Shell: Nylon</li><li>Fill: Synthetic</li></ul>
<h3>{WIDGET}</h3><p>Read our community guidelines before you post.</p>
</article></body></html>"""


def test_an_html_page_loses_its_repeated_heading_and_lead_but_not_its_list_items() -> None:
    found = clean.extract(WIDGET_HTML.encode(), "https://courier.example/a", "text/html")
    assert isinstance(found, clean.Extracted)
    assert len(found.kinds) == len(found.paragraphs)
    result = dedup_in_page(found.paragraphs, found.kinds)
    assert result.short == [WIDGET, WIDGET]
    assert result.near == [LEAD]
    assert [p for p in result.paragraphs if "Fill: Synthetic" in p] == ["- Fill: Synthetic"] * 2
    assert EDITED_LEAD in result.paragraphs and result.paragraphs.count(WIDGET) == 1


def test_a_flattened_plain_text_page_loses_its_template_repeats() -> None:
    text = "\n\n".join(
        [
            "Port strike",
            CAPTION,
            CAPTION,
            f"By Anna Berg | 9 March 2026\n{LEAD}\n{EDITED_LEAD}",
            LONG,
            f"{WIDGET}\nComments are reviewed.",
            f"{WIDGET}\nBe kind.",
            f"{WIDGET}\nRead the guidelines.",
            CREDITED,
        ]
    )
    found = clean.extract(text.encode(), "https://courier.example/a.txt", "text/plain")
    assert isinstance(found, clean.Extracted)
    assert set(found.kinds) == {"line"}
    result = dedup_in_page(found.paragraphs, found.kinds)
    assert result.paragraphs.count(WIDGET) == 1
    assert CREDITED in result.paragraphs and CAPTION not in result.paragraphs
    assert LEAD not in result.paragraphs and EDITED_LEAD in result.paragraphs
    assert LONG in result.paragraphs
    assert result.removed == len(found.paragraphs) - len(result.paragraphs) == 5


# --- the title printed as the text's headline ---------------------------------------------


def test_the_title_printed_as_the_first_paragraph_goes_once() -> None:
    title = "Port strike: Kessling dockers walk out over new shift rules"
    lines = [title.upper(), LEAD, f"Read also: {title}", title]
    found = dedup_in_page(lines, ["text"] * 4, title=title)
    assert found.title == [title.upper()]
    assert found.paragraphs[:2] == [LEAD, f"Read also: {title}"]
    # elsewhere than first, or as a list item, or without a title, it is text like any
    assert dedup_in_page([LEAD, title], ["text"] * 2, title=title).title == []
    assert dedup_in_page([title, LEAD], ["item", "text"], title=title).title == []
    assert dedup_in_page([title, LEAD], ["text", "text"]).title == []


def test_a_demo_article_loses_its_headline_from_the_text_and_keeps_its_standfirst() -> None:
    from newsflow.demo.sites import EXPECTED, render

    article = next(a for a in EXPECTED.articles if a.site == "courier")
    rendered = render(article.site, article.path)
    assert rendered is not None
    found = clean.extract(rendered[2], f"https://courier.example{article.path}", rendered[1])
    assert isinstance(found, clean.Extracted) and found.title == article.headline
    result = dedup_in_page(found.paragraphs, found.kinds, title=found.title)
    assert result.title == [article.headline]
    assert normalize(article.headline) not in {normalize(p) for p in result.paragraphs}
    assert [normalize(p) for p in result.paragraphs].count(normalize(article.standfirst)) == 1
