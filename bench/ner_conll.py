"""Entities scored the way newsflow's users see them, on the CoNLL-2003 development set.

Each document of ``../shared/data/ner/conllpp_dev.txt`` is one article whose paragraphs
are its sentences (tokens joined by spaces), tagged through newsflow's own entity API
(processors.entities.Tagger, as the enrich agent calls it). Labels are mapped to CoNLL's
four: PERSON -> PER; ORG -> ORG; GPE, LOC, FAC -> LOC; NORP, EVENT, PRODUCT, WORK_OF_ART,
LAW -> MISC; CoreNLP's own PERSON, ORG, LOC and MISC are CoNLL's. Per document:

  * a gold (name, label) pair is found when one of newsflow's entities with that label
    has the name among its forms (its text and the variants merged into it);
  * an entity of newsflow is right when one of its forms is a gold name of its label.

Precision = right / entities, recall = found / gold pairs, over all documents, overall
and per label; and articles/s of the tagging itself.

    .venv/bin/python bench/ner_conll.py [--backend corenlp|spacy] [--json] [--limit N]

Figures on this 2-core machine (216 documents, 4,246 gold pairs):

    backend   P      R      F1     PER    ORG    LOC    MISC   articles/s
    spacy     0.718  0.609  0.659  0.750  0.430  0.750  0.628  46
    corenlp   0.926  0.910  0.918  0.957  0.882  0.933  0.861  70-75

(CoreNLP through its own reader, which splits hyphenated words, gave 0.903; the repairs
of processors.entities.RULES add 0.001: --each-rule shows each.)

CoreNLP's English tagger was trained on the CoNLL-2003 training set: these are Reuters
articles of 1996, its own genre, and the development set was held out from its training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processors import name_labels  # noqa: E402
from processors.entities import (  # noqa: E402
    BACKENDS,
    RULES,
    EntityOptions,
    Tagger,
)

DEV = ROOT.parent / "shared" / "data" / "ner" / "conllpp_dev.txt"
LABELS = ("PER", "ORG", "LOC", "MISC")
TO_CONLL = {
    "PERSON": "PER",
    "ORG": "ORG",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "NORP": "MISC",
    "EVENT": "MISC",
    "PRODUCT": "MISC",
    "WORK_OF_ART": "MISC",
    "LAW": "MISC",
    "MISC": "MISC",
}


@dataclass
class Document:
    sentences: list[str] = field(default_factory=list)
    gold: set[tuple[str, str]] = field(default_factory=set)  # (name, label)


def read(path: Path) -> list[Document]:
    """Documents (split at -DOCSTART-), sentences (split at blank lines) and the gold
    names from the IOB column."""
    docs: list[Document] = []
    words: list[str] = []
    span: list[str] = []
    label = ""

    def close_span() -> None:
        nonlocal span, label
        if span and docs:
            docs[-1].gold.add((" ".join(span), label))
        span, label = [], ""

    def close_sentence() -> None:
        nonlocal words
        close_span()
        if words and docs:
            docs[-1].sentences.append(" ".join(words))
        words = []

    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            close_sentence()
            continue
        if parts[0] == "-DOCSTART-":
            close_sentence()
            docs.append(Document())
            continue
        word, tag = parts[0], parts[-1]
        words.append(word)
        if tag == "O":
            close_span()
        elif tag.startswith("B-") or tag[2:] != label:
            close_span()
            span, label = [word], tag[2:]
        else:
            span.append(word)
    close_sentence()
    return [d for d in docs if d.sentences]


@dataclass
class Score:
    entities: Counter[str] = field(default_factory=Counter)
    right: Counter[str] = field(default_factory=Counter)
    gold: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)

    def add(self, predicted: list[tuple[str, set[str]]], gold: set[tuple[str, str]]) -> None:
        """``predicted``: (label, forms) per entity of newsflow, labels mapped."""
        for label, forms in predicted:
            self.entities[label] += 1
            self.right[label] += any((f, label) in gold for f in forms)
        for name, label in gold:
            self.gold[label] += 1
            self.found[label] += any(lab == label and name in forms for lab, forms in predicted)

    def prf(self, label: str | None = None) -> tuple[float, float, float]:
        keys = [label] if label else list(LABELS)
        e = sum(self.entities[k] for k in keys)
        r = sum(self.right[k] for k in keys)
        g = sum(self.gold[k] for k in keys)
        f = sum(self.found[k] for k in keys)
        p = r / e if e else 0.0
        rec = f / g if g else 0.0
        return p, rec, (2 * p * rec / (p + rec) if p + rec else 0.0)


def scored(tagger: Tagger, docs: list[Document]) -> Score:
    score = Score()
    results = tagger.tag_many([(d.sentences, "en") for d in docs])
    for doc, result in zip(docs, results, strict=True):
        predicted = [
            (TO_CONLL[e.label], {e.text, *e.variants})
            for e in result.entities
            if e.label in TO_CONLL
        ]
        score.add(predicted, doc.gold)
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="only the first N documents")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--backend", choices=BACKENDS, default="corenlp", help="the tagger")
    parser.add_argument(
        "--rules",
        default=",".join(RULES),
        help=f"label repairs to apply, comma-separated, '' for none (default: {','.join(RULES)})",
    )
    parser.add_argument(
        "--each-rule", action="store_true", help="F1 with no rule, then with each rule alone"
    )
    parser.add_argument(
        "--consensus",
        action="store_true",
        help="F1 with labels learnt across documents (processors.name_labels), in their "
        "order, at several thresholds",
    )
    args = parser.parse_args()
    if not DEV.exists():
        sys.exit(f"skipped: the CoNLL development set is not at {DEV}")
    docs = read(DEV)[: args.limit]
    started = time.perf_counter()
    rules = tuple(r for r in args.rules.split(",") if r)
    tagger = Tagger(EntityOptions(backend=args.backend, rules=rules))
    loaded = time.perf_counter()
    score = scored(tagger, docs)
    tagged = time.perf_counter()
    if args.consensus:
        results = tagger.tag_many([(d.sentences, "en") for d in docs])
        for votes, share in [(0, 0.75), (5, 0.6), (5, 0.75), (10, 0.75), (20, 0.75)]:
            shown = name_labels.in_order(
                [(str(i), float(i), r.entities) for i, r in enumerate(results)],
                name_labels.Policy(votes=votes, share=share),
            )
            row = Score()
            for doc, entities in zip(docs, shown, strict=True):
                row.add([(TO_CONLL[e.label], {e.text, *e.variants}) for e in entities], doc.gold)
            f1s = " ".join(f"{lab} {row.prf(lab)[2]:.3f}" for lab in LABELS)
            name = f"{votes} votes, share {share}" if votes else "nothing learnt"
            print(f"{name:24} F1 {row.prf()[2]:.3f}  {f1s}")
        return
    if args.each_rule:
        for chosen in [(), *((r,) for r in RULES), tuple(RULES)]:
            tagger.options = replace(tagger.options, rules=chosen)
            row = scored(tagger, docs)
            f1s = " ".join(f"{lab} {row.prf(lab)[2]:.3f}" for lab in LABELS)
            print(f"{'+'.join(chosen) or 'no rule':48} F1 {row.prf()[2]:.3f}  {f1s}")
        return
    report = {
        "backend": args.backend,
        "documents": len(docs),
        "gold_pairs": sum(score.gold.values()),
        "entities": sum(score.entities.values()),
        "overall": dict(zip(("precision", "recall", "f1"), score.prf(), strict=True)),
        "labels": {
            lab: dict(zip(("precision", "recall", "f1"), score.prf(lab), strict=True))
            | {"entities": score.entities[lab], "gold": score.gold[lab]}
            for lab in LABELS
        },
        "load_s": loaded - started,
        "articles_per_s": len(docs) / (tagged - loaded),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"{args.backend}: {report['documents']} documents, "
        f"{report['gold_pairs']} gold (name, label) pairs, "
        f"{report['entities']} entities tagged; model loaded in {report['load_s']:.1f} s, "
        f"{report['articles_per_s']:.1f} articles/s"
    )
    print(f"{'label':6} {'P':>6} {'R':>6} {'F1':>6} {'tagged':>7} {'gold':>6}")
    for lab, row in report["labels"].items():
        print(
            f"{lab:6} {row['precision']:6.3f} {row['recall']:6.3f} {row['f1']:6.3f} "
            f"{row['entities']:7d} {row['gold']:6d}"
        )
    o = report["overall"]
    print(f"{'all':6} {o['precision']:6.3f} {o['recall']:6.3f} {o['f1']:6.3f}")


if __name__ == "__main__":
    main()
