"""Text of a site that is not the article's: boilerplate that recurs across the site's
pages, teasers of its other articles; and the form in which paragraphs are compared.

``strip_boilerplate`` / ``observe`` remove paragraphs that recur on several distinct
recent stories of the same site (newsletter pitches, "More from..." blocks, comment
widgets). Their state is explicit: a ``MutableMapping`` that is a Faust table in
production and a plain dict in tests, never a module global.

``strip_teasers`` / ``observe_headlines`` remove the headlines of the site's other recent
stories that a page prints in a "More from" or "Read next" block, with the lines of that
story (its standfirst, its caption) that follow each headline.

``dedup`` runs them in the order an agent needs, on paragraphs already rid of their
in-page repeats (processors.repeats). Thresholds come from ``bench/dedup_evidence.py``,
run on real pages from ``../shared/data``.

State layout (one table, keyed so that one partition can hold many sites)::

    "<site>\\x1f<paragraph_key>" -> {"<story_id>": [<first seen>, <last seen>], ...}
    "<site>\\x1fh\\x1f<paragraph_key>" -> the same, for a story's headline and standfirst

Times are the pages' event times (``fetched_at``), epoch seconds. A value written before
first sightings were kept, ``{"<story_id>": <last seen>}``, reads as first = last = that
time, and is rewritten in the new form the next time its key changes. A value holds at
most ``max_refs`` story ids (which ones: ``_trim``). Values are replaced, never mutated in
place, so that a Faust table writes them to its changelog.

A page is judged only by the stories first seen strictly before its own time, so the
decision is the same when the page comes again (after a crash, or every page replayed):
sightings later than the page, its own included, never count. That holds within the
window (a replay of pages whose deciding stories have been swept decides afresh) and for
pages that arrived in the order of their times (a page older than one already judged,
arriving after it, counts for it on a replay).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KEY_SEPARATOR = "\x1f"

_WHITESPACE = re.compile(r"\s+")
# Invisible characters that sites insert inconsistently (soft hyphens, zero-width spaces
# and joiners, bidi marks, BOM): the same paragraph with and without them is the same.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def normalize(paragraph: str) -> str:
    """The form two paragraphs are compared in.

    NFKC folds compatibility forms (no-break spaces, full-width letters, ligatures) and
    casefold folds case, so a re-styled copy ("ADVERTISEMENT") matches. Punctuation,
    quotes, bullets and symbols are stripped only at the edges: a pull-quote in quotation
    marks matches the sentence in the body, but inner punctuation still distinguishes
    two different sentences.
    """
    text = _INVISIBLE.sub("", paragraph)
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _strip_edges(_WHITESPACE.sub(" ", text))


def _strip_edges(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_edge(char: str) -> bool:
    # P: punctuation and quotes, S: symbols (bullets, arrows, ©), Z: separators.
    return unicodedata.category(char)[0] in "PSZ"


def paragraph_key(paragraph: str) -> str:
    """A short stable hash of the normalised paragraph (16 hex digits).

    64 bits keep collisions negligible within one site's window of paragraphs, and the
    key is short enough for a table key.
    """
    return _digest(normalize(paragraph))


def _digest(norm: str) -> str:
    return hashlib.blake2b(norm.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True)
class BoilerplatePolicy:
    """When a paragraph counts as a site's boilerplate, and how long that is remembered.

    ``min_stories``: distinct other stories of the site a paragraph must have been seen on
    before it is stripped from a page: stories first seen strictly earlier than the page
    (a tie never counts, so two pages of the same time decide alike in either order) and
    last seen within the window of it (or later). Stories, not pages: a story republished
    under several URLs, or a live story updated ten times, is one story.
    ``window_seconds``: a story last seen longer ago than this no longer counts and is
    swept.
    ``max_refs``: story ids kept per paragraph: bounds a value's size. The
    ``min_stories + 1`` first seen are always among them (see ``_trim``), the most
    recently seen fill the rest.
    ``min_chars``: shorter paragraphs (normalised) are neither recorded nor stripped.
    On the real pages, lines under 20 characters that recur across a site's stories are
    datelines ("Ankara") and headings ("Vorteile") as often as labels ("Czytaj więcej");
    every recurring line of 20 or more was boilerplate.
    ``min_headline_words`` / ``min_headline_chars``: shorter headlines ("Weather",
    "Live") are not recorded: a subheading of that length can be another page's title.
    ``teaser_lines``: lines of a teased story taken after its headline (a standfirst and a
    caption): the story's page showed its own template and teasers as well, which must
    not be read as part of this teaser.

    Decisions in ``bench/dedup_evidence.py``: even ``min_stories=1`` strips no gold
    paragraph of the fundus pages once stories are story ids (page ids lose eight, a
    story crawled twice); 3 leaves a margin for background paragraphs that wire stories
    reuse and for a story that near-duplicate detection splits in two.
    """

    min_stories: int = 3
    window_seconds: float = 7 * 86400.0
    max_refs: int = 8
    min_chars: int = 20
    min_headline_words: int = 3
    min_headline_chars: int = 12
    teaser_lines: int = 2

    def __post_init__(self) -> None:
        if self.min_stories < 1:
            raise ValueError("min_stories must be at least 1: one story is never boilerplate")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if self.max_refs <= self.min_stories:
            # the page's own story may be among the refs and does not count
            raise ValueError("max_refs must exceed min_stories")


DEFAULT_POLICY = BoilerplatePolicy()


def site_key(site: str, paragraph: str) -> str:
    """The state key of a paragraph on a site: one partition holds many sites."""
    return f"{site}{KEY_SEPARATOR}{paragraph_key(paragraph)}"


def _state_keys(site: str, paragraphs: Iterable[str], min_chars: int) -> list[str | None]:
    """Each paragraph's state key, or None for one too short to be judged."""
    norms = (normalize(p) for p in paragraphs)
    return [f"{site}{KEY_SEPARATOR}{_digest(n)}" if len(n) >= min_chars else None for n in norms]


