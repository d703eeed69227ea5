"""Paragraph dedup: invariants (hypothesis), the boilerplate lifecycle on a plain dict as
the state, and the real-data check that no fundus gold paragraph is removed."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.paragraphs import (
    DEFAULT_POLICY,
    BoilerplatePolicy,
    Deduped,
    dedup,
    normalize,
    observe,
    observe_headlines,
    paragraph_key,
    strip_boilerplate,
    strip_teasers,
    sweep,
)
from processors.repeats import dedup_in_page
from tests.conftest import shared_data_path

DAY = 86400.0
SITE = "example.com"
NEWSLETTER = "Sign up for our morning newsletter and get the day's news in your inbox."
LONG = "The council voted on Tuesday to extend the tram line to the northern suburbs."

# A small pool so that generated pages repeat paragraphs, in several spellings.
POOL = [
    "Yes.",
    "No.",
    "Advertisement",
    "ADVERTISEMENT",
    "Fill: Synthetic",
    NEWSLETTER,
    NEWSLETTER.upper(),
    f"“{LONG}”",
    LONG,
    f"  {LONG.replace(' ', '   ')} ",
    "***",
    "",
]
paragraph = st.one_of(st.sampled_from(POOL), st.text(max_size=80))
page = st.lists(paragraph, max_size=25)
story = st.sampled_from(["s1", "s2", "s3", "s4", "s5"])
observation = st.tuples(st.sampled_from([SITE, "other.org"]), story, page, st.floats(0, 3 * DAY))


# --- normalisation ---------------------------------------------------------------------


def test_normalize_folds_what_does_not_change_the_text() -> None:
    assert normalize("  “Hello,\n  World!”  ") == "hello, world"
    assert normalize("\u2013 ADVERTISEMENT \u2013") == normalize("Advertisement") == "advertisement"
    assert normalize("Geschlechts\u00adeintrag") == "geschlechtseintrag"  # soft hyphen
    assert normalize("\uff26\uff55\uff4c\uff4c\u00a0width") == "full width"  # NFKC
    assert normalize("Yes.") != normalize("Yes, but")  # inner text still counts
    assert normalize("***") == ""


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


@given(st.text())
def test_key_depends_only_on_the_normalised_text(text: str) -> None:
    assert paragraph_key(text) == paragraph_key(normalize(text))
    assert re.fullmatch(r"[0-9a-f]{16}", paragraph_key(text))


# --- across a site's pages: invariants -------------------------------------------------


def observed(observations: list[tuple[str, str, list[str], float]]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for site, story_id, paragraphs, now in observations:
        observe(site, story_id, paragraphs, state, now)
    return state


@given(st.lists(observation, max_size=8), observation)
def test_observe_twice_is_observe_once(history: list[Any], again: Any) -> None:
    once = observed([*history, again])
    twice = observed([*history, again, again])
    assert twice == once


@given(st.lists(observation, max_size=8), page, st.floats(0, 3 * DAY))
def test_a_paragraph_on_one_story_is_never_stripped(
    history: list[Any], paragraphs: list[str], now: float
) -> None:
    lone = "A sentence only story s1 ever printed, long enough to be considered."
    # every sighting of `lone` is on story s1, under any number of pages and times
    state = observed([*history, (SITE, "s1", [lone, *paragraphs], now)])
    for policy in (DEFAULT_POLICY, BoilerplatePolicy(min_stories=1, min_chars=0)):
        kept, _ = strip_boilerplate(SITE, "s1", [lone], state, now, policy)
        assert kept == [lone]


@given(st.lists(observation, max_size=8), observation)
def test_stripping_does_not_depend_on_the_page_being_seen_already(
    history: list[Any], current: Any
) -> None:
    site, story_id, paragraphs, now = current
    before = observed(history)
    after = observed([*history, current])
    policy = BoilerplatePolicy(min_stories=1)
    answer = strip_boilerplate(site, story_id, paragraphs, before, now, policy)
    assert strip_boilerplate(site, story_id, paragraphs, after, now, policy) == answer
    kept, removed = answer
    assert Counter(kept) + Counter(removed) == Counter(paragraphs)


@given(st.lists(observation, max_size=8))
def test_state_is_json_and_bounded(history: list[Any]) -> None:
    state = observed(history)
    assert json.loads(json.dumps(state)) == state
    assert all(len(refs) <= DEFAULT_POLICY.max_refs for refs in state.values())


# --- across a site's pages: lifecycle on a plain dict ----------------------------------


def test_seen_on_three_stories_is_stripped_from_the_fourth() -> None:
    state: dict[str, Any] = {}
    for n, story_id in enumerate(["a", "b", "c"]):
        kept, removed = strip_boilerplate(SITE, story_id, [LONG, NEWSLETTER], state, n)
        assert (kept, removed) == ([LONG, NEWSLETTER], [])  # not before three others
        observe(
            SITE,
            story_id,
            [f"Story {story_id} starts here, in its own words.", NEWSLETTER],
            state,
            n,
        )
    kept, removed = strip_boilerplate(SITE, "d", [LONG, NEWSLETTER.upper()], state, 3)
    assert kept == [LONG]
    assert removed == [NEWSLETTER.upper()]


def test_one_story_under_five_urls_does_not_become_boilerplate() -> None:
    state: dict[str, Any] = {}
    for version in range(5):  # republished, or a live story updated five times
        _, removed = strip_boilerplate(SITE, "live", [LONG], state, version)
        assert removed == []
        observe(SITE, "live", [LONG], state, version)
    assert strip_boilerplate(SITE, "other", [LONG], state, 5) == ([LONG], [])


def test_redelivery_writes_nothing() -> None:
    class Recording(dict[str, Any]):
        writes = 0

        def __setitem__(self, key: str, value: Any) -> None:
            self.writes += 1
            super().__setitem__(key, value)

    state = Recording()
    observe(SITE, "a", [LONG, NEWSLETTER], state, 10.0)
    assert state.writes == 2
    observe(SITE, "a", [LONG, NEWSLETTER], state, 10.0)
    assert state.writes == 2


def test_sightings_decay_after_the_window_and_are_swept() -> None:
    state: dict[str, Any] = {}
    for n, story_id in enumerate(["a", "b", "c"]):
        observe(SITE, story_id, [NEWSLETTER], state, n * DAY)
    assert strip_boilerplate(SITE, "d", [NEWSLETTER], state, 3 * DAY)[1] == [NEWSLETTER]
    # a week after story "a", only two sightings are left in the window
    late = DEFAULT_POLICY.window_seconds + 1.5 * DAY
    assert strip_boilerplate(SITE, "d", [NEWSLETTER], state, late)[1] == []
    assert sweep(state, late) == 0
    assert len(next(iter(state.values()))) == 1
    assert sweep(state, late + 2 * DAY) == 1
    assert state == {}


def test_boilerplate_seen_every_day_stays_boilerplate() -> None:
    state: dict[str, Any] = {}
    for day in range(30):
        result = dedup(
            SITE, f"story-{day}", [f"Day {day}'s news, told once.", NEWSLETTER], state, day * DAY
        )
        assert result.boilerplate == ([NEWSLETTER] if day >= 3 else [])
        sweep(state, day * DAY)
    assert len(state) == 8 + 1  # days 22 to 29 (the window includes its edge), newsletter


def test_sweep_bounds_the_table_and_refs_are_capped() -> None:
    state: dict[str, Any] = {}
    for n in range(100):
        observe(
            SITE, f"s{n}", [NEWSLETTER, f"Paragraph number {n} of the archive."], state, n * 3600.0
        )
    refs = state[f"{SITE}\x1f{paragraph_key(NEWSLETTER)}"]
    # the 4 first seen (min_stories + 1) and the 4 most recently seen
    assert sorted(refs) == sorted(f"s{n}" for n in [0, 1, 2, 3, 96, 97, 98, 99])
    assert refs["s97"] == [97 * 3600.0, 97 * 3600.0]  # [first seen, last seen]
    now = 99 * 3600.0 + DEFAULT_POLICY.window_seconds - 10 * 3600.0
    deleted = sweep(state, now)
    assert deleted == 89  # paragraphs 0..88 are older than the window
    assert len(state) == 1 + 11


def test_short_lines_are_neither_recorded_nor_stripped() -> None:
    state: dict[str, Any] = {}
    for n in range(10):
        observe(SITE, f"s{n}", ["Yes.", "ANKARA", "Advertisement"], state, n)
    assert state == {}
    assert strip_boilerplate(SITE, "s99", ["Yes.", "ANKARA"], state, 10) == (["Yes.", "ANKARA"], [])


def test_sites_do_not_share_boilerplate() -> None:
    state: dict[str, Any] = {}
    for n in range(5):
        observe("a.example", f"s{n}", [NEWSLETTER], state, n)
    assert strip_boilerplate("b.example", "x", [NEWSLETTER], state, 5) == ([NEWSLETTER], [])


def test_a_malformed_value_counts_as_unseen() -> None:
    key = f"{SITE}\x1f{paragraph_key(NEWSLETTER)}"
    state: dict[str, Any] = {key: "not a dict"}
    assert strip_boilerplate(SITE, "a", [NEWSLETTER], state, 0) == ([NEWSLETTER], [])
    observe(SITE, "a", [NEWSLETTER], state, 0)
    assert state[key] == {"a": [0.0, 0.0]}
    state[key] = {"a": [0.0, 0.0], "b": [2.0, 1.0], "c": "soon", "d": [True, True], "e": 1.0}
    # only "a" and "e" are well formed: one other story first seen before 3 is not three
    assert strip_boilerplate(SITE, "x", [NEWSLETTER], state, 3) == ([NEWSLETTER], [])


def test_dedup_observes_stripped_paragraphs() -> None:
    state: dict[str, Any] = {}
    for n in range(3):
        dedup(SITE, f"s{n}", [NEWSLETTER], state, n)
    result = dedup(SITE, "s3", [LONG, NEWSLETTER], state, 3)
    assert result.paragraphs == [LONG]
    assert result.boilerplate == [NEWSLETTER]
    assert "s3" in state[f"{SITE}\x1f{paragraph_key(NEWSLETTER)}"]


@pytest.mark.parametrize(
    "kwargs",
    [{"min_stories": 0}, {"max_refs": 3}, {"window_seconds": 0}],
)
def test_policy_rejects_settings_that_break_the_guarantees(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BoilerplatePolicy(**kwargs)


# --- replays: the same pages again decide the same ----------------------------------

# Long enough to be judged, in a pool small enough that pages share them.
SHARED = [
    NEWSLETTER,
    LONG,
    "Read more stories like this one on our website, every day.",
    "Share this article with your friends and family on social media.",
]
replayed_page = st.tuples(
    st.sampled_from([SITE, "other.org"]),
    st.sampled_from([f"s{n}" for n in range(12)]),
    st.lists(st.sampled_from([*SHARED, NEWSLETTER.upper(), "Yes."]), max_size=6),
    st.sampled_from([0.0, 0.0, 600.0, 3600.0]),  # time since the page before; 0 is a tie
)
replay_policy = st.sampled_from(
    [
        DEFAULT_POLICY,
        BoilerplatePolicy(min_stories=1, max_refs=2),  # trimming at every third story
        BoilerplatePolicy(min_stories=2, max_refs=4, min_chars=0),
    ]
)


@given(st.lists(replayed_page, min_size=1, max_size=40), replay_policy)
def test_a_replay_decides_as_the_first_run(pages: list[Any], policy: BoilerplatePolicy) -> None:
    now, timed = 0.0, []
    for site, story_id, paragraphs, step in pages:  # in time order, well within the window
        now += step
        timed.append((site, story_id, paragraphs, now))

    def run(page: tuple[str, str, list[str], float], state: dict[str, Any]) -> Deduped:
        site, story_id, paragraphs, now = page
        return dedup(site, story_id, paragraphs, state, now, policy)

    state: dict[str, Any] = {}
    first = [run(page, state) for page in timed]
    for page, answer in zip(timed, first, strict=True):  # any one page again
        assert run(page, dict(state)) == answer
    assert [run(page, state) for page in timed] == first  # every page again, in order


def test_later_stories_reusing_a_paragraph_do_not_strip_it_from_a_replay() -> None:
    state: dict[str, Any] = {}
    own = {story_id: f"Story {story_id} in its own words, told once." for story_id in "ABCDE"}
    first = {
        story_id: dedup(SITE, story_id, [own[story_id], LONG], state, now).boilerplate
        for now, story_id in enumerate("ABCDE", start=1)
    }
    # A printed it first; B, C and D reused it, so it was boilerplate for D and E
    assert first == {"A": [], "B": [], "C": [], "D": [LONG], "E": [LONG]}
    # A again: B, C and D came after it and do not count, so A keeps its paragraph
    assert dedup(SITE, "A", [own["A"], LONG], state, 1).paragraphs == [own["A"], LONG]
    again = {
        story_id: dedup(SITE, story_id, [own[story_id], LONG], state, now).boilerplate
        for now, story_id in enumerate("ABCDE", start=1)
    }
    assert again == first


def test_the_stories_that_made_a_paragraph_boilerplate_outlive_trimming() -> None:
    state: dict[str, Any] = {}
    for n in range(20):  # twenty stories reuse it: more than max_refs (8)
        dedup(SITE, f"s{n}", [NEWSLETTER], state, n)
    # s3 lost it to s0, s1 and s2 the first time; it does again, although twelve later
    # stories would have pushed those three out of eight most recent references.
    assert dedup(SITE, "s3", [NEWSLETTER], state, 3).boilerplate == [NEWSLETTER]
    assert dedup(SITE, "s2", [NEWSLETTER], state, 2).boilerplate == []


def test_pages_of_the_same_time_decide_alike_in_either_order() -> None:
    def decisions(order: str) -> dict[str, list[str]]:
        state: dict[str, Any] = {}
        for now, story_id in enumerate("abc"):
            observe(SITE, story_id, [NEWSLETTER], state, now)
        return {s: dedup(SITE, s, [NEWSLETTER, LONG], state, 5).boilerplate for s in order}

    assert decisions("de") == decisions("ed") == {"d": [NEWSLETTER], "e": [NEWSLETTER]}
    state: dict[str, Any] = {}
    for story_id in "abcd":  # all at once: none of them came before another
        observe(SITE, story_id, [NEWSLETTER], state, 7)
    assert strip_boilerplate(SITE, "a", [NEWSLETTER], state, 7) == ([NEWSLETTER], [])


def test_values_of_the_older_layout_still_count() -> None:
    """Before first sightings were kept a value was {story_id: last seen}; it reads as
    first = last seen, and the next write turns it into the new layout."""
    key = f"{SITE}\x1f{paragraph_key(NEWSLETTER)}"
    state: dict[str, Any] = {key: {"a": 0.0, "b": 1, "c": 2.0}}
    assert strip_boilerplate(SITE, "d", [NEWSLETTER], state, 3) == ([], [NEWSLETTER])
    assert strip_boilerplate(SITE, "d", [NEWSLETTER], state, 2) == ([NEWSLETTER], [])
    observe(SITE, "d", [NEWSLETTER], state, 3)
    assert state[key] == {"a": [0.0, 0.0], "b": [1.0, 1.0], "c": [2.0, 2.0], "d": [3.0, 3.0]}
    state[key] = {"a": 0.0, "b": DAY}
    assert sweep(state, DEFAULT_POLICY.window_seconds + 0.5 * DAY) == 0
    assert state[key] == {"b": [DAY, DAY]}


# --- real data: the fundus golden pages' gold paragraphs -------------------------------


def gold_pages(root: Path) -> list[tuple[str, str, str, list[str]]]:
    """(site, page id, title, gold paragraphs) per page, a publisher's pages in order
    (its JSON versions V1, V1_1, V2... follow the pages' dates)."""
    pages = []
    for gold_file in sorted(root.glob("*/*.json")):
        entries = json.loads(gold_file.read_text(encoding="utf-8"))
        site = f"{gold_file.parent.name}/{gold_file.stem}"
        for version in sorted(entries, key=lambda v: [int(n) for n in re.findall(r"\d+", v)]):
            body = entries[version].get("body") or {}
            gold = list(body.get("summary") or [])
            for section in body.get("sections") or []:
                gold += (section.get("headline") or []) + (section.get("paragraphs") or [])
            pages.append((site, f"{site}/{version}", entries[version].get("title") or "", gold))
    return pages


@pytest.mark.parametrize(
    ("policy", "story_of"),
    [
        # production policy, every page its own story (the harder case for it)
        (DEFAULT_POLICY, "page"),
        # the loosest policy: one other story is enough; stories are the normalised
        # title, as near-duplicate detection would cluster the same article twice
        (BoilerplatePolicy(min_stories=1, window_seconds=1e9), "title"),
    ],
)
def test_no_fundus_gold_paragraph_is_removed(policy: BoilerplatePolicy, story_of: str) -> None:
    pages = gold_pages(shared_data_path("extraction", "fundus"))
    assert len(pages) >= 250
    state: dict[str, Any] = {}
    lost, stripped = [], []
    for now, (site, page_id, title, gold) in enumerate(pages):
        story_id = page_id if story_of == "page" else paragraph_key(title)
        unique = dedup_in_page(gold).paragraphs
        kept, removed = strip_boilerplate(site, story_id, unique, state, now, policy)
        observe(site, story_id, unique, state, now, policy)
        stripped += [f"{page_id}: {p[:80]}" for p in removed]
        remaining = {normalize(p) for p in kept}
        lost += [f"{page_id}: {g[:80]}" for g in gold if normalize(g) not in remaining]
    assert stripped == [], "gold paragraphs stripped as boilerplate:\n" + "\n".join(stripped)
    assert lost == [], "gold paragraphs with no copy left:\n" + "\n".join(lost)


def test_gold_repeats_within_a_page_keep_their_first_copy() -> None:
    """The gold itself repeats three paragraphs on a page (a standfirst repeated in the
    body, a consent notice and an offer shown twice); only the later copies go."""
    pages = gold_pages(shared_data_path("extraction", "fundus"))
    removed_copies = {}
    for _, page_id, _, gold in pages:
        found = dedup_in_page(gold)
        kept, removed = found.paragraphs, found.removed
        if removed:
            removed_copies[page_id] = removed
            assert {normalize(p) for p in kept} == {normalize(p) for p in gold}
    assert sum(removed_copies.values()) <= 3, removed_copies


# --- teasers: other stories' headlines --------------------------------------------------

HEADLINE = "Dockers walk out over new shift rules"
STANDFIRST = "Container traffic has stopped after dockworkers began a 72-hour strike."


def test_a_teaser_is_another_storys_headline_with_its_lines_after_it() -> None:
    state: dict[str, Any] = {}
    dedup(SITE, "strike", [STANDFIRST, LONG], state, 0, headlines=[HEADLINE, None])
    page = ["Our own text, long enough to count.", HEADLINE, STANDFIRST, LONG, NEWSLETTER]
    kept, teasers = strip_teasers(SITE, "other", page, state, 1)
    # the headline and up to two lines of that story after it; NEWSLETTER is not its line
    assert teasers == [HEADLINE, STANDFIRST, LONG]
    assert kept == [page[0], NEWSLETTER]
    # its own story, a tie in time, and another site are never teased
    assert strip_teasers(SITE, "strike", page, state, 1)[1] == []
    assert strip_teasers(SITE, "other", page, state, 0)[1] == []
    assert strip_teasers("other.org", "other", page, state, 1)[1] == []


def test_teasers_decide_the_same_after_the_page_was_recorded() -> None:
    state: dict[str, Any] = {}
    dedup(SITE, "strike", [STANDFIRST], state, 0, headlines=[HEADLINE])
    page = [HEADLINE, STANDFIRST, LONG]
    first = dedup(SITE, "other", page, state, 1, headlines=["Another story of the day"])
    again = dedup(SITE, "other", page, state, 1, headlines=["Another story of the day"])
    assert first == again and first.teasers == [HEADLINE, STANDFIRST]
    # teasers are another story's text: not recorded for this one
    assert "other" not in state[f"{SITE}\x1f{paragraph_key(STANDFIRST)}"]


def test_short_headlines_are_not_recorded_and_headlines_are_swept() -> None:
    state: dict[str, Any] = {}
    observe_headlines(SITE, "s", ["Live", "Weather today", HEADLINE], state, 0)
    assert len(state) == 1  # "Weather today": two words
    assert strip_teasers(SITE, "t", ["Live", "Weather today"], state, 1)[1] == []
    assert sweep(state, 2 * DEFAULT_POLICY.window_seconds) == 1 and state == {}
