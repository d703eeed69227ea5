"""The secured local stack: Kafka over SASL_SSL with SCRAM users, Elasticsearch with TLS
and an API key, each reached only through the settings `Stack.client_settings()` gives,
as a newsflow client would be. Every test checks something a plain stack or a looser
configuration would get wrong; the restart test runs last, as it takes the stack down."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from deploy.stack import Stack, StackError
from newsflow import connections
from newsflow.settings import Settings, StackSettings
from tests.conftest import SECURE_TEST_STACK, unique

pytestmark = pytest.mark.stack

CLIENT_NAMES = {
    "NEWSFLOW_KAFKA_BOOTSTRAP",
    "NEWSFLOW_KAFKA_SECURITY_PROTOCOL",
    "NEWSFLOW_KAFKA_SASL_MECHANISM",
    "NEWSFLOW_KAFKA_SASL_USERNAME",
    "NEWSFLOW_KAFKA_SASL_PASSWORD",
    "NEWSFLOW_KAFKA_SSL_CAFILE",
    "NEWSFLOW_ELASTICSEARCH_URL",
    "NEWSFLOW_ELASTICSEARCH_API_KEY",
    "NEWSFLOW_ELASTICSEARCH_CA_FILE",
}
# Files that must stay the same across restarts (and, but for ca.pem, private).
KEPT = ("passwords.json", "ca.p12", "ca.pem", "server.p12", "es-api-key")


@pytest.fixture(scope="module")
def client(secure_stack: Stack) -> Settings:
    return secure_stack.client_settings()


@pytest.fixture
def es(client: Settings) -> Iterator[Any]:
    made = connections.elasticsearch(client, request_timeout=30)
    yield made
    made.close()


def secrets_of(stack: Stack) -> list[str]:
    """Every secret of the stack, and the key half of the API key (id:key, base64'd)."""
    assert stack.secure is not None
    hidden = stack.secure.hidden()
    api_key = stack.secure.api_key()
    assert api_key is not None
    key_half = base64.b64decode(api_key).decode().split(":", 1)[1]
    return [*hidden, key_half]


def round_trip(settings: Settings) -> list[bytes]:
    """Create a topic, produce one message, read it back; the topic is deleted after."""
    topic = unique("secure")
    admin = connections.kafka_admin(settings, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
        producer = connections.kafka_producer(settings, acks="all")
        producer.send(topic, key=b"k", value=settings.kafka_sasl_mechanism.encode()).get(30)
        producer.close()
        consumer = connections.kafka_consumer(
            settings, topic, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=20_000
        )
        first = next(consumer, None)  # the only message: no need to wait for more
        consumer.close()
        return [first.value] if first is not None else []
    finally:
        admin.delete_topics([topic])
        admin.close()


# -- Kafka -------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
def test_kafka_round_trip_over_sasl_ssl(client: Settings, mechanism: str) -> None:
    settings = client.model_copy(update={"kafka_sasl_mechanism": mechanism})
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert round_trip(settings) == [mechanism.encode()]


def refusals(stack: Stack, reason: str) -> int:
    """How often the broker has logged refusing a connection for ``reason``: kafka-python
    only times out, so the broker's log is what tells a refusal from a broker not there."""
    log = stack.kafka.server_log.read_text(errors="replace")
    return sum("Failed authentication" in line and reason in line for line in log.splitlines())


def test_kafka_refuses_a_wrong_password(secure_stack: Stack, client: Settings) -> None:
    from pydantic import SecretStr

    wrong = client.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    before = refusals(secure_stack, "invalid credentials")
    with pytest.raises(KafkaError):
        connections.kafka_admin(wrong, request_timeout_ms=3000, bootstrap_timeout_ms=5000)
    assert refusals(secure_stack, "invalid credentials") > before


def test_a_plaintext_kafka_client_gets_no_metadata(secure_stack: Stack, client: Settings) -> None:
    plain = Settings(kafka_bootstrap=client.kafka_bootstrap, kafka_security_protocol="PLAINTEXT")
    before = refusals(secure_stack, "SSL handshake failed")
    with pytest.raises(KafkaError):
        admin = connections.kafka_admin(plain, request_timeout_ms=3000, bootstrap_timeout_ms=5000)
        admin.close()
    assert refusals(secure_stack, "SSL handshake failed") > before


# -- certificates ------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["kafka", "elasticsearch"])
def test_both_servers_present_the_ca_signed_certificate_for_loopback(
    secure_stack: Stack, service: str
) -> None:
    assert secure_stack.secure is not None
    port = secure_stack.node(service).port
    context = ssl.create_default_context(cafile=str(secure_stack.secure.ca_pem))
    # Strict: the CA must carry critical basic constraints and key usage, the leaf its
    # key identifiers; what newer Pythons check by default.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cert = tls.getpeercert()
    assert cert is not None
    assert set(cert["subjectAltName"]) == {("IP Address", "127.0.0.1"), ("DNS", "localhost")}
    # Without the stack's CA, the same server is not trusted.
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")


def test_secret_files_are_private(secure_stack: Stack) -> None:
    assert secure_stack.secure is not None
    folder = secure_stack.secure.dir
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in KEPT:
        mode = stat.S_IMODE((folder / name).stat().st_mode)
        assert mode == (0o644 if name == "ca.pem" else 0o600), (name, oct(mode))
    assert stat.S_IMODE(secure_stack.kafka.config.stat().st_mode) == 0o600


# -- Elasticsearch -----------------------------------------------------------------------


def test_elasticsearch_indexes_and_searches_with_the_api_key(client: Settings, es: Any) -> None:
    assert client.elasticsearch_url.startswith("https://")
    assert client.elasticsearch_api_key is not None
    index = unique("secure-test")
    try:
        es.index(index=index, id="a1", document={"text": "dock strike in Antwerp"}, refresh=True)
        hits = es.search(index=index, query={"match": {"text": "strike"}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["a1"]
        # What the key is for besides indices: cluster health and index templates.
        assert es.cluster.health()["status"] in ("green", "yellow")
        es.indices.put_index_template(
            name=index, index_patterns=[f"{index}-*"], template={"settings": {}}
        )
        es.indices.delete_index_template(name=index)
    finally:
        es.options(ignore_status=404).indices.delete(index=index)
    who = es.security.authenticate()
    assert who["authentication_type"] == "api_key"


def test_the_api_key_has_no_rights_beyond_its_role(es: Any) -> None:
    from elasticsearch import AuthorizationException

    with pytest.raises(AuthorizationException) as user:
        es.security.put_user(username=unique("intruder"), password="long-enough-1", roles=[])
    assert user.value.meta.status == 403
    with pytest.raises(AuthorizationException):
        es.cluster.put_settings(persistent={"cluster.routing.allocation.enable": "all"})
    with pytest.raises(AuthorizationException):  # "*" leaves out the security index
        es.search(index=".security")


def test_plain_http_to_the_elasticsearch_port_fails(client: Settings) -> None:
    from elastic_transport import ConnectionError as TransportConnectionError

    url = client.elasticsearch_url.replace("https://", "http://")
    plain = connections.elasticsearch(
        client.model_copy(update={"elasticsearch_url": url}), request_timeout=10, max_retries=0
    )
    with pytest.raises(TransportConnectionError):
        plain.cluster.health()
    plain.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_anonymous_https_gets_401(secure_stack: Stack, host: str) -> None:
    assert secure_stack.secure is not None
    context = ssl.create_default_context(cafile=str(secure_stack.secure.ca_pem))
    url = f"https://{host}:{secure_stack.elasticsearch.port}/_cluster/health"
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(url, context=context, timeout=10)
    assert answer.value.code == 401
    answer.value.close()


# -- client.env and the command line -----------------------------------------------------


def test_client_env_is_private_and_names_what_a_client_needs(secure_stack: Stack) -> None:
    path = secure_stack.settings.dir / "client.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    pairs = dict(line.split("=", 1) for line in lines)
    assert set(pairs) == CLIENT_NAMES
    assert pairs == secure_stack.client_env()
    assert pairs["NEWSFLOW_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert pairs["NEWSFLOW_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert pairs["NEWSFLOW_ELASTICSEARCH_URL"] == "https://127.0.0.1:29200"
    ca = Path(pairs["NEWSFLOW_KAFKA_SSL_CAFILE"])
    assert ca.is_absolute() and ca.is_file() and ca.read_text().startswith("-----BEGIN")
    # A shell that sources it gets the same values back.
    shown = subprocess.run(
        ["/bin/sh", "-c", f'set -a; . "{path}"; set +a; env'],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert {k: v for k, v in (ln.split("=", 1) for ln in shown) if k in CLIENT_NAMES} == pairs


def cli_env(stack: StackSettings) -> dict[str, str]:
    """The test stack's settings as the environment, none of it saying "secure": the
    directory must remember that itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(
        NEWSFLOW_STACK_DIR=str(stack.dir),
        NEWSFLOW_STACK_KAFKA_PORT=str(stack.kafka_port),
        NEWSFLOW_STACK_KAFKA_CONTROLLER_PORT=str(stack.kafka_controller_port),
        NEWSFLOW_STACK_ES_PORT=str(stack.es_port),
        NEWSFLOW_STACK_ES_TRANSPORT_PORT=str(stack.es_transport_port),
        NEWSFLOW_STACK_ES_HEAP=stack.es_heap,
        NEWSFLOW_STACK_KAFKA_HEAP=stack.kafka_heap,
    )
    return env


def newsflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsflow.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_the_command_line_shows_no_secret(secure_stack: Stack) -> None:
    env = cli_env(SECURE_TEST_STACK)
    status = newsflow("stack", "status", env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("healthy") == 2
    assert "https://127.0.0.1:29200" in status.stdout
    up = newsflow("stack", "up", env=env)  # running already: reused, client.env rewritten
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.splitlines()[-1] == (
        f"clients: set -a; . {SECURE_TEST_STACK.dir / 'client.env'}; set +a"
    )
    said = status.stdout + status.stderr + up.stdout + up.stderr
    for service in ("kafka", "elasticsearch"):
        logs = newsflow("stack", "logs", service, "-n", "100000", env=env)
        assert logs.returncode == 0 and logs.stdout.strip(), logs.stderr
        said += logs.stdout + logs.stderr
    leaked = [s[:4] + "..." for s in secrets_of(secure_stack) if s in said]
    assert not leaked, f"secrets in the command's output: {leaked}"


def test_the_other_mode_is_refused_on_a_made_directory(secure_stack: Stack) -> None:
    # Asked for plain: status and down still follow the directory's mode, up refuses.
    remembered = Stack(SECURE_TEST_STACK.model_copy(update={"secure": False}))
    assert remembered.mode == "secured"
    with pytest.raises(StackError) as refused:
        remembered.up()
    assert "made secured" in str(refused.value)
    assert "NEWSFLOW_STACK_DIR" in str(refused.value)
    env = {**cli_env(SECURE_TEST_STACK), "NEWSFLOW_STACK_SECURE": "0"}
    cli = newsflow("stack", "up", env=env)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "NEWSFLOW_STACK_DIR" in cli.stderr
    assert all(node.healthy() for node in secure_stack.nodes)  # nothing was stopped


def test_a_plain_directory_is_not_reused_secured(tmp_path: Path) -> None:
    # A plain stack's Kafka storage from before the mode was recorded.
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")
    ports = {"kafka_port": 2, "kafka_controller_port": 3, "es_port": 4, "es_transport_port": 5}
    with pytest.raises(StackError) as refused:
        Stack(StackSettings(dir=tmp_path, secure=True, **ports)).up()
    assert "made plain" in str(refused.value)
    assert not (tmp_path / "secure").exists()


# -- restart: last, as it takes the stack down -------------------------------------------


def test_a_restart_reuses_certificates_passwords_and_the_api_key(
    secure_stack: Stack, client: Settings
) -> None:
    assert secure_stack.secure is not None
    folder = secure_stack.secure.dir

    def digests() -> dict[str, str]:
        return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in KEPT}

    before, env_before = digests(), secure_stack.client_env()
    assert sorted(secure_stack.down()) == ["elasticsearch", "kafka"]
    assert not any(node.healthy() for node in secure_stack.nodes)
    statuses = secure_stack.up()
    assert all(s.healthy for s in statuses)
    assert digests() == before
    assert secure_stack.client_env() == env_before
    # The settings made before the restart still work against both services.
    assert round_trip(client) == [b"SCRAM-SHA-512"]
    es = connections.elasticsearch(client, request_timeout=30)
    assert es.security.authenticate()["authentication_type"] == "api_key"
    es.close()
