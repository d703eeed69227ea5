"""What paragraph deduplication removes from real pages, and what it should not.

Paragraphs come from trafilatura's XML output (leaf <p>, <head>, <item>, <quote>, <cell>,
<code>, in document order) on two real corpora under ../shared/data:

* fundus golden pages: the gold is the article body's paragraphs (``<Publisher>.json``);
  a removed paragraph whose text is not in the gold body is counted as boilerplate.
* trafilatura's evaluation pages: ``with`` snippets must stay, ``without`` snippets are
  boilerplate.

For every strategy it reports what is removed relative to trafilatura with
``deduplicate=False``: gold occurrences lost (a repeated gold paragraph counts as often as
the gold repeats it), gold texts lost (no copy left), ``with`` snippets lost, ``without``
snippets removed. Cross-page strategies group pages by site (fundus publisher, host of the
evaluation URL) and feed them in order as if they arrived within one window; the story id
is the normalised title (what near-duplicate detection would give the same article twice).

    .venv/bin/python bench/dedup_evidence.py [--data ../shared/data] [--cache FILE] [--show N]

Extraction runs trafilatura four ways on 1248 pages (three on the 258 news pages): a few
minutes on two cores. ``--cache`` keeps the extraction for a re-run of the analysis.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tldextract
import trafilatura
from lxml import etree
from trafilatura.deduplication import LRUCache
from trafilatura.meta import reset_caches

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processors.paragraphs import (  # noqa: E402
    BoilerplatePolicy,
    normalize,
    observe,
    strip_boilerplate,
)
from processors.repeats import DEFAULT_POLICY as REPEATS  # noqa: E402
from processors.repeats import RepeatPolicy, dedup_in_page  # noqa: E402

MIN_REPEAT_CHARS = REPEATS.min_chars

BLOCKS = {"p", "head", "item", "quote", "cell", "code"}
CHOSEN = BoilerplatePolicy()
# The offline Public Suffix List snapshot bundled with tldextract: never fetched.
# The site is the registered domain, as ingest keys pages; the bundled Public Suffix List
# is used offline. *.wordpress.com is not a public suffix, so its 35 blogs pool into one
# site here: the one large site of the evaluation set, a stress test for cross-page.
DOMAIN = tldextract.TLDExtract(suffix_list_urls=())


@dataclass
class Page:
    source: str  # "fundus" or "eval"
    site: str
    story: str
    path: Path
    url: str | None
    gold: list[str] = field(default_factory=list)
    with_: list[str] = field(default_factory=list)
    without: list[str] = field(default_factory=list)
    base: list[tuple[str, str]] = field(default_factory=list)  # (tag, text), dedup off
    traf_page: list[str] | None = None  # trafilatura dedup, cache per page
    traf_global: list[str] | None = None  # trafilatura dedup, process-wide cache
    traf_third: list[str] | None = None  # same, third delivery of the page in a row

    @property
    def paras(self) -> list[str]:
        return [text for _, text in self.base]


def ws(text: str) -> str:
    return " ".join(text.split())


# --- loading -------------------------------------------------------------------------


def gold_paragraphs(entry: dict[str, Any]) -> list[str]:
    body = entry.get("body") or {}
    out = list(body.get("summary") or [])
    for section in body.get("sections") or []:
        out += (section.get("headline") or []) + (section.get("paragraphs") or [])
    return out


def version_order(key: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", key)]


def load_fundus(root: Path) -> Iterator[Page]:
    """Pages in date order per publisher. A publisher's JSON versions (V1, V1_1, V2...)
    pair with its pages sorted by date: checked by content on all 258 pages."""
    for gold_file in sorted(root.glob("*/*.json")):
        country, publisher = gold_file.parent.name, gold_file.stem
        meta = json.loads((gold_file.parent / "meta.info").read_text())
        pattern = re.compile(re.escape(publisher) + r"_\d{4}_\d\d_\d\d\.html\.gz")
        pages = sorted(p for p in gold_file.parent.iterdir() if pattern.fullmatch(p.name))
        entries = json.loads(gold_file.read_text())
        for key, path in zip(sorted(entries, key=version_order), pages, strict=True):
            entry = entries[key]
            site = f"{country}/{publisher}"
            yield Page(
                "fundus",
                site,
                story=normalize(entry.get("title") or path.name),
                path=path,
                url=meta.get(path.name, {}).get("url"),
                gold=gold_paragraphs(entry),
            )


def eval_site(url: str) -> str:
    if url.startswith("hard::") or "://" not in url:
        return url
    archived = re.search(r"web\.archive\.org/web/[^/]+/(.+)", url)
    parts = DOMAIN(archived.group(1) if archived else url)
    return parts.top_domain_under_public_suffix or parts.domain or url


def load_eval(root: Path) -> Iterator[Page]:
    for url, entry in json.loads((root / "evaldata.json").read_text()).items():
        path = root / "eval" / entry["file"]
        if not path.exists():
            path = root / "cache" / entry["file"]
        yield Page(
            "eval",
            eval_site(url),
            story=url,
            path=path,
            url=url if "://" in url else None,
            with_=entry.get("with") or [],
            without=entry.get("without") or [],
        )


# --- extraction ----------------------------------------------------------------------


def read_html(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def xml_blocks(xml: str | None) -> list[tuple[str, str]]:
    """Leaf text blocks of trafilatura's XML <main>, in document order."""
    if not xml:
        return []
    main = etree.fromstring(xml.encode("utf-8")).find("main")
    if main is None:
        return []
    out = []
    for el in main.iter(*BLOCKS):
        if not any(d.tag in BLOCKS for d in el.iterdescendants()):
            text = ws(" ".join(el.itertext()))
            if text:
                out.append((el.tag, text))
    return out


