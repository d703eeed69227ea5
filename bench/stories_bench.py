"""Evidence for processors.stories: how similar unrelated and syndicated articles are,
and how fast fingerprinting and assigning run.

    .venv/bin/python bench/stories_bench.py [--trafilatura] [--trafilatura-cache FILE]

(a) Unrelated articles: Jaccard of word shingles over all pairs of the fundus gold bodies
    (and, with --trafilatura, of trafilatura's extraction of the 990 trafilatura-eval
    pages, about 490k pairs), exactly for several shingle sizes and as estimated by the
    policy's MinHash. The top pairs are printed by name: some are the same text twice.
(b) Syndicated copies made from each real article by the edits syndication makes
    (headline in the body, byline, agency footer, paragraphs dropped or added, words
    changed), at three strengths; recall of the threshold, and of assign() end to end
    (with --compare, also under other thresholds, shingle sizes and bandings).
(c) Throughput of fingerprint() and of assign() into a warm state, and state size.

Reads ../shared/data; writes nothing except the optional trafilatura cache.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processors.stories import (  # noqa: E402
    Fingerprint,
    StoryPolicy,
    assign,
    fingerprint,
    normalise,
    shingles,
    sweep,
)

DATA = ROOT.parent / "shared" / "data" / "extraction"
SHINGLE_SIZES = (3, 4, 5, 7)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
Corpus = dict[str, list[str]]


# -- corpora ---------------------------------------------------------------------------


def fundus_articles() -> dict[str, dict[str, Any]]:
    """Every fundus gold article, by "<country>/<Publisher>.json:<version>"."""
    out = {}
    for path in sorted((DATA / "fundus").glob("*/*.json")):
        for version, article in json.loads(path.read_text("utf-8")).items():
            out[f"{path.parent.name}/{path.name}:{version}"] = article
    return out


def body_paragraphs(article: dict[str, Any]) -> list[str]:
    """A fundus body as the pipeline's paragraphs: summary, then headings and paragraphs."""
    body = article.get("body") or {}
    sections = body.get("sections", [])
    rest = [p for s in sections for p in [*s.get("headline", []), *s.get("paragraphs", [])]]
    return [*body.get("summary", []), *rest]


def trafilatura_texts(cache: Path | None) -> Corpus:
    if cache and cache.exists():
        texts = json.loads(cache.read_text("utf-8"))
    else:
        texts = _extract_trafilatura()
        if cache:
            cache.write_text(json.dumps(texts), "utf-8")
    return {url: text.split("\n") for url, text in texts.items() if text}


def _extract_trafilatura() -> dict[str, str | None]:
    import trafilatura

    root = DATA / "trafilatura-eval"
    out = {}
    for url, entry in json.loads((root / "evaldata.json").read_text("utf-8")).items():
        path = next(
            (
                p
                for p in (root / "eval" / entry["file"], root / "cache" / entry["file"])
                if p.exists()
            ),
            None,
        )
        if path is not None:
            raw = path.read_bytes()
            out[url] = trafilatura.extract(
                gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw, url=url
            )
    return out


# -- (a) unrelated pairs ---------------------------------------------------------------


def exact_pairs(corpus: Corpus, size: int, min_shingles: int) -> list[tuple[float, str, str]]:
    sets = {name: shingles(normalise("\n".join(p)), size) for name, p in corpus.items()}
    sets = {name: s for name, s in sets.items() if len(s) >= min_shingles}
    pairs = []
    for a, b in itertools.combinations(sorted(sets), 2):
        common = len(sets[a] & sets[b])
        pairs.append((common / (len(sets[a]) + len(sets[b]) - common), a, b))
    return sorted(pairs, reverse=True)


def estimated_pairs(corpus: Corpus, policy: StoryPolicy) -> list[tuple[float, str, str]]:
    fps = {name: fingerprint(p, policy) for name, p in corpus.items()}
    names = sorted(n for n, fp in fps.items() if fp.shingles >= policy.min_shingles)
    sigs = np.stack([np.frombuffer(fps[n].signature, dtype="<u4") for n in names])
    pairs: list[tuple[float, str, str]] = []
    for i in range(len(names) - 1):
        agree = np.count_nonzero(sigs[i + 1 :] == sigs[i], axis=1) / policy.num_perm
        pairs.extend((float(s), names[i], names[i + 1 + j]) for j, s in enumerate(agree))
    return sorted(pairs, reverse=True)


