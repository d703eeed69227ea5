"""Every connection newsflow makes to Kafka and Elasticsearch is built here, from Settings.

One place turns the security settings (TLS, SASL, API keys, certificate checks) into each
client library's options, so that no client is made without them: kafka-python (ingest,
topic admin, the audit, dead letters, watches), aiokafka (the worker's own followers of
compacted topics), Faust (the worker's consumer and producer, through aiokafka) and the
official Elasticsearch clients. Nothing else in the code base reads those settings, and
nothing else calls a client's constructor (tests/test_connections.py checks both).

One TLS context serves kafka-python, aiokafka and Faust alike, so a CA file, a client
certificate or ``NEWSFLOW_KAFKA_SSL_CHECK_HOSTNAME`` means the same to all three.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from newsflow.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch, Elasticsearch
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer


def kafka_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of Kafka connections, or None for a plaintext protocol."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile and settings.kafka_ssl_keyfile:
        password = settings.kafka_ssl_key_password
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile),
            password.get_secret_value() if password else None,
        )
    return context


def _sasl(settings: Settings) -> dict[str, Any]:
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return {}
    password = settings.kafka_sasl_password
    return {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": password.get_secret_value() if password else None,
    }


def kafka_options(settings: Settings) -> dict[str, Any]:
    """kafka-python's options (bootstrap servers included); aiokafka takes the same."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
        **_sasl(settings),
    }
    context = kafka_tls(settings)
    if context is not None:
        options["ssl_context"] = context
    return options


def kafka_producer(settings: Settings, **options: Any) -> KafkaProducer:
    from kafka import KafkaProducer

    return KafkaProducer(**kafka_options(settings), **options)


def kafka_consumer(settings: Settings, *topics: str, **options: Any) -> KafkaConsumer:
    from kafka import KafkaConsumer

    return KafkaConsumer(*topics, **kafka_options(settings), **options)


def kafka_admin(settings: Settings, **options: Any) -> KafkaAdminClient:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**kafka_options(settings), **options)


def aiokafka_consumer(settings: Settings, *topics: str, **options: Any) -> Any:
    """An aiokafka consumer (aiokafka takes kafka-python's names for every option set here)."""
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

    return AIOKafkaConsumer(*topics, **kafka_options(settings), **options)


def faust_broker(settings: Settings) -> dict[str, Any]:
    """The Faust App's broker options: its URL, and credentials for a secured broker."""
    import faust

    options: dict[str, Any] = {"broker": f"kafka://{settings.kafka_bootstrap}"}
    context = kafka_tls(settings)
    sasl = _sasl(settings)
    if sasl:
        options["broker_credentials"] = faust.SASLCredentials(
            username=sasl["sasl_plain_username"],
            password=sasl["sasl_plain_password"],
            mechanism=sasl["sasl_mechanism"],
            ssl_context=context,  # None: SASL_PLAINTEXT, as Faust infers from it
        )
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options


def elasticsearch_options(settings: Settings) -> dict[str, Any]:
    """The Elasticsearch clients' options: the node's URL, credentials, certificate checks."""
    options: dict[str, Any] = {"hosts": settings.elasticsearch_url}
    if settings.elasticsearch_api_key:
        options["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username and settings.elasticsearch_password:
        options["basic_auth"] = (
            settings.elasticsearch_username,
            settings.elasticsearch_password.get_secret_value(),
        )
    if settings.elasticsearch_url.startswith("https:"):
        if settings.elasticsearch_fingerprint:
            options["ssl_assert_fingerprint"] = settings.elasticsearch_fingerprint
        elif settings.elasticsearch_ca_file:
            options["ca_certs"] = str(settings.elasticsearch_ca_file)
        if not settings.elasticsearch_verify_certs:
            options["verify_certs"] = False
            options["ssl_show_warn"] = False  # the setting's description is the warning
    return options


def elasticsearch(settings: Settings, **options: Any) -> Elasticsearch:
    from elasticsearch import Elasticsearch

    return Elasticsearch(**elasticsearch_options(settings), **options)


def async_elasticsearch(settings: Settings, **options: Any) -> AsyncElasticsearch:
    from elasticsearch import AsyncElasticsearch

    return AsyncElasticsearch(**elasticsearch_options(settings), **options)
