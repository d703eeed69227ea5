"""The ``newsflow`` command: the local stack, topics, settings and the demo.

Every option falls back to its NEWSFLOW_* environment variable (``--help`` names it);
``newsflow settings`` lists them all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import click

from newsflow import connections, errors, logs, redact
from newsflow.errors import EXIT_CODES_HELP
from newsflow.settings import Settings, StackSettings, describe, env_value, load
from newsflow.topics import STAGES

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
        except BrokenPipeError:
            # The reader went away (`newsflow topics list | head`): not a failure to report.
            # Further writes to the closed pipe would raise again while Python exits.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(errors.BROKEN_PIPE)
        except Exception as err:
            _report(ctx, err)


def _report(ctx: click.Context, err: Exception) -> None:
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
    if isinstance(err, errors.SetupError):  # the stack's, topics', audit's errors among them
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
      newsflow search Q      search the articles ('"port strike" -football', --since 2d)
      newsflow watch add     a standing query: alerts as new articles match it

    \b
    Secured clusters: NEWSFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL with
    NEWSFLOW_KAFKA_SASL_USERNAME/_PASSWORD and NEWSFLOW_KAFKA_SSL_CAFILE; an https://
    NEWSFLOW_ELASTICSEARCH_URL with NEWSFLOW_ELASTICSEARCH_API_KEY and _CA_FILE
    (`newsflow settings` lists them all; secrets are never printed).
    """
    logs.configure(-1 if quiet else verbose)
    overrides: dict[str, Any] = {"kafka_bootstrap": kafka, "elasticsearch_url": elasticsearch}
    settings = load(Settings, **{k: v for k, v in overrides.items() if v})
    stack_settings = load(StackSettings)
    redact.register(settings, stack_settings)
    ctx.obj = Context(settings, stack_settings, -1 if quiet else verbose)


@cli.command("settings")
@pass_ctx
def show_settings(ctx: Context) -> None:
    """Print every environment variable newsflow reads, with its current value.

    Set values print as NAME=value (so the output can be sourced by a shell); unset ones
    as a comment, and so do secrets (passwords, API keys, the webhook's URL past its
    host), which are never printed. Each is followed by what it does, and whether it is
    the default.
    """
    from pydantic import SecretStr

    from processors.webhook import shown

    for group in (ctx.settings, ctx.stack_settings):
        chosen = group.model_fields_set
        for (env, value, doc), name in zip(describe(group), type(group).model_fields, strict=True):
            if value is None:
                click.echo(f"# {env} is not set")
            elif isinstance(value, SecretStr) and name == "webhook_url":
                click.echo(f"# {env} is set: {shown(value.get_secret_value())} (rest not shown)")
            elif isinstance(value, SecretStr):
                click.echo(f"# {env} is set (a secret: not shown)")
            else:
                click.echo(f"{env}={env_value(value)}")
            origin = "set" if name in chosen else "default"
            click.secho(f"    {doc} [{origin}]", dim=True)


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
@click.option(
    "--secure",
    is_flag=True,
    envvar="NEWSFLOW_STACK_SECURE",
    show_envvar=True,
    help="Make the stack secured: Kafka over SASL_SSL with SCRAM users, Elasticsearch with "
    "TLS and an API key. A stack directory stays in the mode it was made in.",
)
@pass_ctx
def stack_up(ctx: Context, secure: bool) -> None:
    """Start Kafka and Elasticsearch (reusing running ones) and wait until both are healthy.

    The settings newsflow needs to use the stack are written to client.env in the stack
    directory (the last line says how to load them); secured, they include its passwords.
    """
    import shlex

    from deploy.stack import Stack

    settings = ctx.stack_settings
    if secure:
        settings = settings.model_copy(update={"secure": True})
    stack = Stack(settings)
    _print_status(stack.up())
    click.echo(f"clients: set -a; . {shlex.quote(str(stack.client_env_file))}; set +a")


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
    if not all(r.healthy for r in rows):
        click.echo("-> `newsflow stack up` starts what is stopped", err=True)
        sys.exit(errors.SOME_FAILED)


@stack.command("logs")
@click.argument("service", type=click.Choice(["kafka", "elasticsearch"]))
@click.option("-n", "--lines", default=40, help="How many lines from the end.")
@pass_ctx
def stack_logs(ctx: Context, service: str, lines: int) -> None:
    """Print the end of a service's own log, after the line naming the file."""
    from deploy.stack import Stack

    path, text = Stack(ctx.stack_settings).logs(service, lines)
    if not text:
        click.echo(f"{service} has written no log yet at {path} (`newsflow stack up` starts it)")
        return
    click.secho(f"==> {path} <==", dim=True, err=True)
    click.echo(text)


