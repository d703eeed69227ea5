"""Delivering alerts to a user's webhook: a JSON POST per alert, retried with backoff while
the receiver cannot take it, and an outcome the caller dead-letters when it never will.

Delivery is at least once: an alert may be posted twice (a worker crashed after the POST,
before its offset was committed). Each POST carries the alert's id, stable per story and
watch, in the body and in the ``Idempotency-Key`` header, for the receiver to drop a
repeat.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from newsflow.records import Alert

log = logging.getLogger(__name__)

# Answers that may turn into a success: the receiver timed out, asks to slow down, or is
# down or restarting behind a proxy.
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF = 30.0


def shown(url: str) -> str:
    """The URL as logs and dead letters name it: scheme, host and port only. Webhook URLs
    often carry their credential in the path or query (a chat service's incoming hook),
    and a dead letter is read by more people than the one who set it up."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    rest = "/…" if parsed.raw_path not in (b"", b"/") else ""
    return f"{parsed.scheme}://{parsed.host}{port}{rest}"


def url_problem(url: str) -> str | None:
    """What makes ``url`` no address to POST to, or None. Checked before any request:
    httpx raises, rather than answers, for a port out of range or a bad host."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as err:
        return f"the webhook URL is not a URL: {type(err).__name__}"
    if parsed.scheme not in ("http", "https"):
        return f"the webhook URL is not http(s) but {parsed.scheme or 'schemeless'}"
    if not parsed.host:
        return "the webhook URL names no host"
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"the webhook URL's port {parsed.port} is out of range"
    return None


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    reason: str = ""  # why not: what the dead letter says
    refused: bool = False  # the receiver said no (a 4xx): sending again will not help


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    alert: Alert,
    attempts: int,
    *,
    first_backoff: float = 1.0,
    max_backoff: float = MAX_BACKOFF,
) -> Outcome:
    """POST ``alert`` to ``url`` until a 2xx answer, a refusal, or ``attempts`` tries."""
    bad = url_problem(url)
    if bad:
        return Outcome(False, 1, bad, refused=True)
    where = shown(url)
    body = alert.model_dump_json().encode("utf-8")
    headers = {
        "content-type": "application/json",
        "idempotency-key": alert.alert_id,
        "user-agent": "newsflow-webhook",
    }
    delay, reason = first_backoff, ""
    for attempt in range(1, attempts + 1):
        try:
            resp = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as err:  # no answer: refused, reset, timed out, bad URL
            reason = f"no answer from {where}: {type(err).__name__}"
        else:
            if 200 <= resp.status_code < 300:
                return Outcome(True, attempt)
            reason = f"{where} answered {resp.status_code} {resp.reason_phrase}: {resp.text[:300]}"
            if resp.status_code not in RETRYABLE:
                return Outcome(False, attempt, reason, refused=True)
        if attempt < attempts:
            log.warning(
                "webhook: alert %s (%s), attempt %d of %d failed: %s; again in %.0fs",
                alert.alert_id,
                alert.watch,
                attempt,
                attempts,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
    return Outcome(False, attempts, f"gave up after {attempts} attempts: {reason}")
