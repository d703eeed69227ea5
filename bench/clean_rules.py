"""Evidence for the thresholds of the in-page repeat rules (``processors.repeats``).

Runs the pipeline's own extraction (``processors.clean.extract``, page-type gate off, so
every page is scored) on two real corpora under ../shared/data, then each rule of
``dedup_in_page`` on its paragraphs and kinds, and counts what the rule removes and what
that costs in gold text:

* fundus golden pages (258 news pages): a removed paragraph is gold when its normalised
  text (``processors.paragraphs.normalize``) equals or is contained in a gold body
  paragraph; a gold occurrence is lost when k gold paragraphs hold the text and the rule
  leaves fewer than k (or fewer than it found, if that was less) paragraphs holding it.
* trafilatura's evaluation set (990 pages): a ``with`` snippet is lost when it is found
  in the text before the rule and not after (substring match after collapsing white
  space, as bench/extraction_quality.py scores); ``without`` snippets (boilerplate)
  removed the same way.

The rules run in the pipeline's order, each scored on what the one before it left:
exact (repeats of ``min_chars`` or more, any kind), then short (shorter prose repeats),
then near (a prose paragraph a fuller one contains almost entirely). Reported: every
in-page repeat by kind and length; the exact rule at min_chars 20, 30 and 50 (what the
50 floor keeps: table rows, list items, code); a grid of settings for the short and near
rules; and, at the default policy, samples of removed lines per rule, marked.

What the gold can and cannot see: the exact and short rules keep a first copy, so a
snippet stays found and their ``with lost`` is zero by construction; only a gold that
repeats a text itself (fundus occurrences) prices a second copy. The fundus gold holds the
body's paragraphs only (``load_fundus``), not its subheadings, summary or lists. The
samples are there for what the counts cannot show: read them before choosing.

    .venv/bin/python bench/clean_rules.py [--data ../shared/data] [--cache FILE] [--show N]

Extraction of the 1248 pages takes under a minute on two cores and the analysis about
another; ``--cache`` keeps the extraction (a pickle, outside the repository) for re-runs.
"""

from __future__ import annotations

import argparse
import gzip
import pickle
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.extraction_quality import (  # noqa: E402
    DEFAULT_DATA,
    EXTRACTION_ONLY,
    FUNDUS_DATA,
    load_fundus,
    load_pages,
    normalise,
)
from processors.clean import Rejected, extract  # noqa: E402
from processors.paragraphs import normalize  # noqa: E402
from processors.repeats import (  # noqa: E402
    DEFAULT_POLICY,
    PROSE,
    InPage,
    Kind,
    RepeatPolicy,
    dedup_in_page,
)

SHARED_DATA = DEFAULT_DATA.parents[1]  # ../shared/data beside the repository
OFF = 10**9  # a threshold no paragraph reaches: turns the short or the near rule off
Corpus = Literal["fundus", "eval"]
Rule = Literal["exact", "short", "near"]
RULES: tuple[Rule, ...] = ("exact", "short", "near")
KINDS: tuple[Kind, ...] = ("text", "item", "cell", "line", "other")
LENGTHS = ((0, 12), (12, 20), (20, 30), (30, 50), (50, OFF))
SHORT_CHARS, SHORT_WORDS = (8, 12, 20, 30), (1, 2, 3)
NEAR_CONTAINMENT, NEAR_WORDS = (0.8, 0.9, 0.95, 1.0), (4, 6, 8, 12)
NEAR_RATIOS = (1.5, 2.0, 3.0, float("inf"))
EXACT_CHARS = (20, 30, 50)
_WORDS = re.compile(r"[^\W_]+")  # display only: which kept paragraph holds a near repeat


@dataclass
class Page:
    corpus: Corpus
    label: str
    path: Path
    url: str
    gold: tuple[str, ...] = ()  # fundus: gold body paragraphs, normalised
    with_: tuple[str, ...] = ()  # eval: snippets, white space collapsed
    without: tuple[str, ...] = ()
    paragraphs: list[str] = field(default_factory=list)
    kinds: list[Kind] = field(default_factory=list)
    rejected: str | None = None


# --- loading and extraction --------------------------------------------------------------


