"""CoreNLP's taggers: fetching from a Maven repository (a real HTTP server on loopback
serving good, corrupted, missing and cut-off files), the span mapping as a pure function,
and the real taggers in this process's JVM on text that trips offsets up."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsflow.errors import SetupError
from processors import corenlp
from processors.corenlp import CODE, Jar, Model, spans_of
from processors.entities import EntityOptions, Tagger


class Repository(ThreadingHTTPServer):
    """A Maven repository: path -> bytes; ``cut`` paths announce more than they send."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/maven2"

    def put(self, jar: Jar, body: bytes) -> None:
        self.files[f"/maven2/{corenlp.MAVEN_PATH}/{jar.name}"] = body


class _Handler(BaseHTTPRequestHandler):
    server: Repository

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        cut = self.path in self.server.cut
        self.send_header("Content-Length", str(len(body) * (2 if cut else 1)))
        self.end_headers()
        self.wfile.write(body)
        if cut:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def repository() -> Iterator[Repository]:
    server = Repository()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    # The real files, fetched into the default cache once per machine.
    return Tagger()


def small_models_jar(member: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, content)
        archive.writestr("edu/stanford/nlp/models/parser/other.ser.gz", b"not wanted" * 100)
    return buffer.getvalue()


def pin(monkeypatch: pytest.MonkeyPatch, code: bytes, models: dict[str, tuple[str, bytes]]) -> None:
    """Pins the release to small files of the test's own (the real jars are 1.2 GB)."""
    monkeypatch.setattr(corenlp, "CODE", Jar(None, len(code), hashlib.sha256(code).hexdigest()))
    pinned = {}
    for language, (member, body) in models.items():
        jar = Jar(f"models-{language}", len(body), hashlib.sha256(body).hexdigest())
        pinned[language] = Model(language, jar, member, corenlp.MODELS[language].labels)
    monkeypatch.setattr(corenlp, "MODELS", pinned)


# -- fetching ---------------------------------------------------------------------------


