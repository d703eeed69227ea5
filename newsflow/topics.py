"""The pipeline's Kafka topics, declared once: names, partitioning, retention.

Data flows one way:

    ingest -> pages -> clean -> articles -> stories -> clustered -> enrich -> enriched
           -> index -> Elasticsearch
                    -> matches (articles the watches match) -> alert -> alerts -> webhook
                       clean -> filtered (pages that are not articles, with the reason)
                     stories -> enriched (exact duplicates skip NER)
 Each stage has a dead-letter topic that keeps what it could not
process, with the original bytes and headers saying why (see newsflow.deadletter).

Topics are created by newsflow (``newsflow topics create``, and on worker start), never by
the broker's auto-creation: a topic auto-created with one partition would break the
co-partitioning the Faust tables rely on (all pages of one site on one partition).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from newsflow import connections
from newsflow.errors import SetupError
from newsflow.settings import Settings

log = logging.getLogger(__name__)

STAGES = (
    "ingest",
    "clean",
    "stories",
    "enrich",
    "index",
    "reclean",
    "alert",
    "webhook",
    "names",
)
DAY_MS = 24 * 3600 * 1000
# A page is capped at 5 MB when fetched; as base64 inside JSON it grows by a third.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class TopicMismatch(SetupError):
    """Topics that exist with another layout than the pipeline declares."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    description: str
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False  # a table's changelog: the last value of each key is kept

    @property
    def config(self) -> dict[str, str]:
        kept = (
            {"cleanup.policy": "compact"}
            if self.compacted
            else {"retention.ms": str(self.retention_ms)}
        )
        return {
            **kept,
            "compression.type": "producer",
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
        }


@dataclass(frozen=True)
class Topics:
    """Topic names for one pipeline (one prefix)."""

    prefix: str
    partitions: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        return cls(settings.topic_prefix, settings.topic_partitions)

    @property
    def pages(self) -> str:
        return f"{self.prefix}.pages"

    @property
    def articles(self) -> str:
        return f"{self.prefix}.articles"

    @property
    def clustered(self) -> str:
        return f"{self.prefix}.clustered"

    @property
    def filtered(self) -> str:
        return f"{self.prefix}.filtered"

    @property
    def enriched(self) -> str:
        return f"{self.prefix}.enriched"

    @property
    def recleans(self) -> str:
        return f"{self.prefix}.recleans"

    @property
    def watches(self) -> str:
        return f"{self.prefix}.watches"

    @property
    def matches(self) -> str:
        return f"{self.prefix}.matches"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def names(self) -> str:
        return f"{self.prefix}.names"

    @property
    def labels(self) -> str:
        return f"{self.prefix}.labels"

    @property
    def group(self) -> str:
        """The consumer group of the pipeline's workers (Faust's app id)."""
        return f"{self.prefix}-pipeline"

    def deadletter(self, stage: str) -> str:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        return f"{self.prefix}.deadletter.{stage}"

    def tables(self) -> dict[str, int]:
        """The workers' tables and their partitions: those of the topic each is keyed
        like (site-stories and boilerplate by site, as the pages; stories is global)."""
        return {
            "site-stories": self.partitions,
            "boilerplate": self.partitions,
            "stories": 1,
            "alerted": self.partitions,  # keyed by story, as the matches topic
            "name-labels": self.partitions,  # keyed by name, as the names topic
        }

    def changelogs(self) -> list[TopicSpec]:
        """The tables' changelog topics, named as Faust names them. Created with the
        pipeline's topics, before any worker starts: workers starting together otherwise
        race to create them, and one that sees a changelog before its partitions are
        known refuses every write to its table."""
        return [
            TopicSpec(
                f"{self.prefix}-pipeline-{name}-changelog",
                partitions,
                f"changelog of the workers' {name} table",
                compacted=True,
            )
            for name, partitions in self.tables().items()
        ]

    def specs(self) -> list[TopicSpec]:
        """Every topic newsflow creates: the pipeline's, its dead letters', the tables'."""
        return self._pipeline() + self.changelogs()

    def _pipeline(self) -> list[TopicSpec]:
        p = self.partitions
        return [
            TopicSpec(self.pages, p, "raw fetched pages, keyed by site"),
            # One partition: story clustering compares every article with every recent one,
            # across sites, so its state cannot be split. The stage is cheap (MinHash).
            TopicSpec(self.articles, 1, "clean deduplicated articles awaiting story clustering"),
            TopicSpec(self.clustered, p, "articles with their story cluster, keyed by id"),
            TopicSpec(self.enriched, p, "entity-tagged articles ready to index, keyed by id"),
            TopicSpec(self.filtered, p, "pages that are not articles, with the reason"),
            TopicSpec(self.recleans, p, "indexed articles of a site to clean again, keyed by site"),
            # Standing queries: every worker reads all of it, so one partition; compacted, so
            # the last version of each watch is kept for as long as it is not removed.
            TopicSpec(
                self.watches, 1, "standing queries (newsflow watch), keyed by name", compacted=True
            ),
            TopicSpec(self.matches, p, "indexed articles a watch matched, keyed by story"),
            TopicSpec(self.alerts, p, "one alert per story per watch, keyed by watch"),
            TopicSpec(self.names, p, "each article's entity labels, as votes, keyed by name"),
            # Every worker relabels from all of it, so one partition; compacted, so the last
            # settled label of each name is kept until the name is forgotten.
            TopicSpec(
                self.labels, 1, "labels the stream has settled on, keyed by name", compacted=True
            ),
            # Dead letters are kept longer: someone has to look at them and replay them.
            *(
                TopicSpec(
                    self.deadletter(s), 1, f"what the {s} stage could not process", 30 * DAY_MS
                )
                for s in STAGES
            ),
        ]


