"""`newsflow ingest urls | warc | feeds | status`, each the real command in its own
process: exit codes (0 all well, 1 some input failed, 2 set-up), one line per failure
saying where it came from, failures remembered across reruns, Kafka down said in seconds,
never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.seen import SeenStore
from newsflow.cli import cli
from newsflow.records import RawPage, decode
from newsflow.settings import Settings, as_env
from newsflow.topics import Topics
from tests import webrig
from tests.conftest import ROOT, read_topic, shared_data_path

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<link>{base}/</link><description>d</description>{items}</channel></rss>"""
ITEM = "<item><title>{path}</title><link>{base}{path}</link></item>"
PAGE = b"<html><body><p>" + b"A story worth reading. " * 30 + b"</p></body></html>"


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    argv = [str(ROOT / ".venv" / "bin" / "newsflow"), *args]
    if not Path(argv[0]).exists():
        argv = [sys.executable, "-m", "newsflow.cli", *args]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    for placeholder in ("@-1", "[-1]", "(None)"):
        assert placeholder not in done.stderr + done.stdout, done.stderr
    return done


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    return {**env, **as_env(settings), **extra}


def letters(settings: Settings) -> list[dict[str, str]]:
    topic = Topics.from_settings(settings).deadletter("ingest")
    return [{k: v.decode() for k, v in m.headers} for m in read_topic(settings, topic)]


def pages(settings: Settings) -> list[RawPage]:
    return [
        decode(RawPage, m.value) for m in read_topic(settings, Topics.from_settings(settings).pages)
    ]


@pytest.fixture
def web() -> Iterator[webrig.Web]:
    rig = webrig.Web()
    yield rig
    rig.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- urls ---------------------------------------------------------------------------------


@pytest.mark.stack
def test_a_url_list_skips_bad_lines_remembers_failures_and_retries_on_request(
    pipeline_settings: Settings, web: webrig.Web, tmp_path: Path
) -> None:
    s = pipeline_settings
    base = f"http://127.0.0.1:{web.port}"
    good, gone, busy = f"{base}/news/1", f"{base}/gone", f"{base}/busy"
    web.add(good, webrig.document(PAGE, "text/html"))
    web.add(gone, webrig.status(404))
    web.add(busy, webrig.status(503, {"Retry-After": "86400"}))  # beyond what we wait
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# news\nhttp://[::1\n{good}\nftp://files.example/x\n{gone}\n{busy}\n")
    env = env_of(s)

    first = run(env, "ingest", "urls", "--allow-private", str(listing))
    assert first.returncode == 1, first.stderr
    assert "urls.txt:2: skipped 'http://[::1': not a URL (Invalid IPv6 URL) (bad-url)" in (
        first.stderr
    )
    assert first.stderr.count("urls.txt:2:") == 1  # logged once
    assert "urls.txt:4: skipped 'ftp://files.example/x': not an http(s) URL" in first.stderr
    assert f"urls.txt:5: skipped {gone}: " in first.stderr
    assert [p.url for p in pages(s)] == [good]  # the rest of the file was fetched
    sources = sorted(d["newsflow-dlq-input"] for d in letters(s))
    assert sources == ["urls.txt:2", "urls.txt:4", "urls.txt:5", "urls.txt:6"]

    # A rerun: the permanent failures are not tried nor dead-lettered again; the 503 is.
    before = len(web.hits)
    second = run(env, "ingest", "urls", "--allow-private", str(listing))
    assert second.returncode == 1, second.stderr  # the 503 failed again
    assert "3 failed before, not tried again (--retry-failed" in second.stdout
    asked = [h.path for h in web.hits[before:] if h.path != "/robots.txt"]
    assert asked == ["/busy"]
    assert len(letters(s)) == 5
    assert "urls.txt:2" not in second.stderr

    # Without the 503, a rerun is all well: what failed before is said, not failed again.
    listing.write_text(f"http://[::1\n{good}\n{gone}\n")
    third = run(env, "ingest", "urls", "--allow-private", str(listing))
    assert third.returncode == 0, third.stderr
    assert "1 already seen" in third.stdout and "2 failed before" in third.stdout

    # On purpose: --retry-failed tries them; the page that is back is forgotten as failed.
    web.add(gone, webrig.document(PAGE.replace(b"story", b"tale"), "text/html"))
    fourth = run(env, "ingest", "urls", "--allow-private", "--retry-failed", str(listing))
    assert fourth.returncode == 1, fourth.stderr  # the bad line is still bad
    assert "urls.txt:1: skipped 'http://[::1'" in fourth.stderr
    assert sorted(p.url for p in pages(s)) == sorted([good, gone])
    with SeenStore(s.state_dir / "seen.sqlite") as seen:
        assert seen.failed_before(gone) is None
        assert seen.failed_before("http://[::1") is not None
        assert seen.failed_before(busy) is None  # a 503 may pass: never remembered


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "urls.bin is not a text file"),
        (b"https://a.example/\nh\xe9\n", "urls.bin:2: not UTF-8 text (byte 0xe9)"),
    ],
    ids=["binary", "latin-1"],
)
def test_a_list_that_is_no_text_is_exit_2_before_kafka(
    tmp_path: Path, data: bytes, said: str
) -> None:
    listing = tmp_path / "urls.bin"
    listing.write_bytes(data)
    env = env_of(Settings(kafka_bootstrap=f"127.0.0.1:{closed_port()}", state_dir=tmp_path))
    done = run(env, "ingest", "urls", str(listing))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {said}")
    assert len(done.stderr.strip().splitlines()) == 1


