"""What the stream has learnt about names: the label most articles gave each one.

A tagger labels a name from its article alone, and an article may not say enough: a
country named only as "Estmark's road traffic" or "Estmark signed the plan" is as likely
an organisation to it. Over many articles the same name is mostly labelled right, so
newsflow keeps, per name, the articles' votes for each label, and once a name has enough
votes with a clear majority, its entities are shown with that label in every article that
follows ("a name tagged PERSON in forty articles and ORG in two is a person").

The flow (processors/app.py; the benchmarks run ``in_order``, the same without Kafka):
the enrich agent sends one vote per entity of each article,
the label the article itself gave it (after the article's own repairs, never the learnt
label, which would only vote for itself), to ``<prefix>.names`` keyed by the name; the
``names`` agent folds them into a table partitioned by name (``vote``) and publishes each
name whose settled label changes to the compacted ``<prefix>.labels`` topic; every worker
keeps a copy of that topic (processors/follow.py) and relabels from it (``relabel``).
NEWSFLOW_NER_LEARN_VOTES=0 turns it off.

These functions are pure, and the table's values are plain JSON:

    {"w": {"LOC": 11.2, "ORG": 4.9}, "t": 1764000000.0, "ids": ["<article id>", ...]}

* Votes decay with event time (half-life ``Policy.half_life``): what a name is called
  this month counts more than last year's, and a name no article uses any more fades
  until the sweep forgets it (``expired``), which bounds the table.
* The last ``Policy.keep_ids`` article ids are kept per name, so an article delivered
  twice (a worker crashed before committing) does not vote twice; an older redelivery is
  out of that window and counts once more, a small bias in a majority of many.
* Measured in stream order (bench/ner_conll.py and bench/ner_demo.py, both with
  ``--consensus``): at 10 votes and a share of 0.75, CoNLL-2003 development F1 is
  unchanged (0.918) and the demo's wrong labels fall from 17 to 13; at 5 votes and 0.6,
  CoNLL loses 0.002, as its sports pages rightly give one name two labels (a country and
  its team).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from newsflow.records import Entity

State = dict[str, Any]


@dataclass(frozen=True)
class Policy:
    votes: int = 10  # article votes before a name's label is settled; 0 turns learning off
    share: float = 0.75  # of the decayed votes, for the leading label
    half_life: float = 30 * 86400.0  # seconds of event time
    keep_ids: int = 16  # recent article ids per name (a redelivery does not vote twice)
    forget_below: float = 0.25  # decayed votes under which the sweep forgets a name

    def __post_init__(self) -> None:
        if self.votes < 0 or not 0.5 <= self.share <= 1 or self.half_life <= 0:
            raise ValueError("votes >= 0, share from 0.5 to 1 and a positive half-life")

    @property
    def on(self) -> bool:
        return self.votes > 0


def key(text: str) -> str:
    """The table's key of a name: its case and apostrophes folded, as within an article
    (processors.entities groups forms that way)."""
    return text.replace("\u2019", "'").casefold()


def vote(state: State | None, label: str, article_id: str, at: float, policy: Policy) -> State:
    """``state`` with the article's vote for ``label`` at event time ``at``; unchanged (the
    same object) if this article already voted."""
    if state is not None and article_id in state["ids"]:
        return state
    weights = decayed(state, at, policy)
    weights[label] = weights.get(label, 0.0) + 1.0
    ids = [*(state["ids"] if state else []), article_id][-policy.keep_ids :]
    last = max(at, state["t"]) if state else at
    return {"w": weights, "t": last, "ids": ids}


def decayed(state: State | None, at: float, policy: Policy) -> dict[str, float]:
    """The votes as they count at time ``at`` (an earlier ``at`` than the last vote's, an
    article that arrived late, does not make them grow)."""
    if state is None:
        return {}
    factor = math.pow(0.5, max(0.0, at - state["t"]) / policy.half_life)
    return {label: weight * factor for label, weight in state["w"].items()}


def settled(state: State | None, policy: Policy) -> str | None:
    """The name's label if enough articles agree on it, else None."""
    if state is None or not policy.on:
        return None
    weights: dict[str, float] = state["w"]
    total = sum(weights.values())
    # Votes a few seconds apart have decayed by a millionth: they still count as whole.
    if total < policy.votes - 1e-3:
        return None
    label, weight = max(weights.items(), key=lambda item: (item[1], item[0]))
    return label if weight / total >= policy.share - 1e-6 else None


def expired(state: State, now: float, policy: Policy) -> bool:
    return sum(decayed(state, now, policy).values()) < policy.forget_below


def votes_of(entities: Iterable[Entity]) -> list[tuple[str, str]]:
    """(key, label) of each of an article's entities: its votes."""
    return [(key(e.text), e.label) for e in entities]


def relabel(entities: list[Entity], book: Mapping[str, str]) -> list[Entity]:
    """The entities with the labels the stream has settled on for their names."""
    out = []
    for entity in entities:
        learnt = book.get(key(entity.text))
        out.append(
            entity
            if learnt in (None, entity.label)
            else entity.model_copy(update={"label": learnt})
        )
    return out


def fold(
    found: dict[str, str], key_: bytes | None, value: bytes | None, skipped: list[str]
) -> None:
    """Apply one record of the labels topic to a worker's copy (processors.follow)."""
    from newsflow.records import NameLabel, decode

    name = (key_ or b"").decode("utf-8", "replace")
    if value is None:
        found.pop(name, None)
        return
    try:
        found[name] = decode(NameLabel, value).label
    except Exception as err:
        skipped.append(f"{name!r}: {err}")


def in_order(
    articles: Iterable[tuple[str, float, list[Entity]]], policy: Policy
) -> list[list[Entity]]:
    """The entities of (article id, event time, entities) articles as the stream would
    show them, the articles coming one at a time in this order, each relabelled from the
    votes of those before it: what the worker does, without Kafka (the benchmarks and the
    tests use it)."""
    table: dict[str, State] = {}
    book: dict[str, str] = {}
    shown = []
    for article_id, at, entities in articles:
        shown.append(relabel(entities, book) if policy.on else entities)
        for name, label in votes_of(entities):
            table[name] = vote(table.get(name), label, article_id, at, policy)
            if (learnt := settled(table[name], policy)) is not None:
                book[name] = learnt
            else:
                book.pop(name, None)
    return shown
