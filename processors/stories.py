"""Story clusters of whole articles: exact and near-duplicates, across all sites.

Two pure steps over an article's cleaned paragraphs:

* ``fingerprint`` hashes the normalised text (exact duplicates) and computes a MinHash
  signature of its word 5-shingles (near-duplicates). It needs no state, so it can run
  in any partitioned stage.
* ``assign`` looks the fingerprint up in the state of the single-partition "stories"
  stage (clustering is global: a syndicated story appears on many sites), records the
  article and answers which cluster it joins and what it duplicates. ``sweep`` forgets
  articles older than the window.

The state is a ``MutableMapping`` (a Faust table without a default in production, a dict
in tests) with JSON values that are re-assigned, never mutated in place::

    "a:<article_id>"        -> {"h": text_hash, "c": cluster_id, "d": duplicate_of,
                                "k": kind, "j": similarity, "t": seen at (epoch s),
                                "s": base64 signature (only if near-dup indexed),
                                "n": shingle count, "p": [paragraph key, ...],
                                "w": site (the last three with the signature)}
    "h:<text_hash>"         -> article_id of the first article with this text
    "b:<band>:<band_hash>"  -> [article_id, ...] (oldest first, at most bucket_cap)
    "t:<slot>:<chunk>"      -> [article_id, ...] recorded in that time slot (for sweep)
    "slots"                 -> {"<slot>": <current chunk>, ...} the slots not yet swept

Two articles of one site are compared on what is their own. A site prints the same
template around every article (a caption widget, a comment box, a bio, a "more from"
block) and, until the boilerplate filter has learnt it, that template can be most of a
short article's text: two different articles would then look alike. So a near match of
the same site is verified (``_own_text_alike``): the paragraphs the two share exactly are
set aside, and what the new article has of its own must be found in the other one too.
An update of a live story keeps its article id and its answer; a story republished under a
second URL is an exact copy or adds nothing of its own; a wire copy edited on the way
keeps its edited paragraphs near the original's; different articles under one template
have own text that the other does not contain. Across sites shared paragraphs are the
point (wire copies), so the check is not made there.

LSH banding is done here over the stored signatures because datasketch's ``MinHashLSH``
keeps its index in memory or Redis, which cannot live in a Faust table.

Thresholds and parameters come from ``bench/stories_bench.py`` on real articles from
``../shared/data``; its numbers are quoted where a default is set.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
from datasketch import MinHash  # type: ignore[import-untyped]  # no stubs, no py.typed

Kind = Literal["exact", "near"]

# Pinned, not left to the library default: stored signatures are only comparable with
# signatures made by the same scheme, seed and hash function (datasketch 2.0 changed its
# default scheme). affine32 also stores 32-bit values, half the size of "legacy".
MINHASH_SCHEME = "affine32"

# Ids per "t:" value: bounds what one write rewrites, whatever the article rate.
SLOT_CHUNK = 64

_WHITESPACE = re.compile(r"\s+")
# Invisible characters sites insert inconsistently (soft hyphens, zero-width spaces and
# joiners, bidi marks, BOM); the same set as processors.paragraphs. Real case: the two
# versions of a taz article in the fundus data differ by a zero-width space.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# A token is a run of letters and digits, except in scripts written without spaces
# (Chinese, Japanese kana, Thai, Lao, Myanmar, Khmer), where \w+ would turn a whole
# clause into one "word": there every character is a token.
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
)
_TOKEN = re.compile(f"[{_UNSPACED}]|[^\\W_{_UNSPACED}]+")


@dataclass(frozen=True)
class StoryPolicy:
    """How articles are compared and how long they are remembered.

    Numbers from bench/stories_bench.py: 33k pairs of fundus gold bodies and 487k pairs
    of trafilatura-eval extractions, known same-story pairs left out ("unrelated"), and
    copies of each fundus article edited as syndication does ("light": headline, byline,
    footer; "medium": and a paragraph dropped, one added, 1% of words changed; "heavy":
    two dropped, two added, 3%).

    ``shingle_size``: tokens per shingle. With 5, unrelated pairs reach an exact Jaccard
    of 0.044 / 0.052 at most (3: 0.080 / 0.057); a changed word costs at most 5 shingles.
    ``threshold``: estimated Jaccard at or above which an article is a near-duplicate.
    A wrong merge hides an article from search, a missed one only shows a copy, so it
    sits 9x above the highest unrelated estimate (0.055). At 0.5 two equal-length texts
    share 2/3 of their shingles. It keeps 100% of light, 96.5% of medium and 74% of heavy
    copies; real rewrites that add material of their own (a reworded press release at
    0.45, two outlets' versions of one EFE wire at 0.40) stay separate stories.
    ``min_shingles``: shorter texts join no cluster, not even an exact one: below 30
    are stubs and captions ("Dein wichtigster Touchpoint zur Digitalbranche." twice,
    a photo credit), identical across different articles of a site. No fundus body and
    3 of 990 trafilatura-eval texts are that short.
    ``lsh_recall``: the chance that a pair exactly at the threshold becomes a candidate;
    sets the banding (see ``lsh_shape``). Pairs above it are found more surely.
    ``bucket_cap``: article ids kept per LSH bucket (the newest), bounding value size.
    ``slot_seconds``: granularity of sweeping; an article may outlive the window by that.
    ``own_min_shingles``: own text (not in a paragraph the two articles share exactly) of
    fewer shingles than this is nothing of its own: a changed date line or byline.
    ``own_containment``: the least estimated share of an article's own shingles that the
    other article must contain for a same-site near match to stand. Disjoint texts share
    no MinHash position (32-bit values: a chance equality is negligible), so any share
    above this is evidence of shared text; it sits low because the estimate is noisy when
    the own text is small beside the other article. The cost, in bench/stories_bench.py:
    same-site copies that swap a paragraph for one of another article ("medium") join
    their original 216 times of 258 (249 across sites): a dropped paragraph and an added
    one are the very shape of two articles under one template. Such a copy then shows in
    search as an article of its own, the error this policy prefers. A floor of 20 or 30
    shingles would join 227 or 240, and merge briefs of one sentence under a template.
    ``max_paragraph_keys``: paragraph keys kept per article for that comparison.
    """

    num_perm: int = 128
    shingle_size: int = 5
    threshold: float = 0.5
    min_shingles: int = 30
    lsh_recall: float = 0.99
    window_seconds: float = 7 * 86400.0
    bucket_cap: int = 32
    slot_seconds: float = 3600.0
    seed: int = 1
    own_min_shingles: int = 10
    own_containment: float = 0.1
    max_paragraph_keys: int = 512

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if not 0 < self.lsh_recall < 1:
            raise ValueError("lsh_recall must be in (0, 1)")
        if min(self.num_perm, self.shingle_size, self.bucket_cap) < 1:
            raise ValueError("num_perm, shingle_size and bucket_cap must be positive")
        if self.min_shingles < 1:
            # two empty texts have equal (all-maximum) signatures: they must never match
            raise ValueError("min_shingles must be at least 1")
        if self.window_seconds <= 0 or self.slot_seconds <= 0:
            raise ValueError("window_seconds and slot_seconds must be positive")

    @property
    def bands(self) -> int:
        return lsh_shape(self.num_perm, self.threshold, self.lsh_recall)[0]

    @property
    def rows(self) -> int:
        return lsh_shape(self.num_perm, self.threshold, self.lsh_recall)[1]


DEFAULT_POLICY = StoryPolicy()


@cache
def lsh_shape(num_perm: int, threshold: float, recall: float) -> tuple[int, int]:
    """(bands, rows) of the LSH index: the fewest bands (the most rows per band) such
    that a pair of Jaccard ``threshold`` shares a band with probability >= ``recall``.

    Fewest bands because each band costs a state key per article and a lookup per
    assign; candidates are verified on the whole signature, so more chance candidates
    cost time, never correctness. datasketch's own helper for this is private.
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


@dataclass(frozen=True)
class Fingerprint:
    """What ``assign`` needs of an article's text.

    ``signature``: the MinHash values as little-endian uint32 bytes (4 * num_perm).
    ``shingles``: how many distinct shingles the text has (0 for an empty text).
    ``paragraph_keys``: a short hash of each normalised paragraph, in order.
    """

    text_hash: str
    signature: bytes
    shingles: int
    paragraph_keys: tuple[str, ...] = ()
    paragraphs: tuple[str, ...] = ()  # normalised, for the own-text check; never stored


@dataclass(frozen=True)
class Assignment:
    """The story cluster an article joins, and what it duplicates if anything.

    ``cluster_id`` is the article_id of the story's first article (its own if new).
    ``duplicate_of`` is the article matched: for "exact", the first one with the same
    text; for "near", the most similar recent article. ``similarity`` is the estimated
    Jaccard of that match (1.0 for "exact").
    """

    cluster_id: str
    duplicate_of: str | None = None
    kind: Kind | None = None
    similarity: float | None = None


def normalise(text: str) -> str:
    """The form texts are compared in: invisible characters removed, NFKC, casefolded,
    white space collapsed. NFKC runs again after casefold, which can produce
    compatibility characters."""
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _WHITESPACE.sub(" ", text).strip()


def text_hash(paragraphs: Iterable[str]) -> str:
    """Hash of the normalised text (32 hex digits): equal hash, same text.

    Paragraph breaks count as white space, so re-paragraphing does not change it;
    punctuation does, so an exact duplicate's character offsets match its original's.
    """
    return _hash_text(normalise("\n".join(paragraphs)))


def _hash_text(normalised: str) -> str:
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=16).hexdigest()


