"""The stage functions with plain dicts as tables: site namespacing and sweeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from newsflow.demo.sites import EXPECTED, render
from newsflow.records import RawPage, Source, SourceKind
from processors import clean
from processors.stages import (
    PipelineOptions,
    SiteState,
    deduplicate,
    extract,
    note_site,
    sweep_sites,
)

OPTIONS = PipelineOptions()
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def page(site_key: str, path: str, when: datetime) -> RawPage:
    rendered = render(site_key, path)
    assert rendered is not None
    url = f"https://{site_key}.example{path}"
    return RawPage(
        url=url,
        canonical_url=url,
        site=f"{site_key}.example",
        fetched_at=when,
        content_type=rendered[1],
        body=rendered[2],
        source=Source(kind=SourceKind.DEMO),
    )


def run_site(
    site_key: str, tables: tuple[dict[str, Any], dict[str, Any]], when: datetime
) -> list[int]:
    removed = []
    for a in [a for a in EXPECTED.articles if a.site == site_key]:
        p = page(site_key, a.path, when)
        found = extract(p, OPTIONS)
        assert isinstance(found, clean.Extracted)
        note_site(tables[0], 0, p.site)
        removed.append(deduplicate(p, found, *tables, OPTIONS).removed.boilerplate)
    return removed


def test_site_boilerplate_is_learnt_then_stripped() -> None:
    tables: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    removed = run_site("courier", tables, T0)
    # The first pages of a site keep it (a paragraph is never stripped on its first
    # stories); once seen on three other stories, every later page loses it.
    assert removed[:3] == [0, 0, 0]
    assert all(n > 0 for n in removed[4:])


def test_site_keys_are_namespaced_so_no_key_is_shared_between_sites() -> None:
    tables: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    run_site("courier", tables, T0)
    run_site("ledger", tables, T0)
    site_stories = tables[0]
    owners = {k.split("\x1e")[0] for k in site_stories if not k.startswith("\x00")}
    assert owners == {"courier.example", "ledger.example"}
    assert len(SiteState(site_stories, "courier.example")) > 0


def test_sweep_empties_the_site_tables_after_the_window() -> None:
    tables: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    run_site("courier", tables, T0)
    later = (T0 + timedelta(days=8)).timestamp()
    assert sweep_sites(*tables, 0, T0.timestamp(), OPTIONS) == 0  # nothing expired yet
    assert sweep_sites(*tables, 1, later, OPTIONS) == 0  # another partition's sites: untouched
    assert sweep_sites(*tables, 0, later, OPTIONS) > 0
    assert [k for k in tables[0] if not k.startswith("\x00")] == []
    assert tables[1] == {}
