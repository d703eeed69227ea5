"""The delivery audit: the join over plain lists (every outcome kind, superseded copies,
duplicates, pending against missing, conflicts, repeats, replays, repairs, articles still
between stages), the readers' decoding of what the pipeline writes, and `newsflow audit`
in its own process against the real broker and node, outcomes written as the pipeline
writes them (no worker runs)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ingest.producer import PageProducer
from newsflow import audit_io, deadletter
from newsflow.audit import (
    REPAIR_HEADER,
    AuditReport,
    Kind,
    Outcome,
    Page,
    Sighting,
    join,
    parse_since,
)
from newsflow.records import (
    DecodeError,
    EnrichedArticle,
    Filtered,
    PageOrigin,
    RawPage,
    Source,
    SourceKind,
)
from newsflow.settings import Settings, as_env
from newsflow.topics import Topics
from processors import index
from tests.conftest import ROOT, read_topic

TOPIC = "nf.pages"


def indexed(p: int, o: int | None, aid: str, **kw: Any) -> Outcome:
    return Outcome(Kind.INDEXED, f"doc {aid}", None if o is None else (p, o), aid, **kw)


def filtered(p: int, o: int | None, aid: str | None = None) -> Outcome:
    return Outcome(Kind.FILTERED, "filtered", None if o is None else (p, o), aid)


def dead(p: int, o: int | None, stage: str, aid: str | None = None, **kw: Any) -> Outcome:
    origin = None if o is None else (p, o)
    return Outcome(Kind.DEAD_LETTERED, f"dlq {stage}", origin, aid, stage=stage, **kw)


def pages(*ids: str | None, partition: int = 0) -> list[Page]:
    return [
        Page(partition, o, aid, aid and f"https://x.example/{aid}") for o, aid in enumerate(ids)
    ]


def accounted(r: AuditReport) -> int:
    """Every page once: the counts add up to the pages."""
    outcomes = r.indexed + r.filtered + sum(r.dead_lettered.values())
    return outcomes + r.pending + r.repaired + len(r.missing) + len(r.conflicting)


# -- the join ----------------------------------------------------------------------------


def test_each_page_is_counted_under_its_own_outcome() -> None:
    ps = pages("a", "b", "c", None, "e")
    outcomes = [
        indexed(0, 0, "a"),
        indexed(0, 1, "b", duplicate=True),
        filtered(0, 2, "c"),
        dead(0, 3, "clean"),  # a poison page: only its place names it
        dead(0, 4, "enrich", "e"),
    ]
    r = join(TOPIC, ps, outcomes, {0: 5})
    assert (r.indexed, r.duplicates, r.filtered) == (2, 1, 1)
    assert r.dead_lettered == {"clean": 1, "enrich": 1}
    assert (r.pending, r.missing, r.conflicting, r.superseded, r.repeated) == (0, [], [], 0, 0)
    assert r.ok and accounted(r) == r.total == 5
    assert r.pages == {0: 5}


def test_no_outcome_is_missing_below_the_committed_offset_and_pending_from_it() -> None:
    ps = [*pages("a", "b", "c", "d"), *pages("x", "y", partition=1)]
    r = join(TOPIC, ps, [indexed(0, 0, "a")], {0: 2})  # nothing committed on partition 1
    assert [(m.partition, m.offset, m.article_id) for m in r.missing] == [(0, 1, "b")]
    assert r.missing[0].url == "https://x.example/b"
    assert r.pending == 4  # c and d at/after offset 2; x and y: partition 1 not started
    assert not r.ok and accounted(r) == 6


def test_a_url_sent_again_rewrote_the_document_superseded_not_missing() -> None:
    ps = pages("a", "other", "a")  # the same URL at offsets 0 and 2
    r = join(TOPIC, ps, [indexed(0, 2, "a"), filtered(0, 1, "other")], {0: 3})
    assert (r.indexed, r.superseded, r.filtered) == (2, 1, 1)
    assert r.ok and accounted(r) == 3


def test_an_outcome_of_another_copy_does_not_make_a_page_conflicting() -> None:
    # Offset 0 indexed; offset 1, the same URL later, filtered (the page changed).
    r = join(TOPIC, pages("a", "a"), [indexed(0, 0, "a"), filtered(0, 1, "a")], {0: 2})
    assert (r.indexed, r.filtered, r.conflicting) == (1, 1, [])


def test_two_kinds_of_outcome_for_one_page_are_conflicting() -> None:
    outcomes = [indexed(0, 0, "a"), dead(0, 0, "index", "a"), filtered(0, 1, "b")]
    r = join(TOPIC, pages("a", "b"), outcomes, {0: 2})
    [c] = r.conflicting
    assert (c.offset, c.article_id) == (0, "a")
    assert sorted(o.split(" ")[0] for o in c.outcomes) == ["dead-lettered", "indexed"]
    assert r.indexed == 0 and r.filtered == 1 and not r.ok and accounted(r) == 2
    assert "conflicting:" in r.summary() and f"{TOPIC}[0]@0" in r.summary()


def test_the_same_outcome_twice_is_repeated_not_a_failure() -> None:
    r = join(TOPIC, pages("a", "b"), [filtered(0, 0, "a"), filtered(0, 0, "a")], {0: 1})
    assert (r.filtered, r.repeated, r.pending) == (1, 1, 1)
    assert r.ok and accounted(r) == 2


def test_records_without_origins_match_by_article_id() -> None:
    # Written before outcomes carried an origin: a URL sent once is matched as its own,
    # so a conflict is still seen; a URL sent twice is not pinned on either copy.
    once = join(TOPIC, pages("a"), [indexed(0, None, "a"), dead(0, None, "index", "a")], {0: 1})
    assert len(once.conflicting) == 1
    twice = join(TOPIC, pages("a", "a"), [indexed(0, None, "a"), filtered(0, None, "a")], {0: 2})
    assert twice.conflicting == [] and twice.superseded == 2 and twice.indexed == 2


def test_a_replayed_dead_letter_gives_way_to_what_the_replay_produced() -> None:
    outcomes = [
        dead(0, 0, "enrich", "a", replayed=True),
        indexed(0, 0, "a"),
        dead(0, 1, "enrich", "b", replayed=True),  # replayed, nothing came of it yet
    ]
    r = join(TOPIC, pages("a", "b"), outcomes, {0: 2})
    assert (r.indexed, r.dead_lettered, r.conflicting) == (1, {"enrich": 1}, [])


def test_a_repaired_page_gives_way_to_its_copy() -> None:
    ps = [*pages("a", "b"), Page(0, 2, "b", "https://x.example/b", repair_of=(0, 1))]
    r = join(TOPIC, ps, [indexed(0, 0, "a")], {0: 2})  # the copy at offset 2: pending
    assert (r.repaired, r.pending, r.missing) == (1, 1, [])
    lost_copy = join(TOPIC, ps, [indexed(0, 0, "a")], {0: 3})
    assert [m.offset for m in lost_copy.missing] == [2]  # the copy is audited in its place


def test_an_article_waiting_between_stages_is_pending_and_a_consumed_one_missing() -> None:
    ps = pages("a", "b", "c")
    seen = [
        Sighting("nf.articles[0]@0", consumed=True, origin=(0, 0), article_id="a"),
        Sighting("nf.clustered[1]@7", consumed=False, origin=(0, 0), article_id="a"),
        Sighting("nf.articles[0]@1", consumed=True, article_id="b"),  # no origin: by id
    ]
    r = join(TOPIC, ps, [], {0: 3}, seen)
    assert r.pending == 1
    assert [(m.article_id, m.note) for m in r.missing] == [
        ("b", "last seen on nf.articles[0]@1, consumed"),
        ("c", ""),
    ]


def test_summary_and_json_carry_the_counts() -> None:
    r = join(TOPIC, pages("a", "b"), [indexed(0, 0, "a")], {0: 2})
    text = r.summary()
    assert text.splitlines()[0] == f"{TOPIC}: 2 page(s) (partition 0: 2)"
    assert "missing" in text and "LOST" in text and "https://x.example/b" in text
    data = json.loads(json.dumps(r.to_json()))
    assert data["total"] == 2 and data["indexed"] == 1 and data["ok"] is False
    assert data["missing"][0]["offset"] == 1 and data["pages"] == {"0": 2}


def test_since_takes_durations_and_iso_times() -> None:
    now = datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d", now) == now - timedelta(days=1)
    assert parse_since("2026-03-01T08:00", now) == datetime(2026, 3, 1, 8, tzinfo=UTC)
    offset = parse_since("2026-03-01T08:00+01:00", now)
    assert offset == datetime(2026, 3, 1, 7, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("3 fortnights", now)


# -- what the readers make of the pipeline's records --------------------------------------


def message(topic: str, partition: int, offset: int, value: bytes | None, headers: Any = ()) -> Any:
    return SimpleNamespace(
        topic=topic,
        partition=partition,
        offset=offset,
        key=b"k",
        value=value,
        headers=list(headers),
    )


def raw_page(url: str) -> RawPage:
    return RawPage(
        url=url,
        canonical_url=url,
        site="audit.example",
        fetched_at=datetime(2026, 3, 9, tzinfo=UTC),
        content_type="text/html",
        body=b"<html><body><p>A short page.</p></body></html>",
        source=Source(kind=SourceKind.URLS, ref="audit test"),
    )


def article(page: RawPage, origin: PageOrigin | None, **changes: Any) -> EnrichedArticle:
    fields: dict[str, Any] = {
        "article_id": page.article_id,
        "url": page.url,
        "canonical_url": page.canonical_url,
        "site": page.site,
        "title": "Harbour strike",
        "fetched_at": page.fetched_at,
        "language": "en",
        "paragraphs": ["Dockers in Kessling walked out.", "Talks resume Monday."],
        "text_hash": "h",
        "cluster_id": page.article_id,
        "source": page.source,
        "origin": origin,
    }
    fields.update(changes)
    return EnrichedArticle(**fields)


def test_pages_decode_to_their_article_and_repair_mark() -> None:
    page = raw_page("https://audit.example/1")
    mark = [(REPAIR_HEADER, b"1@17"), ("newsflow-source", b"urls")]
    assert audit_io._page(message(TOPIC, 1, 20, page.encode(), mark)) == Page(
        1, 20, page.article_id, page.url, repair_of=(1, 17)
    )
    assert audit_io._page(message(TOPIC, 0, 3, b"not json")) == Page(0, 3)


def test_dead_letters_name_their_page_by_headers_or_by_the_article() -> None:
    origin = deadletter.Origin(TOPIC, 1, 9, [("newsflow-source", b"urls")])
    headers = deadletter.failure_headers("clean", DecodeError("not a RawPage"), origin)
    clean = message("nf.deadletter.clean", 0, 0, b"poison", headers)
    assert audit_io._dead_letter(clean, "clean", TOPIC, {}) == Outcome(
        Kind.DEAD_LETTERED, "nf.deadletter.clean[0]@0", (1, 9), stage="clean"
    )
    page = raw_page("https://audit.example/2")
    later = article(page, PageOrigin(partition=0, offset=4))
    enrich_origin = deadletter.Origin("nf.clustered", 0, 2)
    headers = deadletter.failure_headers("enrich", RuntimeError("spaCy"), enrich_origin)
    letter = message("nf.deadletter.enrich", 0, 5, later.encode(), headers)
    replayed_up_to = {TopicPartition("nf.deadletter.enrich", 0): 6}
    found = audit_io._dead_letter(letter, "enrich", TOPIC, replayed_up_to)
    assert found is not None
    assert (found.origin, found.article_id, found.replayed) == ((0, 4), page.article_id, True)
    garbage = message("nf.deadletter.stories", 0, 0, b"\x00", headers)
    assert audit_io._dead_letter(garbage, "stories", TOPIC, {}) is None


def test_documents_and_filtered_records_carry_their_origin() -> None:
    hit = {"_index": "nf-articles-2026.03", "_id": "a1", "_source": {"duplicate_of": "a0"}}
    assert audit_io._document(hit) == Outcome(
        Kind.INDEXED, "nf-articles-2026.03/a1", None, "a1", duplicate=True
    )
    hit["_source"] = {"origin": {"partition": 1, "offset": 12}, "duplicate_of": None}
    assert audit_io._document(hit).origin == (1, 12)
    page = raw_page("https://audit.example/3")
    record = Filtered(
        article_id=page.article_id,
        url=page.url,
        site=page.site,
        reason="too-short",
        detail="12 words",
        fetched_at=page.fetched_at,
        source=page.source,
        origin=PageOrigin(partition=1, offset=3),
    )
    found = audit_io._filtered(message("nf.filtered", 1, 0, record.encode()))
    assert found == Outcome(Kind.FILTERED, "nf.filtered[1]@0", (1, 3), page.article_id)
    # Records written before origins existed still decode, and name no place.
    old = json.loads(record.encode())
    del old["origin"]
    assert audit_io._filtered(message("nf.filtered", 1, 1, json.dumps(old).encode())) == Outcome(
        Kind.FILTERED, "nf.filtered[1]@1", None, page.article_id
    )


# -- the command, on the real stack ------------------------------------------------------


def run_audit(s: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **as_env(s), **env}
    argv = [sys.executable, "-m", "newsflow.cli", "audit", *args]
    return subprocess.run(argv, env=full, cwd=ROOT, capture_output=True, text=True, timeout=120)


def produce_pages(s: Settings) -> list[Any]:
    """Eight records on one partition (one site): seven pages, the fourth sent twice
    (same URL), and a poison value sixth. Returns the messages as Kafka has them."""
    topics = Topics.from_settings(s)
    urls = [f"https://audit.example/{n}" for n in (0, 1, 2, 2, 4)]
    with PageProducer(s, topics.pages) as producer:
        for u in urls:
            producer.send(raw_page(u))
        producer.flush()
        raw = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
        raw.send(topics.pages, key=b"audit.example", value=b"not json at all")
        raw.close()
        producer.send(raw_page("https://audit.example/6"))
        producer.send(raw_page("https://audit.example/7"))
    on_kafka = read_topic(s, topics.pages)
    assert len({m.partition for m in on_kafka}) == 1 and len(on_kafka) == 8
    return on_kafka


def write_outcomes(s: Settings, msgs: list[Any]) -> None:
    """As the pipeline writes them: documents (one a near duplicate, one rewritten by a
    later copy of its URL), a filtered record, a clean dead letter for the poison page, an
    index dead letter for an indexed page (a conflict); nothing for pages 6 and 7."""
    topics = Topics.from_settings(s)
    page = {i: RawPage.model_validate_json(m.value) for i, m in enumerate(msgs) if i != 5}
    where = [PageOrigin(partition=m.partition, offset=m.offset) for m in msgs]
    docs = [
        article(page[0], where[0]),
        article(page[1], where[1], duplicate_of=page[0].article_id, duplicate_kind="near"),
        article(page[3], where[3]),  # the later copy of URL 2 (offsets 2 and 3)
    ]
    asyncio.run(_index(s, docs))
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    p4 = page[4]
    record = Filtered(
        article_id=p4.article_id,
        url=p4.url,
        site=p4.site,
        reason="too-short",
        detail="8 words",
        fetched_at=p4.fetched_at,
        source=p4.source,
        origin=where[4],
    )
    producer.send(topics.filtered, key=p4.site.encode(), value=record.encode())
    poison = msgs[5]
    origin = deadletter.Origin(topics.pages, poison.partition, poison.offset, poison.headers)
    headers = deadletter.failure_headers("clean", DecodeError("not a RawPage"), origin)
    producer.send(topics.deadletter("clean"), key=poison.key, value=poison.value, headers=headers)
    refused = deadletter.PermanentError("Elasticsearch refused it (400): mapping")
    index_origin = deadletter.Origin(topics.enriched, 0, 0)
    headers = deadletter.failure_headers("index", refused, index_origin)
    producer.send(topics.deadletter("index"), key=b"k", value=docs[0].encode(), headers=headers)
    producer.flush()
    producer.close()


async def _index(s: Settings, docs: list[EnrichedArticle]) -> None:
    client = AsyncElasticsearch(s.elasticsearch_url)
    try:
        assert await index.write(client, s.topic_prefix, docs) == []
    finally:
        await client.close()


def commit(s: Settings, partition: int, offset: int) -> None:
    """The pipeline's group has processed the pages before ``offset``."""
    consumer = KafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap,
        group_id=f"{s.topic_prefix}-pipeline",
        enable_auto_commit=False,
    )
    try:
        tp = TopicPartition(Topics.from_settings(s).pages, partition)
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


