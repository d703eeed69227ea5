"""Entities of the demo's own articles against the names each article file lists.

Every article of ``newsflow/demo/sites/*/articles`` lists the persons, organisations and
places its text mentions (its ``entities:``). Its headline, standfirst and body go through
newsflow's Tagger as the enrich agent calls it; then, for persons, organisations and
places (PERSON, ORG, LOC and spaCy's GPE/FAC):

  * right: one of the entity's forms is a listed name of its kind;
  * wrong label: one of its forms is a listed name of another kind ("Estmark", a country,
    as an organisation), the errors an analyst sees in the facets;
  * not listed: none of its forms is listed (the lists are not exhaustive: "Port of
    Kessling" is a real organisation no list names, a "Harbour" person is not);
  * missed: a listed name no entity of its kind has among its forms.

The demo's names are fictional, so no tagger has seen them: what the article says about
a name is all there is to go on, which is what the label repairs use.

    .venv/bin/python bench/ner_demo.py [--backend corenlp|spacy] [--each-rule] [--errors]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsflow.demo._content import load_sites  # noqa: E402
from processors import name_labels  # noqa: E402
from processors.entities import BACKENDS, RULES, EntityOptions, Tagger  # noqa: E402

KINDS = {"PERSON": "persons", "ORG": "organisations", "LOC": "places", "GPE": "places"}
KINDS["FAC"] = "places"


def score(
    tagger: Tagger, learning: name_labels.Policy | None = None
) -> tuple[Counter[str], Counter[tuple[str, str, str]]]:
    """Totals (right, wrong label, not listed, missed) and each error, over the articles;
    with ``learning``, labels learnt across the articles in publication order."""
    totals: Counter[str] = Counter()
    errors: Counter[tuple[str, str, str]] = Counter()
    sites = load_sites()
    pairs = sorted(
        ((a, site.name) for site in sites for a in site.articles), key=lambda p: p[0].published
    )
    articles = [a for a, _ in pairs]
    docs = [([a.headline, a.standfirst, *a.paragraphs], a.lang) for a in articles]
    results = tagger.tag_many(docs, [name for _, name in pairs])
    shown = [r.entities for r in results]
    if learning is not None:
        pairs_of = zip(articles, results, strict=True)
        stream = [(a.ref, a.published.timestamp(), r.entities) for a, r in pairs_of]
        shown = name_labels.in_order(stream, learning)
    for article, entities in zip(articles, shown, strict=True):
        listed = {kind: set(getattr(article.entities, kind)) for kind in set(KINDS.values())}
        every = set(article.entities.all())
        seen: dict[str, set[str]] = {kind: set() for kind in listed}
        for entity in entities:
            kind = KINDS.get(entity.label)
            if kind is None:
                continue
            forms = {entity.text, *entity.variants}
            if forms & listed[kind]:
                totals["right"] += 1
                seen[kind] |= forms
            elif forms & every:
                totals["wrong label"] += 1
                errors[("wrong label", kind, entity.text)] += 1
            else:
                totals["not listed"] += 1
                errors[("not listed", kind, entity.text)] += 1
        for kind, names in listed.items():
            for name in names - seen[kind]:
                totals["missed"] += 1
                errors[("missed", kind, name)] += 1
    return totals, errors


def line(totals: Counter[str]) -> str:
    keys = ("right", "wrong label", "not listed", "missed")
    return "  ".join(f"{k} {totals[k]:4d}" for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, default="corenlp", help="the tagger")
    parser.add_argument(
        "--each-rule", action="store_true", help="no rule, then each rule alone, then all"
    )
    parser.add_argument("--errors", action="store_true", help="list the errors, most first")
    parser.add_argument(
        "--consensus",
        action="store_true",
        help="with labels learnt across the articles (processors.name_labels), at several "
        "thresholds",
    )
    args = parser.parse_args()
    tagger = Tagger(EntityOptions(backend=args.backend))
    if args.consensus:
        for votes, share in [(0, 0.75), (5, 0.6), (5, 0.75), (10, 0.75), (20, 0.75)]:
            policy = name_labels.Policy(votes=votes, share=share)
            name = f"{votes} votes, {share}" if votes else "nothing learnt"
            print(f"{name:16} {line(score(tagger, policy)[0])}")
        return
    if args.each_rule:
        for chosen in [(), *((r,) for r in RULES), tuple(RULES)]:
            tagger.options = replace(tagger.options, rules=chosen)
            name = "+".join(chosen) if len(chosen) < 2 else "all rules"
            print(f"{name:14} {line(score(tagger)[0])}")
        return
    totals, errors = score(tagger)
    print(f"{args.backend}: {line(totals)}")
    if args.errors:
        for (what, kind, name), n in errors.most_common():
            print(f"  {n:3d}  {what:11} {kind:13} {name}")


if __name__ == "__main__":
    main()
