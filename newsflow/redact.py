"""Secrets never shown: the values of the secret settings, cut out of every text newsflow
writes where others read it (log lines and their tracebacks, dead-letter reasons, error
messages).

The settings hold secrets as ``SecretStr``, so a repr, ``newsflow settings`` or a
validation error never prints them. But a client library may still put one into an
exception's text (a URL with its token, say, in an HTTP error), and the exception's text
goes into a log line or a dead letter's reason. So the command line registers the secret
values of the settings it loaded (``register``), its log handler cuts them out of every
record (``LogFilter``), and dead letters pass their reason through ``text``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from newsflow.settings import secret_fields

MASK = "***"
# Shorter values would cut common words out of messages; no real secret is this short.
SHORTEST = 6

_known: set[str] = set()


def secrets_of(settings: BaseSettings) -> set[str]:
    """The secret values ``settings`` holds: each secret setting's value or, for a URL,
    its path and query (where a webhook's token is) and password."""
    found: set[str] = set()
    for name in secret_fields(type(settings)):
        value = getattr(settings, name)
        if not isinstance(value, SecretStr):
            continue
        secret = value.get_secret_value()
        parts = urlsplit(secret)
        if not (parts.scheme and parts.netloc):
            found.add(secret)
            continue
        # A URL's scheme and host stay readable (where an alert went); what follows them,
        # and a password in it, is the secret.
        found.update((parts.path + (f"?{parts.query}" if parts.query else ""), parts.query))
        if parts.password:
            found.add(parts.password)
    return {s for s in found if len(s) >= SHORTEST}


def register(*settings: BaseSettings) -> None:
    """Remember the secrets of ``settings``, for this process's logs and texts."""
    for s in settings:
        _known.update(secrets_of(s))


def text(value: str) -> str:
    """``value`` with every registered secret replaced by ``***``."""
    return cut(value, _known)


def cut(value: str, secrets: Iterable[str]) -> str:
    """``value`` with each of ``secrets`` replaced by ``***`` (longest first, so that a
    secret containing another is cut whole)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if secret in value:
            value = value.replace(secret, MASK)
    return value


class LogFilter(logging.Filter):
    """On a handler: the record's message, and its traceback, with the secrets cut out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _known:
            return True
        message = record.getMessage()
        cleaned = text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = text(record.exc_text)
        return True
