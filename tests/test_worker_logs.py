"""The worker's log: plain lines in newsflow's format, levels from --loglevel and -v/-q,
aiokafka's "no coordinator" error on a fresh broker said only at DEBUG, a producer buffer
that holds the table writes of a burst of articles without warning; and a real worker
writing to a file (as the demo runs it) leaves no spinner escapes, tables or tracebacks."""

from __future__ import annotations

import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.consumer import group_coordinator  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    GroupCoordinatorNotAvailableError,
    NotCoordinatorError,
)

from newsflow import logs
from newsflow.demo.sites import EXPECTED, render
from newsflow.records import RawPage, Source, SourceKind
from newsflow.settings import Settings, as_env
from processors import clean, stages, worker_logs
from processors.app import Pipeline
from tests.conftest import Process

OPTIONS = stages.PipelineOptions()


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def said(self) -> list[tuple[str, str, str]]:
        return [(r.name, r.levelname, r.getMessage()) for r in self.records]


@pytest.fixture
def collected() -> Iterator[Collect]:
    """The levels the worker would set, with the root handler swapped for a collector;
    every logger's level and filters are put back afterwards."""
    names = ["", *worker_logs.OWN, worker_logs.LIFECYCLE, worker_logs.COORDINATOR_LOGGER]
    names += ["kafka", "elastic_transport", "faust.transport.consumer"]
    saved = {n: logging.getLogger(n).level for n in names}
    filters = list(logging.getLogger(worker_logs.COORDINATOR_LOGGER).filters)
    handlers = list(logging.getLogger().handlers)
    collect = Collect()
    yield collect
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger(worker_logs.COORDINATOR_LOGGER).filters[:] = filters
    logging.getLogger().handlers[:] = handlers


def _configure(collect: Collect, loglevel: str, verbosity: int) -> None:
    logs.configure(verbosity)
    worker_logs.configure(loglevel, verbosity)
    logging.getLogger().handlers[:] = [collect]


def _no_coordinator() -> None:
    # The very call aiokafka makes while a fresh broker creates its offsets topic.
    group_coordinator.log.error(
        "Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError()
    )


def test_the_demoted_message_is_the_one_aiokafka_logs() -> None:
    # If aiokafka rewords or moves it, the filter would silently stop matching.
    assert group_coordinator.log.name == worker_logs.COORDINATOR_LOGGER
    source = inspect.getsource(group_coordinator.GroupCoordinator.ensure_coordinator_known)
    assert f'log.error("{worker_logs.COORDINATOR_LOOKUP_FAILED}", err)' in source


def test_a_forming_group_is_no_error_but_shows_at_debug(collected: Collect) -> None:
    _configure(collected, "warn", 0)
    _no_coordinator()
    assert collected.said() == []
    _configure(collected, "info", 1)  # -v
    _no_coordinator()
    assert collected.said() == [
        (
            worker_logs.COORDINATOR_LOGGER,
            "DEBUG",
            "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
        )
    ]


def test_other_coordinator_errors_stay_errors(collected: Collect) -> None:
    _configure(collected, "warn", 0)
    group_coordinator.log.error("Group Coordinator Request failed: %s", NotCoordinatorError())
    group_coordinator.log.error("Heartbeat failed: %r", GroupCoordinatorNotAvailableError())
    assert [level for _, level, _ in collected.said()] == ["ERROR", "ERROR"]


def test_the_filter_is_installed_once(collected: Collect) -> None:
    _configure(collected, "info", 0)
    _configure(collected, "warn", 0)
    logger = logging.getLogger(worker_logs.COORDINATOR_LOGGER)
    assert sum(isinstance(f, worker_logs.FormingGroup) for f in logger.filters) == 1