# -- topics ------------------------------------------------------------------------------


@cli.group()
def topics() -> None:
    """The pipeline's Kafka topics (NEWSFLOW_TOPIC_PREFIX, NEWSFLOW_TOPIC_PARTITIONS)."""


@topics.command("create")
@pass_ctx
def topics_create(ctx: Context) -> None:
    """Create the pipeline's topics that do not exist yet (existing ones are left alone,
    their partition counts checked).

    \b
    Exit codes: 0 every topic exists now; 2 Kafka unreachable, or an existing topic has
    another partition count than declared (the message says what to do).
    """
    from newsflow.services import KAFKA_TIMEOUTS, require_kafka
    from newsflow.topics import Topics, ensure_topics

    specs = Topics.from_settings(ctx.settings).specs()
    require_kafka(ctx.settings)
    created = ensure_topics(ctx.settings, specs, KAFKA_TIMEOUTS)
    click.echo(f"created {len(created)} of {len(specs)} topics")
    click.echo("".join(f"  {name}\n" for name in created), nl=False)


@topics.command("list")
@click.option(
    "--declared", "declared_only", is_flag=True, help="Only the declared layout; ask no broker."
)
@pass_ctx
def topics_list(ctx: Context, declared_only: bool) -> None:
    """List the pipeline's topics, their declared partitions and what each carries, with
    the partitions each has on the broker ("missing" when it does not exist yet).

    \b
    Exit codes: 0 every topic exists as declared; 1 some topic missing (create it with
    `newsflow topics create`) or with another partition count; 2 Kafka unreachable.
    """
    from newsflow.services import KAFKA_TIMEOUTS, require_kafka
    from newsflow.topics import Topics, broker_partitions, compare

    specs = Topics.from_settings(ctx.settings).specs()
    width = max(len(spec.name) for spec in specs)
    if declared_only:
        for spec in specs:
            click.echo(f"{spec.name:<{width}} {spec.partitions:>3}  {spec.description}")
        return
    require_kafka(ctx.settings)
    on_broker = broker_partitions(ctx.settings, [s.name for s in specs], KAFKA_TIMEOUTS)
    states = compare(specs, on_broker)
    click.secho(f"{'topic':<{width}} declared  on broker  carries", bold=True)
    for st in states:
        spec, broker = st.spec, "missing" if st.partitions is None else str(st.partitions)
        line = f"{spec.name:<{width}} {spec.partitions:>8}  {broker:>9}  {spec.description}"
        click.secho(line, fg=None if st.ok else "yellow")
    missing = sum(st.partitions is None for st in states)
    wrong = sum(not st.ok for st in states) - missing
    if missing:
        click.echo(f"{missing} of {len(states)} topics missing; `newsflow topics create` adds them")
    if wrong:
        click.echo(
            f"{wrong} topic(s) with another partition count than declared: the tables need the "
            "declared counts (delete them, or choose another NEWSFLOW_TOPIC_PREFIX)"
        )
    sys.exit(1 if missing or wrong else 0)


@cli.command()
@click.option(
    "--loglevel", default="info", type=click.Choice(["crit", "error", "warn", "info", "debug"])
)
@pass_ctx
def worker(ctx: Context, loglevel: str) -> None:
    """Run the pipeline's Faust agents (clean, stories, enrich, index, reclean) until Ctrl-C.

    Creates the topics and the Elasticsearch index template first if they are missing.
    Reads NEWSFLOW_KAFKA_BOOTSTRAP, NEWSFLOW_ELASTICSEARCH_URL, NEWSFLOW_TOPIC_* and
    NEWSFLOW_STATE_DIR (the RocksDB tables; rebuilt from Kafka when lost). Waits, saying
    so once, while Kafka or Elasticsearch does not answer.
    """
    from processors import worker_logs
    from processors.app import prepare, run_worker, wait_for_services

    worker_logs.configure(loglevel, ctx.verbosity)
    fetch_taggers(ctx.settings)
    wait_for_services(ctx.settings)
    prepare(ctx.settings)
    run_worker(ctx.settings, loglevel)


def fetch_taggers(settings: Settings) -> None:
    """CoreNLP's files, downloaded now if absent, with progress on stderr: a first start
    then says what its minute of downloading is, and fails before Faust starts if it
    cannot."""
    if settings.ner_backend != "corenlp":
        return
    from processors import corenlp

    if corenlp.missing(settings.ner_dir, settings.ner_languages):
        click.echo(
            f"fetching the entity taggers (CoreNLP {corenlp.VERSION}) into {settings.ner_dir}, "
            "once per machine",
            err=True,
        )
        say = partial(click.echo, err=True)
        corenlp.fetch(settings.ner_dir, settings.ner_languages, settings.ner_maven_url, say)


