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
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from newsflow import connections
from newsflow.errors import Refused, SetupError, Unreachable, causes, describe_cause
from newsflow.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT = 5.0
# For kafka-python clients made by short-lived commands: an unreachable broker is said in
# seconds, not after the 30 s default.
KAFKA_TIMEOUTS: dict[str, Any] = {"bootstrap_timeout_ms": 5000, "request_timeout_ms": 10000}
CHECK_CORRELATION = 0x6E66  # "nf": the correlation id of the check's own request


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


def require_kafka(settings: Settings, timeout: float = TIMEOUT) -> None:
    """Return if one of the bootstrap servers accepts a connection, completes the TLS
    handshake the settings ask for, and answers a metadata request as the user the
    settings name; raise ``Unreachable`` (no answer) or ``Refused`` (an answer that says
    no: a certificate, a password, a protocol) otherwise, within about ``timeout``
    seconds."""
    from kafka.errors import KafkaError

    bootstrap = settings.kafka_bootstrap
    last: BaseException | None = None
    for host, port in addresses(bootstrap):
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as err:
            last = err
            continue
        with sock:
            confirmed = _check_kafka_transport(settings, sock, host, timeout)
        if not confirmed and connections.kafka_tls(settings) is None:
            _refuse_if_tls(settings, host, port, timeout)
        break
    else:
        raise Unreachable("Kafka", bootstrap, last or "no server given")
    ms = int(timeout * 1000)
    with _bootstrap_failures() as failures:
        try:
            admin = connections.kafka_admin(
                settings,
                client_id="newsflow-check",
                bootstrap_timeout_ms=ms,
                request_timeout_ms=ms,
            )
            admin.close()
        except KafkaError as err:
            raise _kafka_refusal(settings, [err, *failures], confirmed) from err


# kafka-python 3.0 (written against 3.0.12) gives up on a broker that refuses the SASL
# user with the same KafkaTimeoutError ("Unable to bootstrap") as on one that never
# answers; the SaslAuthenticationFailedError that says why is only in what it logs about
# each failed connection (its transport, connection and connection manager each log it,
# the error among the record's arguments). The check reads it there, from every logger
# of the library: which of them says it first depends on when the broker hangs up.
# tests/test_secure_e2e.py checks, on a real broker, that a wrong password is still said
# as such.
KAFKA_LOGGER = "kafka"


@contextmanager
def _bootstrap_failures() -> Iterator[list[BaseException]]:
    """The exceptions kafka-python logs as reasons of failed bootstrap connections while
    the block runs (whatever the command line's log levels: they are read, not shown)."""
    found: list[BaseException] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            args = record.args if isinstance(record.args, tuple) else ()
            found.extend(a for a in args if isinstance(a, BaseException))

    logger = logging.getLogger(KAFKA_LOGGER)
    handler, level, propagate = Collect(), logger.level, logger.propagate
    shown = logger.isEnabledFor(logging.WARNING)  # -v: the records go on to the log too
    logger.addHandler(handler)
    logger.setLevel(min(logger.getEffectiveLevel(), logging.WARNING))
    logger.propagate = shown and propagate
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _refuse_if_tls(settings: Settings, host: str, port: int, timeout: float) -> None:
    """A request in the clear that got no answer: if the port completes a TLS handshake
    (any certificate: this only asks what it speaks), say that it wants TLS."""
    probe = ssl.create_default_context()
    probe.check_hostname, probe.verify_mode = False, ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            probe.wrap_socket(sock, server_hostname=host),
        ):
            pass
    except (ssl.SSLError, OSError):
        return  # not TLS either: kafka-python's own error says the rest
    raise Refused(
        "Kafka",
        settings.kafka_bootstrap,
        f"speaks TLS, and {settings.kafka_security_protocol} does not: the port wants TLS",
        "set NEWSFLOW_KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL (with "
        "NEWSFLOW_KAFKA_SSL_CAFILE if its certificate is not from a public CA)",
    )


def _check_kafka_transport(
    settings: Settings, sock: socket.socket, host: str, timeout: float
) -> bool:
    """TLS where the settings ask for it, then one ApiVersions request, checked by hand:
    through kafka-python a refused certificate, a listener of the other kind or a server
    that is not Kafka all end as the same bootstrap timeout, which names none of them.
    True if Kafka's answer came, False if none came in time (a slow broker, or a server
    that waits for more)."""
    address = settings.kafka_bootstrap
    context = connections.kafka_tls(settings)
    sock.settimeout(timeout)
    if context is None:
        return _kafka_answers(settings, sock)
    try:
        wrapped = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as err:
        wrong_name = "hostname" in str(err.verify_message) or "IP address" in str(
            err.verify_message
        )
        raise Refused(
            "Kafka",
            address,
            f"sent a certificate that is not trusted ({err.verify_message})",
            "set NEWSFLOW_KAFKA_SSL_CAFILE to the PEM file of the CA that signed it"
            + (", or NEWSFLOW_KAFKA_SSL_CHECK_HOSTNAME=false" if wrong_name else ""),
        ) from err
    except (ssl.SSLError, TimeoutError, OSError) as err:
        why = err.reason if isinstance(err, ssl.SSLError) and err.reason else describe_cause(err)
        raise Refused(
            "Kafka",
            address,
            f"did not complete a TLS handshake ({why}): the port may not use TLS",
            "set NEWSFLOW_KAFKA_SECURITY_PROTOCOL to PLAINTEXT or SASL_PLAINTEXT, or point "
            "NEWSFLOW_KAFKA_BOOTSTRAP at the broker's TLS listener",
        ) from err
    with wrapped:
        return _kafka_answers(settings, wrapped)