def extract(path: Path, url: str | None, dedup: bool | LRUCache) -> list[tuple[str, str]]:
    xml = trafilatura.extract(
        read_html(path),
        url=url,
        output_format="xml",
        include_comments=False,
        deduplicate=dedup,
    )
    return xml_blocks(xml)


def extract_per_page(path: Path, url: str | None) -> tuple[list[tuple[str, str]], list[str]]:
    base = extract(path, url, dedup=False)
    fresh = extract(path, url, dedup=LRUCache(maxsize=4096))
    return base, [text for _, text in fresh]


def extract_all(pages: list[Page]) -> None:
    """Per-page runs in two worker processes while this process runs trafilatura's
    default dedup, whose cache is process-wide: every page sees the ones before it. Then
    each news page is extracted three times in a row, as at-least-once delivery or a
    story republished under other URLs would do."""
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(extract_per_page, p.path, p.url) for p in pages]
        reset_caches()
        for page in pages:
            page.traf_global = [text for _, text in extract(page.path, page.url, dedup=True)]
        reset_caches()
        for page in pages:
            if page.source == "fundus":  # news pages only: three deliveries cost minutes
                for _ in range(3):
                    blocks = extract(page.path, page.url, dedup=True)
                page.traf_third = [text for _, text in blocks]
        for page, future in zip(pages, futures, strict=True):
            page.base, page.traf_page = future.result()


# --- strategies: pages -> output paragraphs per page ----------------------------------

Strategy = Callable[[list[Page]], list[list[str]]]