@cli.group()
def ner() -> None:
    """The entity taggers.

    \b
    The default, NEWSFLOW_NER_BACKEND=corenlp, is Stanford CoreNLP's CRF taggers for the
    languages of NEWSFLOW_NER_LANGUAGES (en, de, fr, es), run in each worker's own JVM
    (Java 11+). Their files come from NEWSFLOW_NER_MAVEN_URL (Maven Central) into
    NEWSFLOW_NER_DIR the first time a worker starts, or with `newsflow ner fetch`.
    CoreNLP is GPL-3.0-or-later and downloaded, not shipped; NEWSFLOW_NER_BACKEND=spacy
    tags English with spaCy's small model instead (MIT, less accurate).
    """


@ner.command("fetch")
@pass_ctx
def ner_fetch(ctx: Context) -> None:
    """Download CoreNLP's files for NEWSFLOW_NER_LANGUAGES if they are not there yet.

    About 1.2 GB is downloaded for the four languages (the models jars hold every CoreNLP
    model); only the taggers are kept, about 215 MB. Each file is checked against the
    SHA-256 newsflow pins.
    """
    from processors import corenlp

    settings = ctx.settings
    fetch_taggers(settings.model_copy(update={"ner_backend": "corenlp"}))
    here = corenlp.release_dir(settings.ner_dir)
    click.echo(f"CoreNLP {corenlp.VERSION} in {here}:")
    for language in settings.ner_languages:
        model = corenlp.MODELS[language]
        size = (here / model.file_name).stat().st_size
        click.echo(f"  {language}  {model.file_name}  {size / 1e6:.0f} MB")


@ner.command("tag")
@click.argument("text", required=False)
@click.option("--language", "-l", default="en", show_default=True, help="language of the text")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per entity")
@pass_ctx
def ner_tag(ctx: Context, text: str | None, language: str, as_json: bool) -> None:
    """Tag TEXT (or standard input; blank lines part paragraphs) as the worker would.

    \b
      newsflow ner tag "Ingrid Falk of Baltamar Shipping spoke in Kessling."
      newsflow ner tag -l de < artikel.txt
    """
    from processors.entities import EntityOptions, Tagger, no_tagger, primary_language

    if text is None:
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as err:
            raise errors.SetupError(
                f"standard input is not UTF-8 text (byte {err.start} is not)",
                "give the text itself, or convert it first (iconv -t utf-8)",
            ) from None
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    if not paragraphs:
        raise errors.SetupError("nothing to tag", "give a text, or pipe one in")
    settings = ctx.settings
    tagged = settings.ner_languages if settings.ner_backend == "corenlp" else ("en",)
    if primary_language(language) not in tagged:
        hint = "set --language to one of those, or add it to NEWSFLOW_NER_LANGUAGES"
        if settings.ner_backend == "spacy":
            hint = "NEWSFLOW_NER_BACKEND=corenlp tags de, fr and es too"
        raise errors.SetupError(no_tagger(language, tagged), hint)
    fetch_taggers(settings)
    result = Tagger(EntityOptions.from_settings(settings)).tag(paragraphs, language)
    for entity in result.entities:
        if as_json:
            click.echo(entity.model_dump_json())
        else:
            others = [v for v in entity.variants if v != entity.text]
            also = f"  (also {', '.join(others)})" if others else ""
            click.echo(f"{entity.label:7} {entity.count:3}  {entity.text}{also}")


@cli.command()
@pass_ctx
def demo(ctx: Context) -> None:
    """Run newsflow end to end on built-in data: starts the local stack if needed."""
    from newsflow import demo_run

    demo_run.run(ctx.settings, ctx.stack_settings)


