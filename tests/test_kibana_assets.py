"""Kibana's saved objects for newsflow: deploy/kibana/newsflow.ndjson.

The file is what Kibana's saved-objects import API takes (the kibana-setup service of
docker-compose.yml posts it, deploy/kibana/import.sh): a data view over the articles alias,
saved searches, Lens charts and the overview dashboard, in the form Kibana 8.x exports and
Kibana 9.x migrates forward on import. Kibana cannot run on these machines (no Docker
engine, no Kibana build), so the file is never imported here. What Kibana would refuse, or
import and then render broken, is checked instead:

- its form, against what Kibana's source accepts (read on elastic/kibana's main branch for
  9.x): object keys, types, migration versions, attributes, embedded JSON, references;
- every field the objects use, against the mapping Elasticsearch gives the articles alias
  (processors.index's template on the real test node): it exists, and its type supports the
  use (Lens top values and sorting need an aggregatable field, a date histogram a date).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from newsflow.settings import Settings
from processors.index import alias, ensure_template, template_body
from tests.conftest import ROOT

ASSETS = ROOT / "deploy" / "kibana" / "newsflow.ndjson"
DEFAULT_PREFIX = Settings.model_fields["topic_prefix"].default
DATA_VIEW = "index-pattern"
TYPES = {DATA_VIEW, "search", "lens", "dashboard"}
KEYS = {"id", "type", "attributes", "references", "coreMigrationVersion", "typeMigrationVersion"}
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
# The Kibana version the stack runs (docker-compose.yml pins it, tests/test_compose.py checks).
KIBANA = (9, 5, 0)
# Per type, the last version before Kibana moved the type to model versions (10.x.0), read in
# Kibana's source: index-pattern's migrations end at 7.11.0 and its multi-namespace conversion
# is 8.0.0 (data_views/server/saved_objects); search's end at 7.9.3 and 8.0.0 likewise
# (saved_search/server/saved_objects); lens's at 8.9.0 (lens/server/migrations); dashboard's
# take the by-value panels' up to Lens's 8.9.0. Every Kibana since knows them and migrates
# such an object forward on import; a model version newer than the running Kibana's is refused.
NEWEST_TYPE_MIGRATION = {
    DATA_VIEW: (8, 0, 0),
    "search": (8, 0, 0),
    "lens": (8, 9, 0),
    "dashboard": (8, 9, 0),
}
# Attributes Kibana validates objects of these versions against, unknown keys refused:
# dashboard's model version 1 schema (dashboard_saved_object/schema/v1) and search's 8.8.0
# schema (saved_search/server/saved_objects/schema_legacy.ts).
ALLOWED_ATTRIBUTES = {
    "dashboard": {
        *("title", "description", "kibanaSavedObjectMeta", "timeRestore", "timeFrom"),
        *("timeTo", "refreshInterval", "controlGroupInput", "panelsJSON", "optionsJSON"),
        *("hits", "version"),
    },
    "search": {
        *("title", "description", "columns", "sort", "grid", "rowHeight", "rowsPerPage"),
        *("hideChart", "breakdownField", "kibanaSavedObjectMeta", "isTextBasedQuery"),
        *("usesAdHocDataView", "timeRestore", "timeRange", "refreshInterval", "viewMode"),
        *("hideAggregatedPreview", "hits", "version"),
    },
}
# Attributes that hold JSON in a string (a data view's field lists; searchSourceJSON,
# panelsJSON, optionsJSON, visState, uiStateJSON...).
DATA_VIEW_JSON = {"fields", "fieldFormatMap", "runtimeFieldMap", "sourceFilters", "fieldAttrs"}
DASHBOARD_COLUMNS = 48


def load(path: Path = ASSETS) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def assets() -> list[dict[str, Any]]:
    return load()


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def embedded(attributes: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(path, value) of every attribute whose value is JSON in a string."""
    for key, value in attributes.items():
        if isinstance(value, dict):
            for path, inner in embedded(value):
                yield f"{key}.{path}", inner
        elif key.endswith("JSON") or key in DATA_VIEW_JSON:
            yield key, value


