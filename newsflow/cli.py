"""The ``newsflow`` command: the local stack, topics, settings and the demo.

Every option falls back to its NEWSFLOW_* environment variable (``--help`` names it);
``newsflow settings`` lists them all.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from newsflow import logs
from newsflow.errors import EXIT_CODES_HELP
from newsflow.settings import Settings, StackSettings, describe
from newsflow.topics import TopicMismatch

if TYPE_CHECKING:
    from newsflow.audit import AuditReport


class Context:
    def __init__(
        self, settings: Settings, stack_settings: StackSettings, verbosity: int = 0
    ) -> None:
        self.settings = settings
        self.stack_settings = stack_settings
        self.verbosity = verbosity


pass_ctx = click.make_pass_decorator(Context)


class NewsflowGroup(click.Group):
    """The root command: every failure below it ends as one line and an exit code (see
    newsflow.errors), never a traceback, unless -vv asks for the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as err:
            _report(ctx, err)


def _report(ctx: click.Context, err: Exception) -> None:
    from deploy.stack.errors import StackError
    from newsflow import errors
    from newsflow.services import reachable

    verbosity = ctx.obj.verbosity if isinstance(ctx.obj, Context) else 0
    if isinstance(ctx.obj, Context):  # a client's connection failure, said as Unreachable
        try:
            with reachable(ctx.obj.settings):
                raise err
        except errors.Unreachable as said:
            err = said
        except Exception:  # noqa: S110 - not a connection failure: reported below
            pass
    if verbosity >= 2:
        raise err
    if isinstance(err, errors.SetupError | StackError | TopicMismatch):
        click.secho(f"error: {err}", fg="red", err=True)
        sys.exit(errors.SETUP)
    click.secho(
        f"error: newsflow failed unexpectedly: {type(err).__name__}: {err}\n"
        "  -> this is a bug; run the command again with -vv to see where, and report it",
        fg="red",
        err=True,
    )
    sys.exit(errors.BUG)


@click.group(
    cls=NewsflowGroup,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    epilog=EXIT_CODES_HELP,
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for libraries too).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option(
    "--kafka",
    envvar="NEWSFLOW_KAFKA_BOOTSTRAP",
    show_envvar=True,
    default=None,
    help="Kafka bootstrap servers [default: 127.0.0.1:9092]",
)
@click.option(
    "--elasticsearch",
    envvar="NEWSFLOW_ELASTICSEARCH_URL",
    show_envvar=True,
    default=None,
    help="Elasticsearch URL [default: http://127.0.0.1:9200]",
)
@click.version_option(package_name="newsflow")
@click.pass_context
def cli(
    ctx: click.Context, verbose: int, quiet: bool, kafka: str | None, elasticsearch: str | None
) -> None:
    """newsflow: news pages on Kafka, cleaned, deduplicated and entity-tagged by Faust
    agents, searchable in Elasticsearch.

    \b
    Start here:
      newsflow demo          run the whole pipeline on the built-in sample sites
      newsflow stack up      start Kafka and Elasticsearch locally (no Docker)
      newsflow settings      every NEWSFLOW_* variable and its current value
    """
    logs.configure(-1 if quiet else verbose)
    overrides: dict[str, Any] = {"kafka_bootstrap": kafka, "elasticsearch_url": elasticsearch}
    settings = Settings(**{k: v for k, v in overrides.items() if v})
    ctx.obj = Context(settings, StackSettings(), -1 if quiet else verbose)


@cli.command("settings")
@pass_ctx
def show_settings(ctx: Context) -> None:
    """Print every environment variable newsflow reads, with its current value."""
    for group in (ctx.settings, ctx.stack_settings):
        for env, value, doc in describe(group):
            click.echo(f"{env}={value}")
            click.secho(f"    {doc}", dim=True)


# -- stack -------------------------------------------------------------------------------