def filter_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The filters `search` and `watch add` share (newsflow.query.Filters)."""
    options = [
        click.option(
            "--site",
            "sites",
            multiple=True,
            metavar="SITE",
            help="Only this site (domain or name); repeat for either of several.",
        ),
        click.option(
            "--language",
            "languages",
            multiple=True,
            metavar="CODE",
            help="Only this language (en, de, ...); repeat for either.",
        ),
        click.option(
            "--since",
            metavar="WHEN",
            help="Published at or after WHEN: 2026-11-30, 2026-11-30T14:00, or an "
            "age such as 90m, 6h, 2d, 1w (UTC unless it says).",
        ),
        click.option(
            "--until",
            metavar="WHEN",
            help="Published before WHEN (a date alone includes that day).",
        ),
        click.option(
            "--person",
            "persons",
            multiple=True,
            metavar="NAME",
            help="Mentions this person (as the facets name them); repeat for all of several.",
        ),
        click.option(
            "--org",
            "organizations",
            multiple=True,
            metavar="NAME",
            help="Mentions this organisation; repeat for all of several.",
        ),
        click.option(
            "--place",
            "places",
            multiple=True,
            metavar="NAME",
            help="Mentions this place; repeat for all of several.",
        ),
        click.option(
            "--story",
            "stories",
            multiple=True,
            metavar="ID",
            help="Only this story (its id, as --json shows it); repeat for either.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_filters(options: dict[str, Any]) -> Any:
    """Filters from filter_options' values; a bad value is a usage error naming it."""
    from newsflow.query import Filters, QueryError, parse_time

    try:
        since = parse_time(options["since"], option="--since") if options["since"] else None
        until = (
            parse_time(options["until"], option="--until", end_of_day=True)
            if options["until"]
            else None
        )
        return Filters(
            sites=options["sites"],
            languages=options["languages"],
            since=since,
            until=until,
            persons=options["persons"],
            organizations=options["organizations"],
            places=options["places"],
            stories=options["stories"],
        )
    except QueryError as err:
        raise click.UsageError(str(err)) from None


FILTER_KEYS = (
    "sites",
    "languages",
    "since",
    "until",
    "persons",
    "organizations",
    "places",
    "stories",
)


