"""Whether Kafka and Elasticsearch answer, asked in seconds, and their clients' failures
turned into one ``Unreachable`` naming the address.

Without this, a command run with the stack down waits out kafka-python's 30 s bootstrap
timeout and ends in a 60-line ``KafkaTimeoutError`` traceback, or the Elasticsearch
client's retries end in 260 lines. A command that needs a service calls
``require_kafka`` / ``require_elasticsearch`` first (a TCP connection, then one request,
each bounded by ``timeout``), and runs its work inside ``reachable`` so a service lost
midway is reported the same way.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from newsflow.errors import SetupError, Unreachable
from newsflow.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT = 5.0
# For kafka-python clients made by short-lived commands: an unreachable broker is said in
# seconds, not after the 30 s default.
KAFKA_TIMEOUTS: dict[str, Any] = {"bootstrap_timeout_ms": 5000, "request_timeout_ms": 10000}


def addresses(bootstrap: str) -> list[tuple[str, int]]:
    """(host, port) of each server of a bootstrap list; a bad entry is a SetupError."""
    out = []
    for entry in (e.strip() for e in bootstrap.split(",")):
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise SetupError(
                f"bad Kafka bootstrap server {entry!r} in {bootstrap!r}",
                "write host:port[,host:port...] in NEWSFLOW_KAFKA_BOOTSTRAP (--kafka)",
            )
        out.append((host.strip("[]"), int(port)))
    return out


def require_kafka(bootstrap: str, timeout: float = TIMEOUT) -> None:
    """Return if one of the bootstrap servers accepts a connection and answers a metadata
    request; raise ``Unreachable`` otherwise, within about ``timeout`` seconds."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    last: BaseException | None = None
    for host, port in addresses(bootstrap):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            break
        except OSError as err:
            last = err
    else:
        raise Unreachable("Kafka", bootstrap, last or "no server given")
    ms = int(timeout * 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="newsflow-check",
            bootstrap_timeout_ms=ms,
            request_timeout_ms=ms,
        )
        admin.close()
    except KafkaError as err:
        raise Unreachable("Kafka", bootstrap, f"no Kafka answer: {type(err).__name__}") from err


def require_elasticsearch(url: str, timeout: float = TIMEOUT) -> None:
    """Return if ``url`` answers as an Elasticsearch node; raise ``Unreachable`` (no answer)
    or ``SetupError`` (an answer that is not Elasticsearch's) otherwise."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError, Elasticsearch

    try:
        with Elasticsearch(url, request_timeout=timeout, max_retries=0) as es:
            # Not `GET /` (es.info): the minimal distribution the local stack runs lacks the
            # module that serves it. The cluster's health is there on every node, and the
            # client checks the answer's product header, so a proxy's page is told apart.
            es.cluster.health()
    except TransportError as err:
        raise Unreachable("Elasticsearch", url, err) from err
    except ApiError as err:
        raise SetupError(
            f"{url} does not answer as Elasticsearch (HTTP {err.meta.status})",
            "check NEWSFLOW_ELASTICSEARCH_URL (--elasticsearch)",
        ) from err
    except ValueError as err:  # the client refuses a URL it cannot parse
        raise SetupError(
            f"bad Elasticsearch URL {url!r}: {err}",
            "write http(s)://host:port in NEWSFLOW_ELASTICSEARCH_URL (--elasticsearch)",
        ) from err


def require(settings: Settings, *, kafka: bool = False, elasticsearch: bool = False) -> None:
    if kafka:
        require_kafka(settings.kafka_bootstrap)
    if elasticsearch:
        require_elasticsearch(settings.elasticsearch_url)


def wait_for(check: Callable[[], None], say: Callable[[str], None], interval: float = 5.0) -> None:
    """For long-running services (the worker, the feed monitor): call ``check`` until it
    stops raising ``Unreachable``, saying once that it waits and once that it goes on."""
    waited = False
    while True:
        try:
            check()
        except Unreachable as err:
            if not waited:
                say(f"waiting for {err.service}: {err}")
                waited = True
            time.sleep(interval)
            continue
        if waited:
            say("reached it; starting")
        return


@contextmanager
def reachable(settings: Settings) -> Iterator[None]:
    """Turns the clients' connection failures raised inside into one ``Unreachable``."""
    from elastic_transport import TransportError
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    try:
        yield
    # kafka-python 3 says "Unable to bootstrap" with a KafkaTimeoutError (2.x raised
    # NoBrokersAvailable, which 3.0 no longer has).
    except (KafkaTimeoutError, KafkaConnectionError) as err:
        raise Unreachable("Kafka", settings.kafka_bootstrap, err) from err
    except TransportError as err:  # refused, timed out, TLS: no answer at all
        raise Unreachable("Elasticsearch", settings.elasticsearch_url, err) from err
