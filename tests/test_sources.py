"""Sources declared as data: a valid file loads, a wrong one says where it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.sources import SourcesError, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def test_sources_file_loads_and_lists_each_endpoint_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
user_agent: "newsflow-test/1"
sources:
  - name: Courier
    feeds: ["https://courier.example/feed.xml", "https://courier.example/feed.xml"]
  - name: Ledger
    feeds: ["https://ledger.example/atom.xml"]
    sitemaps: ["https://ledger.example/news-sitemap.xml"]
""",
    )
    sources = load(path)
    assert sources.user_agent == "newsflow-test/1"
    assert sources.endpoints() == [
        ("Courier", "feed", "https://courier.example/feed.xml"),
        ("Ledger", "feed", "https://ledger.example/atom.xml"),
        ("Ledger", "sitemap", "https://ledger.example/news-sitemap.xml"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: []", "sources"),
        ("sources:\n  - name: X\n    feeds: ['ftp://x.example/f']", "sources.0.feeds"),
        ("sources:\n  - name: X\n    feedz: ['https://x.example/f']", "feedz"),
        ("sources: [unclosed", "not valid YAML"),
    ],
)
def test_a_wrong_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SourcesError, match=message):
        load(write(tmp_path, text))


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match="cannot read"):
        load(tmp_path / "absent.yaml")
