"""Entity tagging throughput: the full spaCy pipeline against the NER-only one.

Runs ``nlp.pipe`` over the body paragraphs of the English fundus fixtures (us, uk, au, ca in
``../shared/data/extraction/fundus``) for each pipeline and batch size, and ``Tagger``
(NER-only plus normalisation) the way an agent calls it. Each run is a fresh process, so
its peak RSS (``ru_maxrss``) is its own and includes loading the model. Prints articles/s,
paragraphs/s, load time and peak RSS, the NER-only/full ratios, how many entities the two
pipelines disagree on, and time and memory for one 100,000-character paragraph.

    .venv/bin/python bench/entities_bench.py [--batch-sizes 16,64,256] [--repeat 2] [--no-long]

Timings are the best of ``--repeat`` passes, after a warm-up on a few paragraphs; on a
shared machine the ratios are steadier than the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNDUS = ROOT.parent / "shared" / "data" / "extraction" / "fundus"
ENGLISH = ("us", "uk", "au", "ca")  # countries whose fixtures are all English
PIPELINES = ("full", "ner", "tagger")
LONG = 100_000
LONG_RUNS = ("ner", "tagger")  # nlp.pipe on it whole against Tagger's batch_chars pieces


def english_bodies(root: Path, countries: tuple[str, ...] = ENGLISH) -> list[list[str]]:
    """The body paragraphs (summary, then sections) of every page of those countries."""
    bodies = []
    for country in countries:
        for path in sorted((root / country).glob("*.json")):
            for page in json.loads(path.read_text(encoding="utf-8")).values():
                body = page["body"]
                sections = (p for s in body["sections"] for p in s["paragraphs"])
                bodies.append([*body["summary"], *sections])
    return bodies


@dataclass
class Run:
    pipeline: str
    batch_size: int
    components: list[str]
    load_s: float
    seconds: float
    peak_rss_mb: float
    entities: list[tuple[int, int, int, str]]  # paragraph, start, end, label (pipe runs)


def run(pipeline: str, batch_size: int, root: Path, repeat: int, long: bool = False) -> Run:
    """One measurement, in its own process (see measure). ``long``: the text of all pages
    as one article of one paragraph, LONG characters, as a page extracted badly gives."""
    bodies = english_bodies(root)
    if long:
        bodies = [[" ".join(p for body in bodies for p in body)[:LONG]]]
    started = time.perf_counter()
    nlp, tagger = _load(pipeline, batch_size)
    load_s = time.perf_counter() - started
    paragraphs = [p for body in bodies for p in body]
    if tagger is not None:
        tagger.tag_many([(body[:3], "en") for body in bodies[:4]])  # warm-up
        seconds = _best(repeat, lambda: _tag_in_batches(tagger, bodies))
        entities: list[tuple[int, int, int, str]] = []
    else:
        list(nlp.pipe(paragraphs[:20]))  # warm-up
        seconds = _best(repeat, lambda: list(nlp.pipe(paragraphs, batch_size=batch_size)))
        entities = _entities(nlp, paragraphs, batch_size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return Run(pipeline, batch_size, list(nlp.pipe_names), load_s, seconds, peak, entities)


def _load(pipeline: str, batch_size: int) -> tuple[Any, Any]:
    import spacy

    from processors.entities import DEFAULT_MODEL, EntityOptions, Tagger, load_ner

    if pipeline == "full":
        return spacy.load(DEFAULT_MODEL), None
    if pipeline == "ner":
        return load_ner(DEFAULT_MODEL), None
    tagger = Tagger(EntityOptions(batch_size=batch_size))
    return tagger.nlp, tagger


def _tag_in_batches(tagger: Any, bodies: list[list[str]], articles: int = 16) -> None:
    # An agent hands the tagger the articles of one Faust batch at a time.
    for i in range(0, len(bodies), articles):
        tagger.tag_many([(body, "en") for body in bodies[i : i + articles]])


def _best(repeat: int, work: Any) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def _entities(nlp: Any, paragraphs: list[str], batch_size: int) -> list[tuple[int, int, int, str]]:
    docs = nlp.pipe(paragraphs, batch_size=batch_size)
    return [(i, e.start_char, e.end_char, e.label_) for i, doc in enumerate(docs) for e in doc.ents]


def measure(pipeline: str, batch_size: int, root: Path, repeat: int, long: bool = False) -> Run:
    # A fresh "spawn" process per run: nothing loaded before, so ru_maxrss is this run's.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(run, pipeline, batch_size, root, repeat, long).result()


def report_long(runs: list[Run]) -> None:
    print(f"\none paragraph of {LONG:,} characters:")
    for r in runs:
        print(f"  {r.pipeline:7} {r.seconds:6.1f} s, peak RSS {r.peak_rss_mb:5.0f} MB")


def report(runs: list[Run], articles: int, paragraphs: int) -> None:
    print(f"{articles} articles, {paragraphs} paragraphs\n")
    print(f"{'pipeline':8} {'batch':>5} {'articles/s':>10} {'paragr./s':>10} {'load s':>7} "
          f"{'peak RSS MB':>11}  components")  # fmt: skip
    for r in runs:
        print(f"{r.pipeline:8} {r.batch_size:5d} {articles / r.seconds:10.1f} "
              f"{paragraphs / r.seconds:10.1f} {r.load_s:7.2f} {r.peak_rss_mb:11.0f}  "
              f"{','.join(r.components)}")  # fmt: skip
    print()
    full = {r.batch_size: r for r in runs if r.pipeline == "full"}
    for r in runs:
        if r.pipeline != "full" and r.batch_size in full:
            base = full[r.batch_size]
            print(f"{r.pipeline} / full at batch {r.batch_size}: "
                  f"{base.seconds / r.seconds:.2f}x throughput, "
                  f"{r.peak_rss_mb / base.peak_rss_mb:.2f}x peak RSS")  # fmt: skip
    agreement(runs)


def agreement(runs: list[Run]) -> None:
    full = next((r for r in runs if r.pipeline == "full"), None)
    ner = next((r for r in runs if r.pipeline == "ner"), None)
    if full is None or ner is None:
        return
    differ = set(full.entities) ^ set(ner.entities)
    print(f"\nentities: full {len(full.entities)}, ner-only {len(ner.entities)}, "
          f"in one but not the other {len(differ)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=FUNDUS, help="fundus fixtures folder")
    parser.add_argument("--batch-sizes", default="16,64,256", help="comma-separated")
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help="full,ner,tagger")
    parser.add_argument("--repeat", type=int, default=2, help="passes per run; best counts")
    parser.add_argument(
        "--long", action=argparse.BooleanOptionalAction, default=True, help="one huge paragraph"
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"fundus fixtures not found at {args.data}")
    bodies = english_bodies(args.data)
    runs = [
        measure(pipeline, int(size), args.data, args.repeat)
        for size in args.batch_sizes.split(",")
        for pipeline in args.pipelines.split(",")
    ]
    report(runs, len(bodies), sum(len(body) for body in bodies))
    if args.long:
        report_long([measure(pipeline, 64, args.data, 1, long=True) for pipeline in LONG_RUNS])


if __name__ == "__main__":
    main()