@pytest.mark.parametrize(
    ("loglevel", "verbosity", "shown"),
    [
        # newsflow's info, the worker's start and stop, but not Faust's services' chatter
        ("info", 0, {"processors:INFO", "processors:WARNING", "faust.worker:INFO"}),
        ("warn", 0, {"processors:WARNING"}),
        ("info", -1, {"processors:WARNING"}),  # -q: no less than warnings
        ("crit", 0, set()),
        (
            "debug",
            0,
            {
                "processors:INFO",
                "processors:WARNING",
                "faust.worker:INFO",
                "faust.transport.consumer:INFO",
            },
        ),
        (
            "warn",
            1,  # -v: everything
            {
                "processors:INFO",
                "processors:WARNING",
                "faust.worker:INFO",
                "faust.transport.consumer:INFO",
            },
        ),
    ],
)
def test_levels_follow_loglevel_and_verbosity(
    collected: Collect, loglevel: str, verbosity: int, shown: set[str]
) -> None:
    _configure(collected, loglevel, verbosity)
    logging.getLogger("processors.app").info("ours")
    logging.getLogger("processors.app").warning("ours")
    logging.getLogger("faust.worker").info("[^Worker]: Ready")
    logging.getLogger("faust.transport.consumer").info("+Topic Partition Set---+")
    assert {f"{n.split('.app')[0]}:{lvl}" for n, lvl, _ in collected.said()} == shown


def test_a_worker_logging_to_a_file_writes_plain_lines(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "newsflow.cli", "worker", "--loglevel", "info"]
    worker = Process(argv, {**os.environ, **as_env(pipeline_settings)}, log)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while "Ready" not in worker.tail() and time.monotonic() < deadline:
            assert worker.running, worker.tail()
            time.sleep(0.5)
        assert "Ready" in worker.tail(), worker.tail()
    finally:
        worker.stop(signal.SIGTERM)
    assert worker.proc is not None and worker.proc.returncode == 0, worker.tail()
    text = log.read_text(errors="replace")
    assert "\x1b" not in text, repr(text[:2000])
    assert "+---" not in text and "| topic" not in text, text  # Faust's ASCII tables
    assert "Traceback" not in text, text
    lines = text.splitlines()
    # One format: every line is newsflow's "HH:MM:SS LEVEL logger: message".
    assert all(line[:9].count(":") == 2 and line[8] == " " for line in lines), text
    assert any("[^Worker]: Stopping" in line for line in lines), text
    assert len(lines) < 40, text


class Counting(dict[str, Any]):
    """A table that counts its writes: each is one changelog record in a Faust table."""

    writes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.writes += 1
        super().__delitem__(key)


def test_the_producer_buffer_holds_a_burst_of_articles_table_writes(tmp_path: Path) -> None:
    # The writes the demo's articles really cause, through the clean and stories stages.
    site_stories, boilerplate, story_table = Counting(), Counting(), Counting()
    per_article = []
    for n, spec in enumerate(EXPECTED.articles):
        rendered = render(spec.site, spec.path)
        assert rendered is not None
        url = f"https://{spec.site}.example{spec.path}"
        page = RawPage(
            url=url,
            canonical_url=url,
            site=f"{spec.site}.example",
            fetched_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=n),
            content_type=rendered[1],
            body=rendered[2],
            source=Source(kind=SourceKind.DEMO),
        )
        before = site_stories.writes + boilerplate.writes + story_table.writes
        found = stages.extract(page, OPTIONS)
        assert isinstance(found, clean.Extracted)
        stages.note_site(site_stories, 0, page.site)
        article = stages.deduplicate(page, found, site_stories, boilerplate, OPTIONS).article
        stages.cluster(article, story_table, OPTIONS)
        per_article.append(site_stories.writes + boilerplate.writes + story_table.writes - before)
    # One key per LSH band in each of the two story tables: far above Faust's 100 for a
    # few articles in a row.
    assert min(per_article) > 2 * OPTIONS.stories.bands
    size = Pipeline(Settings(topic_prefix="buffer", state_dir=tmp_path)).app.producer.buffer
    # The demo's bursts held about 4 articles' writes (a peak of 410 records): twice that
    # must fit without Faust pausing intake and warning "producer buffer full".
    assert size.max_messages >= 8 * max(per_article)