@cli.group()
def stack() -> None:
    """The local Kafka (KRaft) and Elasticsearch, from Maven Central, without Docker.

    State (data, logs, configs) lives in NEWSFLOW_STACK_DIR (default ./.stack). The first
    `up` downloads the pinned artifacts through Maven; later ones reuse them.
    """


def _print_status(rows: list[Any]) -> None:
    for row in rows:
        colour = "green" if row.healthy else ("yellow" if row.pid else "red")
        pid = f"pid {row.pid}" if row.pid else "-"
        click.echo(
            f"{row.name:<14} {row.version:<8} {row.address:<24} {pid:<11} "
            + click.style(row.state, fg=colour)
        )


@stack.command("up")
@pass_ctx
def stack_up(ctx: Context) -> None:
    """Start Kafka and Elasticsearch (reusing running ones) and wait until both are healthy."""
    from deploy.stack import Stack

    _print_status(Stack(ctx.stack_settings).up())


@stack.command("down")
@pass_ctx
def stack_down(ctx: Context) -> None:
    """Stop both services cleanly (SIGTERM, then SIGKILL after a grace period)."""
    from deploy.stack import Stack

    stopped = Stack(ctx.stack_settings).down()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack.command("status")
@pass_ctx
def stack_status(ctx: Context) -> None:
    """Show each service's version, address, pid and health. Exit 1 unless all healthy."""
    from deploy.stack import Stack

    rows = Stack(ctx.stack_settings).status()
    _print_status(rows)
    sys.exit(0 if all(r.healthy for r in rows) else 1)


@stack.command("logs")
@click.argument("service", type=click.Choice(["kafka", "elasticsearch"]))
@click.option("-n", "--lines", default=40, help="How many lines from the end.")
@pass_ctx
def stack_logs(ctx: Context, service: str, lines: int) -> None:
    """Print the end of a service's log."""
    from deploy.stack import Stack

    click.echo(Stack(ctx.stack_settings).logs(service, lines))


# -- topics ------------------------------------------------------------------------------


@cli.group()
def topics() -> None:
    """The pipeline's Kafka topics (NEWSFLOW_TOPIC_PREFIX, NEWSFLOW_TOPIC_PARTITIONS)."""


@topics.command("create")
@pass_ctx
def topics_create(ctx: Context) -> None:
    """Create the pipeline's topics that do not exist yet."""
    from newsflow.topics import Topics, ensure_topics

    specs = Topics.from_settings(ctx.settings).specs()
    created = ensure_topics(ctx.settings.kafka_bootstrap, specs, ctx.settings.topic_replication)
    click.echo(f"created {len(created)} of {len(specs)} topics")


@topics.command("list")
@pass_ctx
def topics_list(ctx: Context) -> None:
    """List the pipeline's topics and what each carries."""
    from newsflow.topics import Topics

    specs = Topics.from_settings(ctx.settings).specs()
    width = max(len(spec.name) for spec in specs)
    for spec in specs:
        click.echo(f"{spec.name:<{width}} {spec.partitions:>3}  {spec.description}")


@cli.command()
@click.option(
    "--loglevel", default="info", type=click.Choice(["crit", "error", "warn", "info", "debug"])
)
@pass_ctx
def worker(ctx: Context, loglevel: str) -> None:
    """Run the pipeline's Faust agents (clean, stories, enrich, index) until Ctrl-C.

    Creates the topics and the Elasticsearch index template first if they are missing.
    Reads NEWSFLOW_KAFKA_BOOTSTRAP, NEWSFLOW_ELASTICSEARCH_URL, NEWSFLOW_TOPIC_* and
    NEWSFLOW_STATE_DIR (the RocksDB tables; rebuilt from Kafka when lost).
    """
    from processors.app import prepare, run_worker

    prepare(ctx.settings)
    run_worker(ctx.settings, loglevel)


@cli.command()
@pass_ctx
def demo(ctx: Context) -> None:
    """Run newsflow end to end on built-in data: starts the local stack if needed."""
    from newsflow import demo_run

    demo_run.run(ctx.settings, ctx.stack_settings)


