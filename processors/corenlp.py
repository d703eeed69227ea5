"""Stanford CoreNLP's CRF entity taggers, in this process's own JVM through JPype.

Written against CoreNLP 4.5.10 (Maven Central, ``edu.stanford.nlp:stanford-corenlp``) and
JPype1 1.7. A new CoreNLP release means new checksums below, and the benchmark
(``bench/ner_conll.py``) and ``tests/test_corenlp.py`` run again before the pin moves.

Why CoreNLP. On the CoNLL-2003 development set, scored as newsflow's users see entities,
its English 4-class CRF (trained on the CoNLL-2003 training set only) reaches 0.90 F1
against 0.66 for spaCy's small English model and 0.68 for the medium one, and tags about
2.5 times as many articles per second. No stronger English tagger installs offline here:
the transformer pipelines on PyPI are empty placeholders, and the Hugging Face hub is not
reachable. The same release carries CRFs for German (trained on CoNLL-2003 German), French
(WikiNER) and Spanish (AnCora), so the four languages that make most of the news newsflow
reads go through one mechanism.

What the module does:

* ``fetch`` downloads the jars from a Maven repository into a cache directory, checks each
  against the SHA-256 pinned here (the numbers Maven Central's own SHA-1 files confirm),
  keeps the code jar and, from each models jar, only the one serialized tagger newsflow
  uses. The models jars hold every CoreNLP model of their language (parsers, coreference,
  sentiment...) and are 200 to 470 MB; the taggers are 16 to 105 MB.
* ``Engine`` starts the JVM once per process and loads a language's tagger the first time
  an article in that language arrives. The JVM is started with ``-Xrs``, so it leaves
  SIGTERM and SIGINT to Python (Faust's graceful shutdown), and without JPype's SIGINT
  handler. A JVM cannot be restarted in a process: a second Engine reuses the running one.
* ``Engine.spans`` returns (label, start, end) in Python string indices. Java counts
  UTF-16 code units, so every character outside the Basic Multilingual Plane (an emoji)
  shifts CoreNLP's offsets by one; they are mapped back here.

Labels are newsflow's: PERSON, ORG, LOC and MISC. CoNLL's MISC holds nationalities,
events, works and products alike, which spaCy splits into NORP, EVENT and the rest.

Licence: CoreNLP is GPL-3.0-or-later; newsflow (Apache-2.0) does not ship it. ``fetch``
downloads it on the machine that runs newsflow, and NEWSFLOW_NER_BACKEND=spacy runs
without it (MIT models).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from newsflow.errors import SetupError

log = logging.getLogger(__name__)

VERSION = "4.5.10"
MAVEN_PATH = f"edu/stanford/nlp/stanford-corenlp/{VERSION}"


@dataclass(frozen=True)
class Jar:
    """One artifact of the CoreNLP release: its Maven classifier, size and SHA-256."""

    classifier: str | None  # None for the code jar
    size: int
    sha256: str

    @property
    def name(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"stanford-corenlp-{VERSION}{suffix}.jar"

    def url(self, repository: str) -> str:
        return f"{repository.rstrip('/')}/{MAVEN_PATH}/{self.name}"


CODE = Jar(None, 9_118_725, "f813ce4ed7319d79225f2a520d40733075c6b3500dd0b81ee069229e461aab43")

_CONLL = {"PERSON": "PERSON", "ORGANIZATION": "ORG", "LOCATION": "LOC", "MISC": "MISC"}
# WikiNER's French tagger writes IOB1: I-X inside a name, B-X only where a name follows
# another of the same type with nothing between.
_IOB = {
    f"{p}-{k}": v
    for p in "IB"
    for k, v in zip(("PER", "ORG", "LOC", "MISC"), _CONLL.values(), strict=True)
}


@dataclass(frozen=True)
class Model:
    language: str
    jar: Jar
    member: str  # the serialized tagger inside the jar
    labels: Mapping[str, str]  # CoreNLP's label -> newsflow's

    @property
    def file_name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


_NER = "edu/stanford/nlp/models/ner/"
MODELS: dict[str, Model] = {
    m.language: m
    for m in (
        Model(
            "en",
            Jar(
                "models",
                474_409_531,
                "a5da9f6feb35a0fd2ea2cbe8909bede3952965b238a68c833ae3e031ed9026a0",
            ),
            _NER + "english.conll.4class.distsim.crf.ser.gz",
            _CONLL,
        ),
        Model(
            "de",
            Jar(
                "models-german",
                199_660_934,
                "d8f4ab0a5bd900c6f63130e1af0494b62af7ba49f2bfaa7daff9b7ab86ef14c0",
            ),
            _NER + "german.distsim.crf.ser.gz",
            _CONLL,
        ),
        Model(
            "fr",
            Jar(
                "models-french",
                280_999_356,
                "1172d4339c0abef30789a9ca541ecd3b3308dd3aa9f60760c581070a07da6ea3",
            ),
            _NER + "french-wikiner-4class.crf.ser.gz",
            _IOB,
        ),
        Model(
            "es",
            Jar(
                "models-spanish",
                222_411_312,
                "d7472daa295293ee42c85ca3e9c10fc0868b6c6b100e800458a81a179c725a6a",
            ),
            _NER + "spanish.ancora.distsim.s512.crf.ser.gz",
            _CONLL,
        ),
    )
}


def release_dir(directory: Path) -> Path:
    return directory / f"corenlp-{VERSION}"


def missing(directory: Path, languages: Iterable[str]) -> list[str]:
    """What ``fetch`` would download for ``languages``: jar names, the code first."""
    here = release_dir(directory)
    names = [] if (here / CODE.name).is_file() else [CODE.name]
    names += [
        MODELS[lang].jar.name for lang in languages if not (here / MODELS[lang].file_name).is_file()
    ]
    return names


def fetch(
    directory: Path,
    languages: Iterable[str],
    repository: str,
    say: Callable[[str], None] = log.info,
    timeout: float = 60.0,
) -> list[str]:
    """Download what ``languages`` need and is not in ``directory`` yet; the names fetched.

    A download goes to a temporary file that replaces nothing until its checksum is
    right, so an interrupted or corrupted download leaves the cache as it was.
    """
    here = release_dir(directory)
    here.mkdir(parents=True, exist_ok=True)
    wanted = [MODELS[_known(lang)] for lang in languages]
    fetched = []
    if not (here / CODE.name).is_file():
        _download(CODE, repository, here / CODE.name, say, timeout)
        fetched.append(CODE.name)
    for model in wanted:
        target = here / model.file_name
        if target.is_file():
            continue
        jar = here / (model.jar.name + ".part")
        try:
            _download(model.jar, repository, jar, say, timeout)
            part = target.with_name(target.name + ".part")
            with (
                zipfile.ZipFile(jar) as archive,
                archive.open(model.member) as src,
                part.open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
            part.replace(target)
        finally:
            jar.unlink(missing_ok=True)
        say(
            f"kept the {model.language} tagger {model.file_name} "
            f"(the rest of {model.jar.name} is not needed)"
        )
        fetched.append(model.jar.name)
    return fetched


def _known(language: str) -> str:
    if language not in MODELS:
        raise SetupError(
            f"CoreNLP has no entity tagger for language {language!r} in newsflow",
            f"set NEWSFLOW_NER_LANGUAGES to some of {', '.join(MODELS)}",
        )
    return language


def _download(
    jar: Jar, repository: str, target: Path, say: Callable[[str], None], timeout: float
) -> None:
    url = jar.url(repository)
    part = target.with_name(target.name + ".download")
    digest = hashlib.sha256()
    say(f"downloading {jar.name} ({jar.size / 1e6:.0f} MB) from {repository}")
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise SetupError(
                    f"{url} answered {response.status_code}",
                    "check NEWSFLOW_NER_MAVEN_URL (a Maven repository that mirrors Central)",
                )
            # Progress on the large downloads only (each models jar is hundreds of MB).
            done, step = 0, max(jar.size // 5, 50_000_000)
            with part.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    before, done = done, done + len(chunk)
                    if done // step > before // step and done < jar.size:
                        say(f"  {jar.name}: {done / 1e6:.0f} of {jar.size / 1e6:.0f} MB")
        if digest.hexdigest() != jar.sha256:
            raise SetupError(
                f"{jar.name} from {repository} is not the release newsflow pins "
                f"(SHA-256 {digest.hexdigest()}, {done} bytes; expected {jar.sha256})",
                "the download was corrupted or the repository serves another file; try again "
                "or point NEWSFLOW_NER_MAVEN_URL at Maven Central",
            )
        part.replace(target)
    except httpx.HTTPError as err:
        raise SetupError(
            f"could not download {url}: {err}",
            "check the network or NEWSFLOW_NER_MAVEN_URL; `newsflow ner fetch` retries",
        ) from None
    finally:
        part.unlink(missing_ok=True)


# -- the JVM --------------------------------------------------------------------------

_jvm_lock = threading.Lock()


def start_jvm(directory: Path, heap: str = "1g", java_home: Path | None = None) -> None:
    """Start this process's JVM with CoreNLP on its class path, if it is not running yet.

    Call it from the main thread before anything runs in other threads: JPype ties the
    JVM to the thread that started it, and a JVM started from an executor's thread makes
    the interpreter hang at exit (a worker that never stops on SIGTERM). The worker does
    it before Faust starts; ``Engine`` does it itself when made in the main thread.
    """
    _start_jvm(release_dir(directory) / CODE.name, heap, java_home)


def _start_jvm(code_jar: Path, heap: str, java_home: Path | None) -> None:
    import jpype

    with _jvm_lock:
        if not jpype.isJVMStarted() and threading.current_thread() is not threading.main_thread():
            raise SetupError(
                "CoreNLP's JVM must be started from the main thread (a JVM started in "
                "another thread hangs the process at exit)",
                "call processors.corenlp.start_jvm() in the main thread first",
            )
        if not code_jar.is_file():
            raise SetupError(
                f"CoreNLP's code jar is not at {code_jar}",
                "run `newsflow ner fetch` (the worker fetches it itself when it starts)",
            )
        if jpype.isJVMStarted():
            if not any(
                Path(p) == code_jar
                for p in str(jpype.java.lang.System.getProperty("java.class.path")).split(":")
            ):
                raise SetupError(
                    "a JVM without CoreNLP is already running in this process",
                    "start newsflow's tagger before anything else that starts a JVM",
                )
            return
        try:
            path = _libjvm(java_home) if java_home else jpype.getDefaultJVMPath()
        except jpype.JVMNotFoundException:
            raise SetupError(
                "the entity tagger (CoreNLP) needs a Java runtime, 11 or newer, and none was found",
                "install one (apt-get install openjdk-17-jre-headless), or set "
                "NEWSFLOW_NER_JAVA_HOME, or NEWSFLOW_NER_BACKEND=spacy",
            ) from None
        jpype.startJVM(
            path,
            f"-Xmx{heap}",
            "-Xrs",
            "-Djava.awt.headless=true",
            classpath=[str(code_jar)],
            convertStrings=False,
            interrupt=False,
        )
        # CoreNLP logs every tagger it loads to stderr through its own logger; newsflow
        # says it in its own log instead.
        jpype.JClass("edu.stanford.nlp.util.logging.RedwoodConfiguration").current().clear().apply()


def _libjvm(java_home: Path) -> str:
    for candidate in (
        "lib/server/libjvm.so",
        "jre/lib/amd64/server/libjvm.so",
        "lib/server/libjvm.dylib",
    ):
        if (java_home / candidate).is_file():
            return str(java_home / candidate)
    raise SetupError(
        f"no libjvm under NEWSFLOW_NER_JAVA_HOME={java_home}",
        "point it at a JDK or JRE (the directory holding bin/java)",
    )


class Engine:
    """CoreNLP's taggers in this process, loaded per language on first use."""

    def __init__(
        self,
        directory: Path,
        languages: Iterable[str],
        heap: str = "1g",
        java_home: Path | None = None,
    ) -> None:
        self.directory = release_dir(directory)
        self.languages = tuple(_known(lang) for lang in languages)
        absent = missing(directory, self.languages)
        if absent:
            raise SetupError(
                f"CoreNLP's files are not in {self.directory}: {', '.join(absent)}",
                "run `newsflow ner fetch` (the worker fetches them itself when it starts)",
            )
        _start_jvm(self.directory / CODE.name, heap, java_home)
        self._taggers: dict[str, Any] = {}
        self._classes: _Java | None = None
        self._lock = threading.Lock()

    def tagger(self, language: str) -> Any:
        """The language's CRFClassifier, loaded now if it is the first call for it."""
        with self._lock:
            if language not in self._taggers:
                import jpype

                path = self.directory / MODELS[language].file_name
                crf = jpype.JClass("edu.stanford.nlp.ie.crf.CRFClassifier")
                try:
                    self._taggers[language] = crf.getClassifier(str(path))
                except jpype.JException as err:
                    raise SetupError(
                        f"CoreNLP could not load {path}: {err}",
                        "delete the file and run `newsflow ner fetch` again",
                    ) from None
                log.info("loaded the %s entity tagger (%s)", language, path.name)
            return self._taggers[language]

    def spans(self, language: str, text: str) -> list[tuple[str, int, int]]:
        """(newsflow label, start, end) of each name CoreNLP finds in ``text``."""
        import jpype

        tagger = self.tagger(language)
        # A lone surrogate (a JSON escape such as \ud800 decodes to one) cannot cross into
        # Java; U+FFFD in its place keeps every offset.
        java_text = jpype.JString(_LONE_SURROGATE.sub("\ufffd", text))
        # Tokens and sentences are made here rather than by the classifier's own reader,
        # whose tokenizer splits hyphenated words: the taggers learnt from text where
        # "Anglo-Dutch" and "Okafor-Brandt" are one word each (on the CoNLL development
        # set, splitting them costs 0.014 F1). One thread at a time: CoreNLP does not
        # document its classifiers as safe to share, and the enrich agent tags one batch
        # at a time anyway.
        raw: list[tuple[str, int, int]] = []
        with self._lock:
            java = self._java()
            words = java.tokenizer(java.reader(java_text), java.labels, _TOKENIZER).tokenize()
            for sentence in java.sentences.process(words):
                raw += _runs(tagger.classifySentence(sentence), java.answer)
        return spans_of(raw, text, MODELS[language].labels)

    def _java(self) -> _Java:
        if self._classes is None:
            self._classes = _Java.load()
        return self._classes


