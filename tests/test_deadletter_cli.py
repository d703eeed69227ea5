"""`newsflow deadletter list` and `replay`: what they show of letters put on real
dead-letter topics, newest first with totals; what a replay sends back and that it sends
each letter once; and one line, exit 2, when Kafka is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from newsflow import deadletter
from newsflow.records import DeadLetter
from newsflow.settings import Settings, as_env
from newsflow.topics import Topics, ensure_topics
from tests.conftest import ROOT, read_topic, unique

NOW = datetime.now(UTC)


def run(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **as_env(s)}
    argv = [sys.executable, "-m", "newsflow.cli", *args]
    # The timeout catches a hang (a client waiting out its 30 s bootstrap); how fast the
    # commands answer is not asserted here: speed belongs to the benchmarks.
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)


def letter(**fields: object) -> DeadLetter:
    base: dict[str, object] = {
        "stage": "clean",
        "error_class": "DecodeError",
        "error": "bad page",
        "topic": "nf.pages",
        "partition": 1,
        "offset": 41,
        "failed_at": NOW,
    }
    return DeadLetter(**{**base, **fields})


# -- pure --------------------------------------------------------------------------------


def test_a_message_letter_is_shown_by_topic_partition_and_offset() -> None:
    assert deadletter.where(letter(url="https://x.example/a")) == "nf.pages[1]@41"


def test_an_ingest_letter_is_shown_by_its_input_and_url_not_a_fake_offset() -> None:
    ingest = letter(topic="", partition=-1, offset=-1, source="urls.txt:2", url="https://x/a")
    assert deadletter.where(ingest) == "urls.txt:2 https://x/a"
    # Written before the input header existed: the key names the input file.
    old = letter(topic="", partition=-1, offset=1234, key=b"crawl.warc.gz", url="https://x/b")
    assert deadletter.where(old) == "crawl.warc.gz at 1234 https://x/b"
    assert deadletter.where(letter(topic="", partition=-1, offset=-1)) == "unknown input"


def test_the_heading_says_totals_and_how_many_are_shown() -> None:
    few = [letter(), letter()]
    assert deadletter.heading("clean", deadletter.StageLetters("t", exists=False)) == (
        "clean: none (topic t not created yet)"
    )
    assert deadletter.heading("clean", deadletter.StageLetters("t")) == "clean: none"
    shown = deadletter.StageLetters("t", held=30, in_window=30, letters=few)
    assert deadletter.heading("clean", shown) == "clean: 30 dead letter(s); the newest 2 shown"
    since = datetime(2026, 3, 9, 8, tzinfo=UTC)
    recent = deadletter.StageLetters("t", held=30, in_window=2, letters=few)
    assert deadletter.heading("clean", recent, since) == (
        "clean: 30 dead letter(s), 2 since 2026-03-09 08:00:00 UTC"
    )


def test_the_tail_of_a_partition_is_its_last_records_within_its_start() -> None:
    assert deadletter.tail_range(0, 100, 20) == (80, 100)
    assert deadletter.tail_range(90, 100, 20) == (90, 100)
    assert deadletter.tail_range(5, 5, 20) == (5, 5)
    assert deadletter.tail_range(0, 100, 0) == (100, 100)


def test_error_classes_are_counted_most_common_first() -> None:
    letters = [letter(error_class=c) for c in ("A", "B", "B", "C", "B", "A")]
    assert deadletter.StageLetters("t", letters=letters).by_error_class() == [
        ("B", 3),
        ("A", 2),
        ("C", 1),
    ]


# -- on the real stack -------------------------------------------------------------------


stack = pytest.mark.stack


@pytest.fixture
def dl_settings(settings: Settings) -> Iterator[Settings]:
    """A pipeline prefix of the test's own, its topics created, deleted afterwards."""
    s = settings.model_copy(update={"topic_prefix": unique("dl")})
    ensure_topics(s, Topics.from_settings(s).specs())
    yield s
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    admin.delete_topics([t for t in admin.list_topics() if t.startswith(s.topic_prefix)])
    admin.close()


def put(s: Settings, stage: str, letters: list[tuple[deadletter.Origin, Exception, dict]]) -> None:
    """Dead letters on ``stage``'s topic, as the pipeline writes them; each third element
    holds failure_headers' keywords, and "at" the record's timestamp."""
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap)
    topic = Topics.from_settings(s).deadletter(stage)
    for origin, error, extra in letters:
        at: datetime = extra.pop("at", NOW)
        headers = deadletter.failure_headers(stage, error, origin, now=at, **extra)
        ms = int(at.timestamp() * 1000)
        key, value = b"site", f"value {origin.offset}".encode()
        producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ms)
    producer.flush()
    producer.close()


@stack
def test_list_shows_the_newest_first_with_totals_and_where_each_came_from(
    dl_settings: Settings,
) -> None:
    s, topics = dl_settings, Topics.from_settings(dl_settings)
    classes = ["DecodeError", "ValueError", "DecodeError"]
    put(
        s,
        "clean",
        [
            (
                deadletter.Origin(topics.pages, 1, n),
                type(classes[n % 3], (Exception,), {})(f"failure {n}"),
                {"at": NOW - timedelta(minutes=30 - n)},
            )
            for n in range(25)
        ],
    )
    ingest_origin = deadletter.Origin("", -1, -1)
    put(
        s,
        "ingest",
        [(ingest_origin, ValueError("not html"), {"source": "urls.txt:2", "url": "https://x/a"})],
    )
    gone = topics.deadletter("index")
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    admin.delete_topics([gone])
    while gone in admin.list_topics():
        time.sleep(0.1)

    done = run(s, "deadletter", "list", "-n", "4")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout.splitlines()
    at = out.index("clean: 25 dead letter(s); the newest 4 shown")
    # Letters 24, 23, 22, 21: classes 0, 2, 1, 0 of the cycle.
    assert out[at + 1] == "  by error class: DecodeError 3, ValueError 1"
    shown = out[at + 2 : at + 6]
    assert [line.split(": ")[-1] for line in shown] == [f"failure {n}" for n in (24, 23, 22, 21)]
    assert f"{topics.pages}[1]@24 DecodeError (permanent)" in shown[0]
    assert "ingest: 1 dead letter(s)" in out
    assert any("urls.txt:2 https://x/a ValueError (permanent): not html" in x for x in out)
    assert "[-1]@-1" not in done.stdout
    assert f"index: none (topic {topics.deadletter('index')} not created yet)" in out
    assert "stories: none" in out
    assert gone not in admin.list_topics()  # listing it did not create it
    admin.close()