@cli.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("-n", "--size", default=5, help="Stories to show.")
@click.option("--no-collapse", is_flag=True, help="Show every copy, not one per story.")
@pass_ctx
def search_cmd(ctx: Context, query: tuple[str, ...], size: int, no_collapse: bool) -> None:
    """Search the indexed articles: highlighted snippets, entity facets, one hit per story."""
    from elasticsearch import Elasticsearch

    from newsflow import search
    from processors.index import alias

    text = " ".join(query)
    with Elasticsearch(ctx.settings.elasticsearch_url) as es:
        markers = search.BOLD if sys.stdout.isatty() else search.PLAIN
        body = search.query_body(text, size=size, collapse=not no_collapse, markers=markers)
        resp = es.search(index=alias(ctx.settings.topic_prefix), **body)
    click.echo(search.render(search.parse(resp), text))


# -- ingest ------------------------------------------------------------------------------


@cli.group()
def ingest() -> None:
    """Put pages on the pipeline's pages topic: feeds and sitemaps, WARC files."""


@ingest.command("warc")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--resend", is_flag=True, help="Send pages again even if the seen-URL store has them."
)
@pass_ctx
def ingest_warc_cmd(ctx: Context, files: tuple[str, ...], resend: bool) -> None:
    """Every HTML page of WARC / WARC.gz FILES (Common Crawl CC-NEWS, say) onto Kafka.

    Pages already sent (NEWSFLOW_STATE_DIR/seen.sqlite) are skipped unless --resend;
    records that cannot be read go to the ingest dead-letter topic with their reason.
    """
    from pathlib import Path

    from ingest.jobs import PageSink, ingest_warc
    from ingest.seen import SeenStore
    from newsflow.topics import Topics, ensure_topics

    paths = [Path(f) for f in files]
    ensure_topics(
        ctx.settings.kafka_bootstrap,
        Topics.from_settings(ctx.settings).specs(),
        ctx.settings.topic_replication,
    )
    ctx.settings.state_dir.mkdir(parents=True, exist_ok=True)
    with SeenStore(ctx.settings.state_dir / "seen.sqlite") as seen:
        sink = PageSink(ctx.settings, None if resend else seen)
        total = sum(p.stat().st_size for p in paths)
        try:
            with click.progressbar(length=total, label="reading WARC", file=sys.stderr) as bar:
                stats = ingest_warc(paths, sink, bar.update)
        finally:
            sink.close()
            if resend:
                seen.add_many(sink.producer.delivered())
    click.echo(stats.summary())


@ingest.command("feeds")
@click.option(
    "--sources",
    "sources_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    envvar="NEWSFLOW_SOURCES",
    show_envvar=True,
    help="YAML file of feeds and sitemaps.",
)
@click.option("--once", is_flag=True, help="Poll everything due once, then stop.")
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow fetching from loopback and private addresses (local test sites).",
)
@pass_ctx
def ingest_feeds_cmd(ctx: Context, sources_file: str, once: bool, allow_private: bool) -> None:
    """Watch the feeds and sitemaps of a sources file continuously; Ctrl-C stops cleanly.

    Each feed is polled on its own adaptive schedule (conditional GET, its observed rate,
    ttl / sy:updatePeriod / Cache-Control, backoff on errors); new articles are fetched
    politely (robots.txt, crawl-delay, per-host spacing) and put on the pages topic.
    Feed health (NEWSFLOW_STATE_DIR/feeds.json) and seen URLs survive restarts.
    """
    import asyncio
    from pathlib import Path

    from ingest import sources
    from ingest.monitor import run_monitor
    from newsflow.topics import Topics, ensure_topics

    try:
        declared = sources.load(Path(sources_file))
    except sources.SourcesError as err:
        raise click.ClickException(str(err)) from err
    ensure_topics(
        ctx.settings.kafka_bootstrap,
        Topics.from_settings(ctx.settings).specs(),
        ctx.settings.topic_replication,
    )
    stats = asyncio.run(run_monitor(ctx.settings, declared, once=once, allow_private=allow_private))
    click.echo(stats.summary())