# Kafka down, for these commands and the watcher: tests/test_cli_matrix.py.


# -- warc ---------------------------------------------------------------------------------


@pytest.mark.stack
def test_warc_exit_codes_and_one_line_per_damaged_file(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    env = env_of(s)
    real = shared_data_path("warc", "ukwa-webarchive-test-suite", "IAH-urls-wget.warc.gz")
    whole = run(env, "ingest", "warc", str(real))
    assert whole.returncode == 0, whole.stderr  # its images are routine skips
    assert "12 pages" in whole.stdout and "4 not-html" in whole.stdout

    bad = tmp_path / "bad.warc"
    bad.write_bytes(b"<html>this is a web page, not a WARC file</html>\r\n" * 10)
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(shared_data_path("warc", "resiliparse", "warcfile.warc.gz").read_bytes()[:5000])
    broken = run(env, "ingest", "warc", str(bad), str(empty), str(cut))
    assert broken.returncode == 1, broken.stderr
    said = (
        "bad.warc: not a WARC file or damaged at offset 0: Invalid WARC header; "
        "nothing after it could be read"
    )
    assert broken.stderr.count(said) == 1, broken.stderr
    assert broken.stderr.count("cut.warc.gz: damaged at offset 940, in the record of") == 1
    assert "empty.warc.gz: skipped: the file is empty (empty)" in broken.stderr
    assert "cannot read on" not in broken.stderr
    inputs = sorted(d["newsflow-dlq-input"] for d in letters(s))
    assert inputs == ["bad.warc", "cut.warc.gz", "empty.warc.gz"]


# -- feeds --------------------------------------------------------------------------------


@pytest.mark.stack
def test_feeds_once_says_what_is_not_due_and_now_polls_it(
    pipeline_settings: Settings, web: webrig.Web, tmp_path: Path
) -> None:
    s = pipeline_settings
    base = f"http://127.0.0.1:{web.port}"
    items = "".join(ITEM.format(base=base, path=p) for p in ("/a", "/gone"))
    web.add(f"{base}/a", webrig.document(PAGE, "text/html"))
    # No validators: every poll gets the whole feed, and so sees its articles again.
    feed = RSS.format(base=base, items=items).encode()
    web.add(f"{base}/feed.xml", webrig.status(200, {"Content-Type": "application/rss+xml"}, feed))
    broken = f"{base}/broken.xml"  # answers 404: not a feed
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources: [{{name: x, feeds: ['{base}/feed.xml', '{broken}']}}]\n")
    env = env_of(s, NEWSFLOW_SOURCES=str(sources))  # --sources from the settings

    first = run(env, "ingest", "feeds", "--once", "--allow-private")
    assert first.returncode == 1, first.stderr
    # Progress: both articles are new to the feed; one of them is gone.
    assert f"{base}/feed.xml: 2 new, 1 page sent, 1 failed" in first.stderr
    assert f"{broken}: poll failed (http-404)" in first.stderr
    assert f"{base}/feed.xml: skipped {base}/gone: " in first.stderr
    assert [p.url for p in pages(s)] == [f"{base}/a"]

    second = run(env, "ingest", "feeds", "--once", "--allow-private")
    assert second.returncode == 0, second.stderr  # nothing was due: nothing failed
    assert f"not due: {broken}: next poll at " in second.stdout
    assert "1 failure, last: http-404" in second.stdout
    assert "--now polls every feed and sitemap now" in second.stdout

    before = len(web.hits)
    third = run(env, "ingest", "feeds", "--once", "--now", "--allow-private")
    assert third.returncode == 1, third.stderr  # the broken feed failed again
    assert "not due" not in third.stdout
    assert {h.path for h in web.hits[before:]} >= {"/feed.xml", "/broken.xml"}
    assert "/gone" not in {h.path for h in web.hits[before:]}  # failed before
    assert "1 already seen" in third.stdout and "1 failed before" in third.stdout
    assert len([d for d in letters(s) if d["newsflow-dlq-url"] == f"{base}/gone"]) == 1

    status = run(env, "ingest", "status")
    assert status.returncode == 0
    assert "1 URL(s) failed for good" in status.stdout
    assert " UTC (" in status.stdout and "+00:00" not in status.stdout


def test_feeds_without_a_sources_file_is_exit_2(tmp_path: Path) -> None:
    env = env_of(Settings(state_dir=tmp_path))
    none = run(env, "ingest", "feeds", "--once")
    assert none.returncode == 2
    assert "no sources file" in none.stderr and "NEWSFLOW_SOURCES" in none.stderr
    env["NEWSFLOW_SOURCES"] = str(tmp_path / "missing.yaml")
    missing = run(env, "ingest", "feeds", "--once")
    assert missing.returncode == 2
    assert f"no sources file at {tmp_path / 'missing.yaml'} (NEWSFLOW_SOURCES)" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [\n  {name: x, feeds: [ftp://x/]}\n")
    said = run(env, "ingest", "feeds", "--once", "--sources", str(bad))
    assert said.returncode == 2 and len(said.stderr.strip().splitlines()) == 1, said.stderr


# -- status -------------------------------------------------------------------------------


def test_status_points_at_the_demos_state(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    (stack / "demo-ingest").mkdir(parents=True)
    (stack / "demo-ingest" / "feeds.json").write_text(
        '{"https://x.example/feed.xml": {"url": "https://x.example/feed.xml",'
        ' "last_success": "2026-12-01T18:31:05.123456+00:00"}}'
    )
    state = tmp_path / "state"
    env = {"NEWSFLOW_STATE_DIR": str(state), "NEWSFLOW_STACK_DIR": str(stack)}
    empty = CliRunner().invoke(cli, ["ingest", "status"], env=env)
    assert empty.exit_code == 0, empty.output
    assert f"no feed health in {state / 'feeds.json'}" in empty.output
    demo = stack / "demo-ingest"
    assert f"NEWSFLOW_STATE_DIR={demo} newsflow ingest status" in empty.output

    env["NEWSFLOW_STATE_DIR"] = str(demo)
    shown = CliRunner().invoke(cli, ["ingest", "status"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "last success 2026-12-01 18:31:05 UTC (" in shown.output
    assert ".123456" not in shown.output and "demo's" not in shown.output