def decoded(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's attributes with their embedded JSON strings parsed."""

    def parse(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: parse(v, k) for k, v in value.items()}
        if isinstance(value, str) and (key.endswith("JSON") or key in DATA_VIEW_JSON):
            return json.loads(value)
        return value

    result: dict[str, Any] = parse(obj["attributes"])
    return result


def by_type(assets: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [a for a in assets if a["type"] == type_]


def data_view(assets: list[dict[str, Any]]) -> dict[str, Any]:
    (view,) = by_type(assets, DATA_VIEW)
    return view


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = decoded(dashboard)["panelsJSON"]
    return result


def lens_layers(lens: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = decoded(lens)["state"]["datasourceStates"]["formBased"]["layers"]
    return result


# -- the form Kibana imports ----------------------------------------------------------------


def test_every_line_is_a_saved_object_kibana_can_migrate(assets: list[dict[str, Any]]) -> None:
    assert assets, f"no saved objects in {ASSETS}"
    for obj in assets:
        name = f"{obj.get('type')} {obj.get('id')}"
        assert set(obj) == KEYS, f"{name}: keys {sorted(obj)}"
        assert obj["type"] in TYPES, name
        assert isinstance(obj["attributes"], dict) and isinstance(obj["references"], list)
        for key in ("coreMigrationVersion", "typeMigrationVersion"):
            assert VERSION.match(obj[key]), f"{name}: {key}={obj[key]!r} is not x.y.z"
        assert version(obj["coreMigrationVersion"]) <= KIBANA, name
        newest = NEWEST_TYPE_MIGRATION[obj["type"]]
        assert version(obj["typeMigrationVersion"]) <= newest, f"{name}: newer than {newest}"
    ids = [(a["type"], a["id"]) for a in assets]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert len({a["id"] for a in assets}) == len(assets), "an id is used by two types"


def test_embedded_json_parses(assets: list[dict[str, Any]]) -> None:
    for obj in assets:
        found = 0
        for path, value in embedded(obj["attributes"]):
            assert isinstance(value, str), f"{obj['id']}: {path} must be JSON in a string"
            try:
                json.loads(value)
            except json.JSONDecodeError as err:
                pytest.fail(f"{obj['id']}: {path} is not JSON: {err}")
            found += 1
        if obj["type"] == "lens":  # Lens keeps its state as an object
            assert isinstance(obj["attributes"]["state"], dict), obj["id"]
        else:  # searchSourceJSON, panelsJSON, a data view's field lists
            assert found, f"{obj['id']}: no embedded JSON found"


def test_attributes_are_those_kibana_validates(assets: list[dict[str, Any]]) -> None:
    for obj in assets:
        attributes = obj["attributes"]
        assert isinstance(attributes.get("title"), str) and attributes["title"], obj["id"]
        allowed = ALLOWED_ATTRIBUTES.get(obj["type"])
        if allowed is not None:
            assert set(attributes) <= allowed, f"{obj['id']}: {set(attributes) - allowed}"


def test_every_reference_resolves(assets: list[dict[str, Any]]) -> None:
    present = {(a["type"], a["id"]) for a in assets}
    for obj in assets:
        names = [ref["name"] for ref in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: duplicate reference names"
        for ref in obj["references"]:
            assert set(ref) == {"id", "name", "type"}, f"{obj['id']}: {ref}"
            assert (ref["type"], ref["id"]) in present, f"{obj['id']}: dangling {ref}"


def ref_names(obj: dict[str, Any]) -> dict[str, str]:
    return {ref["name"]: ref["type"] for ref in obj["references"]}


def test_searches_name_the_references_they_use(assets: list[dict[str, Any]]) -> None:
    for search in by_type(assets, "search"):
        source = decoded(search)["kibanaSavedObjectMeta"]["searchSourceJSON"]
        used = [source["indexRefName"]]
        used += [f["meta"]["indexRefName"] for f in source.get("filter", [])]
        for name in used:
            assert ref_names(search).get(name) == DATA_VIEW, f"{search['id']}: {name}"


def test_lens_states_are_consistent(assets: list[dict[str, Any]]) -> None:
    for lens in by_type(assets, "lens"):
        state = decoded(lens)["state"]
        assert set(state["datasourceStates"]) == {"formBased"}, lens["id"]
        layers = lens_layers(lens)
        for layer_id, layer in layers.items():
            ref = f"indexpattern-datasource-layer-{layer_id}"
            assert ref_names(lens).get(ref) == DATA_VIEW, f"{lens['id']}: no {ref}"
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"]), lens["id"]
            for column in layer["columns"].values():
                ordered_by = column.get("params", {}).get("orderBy", {}).get("columnId")
                assert ordered_by is None or ordered_by in layer["columns"], lens["id"]
        for vis_layer in state["visualization"]["layers"]:
            columns = layers[vis_layer["layerId"]]["columns"]
            accessors = [vis_layer.get(k) for k in ("xAccessor", "splitAccessor")]
            accessors += [*vis_layer.get("accessors", []), *vis_layer.get("metrics", [])]
            accessors += vis_layer.get("primaryGroups", [])
            named = [a for a in accessors if a is not None]
            assert named and set(named) <= set(columns), f"{lens['id']}: {named}"


def overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_dashboard_panels_are_laid_out_and_referenced(assets: list[dict[str, Any]]) -> None:
    (dashboard,) = by_type(assets, "dashboard")
    found = panels(dashboard)
    assert [p["panelIndex"] for p in found] == list(dict.fromkeys(p["panelIndex"] for p in found))
    for i, panel in enumerate(found):
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= DASHBOARD_COLUMNS, panel["panelIndex"]
        assert not any(overlap(grid, other["gridData"]) for other in found[:i]), grid
        # Kibana joins a by-reference panel to its object as "<panelIndex>:<panelRefName>".
        name = f"{panel['panelIndex']}:{panel['panelRefName']}"
        assert ref_names(dashboard).get(name) == panel["type"], name


def test_the_data_view_is_the_articles_alias(assets: list[dict[str, Any]]) -> None:
    view = data_view(assets)
    assert view["attributes"]["title"] == alias(DEFAULT_PREFIX)
    assert view["attributes"]["timeFieldName"] == "published_at"
    for obj in assets:
        if obj["type"] in {"search", "lens"}:
            assert {r["id"] for r in obj["references"]} == {view["id"]}, obj["id"]


# -- what the objects show ----------------------------------------------------------------


def lens_buckets(lens: dict[str, Any]) -> set[tuple[str, str]]:
    """(operation, field) of the Lens chart's field-based columns."""
    return {
        (column["operationType"], column["sourceField"])
        for layer in lens_layers(lens).values()
        for column in layer["columns"].values()
        if column.get("sourceField", "___records___") != "___records___"
    }


def test_the_dashboard_shows_what_it_promises(assets: list[dict[str, Any]]) -> None:
    objects = {a["id"]: a for a in assets}
    (dashboard,) = by_type(assets, "dashboard")
    shown = {ref["name"].split(":")[0]: objects[ref["id"]] for ref in dashboard["references"]}
    charts = [lens_buckets(o) for o in shown.values() if o["type"] == "lens"]
    expected = [
        {("date_histogram", "published_at"), ("terms", "site_name")},
        {("terms", "persons")},
        {("terms", "organizations")},
        {("terms", "places")},
        {("terms", "language")},
        {("terms", "is_duplicate")},
    ]
    for chart in expected:
        assert any(chart <= c for c in charts), f"no dashboard panel shows {chart}"
    searches = [o for o in shown.values() if o["type"] == "search"]
    assert [s["id"] for s in searches] == ["newsflow-latest-articles"]
    latest = searches[0]["attributes"]
    assert latest["columns"] == ["title", "site_name", "url"]
    assert latest["sort"] == [["published_at", "desc"]]


@pytest.mark.parametrize("field", ["persons", "organizations", "places"])
def test_a_saved_search_per_entity_type(assets: list[dict[str, Any]], field: str) -> None:
    def exists_filters(search: dict[str, Any]) -> set[str]:
        source = decoded(search)["kibanaSavedObjectMeta"]["searchSourceJSON"]
        return {
            f["query"]["exists"]["field"]
            for f in source["filter"]
            if f["meta"]["type"] == "exists" and not f["meta"]["negate"]
        }

    matching = [s for s in by_type(assets, "search") if field in exists_filters(s)]
    assert len(matching) == 1, f"one saved search of articles with {field}"
    assert field in matching[0]["attributes"]["columns"]
    assert matching[0]["attributes"]["sort"] == [["published_at", "desc"]]


# -- every field used, against the mapping --------------------------------------------------


@dataclass(frozen=True)
class Use:
    """A field as one object uses it; ``data_type`` is the Kibana type the use declares."""

    obj: str
    field: str
    use: str
    data_type: str | None = None


KQL_FIELD = re.compile(r"([A-Za-z_@][\w.@]*)\s*:")


def query_uses(obj: str, query: dict[str, Any], filters: list[dict[str, Any]]) -> list[Use]:
    """The fields a query (KQL or Lucene ``field:value``) and filters name."""
    found = [Use(obj, f, "query") for f in KQL_FIELD.findall(str(query.get("query", "")))]
    for f in filters:
        found.append(Use(obj, f["meta"]["key"], "filter"))
        exists = f.get("query", {}).get("exists")
        if exists:
            found.append(Use(obj, exists["field"], "filter"))
    return found


def uses(assets: list[dict[str, Any]]) -> list[Use]:
    found: list[Use] = []
    for obj in assets:
        attributes, oid = decoded(obj), obj["id"]
        if obj["type"] == DATA_VIEW:
            found.append(Use(oid, attributes["timeFieldName"], "time", "date"))
            found += [Use(oid, f, "format") for f in attributes.get("fieldFormatMap", {})]
        if obj["type"] in {"search", "dashboard"}:
            source = attributes["kibanaSavedObjectMeta"]["searchSourceJSON"]
            found += query_uses(oid, source.get("query", {}), source.get("filter", []))
        if obj["type"] == "search":
            found += [Use(oid, f, "column") for f in attributes["columns"]]
            found += [Use(oid, field, "sort") for field, _ in attributes["sort"]]
        if obj["type"] == "lens":
            found += query_uses(oid, attributes["state"]["query"], attributes["state"]["filters"])
            found += lens_uses(obj)
    return found


def lens_uses(lens: dict[str, Any]) -> list[Use]:
    found = []
    for layer in lens_layers(lens).values():
        for column in layer["columns"].values():
            field = column.get("sourceField", "___records___")
            if field == "___records___":  # a count of documents: no field
                continue
            op = column["operationType"]
            use = op if op in {"terms", "date_histogram"} else "metric"
            found.append(Use(lens["id"], field, use, column.get("dataType")))
    return found


NUMBERS = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
STRINGS = {"keyword", "constant_keyword", "wildcard", "text", "match_only_text"}
AGGREGATABLE = NUMBERS | {"keyword", "constant_keyword", "boolean", "date", "date_nanos", "ip"}


@dataclass(frozen=True)
class Field:
    es_type: str
    doc_values: bool
    indexed: bool
    nested: bool  # under a nested object: plain aggregations and queries do not reach it

    @property
    def kibana_type(self) -> str:
        if self.es_type in STRINGS:
            return "string"
        if self.es_type in NUMBERS | {"unsigned_long"}:
            return "number"
        return {"date_nanos": "date"}.get(self.es_type, self.es_type)

    @property
    def aggregatable(self) -> bool:
        return self.es_type in AGGREGATABLE and self.doc_values and not self.nested


def flatten(properties: dict[str, Any], prefix: str = "", nested: bool = False) -> dict[str, Field]:
    """Every field of a mapping by its full name, multi-fields (``title.raw``) included."""
    fields: dict[str, Field] = {}
    for name, spec in properties.items():
        path, kind = f"{prefix}{name}", spec.get("type", "object")
        if "properties" in spec:
            fields |= flatten(spec["properties"], f"{path}.", nested or kind == "nested")
        if kind in {"object", "nested"}:
            continue
        for sub, sub_spec in {"": spec, **spec.get("fields", {})}.items():
            fields[f"{path}.{sub}" if sub else path] = Field(
                sub_spec["type"],
                bool(sub_spec.get("doc_values", True)),
                bool(sub_spec.get("index", True)),
                nested,
            )
    return fields


def problem(use: Use, field: Field | None) -> str | None:
    """Why the mapping does not support ``use``, or None."""
    if field is None:
        return "not in the mapping"
    if use.data_type is not None and use.data_type != field.kibana_type:
        return f"declared {use.data_type}, but Kibana sees {field.kibana_type} ({field.es_type})"
    if use.use in {"query", "filter"} and (field.nested or not field.indexed):
        return f"not searchable ({field.es_type}, nested={field.nested})"
    if use.use in {"sort", "terms", "date_histogram", "metric"} and not field.aggregatable:
        return f"not aggregatable ({field.es_type}, nested={field.nested})"
    # Lens top values take strings, booleans, numbers and IPs (its terms operation).
    if use.use == "terms" and field.kibana_type not in {"string", "boolean", "number", "ip"}:
        return f"Lens has no top values of a {field.kibana_type}"
    if use.use in {"date_histogram", "time"} and field.kibana_type != "date":
        return f"not a date ({field.es_type})"
    return None


def check_uses(assets: list[dict[str, Any]], fields: dict[str, Field]) -> None:
    found = uses(assets)
    # The walk must reach every part of the objects that names fields.
    expected = {"published_at", "site_name", "title", "url", "language", "is_duplicate"}
    assert expected | {"persons", "organizations", "places"} <= {u.field for u in found}
    problems = [
        f"{u.obj}: {u.field} ({u.use}): {why}"
        for u in found
        if (why := problem(u, fields.get(u.field))) is not None
    ]
    assert not problems, "\n".join(problems)


def test_fields_against_the_template(assets: list[dict[str, Any]]) -> None:
    """The same check as on the live node, on the template as written: runs without one."""
    properties = template_body(DEFAULT_PREFIX)["template"]["mappings"]["properties"]
    check_uses(assets, flatten(properties))


@pytest.fixture
def articles_alias(es: Any) -> Iterator[str]:
    """The articles alias of a prefix of the test's own, behind one monthly index made by the
    first write, as the index stage makes it; index and template deleted afterwards."""
    prefix = f"kib{uuid.uuid4().hex[:8]}"
    index = f"{alias(prefix)}-2026.01"
    ensure_template(es, prefix)
    try:
        es.index(index=index, document={"title": "Kibana", "published_at": "2026-01-15T08:00:00Z"})
        yield alias(prefix)
    finally:
        es.options(ignore_status=404).indices.delete(index=index)
        es.options(ignore_status=404).indices.delete_index_template(name=alias(prefix))


@pytest.mark.stack
def test_fields_against_the_live_mapping(
    assets: list[dict[str, Any]], es: Any, articles_alias: str
) -> None:
    # The data view names the default prefix's alias; this test's index has its own prefix.
    title = data_view(assets)["attributes"]["title"]
    target = title.replace(alias(DEFAULT_PREFIX), articles_alias, 1)
    assert target == articles_alias, f"the data view's title {title!r} is not the alias"
    mappings = es.indices.get_mapping(index=target).body
    assert list(mappings) == [f"{articles_alias}-2026.01"]  # the alias came from the template
    (mapping,) = (m["mappings"] for m in mappings.values())
    check_uses(assets, flatten(mapping["properties"]))
