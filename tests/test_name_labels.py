"""Labels learnt across articles (processors.name_labels), as pure functions."""

from __future__ import annotations

import pytest

from newsflow.records import Entity
from processors.name_labels import Policy, decayed, expired, in_order, key, relabel, settled, vote

DAY = 86400.0
POLICY = Policy(votes=3, share=0.75, half_life=10 * DAY, keep_ids=4)


def entity(text: str, label: str) -> Entity:
    return Entity(text=text, label=label, count=1, first_offset=0, paragraphs=[0], variants=[text])


def votes(*labels: str, start: float = 0.0) -> dict | None:
    state = None
    for i, label in enumerate(labels):
        state = vote(state, label, f"a{i}", start + i, POLICY)
    return state


def test_a_name_settles_on_the_label_most_articles_give_it() -> None:
    assert settled(votes("LOC", "LOC"), POLICY) is None  # too few votes yet
    assert settled(votes("LOC", "LOC", "ORG", "LOC"), POLICY) == "LOC"
    assert settled(votes("LOC", "ORG", "LOC", "ORG"), POLICY) is None  # no clear majority
    assert settled(votes("LOC", "LOC", "LOC"), Policy(votes=0)) is None  # learning off


def test_an_article_delivered_twice_votes_once() -> None:
    state = vote(None, "ORG", "a1", 0.0, POLICY)
    again = vote(state, "ORG", "a1", 5.0, POLICY)
    assert again is state
    # Past the window of kept ids, a redelivery counts once more.
    for i in range(2, 7):
        state = vote(state, "LOC", f"a{i}", float(i), POLICY)
    assert "a1" not in state["ids"] and len(state["ids"]) == POLICY.keep_ids


def test_votes_fade_with_event_time_and_old_names_are_forgotten() -> None:
    state = votes("ORG", "ORG", "ORG")
    assert settled(state, POLICY) == "ORG"
    ten_days_later = 2 + 10 * DAY
    assert decayed(state, ten_days_later, POLICY)["ORG"] == pytest.approx(1.5, rel=1e-3)
    # A month of LOC votes later, the name is a place.
    for i in range(3):
        state = vote(state, "LOC", f"b{i}", 30 * DAY + i, POLICY)
    assert settled(state, POLICY) == "LOC"
    assert not expired(state, 30 * DAY, POLICY)
    assert expired(state, 120 * DAY, POLICY)
    # A late article (older event time) does not make the votes grow.
    assert decayed(state, 0.0, POLICY) == state["w"]


def test_relabel_only_names_the_stream_has_settled() -> None:
    found = [entity("Estmark", "ORG"), entity("Kessling", "LOC"), entity("Ingrid Falk", "PERSON")]
    book = {key("ESTMARK"): "LOC", key("Kessling"): "LOC"}
    assert [(e.text, e.label) for e in relabel(found, book)] == [
        ("Estmark", "LOC"),
        ("Kessling", "LOC"),
        ("Ingrid Falk", "PERSON"),
    ]


def test_in_order_learns_from_earlier_articles_only() -> None:
    articles = [(f"a{i}", float(i), [entity("Estmark", "LOC")]) for i in range(3)]
    articles.append(("a3", 3.0, [entity("Estmark", "ORG")]))
    articles.insert(0, ("first", -1.0, [entity("Estmark", "ORG")]))
    shown = in_order(articles, POLICY)
    labels = [entities[0].label for entities in shown]
    # The first ORG is shown as tagged (nothing learnt yet); the last, after three LOC
    # votes of four (0.75), as a place.
    assert labels == ["ORG", "LOC", "LOC", "LOC", "LOC"]
    assert [e[0].label for e in in_order(articles, Policy(votes=0))][-1] == "ORG"


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Policy(share=0.4)
    with pytest.raises(ValueError):
        Policy(votes=-1)
