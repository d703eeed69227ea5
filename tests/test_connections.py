"""The one place connections are built (newsflow.connections) and the secrets they carry
(newsflow.redact, the SecretStr settings). The same against a secured Kafka and
Elasticsearch is in tests/test_secure_e2e.py."""

from __future__ import annotations

import ast
import io
import logging
import ssl
import subprocess
import sys
from pathlib import Path

import faust
import pytest
from pydantic import SecretStr

from newsflow import connections, deadletter, redact
from newsflow.errors import SetupError
from newsflow.settings import Settings, load, secret_fields

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pw-7f3a9c1e55"
API_KEY = "a2V5LWlkOmtleS1zZWNyZXQtOTk="
HOOK = "https://hooks.example.com/services/T000/B000/tok3n5ecr3t"


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    """A CA certificate in PEM, made with the JDK's keytool as the local stack makes its
    own, so that ssl can load it."""
    store, pem = tmp_path / "ca.p12", tmp_path / "ca.pem"
    common = ["-keystore", str(store), "-storepass", "changeit", "-storetype", "PKCS12"]
    subprocess.run(
        [
            "keytool",
            "-genkeypair",
            "-alias",
            "ca",
            "-keyalg",
            "EC",
            "-dname",
            "CN=test ca",
            "-ext",
            "bc:c",
            *common,
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["keytool", "-exportcert", "-rfc", "-alias", "ca", "-file", str(pem), *common],
        check=True,
        capture_output=True,
    )
    return pem


# -- options -----------------------------------------------------------------------------


def test_plaintext_is_the_default_and_carries_nothing_else() -> None:
    options = connections.kafka_options(Settings(kafka_bootstrap="k1:9092,k2:9092"))
    assert options == {"bootstrap_servers": "k1:9092,k2:9092", "security_protocol": "PLAINTEXT"}
    assert connections.faust_broker(Settings()) == {"broker": "kafka://127.0.0.1:9092"}
    assert connections.elasticsearch_options(Settings()) == {"hosts": "http://127.0.0.1:9200"}


def test_sasl_ssl_gives_every_client_the_same_user_and_tls(ca_file: Path) -> None:
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="newsflow",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=ca_file,
    )
    options = connections.kafka_options(s)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "newsflow",
        PASSWORD,
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # The CA file is what the context trusts (the system's store is not loaded with it).
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test ca"),),)]
    broker = connections.faust_broker(s)
    credentials = broker["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.username == "newsflow" and credentials.password == PASSWORD
    assert PASSWORD not in repr(credentials)


def test_sasl_plaintext_and_ssl_alone(ca_file: Path) -> None:
    sasl = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password=PASSWORD,
    )
    assert "ssl_context" not in connections.kafka_options(sasl)
    credentials = connections.faust_broker(sasl)["broker_credentials"]
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.mechanism.value == "PLAIN"
    tls = Settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file, kafka_ssl_check_hostname=False
    )
    options = connections.kafka_options(tls)
    assert "sasl_mechanism" not in options
    assert options["ssl_context"].check_hostname is False
    assert isinstance(connections.faust_broker(tls)["broker_credentials"], faust.SSLCredentials)


def test_elasticsearch_credentials_and_certificate_checks(ca_file: Path) -> None:
    url = "https://es.example:9200"
    key = connections.elasticsearch_options(
        Settings(
            elasticsearch_url=url, elasticsearch_api_key=API_KEY, elasticsearch_ca_file=ca_file
        )
    )
    assert key == {"hosts": url, "api_key": API_KEY, "ca_certs": str(ca_file)}
    basic = connections.elasticsearch_options(
        Settings(
            elasticsearch_url=url,
            elasticsearch_username="elastic",
            elasticsearch_password=PASSWORD,
            elasticsearch_fingerprint="AB:" * 31 + "CD",
        )
    )
    assert basic["basic_auth"] == ("elastic", PASSWORD)
    assert basic["ssl_assert_fingerprint"] == "ab" * 31 + "cd"
    unchecked = connections.elasticsearch_options(
        Settings(elasticsearch_url=url, elasticsearch_verify_certs=False)
    )
    assert unchecked["verify_certs"] is False
    # The clients accept the options (a typo in a name would raise here).
    with connections.elasticsearch(Settings(elasticsearch_url=url, elasticsearch_api_key=API_KEY)):
        pass


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "NEWSFLOW_KAFKA_SASL_USERNAME"),
        ({"kafka_ssl_certfile": "/etc/hostname"}, "NEWSFLOW_KAFKA_SSL_KEYFILE"),
        (
            {"elasticsearch_api_key": API_KEY, "elasticsearch_username": "u"},
            "NEWSFLOW_ELASTICSEARCH_API_KEY",
        ),
        ({"elasticsearch_username": "u"}, "NEWSFLOW_ELASTICSEARCH_PASSWORD"),
        ({"elasticsearch_ca_file": "/nonexistent/ca.pem"}, "no such file"),
        ({"elasticsearch_fingerprint": "abc"}, "64 hex digits"),
        ({"kafka_security_protocol": "TLS"}, "NEWSFLOW_KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_half_a_security_setup_is_refused_naming_the_variables(
    given: dict[str, str], named: str
) -> None:
    with pytest.raises(SetupError) as err:
        load(Settings, **given)
    assert named in str(err.value)


# -- one place --------------------------------------------------------------------------

CONSTRUCTORS = {
    "KafkaProducer",
    "KafkaConsumer",
    "KafkaAdminClient",
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "Elasticsearch",
    "AsyncElasticsearch",
}
SECURITY = {
    name
    for name in Settings.model_fields
    if name.startswith(("kafka_s", "elasticsearch_")) and name != "elasticsearch_url"
}
# newsflow.services names the settings in the errors it explains (which user was refused).
READERS = {"newsflow/connections.py", "newsflow/settings.py", "newsflow/services.py"}


