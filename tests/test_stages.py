"""The stage functions with plain dicts as tables: site namespacing and sweeping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from newsflow.demo.sites import EXPECTED, render
from newsflow.records import Filtered, PageOrigin, RawPage, Source, SourceKind
from processors import clean, index
from processors.stages import (
    PipelineOptions,
    SiteState,
    cluster,
    deduplicate,
    extract,
    note_site,
    skip_enrichment,
    too_short_after_dedup,
)
from processors.sweep import StreamClock
from processors.sweep import sites as sweep_sites

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
    # A minute apart, in order: only stories first seen before a page count against it.
    for n, a in enumerate(a for a in EXPECTED.articles if a.site == site_key):
        p = page(site_key, a.path, when + timedelta(minutes=n))
        found = extract(p, OPTIONS)
        assert isinstance(found, clean.Extracted)
        note_site(tables[0], 0, p.site)
        removed.append(deduplicate(p, found, *tables, OPTIONS).article.removed.boilerplate)
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

    def sweep(partition: int, now: float) -> int:
        return asyncio.run(sweep_sites(*tables, partition, now, OPTIONS))

    assert sweep(0, T0.timestamp()) == 0  # nothing expired yet
    assert sweep(1, later) == 0  # another partition's sites: untouched
    assert sweep(0, later) > 0
    assert [k for k in tables[0] if not k.startswith("\x00")] == []
    assert tables[1] == {}


def test_a_sweep_of_a_large_table_lets_the_event_loop_run() -> None:
    """Heartbeats run on the event loop: a sweep must not hold it for long at a time."""
    site = "big.example"
    tables: tuple[dict[str, Any], dict[str, Any]] = ({"\x00sites:0": [site]}, {})
    old = (T0 - timedelta(days=30)).timestamp()
    for n in range(60_000):
        tables[1][f"{site}\x1f{n:016x}"] = {"story": [old, old]}
    for n in range(60_000):  # other sites' keys, on another partition: never touched
        tables[1][f"other.example\x1f{n:016x}"] = {"story": [old, old]}

    async def run() -> tuple[int, float]:
        longest, last = 0.0, time.monotonic()

        async def heartbeat() -> None:
            nonlocal longest, last
            while True:
                await asyncio.sleep(0)
                now = time.monotonic()
                longest, last = max(longest, now - last), now

        beat = asyncio.ensure_future(heartbeat())
        await asyncio.sleep(0)
        swept = await sweep_sites(*tables, 0, T0.timestamp(), OPTIONS)
        beat.cancel()
        return swept, longest

    swept, longest = asyncio.run(run())
    assert swept == 60_000
    assert len(tables[1]) == 60_000  # only the other site's keys are left
    # A plain loop over the whole table held the loop for the entire sweep; chunked, no
    # stretch comes near it (the bound is loose: this machine may be busy).
    assert longest < 0.5


def test_every_output_carries_the_page_origin_to_the_index() -> None:
    # What `newsflow audit` matches outcomes to pages by: it must survive every stage.
    origin = PageOrigin(partition=1, offset=42)
    section = extract(page("courier", "/news/", T0), OPTIONS, origin=origin)
    assert isinstance(section, Filtered) and section.origin == origin
    first = EXPECTED.articles[0]
    p = page(first.site, first.path, T0)
    found = extract(p, OPTIONS, origin=origin)
    assert isinstance(found, clean.Extracted)
    article = deduplicate(p, found, {}, {}, OPTIONS, origin=origin).article
    assert article.origin == origin
    stories: dict[str, Any] = {}
    assert cluster(article, stories, OPTIONS).origin == origin
    again = cluster(article.model_copy(update={"article_id": "copy"}), stories, OPTIONS)
    enriched = skip_enrichment(again)  # an exact duplicate: indexed without NER
    assert enriched is not None and enriched.origin == origin
    assert index.document(enriched)["origin"] == {"schema_version": 1, "partition": 1, "offset": 42}
    assert deduplicate(p, found, {}, {}, OPTIONS).article.origin is None  # callers that pass none


# -- the length check after dedup --------------------------------------------------------

_TEMPLATE = [
    "Subscribe to the Harbour Gazette for the morning briefing, delivered before seven.",
    "Our journalism is paid for by readers: support the Gazette from two euros a month.",
    "Comments are moderated and may take an hour to appear under an article on this site.",
]


def _plain_page(n: int, own: list[str]) -> RawPage:
    url = f"https://gazette.example/news/{n}"
    text = "\n\n".join([f"Story number {n}", *own, *_TEMPLATE])
    return RawPage(
        url=url,
        canonical_url=url,
        site="gazette.example",
        fetched_at=T0 + timedelta(minutes=n),
        content_type="text/plain; charset=utf-8",
        body=text.encode(),
        source=Source(kind=SourceKind.DEMO),
    )


def test_a_stub_long_only_through_its_template_is_filtered_after_dedup() -> None:
    tables: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    # Articles with text of their own, each its own story (short ones under a long
    # template being one story is a problem of story identity, not of this check).
    own = [
        [
            "The ferry to Lindholm will leave at quarter past six from April, the operator "
            "said, after commuters complained that the first crossing missed the early trains.",
            "Skippers said the new slot depends on the tide tables for the spring.",
        ],
        [
            "Dredging of the inner basin starts in May and will close berths four to seven "
            "for three weeks, the port authority told fishermen at a meeting on Friday.",
            "The silt is to be shipped to a reclamation site north of the breakwater.",
        ],
        [
            "Parents at Eastgate primary collected four hundred signatures against the plan "
            "to move school meals to a central kitchen across the river.",
            "The headteacher said pupils would eat later and the food would travel cold.",
        ],
        [
            "A consortium of two utilities won the licence for a wind farm of forty turbines "
            "off the northern cape, with a cable landing beside the old lighthouse.",
            "Construction is expected to take three summers and employ two hundred people.",
        ],
        [
            "Bus fares rise by ten cents in July, the transport board decided, the first "
            "increase since the pandemic, while monthly passes keep their price.",
            "Pensioners travel free outside the morning peak, as before.",
        ],
    ]
    for n in range(5):
        found = extract(_plain_page(n, own[n]), OPTIONS)
        assert isinstance(found, clean.Extracted)
        article = deduplicate(_plain_page(n, own[n]), found, *tables, OPTIONS).article
        assert too_short_after_dedup(article, OPTIONS) is None  # real articles stay
    stub = _plain_page(9, ["Watch the video of the storm."])
    found = extract(stub, OPTIONS)
    assert isinstance(found, clean.Extracted)  # long enough with its template
    article = deduplicate(stub, found, *tables, OPTIONS).article
    assert article.removed.boilerplate == len(_TEMPLATE)
    filtered = too_short_after_dedup(article, OPTIONS)
    assert isinstance(filtered, Filtered) and filtered.reason == "too-short"
    assert "3 boilerplate" in filtered.detail and filtered.article_id == stub.article_id
    # A page nothing was taken from is judged by the first check alone.
    fresh = deduplicate(stub, found, {}, {}, OPTIONS).article
    assert fresh.removed.boilerplate == 0 and too_short_after_dedup(fresh, OPTIONS) is None


# -- the time sweeps expire entries against ----------------------------------------------


def test_a_backfill_keeps_its_state_when_swept_against_the_stream_clock() -> None:
    """Pages of a crawl a year old: swept against the wall clock, every entry they made is
    gone at the first sweep; against the stream's own time, none is."""
    tables: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    year_ago = datetime.now(UTC) - timedelta(days=365)
    clock = StreamClock()
    run_site("courier", tables, year_ago)
    for n in range(12):
        clock.saw(0, (year_ago + timedelta(minutes=n)).timestamp())
    entries = len(tables[0]) + len(tables[1])
    stream_now = clock.now(0)
    assert stream_now is not None and stream_now < time.time() - 300 * 86400
    assert asyncio.run(sweep_sites(*tables, 0, stream_now, OPTIONS)) == 0
    assert len(tables[0]) + len(tables[1]) == entries
    assert asyncio.run(sweep_sites(*tables, 0, time.time(), OPTIONS)) > 0  # the old way


def test_the_stream_clock_moves_forward_only_and_never_past_the_wall_clock() -> None:
    wall = 1_000_000.0
    clock = StreamClock(wall=lambda: wall)
    assert clock.now(3) is None  # nothing seen: nothing to sweep against
    clock.saw(3, 500.0)
    clock.saw(3, 400.0)  # a late page does not turn the clock back
    assert clock.now(3) == 500.0
    clock.saw(3, wall + 86400 * 30)  # a page stamped a month ahead
    assert clock.now(3) == wall
    first_future = StreamClock(wall=lambda: wall)
    first_future.saw("stories", wall * 2)
    assert first_future.now("stories") == wall
    assert clock.now(4) is None  # per key
