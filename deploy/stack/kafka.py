"""One Apache Kafka node in KRaft mode (broker and controller in one JVM) on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from pathlib import Path

from deploy.stack import artifacts
from deploy.stack.errors import StackError
from deploy.stack.java import find_jdk
from deploy.stack.process import port_open, read_pid, start_detached
from newsflow.settings import StackSettings

log = logging.getLogger(__name__)

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
LOG4J_CONFIG = Path(__file__).with_name("log4j2.yaml")


class KafkaNode:
    name = "kafka"

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.root = settings.dir.resolve() / "kafka"
        self.data_dir = self.root / "data"
        self.log_dir = self.root / "logs"
        self.config = self.root / "server.properties"
        self.pid_file = self.root / "kafka.pid"
        self.log_file = self.log_dir / "stdout.log"
        self.server_log = self.log_dir / "server.log"  # log4j2.yaml writes it
        self.port = settings.kafka_port

    @property
    def address(self) -> str:
        return self.settings.kafka_bootstrap

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def server_properties(self) -> str:
        s = self.settings
        return "\n".join(
            [
                "# Written by `newsflow stack up`; edits are overwritten.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},"
                f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data_dir}",
                # Topics are declared by newsflow with their partition counts; an auto-created
                # one-partition topic would silently break co-partitioning with Faust tables.
                "auto.create.topics.enable=false",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                # One node: no reason to wait for more members before the first rebalance.
                "group.initial.rebalance.delay.ms=0",
                "",
            ]
        )

    def start(self) -> int:
        """Start the node in the background (formatting its storage on first start)."""
        if port_open(self.port) or port_open(self.settings.kafka_controller_port):
            raise StackError(
                f"port {self.port} or {self.settings.kafka_controller_port} on 127.0.0.1 is "
                "taken by a process that is not this stack's Kafka",
                "stop that process, or choose other ports with NEWSFLOW_STACK_KAFKA_PORT and "
                "NEWSFLOW_STACK_KAFKA_CONTROLLER_PORT",
            )
        jdk = find_jdk(
            17, self.settings.kafka_java_home, "Kafka 4", "NEWSFLOW_STACK_KAFKA_JAVA_HOME"
        )
        classpath = artifacts.kafka_classpath(self.settings.dir.resolve() / "artifacts")
        for d in (self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.server_properties())
        java = [str(jdk.java), "-cp", classpath]
        if not (self.data_dir / "meta.properties").is_file():
            self._format(java)
        heap = self.settings.kafka_heap
        argv = [
            str(jdk.java),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            classpath,
            MAIN_CLASS,
            str(self.config),
        ]
        log.info("starting Kafka %s on %s (JDK %s)", self.version, self.address, jdk.major)
        return start_detached(
            argv, log_file=self.log_file, pid_file=self.pid_file, env=os.environ, cwd=self.root
        )

    def _format(self, java: list[str]) -> None:
        cluster_id = _kafka_cluster_id()
        done = subprocess.run(
            [*java, STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(self.config)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise StackError(
                f"formatting Kafka storage in {self.data_dir} failed:\n{done.stdout}{done.stderr}",
                f"remove {self.data_dir} if it is left over from another Kafka version",
            )

    def healthy(self) -> bool:
        """True when the broker answers a metadata request (a TCP accept is not enough: the
        port opens before the controller has elected itself)."""
        if not port_open(self.port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=3000)
        except KafkaError:
            return False
        try:
            return bool(admin.describe_cluster().get("brokers"))
        except KafkaError:
            return False
        finally:
            admin.close()

    @property
    def version(self) -> str:
        return artifacts.pinned_versions().kafka


def _kafka_cluster_id() -> str:
    # Kafka's random-uuid: 16 random bytes, URL-safe base64 without padding.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
