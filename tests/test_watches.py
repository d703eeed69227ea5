"""Standing queries (newsflow.watches): folding the compacted topic, matching, alerts, the
webhook's delivery against a real local HTTP server, the watches topic on the real broker,
a worker's live copy of it (processors.watchlist) and `newsflow watch` as a subprocess.

The whole pipeline with watches, a worker restart and the webhook is in
tests/test_watches_e2e.py."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from newsflow import query, watches
from newsflow.query import Filters, QueryError
from newsflow.records import (
    Alert,
    EnrichedArticle,
    Source,
    SourceKind,
    Watch,
    alert_id,
    decode,
)
from newsflow.settings import Settings
from newsflow.topics import Topics
from processors import index, webhook
from processors.watchlist import WatchList
from tests.conftest import ROOT, unique

CREATED = datetime(2026, 11, 30, 14, 0, 0, 123456, tzinfo=UTC)


def watch(name: str, text: str, created_at: datetime = CREATED, **filters: Any) -> Watch:
    return Watch(name=name, query=text, filters=Filters(**filters), created_at=created_at)


def article(
    article_id: str = "a1",
    *,
    site: str = "harbour.example",
    site_name: str | None = "Harbour Times",
    title: str = "Dockworkers strike at the port",
    paragraphs: tuple[str, ...] = (
        "Hundreds of dockworkers walked out on Monday, the first port strike in a decade.",
        "The union said the strikes would go on until the pay talks resume.",
    ),
    language: str = "en",
    cluster_id: str | None = None,
) -> dict[str, Any]:
    """An article as the index stores it (processors.index.document): what the worker
    matches the watches against."""
    enriched = EnrichedArticle(
        article_id=article_id,
        url=f"https://{site}/news/{article_id}",
        canonical_url=f"https://{site}/news/{article_id}",
        site=site,
        site_name=site_name,
        title=title,
        fetched_at=datetime(2026, 11, 30, 15, 0, tzinfo=UTC),
        language=language,
        paragraphs=list(paragraphs),
        text_hash=f"hash-{article_id}",
        cluster_id=cluster_id or article_id,
        source=Source(kind=SourceKind.URLS),
    )
    return index.document(enriched)


def names(found: list[Watch]) -> list[str]:
    return [w.name for w in found]


# -- fold: the topic's records into the current set -----------------------------------------


def test_fold_adds_replaces_and_removes_by_name() -> None:
    first, second = watch("port", "strike"), watch("port", '"port strike"')
    other = watch("rates", "rate*")
    found: dict[str, Watch] = {}
    skipped: list[str] = []
    watches.fold(found, b"port", first.encode(), skipped)
    watches.fold(found, b"rates", other.encode(), skipped)
    assert found == {"port": first, "rates": other}
    watches.fold(found, b"port", second.encode(), skipped)  # compaction's later version
    assert found == {"port": second, "rates": other}
    watches.fold(found, b"port", None, skipped)  # a tombstone
    assert found == {"rates": other}
    watches.fold(found, b"never-added", None, skipped)  # a tombstone of nothing: no error
    assert found == {"rates": other}
    assert skipped == []


def test_fold_skips_an_undecodable_record_names_it_and_drops_the_earlier_version() -> None:
    good, kept = watch("port", "strike"), watch("rates", "rate*")
    found: dict[str, Watch] = {}
    skipped: list[str] = []
    watches.fold(found, b"port", good.encode(), skipped)
    watches.fold(found, b"rates", kept.encode(), skipped)
    watches.fold(found, b"port", b"not json at all", skipped)
    watches.fold(found, b"nameless", b'{"name": "nameless"}', skipped)  # no query, no time
    # The earlier version of "port" is not what the topic says any more: it goes too,
    # rather than alert on a query its owner replaced.
    assert found == {"rates": kept}
    assert len(skipped) == 2
    assert skipped[0].startswith("port: not a Watch")
    assert skipped[1].startswith("nameless: not a Watch")
    without: dict[str, Watch] = {}
    watches.fold(without, b"port", b"\x89PNG", None)  # nowhere to name it: still no error
    assert without == {}


def test_fold_reads_a_whole_topic_in_order() -> None:
    records: list[tuple[bytes, bytes | None]] = [
        (b"a", watch("a", "one").encode()),
        (b"b", watch("b", "two").encode()),
        (b"a", None),
        (b"c", b"garbage"),
        (b"b", watch("b", "three").encode()),
        (b"a", watch("a", "four").encode()),
    ]
    found: dict[str, Watch] = {}
    skipped: list[str] = []
    for key, value in records:
        watches.fold(found, key, value, skipped)
    assert {n: w.query for n, w in found.items()} == {"a": "four", "b": "three"}
    assert [s.split(":")[0] for s in skipped] == ["c"]


# -- fired: which watches an indexed article matches ----------------------------------------


def test_fired_applies_the_query_and_the_filters_and_sorts_by_name() -> None:
    doc = query.Doc(article())
    listed = [
        watch("wrong-site", "strike", sites=("elsewhere.example",)),  # query yes, filter no
        watch("phrase", '"port strike"'),
        watch("football", "football"),  # query no
        watch("german", "strike", languages=("de",)),  # filter no
        watch("by-domain", "strikes", sites=("harbour.example",)),  # stems: strikes = strike
        watch("by-name", "dockwork*", sites=("harbour times",)),  # site name, any case
        watch("everything", "*"),
        watch("not-port", "strike -port"),  # NOT
        watch("english", "union pay", languages=("EN",)),
        watch("far-phrase", '"port decade"'),  # the words, not next to each other
    ]
    fired = watches.fired(listed, doc)
    assert names(fired) == ["by-domain", "by-name", "english", "everything", "phrase"]
    assert names(watches.fired(reversed(listed), doc)) == names(fired)
    assert watches.fired([], doc) == []


def test_fired_matches_the_title_and_filters_on_entities() -> None:
    doc = article(title="Harbour chief resigns", paragraphs=("Nothing else to say here.",))
    doc["persons"] = ["Ada Quay"]
    listed = [
        watch("title", "resign*"),
        watch("person", "*", persons=("ada quay",)),
        watch("other-person", "*", persons=("Bob",)),
    ]
    assert names(watches.fired(listed, query.Doc(doc))) == ["person", "title"]


@pytest.mark.parametrize("name", ["", "two words", "a/b", "semi;colon", "x" * 201, "tab\tname"])
def test_a_bad_name_is_refused_before_anything_is_written(name: str) -> None:
    with pytest.raises(QueryError, match="a watch's name is 1 to 200"):
        watches.check_name(name)


@pytest.mark.parametrize("name", ["port-strikes", "a.b_c-1", "x" * 200, "Zürich"])
def test_good_names_pass(name: str) -> None:
    assert watches.check_name(name) == name


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("strike |", "needs something to search for"),
        ('"port strike', "never closed"),
        ("(strike", "never closed"),
        ("strike)", "closes nothing"),
        ("strik~2", "fuzzy words"),
        ("strike -)", "needs something to leave out"),
        ("!!! ...", "nothing to search for"),
    ],
)
def test_a_malformed_query_is_refused_as_the_cli_checks_it(text: str, said: str) -> None:
    with pytest.raises(QueryError, match=said):
        query.parse(text)


def test_a_watch_whose_query_does_not_parse_does_not_stop_the_others_matching() -> None:
    """A watches record whose value decodes but whose query does not parse (written by
    hand, or by a version whose query language read it differently) is still one bad
    record: like one that does not decode, it should be left out, not stop matching."""
    found: dict[str, Watch] = {}
    skipped: list[str] = []
    watches.fold(found, b"broken", watch("broken", "strike |").encode(), skipped)
    watches.fold(found, b"good", watch("good", "strike").encode(), skipped)
    assert names(watches.fired(found.values(), query.Doc(article()))) == ["good"]
    assert len(skipped) == 1 and skipped[0].startswith("broken: ")


# -- alert: what a match says ---------------------------------------------------------------


def test_alert_ids_are_one_per_story_per_watch_and_new_for_a_watch_made_again() -> None:
    w = watch("port", "strike")
    first = watches.alert(w, article("a1", cluster_id="story-1"))
    copy = watches.alert(w, article("a2", site="other.example", cluster_id="story-1"))
    assert first.alert_id == copy.alert_id  # a syndicated copy: the same story
    assert first.article_id != copy.article_id
    # Pinned: receivers deduplicate on it, so it must not change between versions.
    assert first.alert_id == alert_id("port", CREATED, "story-1")
    assert first.alert_id == "6806e09bd396d66cf2d3fab6b5dd26db"
    # The watch as a worker reads it back from the topic gives the same id.
    read_back = decode(Watch, w.encode())
    assert watches.alert(read_back, article("a1", cluster_id="story-1")).alert_id == (
        first.alert_id
    )
    other_story = watches.alert(w, article("a3", cluster_id="story-2"))
    remade = watch("port", "strike", CREATED + timedelta(seconds=1))  # removed, added again
    again = watches.alert(remade, article("a1", cluster_id="story-1"))
    renamed = watches.alert(watch("port2", "strike"), article("a1", cluster_id="story-1"))
    ids = {first.alert_id, other_story.alert_id, again.alert_id, renamed.alert_id}
    assert len(ids) == 4


def test_alert_marks_the_matched_words_and_says_where_the_article_is() -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    doc = article("a1", cluster_id="story-1")
    found = watches.alert(watch("port", '"port strike" | strikes -football'), doc, now)
    assert "the first «port strike» in a decade" in found.snippet
    assert "«strikes»" in found.snippet  # the stem, as typed in the text
    assert "«dockworkers»" not in found.snippet
    assert "football" not in found.snippet
    assert found.snippet.startswith("Hundreds of dockworkers")
    assert (found.watch, found.query, found.watch_created_at) == (
        "port",
        '"port strike" | strikes -football',
        CREATED,
    )
    assert (found.article_id, found.story, found.site) == ("a1", "story-1", "Harbour Times")
    assert found.url == "https://harbour.example/news/a1"
    assert found.title == "Dockworkers strike at the port"
    assert found.matched_at == now
    assert found.indexed_at.tzinfo is not None
    assert decode(Alert, found.encode()) == found


def test_alert_story_falls_back_to_the_article_and_site_to_the_domain() -> None:
    doc = article("a9", site_name=None)
    del doc["cluster_id"]
    found = watches.alert(watch("port", "strike"), doc)
    assert found.story == "a9"
    assert found.alert_id == alert_id("port", CREATED, "a9")
    assert found.site == "harbour.example"
    doc["cluster_id"] = None
    assert watches.alert(watch("port", "strike"), doc).story == "a9"


def test_an_alert_whose_match_is_in_the_title_shows_the_opening() -> None:
    doc = article(title="Strike!", paragraphs=("Nothing about it in the text.",))
    assert watches.alert(watch("t", "strike"), doc).snippet == "Nothing about it in the text."


# -- the webhook, against a real local HTTP server ------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


@dataclass
class Receiver:
    """A real HTTP server on a free port of 127.0.0.1, in a thread. ``answer`` gets each
    request (and the earlier ones) and returns the status to answer."""

    answer: Callable[[Received, list[Received]], int]
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                got = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                    0,
                )
                with outer.lock:
                    got.status = outer.answer(got, list(outer.received))
                    outer.received.append(got)
                reply = json.dumps({"status": got.status}).encode()
                self.send_response(got.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def statuses(self) -> list[int]:
        with self.lock:
            return [r.status for r in self.received]


def scripted(*statuses: int) -> Callable[[Received, list[Received]], int]:
    """The given statuses in turn, then the last one for ever."""
    return lambda got, before: statuses[min(len(before), len(statuses) - 1)]


def deliver(url: str, alert: Alert, attempts: int) -> webhook.Outcome:
    async def run() -> webhook.Outcome:
        async with httpx.AsyncClient(timeout=5) as client:
            return await webhook.deliver(client, url, alert, attempts, first_backoff=0.01)

    return asyncio.run(run())


@pytest.fixture
def one_alert() -> Alert:
    return watches.alert(watch("port", "strike"), article("a1", cluster_id="story-1"))


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_delivers_the_alert_json_with_its_id_as_idempotency_key(one_alert: Alert) -> None:
    with Receiver(scripted(200)) as rx:
        done = deliver(rx.url, one_alert, 5)
    assert done == webhook.Outcome(True, 1)
    [got] = rx.received
    assert got.path == "/hook"
    assert decode(Alert, got.body) == one_alert
    assert json.loads(got.body)["alert_id"] == one_alert.alert_id
    assert got.headers["idempotency-key"] == one_alert.alert_id
    assert got.headers["content-type"] == "application/json"


def test_webhook_retries_an_unavailable_receiver_with_growing_backoff(one_alert: Alert) -> None:
    with Receiver(scripted(503, 503, 200)) as rx:
        done = deliver(rx.url, one_alert, 5)
    assert (done.delivered, done.attempts, done.refused) == (True, 3, False)
    assert rx.statuses() == [503, 503, 200]
    gaps = [b.at - a.at for a, b in zip(rx.received, rx.received[1:], strict=False)]
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02, gaps  # 0.01, then doubled
    assert {r.headers["idempotency-key"] for r in rx.received} == {one_alert.alert_id}
    assert len({r.body for r in rx.received}) == 1  # the same body every time


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_webhook_takes_a_refusal_at_once(one_alert: Alert, status: int) -> None:
    with Receiver(scripted(status)) as rx:
        done = deliver(rx.url, one_alert, 5)
    assert (done.delivered, done.attempts, done.refused) == (False, 1, True)
    assert f"answered {status}" in done.reason
    assert rx.statuses() == [status]


def test_webhook_asked_to_slow_down_tries_again(one_alert: Alert) -> None:
    with Receiver(scripted(429, 200)) as rx:
        done = deliver(rx.url, one_alert, 5)
    assert (done.delivered, done.attempts) == (True, 2)


def test_webhook_gives_up_on_a_receiver_that_stays_down(one_alert: Alert) -> None:
    with Receiver(scripted(503)) as rx:
        done = deliver(rx.url, one_alert, 4)
    assert (done.delivered, done.attempts, done.refused) == (False, 4, False)
    assert done.reason.startswith("gave up after 4 attempts")
    assert "503" in done.reason
    assert rx.statuses() == [503] * 4


def test_webhook_retries_when_nothing_listens_then_gives_up(one_alert: Alert) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    started = time.monotonic()
    done = deliver(url, one_alert, 3)
    assert (done.delivered, done.attempts, done.refused) == (False, 3, False)
    assert "no answer from" in done.reason and "ConnectError" in done.reason
    assert time.monotonic() - started >= 0.03  # waited 0.01 + 0.02 between the tries


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "127.0.0.1/hook", "hook"])
def test_webhook_refuses_a_url_with_a_bad_scheme_at_once(one_alert: Alert, url: str) -> None:
    done = deliver(url, one_alert, 5)
    assert (done.delivered, done.attempts, done.refused) == (False, 1, True)
    assert "not http(s)" in done.reason


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc/hook", "http://127.0.0.1:99999/hook"])
def test_webhook_refuses_a_malformed_url_at_once(one_alert: Alert, url: str) -> None:
    """A port that is no number, or past 65535, is a refusal before any request: httpx
    raises for them (InvalidURL is no httpx.HTTPError; a port out of range fails deep in
    the connection), it does not answer."""
    done = deliver(url, one_alert, 5)
    assert (done.delivered, done.attempts, done.refused) == (False, 1, True)
    assert "webhook URL" in done.reason


def test_webhook_reasons_never_show_the_url_s_path_or_query() -> None:
    """A chat service's incoming-hook URL carries its credential in the path: dead letters
    and logs name the host only."""
    assert webhook.shown("https://hooks.example:8443/services/T000/B000/XXXXsecret?k=v") == (
        "https://hooks.example:8443/…"
    )
    assert webhook.shown("http://127.0.0.1/") == "http://127.0.0.1"


# -- the watches topic on the real broker ---------------------------------------------------


def delete_prefixed(s: Settings) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    try:
        made = [t for t in admin.list_topics() if t.startswith(s.topic_prefix + ".")]
        if made:
            admin.delete_topics(made)
    finally:
        admin.close()


@pytest.fixture
def own(settings: Settings) -> Iterator[Settings]:
    """A prefix of the test's own; its topics are deleted afterwards."""
    s = settings.model_copy(update={"topic_prefix": unique("wt")})
    yield s
    delete_prefixed(s)