# PTBTokenizer's options: hyphenated words whole; offsets into the original text.
_TOKENIZER = "splitHyphenated=false,invertible=true"


@dataclass(frozen=True)
class _Java:
    """The CoreNLP classes the tagging calls, looked up once."""

    tokenizer: Any
    reader: Any
    labels: Any
    sentences: Any
    answer: Any

    @classmethod
    def load(cls) -> _Java:
        import jpype

        return cls(
            tokenizer=jpype.JClass("edu.stanford.nlp.process.PTBTokenizer"),
            reader=jpype.JClass("java.io.StringReader"),
            labels=jpype.JClass("edu.stanford.nlp.process.CoreLabelTokenFactory")(),
            sentences=jpype.JClass("edu.stanford.nlp.process.WordToSentenceProcessor")(),
            answer=jpype.JClass("edu.stanford.nlp.ling.CoreAnnotations$AnswerAnnotation"),
        )


def _runs(tokens: Any, answer: Any) -> list[tuple[str, int, int]]:
    """(label, start, end) of each run of tokens with one label other than "O", as
    CoreNLP's classifyToCharacterOffsets makes them."""
    runs: list[tuple[str, int, int]] = []
    current: list[Any] | None = None
    for token in tokens:
        label = str(token.get(answer))
        if label != "O" and current is not None and current[0] == label:
            current[2] = int(token.endPosition())
            continue
        if current is not None:
            runs.append((current[0], current[1], current[2]))
        current = [label, int(token.beginPosition()), int(token.endPosition())]
        if label == "O":
            current = None
    if current is not None:
        runs.append((current[0], current[1], current[2]))
    return runs