@pytest.fixture
def audited(pipeline_settings: Settings, es: Any) -> Iterator[Settings]:
    """A pipeline of the test's own (its topics deleted afterwards), and its indices."""
    yield pipeline_settings
    name = index.alias(pipeline_settings.topic_prefix)
    concrete = list(es.indices.get(index=f"{name}-*", allow_no_indices=True))
    if concrete:
        es.indices.delete(index=",".join(concrete))
    es.options(ignore_status=404).indices.delete_index_template(name=name)


@pytest.mark.stack
def test_audit_finds_the_lost_page_and_repair_sends_it_again(audited: Settings) -> None:
    s = audited
    msgs = produce_pages(s)
    write_outcomes(s, msgs)
    commit(s, msgs[0].partition, msgs[7].offset)  # page 6 processed (and lost), 7 not yet

    first = run_audit(s, "--json")
    assert first.returncode == 1, first.stderr
    report = json.loads(first.stdout)
    assert report["total"] == 8 and report["pages"] == {str(msgs[0].partition): 8}
    assert (report["indexed"], report["duplicates"], report["superseded"]) == (3, 1, 1)
    assert (report["filtered"], report["dead_lettered"], report["pending"]) == (1, {"clean": 1}, 1)
    lost = RawPage.model_validate_json(msgs[6].value)
    assert [(m["offset"], m["article_id"], m["url"]) for m in report["missing"]] == [
        (msgs[6].offset, lost.article_id, lost.url)
    ]
    assert [c["offset"] for c in report["conflicting"]] == [msgs[0].offset]

    text = run_audit(s)
    assert text.returncode == 1
    assert f"{Topics.from_settings(s).pages}[{msgs[6].partition}]@{msgs[6].offset}" in text.stdout
    assert lost.url in text.stdout and "LOST" in text.stdout

    dry = run_audit(s, "--repair", "--dry-run")
    assert "would send 1 missing page(s)" in dry.stdout, dry.stderr
    assert len(read_topic(s, Topics.from_settings(s).pages)) == 8

    repaired = run_audit(s, "--repair", "--json")
    assert json.loads(repaired.stdout)["repair"]["count"] == 1, repaired.stderr
    after = read_topic(s, Topics.from_settings(s).pages)
    assert len(after) == 9
    copy = after[-1]
    assert (copy.key, copy.value, copy.partition) == (msgs[6].key, msgs[6].value, msgs[6].partition)
    assert set(msgs[6].headers) < set(copy.headers)

    again = json.loads(run_audit(s, "--json").stdout)
    assert again["missing"] == [] and again["repaired"] == 1 and again["pending"] == 2


