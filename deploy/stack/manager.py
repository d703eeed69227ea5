"""The stack as a whole: both nodes up (in parallel), down, status and logs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy.stack.elasticsearch import ElasticsearchNode
from deploy.stack.errors import StackError
from deploy.stack.kafka import KafkaNode
from deploy.stack.process import stop, tail, wait_until
from newsflow.settings import StackSettings

log = logging.getLogger(__name__)


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


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.kafka = KafkaNode(settings)
        self.elasticsearch = ElasticsearchNode(settings)

    @property
    def nodes(self) -> list[Node]:
        return [self.kafka, self.elasticsearch]

    def up(self) -> list[ServiceStatus]:
        """Start what is not running, then wait until both are healthy. A node this stack
        already runs is reused, so `up` twice is harmless."""
        self.settings.dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for node in self.nodes:
            if node.pid() is None:
                node.start()
            else:
                log.info("%s already running (pid %s), reusing it", node.name, node.pid())
        for node in self.nodes:
            self._await_health(node, started)
        log.info("stack healthy after %.1fs", time.monotonic() - started)
        return self.status()

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
