"""The official client against the real node: index, search with highlighting, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.stack


def test_index_search_delete(es: Any, index_factory: Callable[[str], str]) -> None:
    index = index_factory("smoke")
    es.indices.create(
        index=index,
        mappings={"properties": {"text": {"type": "text"}, "site": {"type": "keyword"}}},
    )
    es.index(
        index=index, id="a1", document={"text": "The port strike in Rotterdam ended", "site": "x"}
    )
    es.index(index=index, id="a2", document={"text": "Central bank holds rates", "site": "y"})
    es.indices.refresh(index=index)

    found = es.search(
        index=index, query={"match": {"text": "strike"}}, highlight={"fields": {"text": {}}}
    )
    hits = found["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["a1"]
    assert "<em>strike</em>" in hits[0]["highlight"]["text"][0]

    facets = es.search(index=index, size=0, aggs={"sites": {"terms": {"field": "site"}}})
    assert {b["key"] for b in facets["aggregations"]["sites"]["buckets"]} == {"x", "y"}

    es.delete(index=index, id="a1", refresh=True)
    assert es.count(index=index)["count"] == 1


def test_node_is_the_pinned_version(es: Any) -> None:
    from deploy.stack.artifacts import pinned_versions

    # GET / (es.info) is not in the minimal distribution; the nodes API is.
    nodes = es.nodes.info(node_id="_local")["nodes"]
    assert [n["version"] for n in nodes.values()] == [pinned_versions().elasticsearch]