def shingles(normalised: str, size: int) -> set[bytes]:
    """The distinct runs of ``size`` consecutive tokens (a shorter text has none)."""
    tokens = _TOKEN.findall(normalised)
    return {" ".join(tokens[i : i + size]).encode("utf-8") for i in range(len(tokens) - size + 1)}


def fingerprint(paragraphs: Sequence[str], policy: StoryPolicy = DEFAULT_POLICY) -> Fingerprint:
    """The text hash and MinHash signature of an article's paragraphs.

    Deterministic across processes and restarts: the scheme, seed and the hash of a
    shingle (datasketch's SHA-1 based default, never Python's salted ``hash``) are fixed.
    """
    normalised = normalise("\n".join(paragraphs))
    grams = shingles(normalised, policy.shingle_size)
    parts = tuple(normalise(p) for p in paragraphs)
    keys = tuple(_paragraph_key(p) for p in parts)
    return Fingerprint(_hash_text(normalised), _signature(grams, policy), len(grams), keys, parts)


def _signature(grams: Iterable[bytes], policy: StoryPolicy) -> bytes:
    minhash = MinHash(num_perm=policy.num_perm, seed=policy.seed, scheme=MINHASH_SCHEME)
    minhash.update_batch(list(grams))
    return np.asarray(minhash.hashvalues, dtype="<u4").tobytes()


