"""A file of URLs for `newsflow ingest urls`: one per line, blank lines and ``#`` comments
ignored, each kept with where it stands (``urls.txt:2``) so that a failure can say so.

Reading is strict about the file and lenient about its lines: a file that cannot be read
as UTF-8 text (another encoding, a binary file) is a ``SetupError`` naming the line, since
guessing would fetch garbage; a line that is no URL is only that line's failure, judged by
the job (``ingest.canon.url_problem``), and the rest of the file is fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsflow.errors import SetupError

HINT = "give a UTF-8 text file with one http(s) URL per line (# starts a comment)"


@dataclass(frozen=True)
class Listed:
    """A line of a URL list: where it stands, and its text (not checked yet)."""

    where: str
    text: str


def parse(data: bytes, name: str) -> list[Listed]:
    """The lines of a URL list that are neither blank nor comments."""
    if b"\0" in data[:8192]:
        raise SetupError(f"{name} is not a text file (it holds NUL bytes)", HINT)
    try:
        text = data.decode("utf-8-sig")  # a byte order mark (Windows editors) is no URL
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SetupError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x})", HINT
        ) from err
    return [
        Listed(f"{name}:{n}", stripped)
        for n, line in enumerate(text.splitlines(), start=1)
        if (stripped := line.strip()) and not stripped.startswith("#")
    ]


def read(path: Path) -> list[Listed]:
    """``parse`` of the file at ``path``; a file that cannot be read is a SetupError."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SetupError(f"cannot read {path}: {err.strerror or err}", HINT) from err
    return parse(data, path.name)