@stack
def test_list_since_counts_and_shows_only_the_recent_letters_and_json_has_each(
    dl_settings: Settings,
) -> None:
    s, topics = dl_settings, Topics.from_settings(dl_settings)
    ages = [timedelta(days=3), timedelta(days=2), timedelta(hours=2), timedelta(minutes=5)]
    put(
        s,
        "enrich",
        [
            (deadletter.Origin(topics.clustered, 0, n), RuntimeError(f"model {n}"), {"at": NOW - a})
            for n, a in enumerate(ages)
        ],
    )
    done = run(s, "deadletter", "list", "enrich", "--since", "1d")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("enrich: 4 dead letter(s), 2 since ")
    assert [x.split(": ")[-1] for x in lines[2:]] == ["model 3", "model 2"]

    done = run(s, "deadletter", "list", "enrich", "--json", "-n", "3")
    assert done.returncode == 0, done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["error"] for o in objects] == ["model 3", "model 2", "model 1"]
    assert objects[0]["where"] == f"{topics.clustered}[0]@3"
    assert objects[0]["stage"] == "enrich" and objects[0]["error_class"] == "RuntimeError"


@stack
def test_replay_says_what_it_sent_where_and_sends_each_letter_once(
    dl_settings: Settings,
) -> None:
    s, topics = dl_settings, Topics.from_settings(dl_settings)
    feed = [("newsflow-source", b"feed")]
    put(
        s,
        "clean",
        [
            (deadletter.Origin(topics.pages, 0, 7, feed), ValueError("a"), {}),
            (deadletter.Origin(topics.pages, 1, 8, feed), ValueError("b"), {}),
            (deadletter.Origin(topics.filtered, 0, 9, feed), ValueError("c"), {}),
        ],
    )
    dry = run(s, "deadletter", "replay", "clean", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"would replay 3 dead letter(s) from {topics.deadletter('clean')}",
        f"  1 to {topics.filtered}",
        f"  2 to {topics.pages}",
    ]
    assert read_topic(s, topics.pages) == []

    done = run(s, "deadletter", "replay", "clean")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[0]
        == f"replayed 3 dead letter(s) from {topics.deadletter('clean')}"
    )
    pages = read_topic(s, topics.pages)
    assert sorted(m.value for m in pages) == [b"value 7", b"value 8"]
    assert all(m.headers == feed and m.key == b"site" for m in pages)

    again = run(s, "deadletter", "replay", "clean")
    assert again.stdout.splitlines() == [
        f"replayed 0 dead letter(s) from {topics.deadletter('clean')}"
    ]
    assert len(read_topic(s, topics.pages)) == 2


@stack
def test_replay_of_ingest_letters_says_they_cannot_be_sent_back(dl_settings: Settings) -> None:
    s = dl_settings
    put(s, "ingest", [(deadletter.Origin("", -1, 3), ValueError("x"), {"source": "urls.txt:3"})])
    done = run(s, "deadletter", "replay", "ingest")
    assert done.returncode == 0, done.stderr
    assert "replayed 0 dead letter(s)" in done.stdout
    assert "1 without a source topic (ingest failures: ingest their inputs again)" in done.stdout


@stack
def test_replay_to_a_source_topic_that_is_gone_says_so_and_commits_nothing(
    dl_settings: Settings,
) -> None:
    s = dl_settings
    gone = f"{s.topic_prefix}.gone"
    put(s, "stories", [(deadletter.Origin(gone, 0, 1), ValueError("x"), {})])
    done = run(s, "deadletter", "replay", "stories")
    assert done.returncode == 2
    assert f"came from {gone}, which does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    group = f"{s.topic_prefix}-replay-stories"
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    assert not admin.list_group_offsets({group: None}).get(group)
    # Once the topic is back, the letter is replayed: it was not passed over.
    admin.create_topics([NewTopic(gone, 1, 1)], wait_for_metadata=True)
    admin.close()
    done = run(s, "deadletter", "replay", "stories")
    assert done.returncode == 0, done.stderr
    assert f"  1 to {gone}" in done.stdout.splitlines()
    assert [m.value for m in read_topic(s, gone)] == [b"value 1"]


@stack
def test_a_replay_of_a_stage_whose_topic_does_not_exist_says_so(settings: Settings) -> None:
    s = settings.model_copy(update={"topic_prefix": unique("dl-none")})
    done = run(s, "deadletter", "replay", "index", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"nothing to replay: {Topics.from_settings(s).deadletter('index')} not created yet"
    )


def test_help_documents_the_exit_codes() -> None:
    for command in ("list", "replay"):
        done = subprocess.run(
            [sys.executable, "-m", "newsflow.cli", "deadletter", command, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Exit codes: 0" in done.stdout and "2 Kafka unreachable" in done.stdout