@cli.command("search")
@click.argument("query", nargs=-1, required=True)
@filter_options
@click.option(
    "-n",
    "--size",
    default=5,
    type=click.IntRange(1, 100),
    show_default=True,
    help="Stories (or, with --no-collapse, articles) per page, 1 to 100.",
)
@click.option(
    "--page",
    default=1,
    type=click.IntRange(min=1),
    show_default=True,
    help="Which page of hits to show.",
)
@click.option(
    "--sort",
    type=click.Choice(["relevance", "newest"]),
    help="Order of hits [default: relevance; newest for *].",
)
@click.option("--no-collapse", is_flag=True, help="Show every copy, not one per story.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per hit, one per line (id, title, url, site, dates, "
    "snippets, entities, story, copies), and nothing else.",
)
@pass_ctx
def search_cmd(
    ctx: Context,
    /,
    query: tuple[str, ...],
    size: int,
    page: int,
    sort: str | None,
    no_collapse: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Search the indexed articles: marked snippets, entity facets, one hit per story.

    \b
    QUERY (quote it for the shell) is matched in titles, standfirsts and text, stemmed
    (strikes finds strike):
      port strike          both words          "port strike"    the phrase
      strike | walkout     either              strike -football  not the second
      strik*               a prefix            (a | b) c         grouping
    AND, OR, NOT in capitals work too. `*` alone lists every article, newest first.

    \b
    Examples:
      newsflow search '"port strike" -football' --since 2d
      newsflow search 'ceasefire | truce' --place Gaza --json
      newsflow search '*' --site reuters.com --sort newest --page 2

    Exit codes: 0 answered (matches or none); 2 a bad query or option, Elasticsearch
    unreachable, or nothing indexed yet.
    """

    from newsflow import search
    from newsflow.errors import SetupError
    from newsflow.query import QueryError
    from newsflow.services import require_elasticsearch
    from processors.index import alias

    text = " ".join(query).strip()
    if not text:
        raise click.UsageError("the query is empty: give words to search for, or * for all")
    filters = build_filters(options)
    try:
        request = search.Request(
            text,
            filters,
            sort=cast("search.Sort | None", sort),
            page=page,
            size=size,
            collapse=not no_collapse,
        )
    except QueryError as err:
        raise click.UsageError(f"{err}") from None
    url = ctx.settings.elasticsearch_url
    require_elasticsearch(ctx.settings)
    index = alias(ctx.settings.topic_prefix)
    markers = search.PLAIN if as_json else search.markers_for(sys.stdout)
    with connections.elasticsearch(ctx.settings, request_timeout=30, max_retries=1) as es:
        if not es.indices.exists_alias(name=index):
            raise SetupError(
                f"nothing is indexed yet at {url} (no {index} alias)",
                "run `newsflow worker` and ingest pages, or `newsflow demo`; "
                "NEWSFLOW_TOPIC_PREFIX must be the pipeline's",
            )
        result = search.run(es, index, request, markers)
        if as_json:
            for hit in result.hits:
                click.echo(hit.to_json())
            return
        if not result.total:
            total = es.count(index=index)["count"]
            click.echo(f"{search.heading(result)}, among {total} indexed")
            return
    click.echo(search.render(result))


# -- watch ---------------------------------------------------------------------------------


@cli.group()
def watch() -> None:
    """Standing queries: alerts when a new article matches.

    \b
    Each watch is a query and filters, as `newsflow search` takes them, kept in the
    <prefix>.watches topic (compacted), so every worker has them. A worker matches each
    article once it is indexed and sends one alert per story per watch to the
    <prefix>.alerts topic (and to NEWSFLOW_WEBHOOK_URL, if set). A watch alerts on what
    is indexed after it was added; `newsflow search` finds the articles before.
    """


@watch.command("add")
@click.argument("name")
@click.argument("query", nargs=-1, required=True)
@filter_options
@click.option("--replace", is_flag=True, help="Replace a watch of that name (alerts anew).")
@pass_ctx
def watch_add(
    ctx: Context, /, name: str, query: tuple[str, ...], replace: bool, **options: Any
) -> None:
    """Add watch NAME for QUERY (quoted, as for `newsflow search`).

    \b
    Examples:
      newsflow watch add port-strikes '"port strike" | dockworkers' --language en
      newsflow watch add estmark-bank 'rate*' --org "National Bank of Estmark"
    """
    from newsflow import watches
    from newsflow.query import QueryError, parse
    from newsflow.records import Watch, utcnow
    from newsflow.services import require_kafka

    text = " ".join(query).strip()
    try:
        watches.check_name(name)
        parse(text)
    except QueryError as err:
        raise click.UsageError(str(err)) from None
    filters = build_filters(options)
    require_kafka(ctx.settings)
    current = watches.read_all(ctx.settings)
    if name in current and not replace:
        raise click.UsageError(
            f"a watch named {name} exists (query {current[name].query!r}): give --replace "
            "to replace it, or another name"
        )
    added = Watch(name=name, query=text, filters=filters, created_at=utcnow())
    watches.put(ctx.settings, added, name)
    narrowed = filters.describe()
    click.echo(
        f"watch {name} {'replaced' if name in current else 'added'}: {text!r}"
        + (f" ({narrowed})" if narrowed else "")
        + f"; {_already(ctx.settings, added)}"
    )


def _already(settings: Settings, added: Any) -> str:
    """How many indexed articles the new watch matches: what `search` shows, since a watch
    alerts only on what comes after it."""

    from newsflow import search
    from newsflow.services import require_elasticsearch
    from processors.index import alias

    try:
        require_elasticsearch(settings)
        with connections.elasticsearch(settings, request_timeout=10, max_retries=0) as es:
            index = alias(settings.topic_prefix)
            if not es.indices.exists_alias(name=index):
                return "nothing is indexed yet; alerts start with the first article"
            request = search.Request(added.query, added.filters, size=1)
            result = search.run(es, index, request)
    except errors.SetupError:
        return "alerts start with the next article indexed (Elasticsearch did not answer)"
    return (
        f"{result.total} article(s) indexed already match (newsflow search); "
        "alerts start with the next"
    )


@watch.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per watch.")
@pass_ctx
def watch_list(ctx: Context, as_json: bool) -> None:
    """The watches, by name."""
    from newsflow import watches
    from newsflow.services import require_kafka

    require_kafka(ctx.settings)
    skipped: list[str] = []
    current = watches.read_all(ctx.settings, skipped)
    for problem in skipped:
        click.echo(f"warning: a record of the watches topic does not decode: {problem}", err=True)
    if as_json:
        for w in current.values():
            click.echo(w.model_dump_json(exclude={"schema_version"}))
        return
    if not current:
        click.echo("no watches: add one with `newsflow watch add NAME QUERY`")
        return
    for name in sorted(current):
        w = current[name]
        narrowed = w.filters.describe()
        click.echo(
            f"{name:20} {w.query!r}"
            + (f" ({narrowed})" if narrowed else "")
            + f"  [since {w.created_at:%Y-%m-%d %H:%M} UTC]"
        )


@watch.command("remove")
@click.argument("name")
@pass_ctx
def watch_remove(ctx: Context, name: str) -> None:
    """Remove watch NAME: no alerts from it after this."""
    from newsflow import watches
    from newsflow.services import require_kafka

    require_kafka(ctx.settings)
    current = watches.read_all(ctx.settings)
    if name not in current:
        listed = ", ".join(sorted(current)) or "none"
        raise click.UsageError(f"no watch named {name} (watches: {listed})")
    watches.put(ctx.settings, None, name)
    click.echo(f"watch {name} removed")


@watch.command("tail")
@click.option("--watch", "only", metavar="NAME", help="Only this watch's alerts.")
@click.option("--from-beginning", is_flag=True, help="The alerts kept (7 days), then new ones.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert.")
@click.option(
    "--idle",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop when no alert came for this long [default: run until Ctrl-C].",
)
@pass_ctx
def watch_tail(
    ctx: Context, only: str | None, from_beginning: bool, as_json: bool, idle: float | None
) -> None:
    """Show alerts as they come, until Ctrl-C."""
    from newsflow import watches
    from newsflow.services import require_kafka

    require_kafka(ctx.settings)
    if not as_json:
        click.echo(
            f"waiting for alerts{' of ' + only if only else ''} (Ctrl-C to stop)...", err=True
        )
    try:
        for alert in watches.tail(
            ctx.settings, from_beginning=from_beginning, watch=only, idle=idle
        ):
            if as_json:
                click.echo(alert.model_dump_json(exclude={"schema_version"}))
                continue
            when = alert.published_at or alert.fetched_at
            title = alert.title or "(untitled)"
            gone = "WITHDRAWN (re-cleaning removed what it matched): " if alert.withdrawn else ""
            click.echo(f"{when:%Y-%m-%d %H:%M}  [{alert.watch}] {gone}{title}  ({alert.site})")
            click.echo(f"    {alert.url}")
            if alert.snippet:
                click.echo(f"    {alert.snippet}")
    except KeyboardInterrupt:
        return


# -- ingest ------------------------------------------------------------------------------


@cli.group()
def ingest() -> None:
    """Put pages on the pipeline's pages topic: feeds and sitemaps, WARC files."""


def _ingest_ready(settings: Settings) -> None:
    """Kafka answers (said in seconds if not) and the pipeline's topics exist."""
    from newsflow.services import KAFKA_TIMEOUTS, require_kafka
    from newsflow.topics import Topics, ensure_topics

    require_kafka(settings)
    specs = Topics.from_settings(settings).specs()
    ensure_topics(settings, specs, KAFKA_TIMEOUTS)


def _ingest_done(stats: Any, retry_hint: str = "") -> None:
    """The summary, then exit 1 if some input failed in this run (see the --help)."""
    from newsflow import errors

    click.echo(stats.summary(retry_hint))
    if not stats.ok:
        sys.exit(errors.SOME_FAILED)


@ingest.command("warc")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--resend", is_flag=True, help="Send pages again even if the seen-URL store has them."
)
@pass_ctx
def ingest_warc_cmd(ctx: Context, files: tuple[str, ...], resend: bool) -> None:
    """Every HTML page of WARC / WARC.gz FILES (Common Crawl CC-NEWS, say) onto Kafka.

    Pages already sent (NEWSFLOW_STATE_DIR/seen.sqlite) are skipped unless --resend;
    records that cannot be read are logged (file and offset) and go to the ingest
    dead-letter topic with their reason.

    \b
    Exit codes: 0 every record read (records that hold no web page, and revisits,
    are routine skips); 1 some records or files could not be read (a damaged or cut-off
    file, an empty one, a broken encoding); 2 Kafka unreachable or a file unreadable;
    3 a bug in newsflow.
    """
    from pathlib import Path

    from ingest.jobs import PageSink, ingest_warc
    from ingest.seen import SeenStore
    from newsflow.errors import SetupError

    paths = [Path(f) for f in files]
    for path in paths:
        try:
            path.open("rb").close()
        except OSError as err:
            raise SetupError(f"cannot read {path}: {err.strerror or err}") from err
    _ingest_ready(ctx.settings)
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
    _ingest_done(stats)


