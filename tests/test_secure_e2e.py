"""newsflow against a secured Kafka and Elasticsearch: the local stack run secured
(``newsflow stack up --secure``: Kafka's client listener SASL_SSL with SCRAM users,
Elasticsearch with its own security, TLS and an API key), set up with environment
variables alone, as a user would.

* The pipeline end to end: ``newsflow ingest urls`` fetches the demo sites' pages onto
  Kafka, a real worker cleans, tags and indexes them, ``newsflow search`` finds them,
  standing queries alert (to a webhook whose URL holds a token), dead letters are listed.
* Each misconfiguration (a wrong password or key, an untrusted certificate, a plaintext
  client at a TLS port, http at an https port) is one line naming its cause.
* No secret is shown: every output of all of that (the commands' stdout and stderr, the
  worker's log, the dead letters' headers, the ingest state and metrics files) is
  searched for each secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.stack import Stack
from newsflow import connections
from newsflow.demo.sites import DemoServer, article_urls
from newsflow.settings import Settings, as_env
from newsflow.topics import Topics
from processors.index import alias
from tests import drills
from tests.conftest import ROOT, Process, read_topic, unique
from tests.test_watches import Receiver

pytestmark = pytest.mark.stack

TOKEN = "xoxb-hook-tok3n-5ecr3t"


@pytest.fixture
def secured(secure_stack: Stack, tmp_path: Path) -> Iterator[Settings]:
    """The secured stack's client settings, topics under a prefix of this test's own."""
    from processors.app import prepare

    s = secure_stack.client_settings().model_copy(
        update={
            "topic_prefix": unique("nfs"),
            "state_dir": tmp_path / "state",
            "topic_partitions": 2,
        }
    )
    prepare(s)
    yield s
    with connections.kafka_admin(s) as admin:
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(s.topic_prefix)])
    with connections.elasticsearch(s) as es:
        found = es.indices.get(index=f"{alias(s.topic_prefix)}-*", allow_no_indices=True)
        if found:
            es.indices.delete(index=",".join(found))
        es.options(ignore_status=404).indices.delete_index_template(name=alias(s.topic_prefix))


def secrets_of(s: Settings) -> list[str]:
    assert s.kafka_sasl_password and s.elasticsearch_api_key
    return [
        s.kafka_sasl_password.get_secret_value(),
        s.elasticsearch_api_key.get_secret_value(),
        TOKEN,
    ]


def env_of(s: Settings, **more: str) -> dict[str, str]:
    """A user's environment: PATH and HOME, and newsflow's variables alone."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        **as_env(s),
        **more,
    }