def load_corpora(data: Path, limit: int | None) -> list[Page]:
    """The fundus pages, then the evaluation pages, of whichever corpus is present."""
    pages: list[Page] = []
    fundus = data / FUNDUS_DATA.relative_to(SHARED_DATA)
    if fundus.is_dir():
        pages += [
            Page(
                "fundus",
                f"{p.path.parent.name}/{p.name.removesuffix('.html.gz')}",
                p.path,
                p.url,
                gold=tuple(normalize(g) for g in p.paragraphs),
            )
            for p in load_fundus(fundus)[:limit]
        ]
    evaluation = data / DEFAULT_DATA.relative_to(SHARED_DATA)
    if (evaluation / "evaldata.json").exists():
        pages += [
            Page(
                "eval",
                p.url,
                p.path,
                p.url,
                with_=tuple(normalise(s) for s in p.with_),
                without=tuple(normalise(s) for s in p.without),
            )
            for p in load_pages(evaluation, limit)
        ]
    return pages


# A page's paragraphs and their kinds, or the reason extraction rejected it.
Extraction = tuple[list[str], list[Kind]] | str


def extract_page(path: Path, url: str) -> Extraction:
    """One page through the pipeline's extraction (run in a worker process)."""
    body = path.read_bytes()
    if path.suffix == ".gz":
        body = gzip.decompress(body)
    result = extract(body, url, "text/html", options=EXTRACTION_ONLY)
    if isinstance(result, Rejected):
        return result.reason
    return result.paragraphs, result.kinds or ["other"] * len(result.paragraphs)


def extract_all(pages: Sequence[Page], known: dict[str, Extraction]) -> dict[str, Extraction]:
    """Every page's extraction by its path: from ``known``, the rest in two processes."""
    found = dict(known)
    todo = [page for page in pages if str(page.path) not in found]
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = {pool.submit(extract_page, page.path, page.url): page for page in todo}
        for done, future in enumerate(as_completed(futures), start=1):
            found[str(futures[future].path)] = future.result()
            if done % 100 == 0 or done == len(todo):
                elapsed = time.monotonic() - started
                print(f"extracted {done}/{len(todo)} pages, {elapsed:.0f} s", file=sys.stderr)
    return found


def load(data: Path, cache: Path | None, limit: int | None) -> list[Page]:
    """The pages with their extraction; ``cache`` (a pickle) keeps it for the next run."""
    pages = load_corpora(data, limit)
    known: dict[str, Extraction] = {}
    if cache is not None and cache.exists():
        known = pickle.loads(cache.read_bytes())
        print(f"{len(known)} extracted pages read from {cache}", file=sys.stderr)
    found = extract_all(pages, known)
    if cache is not None and len(found) > len(known):
        cache.write_bytes(pickle.dumps(found))
    for page in pages:
        result = found[str(page.path)]
        if isinstance(result, str):
            page.rejected = result
        else:
            page.paragraphs, page.kinds = result
    return pages


# --- one rule's effect on one page -------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """What one rule saw and left on a page, and what it removed (with their kinds)."""

    before: list[str]
    after: list[str]
    removed: list[str]
    removed_kinds: list[Kind]


def rule_step(page: Page, policy: RepeatPolicy, rule: Rule) -> Step:
    """One rule's step, in the pipeline's order: exact and short take disjoint lengths in
    one pass (exact is scored first, on the extraction), near sees what they kept."""
    exact_only = replace(policy, short_min_chars=OFF, near_min_words=OFF)
    if rule == "exact":
        after = dedup_in_page(page.paragraphs, page.kinds, exact_only)
        return _step(page.paragraphs, page.kinds, after, after.exact)
    no_near = dedup_in_page(page.paragraphs, page.kinds, replace(policy, near_min_words=OFF))
    if rule == "short":
        before = dedup_in_page(page.paragraphs, page.kinds, exact_only)
        return _step(before.paragraphs, before.kinds, no_near, no_near.short)
    after = dedup_in_page(page.paragraphs, page.kinds, policy)
    return _step(no_near.paragraphs, no_near.kinds, after, after.near)


def _step(before: list[str], kinds: Sequence[Kind], after: InPage, removed: list[str]) -> Step:
    gone = Counter(zip(before, kinds, strict=True)) - Counter(
        zip(after.paragraphs, after.kinds, strict=True)
    )
    removed_kinds: list[Kind] = []
    for line in removed:
        kind = next(k for k in KINDS if gone[line, k] > 0)
        gone[line, kind] -= 1
        removed_kinds.append(kind)
    return Step(before, after.paragraphs, removed, removed_kinds)


# --- what a removal costs ----------------------------------------------------------------