def send_raw(s: Settings, topic: str, key: bytes | None, value: bytes | None) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    try:
        producer.send(topic, key=key, value=value).get(timeout=15)
    finally:
        producer.close()


@pytest.mark.stack
def test_watches_round_trip_through_the_compacted_topic(own: Settings) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    assert watches.read_all(own) == {}  # made on first use, empty
    port = watch("port", '"port strike"', sites=("harbour.example",), languages=("en",))
    rates = watch("rates", "rate*", organizations=("National Bank",))
    watches.put(own, port, "port")
    watches.put(own, rates, "rates")
    assert watches.read_all(own) == {"port": port, "rates": rates}
    newer = watch("port", "strike | walkout", CREATED + timedelta(days=1))
    watches.put(own, newer, "port")
    watches.put(own, None, "rates")
    skipped: list[str] = []
    assert watches.read_all(own, skipped) == {"port": newer}
    assert skipped == []
    admin = KafkaAdminClient(bootstrap_servers=own.kafka_bootstrap)
    try:
        topic = Topics.from_settings(own).watches
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    assert described["topic"][topic]["cleanup.policy"]["value"] == "compact"


@pytest.mark.stack
def test_a_garbage_record_on_the_topic_is_skipped_and_reported(own: Settings) -> None:
    topic = Topics.from_settings(own).watches
    before, after = watch("before", "strike"), watch("after", "walkout")
    watches.put(own, before, "before")
    send_raw(own, topic, b"garbage", b"\x89PNG\r\n\x1a\n not a watch")
    send_raw(own, topic, b"empty", b"{}")
    watches.put(own, after, "after")
    skipped: list[str] = []
    assert watches.read_all(own, skipped) == {"before": before, "after": after}
    assert [s.split(": ")[0] for s in skipped] == ["garbage", "empty"]
    assert all("not a Watch" in s for s in skipped)