def newsflow(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsflow.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.timeout(900)
def test_the_pipeline_runs_on_a_secured_stack_and_shows_no_secret(
    secured: Settings, tmp_path: Path
) -> None:
    s = secured
    shown: list[str] = []  # every output of the run, searched for the secrets at the end

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = newsflow(env or env_of(s), *args)
        shown.extend([" ".join(args), done.stdout, done.stderr])
        return done

    with DemoServer() as server, Receiver(lambda got, before: 500) as hook:
        hook_url = f"{hook.url}/T000/{TOKEN}"
        worker_env = env_of(
            s,
            NEWSFLOW_WEBHOOK_URL=hook_url,
            NEWSFLOW_WEBHOOK_ATTEMPTS="2",
            NEWSFLOW_STATE_DIR=str(tmp_path / "worker-state"),
        )
        added = run("watch", "add", "docks", "(strike | walkout) (port | dock*)")
        assert added.returncode == 0, added.stderr
        worker = Process(
            [sys.executable, "-m", "newsflow.cli", "worker", "--loglevel", "info"],
            worker_env,
            tmp_path / "worker.log",
        )
        worker.start()
        try:
            urls = article_urls(server)
            listed = tmp_path / "urls.txt"
            listed.write_text("\n".join([*urls, "not a url"]) + "\n")
            ingested = run("ingest", "urls", str(listed), "--allow-private")
            # One line is no URL: exit 1, that line dead-lettered, every page sent.
            assert ingested.returncode == 1, ingested.stderr
            assert f"{len(urls)} pages" in ingested.stdout, ingested.stdout
            with connections.elasticsearch(s) as es:

                def indexed() -> bool:
                    if not es.indices.exists_alias(name=alias(s.topic_prefix)):
                        return False
                    es.indices.refresh(index=alias(s.topic_prefix))
                    return es.count(index=alias(s.topic_prefix))["count"] >= len(urls)

                drills.wait_for(indexed, 400, "every page indexed over TLS", worker)
            # The webhook answers 500: each alert is tried twice, then dead-lettered.
            drills.wait_for(lambda: len(hook.received) >= 2, 120, "alerts posted", worker)
            assert all(r.path == f"/hook/T000/{TOKEN}" for r in hook.received)
            found = run("search", "dockworkers strike", "--json")
            assert found.returncode == 0, found.stderr
            assert found.stdout.count("\n") >= 3
            letters_env = env_of(s)

            def dead_lettered() -> bool:
                done = newsflow(letters_env, "deadletter", "list", "webhook")
                return "webhook" in done.stdout and "500" in done.stdout

            drills.wait_for(dead_lettered, 180, "the webhook's dead letters", worker)
            for args in (
                ("deadletter", "list"),
                ("topics", "list"),
                ("watch", "list"),
                ("settings",),
                ("audit",),
                ("ingest", "status"),
                ("worker", "--help"),
            ):
                run(*args, env={**worker_env, "NEWSFLOW_STATE_DIR": str(s.state_dir)})
            assert all(r.path == f"/hook/T000/{TOKEN}" for r in hook.received)
        finally:
            worker.stop()
    assert worker.proc is not None and worker.proc.returncode == 0, worker.tail()
    shown.append(worker.log.read_text(errors="replace"))
    # What the dead letters carry, headers and values, as anyone reading them sees them.
    topics = Topics.from_settings(s)
    for stage in ("ingest", "webhook"):
        for m in read_topic(s, topics.deadletter(stage)):
            shown.append(repr(m.headers) + repr(m.value))
    # What ingest keeps on disk (seen URLs, feed health, metrics).
    for path in s.state_dir.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            shown.append(path.read_bytes().decode("utf-8", "replace"))
    everything = "\n".join(shown)
    assert "webhook" in everything and "refused" not in worker.tail()
    for secret in secrets_of(s):
        assert secret not in everything, f"a secret is shown ({secret[:3]}…)"


def _one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_each_kafka_misconfiguration_is_one_line_naming_its_cause(
    secure_stack: Stack, tmp_path: Path
) -> None:
    s = secure_stack.client_settings()
    base = env_of(s)
    wrong = _one_line(
        newsflow({**base, "NEWSFLOW_KAFKA_SASL_PASSWORD": "not-the-password"}, "topics", "list"),
        # Said one of two ways: refused, or (when kafka-python sees the broker hang up
        # before it reads the refusal, which happens on a busy machine) hung up on.
        "the user 'newsflow' (SCRAM-SHA-512)",
        "NEWSFLOW_KAFKA_SASL_PASSWORD",
    )
    assert "not-the-password" not in wrong
    no_ca = {k: v for k, v in base.items() if k != "NEWSFLOW_KAFKA_SSL_CAFILE"}
    _one_line(newsflow(no_ca, "topics", "list"), "not trusted", "NEWSFLOW_KAFKA_SSL_CAFILE")
    plain = {**base, "NEWSFLOW_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    _one_line(newsflow(plain, "topics", "list"), "wants TLS", "SASL_SSL")
    # A worker does not wait for a password to become right: it stops, saying why.
    worker = newsflow(
        {**base, "NEWSFLOW_KAFKA_SASL_PASSWORD": "not-the-password"}, "worker", timeout=300
    )
    assert worker.returncode == 2, worker.stderr[-2000:]
    assert "the user 'newsflow' (SCRAM-SHA-512)" in worker.stderr


def test_each_elasticsearch_misconfiguration_is_one_line_naming_its_cause(
    secure_stack: Stack,
) -> None:
    s = secure_stack.client_settings()
    base = env_of(s)
    key = s.elasticsearch_api_key.get_secret_value() if s.elasticsearch_api_key else ""
    # A well-formed key that Elasticsearch does not know.
    bad_key = "bm90LWEta2V5Om5vdC1hLXNlY3JldA=="
    line = _one_line(
        newsflow({**base, "NEWSFLOW_ELASTICSEARCH_API_KEY": bad_key}, "search", "port"),
        "refused the API key",
        "HTTP 401",
    )
    assert bad_key not in line and key not in line
    anonymous = {k: v for k, v in base.items() if k != "NEWSFLOW_ELASTICSEARCH_API_KEY"}
    _one_line(newsflow(anonymous, "search", "port"), "asks for credentials")
    no_ca = {k: v for k, v in base.items() if k != "NEWSFLOW_ELASTICSEARCH_CA_FILE"}
    _one_line(newsflow(no_ca, "search", "port"), "not trusted", "NEWSFLOW_ELASTICSEARCH_CA_FILE")
    http = {**base, "NEWSFLOW_ELASTICSEARCH_URL": s.elasticsearch_url.replace("https:", "http:")}
    _one_line(newsflow(http, "search", "port"), "https")
    # The fingerprint instead of a CA file: right, then wrong.
    fingerprint = _fingerprint(s)
    pinned = {**no_ca, "NEWSFLOW_ELASTICSEARCH_FINGERPRINT": fingerprint}
    trusted = newsflow(pinned, "search", "port")
    # Past the certificate check: the search runs, and finds no index under this prefix.
    assert "nothing is indexed yet" in trusted.stderr, trusted.stderr
    wrong_pin = {**no_ca, "NEWSFLOW_ELASTICSEARCH_FINGERPRINT": "0" * 64}
    _one_line(newsflow(wrong_pin, "search", "port"), "fingerprint")


def _fingerprint(s: Settings) -> str:
    import hashlib
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(s.elasticsearch_url)
    pem = ssl.get_server_certificate((parts.hostname or "127.0.0.1", parts.port or 9200))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def test_plain_settings_against_the_secured_stack_time_out_nowhere(secure_stack: Stack) -> None:
    """The defaults a new user starts with (no security settings) at the secured ports:
    both refusals are said, not waited out."""
    s = secure_stack.client_settings()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "NEWSFLOW_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "NEWSFLOW_ELASTICSEARCH_URL": s.elasticsearch_url.replace("https:", "http:"),
    }
    started = time.monotonic()
    _one_line(newsflow(env, "topics", "list"), "wants TLS")
    _one_line(newsflow(env, "search", "port"), "https")
    # Printed for the record (a few seconds each here); not asserted: no timing in tests.
    print(f"two refusals in {time.monotonic() - started:.1f}s")
