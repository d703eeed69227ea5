"""`newsflow topics list` and `create` against the real broker: the list says what the
broker has (missing topics, other partition counts) and exits 1 when it is not what the
pipeline declares; both say one line and exit 2 when Kafka is down."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from newsflow.settings import Settings, as_env
from newsflow.topics import Topics, TopicSpec, compare
from tests.conftest import ROOT, unique


def run(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **as_env(s)}
    argv = [sys.executable, "-m", "newsflow.cli", "topics", *args]
    # The timeout catches a hang (a client waiting out its 30 s bootstrap); how fast the
    # commands answer is not asserted here: speed belongs to the benchmarks.
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_compare_tells_missing_and_mismatched_topics_from_good_ones() -> None:
    specs = [TopicSpec("a", 4, ""), TopicSpec("b", 1, ""), TopicSpec("c", 2, "")]
    states = compare(specs, {"a": 4, "c": 3, "unrelated": 9})
    assert [(st.spec.name, st.partitions, st.ok) for st in states] == [
        ("a", 4, True),
        ("b", None, False),
        ("c", 3, False),
    ]
    assert [st.problem for st in states] == ["", "missing", "has 3 partition(s), declared 2"]


@pytest.fixture
def fresh(settings: Settings) -> Iterator[Settings]:
    """A prefix of the test's own with no topics yet; whatever is made under it is deleted."""
    s = settings.model_copy(update={"topic_prefix": unique("tl")})
    yield s
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    made = [t for t in admin.list_topics() if t.startswith(s.topic_prefix)]
    if made:
        admin.delete_topics(made)
    admin.close()


def rows(out: str) -> dict[str, list[str]]:
    """The table of `topics list`: topic -> [declared, on broker]."""
    return {
        cells[0]: cells[1:3]
        for cells in (line.split() for line in out.splitlines()[1:])
        if len(cells) > 3 and cells[1].isdigit()
    }


@pytest.mark.stack
def test_list_asks_the_broker_and_create_makes_what_is_missing(fresh: Settings) -> None:
    s = fresh
    names = [spec.name for spec in Topics.from_settings(s).specs()]

    before = run(s, "list")
    assert before.returncode == 1, before.stderr
    assert {name: cells[1] for name, cells in rows(before.stdout).items()} == dict.fromkeys(
        names, "missing"
    )
    assert f"{len(names)} of {len(names)} topics missing" in before.stdout
    assert "newsflow topics create" in before.stdout

    created = run(s, "create")
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines()[0] == f"created {len(names)} of {len(names)} topics"

    after = run(s, "list")
    assert after.returncode == 0, after.stderr
    table = rows(after.stdout)
    assert list(table) == names
    assert all(declared == on_broker for declared, on_broker in table.values())
    assert table[Topics.from_settings(s).pages] == ["2", "2"]  # the test stack's partitions

    again = run(s, "create")
    assert again.returncode == 0 and again.stdout.strip() == f"created 0 of {len(names)} topics"


@pytest.mark.stack
def test_a_topic_with_another_partition_count_is_flagged_and_create_refuses(
    fresh: Settings,
) -> None:
    s = fresh
    pages = Topics.from_settings(s).pages
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    admin.create_topics([NewTopic(pages, 3, 1)], wait_for_metadata=True)
    admin.close()

    listed = run(s, "list")
    assert listed.returncode == 1
    assert rows(listed.stdout)[pages] == ["2", "3"]
    assert "1 topic(s) with another partition count than declared" in listed.stdout

    created = run(s, "create")
    assert created.returncode == 2
    [line] = created.stderr.strip().splitlines()[-1:]
    assert f"{pages} has 3, needs 2" in line
    assert "Traceback" not in created.stderr


def test_declared_shows_the_layout_without_a_broker() -> None:
    down = Settings(kafka_bootstrap="127.0.0.1:1", topic_prefix="nfx", topic_partitions=4)
    done = run(down, "list", "--declared")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0].split()
    assert first[:2] == ["nfx.pages", "4"]


def test_help_documents_the_exit_codes() -> None:
    for command in ("list", "create"):
        done = subprocess.run(
            [sys.executable, "-m", "newsflow.cli", "topics", command, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Exit codes: 0" in done.stdout and "2 Kafka unreachable" in done.stdout
