"""Extraction quality: newsflow's ``processors.clean.extract`` against plain
``trafilatura.extract(html)`` (default settings) on trafilatura's evaluation set, and
with ``--variants`` against trafilatura's best options too, and newsflow's text as it is
indexed (after the in-page repeat rules of processors.repeats).

    .venv/bin/python bench/extraction_quality.py [--limit N] [--data DIR] [--fundus] [--variants]

The set (``../shared/data/extraction/trafilatura-eval``) gives, per page, snippets that must
appear in the main text (``with``) and boilerplate that must not (``without``). Scored as its
authors score it: after collapsing white space, a ``with`` snippet found is a true positive
and one missing a false negative; a ``without`` snippet found is a false positive. For
newsflow the text is its paragraphs joined; a rejected page counts as empty text. newsflow
is scored twice: as deployed, and with its page-type gate off (extraction alone).

``--fundus`` also reports, on the fundus golden pages, the share of gold body paragraphs
found and how often the title agrees with the gold one.

The scoring lives here only; tests/test_clean.py imports it to pin the same comparisons.
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trafilatura

from processors.clean import CleanOptions, Extracted, Rejected, extract
from processors.paragraphs import normalize
from processors.repeats import dedup_in_page

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "extraction" / "trafilatura-eval"
)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class EvalPage:
    url: str
    path: Path
    with_: tuple[str, ...]
    without: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    def __add__(self, other: Score) -> Score:
        return Score(self.tp + other.tp, self.fn + other.fn, self.fp + other.fp, self.tn + other.tn)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0


def normalise(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def score(text: str, page: EvalPage) -> Score:
    """One page's counts: substring matches after collapsing white space."""
    haystack = normalise(text)
    found = sum(normalise(snippet) in haystack for snippet in page.with_)
    leaked = sum(normalise(snippet) in haystack for snippet in page.without)
    return Score(found, len(page.with_) - found, leaked, len(page.without) - leaked)