def _kafka_answers(settings: Settings, sock: socket.socket) -> bool:
    """Send an ApiVersions request and read the answer's head: Kafka's carries the
    request's correlation id."""
    import struct

    address = settings.kafka_bootstrap
    try:
        sock.sendall(_api_versions_request())
        head = b""
        while len(head) < 8:
            chunk = sock.recv(8 - len(head))
            if not chunk:
                break
            head += chunk
    except TimeoutError:
        return False  # slow, not refused: kafka-python's own timeout says the rest
    except OSError:
        head = b""
    if len(head) >= 8 and struct.unpack(">i", head[4:8])[0] == CHECK_CORRELATION:
        return True
    plain = connections.kafka_tls(settings) is None
    # A TLS listener sent a request in the clear closes the connection or answers with a
    # TLS alert record (content type 21, version 3.x): the caller asks it for TLS.
    if plain and (not head or head[:2] in (b"\x15\x03", b"\x16\x03")):
        return False
    raise Unreachable("Kafka", address, "it answers, but not as Kafka")


def _api_versions_request() -> bytes:
    """An ApiVersions request (v0): every Kafka listener answers it, a SASL listener too
    before the handshake; what a TLS listener does with these bytes in the clear is close
    the connection."""
    import struct

    client = b"newsflow-check"
    body = struct.pack(">hhih", 18, 0, CHECK_CORRELATION, len(client)) + client
    return struct.pack(">i", len(body)) + body


def _kafka_refusal(settings: Settings, errors: list[BaseException], confirmed: bool) -> SetupError:
    """The kafka-python errors of a broker that answered TCP (and TLS) but not the admin
    client (the one raised, then those logged on the way), as the cause a user can act
    on."""
    from kafka.errors import (
        KafkaConnectionError,
        KafkaTimeoutError,
        RequestTimedOutError,
        SaslAuthenticationFailedError,
        UnsupportedSaslMechanismError,
    )

    address = settings.kafka_bootstrap
    err = errors[0]
    chain = [e for error in errors for e in causes(error)]
    if any(isinstance(e, SaslAuthenticationFailedError) for e in chain):
        return Refused(
            "Kafka",
            address,
            f"refused the user {settings.kafka_sasl_username!r} "
            f"({settings.kafka_sasl_mechanism}): wrong user name or password",
            "check NEWSFLOW_KAFKA_SASL_USERNAME and NEWSFLOW_KAFKA_SASL_PASSWORD, and that "
            "the user exists for that mechanism (NEWSFLOW_KAFKA_SASL_MECHANISM)",
        )
    if any(isinstance(e, UnsupportedSaslMechanismError) for e in chain):
        return Refused(
            "Kafka",
            address,
            f"does not offer SASL mechanism {settings.kafka_sasl_mechanism}",
            "set NEWSFLOW_KAFKA_SASL_MECHANISM to one the broker enables",
        )
    sasl = settings.kafka_security_protocol.startswith("SASL_")
    logged = errors[1:]
    dropped = [e for e in logged if isinstance(e, KafkaConnectionError)]
    waited = [e for e in logged if isinstance(e, KafkaTimeoutError | RequestTimedOutError)]
    if confirmed and sasl and dropped and len(dropped) + len(waited) == len(logged):
        # Kafka answered, then hung up on every connection once kafka-python had sent the
        # SASL exchange. A broker answers a wrong password with an error and then closes;
        # on a busy machine kafka-python 3.0.12 may see the close before it reads the
        # error, and logs only "socket disconnected".
        return Refused(
            "Kafka",
            address,
            f"closed every connection while authenticating the user "
            f"{settings.kafka_sasl_username!r} ({settings.kafka_sasl_mechanism}): a wrong "
            "user name or password is the usual cause",
            "check NEWSFLOW_KAFKA_SASL_USERNAME and NEWSFLOW_KAFKA_SASL_PASSWORD, the "
            "mechanism (NEWSFLOW_KAFKA_SASL_MECHANISM) and that the listener takes SASL",
        )
    if confirmed and not sasl:
        # Kafka answered ApiVersions and then not the admin client: a SASL listener.
        return Refused(
            "Kafka",
            address,
            f"did not answer a {settings.kafka_security_protocol} client "
            f"({type(err).__name__}): the listener may want SASL",
            "set NEWSFLOW_KAFKA_SECURITY_PROTOCOL to SASL_SSL or SASL_PLAINTEXT with "
            "NEWSFLOW_KAFKA_SASL_USERNAME and _PASSWORD",
        )
    return Unreachable("Kafka", address, f"no Kafka answer: {type(err).__name__}")