def strip_boilerplate(
    site: str,
    story_id: str,
    paragraphs: Sequence[str],
    state: Mapping[str, Any],
    now: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
    teased_by: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """Split the paragraphs into (kept, removed as boilerplate); reads the state only.

    ``now`` is the page's own time. Only other stories first seen strictly before it
    count, so the answer is the same before and after this page was observed, and after
    any later page was (redelivery, a replay of every page); a story seen under many URLs
    cannot strip its own text. ``teased_by`` are the stories that printed this story's
    headline before it was seen (``teasing``): they printed its standfirst and caption in
    teasers that went unrecognised. A paragraph seen on those stories alone is kept, as
    this story's own line; a template line is seen on others too (or, where every story
    before this one teased it, stays until the re-cleaning that later pages ask for).
    """
    keys = _state_keys(site, paragraphs, policy.min_chars)
    kept: list[str] = []
    removed: list[str] = []
    for paragraph, key in zip(paragraphs, keys, strict=True):
        refs = _live_refs(state.get(key), now, policy) if key else {}
        earlier = _earlier(refs, story_id, now)
        own_teaser = bool(earlier) and set(earlier) <= set(teased_by)
        if len(earlier) >= policy.min_stories and not own_teaser:
            removed.append(paragraph)
        else:
            kept.append(paragraph)
    return kept, removed


def _earlier(refs: Mapping[str, list[float]], story_id: str, now: float) -> list[str]:
    """The stories other than ``story_id`` first seen strictly before ``now``, oldest first."""
    found = sorted((first, s) for s, (first, _) in refs.items() if first < now and s != story_id)
    return [story for _, story in found]


def observe(
    site: str,
    story_id: str,
    paragraphs: Iterable[str],
    state: MutableMapping[str, Any],
    now: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
) -> None:
    """Record that this story of the site shows these paragraphs at time ``now``: its
    first sighting becomes the earlier of the recorded one and ``now``, its last the later.

    Idempotent: observing the same page again (at-least-once delivery) leaves the state
    as it was, and writes nothing, so a replay adds no changelog traffic.
    """
    keys = {key for key in _state_keys(site, paragraphs, policy.min_chars) if key}
    _record(keys, story_id, state, now, policy)


def sweep(
    state: MutableMapping[str, Any], now: float, policy: BoilerplatePolicy = DEFAULT_POLICY
) -> int:
    """Drop the stories last seen longer than the window before ``now``, and keys left
    without any; returns how many keys were deleted. Run it periodically (a Faust timer):
    ``observe`` only prunes the keys it touches, and a paragraph never seen again would
    otherwise stay forever."""
    changed = [
        (key, live)
        for key, value in state.items()
        if (live := _live_refs(value, now, policy)) != value
    ]
    for key, live in changed:
        if live:
            state[key] = live
        else:
            del state[key]
    return sum(1 for _, live in changed if not live)


def _live_refs(value: Any, now: float, policy: BoilerplatePolicy) -> dict[str, list[float]]:
    """The stories of a state value last seen within the window before ``now``, or later
    than ``now`` (a new dict, sorted by story id, of new ``[first, last]`` lists).

    A bare number is a value of the older layout (the last sighting only) and reads as
    first = last. Anything else malformed counts as unseen rather than failing the page:
    it can only make the paragraph look less common.
    """
    if not isinstance(value, dict):
        return {}
    live: dict[str, list[float]] = {}
    for story, seen in sorted(value.items(), key=lambda item: str(item[0])):
        span = _span(seen)
        if isinstance(story, str) and span and now - span[1] <= policy.window_seconds:
            live[story] = span
    return live


def _span(seen: Any) -> list[float] | None:
    """``[first, last]`` of a story's entry in either layout, or None if malformed."""
    if isinstance(seen, int | float) and not isinstance(seen, bool):
        return [float(seen), float(seen)]
    if (
        isinstance(seen, list | tuple)
        and len(seen) == 2
        and all(isinstance(t, int | float) and not isinstance(t, bool) for t in seen)
        and seen[0] <= seen[1]
    ):
        return [float(seen[0]), float(seen[1])]
    return None


def _trim(refs: dict[str, list[float]], policy: BoilerplatePolicy) -> dict[str, list[float]]:
    """At most ``max_refs`` stories: the ``min_stories + 1`` first seen, then the most
    recently seen (ties broken by story id, so every replica keeps the same ones).

    The first seen are kept so that a replay decides as the first run did. A page that was
    stripped had at least ``min_stories`` other stories first seen before it; of the
    ``min_stories + 1`` first seen of the key, at least ``min_stories`` are then other
    stories first seen before it as well (one of them may be its own story), so it is
    stripped again however many stories have reused the paragraph since. Keeping only the
    most recent would drop exactly the stories that decided. A page that was kept stays
    kept: a story dropped here and seen again comes back with its new first sighting,
    later than the pages it could have counted for. The most recently seen fill the rest,
    so that a paragraph still in use keeps live stories once the first ones have left the
    window.
    """
    if len(refs) <= policy.max_refs:
        return refs
    earliest = sorted(refs, key=lambda story: (refs[story][0], story))[: policy.min_stories + 1]
    others = sorted(refs.keys() - set(earliest), key=lambda story: (refs[story][1], story))
    recent = others[::-1][: policy.max_refs - len(earliest)]
    return {story: refs[story] for story in sorted([*earliest, *recent])}


HEADLINE_MARK = "h"


def _headline_key(site: str, text: str | None, policy: BoilerplatePolicy) -> str | None:
    if not text:
        return None
    norm = normalize(text)
    if len(norm) < policy.min_headline_chars or len(norm.split()) < policy.min_headline_words:
        return None
    return f"{site}{KEY_SEPARATOR}{HEADLINE_MARK}{KEY_SEPARATOR}{_digest(norm)}"


def observe_headlines(
    site: str,
    story_id: str,
    headlines: Iterable[str | None],
    state: MutableMapping[str, Any],
    now: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
) -> None:
    """Record a story's headline and standfirst (its title and description), for
    ``strip_teasers`` on the site's other pages. Idempotent, as ``observe``."""
    keys = {key for text in headlines if (key := _headline_key(site, text, policy))}
    _record(keys, story_id, state, now, policy)


def strip_teasers(
    site: str,
    story_id: str,
    paragraphs: Sequence[str],
    state: Mapping[str, Any],
    now: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
) -> tuple[list[str], list[str]]:
    """Split the paragraphs into (kept, teasers of the site's other stories).

    A teaser is a paragraph equal to the headline or standfirst of another story of the
    site, and up to ``policy.teaser_lines`` paragraphs right after it that were seen on
    that story's pages: a "More from" block gives headline, standfirst and caption of each
    article it shows.
    As in ``strip_boilerplate``, only stories first seen strictly before ``now`` count,
    so the answer is the same on a replay.
    """
    keep = [True] * len(paragraphs)
    keys = _state_keys(site, paragraphs, policy.min_chars)
    i = 0
    while i < len(paragraphs):
        teased = _others(state, _headline_key(site, paragraphs[i], policy), story_id, now, policy)
        if not teased:
            i += 1
            continue
        keep[i] = False
        i += 1
        end = min(len(paragraphs), i + policy.teaser_lines)
        while i < end and keys[i]:
            if _others(state, _headline_key(site, paragraphs[i], policy), story_id, now, policy):
                break  # the next teaser's headline
            if not teased & _others(state, keys[i], story_id, now, policy):
                break
            keep[i] = False
            i += 1
    kept = [p for p, k in zip(paragraphs, keep, strict=True) if k]
    teasers = [p for p, k in zip(paragraphs, keep, strict=True) if not k]
    return kept, teasers


def _others(
    state: Mapping[str, Any], key: str | None, story_id: str, now: float, policy: BoilerplatePolicy
) -> set[str]:
    """The stories other than ``story_id`` first seen strictly before ``now`` with ``key``."""
    if key is None:
        return set()
    refs = _live_refs(state.get(key), now, policy)
    return {story for story, (first, _) in refs.items() if first < now and story != story_id}


def _record(
    keys: Iterable[str],
    story_id: str,
    state: MutableMapping[str, Any],
    now: float,
    policy: BoilerplatePolicy,
) -> None:
    for key in sorted(keys):  # sorted: the same writes in the same order on a replay
        old = state.get(key)
        refs = _live_refs(old, now, policy)
        first, last = refs.get(story_id, (now, now))
        refs[story_id] = [float(min(first, now)), float(max(last, now))]
        refs = _trim(refs, policy)
        if refs != old:
            state[key] = refs  # re-assigned, never mutated: a Faust table persists it


def newly_boilerplate(
    site: str,
    story_id: str,
    stripped: Sequence[str],
    state: Mapping[str, Any],
    now: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
    teased_by: Collection[str] = (),
) -> dict[str, list[str]]:
    """Of the paragraphs this page strips as boilerplate, those it may be among the first
    to strip, each with the earlier stories that may have kept it (oldest first).

    The first page to strip a paragraph has ``min_stories`` stories before it, or up to
    ``len(teased_by)`` more where stories that teased it did not count; each page in that
    range asks. "First" is read off the state, not remembered, so the answer is the same
    on a replay; a request made twice is taken twice without harm. All the earlier
    stories the state holds are named: those that stripped it already are left as they
    are by the re-cleaning.
    """
    keys = _state_keys(site, stripped, policy.min_chars)
    found: dict[str, list[str]] = {}
    for paragraph, key in zip(stripped, keys, strict=True):
        if key is None:
            continue
        earlier = _earlier(_live_refs(state.get(key), now, policy), story_id, now)
        if policy.min_stories <= len(earlier) <= policy.min_stories + len(teased_by):
            found[paragraph] = earlier
    return found


def teasing(
    site: str,
    story_id: str,
    headlines: Iterable[str | None],
    state: Mapping[str, Any],
    now: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
) -> list[str]:
    """The other stories, first seen before ``now``, that printed one of this story's
    headlines (title, standfirst) as a paragraph of their own: teasers of it that went
    unrecognised, because this story had not been seen yet. Oldest first."""
    keys = [k for k in _state_keys(site, [h for h in headlines if h], policy.min_chars) if k]
    firsts: dict[str, float] = {}
    for key in keys:
        for story, (first, _) in _live_refs(state.get(key), now, policy).items():
            if first < now and story != story_id:
                firsts[story] = min(first, firsts.get(story, first))
    return [story for _, story in sorted((t, s) for s, t in firsts.items())]


def first_sighting(
    site: str,
    story_id: str,
    headline: str | None,
    state: Mapping[str, Any],
    now: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
) -> bool:
    """Whether no page of this story with this headline was seen before ``now``."""
    key = _headline_key(site, headline, policy)
    if key is None:
        return False
    own = _live_refs(state.get(key), now, policy).get(story_id)
    return own is None or own[0] >= now


@dataclass(frozen=True)
class Deduped:
    """A page's paragraphs without teasers and the site's boilerplate, and what went."""

    paragraphs: list[str]
    boilerplate: list[str]
    teasers: list[str] = field(default_factory=list)
    teased_by: list[str] = field(default_factory=list)  # see ``teasing``


def dedup(
    site: str,
    story_id: str,
    paragraphs: Sequence[str],
    state: MutableMapping[str, Any],
    now: float,
    policy: BoilerplatePolicy = DEFAULT_POLICY,
    *,
    headlines: Iterable[str | None] = (),
    also_seen: Iterable[str] = (),
) -> Deduped:
    """Strip teasers of the site's other stories and the site's boilerplate, then record
    the page.

    ``paragraphs`` should be without in-page repeats (processors.repeats). Every paragraph
    but the teasers (another story's text) is observed, boilerplate included: a
    boilerplate paragraph keeps being seen, so it stays boilerplate instead of expiring
    and coming back after the window. ``also_seen`` are observed too: the forms in-page
    dedup removed (a caption without its credit) are this story's text, which another
    page's teaser block may print. ``headlines`` (title, standfirst) are recorded for
    ``strip_teasers``; the stories that printed them before (``teasing``) do not count
    towards this page's boilerplate. ``now`` should be the page's event time
    (``fetched_at``), so that a replay of old pages decides as the first run did.
    """
    headlines = list(headlines)
    own, teasers = strip_teasers(site, story_id, paragraphs, state, now, policy)
    teased_by = teasing(site, story_id, headlines, state, now, policy)
    kept, removed = strip_boilerplate(site, story_id, own, state, now, policy, teased_by)
    observe(site, story_id, [*own, *also_seen], state, now, policy)
    observe_headlines(site, story_id, headlines, state, now, policy)
    return Deduped(kept, removed, teasers, teased_by)