# Pairs in the data that are one text or one story, read by hand; the statistics of
# unrelated pairs leave them out, and they are printed with their similarity instead.
SAME_STORY = (
    ("de/Taz.json:V1", "de/Taz.json:V2", "the same taz article twice, V2 lacks a paragraph"),
    ("womencantalksports.com.top10", "womencantalksports.com/top-10", "one page, two files"),
    ("heavenlynnhealthy.de.areenburk", "heavenlynnhealthy.de/lieblingslabel", "one page, twice"),
    ("djz.de/amoklauf", "jagdverband.de/wir-sind", "a press release and a reworded reprint"),
    ("24horas.cl/politica/presidente-boric", "cooperativa.cl/noticias/pais/presidente-boric",
     "two outlets' rewrites of one EFE wire, each with material of its own"),
)  # fmt: skip


def same_story(a: str, b: str) -> str | None:
    for x, y, why in SAME_STORY:
        if (x in a and y in b) or (x in b and y in a):
            return why
    return None


def describe(label: str, pairs: list[tuple[float, str, str]], show_known: bool) -> None:
    rest = np.array([p[0] for p in pairs if not same_story(p[1], p[2])])
    known = [(score, a, b) for score, a, b in pairs if same_story(a, b)]
    print(
        f"  {label}: {len(rest)} unrelated pairs  max {rest.max():.3f}  p99.99 "
        f"{np.quantile(rest, 0.9999):.4f}  p99.9 {np.quantile(rest, 0.999):.4f}  "
        f"mean {rest.mean():.5f}  >=0.1: {(rest >= 0.1).sum()}"
    )
    for score, a, b in known if show_known else ():
        print(f"      same story {score:.3f}  {a[-45:]} ~ {b[-45:]}: {same_story(a, b)}")


def unrelated(corpora: dict[str, Corpus], policy: StoryPolicy) -> None:
    print("\n(a) all pairs of real articles (texts with at least min_shingles shingles)")
    for name, corpus in corpora.items():
        print(f" {name}: {len(corpus)} texts")
        for size in SHINGLE_SIZES:
            pairs = exact_pairs(corpus, size, policy.min_shingles)
            describe(f"exact Jaccard, {size}-shingles", pairs, show_known=size == 5)
        pairs = estimated_pairs(corpus, policy)
        describe(f"policy estimate ({policy.num_perm} perm)", pairs, show_known=True)
        for score, a, b in [p for p in pairs if not same_story(p[1], p[2])][:3]:
            print(f"      top unrelated {score:.3f}  {a[-45:]} ~ {b[-45:]}")


# -- (b) syndicated copies -------------------------------------------------------------

NAMES = ("Jane Doe", "Max Mustermann", "Ana García", "Kenji Sato", "Olu Adeyemi")
AGENCIES = ("Reuters", "AP", "AFP", "dpa", "EFE", "PA Media")
LEVELS = {"light": (0, 0, 0.0), "medium": (1, 1, 0.01), "heavy": (2, 2, 0.03)}


def syndicate(
    paragraphs: list[str], title: str, other: list[str], level: str, rng: random.Random
) -> list[str]:
    """A copy as another site would run it: the headline reworded and kept in the body,
    a byline and an agency footer added, then paragraphs dropped, paragraphs of another
    article added (context, related links) and words replaced, by ``level``."""
    drop, add, word_share = LEVELS[level]
    copy = list(paragraphs)
    for _ in range(min(drop, len(copy) - 1)):
        copy.pop(rng.randrange(len(copy)))
    for paragraph in rng.sample(other, min(add, len(other))):
        copy.insert(rng.randrange(len(copy) + 1), paragraph)
    copy = [_edit_words(p, word_share, rng) for p in copy]
    headline = rng.choice(["UPDATE:", "Breaking:", "Watch:", "Analysis:"])
    byline = f"By {rng.choice(NAMES)}, {rng.choice(AGENCIES)}"
    footer = f"© {rng.choice(AGENCIES)} 2024. All rights reserved. Reporting by {rng.choice(NAMES)}"
    return [f"{headline} {title}", byline, *copy, footer]