def load_pages(root: Path = DEFAULT_DATA, limit: int | None = None) -> list[EvalPage]:
    """The evaluation pages in the set's order; with ``limit``, that many spread evenly
    over the set (deterministic, and not just the first files of one kind)."""
    entries = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    pages = [
        EvalPage(
            url, _page_path(root, entry["file"]), tuple(entry["with"]), tuple(entry["without"])
        )
        for url, entry in entries.items()
    ]
    if limit is None or limit >= len(pages):
        return pages
    return [pages[i * len(pages) // limit] for i in range(limit)]


def _page_path(root: Path, name: str) -> Path:
    # The set keeps its pages in two folders.
    path = root / "eval" / name
    return path if path.exists() else root / "cache" / name


# The page-type gate (home and shop pages are "not-article") is policy, not extraction, and
# the evaluation set holds such pages on purpose: extraction is also scored without it.
EXTRACTION_ONLY = CleanOptions(reject_non_articles=False)


@dataclass(frozen=True)
class NewsflowResult:
    deployed: str  # text with the default options ("" when rejected)
    extraction: str  # text with the page-type gate off
    rejected: str | None  # the reason code under the default options


def newsflow_result(page: EvalPage) -> NewsflowResult:
    body = page.path.read_bytes()
    result = extract(body, page.url, "text/html")
    if not isinstance(result, Rejected):
        return NewsflowResult(result.text, result.text, None)
    ungated: Extracted | Rejected = result
    if result.reason == "not-article":
        ungated = extract(body, page.url, "text/html", options=EXTRACTION_ONLY)
    text = "" if isinstance(ungated, Rejected) else ungated.text
    return NewsflowResult("", text, result.reason)


def trafilatura_text(page: EvalPage, **options: Any) -> str:
    return trafilatura.extract(page.path.read_bytes(), **options) or ""


# trafilatura's own settings, beside its defaults: comments off (what newsflow uses), and
# its precision and recall modes on top of that.
TRAFILATURA_VARIANTS: dict[str, dict[str, Any]] = {
    "trafilatura, comments off": {"include_comments": False},
    "trafilatura, comments off, precision": {"include_comments": False, "favor_precision": True},
    "trafilatura, comments off, recall": {"include_comments": False, "favor_recall": True},
}


def indexed_texts(page: EvalPage) -> tuple[str, str]:
    """newsflow's text as it is indexed (extraction without the gate, then the in-page
    repeat rules), and the same with the title before it: what a reader of the article
    sees, since the title rule moves a headline out of the text into the title."""
    result = extract(page.path.read_bytes(), page.url, "text/html", options=EXTRACTION_ONLY)
    if isinstance(result, Rejected):
        return "", ""
    kept = dedup_in_page(result.paragraphs, result.kinds, title=result.title).paragraphs
    text = "\n\n".join(kept)
    return text, f"{result.title or ''}\n\n{text}"


def variants(
    pages: Sequence[EvalPage], progress: Callable[[int, int], None] | None = None
) -> dict[str, Score]:
    """Scores of trafilatura's other settings and of newsflow's indexed text."""
    totals = dict.fromkeys(
        [*TRAFILATURA_VARIANTS, "newsflow, as indexed", "newsflow, as indexed, with title"],
        Score(),
    )
    for done, page in enumerate(pages, start=1):
        for name, options in TRAFILATURA_VARIANTS.items():
            totals[name] += score(trafilatura_text(page, **options), page)
        text, with_title = indexed_texts(page)
        totals["newsflow, as indexed"] += score(text, page)
        totals["newsflow, as indexed, with title"] += score(with_title, page)
        if progress is not None:
            progress(done, len(pages))
    return totals


@dataclass(frozen=True)
class Comparison:
    deployed: Score
    extraction: Score
    trafilatura: Score
    rejected: dict[str, int]


def compare(
    pages: Sequence[EvalPage], progress: Callable[[int, int], None] | None = None
) -> Comparison:
    """Score newsflow (deployed, and extraction only) and plain trafilatura on ``pages``."""
    deployed = extraction = theirs = Score()
    rejected: Counter[str] = Counter()
    for done, page in enumerate(pages, start=1):
        ours = newsflow_result(page)
        deployed += score(ours.deployed, page)
        extraction += score(ours.extraction, page)
        theirs += score(trafilatura_text(page), page)
        rejected.update([ours.rejected] if ours.rejected else [])
        if progress is not None:
            progress(done, len(pages))
    return Comparison(deployed, extraction, theirs, dict(rejected))


# --- fundus golden pages: recall of the gold body paragraphs, and the title ---------------

FUNDUS_DATA = DEFAULT_DATA.parent / "fundus"
# Characters that differ between a gold answer and the same text on the page without
# changing it: soft hyphens, zero-width spaces and joiners, typographic quotes.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_QUOTES = str.maketrans("\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f", "''''\"\"\"\"")


@dataclass(frozen=True)
class FundusPage:
    name: str  # <Publisher>_<date>.html.gz
    path: Path
    url: str
    title: str | None
    paragraphs: tuple[str, ...]


def load_fundus(root: Path = FUNDUS_DATA) -> list[FundusPage]:
    """All golden pages. A publisher's gold file holds one entry per parser version, in the
    order of its pages' crawl dates."""
    pages = []
    for gold_file in sorted(root.glob("*/*.json")):
        urls = json.loads((gold_file.parent / "meta.info").read_text(encoding="utf-8"))
        gold = json.loads(gold_file.read_text(encoding="utf-8"))
        htmls = sorted(gold_file.parent.glob(f"{gold_file.stem}_*.html.gz"))
        for path, version in zip(htmls, sorted(gold), strict=True):
            entry = gold[version]
            sections = entry["body"]["sections"]
            paragraphs = tuple(p for section in sections for p in section["paragraphs"])
            url = urls[path.name]["url"]
            pages.append(FundusPage(path.name, path, url, entry.get("title"), paragraphs))
    return pages


def compact(text: str) -> str:
    """Text for comparing with fundus gold: NFKC, without invisible characters, plain
    quotes, case-folded and without white space (gold paragraphs sometimes lose a space)."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_QUOTES)
    return "".join(text.casefold().split())


def paragraph_recall(text: str, paragraphs: Sequence[str]) -> float:
    """The share of gold paragraphs found whole in the text."""
    haystack = compact(text)
    found = sum(compact(paragraph) in haystack for paragraph in paragraphs)
    return found / len(paragraphs) if paragraphs else 1.0


def title_matches(found: str | None, gold: str | None) -> bool:
    """Gold titles are the page's headline; sites often declare another (SEO) title, so
    containment (a site-name suffix) or a close match counts."""
    if not gold:
        return True
    if not found:
        return False
    ours, theirs = compact(found), compact(gold)
    return theirs in ours or difflib.SequenceMatcher(None, ours, theirs).ratio() >= 0.8


@dataclass(frozen=True)
class FundusResult:
    """Paragraph recall of the extraction, and the gold paragraphs it found that the
    in-page repeat rules (processors.repeats) took away: none should be. For that, a
    paragraph is compared without its edge punctuation, as the rules compare: "out
    there." printed again as "out there" is one paragraph, whose first copy stays."""

    recall: float
    title_ok: bool
    lost_to_repeats: tuple[str, ...]


def fundus_result(page: FundusPage) -> FundusResult:
    """What newsflow makes of one golden page."""
    result = extract(gzip.decompress(page.path.read_bytes()), page.url, "text/html")
    if isinstance(result, Rejected):
        return FundusResult(0.0, False, ())
    unique = dedup_in_page(result.paragraphs, result.kinds, title=result.title).paragraphs
    before = compact(" ".join(normalize(p) for p in result.paragraphs))
    after = compact(" ".join(normalize(p) for p in unique))
    lost = tuple(
        g
        for g in page.paragraphs
        if compact(normalize(g)) in before and compact(normalize(g)) not in after
    )
    return FundusResult(
        paragraph_recall(result.text, page.paragraphs),
        title_matches(result.title, page.title),
        lost,
    )


def _progress(name: str) -> Callable[[int, int], None]:
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            elapsed = time.monotonic() - started
            print(f"{name}: {done}/{total} pages, {elapsed:.0f} s", file=sys.stderr, flush=True)

    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="score this many pages, spread over the set")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the set's folder")
    parser.add_argument(
        "--fundus", action="store_true", help="also score the fundus golden pages beside it"
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also score trafilatura's other settings and newsflow's text as indexed",
    )
    args = parser.parse_args(argv)
    if not (args.data / "evaldata.json").exists():
        parser.error(f"no evaldata.json in {args.data}")
    pages = load_pages(args.data, args.limit)
    result = compare(pages, _progress("pages"))
    print(f"pages: {len(pages)}")
    print(f"{'':<40}{'precision':>10}{'recall':>8}{'F1':>8}{'TP':>6}{'FN':>6}{'FP':>6}")
    rows = [
        ("newsflow, as deployed", result.deployed),
        ("newsflow, extraction (no gate)", result.extraction),
        ("trafilatura.extract (default)", result.trafilatura),
    ]
    if args.variants:
        rows += list(variants(pages, _progress("variants")).items())
    for name, total in rows:
        print(
            f"{name:<40}{total.precision:>10.4f}{total.recall:>8.4f}{total.f1:>8.4f}"
            f"{total.tp:>6}{total.fn:>6}{total.fp:>6}"
        )
    for name, total in rows[:2]:
        print(f"F1 ratio {name} / trafilatura: {total.f1 / result.trafilatura.f1:.4f}")
    print(f"rejected by newsflow as deployed: {result.rejected or 'none'}")
    if args.fundus:
        _print_fundus(load_fundus(args.data.parent / "fundus"))
    return 0


def _print_fundus(pages: Sequence[FundusPage]) -> None:
    report = _progress("fundus")
    results = []
    for done, page in enumerate(pages, start=1):
        results.append(fundus_result(page))
        report(done, len(pages))
    recalls = sorted(r.recall for r in results)
    print(f"fundus pages: {len(pages)}")
    mean, median = sum(recalls) / len(recalls), recalls[len(recalls) // 2]
    print(f"paragraph recall: mean {mean:.4f}, median {median:.4f}")
    for threshold in (0.5, 0.7, 0.9):
        share = sum(r >= threshold for r in recalls) / len(recalls)
        print(f"  pages with recall >= {threshold}: {share:.1%}")
    print(f"title matches gold: {sum(r.title_ok for r in results) / len(results):.1%}")
    lost = [g for r in results for g in r.lost_to_repeats]
    print(f"gold paragraphs lost to the in-page repeat rules: {len(lost)} {lost}")


if __name__ == "__main__":
    sys.exit(main())