def _sources() -> list[Path]:
    return sorted(
        p
        for top in ("newsflow", "ingest", "processors", "deploy")
        for p in (ROOT / top).rglob("*.py")
    )


def test_no_client_is_made_and_no_security_setting_read_outside_connections() -> None:
    assert {"kafka_security_protocol", "kafka_sasl_password", "elasticsearch_api_key"} <= SECURITY
    made, read = [], []
    for path in _sources():
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if isinstance(node, ast.Call):
                f = node.func
                name = (
                    f.id
                    if isinstance(f, ast.Name)
                    else f.attr
                    if isinstance(f, ast.Attribute)
                    else ""
                )
                if name in CONSTRUCTORS and where != "newsflow/connections.py":
                    made.append(f"{where}:{node.lineno} {name}")
            if isinstance(node, ast.Attribute) and node.attr in SECURITY and where not in READERS:
                read.append(f"{where}:{node.lineno} {node.attr}")
    assert made == []
    assert read == []


# -- secrets never shown ------------------------------------------------------------------


def test_secrets_are_secret_fields_and_never_in_a_repr() -> None:
    assert {
        "kafka_sasl_password",
        "kafka_ssl_key_password",
        "elasticsearch_api_key",
        "elasticsearch_password",
        "webhook_url",
    } <= secret_fields(Settings)
    s = Settings(
        elasticsearch_api_key=API_KEY,
        webhook_url=HOOK,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="u",
        kafka_sasl_password=PASSWORD,
    )
    for shown in (repr(s), str(s), s.model_dump_json()):
        assert PASSWORD not in shown and API_KEY not in shown and "tok3n5ecr3t" not in shown


def test_a_bad_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(SetupError) as err:
        load(Settings, webhook_url="ftp://hooks.example.com/tok3n5ecr3t")
    assert "NEWSFLOW_WEBHOOK_URL='(hidden)'" in str(err.value)
    assert "tok3n5ecr3t" not in str(err.value)


def test_logs_and_dead_letters_have_the_secrets_cut_out() -> None:
    s = Settings(webhook_url=HOOK, elasticsearch_api_key=API_KEY)
    redact.register(s)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(redact.LogFilter())
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"POST {HOOK} failed with key {API_KEY}")
        except RuntimeError:
            log.exception("delivering to %s", HOOK)
    finally:
        log.removeHandler(handler)
    written = out.getvalue()
    assert "tok3n5ecr3t" not in written and API_KEY not in written
    assert "https://hooks.example.com***" in written  # the host stays: where it went
    assert "RuntimeError" in written  # the traceback is still there
    origin = deadletter.Origin(topic="t", partition=0, offset=1)
    headers = deadletter.failure_headers("webhook", RuntimeError(f"no answer from {HOOK}"), origin)
    assert all(b"tok3n5ecr3t" not in v for _, v in headers)


def test_settings_prints_no_secret_and_stays_sourceable(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "NEWSFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "NEWSFLOW_KAFKA_SASL_USERNAME": "newsflow",
        "NEWSFLOW_KAFKA_SASL_PASSWORD": PASSWORD,
        "NEWSFLOW_ELASTICSEARCH_API_KEY": API_KEY,
        "NEWSFLOW_WEBHOOK_URL": HOOK,
    }
    done = subprocess.run(
        [sys.executable, "-m", "newsflow.cli", "settings"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    out = done.stdout + done.stderr
    assert PASSWORD not in out and API_KEY not in out and "tok3n5ecr3t" not in out
    assert "# NEWSFLOW_KAFKA_SASL_PASSWORD is set (a secret: not shown)" in out
    assert "# NEWSFLOW_WEBHOOK_URL is set: https://hooks.example.com/… (rest not shown)" in out
    assert "NEWSFLOW_KAFKA_SASL_USERNAME=newsflow" in out
    # Sourced by a shell, the lines give back every setting but the secrets.
    script = tmp_path / "settings.sh"
    script.write_text(
        "\n".join(line for line in done.stdout.splitlines() if not line.startswith(" "))
    )
    sourced = subprocess.run(
        ["bash", "-c", f"set -a; . {script}; env"], capture_output=True, text=True, check=True
    ).stdout
    assert "NEWSFLOW_KAFKA_SASL_USERNAME=newsflow" in sourced
    assert "NEWSFLOW_KAFKA_SASL_PASSWORD" not in sourced


def test_child_processes_get_the_secrets_themselves() -> None:
    from newsflow.settings import as_env

    env = as_env(Settings(elasticsearch_api_key=API_KEY, webhook_url=HOOK))
    assert env["NEWSFLOW_ELASTICSEARCH_API_KEY"] == API_KEY
    assert env["NEWSFLOW_WEBHOOK_URL"] == HOOK
    assert isinstance(
        Settings(**{"elasticsearch_api_key": API_KEY}).elasticsearch_api_key, SecretStr
    )


def test_an_empty_variable_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # As a compose file's ${NEWSFLOW_WEBHOOK_URL:-} or an `export X=` gives them.
    monkeypatch.setenv("NEWSFLOW_ELASTICSEARCH_CA_FILE", "")
    monkeypatch.setenv("NEWSFLOW_WEBHOOK_URL", "")
    monkeypatch.setenv("NEWSFLOW_KAFKA_SECURITY_PROTOCOL", "")
    s = load(Settings)
    assert s.elasticsearch_ca_file is None and s.webhook_url is None
    assert s.kafka_security_protocol == "PLAINTEXT"
