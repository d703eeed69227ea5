"""Every option newsflow reads from the environment, in one place.

Nothing else in the code base reads ``os.environ``: the CLI builds these objects once and
passes them down. Each field's environment variable is its name upper-cased behind the
class prefix (``NEWSFLOW_KAFKA_BOOTSTRAP``, ``NEWSFLOW_STACK_KAFKA_PORT``...);
``newsflow settings`` prints them all with their current values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from newsflow.errors import SetupError

S = TypeVar("S", bound=BaseSettings)


class Settings(BaseSettings):
    """Where the services are and how the pipeline's topics are laid out."""

    # An empty variable is an unset one (a compose file's ${VAR:-}, an `export X=`).
    model_config = SettingsConfigDict(env_prefix="NEWSFLOW_", extra="ignore", env_ignore_empty=True)

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port...]"
    )
    # How newsflow authenticates to Kafka and Elasticsearch. newsflow.connections is the
    # one place that turns these into client options; secrets are SecretStr, so that a
    # repr, a log line or `newsflow settings` never shows them.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How clients talk to Kafka: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or "
        "SASL_SSL (user and password over TLS: what managed Kafka services ask for)",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL)"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password")
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="PEM file of the certificate authorities Kafka's certificates are checked "
        "against (unset: the system's)",
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="PEM client certificate, for brokers that ask for one (mutual TLS)"
    )
    kafka_ssl_keyfile: Path | None = Field(None, description="PEM private key of that certificate")
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="Password of that private key, if it is encrypted"
    )
    kafka_ssl_check_hostname: bool = Field(
        True, description="Check that the broker's certificate names the host connected to"
    )
    elasticsearch_url: str = Field(
        "http://127.0.0.1:9200",
        description="Elasticsearch URL, https:// for a cluster with TLS (every Elasticsearch "
        "8 and 9 cluster with its default security)",
    )
    elasticsearch_api_key: SecretStr | None = Field(
        None,
        description="Elasticsearch API key, the encoded form Elasticsearch prints (base64 of "
        "id:key); or set a user and password",
    )
    elasticsearch_username: str | None = Field(None, description="Elasticsearch user")
    elasticsearch_password: SecretStr | None = Field(None, description="Its password")
    elasticsearch_ca_file: Path | None = Field(
        None,
        description="PEM file of the certificate authority of Elasticsearch's HTTP "
        "certificate (unset: the system's)",
    )
    elasticsearch_fingerprint: str | None = Field(
        None,
        description="SHA-256 fingerprint of Elasticsearch's HTTP certificate (hex, colons "
        "allowed), instead of a CA file",
    )
    elasticsearch_verify_certs: bool = Field(
        True,
        description="Check Elasticsearch's certificate; false only for a throwaway node "
        "(anyone on the path could then read the API key)",
    )
    topic_prefix: str = Field(
        "newsflow", description="Prefix of every topic name, so several pipelines share a broker"
    )
    topic_partitions: int = Field(
        4, ge=1, description="Partitions of the pipeline topics (a site's pages share one)"
    )
    topic_replication: int = Field(1, ge=1, description="Replication factor of new topics")
    feed_min_interval: float = Field(
        60.0, gt=0, description="Seconds: no feed or sitemap is polled more often than this"
    )
    feed_max_interval: float = Field(
        6 * 3600.0, gt=0, description="Seconds: every feed is polled at least this often"
    )
    feed_initial_interval: float = Field(
        900.0, gt=0, description="Seconds between polls of a new feed, until its rate is known"
    )
    sweep_interval: float = Field(
        3600.0,
        gt=0,
        description="Seconds between sweeps of expired entries from a worker's dedup tables",
    )
    head_grace: float = Field(
        30.0,
        gt=0,
        description="Seconds a partition's next offset may sit unprocessed while its agent "
        "is idle before the worker seeks back to it (a safety net: each one is logged)",
    )
    reclean_wait: float = Field(
        120.0,
        ge=0,
        description="Seconds, in all, a re-cleaning keeps asking for the earlier articles it "
        "names to be indexed (they may still be in the stages behind it; 5 s at a time, so "
        "that no rebalance waits on it) before it takes the missing ones as filtered",
    )
    # A secret: chat and incident services put the token that lets anyone post in the URL.
    webhook_url: SecretStr | None = Field(
        None,
        description="URL the workers POST each standing query's alert to, as JSON (unset: "
        "alerts only go to the alerts topic, for `newsflow watch tail`); shown as its "
        "scheme and host only",
    )

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_http(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value() if value is not None else ""
        if not url:
            return None
        parsed = urlsplit(url)
        try:
            port = parsed.port
        except ValueError:
            raise ValueError("its port is not a number from 1 to 65535") from None
        if parsed.scheme not in ("http", "https") or not parsed.hostname or port == 0:
            raise ValueError("give an http:// or https:// URL with a host")
        return value

    webhook_attempts: int = Field(
        6,
        ge=1,
        description="Times an alert is posted before it goes to the webhook's dead-letter "
        "topic, waiting 1, 2, 4 ... up to 30 s between (a 4xx answer other than 408 or 429 "
        "is not retried: the receiver refused it)",
    )
    webhook_timeout: float = Field(10.0, gt=0, description="Seconds a webhook may take to answer")
    ner_backend: Literal["corenlp", "spacy"] = Field(
        "corenlp",
        description="Entity tagger: corenlp (Stanford CoreNLP's CRFs, English, German, French, "
        "Spanish; needs Java 11+; GPL-3.0, downloaded, not shipped) or spacy (spaCy's small "
        "English model; MIT, English only, less accurate)",
    )
    # NoDecode: the variable is a comma-separated list, not the JSON pydantic-settings reads
    # for a tuple by default.
    ner_languages: Annotated[tuple[str, ...], NoDecode] = Field(
        ("en", "de", "fr", "es"),
        description="Languages CoreNLP tags, comma-separated, the first also for articles of "
        "unknown language (other languages keep their reason in ner_skipped)",
    )

    @field_validator("ner_languages", mode="before")
    @classmethod
    def _languages_from_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(v.strip().lower() for v in value.split(",") if v.strip())
        from processors.corenlp import MODELS  # the taggers newsflow knows

        if not value or set(value) - set(MODELS):
            raise ValueError(f"give some of {', '.join(MODELS)}, comma-separated")
        return value

    ner_learn_votes: int = Field(
        10,
        ge=0,
        description="Articles' votes before a name is shown with the label most of them gave "
        "it in every later article (0: each article's own labels only)",
    )
    ner_learn_share: float = Field(
        0.75, ge=0.5, le=1, description="Share of the votes the leading label needs"
    )
    ner_learn_half_life: float = Field(
        30 * 86400.0,
        gt=0,
        description="Seconds of event time in which a vote loses half its weight",
    )
    ner_dir: Path = Field(
        Path.home() / ".cache" / "newsflow",
        description="Where CoreNLP's jar and taggers are kept (fetched when absent: about "
        "1.2 GB downloaded once, 215 MB kept)",
    )
    ner_maven_url: str = Field(
        "https://repo1.maven.org/maven2",
        description="Maven repository CoreNLP is downloaded from (Central or a mirror of it)",
    )
    ner_heap: str = Field("1g", description="Heap (-Xmx) of the JVM each worker runs CoreNLP in")
    ner_java_home: Path | None = Field(
        None, description="Java (11+) for CoreNLP (default: JAVA_HOME, else the system's)"
    )
    sources: Path | None = Field(
        None, description="YAML file of the feeds and sitemaps `newsflow ingest feeds` watches"
    )
    state_dir: Path = Field(
        Path(".newsflow-state"),
        description="Local state of workers: Faust's RocksDB tables (rebuilt from Kafka if lost)",
    )

    @model_validator(mode="after")
    def _security_is_whole(self) -> Settings:
        """Half a configuration fails at the first connection with an error that names
        neither variable; refused here instead, naming both."""
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"NEWSFLOW_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "NEWSFLOW_KAFKA_SASL_USERNAME and NEWSFLOW_KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError(
                "a client certificate needs its key: set both NEWSFLOW_KAFKA_SSL_CERTFILE "
                "and NEWSFLOW_KAFKA_SSL_KEYFILE, or neither"
            )
        if self.elasticsearch_api_key and (
            self.elasticsearch_username or self.elasticsearch_password
        ):
            raise ValueError(
                "set NEWSFLOW_ELASTICSEARCH_API_KEY or NEWSFLOW_ELASTICSEARCH_USERNAME and "
                "_PASSWORD, not both"
            )
        if bool(self.elasticsearch_username) != bool(self.elasticsearch_password):
            raise ValueError(
                "NEWSFLOW_ELASTICSEARCH_USERNAME and NEWSFLOW_ELASTICSEARCH_PASSWORD go together"
            )
        if self.elasticsearch_ca_file and self.elasticsearch_fingerprint:
            raise ValueError(
                "set NEWSFLOW_ELASTICSEARCH_CA_FILE or NEWSFLOW_ELASTICSEARCH_FINGERPRINT, not both"
            )
        for name in (
            "kafka_ssl_cafile",
            "kafka_ssl_certfile",
            "kafka_ssl_keyfile",
            "elasticsearch_ca_file",
        ):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"NEWSFLOW_{name.upper()}={path}: no such file")
        return self

    @field_validator("elasticsearch_fingerprint")
    @classmethod
    def _fingerprint_is_sha256(cls, value: str | None) -> str | None:
        if not value:
            return None
        digits = value.replace(":", "").lower()
        if len(digits) != 64 or set(digits) - set("0123456789abcdef"):
            raise ValueError("give the SHA-256 fingerprint: 64 hex digits, colons allowed")
        return digits


