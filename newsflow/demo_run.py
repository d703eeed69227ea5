"""`newsflow demo`: the whole pipeline on the built-in sample sites.

Starts the local stack and a pipeline worker, serves the three sample news sites on
127.0.0.1, fetches their pages onto Kafka, waits until every article is searchable, then
shows searches with highlighted snippets, entity facets and syndicated copies collapsed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from deploy.stack import Stack
from ingest.canon import canonicalize
from newsflow import search, watches
from newsflow.demo.sites import EXPECTED, DemoServer, article_urls, brief_urls, listings, url
from newsflow.errors import SetupError
from newsflow.records import Watch, article_id, utcnow
from newsflow.settings import Settings, StackSettings, as_env

log = logging.getLogger(__name__)

# A standing query the demo adds before its pages arrive, and whose alerts it shows.
WATCH = ("demo-dock-strikes", "(strike | walkout) (port | dock*)")
QUERIES = ("dockworkers strike", '"interest rates" -mortgage', "seagrass carbon")
# Fixed ports, so the sites' URLs (and so the article ids) are the same on every run: a
# second demo overwrites the first one's documents instead of adding copies.
PORTS = {"courier": 18101, "ledger": 18102, "meridian": 18103}
NON_ARTICLES = ("home", "section")


def run(settings: Settings, stack_settings: StackSettings, timeout: float = 600) -> None:
    # The demo runs on the local stack, wherever NEWSFLOW_STACK_* puts it, and secured
    # with NEWSFLOW_STACK_SECURE=1: the stack's client settings (addresses, and users,
    # keys and CA for a secured one) replace the connection settings given.
    _step(1, "starting Kafka and Elasticsearch (the first run downloads them)")
    stack = Stack(stack_settings)
    for row in stack.up():
        click.echo(f"    {row.name} {row.version} at {row.address}: {row.state}")
    client = stack.client_settings()
    settings = settings.model_copy(
        update={name: getattr(client, name) for name in client.model_fields_set}
    )
    from newsflow.cli import fetch_taggers
    from processors.app import prepare

    fetch_taggers(settings)
    prepare(settings)
    _step(2, "adding a standing query and starting a pipeline worker")
    watch = _add_watch(settings)
    click.echo(f"    newsflow watch add {watch.name} '{watch.query}'")
    log_file = stack_settings.dir / "demo-worker.log"
    worker = _start_worker(settings, log_file)
    try:
        with _serve() as server:
            articles, others = _demo_urls(server)
            articles += brief_urls(server)
            _step(3, "polling the 3 sample sites' feeds and fetching their pages onto Kafka")
            state = stack_settings.demo_state_dir
            click.echo(f"    {_fetch_and_produce(settings, server, others, state)}")
        expected_ids = {article_id(canonicalize(u)) for u in articles}
        _step(4, f"waiting until all {len(expected_ids)} articles are searchable")
        _wait_indexed(settings, expected_ids, worker, log_file, timeout)
        _wait_recleaned(settings, worker, log_file, timeout)
        _step(5, "what newsflow made of them")
        _report(settings)
        _show_alerts(settings, watch)
    finally:
        _stop_worker(worker)
    click.echo(
        '\nNext: `newsflow search "port strike"`; `newsflow deadletter list`; the stack '
        "keeps running (`newsflow stack down` stops it); the worker log is in "
        f"{log_file}; the feeds' health: "
        f"`NEWSFLOW_STATE_DIR={stack_settings.demo_state_dir} newsflow ingest status`."
    )


def _step(n: int, text: str) -> None:
    click.secho(f"{n}/5 {text}...", bold=True)


def _serve() -> DemoServer:
    try:
        return DemoServer(PORTS)
    except OSError as err:
        raise SetupError(
            f"cannot serve the demo sites on ports {sorted(PORTS.values())}: {err}",
            "stop what uses them (a demo still running?)",
        ) from err


def _demo_urls(server: DemoServer) -> tuple[list[str], list[str]]:
    """(article pages, pages no feed lists): the text/plain flattenings, to be indexed
    as copies of their articles, and the home and section pages, to be filtered."""
    articles = article_urls(server, plain_text=True)
    plain = sorted(set(articles) - set(article_urls(server)))
    others = [url(server, p.site, p.path) for p in EXPECTED.pages if p.kind in NON_ARTICLES]
    return articles, plain + others


def _start_worker(settings: Settings, log_file: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **as_env(settings)}
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as out:  # this run's log only: the one its messages point at
        return subprocess.Popen(
            [sys.executable, "-m", "newsflow.cli", "worker", "--loglevel", "warn"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _fetch_and_produce(
    settings: Settings, server: DemoServer, others: list[str], state: Path
) -> str:
    """Ingest the sites as newsflow does in production: their feeds and news sitemap
    polled once, new articles fetched politely (the courier's robots.txt asks for 2 s
    between requests), plus the pages no feed lists. The ingest state (feed health, seen
    URLs) is the demo's own, in ``state``, emptied at each run so a second demo sends
    everything again (the pipeline's ids make that harmless); it stays afterwards for
    `newsflow ingest status` to show."""
    from ingest.monitor import fetch_urls, run_monitor
    from ingest.sources import SourcesFile, SourceSpec

    specs = [SourceSpec(name=key, **found) for key, found in listings(server).items()]
    shutil.rmtree(state, ignore_errors=True)
    ingest_settings = settings.model_copy(update={"state_dir": state})
    fed = asyncio.run(
        run_monitor(
            ingest_settings,
            SourcesFile(sources=specs),
            once=True,
            allow_private=True,
            # The courier's crawl delay makes this the demo's longest step: one line as
            # each feed or sitemap is done says it is moving.
            progress=lambda line: click.echo(f"    {line}"),
        )
    )
    rest = asyncio.run(fetch_urls(ingest_settings, others, ref="demo pages", allow_private=True))
    return f"feeds: {fed.summary()}; other pages: {rest.summary()}"


def _wait_indexed(
    settings: Settings,
    ids: set[str],
    worker: subprocess.Popen[bytes],
    log_file: Path,
    timeout: float,
) -> None:
    from newsflow import connections
    from processors.index import alias

    deadline = time.monotonic() + timeout
    with connections.elasticsearch(settings) as es:
        found, shown = 0, -1
        while found < len(ids):
            if worker.poll() is not None:
                raise click.ClickException(f"the worker stopped; see {log_file}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"only {found} of {len(ids)} indexed; see {log_file}")
            time.sleep(2)
            found = _count_ids(es, alias(settings.topic_prefix), ids)
            if found != shown:
                click.echo(f"    {found}/{len(ids)} indexed")
                shown = found


def _wait_recleaned(
    settings: Settings, worker: subprocess.Popen[bytes], log_file: Path, timeout: float
) -> None:
    """Until the worker has done every re-cleaning the pages asked for: a site's first
    articles are cleaned again once its template is known, after they were indexed."""
    from newsflow.topics import recleans_left

    deadline = time.monotonic() + timeout
    shown = None
    while (left := recleans_left(settings)) > 0:
        if left != shown:
            click.echo(f"    {left} re-cleaning(s) of early articles to go")
            shown = left
        if worker.poll() is not None:
            raise click.ClickException(f"the worker stopped; see {log_file}")
        if time.monotonic() > deadline:
            raise click.ClickException(f"{left} re-cleaning(s) not done; see {log_file}")
        time.sleep(1)


def _count_ids(es: Any, index: str, ids: set[str]) -> int:
    if not es.indices.exists_alias(name=index):
        return 0
    es.indices.refresh(index=index)
    return int(es.count(index=index, query={"ids": {"values": sorted(ids)}})["count"])


REMOVED = ("titles", "repeats", "short", "near", "boilerplate", "teasers")


def _add_watch(settings: Settings) -> Watch:
    """The demo's watch, added anew at each run (so each run alerts anew)."""
    watch = Watch(name=WATCH[0], query=WATCH[1], created_at=utcnow())
    watches.put(settings, watch, watch.name)
    return watch


def _show_alerts(settings: Settings, watch: Watch) -> None:
    """This run's alerts of the demo watch: one per story, though the story ran on every
    site. The alerts come within a second of indexing; 5 s without one ends the wait."""
    mine = [
        a
        for a in watches.tail(settings, from_beginning=True, watch=watch.name, idle=5)
        if a.watch_created_at == watch.created_at
    ]
    alerts = watches.live(mine)
    withdrawn = sum(a.withdrawn for a in mine)
    click.echo(
        f"\nwatch {watch.name} ('{watch.query}'): {len(alerts)} alert(s), one per story "
        "(`newsflow watch tail` shows them as they come)"
        + (
            f"; {withdrawn} more withdrawn, their matching words found later to be "
            "teasers of other stories or boilerplate"
            if withdrawn
            else ""
        )
        + ":"
    )
    for a in alerts:
        click.echo(f"  * {a.title}  [{a.site}]\n    {a.url}\n    {a.snippet}")


def _report(settings: Settings) -> None:
    from newsflow import connections
    from processors.index import alias

    index = alias(settings.topic_prefix)
    with connections.elasticsearch(settings) as es:
        markers = search.markers_for(sys.stdout)
        for q in QUERIES:
            click.echo(search.render(search.run(es, index, search.Request(q), markers)))
            click.echo()
        stats = es.search(
            index=index,
            size=0,
            aggs={
                "boilerplate": {"sum": {"field": "removed.boilerplate"}},
                "titles": {"sum": {"field": "removed.title_repeats"}},
                "repeats": {"sum": {"field": "removed.in_page_repeats"}},
                "short": {"sum": {"field": "removed.short_repeats"}},
                "near": {"sum": {"field": "removed.near_repeats"}},
                "teasers": {"sum": {"field": "removed.teasers"}},
                "retroactive": {"sum": {"field": "removed.retroactive"}},
                "recleaned": {"filter": {"range": {"removed.retroactive": {"gt": 0}}}},
                "kinds": {"terms": {"field": "duplicate_kind"}},
                "skipped": {"terms": {"field": "ner_skipped", "size": 1000}},
            },
        )["aggregations"]
    kinds = {b["key"]: b["doc_count"] for b in stats["kinds"]["buckets"]}
    total = {name: int(stats[name]["value"]) for name in (*REMOVED, "retroactive")}
    click.echo(
        f"dedup within pages: {total['titles']} titles printed again as the first "
        f"paragraph, {total['repeats']} exact, {total['short']} short and {total['near']} "
        "near repeats removed\n"
        f"dedup across a site: {total['boilerplate']} boilerplate paragraphs and "
        f"{total['teasers']} teasers of other articles removed; "
        f"{total['retroactive']} more from {stats['recleaned']['doc_count']} early articles, "
        "re-cleaned once their site's template was known\n"
        f"stories: {kinds.get('near', 0)} near and {kinds.get('exact', 0)} exact duplicates "
        "clustered into their stories"
    )
    reasons: dict[str, int] = {}
    for b in stats["skipped"]["buckets"]:
        reason = (
            "exact duplicate (the original has them)" if b["key"].startswith("exact") else b["key"]
        )
        reasons[reason] = reasons.get(reason, 0) + b["doc_count"]
    for reason, n in reasons.items():
        click.echo(f"entities not tagged for {n} article(s): {reason}")