def _paragraph_key(normalised: str) -> str:
    # 48 bits: only ever compared between two articles' paragraphs
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=6).hexdigest()


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard of two signatures: the share of positions where they agree."""
    left, right = np.frombuffer(a, dtype="<u4"), np.frombuffer(b, dtype="<u4")
    if left.shape != right.shape:
        raise ValueError("signatures of different policies cannot be compared")
    return float(np.count_nonzero(left == right)) / left.size


def band_keys(signature: bytes, policy: StoryPolicy) -> list[str]:
    """The state keys of a signature's LSH buckets, one per band (64-bit band hashes:
    chance collisions between different bands stay negligible)."""
    width = 4 * policy.rows
    keys = []
    for band in range(policy.bands):
        chunk = signature[band * width : (band + 1) * width]
        keys.append(f"b:{band}:{hashlib.blake2b(chunk, digest_size=8).hexdigest()}")
    return keys


def assign(
    article_id: str,
    fp: Fingerprint,
    state: MutableMapping[str, Any],
    now: float,
    policy: StoryPolicy = DEFAULT_POLICY,
    site: str | None = None,
) -> Assignment:
    """Put the article into a story cluster and record it in the state.

    ``site`` is the article's site: a near match with an article of the same site must be
    alike in its own text too (see the module's docstring). Without it no check is made.

    ``now`` should be the article's event time (``fetched_at``), so a replay decides as
    the first run did. An article_id already recorded gets its recorded answer back
    (at-least-once delivery), whatever its text is now. Articles older than the window
    are never matched, whether or not ``sweep`` has removed them yet.
    """
    known = state.get(f"a:{article_id}")
    if isinstance(known, dict):
        return _assignment(known)
    if fp.shingles < policy.min_shingles:
        found = Assignment(article_id)
    else:
        found = (
            _exact(article_id, fp, state, now, policy)
            or _near(article_id, fp, state, now, policy, site)
            or Assignment(article_id)
        )
    _record(article_id, fp, found, state, now, policy, site)
    return found


def _exact(
    article_id: str, fp: Fingerprint, state: Mapping[str, Any], now: float, policy: StoryPolicy
) -> Assignment | None:
    original = state.get(f"h:{fp.text_hash}")
    if not isinstance(original, str) or original == article_id:
        return None
    entry = _live_entry(state, original, now, policy)
    if entry is None:
        return None
    return Assignment(entry["c"], original, "exact", 1.0)


def _near(
    article_id: str,
    fp: Fingerprint,
    state: Mapping[str, Any],
    now: float,
    policy: StoryPolicy,
    site: str | None = None,
) -> Assignment | None:
    """The best verified candidate from the LSH buckets: highest similarity, then the
    earliest seen, then the smallest id, so the answer does not depend on bucket order.
    A candidate of the same site whose likeness is only the paragraphs both share (a
    template) is no match."""
    candidates = {c for key in band_keys(fp.signature, policy) for c in state.get(key) or ()}
    matches: list[tuple[float, float, str, str]] = []
    for candidate in sorted(candidates - {article_id}):
        entry = _live_entry(state, candidate, now, policy)
        if entry is None or "s" not in entry:
            continue  # expired, or an exact copy (never indexed, but be lenient)
        theirs = base64.b64decode(entry["s"])
        score = similarity(fp.signature, theirs)
        if score < policy.threshold:
            continue
        same_site = site is not None and entry.get("w") == site
        if same_site and not _own_text_alike(fp, theirs, entry, policy):
            continue
        matches.append((score, -float(entry["t"]), candidate, entry["c"]))
    if not matches:
        return None
    # max() keeps the first of equals, and candidates were visited in id order
    score, _, original, cluster_id = max(matches, key=lambda m: (m[0], m[1]))
    return Assignment(cluster_id, original, "near", score)


def _own_text_alike(
    fp: Fingerprint, theirs: bytes, entry: Mapping[str, Any], policy: StoryPolicy
) -> bool:
    """Whether the new article's own text (its paragraphs that the other does not have
    exactly) is in the other article too, or is too little to tell two articles apart.

    The share of the own shingles that the other article contains is estimated from the
    MinHash similarity of the two sets and their sizes: |A & B| = J (|A| + |B|) / (1 + J).
    An entry recorded without paragraph keys (before they were kept) is not checked.
    """
    keys, their_count = entry.get("p"), entry.get("n")
    if not isinstance(keys, list) or not isinstance(their_count, int):
        return True
    shared = set(keys)
    own = [
        text
        for key, text in zip(fp.paragraph_keys, fp.paragraphs, strict=True)
        if key not in shared
    ]
    own_grams = shingles("\n".join(own), policy.shingle_size)
    if len(own_grams) < policy.own_min_shingles:
        return True  # the new one adds nothing of its own: a copy, or fewer paragraphs
    common = [
        text for key, text in zip(fp.paragraph_keys, fp.paragraphs, strict=True) if key in shared
    ]
    if (
        their_count - len(shingles("\n".join(common), policy.shingle_size))
        < policy.own_min_shingles
    ):
        return True  # the other adds nothing of its own: this one is it, grown
    jaccard = similarity(_signature(own_grams, policy), theirs)
    contained = jaccard * (len(own_grams) + their_count) / ((1 + jaccard) * len(own_grams))
    return contained >= policy.own_containment


def _live_entry(
    state: Mapping[str, Any], article_id: str, now: float, policy: StoryPolicy
) -> dict[str, Any] | None:
    entry = state.get(f"a:{article_id}")
    if not isinstance(entry, dict) or now - entry.get("t", -math.inf) > policy.window_seconds:
        return None
    return entry


def _record(
    article_id: str,
    fp: Fingerprint,
    found: Assignment,
    state: MutableMapping[str, Any],
    now: float,
    policy: StoryPolicy,
    site: str | None = None,
) -> None:
    """Write the article's keys; "a:" last, so a crash part-way makes a redelivery redo
    every write (each is idempotent) instead of returning a half-recorded answer.

    Only originals are indexed: an exact copy adds nothing its original does not match,
    and too-short texts must not be matched at all.
    """
    entry: dict[str, Any] = {
        "h": fp.text_hash,
        "c": found.cluster_id,
        "d": found.duplicate_of,
        "k": found.kind,
        "j": found.similarity,
        "t": now,
    }
    if found.kind != "exact" and fp.shingles >= policy.min_shingles:
        entry["s"] = base64.b64encode(fp.signature).decode("ascii")
        entry["n"] = fp.shingles
        entry["p"] = list(fp.paragraph_keys[: policy.max_paragraph_keys])
        if site is not None:
            entry["w"] = site
        holder = state.get(f"h:{fp.text_hash}")
        if not isinstance(holder, str) or _live_entry(state, holder, now, policy) is None:
            state[f"h:{fp.text_hash}"] = article_id
        for key in band_keys(fp.signature, policy):
            _append(state, key, article_id, policy.bucket_cap)
    _add_to_slot(state, article_id, now, policy)
    state[f"a:{article_id}"] = entry


def _append(state: MutableMapping[str, Any], key: str, article_id: str, cap: int) -> None:
    ids = list(state.get(key) or ())
    if article_id not in ids:
        # the oldest go first: a story's newest copies are the likeliest to be copied again
        state[key] = [*ids, article_id][-cap:]


def _add_to_slot(
    state: MutableMapping[str, Any], article_id: str, now: float, policy: StoryPolicy
) -> None:
    """Note the article in its time slot, for ``sweep``. A slot's ids are split into
    chunks of ``SLOT_CHUNK`` so a write never rewrites a long list; "slots" maps each
    slot to its current chunk. A redelivery may note an id twice: ``sweep`` forgets an
    article once and skips ids already gone."""
    slot = str(math.floor(now / policy.slot_seconds))
    slots: dict[str, int] = dict(state.get("slots") or {})
    chunk = slots.get(slot, 0)
    ids = list(state.get(f"t:{slot}:{chunk}") or ())
    if article_id not in ids:
        ids.append(article_id)
        state[f"t:{slot}:{chunk}"] = ids
    if slot not in slots or len(ids) >= SLOT_CHUNK:
        slots[slot] = chunk + (len(ids) >= SLOT_CHUNK)  # a full chunk: the next one starts
        state["slots"] = slots


def _assignment(entry: Mapping[str, Any]) -> Assignment:
    return Assignment(entry["c"], entry.get("d"), entry.get("k"), entry.get("j"))


def sweep(state: MutableMapping[str, Any], now: float, policy: StoryPolicy = DEFAULT_POLICY) -> int:
    """Forget articles noted in slots that lie wholly before the window; returns how
    many. Run it periodically (a Faust timer). Only expired slots are read, never the
    whole table. Safe to repeat after a crash part-way: each step is idempotent, and a
    slot leaves "slots" only after every article in it is gone."""
    horizon = now - policy.window_seconds
    slots: dict[str, int] = dict(state.get("slots") or {})
    expired = [s for s in slots if (int(s) + 1) * policy.slot_seconds <= horizon]
    removed = 0
    for slot in expired:
        for chunk in range(slots[slot] + 1):
            for article_id in state.get(f"t:{slot}:{chunk}") or ():
                removed += _forget(state, article_id, policy)
            state.pop(f"t:{slot}:{chunk}", None)
    if expired and len(expired) == len(slots):
        del state["slots"]  # an idle stage's state empties completely
    elif expired:
        state["slots"] = {s: c for s, c in slots.items() if s not in expired}
    return removed


def _forget(state: MutableMapping[str, Any], article_id: str, policy: StoryPolicy) -> int:
    entry = state.get(f"a:{article_id}")
    if not isinstance(entry, dict):
        return 0
    if "s" in entry:
        for key in band_keys(base64.b64decode(entry["s"]), policy):
            ids = list(state.get(key) or ())
            if article_id not in ids:
                continue  # pushed out by newer ids already (bucket_cap)
            ids.remove(article_id)
            if ids:
                state[key] = ids
            else:
                del state[key]
    if state.get(f"h:{entry['h']}") == article_id:
        del state[f"h:{entry['h']}"]
    del state[f"a:{article_id}"]
    return 1
