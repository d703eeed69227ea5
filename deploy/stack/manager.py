"""The stack as a whole: both nodes up (in parallel), down, status and logs, and the
settings a newsflow client needs to reach them (``client.env``).

A stack directory is made plain or secured (``StackSettings.secure``) and stays so: its
Kafka storage holds SCRAM users or not, its node's config TLS or not. The directory
records which in its ``security`` file; a directory from before that file existed was
plain. ``status``, ``down`` and ``logs`` follow the recorded mode; an ``up`` that asks for
the other one is refused, since reusing the data would half-work at best.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from deploy.stack import es_security
from deploy.stack.elasticsearch import ElasticsearchNode
from deploy.stack.errors import StackError
from deploy.stack.java import find_jdk
from deploy.stack.kafka import KafkaNode
from deploy.stack.process import stop, tail, wait_until
from deploy.stack.secure import KAFKA_CLIENT, SecureFiles, write_private
from newsflow.settings import Settings, StackSettings

log = logging.getLogger(__name__)

Mode = Literal["plain", "secured"]
MODE_FILE = "security"


class Node(Protocol):
    name: str
    port: int

    @property
    def address(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def log_file(self) -> Path: ...
    @property
    def server_log(self) -> Path: ...
    @property
    def pid_file(self) -> Path: ...
    def pid(self) -> int | None: ...
    def start(self) -> int: ...
    def healthy(self) -> bool: ...


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    version: str
    address: str
    pid: int | None
    healthy: bool

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "starting (not healthy yet)"


def recorded_mode(stack_dir: Path) -> Mode | None:
    """The mode the stack directory was made in, or None for a directory not made yet."""
    try:
        text = (stack_dir / MODE_FILE).read_text().strip()
    except FileNotFoundError:
        made = (stack_dir / "kafka" / "data" / "meta.properties").is_file() or (
            stack_dir / "elasticsearch" / "data"
        ).is_dir()
        return "plain" if made else None
    if text not in ("plain", "secured"):
        raise StackError(
            f"{stack_dir / MODE_FILE} says {text!r}, not plain or secured",
            f"write plain or secured into it, as the stack in {stack_dir} was made",
        )
    return "secured" if text == "secured" else "plain"


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        recorded = recorded_mode(settings.dir)
        # Asked for: set by the environment, a command-line flag or the caller.
        self.asked: Mode | None = None
        if "secure" in settings.model_fields_set:
            self.asked = "secured" if settings.secure else "plain"
        mode = recorded or self.asked or ("secured" if settings.secure else "plain")
        if settings.secure != (mode == "secured"):
            settings = settings.model_copy(update={"secure": mode == "secured"})
        self.settings = settings
        self.recorded = recorded
        self.secure = SecureFiles(settings.dir) if settings.secure else None
        self.kafka = KafkaNode(settings, self.secure)
        self.elasticsearch = ElasticsearchNode(settings, self.secure)

    @property
    def mode(self) -> Mode:
        return "secured" if self.secure else "plain"

    @property
    def client_env_file(self) -> Path:
        """Where ``up`` writes the client settings (as given, not resolved: for messages)."""
        return self.settings.dir / "client.env"

    @property
    def nodes(self) -> list[Node]:
        return [self.kafka, self.elasticsearch]

    def up(self) -> list[ServiceStatus]:
        """Start what is not running, then wait until both are healthy. A node this stack
        already runs is reused, so `up` twice is harmless. Secured, certificates and
        passwords are made first (once) and newsflow's API key after health; both modes
        end by writing client.env."""
        self._check_mode()
        self.settings.dir.mkdir(parents=True, exist_ok=True)
        (self.settings.dir / MODE_FILE).write_text(self.mode + "\n")
        started = time.monotonic()
        if self.secure:
            self.secure.prepare(self._keytool(), formatted=self.kafka.formatted())
        for node in self.nodes:
            if node.pid() is None:
                node.start()
            else:
                log.info("%s already running (pid %s), reusing it", node.name, node.pid())
        for node in self.nodes:
            self._await_health(node, started)
        if self.secure:
            remaining = self.settings.start_timeout - (time.monotonic() - started)
            es_security.ensure_api_key(self.elasticsearch.address, self.secure, remaining)
        write_private(self.settings.dir / "client.env", _env_file(self.client_env()))
        log.info("stack healthy after %.1fs", time.monotonic() - started)
        return self.status()

    def _check_mode(self) -> None:
        if self.asked is None or self.recorded is None or self.asked == self.recorded:
            return
        where = self.settings.dir.resolve()
        raise StackError(
            f"the stack in {where} was made {self.recorded}, and a {self.asked} one is asked "
            f"for (NEWSFLOW_STACK_SECURE{' or --secure' if self.asked == 'secured' else ''}); "
            "its data cannot be reused in the other mode",
            "use another NEWSFLOW_STACK_DIR for the "
            f"{self.asked} stack, or `newsflow stack down` and remove {where} to start "
            "afresh (its data is lost)",
        )

    def _keytool(self) -> Path:
        jdk = find_jdk(
            17, self.settings.kafka_java_home, "Kafka 4", "NEWSFLOW_STACK_KAFKA_JAVA_HOME"
        )
        keytool = jdk.home / "bin" / "keytool"
        if keytool.is_file():
            return keytool
        found = shutil.which("keytool")
        if found is None:
            raise StackError(
                f"a secured stack makes its certificates with keytool, and {jdk.home} has none",
                "install a full JDK, or put keytool on PATH",
            )
        return Path(found)

    def _client_values(self) -> dict[str, str]:
        """The client settings, by Settings field name (what ``client.env`` says)."""
        values = {
            "kafka_bootstrap": self.settings.kafka_bootstrap,
            "elasticsearch_url": self.settings.elasticsearch_url,
        }
        if self.secure is None:
            return values
        api_key = self.secure.api_key()
        if api_key is None:
            raise StackError(
                f"the secured stack in {self.settings.dir} has no API key for newsflow yet",
                "run `newsflow stack up`: it makes one once Elasticsearch is healthy",
            )
        ca = str(self.secure.ca_pem)
        return {
            **values,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": KAFKA_CLIENT,
            "kafka_sasl_password": self.secure.passwords().kafka_client,
            "kafka_ssl_cafile": ca,
            "elasticsearch_api_key": api_key,
            "elasticsearch_ca_file": ca,
        }

    def client_env(self) -> dict[str, str]:
        """The NEWSFLOW_* variables that point a newsflow client at this stack (secrets
        included: for a child's environment or client.env, never for printing)."""
        return {f"NEWSFLOW_{name.upper()}": value for name, value in self._client_values().items()}

    def client_settings(self) -> Settings:
        """newsflow's Settings for this stack: the environment's, except for how to reach
        and authenticate to Kafka and Elasticsearch, which come from the stack alone."""
        # Every connection setting at its default, then the stack's own values.
        unset: dict[str, Any] = {
            name: field.default
            for name, field in Settings.model_fields.items()
            if name.startswith(("kafka_", "elasticsearch_"))
        }
        return Settings(**{**unset, **self._client_values()})

    def _await_health(self, node: Node, started: float) -> None:
        timeout = self.settings.start_timeout - (time.monotonic() - started)

        def ready() -> bool:
            if node.pid() is None:
                # What the JVM printed itself (a bad option, no memory), else the log.
                path = node.log_file if tail(node.log_file, 1).strip() else node.server_log
                raise StackError(
                    f"{node.name} exited during start-up; its log ends with:\n{tail(path, 25)}",
                    f"see {path} (`newsflow stack logs {node.name}`)",
                )
            return node.healthy()

        if not wait_until(ready, max(timeout, 1.0), interval=1.0):
            raise StackError(
                f"{node.name} did not become healthy within {self.settings.start_timeout:.0f}s",
                f"see `newsflow stack logs {node.name}`; raise NEWSFLOW_STACK_START_TIMEOUT on a "
                "slow machine",
            )

    def down(self) -> list[str]:
        """Stop both nodes; returns the names of those that were running."""
        stopped = []
        for node in reversed(self.nodes):
            if stop(node.pid_file, node.name):
                stopped.append(node.name)
        return stopped

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise StackError(f"no service named {name!r}", "choose kafka or elasticsearch")

    def stop_node(self, name: str) -> bool:
        """Stop one node (the fault drills stop a service mid-stream)."""
        node = self.node(name)
        return stop(node.pid_file, node.name)

    def start_node(self, name: str) -> None:
        """Start one node again and wait until it is healthy."""
        node = self.node(name)
        started = time.monotonic()
        if node.pid() is None:
            node.start()
        self._await_health(node, started)

    def status(self) -> list[ServiceStatus]:
        return [
            ServiceStatus(
                node.name,
                node.version,
                node.address,
                pid,
                pid is not None and node.healthy(),
            )
            for node in self.nodes
            for pid in [node.pid()]
        ]

    def logs(self, name: str, lines: int) -> tuple[Path, str]:
        """The end of a service's own log (where it is, and its last ``lines``). Kafka
        writes its log through log4j to server.log, not to the process's stdout: that
        only carries what the JVM prints before log4j starts, read when the log is empty."""
        node = self.node(name)
        for path in (node.server_log, node.log_file):
            text = tail(path, lines)
            if text.strip():
                return path, text
        return node.server_log, ""


def _env_file(env: dict[str, str]) -> str:
    """NAME=value lines a shell can source (`set -a; . client.env; set +a`)."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in env.items())