@ingest.command("feeds")
@click.option(
    "--sources",
    "sources_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML file of feeds and sitemaps [default: NEWSFLOW_SOURCES]",
)
@click.option("--once", is_flag=True, help="Poll everything due once, then stop.")
@click.option(
    "--now", is_flag=True, help="Poll every feed and sitemap at once, whether due or not."
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Fetch again the articles that failed for good before (a 404, say).",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow fetching from loopback and private addresses (local test sites).",
)
@pass_ctx
def ingest_feeds_cmd(
    ctx: Context,
    sources_file: str | None,
    once: bool,
    now: bool,
    retry_failed: bool,
    allow_private: bool,
) -> None:
    """Watch the feeds and sitemaps of a sources file continuously; Ctrl-C stops cleanly.

    Each feed is polled on its own adaptive schedule (conditional GET, its observed rate,
    ttl / sy:updatePeriod / Cache-Control, backoff on errors); new articles are fetched
    politely (robots.txt, crawl-delay, per-host spacing) and put on the pages topic.
    Feed health (NEWSFLOW_STATE_DIR/feeds.json) and seen URLs survive restarts; so do
    articles that failed for good, which are not fetched again unless --retry-failed.
    A line on stderr says how each poll went; --once lists what was not due, and when
    it will be (--now polls it anyway).

    \b
    Exit codes (--once): 0 every due poll and article went well; 1 some poll or article
    failed (each logged, articles dead-lettered); 2 no or a bad sources file, or Kafka
    unreachable (without --once, the watcher waits for Kafka instead); 3 a bug.
    """
    import asyncio
    from pathlib import Path

    from ingest import report, sources
    from ingest.monitor import HealthStore, not_due, run_monitor
    from newsflow.errors import SetupError
    from newsflow.records import utcnow
    from newsflow.services import require_kafka, wait_for

    path = Path(sources_file) if sources_file else ctx.settings.sources
    if path is None:
        raise SetupError(
            "no sources file: nothing to watch",
            "give --sources FILE or set NEWSFLOW_SOURCES (a YAML file of feeds and "
            "sitemaps; ingest/sources.py documents it)",
        )
    if not path.is_file():
        named = "--sources" if sources_file else "NEWSFLOW_SOURCES"
        raise SetupError(f"no sources file at {path} ({named})", "give the path of one")
    try:
        declared = sources.load(path)
    except sources.SourcesError as err:
        raise SetupError(str(err), "correct the file (ingest/sources.py documents it)") from err

    def say(line: str) -> None:
        click.echo(line, err=True)

    if not once:  # a watcher started with the stack (compose, a unit) waits for Kafka
        wait_for(lambda: require_kafka(ctx.settings), say)
    _ingest_ready(ctx.settings)
    started = utcnow()
    health = HealthStore(ctx.settings.state_dir / "feeds.json")
    waiting = [] if now or not once else not_due(declared.endpoints(), health, started)
    stats = asyncio.run(
        run_monitor(
            ctx.settings,
            declared,
            once=once,
            allow_private=allow_private,
            now=now,
            retry_failed=retry_failed,
            progress=say,
        )
    )
    for h in waiting:
        click.echo(report.not_due_line(h, started))
    if waiting:
        click.echo(f"{len(waiting)} not due; --now polls every feed and sitemap now")
    if once:
        _ingest_done(stats, "--retry-failed fetches them again")
    else:  # stopped as asked (Ctrl-C): what failed meanwhile was logged and counted
        click.echo(stats.summary("--retry-failed fetches them again"))