def ensure_topics(
    settings: Settings,
    specs: Iterable[TopicSpec],
    client: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet (with the settings' replication factor);
    returns the names created. Existing topics are left alone (their partition count is
    checked, since a mismatch breaks tables). ``client``: more options of the admin
    client; a short command passes ``services.KAFKA_TIMEOUTS`` so an unreachable broker is
    said in seconds (a worker keeps kafka-python's patient defaults)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    specs = list(specs)
    replication = settings.topic_replication
    with closing(_admin(settings, client)) as admin:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            new = [
                NewTopic(s.name, s.partitions, replication, topic_configs=s.config) for s in missing
            ]
            try:
                # Returns once every partition has a leader: a worker started right after
                # must not see a topic whose partitions are not known yet.
                admin.create_topics(new, wait_for_metadata=True)
                log.info("created topics: %s", ", ".join(s.name for s in missing))
            except TopicAlreadyExistsError:  # another worker or `topics create`, just now
                log.info("some topics were created by another process meanwhile")
                # The error skipped the wait for the topics this call did create.
                admin.wait_for_topics([s.name for s in missing])
        _check_partitions(admin, [s for s in specs if s.name in existing])
        return [s.name for s in missing]


@dataclass(frozen=True)
class TopicState:
    """A declared topic as the broker has it: ``partitions`` is None when it is missing."""

    spec: TopicSpec
    partitions: int | None

    @property
    def ok(self) -> bool:
        return self.partitions == self.spec.partitions

    @property
    def problem(self) -> str:
        if self.partitions is None:
            return "missing"
        if not self.ok:
            return f"has {self.partitions} partition(s), declared {self.spec.partitions}"
        return ""


def compare(specs: Iterable[TopicSpec], on_broker: Mapping[str, int]) -> list[TopicState]:
    """Each declared topic beside its partition count on the broker (``on_broker``)."""
    return [TopicState(s, on_broker.get(s.name)) for s in specs]


def broker_partitions(
    settings: Settings, names: Iterable[str], client: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """The partition count of each of ``names`` that exists on the broker."""
    with closing(_admin(settings, client)) as admin:
        existing = set(admin.list_topics())
        wanted = [n for n in names if n in existing]
        described = admin.describe_topics(wanted) if wanted else []
    return {t["name"]: len(t["partitions"]) for t in described if t["name"] in existing}


def group_lag(
    settings: Settings, group: str, topic: str, client: Mapping[str, Any] | None = None
) -> int:
    """Messages of ``topic`` that ``group`` has not committed yet, over all partitions
    (0 for a topic that does not exist or is empty)."""
    from kafka import TopicPartition

    with closing(_admin(settings, client)) as admin:
        committed = admin.list_group_offsets({group: None}).get(group, {})
    consumer = connections.kafka_consumer(settings, client_id="newsflow-lag", **(client or {}))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        consumer.close()
    lag = 0
    for tp, end in ends.items():
        done = committed.get(tp)
        lag += end - (done.offset if done is not None and done.offset >= 0 else 0)
    return lag


def recleans_left(settings: Settings) -> int:
    """Re-cleanings the workers have not done yet (processors.reclean)."""
    topics = Topics.from_settings(settings)
    return group_lag(settings, topics.group, topics.recleans)


def _admin(settings: Settings, client: Mapping[str, Any] | None) -> Any:
    return connections.kafka_admin(settings, client_id="newsflow-admin", **(client or {}))


def _check_partitions(admin: Any, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    described = admin.describe_topics([s.name for s in specs])
    counts = {t["name"]: len(t["partitions"]) for t in described}
    wrong = [s for s in specs if counts.get(s.name, s.partitions) != s.partitions]
    if wrong:
        listing = ", ".join(f"{s.name} has {counts[s.name]}, needs {s.partitions}" for s in wrong)
        raise TopicMismatch(
            f"existing topics have the wrong partition count ({listing}); the tables that "
            "keep dedup state need the counts newsflow declares",
            "delete those topics (their data is lost) or choose a new NEWSFLOW_TOPIC_PREFIX; "
            "NEWSFLOW_TOPIC_PARTITIONS must match the pipeline topics' count",
        )
