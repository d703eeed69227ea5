"""When to poll a feed next: pure functions over a persisted ``FeedHealth``.

The interval follows the rate of new items observed, aiming at about
``PollPolicy.target_new_items`` new items per poll, and is then

1. stretched exponentially after consecutive failures (capped at ``max_backoff``),
2. raised to what the publisher asks for: RSS ``<ttl>``, ``sy:updatePeriod``, HTTP
   ``Cache-Control: max-age`` or ``Expires``, and ``Retry-After`` after a failure,
3. spread by a jitter derived from the feed URL (the same every time, different per feed,
   so feeds added together do not poll together), never below the publisher's floor,
4. clamped to ``[min_interval, max_interval]``: a publisher cannot make us poll faster
   than the minimum, nor wait longer than the maximum.

Articles a poll found but could not fetch for a passing reason (a timeout, a 503) stay
``pending`` on the feed: the next polls try them again, even when the feed answers 304,
and a feed with pending articles is polled again within ``retry_interval``.

Nothing here reads a clock: every function takes ``now``. ``FeedHealth`` is a frozen
pydantic model; ``model_dump_json``/``model_validate_json`` persist it across restarts.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_POLICY",
    "FeedHealth",
    "Observation",
    "Pending",
    "PollPolicy",
    "cache_lifetime",
    "is_due",
    "next_interval",
    "update_after_failure",
    "update_after_not_modified",
    "update_after_success",
    "with_pending",
]

MAX_BACKOFF_EXPONENT = 30  # 2**30 is past any cap; a bigger exponent only risks overflow
MAX_HINT = 365 * 86400.0  # a publisher's hint beyond a year is nonsense, not a plan


class PollPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    min_interval: float = Field(60.0, gt=0, description="seconds; never poll faster")
    max_interval: float = Field(6 * 3600.0, gt=0, description="seconds; never wait longer")
    initial_interval: float = Field(900.0, gt=0, description="until a rate can be estimated")
    target_new_items: float = Field(1.5, gt=0, description="new items wanted per poll")
    history_size: int = Field(20, ge=2, description="polls kept to estimate the rate")
    history_horizon: float = Field(7 * 86400.0, gt=0, description="seconds of history kept")
    backoff_base: float = Field(2.0, ge=1)
    max_backoff: float = Field(6 * 3600.0, gt=0, description="seconds; cap of the backoff")
    jitter: float = Field(0.1, ge=0, le=1, description="up to this fraction added")
    link_attempts: int = Field(4, ge=1, description="polls that try a failing article")
    retry_interval: float = Field(600.0, gt=0, description="seconds; sooner if articles pend")

    @model_validator(mode="after")
    def _bounds_in_order(self) -> PollPolicy:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval must not exceed max_interval")
        return self


DEFAULT_POLICY = PollPolicy()


class Observation(BaseModel):
    """One successful poll (a 304 counts, with no new items)."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    new_items: int = Field(ge=0)


class Pending(BaseModel):
    """An article a poll found but could not fetch for a passing reason."""

    model_config = ConfigDict(frozen=True)

    url: str
    title: str | None = None
    published_at: AwareDatetime | None = None
    attempts: int = Field(1, ge=1)
    last_error: str


