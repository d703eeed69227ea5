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
            reason = f"no answer from {url}: {type(err).__name__}: {err}"
            if isinstance(err, httpx.UnsupportedProtocol | httpx.InvalidURL):
                return Outcome(False, attempt, reason, refused=True)
        else:
            if 200 <= resp.status_code < 300:
                return Outcome(True, attempt)
            reason = f"{url} answered {resp.status_code} {resp.reason_phrase}: {resp.text[:300]}"
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
