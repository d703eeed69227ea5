"""Repeats within one page: the same paragraph printed twice, a short heading printed at
each place a widget appears, and a paragraph printed again in a fuller or slightly edited
form (a caption with and without its photographer's credit, a lead repeated with a word
changed).

Pure functions over the paragraphs extraction yields and, where extraction knows it, the
kind of each (``Kind``): trafilatura tells headings and paragraphs from list items and
table cells, where repetition is the content ("Yes", "| Fill | Synthetic |"); a page
flattened to plain text tells nothing, so its lines are "line".

The first occurrence of an exact or short repeat stays where it was; of near repeats the
fuller form stays, where it was. Thresholds are set in ``RepeatPolicy`` from
``bench/clean_rules.py``, which runs the pipeline's own extraction on the real pages of
``../shared/data`` and counts what each rule removes and what it costs in gold text.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from processors.paragraphs import normalize

Kind = Literal["text", "item", "cell", "line", "other"]
# Kinds whose short repeats and near repeats may go: headings and paragraphs of an HTML
# page, lines of a plain-text page. List items, table rows and anything extraction could
# not place keep every copy.
PROSE: frozenset[str] = frozenset({"text", "line"})

_TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class RepeatPolicy:
    """When a paragraph repeats another one of its page.

    ``min_chars``: from this many characters (normalised) an exact repeat of any kind
    goes. Below it, list items, table rows, spec lines, lyrics and answers ("Yes.",
    "Fill: Synthetic") repeat as content; on the news pages each repeat of 50 or more is
    a consent notice, an ad, a disclaimer, a related-article link or a second copy of a
    standfirst or summary bullet.
    ``short_min_chars`` / ``short_min_words``: a shorter exact repeat goes only if it is
    prose (``PROSE``) and at least this long, so that "Yes." and "Ankara" stay.
    ``short_apart``: in plain text (kind "line"), a short repeat goes only when at least
    this many paragraphs lie between it and the previous copy: a widget heading repeated
    at each place the widget appears, not a run of equal answers or a chorus sung twice.
    ``near_min_words``: a near repeat needs at least this many words; shorter lines are
    headings, labels and datelines that sentences naturally contain.
    ``near_containment``: the share of a paragraph's word pairs that another, at least as
    long, must contain for the shorter one to be its near repeat.
    ``near_max_ratio``: the fuller form may be at most this many times as long. A caption
    with its credit, a lead with a clause added are longer by a part; a paragraph that
    holds several others whole (a summary blob of a page's seven city paragraphs) is
    another text, and the shorter ones stay.
    """

    min_chars: int = 50
    short_min_chars: int = 12
    short_min_words: int = 2
    short_apart: int = 1
    near_min_words: int = 6
    near_containment: float = 0.95
    near_max_ratio: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.near_containment <= 1:
            raise ValueError("near_containment must be in (0, 1]")
        if self.near_max_ratio < 1:
            raise ValueError("near_max_ratio must be at least 1: the fuller form is the longer")
        if self.near_min_words < 2:
            raise ValueError("near_min_words must be at least 2: word pairs are compared")


DEFAULT_POLICY = RepeatPolicy()


@dataclass(frozen=True)
class InPage:
    """A page's paragraphs without their repeats, with what each rule removed."""

    paragraphs: list[str]
    kinds: list[Kind]
    title: list[str] = field(default_factory=list)
    exact: list[str] = field(default_factory=list)
    short: list[str] = field(default_factory=list)
    near: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return len(self.title) + len(self.exact) + len(self.short) + len(self.near)


def dedup_in_page(
    paragraphs: Sequence[str],
    kinds: Sequence[Kind] | None = None,
    policy: RepeatPolicy = DEFAULT_POLICY,
    title: str | None = None,
) -> InPage:
    """The paragraphs with the title's copy, exact, short and near repeats removed.

    ``kinds`` gives each paragraph's kind; without it every paragraph is "other", which
    keeps the exact-repeat rule alone (what a caller that knows nothing of the page gets).
    ``title``: the article's title. A first paragraph that is the title printed as the
    headline of the text goes: the article has it as its title, and in the text it runs
    into the standfirst ("...new shift rules Container traffic at...") in every snippet.
    """
    if kinds is None:
        kinds = ["other"] * len(paragraphs)
    if len(kinds) != len(paragraphs):
        raise ValueError("one kind per paragraph")
    keep = [True] * len(paragraphs)
    norms = [normalize(p) for p in paragraphs]
    headline = []
    if title and norms and kinds[0] in PROSE and norms[0] == normalize(title):
        keep[0] = False
        headline = [0]
    exact, short = _exact_and_short(norms, kinds, keep, policy)
    near = _near(norms, kinds, keep, policy)
    kept = [i for i, k in enumerate(keep) if k]
    return InPage(
        paragraphs=[paragraphs[i] for i in kept],
        kinds=[kinds[i] for i in kept],
        title=[paragraphs[i] for i in headline],
        exact=[paragraphs[i] for i in exact],
        short=[paragraphs[i] for i in short],
        near=[paragraphs[i] for i in near],
    )


def _exact_and_short(
    norms: list[str], kinds: Sequence[Kind], keep: list[bool], policy: RepeatPolicy
) -> tuple[list[int], list[int]]:
    # The last copy kept of each text: distances are measured from what stays, so that
    # running the rules again on their output removes nothing more.
    last_kept: dict[str, int] = {}
    exact: list[int] = []
    short: list[int] = []
    for i, (norm, kind) in enumerate(zip(norms, kinds, strict=True)):
        previous = last_kept.get(norm)
        if previous is not None and norm:
            if len(norm) >= policy.min_chars:
                exact.append(i)
                keep[i] = False
            elif _short_repeat(norm, kind, i - previous, policy):
                short.append(i)
                keep[i] = False
        if keep[i] or previous is None:  # the title's copy counts as a first copy too
            last_kept[norm] = i
    return exact, short


def _short_repeat(norm: str, kind: Kind, distance: int, policy: RepeatPolicy) -> bool:
    if kind not in PROSE or len(norm) < policy.short_min_chars:
        return False
    if len(_TOKEN.findall(norm)) < policy.short_min_words:
        return False
    return kind != "line" or distance - 1 >= policy.short_apart


def _near(
    norms: list[str], kinds: Sequence[Kind], keep: list[bool], policy: RepeatPolicy
) -> list[int]:
    """Indices of paragraphs that another kept paragraph of the page contains almost
    entirely, word pair by word pair, and that it outranks (``_outranks``)."""
    pairs: dict[int, set[tuple[str, str]]] = {}
    for i, (norm, kind) in enumerate(zip(norms, kinds, strict=True)):
        if keep[i] and kind in PROSE:
            words = _TOKEN.findall(norm)
            if len(words) >= policy.near_min_words:
                pairs[i] = set(itertools.pairwise(words))
    postings: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, grams in pairs.items():
        for gram in grams:
            postings[gram].append(i)
    near: list[int] = []
    # Longest first: a chain (short caption, caption, credited caption) keeps the fullest.
    for i in sorted(pairs, key=lambda i: (-len(norms[i]), i)):
        shared: Counter[int] = Counter()
        for gram in pairs[i]:
            shared.update(j for j in postings[gram] if j != i and keep[j])
        if any(
            _outranks(j, i, count, norms, pairs, policy)
            for j, count in shared.items()
            # an identical copy is the exact and short rules' to judge, not this one's
            if norms[j] != norms[i]
        ):
            keep[i] = False
            near.append(i)
    return sorted(near)


def _outranks(
    j: int,
    i: int,
    shared: int,
    norms: list[str],
    pairs: dict[int, set[tuple[str, str]]],
    policy: RepeatPolicy,
) -> bool:
    """Whether paragraph j, sharing ``shared`` word pairs with paragraph i, makes i a near
    repeat. j must contain i. If i contains j as well, the two are one paragraph in two
    spellings (a comma, a changed word) and the first stays: later copies are the
    template's (a pull-quote, a repeated summary). Otherwise j is the fuller form (a credit
    or a clause added) and stays, if at most ``near_max_ratio`` times as long."""
    if shared < policy.near_containment * len(pairs[i]):
        return False
    if shared >= policy.near_containment * len(pairs[j]):
        return j < i
    return len(norms[j]) <= policy.near_max_ratio * len(norms[i])