class StackSettings(BaseSettings):
    """The local Kafka + Elasticsearch stack that `newsflow stack` runs without Docker."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSFLOW_STACK_", extra="ignore", env_ignore_empty=True
    )

    dir: Path = Field(Path(".stack"), description="State directory: data, logs, pid files, configs")
    kafka_port: int = Field(9092, description="Kafka client listener port on 127.0.0.1")
    kafka_controller_port: int = Field(9093, description="KRaft controller port on 127.0.0.1")
    kafka_heap: str = Field("1g", description="Kafka JVM heap (-Xmx)")
    es_port: int = Field(9200, description="Elasticsearch HTTP port on 127.0.0.1")
    es_transport_port: int = Field(9300, description="Elasticsearch transport port")
    es_heap: str = Field("1g", description="Elasticsearch JVM heap (-Xms and -Xmx)")
    es_user: str = Field(
        "newsflow",
        description="Unprivileged user that runs Elasticsearch when newsflow runs as root "
        "(created if missing; Elasticsearch refuses to run as root)",
    )
    es_java_home: Path | None = Field(
        None, description="JDK >= 21 for Elasticsearch 9 (default: searched under /usr/lib/jvm)"
    )
    kafka_java_home: Path | None = Field(
        None, description="JDK >= 17 for Kafka 4 (default: the java on PATH, else /usr/lib/jvm)"
    )
    start_timeout: float = Field(180.0, description="Seconds to wait for each service's health")
    secure: bool = Field(
        False,
        description="Run the stack secured: Kafka with SASL_SSL (SCRAM users), Elasticsearch "
        "with its own security, TLS and an API key for newsflow; the client settings are "
        "written to client.env in the stack directory",
    )

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def elasticsearch_url(self) -> str:
        # A secured stack's node speaks TLS on its HTTP port, and only TLS.
        scheme = "https" if self.secure else "http"
        return f"{scheme}://127.0.0.1:{self.es_port}"

    @property
    def demo_state_dir(self) -> Path:
        """The ingest state `newsflow demo` keeps (feed health, seen URLs), emptied at each
        run and kept after it for `newsflow ingest status`."""
        return self.dir / "demo-ingest"


def load(cls: type[S], **overrides: Any) -> S:
    """The settings from the environment (and ``overrides``, from command-line options); a
    value that does not parse is a SetupError naming its variable, not a traceback."""
    try:
        return cls(**overrides)
    except ValidationError as err:
        problems = "; ".join(_problem(cls, e) for e in err.errors())
        raise SetupError(
            f"bad setting: {problems}", "correct or unset it (`newsflow settings` lists them)"
        ) from None


def _problem(cls: type[BaseSettings], error: Any) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    loc = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:  # a check of several settings together: its message names them
        return message
    field = cls.model_fields.get(loc)
    shown = "(hidden)" if field is not None and _is_secret(field.annotation) else error.get("input")
    return f"{prefix}{loc}".upper() + f"={shown!r}: {message}"


def _is_secret(annotation: Any) -> bool:
    from typing import get_args

    return annotation is SecretStr or SecretStr in get_args(annotation)


def secret_fields(cls: type[BaseSettings]) -> set[str]:
    """The fields of ``cls`` that hold secrets (never printed)."""
    return {name for name, f in cls.model_fields.items() if _is_secret(f.annotation)}


def describe(settings: BaseSettings) -> list[tuple[str, Any, str]]:
    """(environment variable, current value, description) for each field, for --help texts."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    rows = []
    for name, field in type(settings).model_fields.items():
        rows.append((f"{prefix}{name}".upper(), getattr(settings, name), field.description or ""))
    return rows


def as_env(settings: BaseSettings) -> dict[str, str]:
    """The settings as the environment variables that give them, for a child process
    (a worker started by a test or a benchmark) that should see the same ones."""
    return {env: env_value(value) for env, value, _ in describe(settings) if value is not None}


def env_value(value: Any) -> str:
    """A setting's value as its environment variable gives it (lists comma-separated; a
    secret as it is, for a child process's environment: never print this)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def env_names(*classes: type[BaseSettings]) -> set[str]:
    """Every environment variable the given settings classes read."""
    names: set[str] = set()
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        names.update(f"{prefix}{name}".upper() for name in cls.model_fields)
    return names
