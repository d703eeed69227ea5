"""One Apache Kafka node in KRaft mode (broker and controller in one JVM) on 127.0.0.1.

Secured, its one client listener is SASL_SSL with SCRAM-SHA-256 and SCRAM-SHA-512. The
broker is also its own inter-broker client on that listener, as the SCRAM user ``admin``
(a lone broker never opens such a connection, but the configuration must be whole, and a
second broker would need it); the clients' user is ``newsflow``. Both are created when the
storage is formatted (``kafka-storage format --add-scram``): SCRAM users are metadata
records, and before the first one exists nobody could log in to create it. There is no
authorizer: an authenticated user may do anything, as any client may on the plain stack.
The controller listener stays PLAINTEXT, bound to loopback, for the node itself.
"""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from deploy.stack import artifacts
from deploy.stack.errors import StackError
from deploy.stack.java import find_jdk
from deploy.stack.process import port_open, read_pid, start_detached
from deploy.stack.secure import KAFKA_ADMIN, KAFKA_CLIENT, SecureFiles, write_private
from newsflow import redact
from newsflow.settings import Settings, StackSettings

log = logging.getLogger(__name__)

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
LOG4J_CONFIG = Path(__file__).with_name("log4j2.yaml")
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
BROKER_MECHANISM: Final = "SCRAM-SHA-512"  # inter-broker, and the health check
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required"


class KafkaNode:
    name = "kafka"

    def __init__(self, settings: StackSettings, secure: SecureFiles | None = None) -> None:
        self.settings = settings
        self.secure = secure  # None: PLAINTEXT
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

    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def server_properties(self) -> str:
        s = self.settings
        return "\n".join(
            [
                "# Written by `newsflow stack up`; edits are overwritten.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                *(self._secure_listeners(self.secure) if self.secure else self._listeners()),
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

    def _listeners(self) -> list[str]:
        s = self.settings
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},"
            f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]

    def _secure_listeners(self, secure: SecureFiles) -> list[str]:
        s = self.settings
        pw = secure.passwords()
        broker_login = f'{SCRAM_LOGIN} username="{KAFKA_ADMIN}" password="{pw.kafka_admin}";'
        return [
            f"listeners=SASL_SSL://127.0.0.1:{s.kafka_port},"
            f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{s.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={','.join(MECHANISMS)}",
            f"sasl.mechanism.inter.broker.protocol={BROKER_MECHANISM}",
            # Each mechanism needs its login module on the listener; the inter-broker one
            # also carries the broker's own credentials, as the client side of that link.
            *(
                f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config="
                + (broker_login if m == BROKER_MECHANISM else f"{SCRAM_LOGIN};")
                for m in MECHANISMS
            ),
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={secure.server_store}",
            f"ssl.keystore.password={pw.server_store}",
            f"ssl.key.password={pw.server_store}",
            # Kafka reads a PEM trust store as it is: the CA file clients get.
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={secure.ca_pem}",
        ]

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
        if self.secure:
            write_private(self.config, self.server_properties())  # it holds passwords
        else:
            self.config.write_text(self.server_properties())
        java = [str(jdk.java), "-cp", classpath]
        if not self.formatted():
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
        args = [STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(self.config)]
        if self.secure is None:
            done = subprocess.run([*java, *args], capture_output=True, text=True, check=False)
            hidden: list[str] = []
        else:
            done, hidden = self._format_with_users(java, args, self.secure)
        if done.returncode != 0:
            output = redact.cut(done.stdout + done.stderr, hidden)
            raise StackError(
                f"formatting Kafka storage in {self.data_dir} failed:\n{output}",
                f"remove {self.data_dir} if it is left over from another Kafka version",
            )

    def _format_with_users(
        self, java: list[str], args: list[str], secure: SecureFiles
    ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        """Format with the SCRAM users. Their passwords go in a java @argument file (mode
        0600, removed at once), not on the command line, which every local user can read."""
        pw = secure.passwords()
        users = [(KAFKA_ADMIN, pw.kafka_admin), (KAFKA_CLIENT, pw.kafka_client)]
        scram = [
            arg
            for name, password in users
            for mechanism in MECHANISMS
            for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]
        argfile = secure.dir / "kafka-format.args"
        write_private(argfile, "".join(_argfile_line(a) for a in [*java[1:], *args, *scram]))
        try:
            done = subprocess.run(
                [java[0], f"@{argfile}"], capture_output=True, text=True, check=False
            )
        finally:
            argfile.unlink(missing_ok=True)
        return done, [p for _, p in users]

    def client_settings(self) -> Settings:
        """How the stack itself connects: PLAINTEXT, or SASL_SSL as the broker's own user.
        Built with model_construct, so that no NEWSFLOW_* variable of the environment (a
        client certificate meant for another cluster, say) changes the health check."""
        if self.secure is None:
            return Settings.model_construct(
                kafka_bootstrap=self.address, kafka_security_protocol="PLAINTEXT"
            )
        return Settings.model_construct(
            kafka_bootstrap=self.address,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism=BROKER_MECHANISM,
            kafka_sasl_username=KAFKA_ADMIN,
            kafka_sasl_password=SecretStr(self.secure.passwords().kafka_admin),
            kafka_ssl_cafile=self.secure.ca_pem,
        )

    def healthy(self) -> bool:
        """True when the broker answers a metadata request (a TCP accept is not enough: the
        port opens before the controller has elected itself); secured, that request is made
        over SASL_SSL, so the TLS certificate and the SCRAM login are checked too."""
        if not port_open(self.port):
            return False
        if self.secure is not None and not self.secure.made():
            return False  # never started secured: no credentials to log in with
        from kafka.errors import KafkaError

        from newsflow import connections

        try:
            # Seconds, not kafka-python's 30 s bootstrap: `up` asks again until its timeout.
            admin = connections.kafka_admin(
                self.client_settings(), request_timeout_ms=3000, bootstrap_timeout_ms=3000
            )
        except (KafkaError, OSError):
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


def _argfile_line(arg: str) -> str:
    # The java launcher's @file syntax: a quoted argument, backslash escaping inside quotes.
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"\n'


def _kafka_cluster_id() -> str:
    # Kafka's random-uuid: 16 random bytes, URL-safe base64 without padding.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