def require_elasticsearch(settings: Settings, timeout: float = TIMEOUT) -> None:
    """Return if the settings' URL answers as an Elasticsearch node that accepts the
    settings' credentials; raise ``Unreachable`` (no answer), ``Refused`` (credentials,
    certificate, http against https) or ``SetupError`` (an answer that is not
    Elasticsearch's) otherwise."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    url = settings.elasticsearch_url
    try:
        with connections.elasticsearch(settings, request_timeout=timeout, max_retries=0) as es:
            # Not `GET /` (es.info): the minimal distribution the local stack runs lacks the
            # module that serves it. The cluster's health is there on every node, and the
            # client checks the answer's product header, so a proxy's page is told apart.
            es.cluster.health()
    except TransportError as err:
        raise _elasticsearch_transport(settings, err) from err
    except ApiError as err:
        raise _elasticsearch_refusal(settings, err.meta.status) from err
    except ValueError as err:  # the client refuses a URL it cannot parse
        raise SetupError(
            f"bad Elasticsearch URL {url!r}: {err}",
            "write http(s)://host:port in NEWSFLOW_ELASTICSEARCH_URL (--elasticsearch)",
        ) from err


def _elasticsearch_refusal(settings: Settings, status: int) -> SetupError:
    url = settings.elasticsearch_url
    given = (
        "the API key (NEWSFLOW_ELASTICSEARCH_API_KEY)"
        if settings.elasticsearch_api_key
        else "the user and password (NEWSFLOW_ELASTICSEARCH_USERNAME, _PASSWORD)"
        if settings.elasticsearch_username
        else None
    )
    if status == 401 and given is None:
        return Refused(
            "Elasticsearch",
            url,
            "asks for credentials (HTTP 401)",
            "set NEWSFLOW_ELASTICSEARCH_API_KEY, or NEWSFLOW_ELASTICSEARCH_USERNAME and "
            "NEWSFLOW_ELASTICSEARCH_PASSWORD",
        )
    if status == 401:
        return Refused(
            "Elasticsearch",
            url,
            f"refused {given} (HTTP 401): wrong, expired or revoked",
            "check it, or make a new API key (POST /_security/api_key)",
        )
    if status == 403:
        return Refused(
            "Elasticsearch",
            url,
            f"accepted {given} but not its rights (HTTP 403)",
            "grant it the cluster privileges monitor and manage_index_templates, and all "
            "on the newsflow indices (NEWSFLOW_TOPIC_PREFIX-*)",
        )
    return SetupError(
        f"{url} does not answer as Elasticsearch (HTTP {status})",
        "check NEWSFLOW_ELASTICSEARCH_URL (--elasticsearch)",
    )


def _elasticsearch_transport(settings: Settings, err: BaseException) -> SetupError:
    url = settings.elasticsearch_url
    chain = causes(err)
    verify = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        return Refused(
            "Elasticsearch",
            url,
            f"sent a certificate that is not trusted ({verify.verify_message})",
            "set NEWSFLOW_ELASTICSEARCH_CA_FILE to the PEM file of its CA (Elasticsearch's "
            "config/certs/http_ca.crt), or NEWSFLOW_ELASTICSEARCH_FINGERPRINT",
        )
    text = " ".join(str(e) for e in chain)
    if "fingerprint" in text.lower():
        return Refused(
            "Elasticsearch",
            url,
            "sent a certificate whose fingerprint is not NEWSFLOW_ELASTICSEARCH_FINGERPRINT",
            "check the fingerprint (the SHA-256 of the node's HTTP certificate)",
        )
    if url.startswith("https:") and any(
        isinstance(e, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(e) for e in chain
    ):
        return Refused(
            "Elasticsearch",
            url,
            "does not speak TLS",
            "write http:// in NEWSFLOW_ELASTICSEARCH_URL",
        )
    if url.startswith("http:") and _disconnected(chain):
        return Refused(
            "Elasticsearch",
            url,
            "closed the connection without answering: it may serve https only",
            "write https:// in NEWSFLOW_ELASTICSEARCH_URL (with NEWSFLOW_ELASTICSEARCH_CA_FILE "
            "and credentials for a secured cluster)",
        )
    return Unreachable("Elasticsearch", url, err)


def _disconnected(chain: list[BaseException]) -> bool:
    import http.client

    return any(
        isinstance(e, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)
        or "RemoteDisconnected" in str(e)
        or "Connection reset" in str(e)
        for e in chain
    )


def require(settings: Settings, *, kafka: bool = False, elasticsearch: bool = False) -> None:
    if kafka:
        require_kafka(settings)
    if elasticsearch:
        require_elasticsearch(settings)


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