@ingest.command("urls")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow fetching from loopback and private addresses (local test sites).",
)
@pass_ctx
def ingest_urls_cmd(ctx: Context, file: str, allow_private: bool) -> None:
    """Fetch every URL listed in FILE (one per line, # comments) politely, once."""
    import asyncio
    from pathlib import Path

    from ingest.monitor import fetch_urls
    from newsflow.topics import Topics, ensure_topics

    lines = Path(file).read_text(encoding="utf-8").splitlines()
    urls = [u.strip() for u in lines if u.strip() and not u.lstrip().startswith("#")]
    ensure_topics(
        ctx.settings.kafka_bootstrap,
        Topics.from_settings(ctx.settings).specs(),
        ctx.settings.topic_replication,
    )
    with click.progressbar(length=len(urls), label="fetching", file=sys.stderr) as bar:
        stats = asyncio.run(
            fetch_urls(
                ctx.settings, urls, ref=file, allow_private=allow_private, progress=bar.update
            )
        )
    click.echo(stats.summary())


@ingest.command("status")
@pass_ctx
def ingest_status_cmd(ctx: Context) -> None:
    """Per-feed health: last success, new items, failures, next poll."""
    from ingest.monitor import HealthStore

    store = HealthStore(ctx.settings.state_dir / "feeds.json")
    if not store.health:
        click.echo(f"no feed polled yet (state: {store.path})")
    for h in sorted(store.health.values(), key=lambda h: h.url):
        state = (
            f"{h.consecutive_failures} failure(s): {h.last_error}"
            if h.consecutive_failures
            else "ok"
        )
        click.echo(
            f"{h.url}\n    last success {h.last_success or '-'}; {h.items_seen_total} items; "
            f"next poll {h.next_poll_at or 'now'}; {state}"
        )
        for p in h.pending:
            click.echo(f"    pending ({p.attempts} attempt(s)): {p.url}: {p.last_error}")


# -- dead letters ------------------------------------------------------------------------


@cli.group()
def deadletter() -> None:
    """What the pipeline could not process, with the reason; replay it once fixed."""


STAGE = click.Choice(["ingest", "clean", "stories", "enrich", "index"])


@deadletter.command("list")
@click.argument("stage", type=STAGE, required=False)
@click.option("-n", "--limit", default=20, help="At most this many per stage.")
@pass_ctx
def deadletter_list(ctx: Context, stage: str | None, limit: int) -> None:
    """Show dead letters (all stages, or one): when, why, and where they came from."""
    from newsflow.deadletter import read_topic
    from newsflow.topics import STAGES, Topics

    topics = Topics.from_settings(ctx.settings)
    for name in [stage] if stage else STAGES:
        letters = read_topic(ctx.settings.kafka_bootstrap, topics.deadletter(name), limit)
        click.secho(
            f"{name}: {len(letters)} dead letter(s)"
            + (" (first ones)" if len(letters) == limit else ""),
            bold=True,
        )
        for d in letters:
            kind = "permanent" if d.permanent else "transient"
            click.echo(
                f"  {d.failed_at:%Y-%m-%d %H:%M:%S} {d.topic}[{d.partition}]@{d.offset} "
                f"{d.error_class} ({kind}): {d.error[:200]}"
            )


@deadletter.command("replay")
@click.argument("stage", type=STAGE)
@click.option("--dry-run", is_flag=True, help="Count what would be replayed; send nothing.")
@pass_ctx
def deadletter_replay(ctx: Context, stage: str, dry_run: bool) -> None:
    """Send a stage's dead letters back to the topic they came from, once the cause is
    fixed. Each letter is replayed once (progress is kept by a consumer group)."""
    from newsflow.deadletter import replay
    from newsflow.topics import Topics

    topic = Topics.from_settings(ctx.settings).deadletter(stage)
    group = f"{ctx.settings.topic_prefix}-replay-{stage}"
    n = replay(ctx.settings.kafka_bootstrap, topic, group, dry_run=dry_run)
    click.echo(f"{'would replay' if dry_run else 'replayed'} {n} dead letter(s) from {topic}")