def spans_of(
    raw: Iterable[tuple[str, int, int]], text: str, labels: Mapping[str, str]
) -> list[tuple[str, int, int]]:
    """CoreNLP's (label, UTF-16 start, UTF-16 end) spans of ``text`` as newsflow's (label,
    start, end) in Python indices; labels newsflow does not map are left out."""
    to_index = _utf16_to_index(text)
    found: list[tuple[str, int, int]] = []
    previous = ""  # CoreNLP's label of the last span kept
    for label, start, end in raw:
        mapped = labels.get(label)
        if mapped is None:
            continue
        start, end = to_index(start), to_index(end)
        # CoreNLP groups tokens of the same label: an IOB1 name that begins with B-X comes
        # as a B-X span (its first word) and an I-X span (the rest).
        continues = previous == "B-" + label[2:] and label.startswith("I-")
        if continues and _only_space(text, found[-1][2], start):
            found[-1] = (mapped, found[-1][1], end)
        else:
            found.append((mapped, start, end))
        previous = label
    return found


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _only_space(text: str, end: int, start: int) -> bool:
    return start >= end and not text[end:start].strip()


def _utf16_to_index(text: str) -> Callable[[int], int]:
    """Maps a UTF-16 offset in ``text`` to its Python index."""
    if text.isascii() or max(text) <= "\uffff":
        return lambda offset: offset
    starts: list[int] = []  # UTF-16 offset of each character
    unit = 0
    for char in text:
        starts.append(unit)
        unit += 2 if char > "\uffff" else 1
    starts.append(unit)
    position = {u: i for i, u in enumerate(starts)}
    return lambda offset: position.get(offset, len(text))
