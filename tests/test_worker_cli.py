"""`newsflow worker` with its services down or late, run as the demo runs it (a child
process, its output to a file): it waits, saying so once in one line, stops cleanly on
SIGTERM or Ctrl-C while waiting, and starts once Kafka and Elasticsearch both answer."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import pytest

from newsflow.settings import Settings, as_env
from tests.conftest import Process

ANSWER_WITHIN = 20.0  # seconds: far above the few seconds a refused connection takes
RETRY = 5.0  # processors.app.wait_for_services' interval


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(tmp_path: Path, env: dict[str, str], loglevel: str = "warn") -> Process:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    base.update(NEWSFLOW_STATE_DIR=str(tmp_path / "state"), NEWSFLOW_TOPIC_PREFIX="waiting")
    argv = [sys.executable, "-m", "newsflow.cli", "worker", "--loglevel", loglevel]
    return Process(argv, {**base, **env}, tmp_path / "worker.log")


def wait_for_text(proc: Process, needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while needle not in proc.tail(100_000):
        assert proc.running, f"stopped instead of waiting for {needle!r}:\n{proc.tail()}"
        assert time.monotonic() < deadline, f"no {needle!r} within {timeout}s:\n{proc.tail()}"
        time.sleep(0.2)
    return proc.tail(100_000)


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_the_worker_waits_for_kafka_saying_so_once(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    port = free_port()  # nothing listens there: every connection is refused
    proc = worker(
        tmp_path,
        {
            "NEWSFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
            "NEWSFLOW_ELASTICSEARCH_URL": f"http://127.0.0.1:{port}",
        },
    )
    proc.start()
    try:
        wait_for_text(proc, "waiting for Kafka", ANSWER_WITHIN)
        time.sleep(RETRY + 2)  # it tries again meanwhile, without saying so again
        assert proc.running, proc.tail()
    finally:
        proc.stop(sig)
    text = proc.tail(100_000)
    assert proc.proc is not None and proc.proc.returncode == code, text
    assert text.count("waiting for Kafka") == 1, text
    assert f"127.0.0.1:{port} (connection refused)" in text, text
    assert "newsflow stack up" in text, text
    assert "Traceback" not in text and "\x1b" not in text, text
    said = [line for line in text.splitlines() if line.strip()]
    assert len(said) == (1 if sig == signal.SIGTERM else 2), text  # Ctrl-C: "interrupted"


class _Pipe(socketserver.BaseRequestHandler):
    server: Forwarder.Server

    def handle(self) -> None:
        with socket.create_connection(self.server.upstream) as upstream:
            back = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
            back.start()
            _copy(self.request, upstream)
            back.join(timeout=30)


def _copy(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


class Forwarder:
    """A port where nothing answered until now, passing connections on to ``upstream``:
    a service that comes up while the worker waits for it."""

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        upstream: tuple[str, int]

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.server = self.Server(("127.0.0.1", port), _Pipe)
        self.server.upstream = upstream
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Forwarder:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_worker_starts_once_elasticsearch_answers(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    es = urlsplit(pipeline_settings.elasticsearch_url)
    assert es.hostname is not None and es.port is not None
    port = free_port()
    env = as_env(pipeline_settings)
    env["NEWSFLOW_ELASTICSEARCH_URL"] = f"http://127.0.0.1:{port}"
    proc = worker(tmp_path, env, loglevel="info")
    proc.start()
    try:
        wait_for_text(proc, "waiting for Elasticsearch", ANSWER_WITHIN)
        time.sleep(RETRY + 1)
        with Forwarder(port, (es.hostname, es.port)):
            wait_for_text(proc, "reached it; starting", ANSWER_WITHIN)
            wait_for_text(proc, "[^Worker]: Ready", 120)  # Faust's worker is running
            proc.stop(signal.SIGTERM)
    finally:
        proc.stop(signal.SIGTERM)
    text = proc.tail(100_000)
    assert proc.proc is not None and proc.proc.returncode == 0, text
    assert "waiting for Kafka" not in text, text  # Kafka answered all along
    assert text.count("waiting for Elasticsearch") == 1, text
    assert "Traceback" not in text, text