def is_gold(norm: str, gold: Iterable[str]) -> bool:
    """Fundus: the normalised line equals or is contained in a gold paragraph."""
    return any(norm in g for g in gold)


def _gold_like(page: Page, line: str) -> bool:
    """Fundus: gold text; eval: the line holds or lies inside a with snippet."""
    if page.corpus == "fundus":
        return is_gold(normalize(line), page.gold)
    return _overlaps(normalise(line), page.with_)


def _overlaps(text: str, snippets: Iterable[str]) -> bool:
    return any(text in s or s in text for s in snippets)


def gold_lost(gold: Sequence[str], step: Step) -> dict[str, int]:
    """Per removed text (normalised), the copies of gold text the rule took below the
    gold's own count: k gold paragraphs hold the text, the rule found ``had`` paragraphs
    holding it and left ``left``; lost: min(k, had) - min(k, left)."""
    before = [normalize(p) for p in step.before]
    after = [normalize(p) for p in step.after]
    lost: dict[str, int] = {}
    for text in {normalize(line) for line in step.removed}:
        wanted = sum(text in g for g in gold)
        if wanted:
            had = sum(text in p for p in before)
            left = sum(text in p for p in after)
            lost[text] = max(0, min(wanted, had) - min(wanted, left))
    return lost


def snippets_lost(snippets: Sequence[str], step: Step) -> list[str]:
    """The snippets found in the text before the rule and not after it."""
    before = normalise("\n\n".join(step.before))
    after = normalise("\n\n".join(step.after))
    return [s for s in snippets if s in before and s not in after]


@dataclass
class Tally:
    lines: int = 0
    chars: int = 0
    gold_lines: int = 0  # fundus: removed lines that are gold text; eval: with text
    without_lines: int = 0  # eval: removed lines that hold or lie inside a without snippet
    gold_lost: int = 0  # fundus: gold occurrences lost; eval: with snippets lost
    without_removed: int = 0  # eval: boilerplate snippets removed
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, page: Page, step: Step) -> None:
        if not step.removed:
            return
        self.lines += len(step.removed)
        self.chars += sum(len(line) for line in step.removed)
        self.kinds.update(step.removed_kinds)
        self.gold_lines += sum(_gold_like(page, r) for r in step.removed)
        if page.corpus == "fundus":
            self.gold_lost += sum(gold_lost(page.gold, step).values())
        else:
            texts = [normalise(r) for r in step.removed]
            self.without_lines += sum(_overlaps(t, page.without) for t in texts)
            self.gold_lost += len(snippets_lost(page.with_, step))
            self.without_removed += len(snippets_lost(page.without, step))


def tally(pages: Sequence[Page], policy: RepeatPolicy, rule: Rule) -> dict[Corpus, Tally]:
    totals: dict[Corpus, Tally] = {"fundus": Tally(), "eval": Tally()}
    for page in pages:
        totals[page.corpus].add(page, rule_step(page, policy, rule))
    return totals