def _edit_words(paragraph: str, share: float, rng: random.Random) -> str:
    words = paragraph.split()
    for _ in range(round(len(words) * share)):
        words[rng.randrange(len(words))] = rng.choice(words) + rng.choice(["", "s", "n"])
    return " ".join(words)


def copies(
    articles: dict[str, dict[str, Any]], level: str, seed: int
) -> Iterator[tuple[str, list[str]]]:
    """A copy of every article; added paragraphs come from another article of the same
    country (the same language, mostly), as a site's own context would."""
    rng = random.Random(f"{seed}:{level}")
    names = sorted(articles)
    for name in names:
        country = name.split("/")[0]
        peers = [n for n in names if n != name and n.startswith(f"{country}/")]
        other = body_paragraphs(articles[rng.choice(peers or [n for n in names if n != name])])
        body = body_paragraphs(articles[name])
        yield name, syndicate(body, articles[name].get("title") or "", other, level, rng)


def syndicated(articles: dict[str, dict[str, Any]], policy: StoryPolicy) -> None:
    print("\n(b) syndicated copies of each fundus article (originals above min_shingles)")
    originals = {n: body_paragraphs(a) for n, a in articles.items()}
    fps = {n: fingerprint(p, policy) for n, p in originals.items()}
    kept = {n for n, fp in fps.items() if fp.shingles >= policy.min_shingles}
    for level in LEVELS:
        made = [(n, c) for n, c in copies(articles, level, policy.seed) if n in kept]
        for size in SHINGLE_SIZES:
            js = [_jaccard(originals[n], c, size) for n, c in made]
            _quantiles(f"{level:6} exact J, {size}-shingles", js)
        est = [_estimate(fps[n].signature, fingerprint(c, policy).signature) for n, c in made]
        _quantiles(f"{level:6} policy estimate", est)
        print(
            "      share >= threshold: "
            + "  ".join(f"{t}: {np.mean(np.array(est) >= t):.3f}" for t in THRESHOLDS)
        )
        end_to_end(level, originals, made, policy)


def _jaccard(a: list[str], b: list[str], size: int) -> float:
    sa, sb = (shingles(normalise("\n".join(x)), size) for x in (a, b))
    return len(sa & sb) / len(sa | sb)


def _estimate(a: bytes, b: bytes) -> float:
    return float(np.mean(np.frombuffer(a, "<u4") == np.frombuffer(b, "<u4")))


def _quantiles(label: str, values: list[float]) -> None:
    v = np.array(values)
    print(
        f"  {label:34} n={len(v)} min {v.min():.3f} p1 {np.quantile(v, 0.01):.3f} "
        f"p5 {np.quantile(v, 0.05):.3f} p25 {np.quantile(v, 0.25):.3f} median {np.median(v):.3f}"
    )


def end_to_end(
    level: str, originals: Corpus, made: list[tuple[str, list[str]]], policy: StoryPolicy
) -> None:
    """All originals, then all copies, through assign(): a copy must land in its
    original's cluster (which is not the original itself where that is a near-duplicate
    of an earlier original: the two taz versions), and nowhere else. Twice: as copies on
    other sites, and as copies on the original's own site, where a near match must also
    be alike in its own text (the paragraphs the two do not share exactly)."""
    for where, site in (("another site", None), ("the same site", "one.example")):
        state: dict[str, Any] = {}
        clusters = {
            name: assign(name, fingerprint(p, policy), state, 0.0, policy, site).cluster_id
            for name, p in originals.items()
        }
        right = wrong = 0
        for name, copy in made:
            got = assign(f"copy:{name}", fingerprint(copy, policy), state, 1.0, policy, site)
            right += got.cluster_id == clusters[name]
            wrong += got.kind is not None and got.cluster_id != clusters[name]
        print(
            f"      assign() on {where}: {right}/{len(made)} joined their original's "
            f"cluster, {wrong} another"
        )


VARIANTS: tuple[dict[str, Any], ...] = (
    {"threshold": 0.4},
    {"threshold": 0.6},
    {"shingle_size": 3},
    {"shingle_size": 4},
    {"lsh_recall": 0.85},
)