def exact_dedup(paragraphs: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for p in paragraphs:
        if p.strip() not in seen:
            seen.add(p.strip())
            out.append(p)
    return out


def in_page(min_chars: int) -> Strategy:
    policy = RepeatPolicy(min_chars=min_chars)
    return lambda pages: [dedup_in_page(p.paras, policy=policy).paragraphs for p in pages]


def cross_page(policy: BoilerplatePolicy, by_story: bool = True, repeat: int = 1) -> Strategy:
    """In-page dedup at the chosen floor, then site boilerplate; ``repeat`` delivers each
    page that many times (at-least-once) and keeps the last answer."""

    def run(pages: list[Page]) -> list[list[str]]:
        state: dict[str, Any] = {}
        out = []
        for now, page in enumerate(pages):
            story = page.story if by_story else str(page.path)
            unique = dedup_in_page(page.paras).paragraphs
            for _ in range(repeat):
                kept, _ = strip_boilerplate(page.site, story, unique, state, now, policy)
                observe(page.site, story, unique, state, now, policy)
            out.append(kept)
        return out

    return run


def strategies() -> dict[str, Strategy]:
    loose = dict(window_seconds=1e9, max_refs=8)
    chosen = f"ours cross-page {CHOSEN.min_stories} stories >={CHOSEN.min_chars}"
    return {
        "naive exact in-page": lambda pages: [exact_dedup(p.paras) for p in pages],
        "trafilatura dedup, cache per page": lambda pages: [p.traf_page or [] for p in pages],
        "trafilatura dedup=True (process cache)": lambda pages: [
            p.traf_global or [] for p in pages
        ],
        "  same, 3rd delivery of each page (fundus)": lambda pages: [
            p.paras if p.traf_third is None else p.traf_third for p in pages
        ],
        **{f"ours in-page >={n} chars": in_page(n) for n in (0, 10, 20, 30, 40, 50, 60, 100)},
        "naive cross-page: seen on an earlier page": cross_page(
            BoilerplatePolicy(min_stories=1, min_chars=0, **loose), by_story=False
        ),
        "ours cross-page 1 story >=0 chars": cross_page(
            BoilerplatePolicy(min_stories=1, min_chars=0, **loose)
        ),
        **{
            f"ours cross-page 1 story >={n} chars": cross_page(
                BoilerplatePolicy(min_stories=1, min_chars=n, **loose)
            )
            for n in (10, 20, 30)
        },
        "ours cross-page 2 stories >=20 chars": cross_page(
            BoilerplatePolicy(min_stories=2, min_chars=20, **loose)
        ),
        chosen: cross_page(CHOSEN),
        chosen + ", each page twice": cross_page(CHOSEN, repeat=2),
    }


# --- measures ------------------------------------------------------------------------


def occurrences(paragraphs: list[str], gold: str) -> int:
    """How many (normalised) paragraphs hold this (normalised) gold paragraph: equal to it
    or, for gold long enough not to match by accident, containing it (extraction may
    merge two gold paragraphs into one block)."""
    if len(gold) < 20:
        return paragraphs.count(gold)
    return sum(1 for p in paragraphs if gold in p)


def fundus_losses(page: Page, out: list[str]) -> tuple[int, int, list[str]]:
    """(gold occurrences lost, gold texts lost, which) relative to the baseline."""
    base = [normalize(p) for p in page.paras]
    after = [normalize(p) for p in out]
    occ_lost, text_lost, which = 0, 0, []
    for gold, wanted in Counter(normalize(g) for g in page.gold if normalize(g)).items():
        before, now = occurrences(base, gold), occurrences(after, gold)
        lost = min(wanted, before) - min(wanted, now)
        if lost > 0:
            occ_lost += lost
            which.append(gold)
            text_lost += now == 0
    return occ_lost, text_lost, which


def snippets_gone(page: Page, snippets: list[str], out: list[str]) -> int:
    before, after = ws(" ".join(page.paras)), ws(" ".join(out))
    return sum(1 for s in snippets if ws(s) in before and ws(s) not in after)


def removed(page: Page, out: list[str]) -> list[str]:
    return list((Counter(page.paras) - Counter(out)).elements())


@dataclass
class Row:
    removed: int = 0
    removed_boiler: int = 0
    gold_occ_lost: int = 0
    gold_text_lost: int = 0
    with_lost: int = 0
    without_removed: int = 0
    empty: int = 0
    examples: list[str] = field(default_factory=list)


def measure(pages: list[Page], outputs: list[list[str]]) -> tuple[Row, Row]:
    fundus, evals = Row(), Row()
    for page, out in zip(pages, outputs, strict=True):
        gone = removed(page, out)
        row = fundus if page.source == "fundus" else evals
        row.removed += len(gone)
        row.empty += bool(page.paras) and not out
        if page.source == "fundus":
            gold_text = ws("\n".join(page.gold))
            row.removed_boiler += sum(1 for r in gone if ws(r) not in gold_text)
            occ, text, which = fundus_losses(page, out)
            row.gold_occ_lost += occ
            row.gold_text_lost += text
            row.examples += [f"{page.site}: {w[:90]}" for w in which]
        else:
            row.with_lost += snippets_gone(page, page.with_, out)
            row.without_removed += snippets_gone(page, page.without, out)
            row.removed_boiler += sum(1 for r in gone if not any(ws(w) in r for w in page.with_))
    return fundus, evals


# --- reports -------------------------------------------------------------------------

BUCKETS = ((0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60), (60, 100), (100, 10**9))


def print_strategies(pages: list[Page], show: int) -> None:
    print("\n## What each strategy removes (relative to trafilatura, deduplicate=False)\n")
    header = (
        f"{'strategy':44} | {'fundus: removed':>15} {'not gold':>8} {'gold occ lost':>13} "
        f"{'gold txt lost':>13} | {'eval: removed':>13} {'no with':>7} {'with lost':>9} "
        f"{'without gone':>12} {'emptied':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, strategy in strategies().items():
        fundus, evals = measure(pages, strategy(pages))
        print(
            f"{name:44} | {fundus.removed:15} {fundus.removed_boiler:8} "
            f"{fundus.gold_occ_lost:13} {fundus.gold_text_lost:13} | {evals.removed:13} "
            f"{evals.removed_boiler:7} {evals.with_lost:9} {evals.without_removed:12} "
            f"{fundus.empty + evals.empty:7}"
        )
        for example in fundus.examples[:show]:
            print(f"{'':6}gold lost: {example}")


def repeat_rows(pages: list[Page]) -> Iterator[tuple[int, str, str, bool, str]]:
    """Every in-page repeat (normalised, any length): (length, tag, source, real, text).
    ``real``: fundus gold repeats it as often, or (eval) it holds a ``with`` snippet."""
    for page in pages:
        counts: Counter[str] = Counter()
        for tag, text in page.base:
            norm = normalize(text)
            counts[norm] += 1
            if counts[norm] == 1:
                continue
            if page.source == "fundus":
                real = occurrences([normalize(g) for g in page.gold], norm) >= counts[norm]
            else:
                real = any(ws(w) in text for w in page.with_)
            yield len(norm), tag, page.source, real, text


def print_repeat_lengths(pages: list[Page], show: int) -> None:
    print("\n## In-page repeats by normalised length (what a min_chars floor keeps)\n")
    print(f"{'length':>10} | {'repeats':>7} {'cell/item':>9} {'fundus':>6} {'real':>4} | examples")
    rows = list(repeat_rows(pages))
    for low, high in BUCKETS:
        bucket = [r for r in rows if low <= r[0] < high]
        examples = sorted({f"{'*' if r[3] else ''}{r[1]}:{r[4][:40]}" for r in bucket})
        print(
            f"{f'{low}-{high - 1}' if high < 10**9 else f'{low}+':>10} | {len(bucket):7} "
            f"{sum(1 for r in bucket if r[1] in ('cell', 'item')):9} "
            f"{sum(1 for r in bucket if r[2] == 'fundus'):6} {sum(1 for r in bucket if r[3]):4} | "
            + "; ".join(examples[:show])
        )


def print_recurrences(pages: list[Page]) -> None:
    print("\n## Paragraphs on two or more stories of one site (what cross-page could remove)\n")
    by_site: dict[str, list[Page]] = defaultdict(list)
    for page in pages:
        by_site[page.site].append(page)
    sizes = Counter(len(v) for v in by_site.values())
    print(f"sites by number of pages: {dict(sorted(sizes.items()))}")
    for site, group in sorted(by_site.items()):
        stories: dict[str, set[str]] = defaultdict(set)
        for page in group:
            for text in page.paras:
                stories[normalize(text)].add(page.story)
        gold = {normalize(g) for page in group for g in page.gold}
        for norm, seen in stories.items():
            if len(seen) >= 2 and norm:
                mark = "GOLD" if norm in gold else "    "
                print(f"  {site:26} {len(seen)} stories {len(norm):4} chars {mark} {norm[:70]!r}")


def print_cross_page_removals(pages: list[Page]) -> None:
    """Each paragraph cross-page removes beyond in-page dedup, at the loosest policy."""
    policy = BoilerplatePolicy(min_stories=1, window_seconds=1e9)
    print(f"\n## Removed as boilerplate beyond in-page dedup at {policy}\n")
    after_in_page = in_page(MIN_REPEAT_CHARS)(pages)
    after_cross = cross_page(policy)(pages)
    for page, before, after in zip(pages, after_in_page, after_cross, strict=True):
        gold = {normalize(g) for g in page.gold}
        for text in (Counter(before) - Counter(after)).elements():
            mark = "GOLD" if normalize(text) in gold else "    "
            print(f"  {page.site:26} {mark} {text[:90]!r}")


def gold_run(pages: list[Page], policy: BoilerplatePolicy, by_story: bool) -> tuple[int, int]:
    """In-page then cross-page dedup over the gold paragraphs themselves (the test):
    (gold occurrences removed, distinct gold texts with no copy left)."""
    state: dict[str, Any] = {}
    occ, lost = 0, 0
    for now, page in enumerate(p for p in pages if p.source == "fundus"):
        story = page.story if by_story else str(page.path)
        in_page = dedup_in_page(page.gold)
        unique, repeats = in_page.paragraphs, in_page.removed
        kept, gone = strip_boilerplate(page.site, story, unique, state, now, policy)
        observe(page.site, story, unique, state, now, policy)
        occ += repeats + len(gone)
        lost += len({normalize(g) for g in page.gold} - {normalize(k) for k in kept})
    return occ, lost


def print_gold_runs(pages: list[Page]) -> None:
    print("\n## Over the fundus gold paragraphs themselves (in-page, then cross-page)\n")
    loose = dict(window_seconds=1e9)
    runs = {
        f"chosen ({CHOSEN.min_stories} stories, >={CHOSEN.min_chars} chars)": (CHOSEN, True),
        "1 story, >=20 chars": (BoilerplatePolicy(min_stories=1, **loose), True),
        "1 story, >=0 chars": (BoilerplatePolicy(min_stories=1, min_chars=0, **loose), True),
        "1 page (page ids), >=0 chars": (
            BoilerplatePolicy(min_stories=1, min_chars=0, **loose),
            False,
        ),
    }
    for name, (policy, by_story) in runs.items():
        occ, lost = gold_run(pages, policy, by_story)
        print(f"  {name:34} gold occurrences removed {occ:4}, gold texts lost {lost:4}")


def print_baseline(pages: list[Page]) -> None:
    fundus = [p for p in pages if p.source == "fundus"]
    evals = [p for p in pages if p.source == "eval"]
    found = sum(1 for p in fundus for g in p.gold if ws(g) and ws(g) in ws(" ".join(p.paras)))
    print(f"fundus: {len(fundus)} pages, {sum(len(p.paras) for p in fundus)} paragraphs, ")
    print(f"        {sum(len(p.gold) for p in fundus)} gold paragraphs, {found} found in output")
    text = {id(p): ws(" ".join(p.paras)) for p in evals}
    wf = sum(1 for p in evals for s in p.with_ if ws(s) in text[id(p)])
    wo = sum(1 for p in evals for s in p.without if ws(s) in text[id(p)])
    print(f"eval:   {len(evals)} pages, {sum(len(p.paras) for p in evals)} paragraphs, ")
    print(f"        {wf} 'with' snippets found, {wo} 'without' snippets found (boilerplate)")
    print(f"in-page floor in processors.paragraphs: MIN_REPEAT_CHARS = {MIN_REPEAT_CHARS}")
    print(f"chosen cross-page policy: {CHOSEN}")


# --- main ----------------------------------------------------------------------------


def load(data: Path, cache: Path | None, limit: int | None) -> list[Page]:
    if cache and cache.exists():
        pages: list[Page] = pickle.loads(cache.read_bytes())
        return pages
    extraction = data / "extraction"
    pages = [*load_fundus(extraction / "fundus"), *load_eval(extraction / "trafilatura-eval")]
    pages = pages[:limit] if limit else pages
    started = time.monotonic()
    extract_all(pages)
    print(f"extracted {len(pages)} pages in {time.monotonic() - started:.0f} s", file=sys.stderr)
    if cache:
        cache.write_bytes(pickle.dumps(pages))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, help="pickle extraction here (outside the repo)")
    parser.add_argument("--limit", type=int, help="only the first N pages (a quick look)")
    parser.add_argument("--show", type=int, default=3, help="examples per row")
    args = parser.parse_args()
    if not (args.data / "extraction").exists():
        sys.exit(f"no real-world data at {args.data} (expected ../shared/data beside the repo)")
    pages = load(args.data, args.cache, args.limit)
    print_baseline(pages)
    print_strategies(pages, args.show)
    print_repeat_lengths(pages, args.show)
    print_recurrences(pages)
    print_cross_page_removals(pages)
    print_gold_runs(pages)


if __name__ == "__main__":
    main()