# --- reports -----------------------------------------------------------------------------


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n## {title}\n")
    for n, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        print("  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]))
        if n == 0:
            print("  ".join("-" * w for w in widths))


# fundus: removed lines, their characters, those that are gold text, gold occurrences lost;
# eval: removed lines, characters, those holding or inside a with / without snippet, with
# snippets lost, without snippets removed.
TALLY_HEADER = (
    "fundus lines", "fundus chars", "gold lines", "gold occ lost",
    "eval lines", "eval chars", "with lines", "without lines", "with lost", "without gone",
)  # fmt: skip


def tally_row(totals: dict[Corpus, Tally]) -> list[object]:
    f, e = totals["fundus"], totals["eval"]
    return [
        *(f.lines, f.chars, f.gold_lines, f.gold_lost),
        *(e.lines, e.chars, e.gold_lines, e.without_lines, e.gold_lost, e.without_removed),
    ]


def print_baseline(pages: Sequence[Page]) -> None:
    rows = []
    for corpus in ("fundus", "eval"):
        group = [p for p in pages if p.corpus == corpus]
        kinds = Counter(k for p in group for k in p.kinds)
        rejected = Counter(p.rejected for p in group if p.rejected)
        rows.append(
            [
                corpus,
                len(group),
                sum(rejected.values()),
                sum(kinds.values()),
                *(kinds[k] for k in KINDS),
                dict(rejected) or "-",
            ]
        )
    header = ("corpus", "pages", "rejected", "paragraphs", *KINDS, "rejections")
    print_table("Extraction (processors.clean.extract, page-type gate off)", header, rows)
    print(f"\ndefault policy: {DEFAULT_POLICY}")


def repeats(page: Page) -> Iterator[tuple[Kind, int, bool]]:
    """Every in-page repeat (a second or later copy of a normalised text): its kind, its
    length and whether it is gold (fundus) or holds or lies inside a with snippet (eval)."""
    seen: set[str] = set()
    for line, kind in zip(page.paragraphs, page.kinds, strict=True):
        norm = normalize(line)
        if norm in seen:
            yield kind, len(norm), _gold_like(page, line)
        elif norm:
            seen.add(norm)


def print_repeats(pages: Sequence[Page]) -> None:
    rows = []
    for corpus in ("fundus", "eval"):
        found = [r for p in pages if p.corpus == corpus for r in repeats(p)]
        for kind in KINDS:
            of_kind = [(n, gold) for k, n, gold in found if k == kind]
            by_length = [sum(low <= n < high for n, _ in of_kind) for low, high in LENGTHS]
            rows.append([corpus, kind, len(of_kind), *by_length, sum(g for _, g in of_kind)])
    lengths = [
        f"<{h}" if lo == 0 else f"{lo}+" if h == OFF else f"{lo}-{h - 1}" for lo, h in LENGTHS
    ]
    header = ("corpus", "kind", "repeats", *lengths, "gold/with")
    print_table("Every in-page repeat, by kind and normalised length (chars)", header, rows)


def print_exact(pages: Sequence[Page]) -> None:
    rows = []
    for chars in EXACT_CHARS:
        policy = replace(DEFAULT_POLICY, min_chars=chars)
        totals = tally(pages, policy, "exact")
        kinds = totals["fundus"].kinds + totals["eval"].kinds
        rows.append(
            [
                f"{chars}{' *' if policy == DEFAULT_POLICY else ''}",
                *tally_row(totals),
                *(kinds[k] for k in KINDS),
            ]
        )
    header = ("min_chars", *TALLY_HEADER, *(f"{k} (both)" for k in KINDS))
    print_table("Exact rule (short and near off): repeats of min_chars or more", header, rows)


def print_grids(pages: Sequence[Page]) -> None:
    rows = []
    for chars in SHORT_CHARS:
        for words in SHORT_WORDS:
            policy = replace(DEFAULT_POLICY, short_min_chars=chars, short_min_words=words)
            mark = " *" if policy == DEFAULT_POLICY else ""
            rows.append([f"{chars}{mark}", words, *tally_row(tally(pages, policy, "short"))])
    header = ("short_min_chars", "short_min_words", *TALLY_HEADER)
    title = f"Short rule: prose repeats under min_chars={DEFAULT_POLICY.min_chars}"
    print_table(title, header, rows)
    rows = []
    for share in NEAR_CONTAINMENT:
        for words in NEAR_WORDS:
            policy = replace(DEFAULT_POLICY, near_containment=share, near_min_words=words)
            mark = " *" if policy == DEFAULT_POLICY else ""
            rows.append([f"{share}{mark}", words, *tally_row(tally(pages, policy, "near"))])
    header = ("near_containment", "near_min_words", *TALLY_HEADER)
    print_table("Near rule, after exact and short at their defaults", header, rows)
    rows = []
    for ratio in NEAR_RATIOS:
        policy = replace(DEFAULT_POLICY, near_max_ratio=ratio)
        mark = " *" if policy == DEFAULT_POLICY else ""
        rows.append([f"{ratio}{mark}", *tally_row(tally(pages, policy, "near"))])
    header = ("near_max_ratio", *TALLY_HEADER)
    print_table("Near rule: how much longer the fuller form may be", header, rows)


def print_default(pages: Sequence[Page]) -> None:
    rows = [[rule, *tally_row(tally(pages, DEFAULT_POLICY, rule))] for rule in RULES]
    print_table("Each rule at the default policy (* rows above)", ("rule", *TALLY_HEADER), rows)


# --- samples -----------------------------------------------------------------------------


def _marks(page: Page, step: Step) -> list[str]:
    """Each removed line's mark: "lost" when removing it cost gold text (a fundus gold
    occurrence; an eval with snippet it holds or lies in), "gold" / "with" when it is gold
    text of which a copy is left, "without" (eval boilerplate), else "-"."""
    if page.corpus == "fundus":
        lost = gold_lost(page.gold, step)
        norms = [normalize(line) for line in step.removed]
        return ["lost" if lost.get(n) else "gold" if is_gold(n, page.gold) else "-" for n in norms]
    gone = snippets_lost(page.with_, step)
    marks = []
    for text in (normalise(line) for line in step.removed):
        if _overlaps(text, gone):
            marks.append("lost")
        elif _overlaps(text, page.with_):
            marks.append("with")
        else:
            marks.append("without" if _overlaps(text, page.without) else "-")
    return marks


def _holder(line: str, kept: Sequence[str]) -> str:
    """The kept paragraph sharing most word pairs with a near repeat, from where the
    repeat's first words appear in it (for display)."""

    def pairs(text: str) -> set[tuple[str, str]]:
        return set(pairwise(_WORDS.findall(normalize(text))))

    mine = pairs(line)
    holder = max(kept, key=lambda p: len(mine & pairs(p)), default="")
    first = _WORDS.findall(line)[:2]
    found = re.search(r"\W+".join(map(re.escape, first)), holder, re.IGNORECASE)
    start = max(0, found.start() - 20) if found else 0
    return ("…" if start else "") + holder[start:]


def _spread(items: list[str], n: int) -> list[str]:
    return items if len(items) <= n else [items[i * len(items) // n] for i in range(n)]


GROUPS = ("lost", "gold", "other")


def print_samples(
    pages: Sequence[Page],
    rule: Rule,
    policy: RepeatPolicy,
    show: int,
    only: Callable[[str, Kind], bool] | None = None,
) -> None:
    """Up to ``show`` removed lines (those ``only`` accepts) of each group: gold text
    lost, gold text of which a copy is left, the others; per corpus."""
    for corpus in ("fundus", "eval"):
        groups: dict[str, list[str]] = {group: [] for group in GROUPS}
        for page in (p for p in pages if p.corpus == corpus):
            step = rule_step(page, policy, rule)
            removed = zip(step.removed, step.removed_kinds, _marks(page, step), strict=True)
            for line, kind, mark in removed:
                if only is not None and not only(line, kind):
                    continue
                entry = f"  {mark:7} {kind:5} {page.label[:34]:34} {line[:110]!r}"
                if rule == "near":
                    entry += f"\n  {'':48}in {_holder(line, step.after)[:110]!r}"
                group = mark if mark == "lost" else "gold" if mark in ("gold", "with") else "other"
                groups[group].append(entry)
        counts = ", ".join(f"{len(groups[g])} {g}" for g in GROUPS)
        print(f"\n### {rule}, {corpus}: {sum(map(len, groups.values()))} removed ({counts})")
        for group in GROUPS:
            for entry in _spread(groups[group], show):
                print(entry)


def print_all_samples(pages: Sequence[Page], show: int) -> None:
    print(f"\n## Removed lines at the default policy (up to {show} of each group)")
    print("marks: lost = its removal cost gold text (fundus gold occurrence, eval with")
    print("snippet); gold / with = gold text, a copy left; without = eval boilerplate")
    for rule in RULES:
        print_samples(pages, rule, DEFAULT_POLICY, show)
    floor = replace(DEFAULT_POLICY, min_chars=min(EXACT_CHARS))
    limit = DEFAULT_POLICY.min_chars
    print(f"\n## What the exact rule adds at min_chars={floor.min_chars}: lines under {limit}")
    print("of the kinds the short rule leaves alone (items, cells, other)")

    def added(line: str, kind: Kind) -> bool:
        return kind not in PROSE and len(normalize(line)) < limit

    print_samples(pages, "exact", floor, show, only=added)


# --- main --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--cache", type=Path, help="pickle the extraction here (outside the repo)")
    parser.add_argument("--limit", type=int, help="only this many pages per corpus (a quick look)")
    parser.add_argument("--show", type=int, default=8, help="sample lines per rule and mark")
    args = parser.parse_args(argv)
    if not (args.data / "extraction").is_dir():
        print(
            f"skipped: real-world data not found at {args.data} (expected ../shared/data "
            "beside the repo)",
            file=sys.stderr,
        )
        return 0
    started = time.monotonic()
    pages = load(args.data, args.cache, args.limit)
    print_baseline(pages)
    print_repeats(pages)
    print_exact(pages)
    print_grids(pages)
    print_default(pages)
    print_all_samples(pages, args.show)
    print(f"\n{len(pages)} pages in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
