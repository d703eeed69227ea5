"""How text becomes search terms: the one analysis every search and every standing query
uses, made here in Python rather than by an Elasticsearch analyzer.

Elasticsearch's ``english`` analyzer lives in its analysis-common module, which the
minimal distribution newsflow's local stack runs does not carry (nor does Maven Central
serve the module). So the index stage analyses the text itself and sends the terms, as
space-separated tokens, to fields the node only splits on whitespace (``stems.*`` and
``words.*`` in processors.index). That is also what lets a standing query match an
article in the stream exactly as the index does (newsflow.query): both sides split,
fold and stem with this module, so they cannot disagree about what a word is. It is the
same on every node, the Docker image's included.

A token is a run of letters and digits, apostrophes inside a word kept ("don't"),
lowercased, accents folded ("Zürich" -> "zurich") and the English possessive dropped
("Reuters's" -> "reuters"). Its stem is the Snowball English (Porter 2) stem, by
PyStemmer ("strikes", "striking" -> "strike"). Stop words are kept: a phrase such as
"join the conversation" means those words in that order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache

import Stemmer  # type: ignore[import-not-found]

_TOKEN = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
# Elasticsearch's whitespace tokenizer cuts a longer token into pieces; such a token (a
# blob of base64, a run of digits) is no word anyone searches for, so it is left out on
# both sides rather than cut differently.
MAX_TOKEN_CHARS = 255


@dataclass(frozen=True)
class Token:
    word: str  # lowercased, folded: what a prefix matches
    stem: str  # what a word or phrase matches
    start: int  # character offsets in the text it came from: what a snippet marks
    end: int


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def fold(word: str) -> str:
    """Lowercase, without accents or the possessive: the form tokens are compared in."""
    word = word.replace("\u2019", "'").casefold()
    if word.endswith("'s"):
        word = word[:-2]
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> Iterator[Token]:
    """The tokens of ``text`` with their offsets (stems computed in one call per text)."""
    # A few letters fold to several words (the ligature U+FDFA to four): each is a token,
    # as the node's whitespace tokenizer splits them.
    found = [(m, w) for m in _TOKEN.finditer(text) for w in fold(m.group()).split(" ")]
    found = [(m, w) for m, w in found if w and _fits(w)]
    stems = _stemmer().stemWords([w for _, w in found])
    for (m, word), stem in zip(found, stems, strict=True):
        yield Token(word, stem, m.start(), m.end())


def _fits(word: str) -> bool:
    # Lucene counts UTF-16 units: a character outside the BMP is two.
    return len(word) <= MAX_TOKEN_CHARS // 2 or len(word.encode("utf-16-le")) <= 2 * MAX_TOKEN_CHARS


def stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


@dataclass(frozen=True)
class Analysed:
    """One text field, analysed: its words (for prefixes) and stems (for words and phrases),
    position by position."""

    words: tuple[str, ...]
    stems: tuple[str, ...]

    @cached_property
    def stem_set(self) -> frozenset[str]:
        """The stems, for a word query: every watch asks it of the same article."""
        return frozenset(self.stems)

    @classmethod
    def of(cls, text: str | None) -> Analysed:
        found = list(tokens(text or ""))
        return cls(tuple(t.word for t in found), tuple(t.stem for t in found))


# The fields a query searches, with their weight in ranking: a word in the title says more
# about what an article is about than one in its fourth paragraph.
FIELDS = {"title": 3.0, "description": 2.0, "text": 1.0}
