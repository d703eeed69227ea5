"""The reachability checks every short command makes before its work: against the real
stack (which must pass them), nothing listening, and a server that is not the service."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from newsflow import services
from newsflow.errors import SetupError, Unreachable
from newsflow.settings import Settings


@pytest.fixture
def web_server() -> Iterator[str]:
    """An HTTP server that answers every request with a page: not Elasticsearch."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>a proxy's page</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_running_stack_passes_both_checks(settings: Settings) -> None:
    # The local stack's minimal Elasticsearch has no `GET /`: the check must not need it.
    services.require_kafka(settings)
    services.require_elasticsearch(settings)


def test_nothing_listening_is_unreachable_with_the_cause_and_remedy() -> None:
    with pytest.raises(Unreachable) as kafka:
        services.require_kafka(Settings(kafka_bootstrap="127.0.0.1:1"))
    assert "127.0.0.1:1 (connection refused)" in str(kafka.value)
    assert "NEWSFLOW_KAFKA_BOOTSTRAP" in str(kafka.value)
    with pytest.raises(Unreachable) as es:
        services.require_elasticsearch(Settings(elasticsearch_url="http://127.0.0.1:1"))
    assert "http://127.0.0.1:1 (connection refused)" in str(es.value)
    assert "NEWSFLOW_ELASTICSEARCH_URL" in str(es.value)


def test_a_server_that_is_not_elasticsearch_is_said_so(web_server: str) -> None:
    with pytest.raises(SetupError) as err:
        services.require_elasticsearch(Settings(elasticsearch_url=web_server))
    assert not isinstance(err.value, Unreachable)
    assert f"{web_server} does not answer as Elasticsearch" in str(err.value)


def test_a_server_that_is_not_kafka_is_said_so(web_server: str) -> None:
    address = web_server.removeprefix("http://")
    with pytest.raises(Unreachable) as err:
        services.require_kafka(Settings(kafka_bootstrap=address), timeout=2.0)
    assert "no Kafka answer" in str(err.value)


@pytest.mark.parametrize("bootstrap", ["kafka", "host:", ":9092", "a:1,b"])
def test_bad_bootstrap_lists_are_set_up_errors(bootstrap: str) -> None:
    with pytest.raises(SetupError, match="bad Kafka bootstrap server"):
        services.addresses(bootstrap)


def test_wait_for_says_once_that_it_waits_and_once_that_it_goes_on() -> None:
    answers = iter([Unreachable("Kafka", "x:1", "refused")] * 3 + [None])
    said: list[str] = []

    def check() -> None:
        answer = next(answers)
        if answer is not None:
            raise answer

    services.wait_for(check, said.append, interval=0.01)
    assert len(said) == 2 and said[0].startswith("waiting for Kafka: cannot reach Kafka at x:1")
    assert said[1] == "reached it; starting"


def test_kafka_python_s_errors_become_the_cause_a_user_can_act_on() -> None:
    from kafka.errors import (
        KafkaConnectionError,
        KafkaTimeoutError,
        SaslAuthenticationFailedError,
        UnsupportedSaslMechanismError,
    )

    from newsflow.errors import Refused

    sasl = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="newsflow",
        kafka_sasl_password="pw-secret-1",
    )
    raised = KafkaTimeoutError("Unable to bootstrap")

    def said(settings: Settings, logged: list[BaseException], confirmed: bool = True) -> str:
        err = services._kafka_refusal(settings, [raised, *logged], confirmed)
        return f"{type(err).__name__}: {err}"

    assert "Refused" in said(sasl, [KafkaConnectionError(), SaslAuthenticationFailedError()])
    assert "refused the user 'newsflow'" in said(sasl, [SaslAuthenticationFailedError()])
    hung_up = said(sasl, [KafkaConnectionError("socket disconnected"), KafkaTimeoutError()])
    assert "closed every connection while authenticating the user 'newsflow'" in hung_up
    assert "does not offer SASL mechanism" in said(sasl, [UnsupportedSaslMechanismError()])
    # Not confirmed as Kafka, or nothing logged: no guess about the cause.
    assert said(sasl, [KafkaConnectionError()], confirmed=False).startswith("Unreachable")
    assert said(sasl, []).startswith("Unreachable")
    plain = Settings()
    assert "may want SASL" in said(plain, [KafkaConnectionError()])
    assert "pw-secret-1" not in hung_up
    assert issubclass(Refused, SetupError)