@pytest.mark.stack
def test_audit_of_one_partition_since_a_time(audited: Settings) -> None:
    s = audited
    msgs = produce_pages(s)
    other = 1 - msgs[0].partition
    empty = json.loads(run_audit(s, "--json", "--partition", str(other)).stdout)
    assert empty["total"] == 0 and empty["ok"] is True
    future = json.loads(run_audit(s, "--json", "--since", "2999-01-01T00:00Z").stdout)
    assert future["total"] == 0
    recent = json.loads(run_audit(s, "--json", "--since", "1h").stdout)
    assert recent["total"] == 8 and recent["pending"] == 8  # nothing committed yet

    # The clean stage went past every page; one page's article waits for the next stage.
    commit(s, msgs[0].partition, msgs[-1].offset + 1)
    waiting = article(RawPage.model_validate_json(msgs[6].value), None)  # found by its id
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    producer.send(Topics.from_settings(s).articles, key=b"k", value=waiting.encode())
    producer.close()
    later = json.loads(run_audit(s, "--json").stdout)
    assert later["pending"] == 1 and len(later["missing"]) == 7
    assert msgs[6].offset not in {m["offset"] for m in later["missing"]}


@pytest.mark.stack
@pytest.mark.parametrize("service", ["kafka", "elasticsearch"])
def test_audit_says_in_one_line_which_service_it_cannot_reach(
    audited: Settings, service: str
) -> None:
    if service == "kafka":
        address, env = "127.0.0.1:1", {"NEWSFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    else:
        address, env = "http://127.0.0.1:1", {"NEWSFLOW_ELASTICSEARCH_URL": "http://127.0.0.1:1"}
    started = time.monotonic()
    out = run_audit(audited, **env)
    assert time.monotonic() - started < 15
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and address in out.stderr, out.stderr