def compare(articles: dict[str, dict[str, Any]]) -> None:
    """assign() end to end under other choices of the policy, same copies."""
    originals = {n: body_paragraphs(a) for n, a in articles.items()}
    for change in VARIANTS:
        policy = StoryPolicy(**change)
        print(f"\n variant {change}: {policy.bands} bands x {policy.rows} rows")
        for level in LEVELS:
            end_to_end(level, originals, list(copies(articles, level, policy.seed)), policy)


# -- (c) throughput and state size -----------------------------------------------------


def throughput(corpus: Corpus, policy: StoryPolicy, warm: int) -> None:
    print(f"\n(c) throughput (per CPU second) on {len(corpus)} real texts, {warm} in the state")
    texts = list(corpus.values())
    seconds, fps = _timed(lambda: [fingerprint(t, policy) for t in texts])
    words = sum(len(" ".join(t).split()) for t in texts)
    fingerprint_rate = len(texts) / seconds
    print(f"  fingerprint: {fingerprint_rate:,.0f} articles/s ({words / seconds:,.0f} words/s)")
    state = CountingState()
    rng = np.random.default_rng(policy.seed)
    for i in range(warm):  # random signatures: unrelated articles, as most are
        sig = rng.integers(0, 2**32, policy.num_perm, dtype="<u4").tobytes()
        assign(f"warm{i}", Fingerprint(f"{i:032x}", sig, 500), state, i * 10.0, policy)
    now, writes_before = warm * 10.0, state.writes
    seconds, _ = _timed(
        lambda: [assign(f"x{i}", fp, state, now, policy) for i, fp in enumerate(fps)]
    )
    rate = len(fps) / seconds
    print(f"  assign:      {rate:,.0f} articles/s (a dict; a RocksDB-backed table is slower)")
    print(f"  both:        {1 / (1 / rate + 1 / fingerprint_rate):,.0f} articles/s on one core")
    print(f"  writes:      {(state.writes - writes_before) / len(fps):.1f} per assign (changelog)")
    per_article(state, warm + len(fps))
    later = now + policy.window_seconds + 2 * policy.slot_seconds
    took, removed = _timed(lambda: sweep(state, later, policy))
    print(f"  sweep:       {removed} articles in {took:.2f} CPU s, {len(state)} keys left")


class CountingState(dict[str, Any]):
    """A dict that counts writes: each is a changelog message for a Faust table."""

    writes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds, not wall time: rates stay comparable on a shared, busy machine."""
    t0 = time.process_time()
    result = work()
    return time.process_time() - t0, result


def per_article(state: dict[str, Any], articles: int) -> None:
    size = sum(len(k) + len(json.dumps(v, separators=(",", ":"))) for k, v in state.items())
    print(
        f"  state: {len(state) / articles:.1f} keys and {size / articles:,.0f} bytes (JSON) per "
        f"article; a:-entry alone {_entry_size(state):,.0f} bytes"
    )


def _entry_size(state: dict[str, Any]) -> float:
    sizes = [len(json.dumps(v, separators=(",", ":"))) for k, v in state.items() if k[:2] == "a:"]
    return float(np.mean(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trafilatura", action="store_true", help="add the 990 eval pages")
    parser.add_argument("--trafilatura-cache", type=Path, help="JSON file of extracted texts")
    parser.add_argument("--warm", type=int, default=50_000, help="articles in state for (c)")
    parser.add_argument("--throughput-only", action="store_true", help="only (c)")
    parser.add_argument("--compare", action="store_true", help="(b) under other policies")
    args = parser.parse_args()
    policy = StoryPolicy()
    print(
        f"policy: {policy}\nLSH: {policy.bands} bands x {policy.rows} rows; P(candidate) at J="
        + "  ".join(
            f"{t}: {1 - (1 - t**policy.rows) ** policy.bands:.3f}" for t in (0.1, 0.2, *THRESHOLDS)
        )
    )
    articles = fundus_articles()
    corpora = {"fundus gold bodies": {n: body_paragraphs(a) for n, a in articles.items()}}
    if args.trafilatura or args.trafilatura_cache:
        corpora["trafilatura-eval extractions"] = trafilatura_texts(args.trafilatura_cache)
    if not args.throughput_only:
        unrelated(corpora, policy)
        syndicated(articles, policy)
    if args.compare:
        compare(articles)
    throughput(corpora["fundus gold bodies"], policy, args.warm)


if __name__ == "__main__":
    main()
