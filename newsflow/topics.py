"""The pipeline's Kafka topics, declared once: names, partitioning, retention.

Data flows one way: ingest -> pages -> (clean) -> articles -> (enrich) -> enriched ->
(index) -> Elasticsearch. Each stage has a dead-letter topic that keeps what it could not
process, with the original bytes and headers saying why (see newsflow.deadletter).

Topics are created by newsflow (``newsflow topics create``, and on worker start), never by
the broker's auto-creation: a topic auto-created with one partition would break the
co-partitioning the Faust tables rely on (all pages of one site on one partition).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from newsflow.settings import Settings

log = logging.getLogger(__name__)

STAGES = ("ingest", "clean", "enrich", "index")
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    description: str
    retention_ms: int = 7 * DAY_MS

    @property
    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "compression.type": "producer"}


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
    def enriched(self) -> str:
        return f"{self.prefix}.enriched"

    def deadletter(self, stage: str) -> str:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        return f"{self.prefix}.deadletter.{stage}"

    def specs(self) -> list[TopicSpec]:
        p = self.partitions
        return [
            TopicSpec(self.pages, p, "raw fetched pages, keyed by site"),
            TopicSpec(self.articles, p, "clean deduplicated articles, keyed by site"),
            TopicSpec(self.enriched, p, "entity-tagged articles ready to index, keyed by id"),
            # Dead letters are kept longer: someone has to look at them and replay them.
            *(
                TopicSpec(
                    self.deadletter(s), 1, f"what the {s} stage could not process", 30 * DAY_MS
                )
                for s in STAGES
            ),
        ]


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], replication: int = 1) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Existing topics
    are left alone (their partition count is checked, since a mismatch breaks tables)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    specs = list(specs)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="newsflow-admin")
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            admin.create_topics(
                [
                    NewTopic(s.name, s.partitions, replication, topic_configs=s.config)
                    for s in missing
                ]
            )
            log.info("created topics: %s", ", ".join(s.name for s in missing))
        _check_partitions(admin, [s for s in specs if s.name in existing])
        return [s.name for s in missing]
    finally:
        admin.close()


def _check_partitions(admin: object, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    described = admin.describe_topics([s.name for s in specs])  # type: ignore[attr-defined]
    counts = {t["topic"]: len(t["partitions"]) for t in described}
    for spec in specs:
        if counts.get(spec.name, spec.partitions) != spec.partitions:
            log.warning(
                "topic %s has %d partitions, newsflow expects %d (NEWSFLOW_TOPIC_PARTITIONS); "
                "keep the setting equal to the topic's count",
                spec.name,
                counts[spec.name],
                spec.partitions,
            )
