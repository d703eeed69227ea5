"""The seen-URL store: what ingest remembers across restarts."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.canon import canonicalize
from ingest.seen import SeenStore
from tests.conftest import ROOT

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_a_restart_remembers(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.db") as store:
        assert store.add("https://news.example.com/a", NOW)
    with SeenStore(tmp_path / "seen.db") as store:
        assert store.contains("https://news.example.com/a")
        assert "https://news.example.com/b" not in store
        assert not store.add("https://news.example.com/a", NOW)
        assert len(store) == 1


def test_spellings_of_one_address_are_one_entry(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.db") as store:
        assert store.add("https://news.example.com/a?x=1&utm_source=rss")
        assert not store.add("HTTPS://News.Example.com:443/a?x=1#comments")
        assert store.contains("https://news.example.com/a?x=1")
        assert len(store) == 1


def test_add_many_is_one_transaction(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.db") as store:
        store.add("https://example.com/old", NOW)
        urls = ["https://example.com/new", "https://example.com/old", "https://example.com/new"]
        assert store.add_many(urls, NOW) == ["https://example.com/new"]
        # urlsplit refuses this one, after the first URL of the batch was written: the
        # whole batch must be rolled back.
        with pytest.raises(ValueError):
            store.add_many(["https://example.com/kept-out", "http://[not-a-host/"], NOW)
        assert not store.contains("https://example.com/kept-out")
        assert len(store) == 2


def test_forget_older_than_keeps_what_was_seen_again(tmp_path: Path) -> None:
    week_ago = NOW - timedelta(days=7)
    with SeenStore(tmp_path / "seen.db") as store:
        store.add_many([f"https://example.com/{i}" for i in range(5)], week_ago)
        store.add("https://example.com/fresh", NOW)
        store.add("https://example.com/0", NOW)  # still listed by its feed today
        assert store.forget_older_than(NOW - timedelta(days=1)) == 4
        assert len(store) == 2
        assert store.contains("https://example.com/0")
        assert store.add("https://example.com/1", NOW), "forgotten, so new again"
        # An older sighting arriving late never moves the time back.
        store.add("https://example.com/fresh", week_ago)
        assert store.forget_older_than(NOW - timedelta(days=1)) == 0


def test_naive_times_are_refused(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.db") as store, pytest.raises(ValueError, match="aware"):
        store.add("https://example.com/", datetime(2024, 5, 1))


def test_threads_share_one_store(tmp_path: Path) -> None:
    results: list[bool] = []
    with SeenStore(tmp_path / "seen.db") as store:

        def work() -> None:
            results.extend(store.add(f"https://example.com/{i}") for i in range(200))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results.count(True) == 200
        assert len(store) == 200


def test_entries_survive_a_killed_process(tmp_path: Path) -> None:
    """Adds, then dies without close (os._exit skips every cleanup): a crash."""
    path = tmp_path / "seen.db"
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from ingest.seen import SeenStore
        store = SeenStore(Path({str(path)!r}))
        store.add("https://example.com/single")
        store.add_many([f"https://example.com/{{i}}" for i in range(100)])
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
    with SeenStore(path) as store:
        assert store.contains("https://example.com/single")
        assert all(store.contains(f"https://example.com/{i}") for i in range(100))
        assert len(store) == 101


_hosts = st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}\.(com|org|co\.uk)", fullmatch=True)
_paths = st.lists(st.text("abcXYZ-_.~%20é", min_size=0, max_size=6), max_size=3)
_queries = st.dictionaries(
    st.sampled_from(["id", "page", "utm_source", "ref", "q", "Q"]), st.text("ab1 &=", max_size=4)
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP"]))
    host = draw(_hosts)
    if draw(st.booleans()):
        host = host.upper()
    path = "/".join(draw(_paths))
    query = "&".join(f"{k}={v}" for k, v in draw(_queries).items())
    fragment = draw(st.sampled_from(["", "#top", "#c-1"]))
    return f"{scheme}://{host}/{path}" + (f"?{query}" if query else "") + fragment


@settings(max_examples=60, deadline=None)
@given(st.lists(urls(), max_size=12))
def test_add_is_true_once_per_canonical_url(found: list[str]) -> None:
    # A fresh store per example: hypothesis runs the body many times in one test.
    with tempfile.TemporaryDirectory() as folder, SeenStore(Path(folder) / "s.db") as store:
        firsts = [store.add(url, NOW) for url in found]
        for url in found:
            assert store.contains(url)
            assert store.contains(canonicalize(url))
        distinct = {canonicalize(url) for url in found}
        assert sum(firsts) == len(distinct) == len(store)


def test_failures_are_remembered_until_the_url_succeeds(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.db") as store:
        store.add_failed("https://example.com/gone?utm_source=rss", "http-404: Not Found", NOW)
    with SeenStore(tmp_path / "seen.db") as store:  # a rerun
        found = store.failed_before("HTTPS://example.com/gone")
        assert found is not None and (found.at, found.reason) == (NOW, "http-404: Not Found")
        assert store.failed_before("https://example.com/other") is None
        assert "https://example.com/gone" not in store  # failed is not seen
        store.add_many(["https://example.com/gone"], NOW)  # it worked, later
        assert store.failed_before("https://example.com/gone") is None
        assert store.failed_count() == 0


def test_a_line_that_is_no_url_is_remembered_by_its_text(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.db") as store:
        store.add_failed("http://[::1", "bad-url: not a URL", NOW)
        assert store.failed_before(" http://[::1 ") is not None
        assert store.failed_before("http://[::2") is None
        assert store.forget_failed("http://[::1")
        assert store.failed_before("http://[::1") is None


def test_forget_older_than_bounds_the_failures_too(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.db") as store:
        store.add_failed("https://example.com/old", "http-404", NOW - timedelta(days=40))
        store.add_failed("https://example.com/new", "http-410", NOW)
        store.forget_older_than(NOW - timedelta(days=30))
        assert store.failed_before("https://example.com/old") is None
        assert store.failed_before("https://example.com/new") is not None
        assert store.failed_count() == 1
