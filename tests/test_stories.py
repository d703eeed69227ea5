"""Story clusters (processors.stories): exact and near-duplicates over real articles.

The state is a ``JsonTable``: values go through JSON on every write and come back as
fresh copies on every read, as in a Faust table, so a value mutated in place instead of
re-assigned is lost here too.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.stories import (
    DEFAULT_POLICY,
    Assignment,
    StoryPolicy,
    assign,
    fingerprint,
    lsh_shape,
    similarity,
    sweep,
    text_hash,
)
from tests.conftest import ROOT, shared_data_path

DAY = 86400.0
POLICY = DEFAULT_POLICY


class JsonTable(MutableMapping[str, Any]):
    """A stand-in for a Faust table: JSON values, copies out, writes counted."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0

    def __getitem__(self, key: str) -> Any:
        return json.loads(self.data[key])

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        self.data[key] = json.dumps(value)

    def __delitem__(self, key: str) -> None:
        self.writes += 1
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class Crash(Exception):
    pass


class CrashingTable(JsonTable):
    """Fails on the n-th write, as a worker killed part-way through an article."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at

    def __setitem__(self, key: str, value: Any) -> None:
        if self.writes == self.fail_at:
            self.fail_at = -1
            raise Crash
        super().__setitem__(key, value)


@cache
def fundus() -> dict[str, tuple[str, ...]]:
    """Every fundus gold body as paragraphs, by "<country>/<Publisher>.json:<version>"."""
    out = {}
    for path in sorted(shared_data_path("extraction", "fundus").glob("*/*.json")):
        for version, article in json.loads(path.read_text("utf-8")).items():
            body = article.get("body") or {}
            sections = [
                [*s.get("headline", []), *s.get("paragraphs", [])] for s in body["sections"]
            ]
            paragraphs = [*body.get("summary", []), *(p for s in sections for p in s)]
            out[f"{path.parent.name}/{path.name}:{version}"] = tuple(paragraphs)
    return out


def article(name: str) -> list[str]:
    return list(fundus()[name])


BBC = "uk/BBC.json:V1"
REUTERS = "us/Reuters.json:V1"


def syndicated(paragraphs: list[str]) -> list[str]:
    """How another site runs a wire story: headline in the body, a byline, the last
    paragraph cut, a sentence of its own added, a footer."""
    return [
        "Breaking: the story everyone is talking about",
        "By Jane Doe, Associated Press",
        *paragraphs[:-1],
        "Our reporter contributed to this story from the scene.",
        "© 2024 The Associated Press. All rights reserved.",
    ]


# -- exact and near-duplicates -----------------------------------------------------------


def test_exact_duplicate_points_at_the_original() -> None:
    state = JsonTable()
    first = assign("a", fingerprint(article(BBC)), state, 0.0)
    reformatted = [p.upper().replace(" ", "\n  ") for p in article(BBC)]
    copy = assign("b", fingerprint(reformatted), state, 60.0)
    assert first == Assignment("a")
    assert copy == Assignment("a", "a", "exact", 1.0)


def test_copy_of_a_near_duplicate_joins_the_story_of_the_first() -> None:
    state = JsonTable()
    assign("a", fingerprint(article(BBC)), state, 0.0)
    near = assign("b", fingerprint(syndicated(article(BBC))), state, 60.0)
    exact = assign("c", fingerprint(syndicated(article(BBC))), state, 120.0)
    assert (near.cluster_id, near.duplicate_of, near.kind) == ("a", "a", "near")
    assert near.similarity is not None and POLICY.threshold <= near.similarity < 1
    assert exact == Assignment("a", "b", "exact", 1.0)


def test_near_duplicate_prefers_the_most_similar_article() -> None:
    state = JsonTable()
    lead = article(REUTERS)
    assign("a", fingerprint(lead), state, 0.0)
    assign("b", fingerprint(syndicated(lead)), state, 60.0)
    got = assign("c", fingerprint([*syndicated(lead), "One more line."]), state, 120.0)
    assert (got.cluster_id, got.duplicate_of) == ("a", "b")


def test_unrelated_real_articles_never_cluster() -> None:
    """All fundus gold bodies in sequence: the only story with two articles is the one
    article fundus holds twice (taz, same title and time; V2 lacks a paragraph)."""
    state = JsonTable()
    found = {name: assign(name, fingerprint(p), state, 0.0) for name, p in fundus().items()}
    duplicates = {name: a for name, a in found.items() if a.kind is not None}
    assert set(duplicates) == {"de/Taz.json:V2"}
    assert duplicates["de/Taz.json:V2"].duplicate_of == "de/Taz.json:V1"
    assert duplicates["de/Taz.json:V2"].kind == "near"


def test_short_texts_never_match_even_when_identical() -> None:
    stub = ["Please enable JavaScript to view this content."]
    state = JsonTable()
    assert fingerprint(stub).shingles < POLICY.min_shingles
    assert assign("a", fingerprint(stub), state, 0.0) == Assignment("a")
    assert assign("b", fingerprint(stub), state, 1.0) == Assignment("b")
    assert assign("c", fingerprint([]), state, 2.0) == Assignment("c")
    assert assign("d", fingerprint([]), state, 3.0) == Assignment("d")


# -- at-least-once delivery ---------------------------------------------------------------


def test_redelivery_gives_the_same_answer_and_writes_nothing() -> None:
    state = JsonTable()
    original, copy = fingerprint(article(BBC)), fingerprint(syndicated(article(BBC)))
    first = [assign("a", original, state, 0.0), assign("b", copy, state, 60.0)]
    before, writes = dict(state.data), state.writes
    # the original comes again after its copy: it must not become the copy's duplicate
    again = [assign("a", original, state, 120.0), assign("b", copy, state, 180.0)]
    assert again == first
    assert first[0] == Assignment("a")
    assert (state.data, state.writes) == (before, writes)


def test_a_crash_part_way_is_repaired_by_redelivery() -> None:
    """A worker killed after any number of writes, then the article redelivered: the
    answer and the state are those of an uninterrupted run."""
    original, copy = fingerprint(article(BBC)), fingerprint(syndicated(article(BBC)))
    clean = JsonTable()
    assign("a", original, clean, 0.0)
    expected = assign("b", copy, clean, 60.0)
    for fail_at in range(clean.writes):
        state = CrashingTable(fail_at)
        try:
            assign("a", original, state, 0.0)
            assign("b", copy, state, 60.0)
        except Crash:
            pass
        assign("a", original, state, 0.0)
        assert assign("b", copy, state, 60.0) == expected
        assert state.data == clean.data


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 3)), max_size=12))
def test_replaying_a_stream_repeats_every_answer(stream: list[tuple[str, int]]) -> None:
    """Articles a-f, each a variant of one of four texts (some near copies of each
    other); every later delivery of an id gets its first answer."""
    texts = _variants()
    state = JsonTable()
    first: dict[str, Assignment] = {}
    for i, (article_id, text) in enumerate(stream + stream):
        got = assign(article_id, texts[text], state, float(i))
        assert got == first.setdefault(article_id, got)
        assert got.duplicate_of != article_id


@cache
def _variants() -> list[Any]:
    bbc, reuters = article(BBC), article(REUTERS)
    return [fingerprint(t) for t in (bbc, syndicated(bbc), reuters, syndicated(reuters))]


# -- decay and bounds ---------------------------------------------------------------------


def test_articles_older_than_the_window_are_not_matched_even_before_sweep() -> None:
    state = JsonTable()
    assign("a", fingerprint(article(BBC)), state, 0.0)
    late = assign("b", fingerprint(article(BBC)), state, POLICY.window_seconds + 1)
    assert late == Assignment("b")


def test_sweep_forgets_old_articles_and_keeps_recent_ones() -> None:
    state = JsonTable()
    assign("old", fingerprint(article(BBC)), state, 0.0)
    assign("old-copy", fingerprint(syndicated(article(BBC))), state, 10.0)
    assign("stub", fingerprint(["Watch the video."]), state, 20.0)
    assign("new", fingerprint(article(REUTERS)), state, 3 * DAY)
    now = POLICY.window_seconds + 2 * DAY
    assert sweep(state, now) == 3
    assert sweep(state, now) == 0
    gone = ('"old"', '"old-copy"', '"stub"')  # quoted: a JSON string, never base64
    assert not {"a:old", "a:old-copy", "a:stub"} & set(state)
    assert not any(g in value for g in gone for value in state.data.values())
    # the Reuters article is still matched; the BBC one starts a new story
    assert assign("new-copy", fingerprint(article(REUTERS)), state, now).duplicate_of == "new"
    assert assign("bbc-again", fingerprint(article(BBC)), state, now) == Assignment("bbc-again")


def test_sweeping_everything_leaves_an_empty_state() -> None:
    state = JsonTable()
    for i, name in enumerate(list(fundus())[:40]):
        assign(name, fingerprint(article(name)), state, i * 1000.0)
    assert sweep(state, 40_000 + POLICY.window_seconds + POLICY.slot_seconds) == 40
    assert dict(state) == {}


def test_lsh_buckets_stay_bounded_under_a_story_copied_many_times() -> None:
    policy = StoryPolicy(bucket_cap=4)
    state = JsonTable()
    lead = article(BBC)
    for i in range(10):
        got = assign(
            f"copy{i}",
            fingerprint([*lead, f"Syndicated by site {i}."], policy),
            state,
            float(i),
            policy,
        )
        assert got.cluster_id == "copy0"
    assert max(len(state[k]) for k in state if k.startswith("b:")) == 4


# -- fingerprints ---------------------------------------------------------------------------


@given(
    st.lists(
        st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8).filter(
            lambda w: w.upper().casefold() == w.casefold()
        ),
        min_size=1,
        max_size=20,
    ),
    st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u2003", " \n\n "]), min_size=1),
    st.randoms(use_true_random=False),
)
def test_text_hash_ignores_white_space_and_case(
    words: list[str], spaces: list[str], rng: Any
) -> None:
    """Upper-cased words, other white space, and a paragraph break anywhere between two
    words: the same text."""
    styled = [rng.choice(spaces) + (w.upper() if rng.random() < 0.5 else w) for w in words]
    cut = rng.randrange(len(styled) + 1)
    paragraphs = ["".join(styled[:cut]), "".join(styled[cut:]) + rng.choice(spaces)]
    assert text_hash(paragraphs) == text_hash([" ".join(words)])


def test_text_hash_sees_invisible_characters_as_nothing() -> None:
    assert text_hash(["Geschlechts\u00adeintrag\u200b"]) == text_hash(["Geschlechtseintrag"])
    assert text_hash(["Geschlechtseintrag"]) != text_hash(["Geschlechts eintrag"])


def test_fingerprint_is_the_same_in_another_process() -> None:
    """Signatures are stored for a week and compared with ones made after restarts and
    upgrades: no salted hash, no unpinned library default may leak in."""
    paragraphs = article(BBC)
    here = fingerprint(paragraphs)
    assert fingerprint(paragraphs) == here
    code = (
        "import json, sys; from processors.stories import fingerprint; "
        "fp = fingerprint(json.load(sys.stdin)); print(fp.text_hash, fp.signature.hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(paragraphs),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [here.text_hash, here.signature.hex()]


def test_fingerprint_of_a_fixed_text_is_pinned() -> None:
    """If this changes (a datasketch upgrade, a new tokeniser), stored signatures no longer
    compare with new ones: clear the stories table, or migrate, when deploying."""
    fp = fingerprint(["The quick brown fox jumps over the lazy dog near the river bank today."])
    assert fp.shingles == 10
    assert fp.text_hash == "2d06d59ab97f0385ea913009f17bb3c7"
    assert hashlib.sha256(fp.signature).hexdigest()[:16] == "921ea55baa74d2d2"


def test_similarity_estimates_jaccard_and_refuses_other_policies() -> None:
    a = fingerprint(article(BBC))
    assert similarity(a.signature, a.signature) == 1.0
    assert similarity(a.signature, fingerprint(article(REUTERS)).signature) < 0.05
    with pytest.raises(ValueError, match="different policies"):
        similarity(a.signature, fingerprint(article(BBC), StoryPolicy(num_perm=64)).signature)


def test_lsh_shape_finds_a_pair_at_the_threshold_with_the_asked_recall() -> None:
    bands, rows = lsh_shape(128, 0.5, 0.99)
    assert (bands, rows) == (POLICY.bands, POLICY.rows) == (42, 3)
    assert 1 - (1 - 0.5**rows) ** bands >= 0.99
    assert 1 - (1 - 0.5 ** (rows + 1)) ** (128 // (rows + 1)) < 0.99  # one row more fails


@pytest.mark.parametrize(
    "bad", [{"threshold": 0}, {"lsh_recall": 1}, {"min_shingles": 0}, {"window_seconds": 0}]
)
def test_policy_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        StoryPolicy(**bad)


def test_state_values_are_plain_json() -> None:
    state: dict[str, Any] = {}
    assign("a", fingerprint(article(BBC)), state, 0.0)
    assign("b", fingerprint(syndicated(article(BBC))), state, 1.0)
    assert json.loads(json.dumps(state)) == state


# -- within a site: alike in their own text ------------------------------------------------

TEMPLATE = [
    "The Harbour Gazette has covered the city and its port since 1911, with a newsroom on "
    "the quay and correspondents in every district of the city.",
    "Subscribe to the Harbour Gazette for the morning briefing, delivered before seven, "
    "with the tides, the ferries and the agenda of the city council.",
    "Comments are moderated and may take an hour to appear under an article; read our "
    "community guidelines before you post a comment here.",
]
BRIEF_A = (
    "The ferry to Lindholm will leave at quarter past six from April, the operator said, "
    "after commuters complained that the first crossing missed the early trains."
)
BRIEF_B = (
    "Dredging of the inner basin starts in May and will close berths four to seven for "
    "three weeks, the port authority told fishermen at a meeting on Friday."
)


def test_two_briefs_under_one_template_are_alike_but_not_one_story_of_their_site() -> None:
    a, b = fingerprint([BRIEF_A, *TEMPLATE]), fingerprint([BRIEF_B, *TEMPLATE])
    assert similarity(a.signature, b.signature) >= POLICY.threshold  # the template's doing
    state = JsonTable()
    assign("a", a, state, 0.0, site="gazette.example")
    assert assign("b", b, state, 60.0, site="gazette.example") == Assignment("b")
    # the same texts on two sites: shared paragraphs across sites are wire copies
    state = JsonTable()
    assign("a", a, state, 0.0, site="gazette.example")
    assert assign("b", b, state, 60.0, site="other.example").kind == "near"


def test_an_article_that_only_adds_or_only_drops_text_stays_in_its_story() -> None:
    state = JsonTable()
    assign("a", fingerprint([BRIEF_A, *TEMPLATE]), state, 0.0, site="s")
    longer = assign("b", fingerprint([BRIEF_A, BRIEF_B, *TEMPLATE]), state, 60.0, site="s")
    assert (longer.cluster_id, longer.kind) == ("a", "near")
    shorter = assign("c", fingerprint([BRIEF_A, *TEMPLATE[:2]]), state, 120.0, site="s")
    assert (shorter.cluster_id, shorter.kind) == ("a", "near")


def test_entries_recorded_before_paragraph_keys_were_kept_are_not_checked() -> None:
    state = JsonTable()
    assign("a", fingerprint([BRIEF_A, *TEMPLATE]), state, 0.0, site="s")
    entry = state["a:a"]
    assert entry["w"] == "s" and entry["n"] > 0 and len(entry["p"]) == 1 + len(TEMPLATE)
    del entry["p"]
    state["a:a"] = entry
    assert assign("b", fingerprint([BRIEF_B, *TEMPLATE]), state, 60.0, site="s").kind == "near"