@ingest.command("urls")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Fetch again the URLs that failed for good on an earlier run (a 404, say).",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow fetching from loopback and private addresses (local test sites).",
)
@pass_ctx
def ingest_urls_cmd(ctx: Context, file: str, retry_failed: bool, allow_private: bool) -> None:
    """Fetch every URL listed in FILE (one per line, # comments) politely, once.

    A line that is no http(s) URL is skipped (logged as FILE:LINE, dead-lettered) and the
    rest is fetched. URLs already sent are not fetched again; nor are those that failed
    for good on an earlier run (counted as "failed before"), unless --retry-failed.

    \b
    Exit codes: 0 every URL sent (or sent or failed before); 1 some URLs failed in this
    run (each logged with its line, and dead-lettered); 2 FILE unreadable or not UTF-8
    text, or Kafka unreachable; 3 a bug in newsflow.
    """
    import asyncio
    from pathlib import Path

    from ingest import urllist
    from ingest.monitor import fetch_urls

    entries = urllist.read(Path(file))
    _ingest_ready(ctx.settings)
    with click.progressbar(length=len(entries), label="fetching", file=sys.stderr) as bar:
        stats = asyncio.run(
            fetch_urls(
                ctx.settings,
                entries,
                ref=Path(file).name,
                allow_private=allow_private,
                retry_failed=retry_failed,
                progress=bar.update,
            )
        )
    _ingest_done(stats, "--retry-failed fetches them again")


@ingest.command("status")
@pass_ctx
def ingest_status_cmd(ctx: Context) -> None:
    """Per-feed health: last success, new items, failures, next poll (NEWSFLOW_STATE_DIR)."""
    from ingest import report
    from ingest.monitor import HealthStore
    from ingest.seen import SeenStore
    from newsflow.records import utcnow

    state = ctx.settings.state_dir
    store = HealthStore(state / "feeds.json")
    if not store.health:
        click.echo(f"no feed polled yet: no feed health in {store.path}")
        demo = ctx.stack_settings.demo_state_dir
        if (demo / "feeds.json").is_file() and demo.resolve() != state.resolve():
            click.echo(
                f"the demo's ingest state is in {demo}: "
                f"NEWSFLOW_STATE_DIR={demo} newsflow ingest status"
            )
    now = utcnow()
    for h in sorted(store.health.values(), key=lambda h: h.url):
        click.echo("\n".join(report.status_lines(h, now)))
    if (state / "seen.sqlite").is_file():
        with SeenStore(state / "seen.sqlite") as seen:
            failed = seen.failed_count()
        if failed:
            click.echo(
                f"{failed} URL(s) failed for good and are not fetched again "
                "(ingest feeds/urls --retry-failed fetches them again)"
            )