class FeedHealth(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    etag: str | None = None
    last_modified: str | None = None  # the Last-Modified header, sent back as If-Modified-Since
    last_success: AwareDatetime | None = None
    last_error: str | None = None
    last_error_at: AwareDatetime | None = None
    consecutive_failures: int = Field(0, ge=0)
    items_seen_total: int = Field(0, ge=0)
    recent: tuple[Observation, ...] = ()  # oldest first, bounded by the policy
    # What the publisher last asked for, in seconds (lower bounds of the interval).
    ttl_seconds: float | None = None  # RSS <ttl>, from the last full response
    update_period_seconds: float | None = None  # sy:updatePeriod / sy:updateFrequency
    cache_seconds: float | None = None  # Cache-Control max-age or Expires, last response
    retry_after_seconds: float | None = None  # Retry-After of the last failure
    pending: tuple[Pending, ...] = ()  # articles to try again at the next poll
    next_poll_at: AwareDatetime | None = None


def is_due(health: FeedHealth, now: datetime) -> bool:
    return health.next_poll_at is None or now >= health.next_poll_at


# -- the interval ------------------------------------------------------------------------


def next_interval(history: FeedHealth, now: datetime, policy: PollPolicy = DEFAULT_POLICY) -> float:
    """Seconds from ``now`` to the next poll of the feed (see the module docstring)."""
    interval = _rate_interval(history, now, policy)
    if history.consecutive_failures:
        # Capped, but a failure never brings the next poll closer than success would.
        backoff = interval * _backoff_factor(history, policy)
        interval = max(interval, min(backoff, policy.max_backoff))
    floor = max(_publisher_floors(history), default=0.0)
    interval = max(interval, floor) * _jitter_factor(history.url, policy)
    return min(max(interval, policy.min_interval), policy.max_interval)


def _rate_interval(history: FeedHealth, now: datetime, policy: PollPolicy) -> float:
    """target / rate, the rate measured over the recent polls. The first poll's items are
    the feed's backlog, not items that arrived between polls, so only the later ones
    count; half an item is added so that a quiet feed's interval grows with the quiet
    time instead of jumping to the maximum at once."""
    recent = _within_horizon(history.recent, now, policy)
    if len(recent) < 2:
        return policy.initial_interval
    span = (recent[-1].at - recent[0].at).total_seconds()
    if span <= 0:
        return policy.initial_interval
    arrived = sum(observation.new_items for observation in recent[1:])
    return policy.target_new_items * span / (arrived + 0.5)


def _backoff_factor(history: FeedHealth, policy: PollPolicy) -> float:
    exponent = min(history.consecutive_failures, MAX_BACKOFF_EXPONENT)
    return float(policy.backoff_base**exponent)


def _publisher_floors(history: FeedHealth) -> list[float]:
    floors = [history.ttl_seconds, history.update_period_seconds, history.cache_seconds]
    if history.consecutive_failures:
        floors.append(history.retry_after_seconds)
    return [floor for floor in floors if floor is not None]


def _jitter_factor(url: str, policy: PollPolicy) -> float:
    # A hash, not random(): the same feed gets the same offset across restarts and tests.
    digest = hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest()
    return 1.0 + policy.jitter * (int.from_bytes(digest, "big") / 2**64)


# -- updates -----------------------------------------------------------------------------


def update_after_success(
    health: FeedHealth,
    new_items: int,
    *,
    now: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    cache_control: str | None = None,
    expires: str | None = None,
    ttl_seconds: float | None = None,
    update_period_seconds: float | None = None,
    policy: PollPolicy = DEFAULT_POLICY,
) -> FeedHealth:
    """After a full response (200) that yielded ``new_items`` unseen entries. The
    validators and feed hints are replaced by the response's (absent means gone)."""
    updated = health.model_copy(
        update={
            "etag": etag,
            "last_modified": last_modified,
            "items_seen_total": health.items_seen_total + max(new_items, 0),
            "ttl_seconds": _hint(ttl_seconds),
            "update_period_seconds": _hint(update_period_seconds),
        }
    )
    return _succeeded(updated, max(new_items, 0), now, cache_control, expires, policy)


def update_after_not_modified(
    health: FeedHealth,
    *,
    now: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    cache_control: str | None = None,
    expires: str | None = None,
    policy: PollPolicy = DEFAULT_POLICY,
) -> FeedHealth:
    """After a 304: a successful poll with nothing new. A 304 may carry fresh validators;
    the ones it does not carry stay, and so do the feed's own hints (ttl, updatePeriod)."""
    updated = health.model_copy(
        update={
            "etag": etag if etag is not None else health.etag,
            "last_modified": last_modified if last_modified is not None else health.last_modified,
        }
    )
    return _succeeded(updated, 0, now, cache_control, expires, policy)


def _succeeded(
    health: FeedHealth,
    new_items: int,
    now: datetime,
    cache_control: str | None,
    expires: str | None,
    policy: PollPolicy,
) -> FeedHealth:
    recent = _within_horizon(
        (*health.recent, Observation(at=now, new_items=new_items)), now, policy
    )
    updated = health.model_copy(
        update={
            "last_success": now,
            "consecutive_failures": 0,
            "retry_after_seconds": None,
            "recent": recent[-policy.history_size :],
            "cache_seconds": cache_lifetime(cache_control, expires, now),
        }
    )
    return _scheduled(updated, now, policy)


def update_after_failure(
    health: FeedHealth,
    error: str,
    now: datetime,
    *,
    retry_after: str | None = None,
    policy: PollPolicy = DEFAULT_POLICY,
) -> FeedHealth:
    """After a failed poll (network error, 4xx/5xx, a body that is not a feed).
    ``retry_after`` is the Retry-After header of a 429 or 503, if any."""
    updated = health.model_copy(
        update={
            "last_error": error,
            "last_error_at": now,
            "consecutive_failures": health.consecutive_failures + 1,
            "retry_after_seconds": _retry_after_seconds(retry_after, now),
        }
    )
    return _scheduled(updated, now, policy)


def with_pending(
    health: FeedHealth, pending: tuple[Pending, ...], now: datetime, policy: PollPolicy
) -> FeedHealth:
    """``health`` (already updated for this poll) with the articles still to fetch; with
    any, the next poll comes within ``retry_interval`` (never under ``min_interval``)."""
    updated = health.model_copy(update={"pending": pending})
    if not pending:
        return updated
    soon = now + timedelta(seconds=max(policy.retry_interval, policy.min_interval))
    if updated.next_poll_at is None or updated.next_poll_at > soon:
        updated = updated.model_copy(update={"next_poll_at": soon})
    return updated


def _scheduled(health: FeedHealth, now: datetime, policy: PollPolicy) -> FeedHealth:
    seconds = next_interval(health, now, policy)
    return health.model_copy(update={"next_poll_at": now + timedelta(seconds=seconds)})


def _within_horizon(
    observations: tuple[Observation, ...], now: datetime, policy: PollPolicy
) -> tuple[Observation, ...]:
    oldest = now - timedelta(seconds=policy.history_horizon)
    return tuple(observation for observation in observations if observation.at >= oldest)


# -- HTTP caching headers ----------------------------------------------------------------


def cache_lifetime(cache_control: str | None, expires: str | None, now: datetime) -> float | None:
    """Seconds the response stays fresh: ``max-age`` wins over ``Expires`` (RFC 9111);
    ``no-cache``/``no-store`` and unreadable or past dates give no lower bound."""
    directives = _cache_directives(cache_control or "")
    if "no-store" in directives or "no-cache" in directives:
        return None
    if "max-age" in directives:
        max_age = (directives["max-age"] or "").strip('"')
        return _hint(float(max_age)) if max_age.isdigit() else None
    when = _http_date(expires)
    return _hint((when - now).total_seconds()) if when else None


def _cache_directives(header: str) -> dict[str, str | None]:
    directives: dict[str, str | None] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.lower()] = value or None
    return directives


def _retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After is either delay-seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return _hint(float(value.strip()))
    when = _http_date(value)
    return _hint((when - now).total_seconds()) if when else None


def _hint(seconds: float | None) -> float | None:
    """A publisher's positive, finite hint, at most MAX_HINT; None for anything else."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, MAX_HINT)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)  # HTTP dates are GMT