# -- audit -------------------------------------------------------------------------------


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from newsflow.audit import parse_since
    from newsflow.records import utcnow

    try:
        return None if value is None else parse_since(value, utcnow())
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


@cli.command("audit")
@click.option(
    "--since",
    callback=_since,
    metavar="DURATION|TIME",
    help="Only pages written since then: 30m, 2h, 1d, or an ISO time (UTC unless it says).",
)
@click.option("--partition", type=click.IntRange(min=0), help="Only this partition of the pages.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (counts and lists).")
@click.option("--repair", is_flag=True, help="Send every missing page again to the pages topic.")
@click.option("--dry-run", is_flag=True, help="With --repair: only say what would be sent.")
@pass_ctx
def audit_cmd(
    ctx: Context, since: Any, partition: int | None, as_json: bool, repair: bool, dry_run: bool
) -> None:
    """Check that every page on the pages topic had exactly one outcome.

    \b
    Each page is counted as one of:
      indexed        a document in Elasticsearch (duplicates are indexed too, marked);
                     "superseded": the URL was sent again and a later copy rewrote it
      filtered       on the filtered topic: not an article, with the reason
      dead-lettered  on a stage's dead-letter topic (clean, stories, enrich, index)
      pending        not processed yet (the pipeline has not got to it): not a loss
      repaired       lost, and sent again by --repair: its copy is counted instead
      missing        processed by the pipeline, yet no outcome: LOST
      conflicting    outcomes of two kinds (indexed and dead-lettered, say)
    "repeated" counts pages whose outcome was written twice (delivery into Kafka is at
    least once): not a failure.

    --repair sends every missing page again (same key, value and headers, plus one header
    naming the lost page, so the next audit counts it as repaired and never resends it).

    \b
    Exit codes: 0 nothing missing or conflicting; 1 some page missing or conflicting;
    2 the audit could not be made (Kafka or Elasticsearch unreachable, no such topic).
    Reads NEWSFLOW_KAFKA_BOOTSTRAP, NEWSFLOW_ELASTICSEARCH_URL, NEWSFLOW_TOPIC_PREFIX.
    """
    import json
    import logging

    from newsflow import audit, audit_io

    if dry_run and not repair:
        raise click.UsageError("--dry-run goes with --repair")
    if ctx.verbosity < 1:  # an unreachable node is said in one line, not the client's retries
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    try:
        report = audit.run(ctx.settings, since=since, partition=partition, progress=progress)
        resent = _repair(ctx.settings, report, dry_run) if repair else None
    except audit_io.AuditError as err:
        click.secho(f"error: {err}", fg="red", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "repair": resent}))
    else:
        click.echo(report.summary())
        if resent is not None:
            verb = "would send" if dry_run else "sent"
            click.echo(f"{verb} {resent['count']} missing page(s) again to {report.topic}")
            click.echo("".join(f"  {where}\n" for where in resent["pages"]), nl=False)
            if resent["unreadable"]:
                click.echo(f"{resent['unreadable']} missing page(s) no longer on the topic")
    sys.exit(0 if report.ok else 1)


def _repair(settings: Settings, report: AuditReport, dry_run: bool) -> dict[str, Any]:
    from newsflow import audit_io

    lost = audit_io.lost_pages(settings, report.missing) if report.missing else []
    count = len(lost) if dry_run or not lost else audit_io.resend(settings, lost)
    pages = [f"{report.topic}[{p.partition}]@{p.offset}" for p in lost]
    return {
        "dry_run": dry_run,
        "count": count,
        "pages": pages,
        "unreadable": len(report.missing) - len(lost),
    }


def main() -> None:
    cli(auto_envvar_prefix=None)


if __name__ == "__main__":
    main()