# -- dead letters ------------------------------------------------------------------------


@cli.group()
def deadletter() -> None:
    """What the pipeline could not process, with the reason; replay it once fixed."""


class _StageChoice(click.Choice[str]):
    def get_missing_message(self, param: click.Parameter, ctx: click.Context | None) -> str:
        # One line: click's own message puts each stage on a line of its own.
        return f"Choose from {', '.join(map(str, self.choices))}."


STAGE = _StageChoice(list(STAGES))


def _letters_since(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return _since(ctx, param, value)  # defined with the audit command, below


@deadletter.command("list")
@click.argument("stage", type=STAGE, required=False)
@click.option(
    "-n", "--limit", default=20, type=click.IntRange(min=0), help="Show the newest N per stage."
)
@click.option(
    "--since",
    callback=_letters_since,
    metavar="DURATION|TIME",
    help="Only letters written since then: 30m, 2h, 1d, or an ISO time (UTC unless it says).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per letter shown.")
@pass_ctx
def deadletter_list(ctx: Context, stage: str | None, limit: int, since: Any, as_json: bool) -> None:
    """Show dead letters (all stages, or one), newest first: when, why, and where they came
    from (topic[partition]@offset, or for ingest failures the input and URL). Each stage
    says how many letters its topic holds, and counts those shown by error class.

    \b
    Exit codes: 0 listed (whether or not there are letters); 2 Kafka unreachable.
    """
    import json

    from newsflow import deadletter
    from newsflow.services import require_kafka
    from newsflow.topics import Topics

    topics = Topics.from_settings(ctx.settings)
    wanted = {name: topics.deadletter(name) for name in ([stage] if stage else STAGES)}
    require_kafka(ctx.settings)
    found = deadletter.list_stages(ctx.settings, wanted, limit, since)
    for name, listing in found.items():
        if as_json:
            for d in listing.letters:
                fields = d.model_dump(mode="json", exclude={"key", "value", "schema_version"})
                click.echo(json.dumps({**fields, "where": deadletter.where(d)}))
            continue
        click.secho(deadletter.heading(name, listing, since), bold=True)
        if listing.letters:
            counts = ", ".join(f"{cls} {n}" for cls, n in listing.by_error_class())
            click.echo(f"  by error class: {counts}")
        click.echo("".join(f"  {deadletter.describe(d)}\n" for d in listing.letters), nl=False)


@deadletter.command("replay")
@click.argument("stage", type=STAGE)
@click.option("--dry-run", is_flag=True, help="Count what would be replayed; send nothing.")
@pass_ctx
def deadletter_replay(ctx: Context, stage: str, dry_run: bool) -> None:
    """Send a stage's dead letters back to the topic they came from, once the cause is
    fixed. Each letter is replayed once: progress is kept by the consumer group
    <prefix>-replay-<stage>, committed once every letter sent is acknowledged (a replay
    that fails midway sends its letters again next time, never skips one). Ingest failures
    were never messages: ingest their inputs again instead.

    \b
    Exit codes: 0 replayed (or nothing to replay); 2 Kafka unreachable.
    """
    from newsflow.deadletter import replay
    from newsflow.services import require_kafka
    from newsflow.topics import Topics

    topic = Topics.from_settings(ctx.settings).deadletter(stage)
    group = f"{ctx.settings.topic_prefix}-replay-{stage}"
    require_kafka(ctx.settings)
    done = replay(ctx.settings, topic, group, dry_run=dry_run)
    if not done.exists:
        click.echo(f"nothing to replay: {topic} not created yet")
        return
    verb = "would replay" if dry_run else "replayed"
    click.echo(f"{verb} {done.count} dead letter(s) from {topic}")
    click.echo("".join(f"  {n} to {name}\n" for name, n in sorted(done.sent.items())), nl=False)
    if done.unsendable:
        click.echo(
            f"  {done.unsendable} without a source topic (ingest failures: ingest their "
            f"inputs again){'' if dry_run else ', passed over'}"
        )


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