@pytest.mark.stack
def test_a_workers_live_copy_waits_for_the_whole_topic_then_follows_it(own: Settings) -> None:
    topic = Topics.from_settings(own).watches
    first = [watch(f"w{i}", f"word{i}") for i in range(30)]
    for w in first:
        watches.put(own, w, w.name)
    send_raw(own, topic, b"garbage", b"not json")
    watches.put(own, None, "w7")

    async def run() -> tuple[set[str], set[str]]:
        live = WatchList(own, topic)
        task = asyncio.create_task(live.follow(retry=0.5))
        try:
            await asyncio.wait_for(live.ready.wait(), 30)
            at_start = set(live.watches)  # ready only once the whole topic is read
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, watches.put, own, watch("late", "x"), "late")
            await loop.run_in_executor(None, watches.put, own, None, "w0")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if "late" in live.watches and "w0" not in live.watches:
                    break
                await asyncio.sleep(0.2)
            return at_start, set(live.watches)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    at_start, later = asyncio.run(run())
    expected = {f"w{i}" for i in range(30)} - {"w7"}
    assert at_start == expected
    assert later == (expected - {"w0"}) | {"late"}


@pytest.mark.stack
def test_tail_reads_the_alerts_skips_garbage_and_filters_by_watch(own: Settings) -> None:
    topics = Topics.from_settings(own)
    watches.read_all(own)  # makes the topics
    a = watches.alert(watch("port", "strike"), article("a1"))
    b = watches.alert(watch("rates", "dockwork*"), article("a2"))
    send_raw(own, topics.alerts, b"port", a.encode())
    send_raw(own, topics.alerts, b"port", b"garbage")
    send_raw(own, topics.alerts, b"rates", b.encode())
    assert list(watches.tail(own, from_beginning=True, idle=2)) == [a, b]
    assert list(watches.tail(own, from_beginning=True, watch="rates", idle=2)) == [b]
    assert list(watches.tail(own, idle=1.5)) == []  # from the end: nothing new came
    out = newsflow(own, "watch", "tail", "--from-beginning", "--json", "--idle", "2")
    assert out.returncode == 0, out.stderr
    assert [decode(Alert, line.encode()) for line in out.stdout.splitlines()] == [a, b]


