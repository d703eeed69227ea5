"""Every command of the ``newsflow`` CLI, run as a user runs it, off the happy path: with
Kafka and Elasticsearch unreachable, with bad arguments, with bad input files.

For each: its exit code (the convention of newsflow.errors: 0 well, 1 some input failed,
2 usage or set-up, 3 a bug), a message of a few lines naming the cause and what to do,
and never a traceback. A command that is not a long-running service must answer at all:
the subprocess timeout catches a hang (a command waiting out a client's 30 s bootstrap
timeout), it is not a measure of speed. Long-running services (the worker, the feed
monitor) must say once that they wait for the broker, and stop cleanly when told.

The stack is "down" by pointing newsflow at 127.0.0.1:1, where nothing listens: these
tests need no stack, and run beside the real one the rest of the suite uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

NEWSFLOW = [sys.executable, "-m", "newsflow.cli"]
ANSWER_WITHIN = 20.0  # seconds: far above the few seconds a refused connection takes
DOWN = {
    "NEWSFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    "NEWSFLOW_ELASTICSEARCH_URL": "http://127.0.0.1:1",
}


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]  # each must appear in the output (case-insensitive)
    env: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return " ".join(self.args)[:60] or "(none)"


KAFKA_DOWN = ("cannot reach kafka at 127.0.0.1:1", "newsflow stack up")
ES_DOWN = ("cannot reach elasticsearch at http://127.0.0.1:1", "newsflow stack up")

# {files} is replaced by the test's directory of input files.
CASES = [
    # -- the stack down ---------------------------------------------------------------
    Case(("topics", "list"), 2, KAFKA_DOWN),
    Case(("topics", "create"), 2, KAFKA_DOWN),
    Case(("search", "port"), 2, ES_DOWN),
    Case(("deadletter", "list"), 2, KAFKA_DOWN),
    Case(("deadletter", "list", "clean"), 2, KAFKA_DOWN),
    Case(("deadletter", "list", "--since", "2h"), 2, KAFKA_DOWN),
    Case(("deadletter", "replay", "clean", "--dry-run"), 2, KAFKA_DOWN),
    Case(("deadletter", "replay", "index"), 2, KAFKA_DOWN),
    Case(("ingest", "urls", "{files}/urls.txt"), 2, KAFKA_DOWN),
    Case(("ingest", "warc", "{files}/page.warc"), 2, KAFKA_DOWN),
    Case(("ingest", "feeds", "--once", "--sources", "{files}/sources.yaml"), 2, KAFKA_DOWN),
    Case(("audit",), 2, ("cannot reach",)),
    Case(("watch", "list"), 2, KAFKA_DOWN),
    Case(("watch", "add", "ports", "port strike"), 2, KAFKA_DOWN),
    Case(("watch", "remove", "ports"), 2, KAFKA_DOWN),
    Case(("watch", "tail", "--idle", "1"), 2, KAFKA_DOWN),
    # -- commands that need no service ------------------------------------------------
    Case(("settings",), 0, ("NEWSFLOW_KAFKA_BOOTSTRAP=127.0.0.1:1", "NEWSFLOW_SOURCES")),
    Case(("ingest", "status"), 0, ("no feed polled yet",)),
    Case(("stack", "status"), 1, ("stopped", "newsflow stack up")),
    Case(("stack", "logs", "kafka"), 0, ("no log yet",)),
    Case(("stack", "down"), 0, ("nothing was running",)),
    # -- bad arguments ----------------------------------------------------------------
    Case(("search", "-n", "-1", "port"), 2, ("-1 is not in the range",)),
    Case(("search", "-n", "100000", "port"), 2, ("100000 is not in the range",)),
    Case(("search", ""), 2, ("query is empty",)),
    Case(("search",), 2, ("missing argument",)),
    Case(("search", '"port strike'), 2, ("never closed",)),
    Case(("search", "(port | strike"), 2, ("never closed",)),
    Case(("search", "port)"), 2, ("closes nothing",)),
    Case(("search", "AND OR ("), 2, ("needs something to search for",)),
    Case(("search", "port~2"), 2, ("fuzzy",)),
    Case(("search", "&&"), 2, ("nothing to search for",)),
    Case(("search", "port", "--since", "yesterday"), 2, ("--since 'yesterday' is not a time",)),
    Case(("search", "port", "--since", "1d", "--until", "2d"), 2, ("swap them",)),
    Case(("search", "port", "--page", "0"), 2, ("0 is not in the range",)),
    Case(("search", "port", "--page", "500", "-n", "100"), 2, ("narrow the search",)),
    Case(("search", "port", "--sort", "oldest"), 2, ("invalid value",)),
    Case(("watch", "add", "bad name", "port"), 2, ("a watch's name",)),
    Case(("watch", "add", "ports", '"port'), 2, ("never closed",)),
    Case(("watch", "add", "ports"), 2, ("missing argument",)),
    Case(("watch", "add", "ports", "port", "--until", "someday"), 2, ("--until",)),
    Case(("watch", "remove"), 2, ("missing argument",)),
    Case(("watch", "tail", "--idle", "0"), 2, ("--idle",)),
    Case(("deadletter", "list", "nowhere"), 2, ("invalid value",)),
    Case(("deadletter", "replay"), 2, ("missing argument",)),
    Case(("stack", "logs", "zookeeper"), 2, ("invalid value",)),
    Case(("audit", "--since", "yesterday-ish"), 2, ("--since",)),
    Case(("audit", "--dry-run"), 2, ("--dry-run goes with --repair",)),
    Case(("audit", "--partition", "-3"), 2, ("--partition",)),
    Case(("nosuchcommand",), 2, ("no such command",)),
    Case(("ingest", "urls"), 2, ("missing argument",)),
    Case(("ingest", "feeds", "--once"), 2, ("sources",)),
    # -- bad input files --------------------------------------------------------------
    Case(("ingest", "urls", "{files}/absent.txt"), 2, ("does not exist",)),
    Case(("ingest", "warc", "{files}/absent.warc"), 2, ("does not exist",)),
    Case(("ingest", "urls", "{files}/binary.txt"), 2, ("binary.txt",)),
    Case(("ingest", "feeds", "--once", "--sources", "{files}/broken.yaml"), 2, ("broken.yaml",)),
    Case(("ingest", "feeds", "--once", "--sources", "{files}/wrong.yaml"), 2, ("wrong.yaml",)),
    # -- bad settings -----------------------------------------------------------------
    Case(
        ("settings",),
        2,
        ("NEWSFLOW_TOPIC_PARTITIONS", "valid integer"),
        (("NEWSFLOW_TOPIC_PARTITIONS", "many"),),
    ),
    Case(
        ("topics", "list"),
        2,
        ("bad kafka bootstrap server", "host:port"),
        (("NEWSFLOW_KAFKA_BOOTSTRAP", "kafka-without-port"),),
    ),
    Case(
        ("stack", "up"),
        2,
        ("/nonexistent is not a JDK", "NEWSFLOW_STACK_KAFKA_JAVA_HOME"),
        (
            ("NEWSFLOW_STACK_KAFKA_JAVA_HOME", "/nonexistent"),
            # Ports where nothing listens: a stack running on the default ones (a demo)
            # would be found first, and this case is about the JDK.
            ("NEWSFLOW_STACK_KAFKA_PORT", "2"),
            ("NEWSFLOW_STACK_KAFKA_CONTROLLER_PORT", "3"),
            ("NEWSFLOW_STACK_ES_PORT", "4"),
            ("NEWSFLOW_STACK_ES_TRANSPORT_PORT", "5"),
        ),
    ),
    Case(
        ("settings",),
        2,
        ("NEWSFLOW_WEBHOOK_URL", "http:// or https://"),
        (("NEWSFLOW_WEBHOOK_URL", "ftp://hooks.example/x"),),
    ),
    Case(
        ("search", "port"),
        2,
        ("bad elasticsearch url",),
        (("NEWSFLOW_ELASTICSEARCH_URL", "elastic"),),
    ),
    # -- the entity taggers ({tmp} is the test's own directory) -------------------------
    Case(
        ("ner", "fetch"),
        2,
        ("could not download", "127.0.0.1:1", "NEWSFLOW_NER_MAVEN_URL"),
        (("NEWSFLOW_NER_DIR", "{tmp}/ner"), ("NEWSFLOW_NER_MAVEN_URL", "http://127.0.0.1:1/m2")),
    ),
    Case(("ner", "tag", "-l", "it", "Giorgia Meloni a Roma."), 2, ("no entity tagger for",)),
    Case(("ner", "tag"), 2, ("nothing to tag",)),
    Case(
        ("ner", "tag", "Angela Merkel"),
        2,
        ("NEWSFLOW_NER_LANGUAGES", "some of en, de, fr, es"),
        (("NEWSFLOW_NER_LANGUAGES", "en,klingon"),),
    ),
    Case(
        ("ner", "tag", "Angela Merkel"),
        2,
        ("no libjvm under NEWSFLOW_NER_JAVA_HOME=/nonexistent",),
        (("NEWSFLOW_NER_JAVA_HOME", "/nonexistent"),),
    ),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    (d / "urls.txt").write_text("# a list\nhttp://127.0.0.1:1/a\n")
    (d / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe" * 40)
    (d / "page.warc").write_bytes(b"WARC/1.0\r\nWARC-Type: warcinfo\r\n\r\n")
    (d / "sources.yaml").write_text(
        "sources:\n  - name: local\n    feeds: [http://127.0.0.1:1/feed.xml]\n"
    )
    (d / "broken.yaml").write_text("sources: [\n  - name: {\n")
    (d / "wrong.yaml").write_text("sources:\n  - nom: local\n    feeds: 12\n")
    return d


def _env(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(DOWN)
    env.update(
        NEWSFLOW_STATE_DIR=str(tmp / "state"),
        NEWSFLOW_STACK_DIR=str(tmp / "stack"),
        NEWSFLOW_TOPIC_PREFIX="matrix",
    )
    env.update({k: v.replace("{tmp}", str(tmp)) for k, v in extra.items()})
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [*NEWSFLOW, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=ANSWER_WITHIN,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"`newsflow {' '.join(args)}` gave no answer in {ANSWER_WITHIN:.0f} s: {err}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_command_fails_well(case: Case, files: Path, tmp_path: Path) -> None:
    args = [a.replace("{files}", str(files)) for a in case.args]
    done = _run(args, _env(tmp_path, dict(case.env)))
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == case.code, output
    for words in case.says:
        assert words.lower() in output.lower(), output
    if case.code == 2:
        # One clear message: a few lines, not a dump; the usage line click adds counts.
        assert len(done.stderr.strip().splitlines()) <= 6, done.stderr


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import click

    assert isinstance(group, click.Group)
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, (*path, name))
        else:
            out.append((*path, name))
    return out


def test_every_command_is_in_the_matrix() -> None:
    """A new command joins the matrix, or this fails: off the happy path is not optional."""
    from newsflow.cli import cli

    # The worker is tried in tests/test_worker_cli.py; the demo starts its own stack.
    elsewhere = {("worker",), ("demo",)}
    missing = [
        cmd
        for cmd in _commands(cli)
        if cmd not in elsewhere and not any(case.args[: len(cmd)] == cmd for case in CASES)
    ]
    assert not missing, f"commands never tried off the happy path: {missing}"


def test_help_documents_exit_codes() -> None:
    from newsflow.cli import cli

    for command in [(), *_commands(cli)]:
        done = subprocess.run(
            [*NEWSFLOW, *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)
        if command == ():
            assert "Exit codes: 0 all well" in done.stdout


def test_the_feed_watcher_waits_for_the_broker_saying_so_once(files: Path, tmp_path: Path) -> None:
    # The worker waits the same way: tests/test_worker_cli.py, with the services coming up.
    args = ("ingest", "feeds", "--sources", "{files}/sources.yaml")
    argv = [*NEWSFLOW, *(a.replace("{files}", str(files)) for a in args)]
    lines: list[str] = []
    with subprocess.Popen(
        argv,
        env=_env(tmp_path, {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        # A thread reads, so the test can wait on the output without blocking on it.
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        reader.start()
        deadline = time.monotonic() + ANSWER_WITHIN
        while not any("waiting for kafka" in line.lower() for line in lines):
            assert proc.poll() is None, f"stopped instead of waiting: {''.join(lines)}"
            assert time.monotonic() < deadline, f"never said it waits: {''.join(lines)}"
            time.sleep(0.2)
        time.sleep(12)  # long enough for two more attempts to connect
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=ANSWER_WITHIN)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"did not stop on Ctrl-C: {''.join(lines)}")
        reader.join(timeout=5)
    seen = "".join(lines)
    assert seen.lower().count("waiting for kafka") == 1, seen
    assert "127.0.0.1:1" in seen and "newsflow stack up" in seen, seen
    assert "Traceback" not in seen, seen
    assert proc.returncode in (0, 130), seen


def test_output_into_a_reader_that_stops_is_no_failure(tmp_path: Path) -> None:
    """`newsflow topics list --declared | true`: the closed pipe ends the command quietly,
    as it ends any Unix tool (141, as if killed by SIGPIPE), not as a bug."""
    done = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {sys.executable} -m newsflow.cli topics list --declared | true;"
            " echo $?",
        ],
        env=_env(tmp_path, {}),
        capture_output=True,
        text=True,
        timeout=ANSWER_WITHIN,
    )
    assert done.stdout.strip() == "141", (done.stdout, done.stderr)
    assert done.stderr == "", done.stderr