def test_fetch_keeps_the_code_and_only_the_tagger_of_each_models_jar(
    repository: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = b"code jar" * 1000
    member = "edu/stanford/nlp/models/ner/tiny.crf.ser.gz"
    models = small_models_jar(member, b"the tagger")
    pin(monkeypatch, code, {"de": (member, models)})
    repository.put(corenlp.CODE, code)
    repository.put(corenlp.MODELS["de"].jar, models)
    said: list[str] = []

    fetched = corenlp.fetch(tmp_path, ["de"], repository.url, said.append)

    here = corenlp.release_dir(tmp_path)
    assert fetched == [corenlp.CODE.name, corenlp.MODELS["de"].jar.name]
    assert (here / corenlp.CODE.name).read_bytes() == code
    assert (here / "tiny.crf.ser.gz").read_bytes() == b"the tagger"
    assert sorted(p.name for p in here.iterdir()) == sorted([corenlp.CODE.name, "tiny.crf.ser.gz"])
    assert any("downloading" in line and repository.url in line for line in said)
    assert corenlp.missing(tmp_path, ["de"]) == []
    # A second fetch finds everything there and downloads nothing.
    requests = len(repository.requests)
    assert corenlp.fetch(tmp_path, ["de"], repository.url) == []
    assert len(repository.requests) == requests


def test_a_corrupted_download_is_refused_and_leaves_nothing(
    repository: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = b"code jar" * 1000
    pin(monkeypatch, code, {})
    repository.put(corenlp.CODE, b"tampered" * 1000)
    with pytest.raises(SetupError, match="not the release newsflow pins") as err:
        corenlp.fetch(tmp_path, [], repository.url)
    assert "NEWSFLOW_NER_MAVEN_URL" in err.value.hint
    assert list(corenlp.release_dir(tmp_path).iterdir()) == []


def test_a_download_cut_off_midway_leaves_nothing(
    repository: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = b"code jar" * 1000
    pin(monkeypatch, code, {})
    repository.put(corenlp.CODE, code)
    repository.cut.add(next(iter(repository.files)))
    with pytest.raises(SetupError, match="could not download"):
        corenlp.fetch(tmp_path, [], repository.url)
    assert list(corenlp.release_dir(tmp_path).iterdir()) == []


def test_a_repository_without_the_release_names_the_url(
    repository: Repository, tmp_path: Path
) -> None:
    with pytest.raises(SetupError, match="answered 404") as err:
        corenlp.fetch(tmp_path, ["en"], repository.url)
    assert CODE.name in err.value.message
    assert "NEWSFLOW_NER_MAVEN_URL" in err.value.hint


def test_an_unreachable_repository_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="could not download"):
        corenlp.fetch(tmp_path, ["en"], "http://127.0.0.1:9/maven2", timeout=5)


def test_unknown_languages_and_missing_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="no entity tagger for language 'it'"):
        corenlp.fetch(tmp_path, ["it"], "http://127.0.0.1:9/maven2")
    with pytest.raises(SetupError, match="newsflow ner fetch") as err:
        corenlp.Engine(tmp_path, ["en"])
    assert CODE.name in err.value.message
    with pytest.raises(SetupError, match="no libjvm"):
        corenlp._libjvm(tmp_path)


# -- spans, pure ---------------------------------------------------------------------------


def test_utf16_offsets_become_python_indices() -> None:
    text = "🙂 Angela Merkel met 👍🏽 Olaf Scholz in \U0001d505erlin."
    java = text.encode("utf-16-le")

    def utf16(sub: str) -> tuple[int, int]:
        start = java.find(sub.encode("utf-16-le")) // 2
        return start, start + len(sub.encode("utf-16-le")) // 2

    raw = [("PERSON", *utf16("Angela Merkel")), ("PERSON", *utf16("Olaf Scholz"))]
    raw.append(("LOCATION", *utf16("\U0001d505erlin")))
    spans = spans_of(raw, text, corenlp.MODELS["en"].labels)
    assert [(label, text[s:e]) for label, s, e in spans] == [
        ("PERSON", "Angela Merkel"),
        ("PERSON", "Olaf Scholz"),
        ("LOC", "\U0001d505erlin"),
    ]


def test_iob_names_that_begin_with_b_are_one_name() -> None:
    text = "Paris Hilton Jean Dupont et Marie Curie"
    raw = [
        ("I-PER", 0, 12),  # Paris Hilton
        ("B-PER", 13, 17),  # Jean, a new name right after another
        ("I-PER", 18, 24),  # Dupont
        ("O", 25, 27),
        ("I-PER", 28, 39),  # Marie Curie
    ]
    spans = spans_of(raw, text, corenlp.MODELS["fr"].labels)
    assert [text[s:e] for _, s, e in spans] == ["Paris Hilton", "Jean Dupont", "Marie Curie"]
    # Without B- before it, an I- span after a gap stays a name of its own.
    assert (
        len(spans_of([("I-PER", 0, 5), ("I-PER", 6, 12)], text, corenlp.MODELS["fr"].labels)) == 2
    )


# -- the real taggers ------------------------------------------------------------------------


def test_offsets_hold_after_characters_java_counts_twice(tagger: Tagger) -> None:
    paragraphs = [
        "🙂🙂 Angela Merkel met Emmanuel Macron 👍🏽 in Paris.",
        "Deutsche Bank \U0001d504 fell.",
    ]
    result = tagger.tag(paragraphs, "en")
    text = "\n\n".join(paragraphs)
    got = {(e.text, e.label) for e in result.entities}
    assert {("Angela Merkel", "PERSON"), ("Emmanuel Macron", "PERSON"), ("Paris", "LOC")} <= got
    for entity in result.entities:
        assert text[entity.first_offset :].startswith(entity.text), entity


def test_lone_surrogates_do_not_stop_the_tagger(tagger: Tagger) -> None:
    paragraph = "Angela Merkel \ud800 visited Paris \udfff on Monday."
    result = tagger.tag([paragraph], "en")
    assert {(e.text, e.label, e.first_offset) for e in result.entities} == {
        ("Angela Merkel", "PERSON", 0),
        ("Paris", "LOC", paragraph.index("Paris")),
    }


@pytest.mark.parametrize(
    ("language", "paragraph", "expected"),
    [
        (
            "de",
            "Bundeskanzler Olaf Scholz traf in Frankfurt am Main Vertreter der Deutschen Bank.",
            {("Olaf Scholz", "PERSON"), ("Frankfurt am Main", "LOC"), ("Deutschen Bank", "ORG")},
        ),
        (
            "fr-FR",
            "Emmanuel Macron a rencontré Olaf Scholz à Berlin avant la Banque centrale européenne.",
            {
                ("Emmanuel Macron", "PERSON"),
                ("Berlin", "LOC"),
                ("Banque centrale européenne", "ORG"),
            },
        ),
        (
            "es",
            "Pedro Sánchez se reunió con Emmanuel Macron en Madrid y con el Banco Santander.",
            {("Pedro Sánchez", "PERSON"), ("Madrid", "LOC"), ("Banco Santander", "ORG")},
        ),
    ],
)
def test_each_language_has_its_tagger(
    tagger: Tagger, language: str, paragraph: str, expected: set[tuple[str, str]]
) -> None:
    result = tagger.tag([paragraph], language)
    assert result.skipped is None
    assert expected <= {(e.text, e.label) for e in result.entities}


def test_languages_left_out_keep_their_reason(tmp_path: Path) -> None:
    tagger = Tagger(EntityOptions(languages=("en",)))
    german = tagger.tag(["Olaf Scholz traf in Berlin ein."], "de")
    assert german.entities == []
    assert german.skipped == "no entity tagger for language 'de' (newsflow tags en)"
    italian = Tagger().tag(["Giorgia Meloni a Roma."], "it")
    assert italian.skipped == "no entity tagger for language 'it' (newsflow tags en, de, fr, es)"


# -- the command ---------------------------------------------------------------------------


def _ner_tag(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "newsflow.cli", "ner", "tag", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )


def test_ner_tag_reads_paragraphs_from_standard_input() -> None:
    text = "Ingrid Falk of Baltamar Shipping spoke.\n\nFalk said Kessling would wait.\n"
    done = _ner_tag(["--json"], text.encode())
    assert done.returncode == 0, done.stderr
    entities = [json.loads(line) for line in done.stdout.decode().splitlines()]
    by_text = {e["text"]: e for e in entities}
    assert by_text["Ingrid Falk"]["label"] == "PERSON" and by_text["Ingrid Falk"]["count"] == 2
    assert by_text["Ingrid Falk"]["paragraphs"] == [0, 1]
    assert by_text["Baltamar Shipping"]["label"] == "ORG"


def test_ner_tag_refuses_bytes_that_are_not_text() -> None:
    done = _ner_tag([], bytes(range(256)) * 4)
    assert done.returncode == 2
    assert b"standard input is not UTF-8 text" in done.stderr
    assert b"Traceback" not in done.stderr