# -- `newsflow watch` as a subprocess -------------------------------------------------------


def newsflow(
    s: Settings, *args: str, kafka: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(
        NEWSFLOW_KAFKA_BOOTSTRAP=kafka or s.kafka_bootstrap,
        NEWSFLOW_ELASTICSEARCH_URL=s.elasticsearch_url,
        NEWSFLOW_TOPIC_PREFIX=s.topic_prefix,
        NEWSFLOW_TOPIC_PARTITIONS=str(s.topic_partitions),
    )
    argv = [sys.executable, "-m", "newsflow.cli", *args]
    done = subprocess.run(
        argv,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def listed(s: Settings) -> dict[str, Watch]:
    out = newsflow(s, "watch", "list", "--json")
    assert out.returncode == 0, out.stderr
    found = [Watch.model_validate_json(line) for line in out.stdout.splitlines()]
    return {w.name: w for w in found}


@pytest.mark.stack
def test_watch_commands_add_list_replace_and_remove(own: Settings) -> None:
    empty = newsflow(own, "watch", "list")
    assert empty.returncode == 0, empty.stderr
    assert "no watches" in empty.stdout

    started = datetime.now(UTC)
    added = newsflow(
        own,
        "watch",
        "add",
        "port-strikes",
        '"port strike" | dockworkers',
        "--site",
        "harbour.example",
        "--language",
        "en",
    )
    assert added.returncode == 0, added.stderr
    assert "watch port-strikes added" in added.stdout
    assert "site harbour.example, language en" in added.stdout
    assert newsflow(own, "watch", "add", "rates", "rate*").returncode == 0

    text = newsflow(own, "watch", "list")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["port-strikes", "rates"]
    assert "'\"port strike\" | dockworkers'" in lines[0]

    current = listed(own)
    assert sorted(current) == ["port-strikes", "rates"]
    port = current["port-strikes"]
    assert port.query == '"port strike" | dockworkers'
    assert port.filters == Filters(sites=("harbour.example",), languages=("en",))
    assert started - timedelta(seconds=1) <= port.created_at <= datetime.now(UTC)
    assert current["rates"].query == "rate*"

    again = newsflow(own, "watch", "add", "rates", "other")
    assert again.returncode == 2
    assert "--replace" in again.stderr and "rate*" in again.stderr
    assert listed(own)["rates"] == current["rates"]

    replaced = newsflow(own, "watch", "add", "rates", "rate* -football", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "watch rates replaced" in replaced.stdout
    newer = listed(own)["rates"]
    assert newer.query == "rate* -football"
    assert newer.created_at > current["rates"].created_at  # a new watch: it alerts anew

    removed = newsflow(own, "watch", "remove", "rates")
    assert removed.returncode == 0, removed.stderr
    assert "watch rates removed" in removed.stdout
    assert sorted(listed(own)) == ["port-strikes"]

    absent = newsflow(own, "watch", "remove", "rates")
    assert absent.returncode == 2
    assert "no watch named rates (watches: port-strikes)" in absent.stderr

    for args, said in [
        (("watch", "add", "bad-query", "strike |"), "needs something to search for"),
        (("watch", "add", "bad-query", '"port strike'), "never closed"),
        (("watch", "add", "two words", "strike"), "a watch's name is 1 to 200"),
        (("watch", "add", "x", "strike", "--since", "yesterday"), "--since 'yesterday'"),
    ]:
        bad = newsflow(own, *args)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        assert said in bad.stderr, (args, bad.stderr)
    assert sorted(listed(own)) == ["port-strikes"]


@pytest.mark.stack
def test_watch_tail_exits_quietly_when_no_alert_comes(own: Settings) -> None:
    started = time.monotonic()
    out = newsflow(own, "watch", "tail", "--idle", "3", "--json")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert time.monotonic() - started >= 3


@pytest.mark.stack
@pytest.mark.parametrize(
    "args",
    [
        ("watch", "list"),
        ("watch", "add", "port", "strike"),
        ("watch", "remove", "port"),
        ("watch", "tail", "--idle", "1"),
    ],
)
def test_watch_commands_say_in_one_line_that_kafka_is_unreachable(
    own: Settings, args: tuple[str, ...]
) -> None:
    out = newsflow(own, *args, kafka="127.0.0.1:1")
    assert out.returncode == 2, (out.stdout, out.stderr)
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach Kafka at 127.0.0.1:1"), line


# -- withdrawals: re-cleaning took away what an alert matched -------------------------------


def test_a_withdrawal_is_sent_for_what_re_cleaning_took_the_match_from() -> None:
    before = article(
        "a1",
        cluster_id="s1",
        title="Seals on the sandbank",
        paragraphs=(
            "Volunteers counted 214 seals.",
            "More from the Courier: dockers strike at the port",  # a teaser, removed later
        ),
    )
    after = article(
        "a1",
        cluster_id="s1",
        title="Seals on the sandbank",
        paragraphs=("Volunteers counted 214 seals.",),
    )
    kept = [watch("port", "strike port"), watch("seals", "seal*")]
    [gone] = watches.withdrawals(kept, before, after)
    assert (gone.watch, gone.article_id, gone.withdrawn) == ("port", "a1", True)
    assert gone.alert_id == watches.alert(kept[0], before).alert_id  # the one it withdraws
    assert watches.withdrawals(kept, after, after) == []


def admitted(sequence: list[Alert]) -> tuple[list[bool], Any]:
    entry: Any = None
    passed = []
    for a in sequence:
        new, passes = watches.admit(entry, a, 0)
        entry = new if new is not None else entry
        passed.append(passes)
    return passed, entry


def test_the_alerted_table_passes_one_alert_a_story_and_only_its_own_withdrawal() -> None:
    w = watch("port", "strike")
    first = watches.alert(w, article("a1", cluster_id="s1"))
    copy = watches.alert(w, article("a2", site="other.example", cluster_id="s1"))
    first_gone = first.model_copy(update={"withdrawn": True})
    copy_gone = copy.model_copy(update={"withdrawn": True})
    # Once per story; a copy's withdrawal is not the alert's (the copy never alerted).
    assert admitted([first, copy, first, copy_gone])[0] == [True, False, False, False]
    # The alert's own withdrawal passes and frees the story for a copy that still matches.
    assert admitted([first, first_gone, copy])[0] == [True, True, True]
    # A withdrawal before its match (the re-cleaning read the article between its write
    # and its match being sent): the late match is dropped, another copy's is not.
    assert admitted([first_gone, first])[0] == [False, False]
    assert admitted([first_gone, first, copy])[0] == [False, False, True]


def test_live_alerts_are_those_not_withdrawn_since() -> None:
    w = watch("port", "strike")
    a = watches.alert(w, article("a1", cluster_id="s1"))
    b = watches.alert(w, article("a2", cluster_id="s2"))
    a_gone = a.model_copy(update={"withdrawn": True})
    assert watches.live([a, b, a_gone]) == [b]
    again = watches.alert(w, article("a3", cluster_id="s1"))  # a copy alerting after
    assert watches.live([a, b, a_gone, again]) == [b, again]
