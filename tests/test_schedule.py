"""ingest.schedule: properties of the interval (bounds, backoff) with hypothesis, and one
unit test per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.schedule import (
    DEFAULT_POLICY,
    FeedHealth,
    Observation,
    Pending,
    PollPolicy,
    cache_lifetime,
    is_due,
    next_interval,
    update_after_failure,
    update_after_not_modified,
    update_after_success,
    with_pending,
)

NOW = datetime(2026, 3, 13, 12, 0, tzinfo=UTC)
URL = "https://news.example/feed.xml"
# A policy without jitter, so the unit tests can state exact numbers.
EXACT = PollPolicy(jitter=0.0)


def polled(every: timedelta, new_items: list[int], url: str = URL) -> FeedHealth:
    """A feed polled at a steady pace, the last poll at NOW."""
    start = NOW - every * (len(new_items) - 1)
    recent = tuple(Observation(at=start + every * i, new_items=n) for i, n in enumerate(new_items))
    return FeedHealth(url=url, recent=recent, last_success=NOW)


# -- properties --------------------------------------------------------------------------

seconds = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False)
hints = st.none() | seconds


@st.composite
def policies(draw: st.DrawFn) -> PollPolicy:
    low = draw(st.floats(min_value=1, max_value=86400))
    high = draw(st.floats(min_value=low, max_value=30 * 86400))
    return PollPolicy(
        min_interval=low,
        max_interval=high,
        target_new_items=draw(st.floats(min_value=0.1, max_value=100)),
        backoff_base=draw(st.floats(min_value=1, max_value=10)),
        max_backoff=draw(st.floats(min_value=1, max_value=30 * 86400)),
        jitter=draw(st.floats(min_value=0, max_value=1)),
    )


@st.composite
def healths(draw: st.DrawFn) -> FeedHealth:
    gaps = draw(st.lists(st.floats(min_value=0, max_value=86400), max_size=25))
    counts = draw(st.lists(st.integers(0, 10_000), min_size=len(gaps), max_size=len(gaps)))
    at = NOW - timedelta(seconds=sum(gaps))
    recent = []
    for gap, count in zip(gaps, counts, strict=True):
        at += timedelta(seconds=gap)
        recent.append(Observation(at=at, new_items=count))
    return FeedHealth(
        url=draw(st.text(max_size=40)),
        recent=tuple(recent),
        consecutive_failures=draw(st.integers(0, 10_000)),
        ttl_seconds=draw(hints),
        update_period_seconds=draw(hints),
        cache_seconds=draw(hints),
        retry_after_seconds=draw(hints),
    )


@given(healths(), policies())
def test_interval_is_always_within_bounds(health: FeedHealth, policy: PollPolicy) -> None:
    interval = next_interval(health, NOW, policy)
    assert policy.min_interval <= interval <= policy.max_interval


@given(healths(), policies(), st.integers(0, 200))
def test_backoff_is_monotone_in_failures(
    health: FeedHealth, policy: PollPolicy, failures: int
) -> None:
    fewer = health.model_copy(update={"consecutive_failures": failures})
    more = health.model_copy(update={"consecutive_failures": failures + 1})
    assert next_interval(fewer, NOW, policy) <= next_interval(more, NOW, policy)


@given(st.integers(0, 10_000))
def test_backoff_is_capped(failures: int) -> None:
    policy = PollPolicy(jitter=0.0, max_interval=86400, max_backoff=3600)
    health = polled(timedelta(minutes=1), [5] * 5).model_copy(
        update={"consecutive_failures": failures}
    )
    assert next_interval(health, NOW, policy) <= 3600


# -- the rate ----------------------------------------------------------------------------


def test_without_history_the_initial_interval() -> None:
    assert next_interval(FeedHealth(url=URL), NOW, EXACT) == EXACT.initial_interval
    one_poll = polled(timedelta(minutes=5), [40])
    assert next_interval(one_poll, NOW, EXACT) == EXACT.initial_interval


def test_aims_at_the_target_number_of_new_items_per_poll() -> None:
    # 3 new items every 10 minutes after the first poll: 27 in 90 minutes.
    health = polled(timedelta(minutes=10), [3] * 10)
    expected = EXACT.target_new_items * 90 * 60 / (27 + 0.5)
    assert next_interval(health, NOW, EXACT) == pytest.approx(expected)


def test_the_first_polls_backlog_does_not_count() -> None:
    quiet = polled(timedelta(hours=1), [0, 0, 0])
    backlog = polled(timedelta(hours=1), [500, 0, 0])
    assert next_interval(backlog, NOW, EXACT) == next_interval(quiet, NOW, EXACT)


def test_busy_feeds_poll_at_the_minimum_and_quiet_ones_slow_down_to_the_maximum() -> None:
    assert next_interval(polled(timedelta(minutes=1), [50] * 5), NOW, EXACT) == 60
    quiet = [next_interval(polled(timedelta(hours=1), [0] * n), NOW, EXACT) for n in (2, 3, 4)]
    assert quiet == sorted(quiet) and quiet[0] < EXACT.max_interval
    assert next_interval(polled(timedelta(hours=6), [0] * 10), NOW, EXACT) == 6 * 3600


def test_history_beyond_the_horizon_is_ignored() -> None:
    old = polled(timedelta(days=8), [0, 0, 0, 0])  # all but the last poll over 7 days ago
    assert next_interval(old, NOW, EXACT) == EXACT.initial_interval


# -- publishers' hints, jitter -----------------------------------------------------------


@pytest.mark.parametrize("hint", ["ttl_seconds", "update_period_seconds", "cache_seconds"], ids=str)
def test_publisher_hints_are_lower_bounds_but_never_above_the_maximum(hint: str) -> None:
    busy = polled(timedelta(minutes=1), [50] * 5)
    assert next_interval(busy.model_copy(update={hint: 1800.0}), NOW, EXACT) == 1800
    assert next_interval(busy.model_copy(update={hint: 86400.0}), NOW, EXACT) == 6 * 3600
    assert next_interval(busy.model_copy(update={hint: 1.0}), NOW, EXACT) == 60


def test_retry_after_counts_only_while_failing() -> None:
    busy = polled(timedelta(minutes=1), [50] * 5).model_copy(update={"retry_after_seconds": 7200.0})
    assert next_interval(busy, NOW, EXACT) == 60
    failing = busy.model_copy(update={"consecutive_failures": 1})
    assert next_interval(failing, NOW, EXACT) == 7200


def test_jitter_is_deterministic_per_url_and_only_lengthens() -> None:
    policy = PollPolicy(jitter=0.2)
    intervals = {
        url: next_interval(FeedHealth(url=url), NOW, policy)
        for url in (f"https://site{i}.example/feed" for i in range(50))
    }
    assert len(set(intervals.values())) == 50
    assert all(900 <= v <= 900 * 1.2 for v in intervals.values())
    assert next_interval(FeedHealth(url=URL), NOW, policy) == next_interval(
        FeedHealth(url=URL), NOW, policy
    )


def test_exponential_backoff() -> None:
    health = polled(timedelta(minutes=10), [1] * 10)
    base = next_interval(health, NOW, EXACT)
    backed_off = [
        next_interval(health.model_copy(update={"consecutive_failures": n}), NOW, EXACT)
        for n in range(1, 4)
    ]
    assert backed_off == pytest.approx([base * 2, base * 4, base * 8])


# -- HTTP caching headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "expires", "seconds"),
    [
        ("public, max-age=300", None, 300),
        ('max-age="120"', None, 120),
        ("max-age=300", "Fri, 13 Mar 2026 14:00:00 GMT", 300),  # max-age wins
        (None, "Fri, 13 Mar 2026 14:00:00 GMT", 7200),
        (None, "Fri, 13 Mar 2026 11:00:00 GMT", None),  # already expired
        (None, "0", None),
        ("no-cache, max-age=300", None, None),
        ("no-store", "Fri, 13 Mar 2026 14:00:00 GMT", None),
        ("max-age=0", None, None),
        ("max-age=soon", None, None),
        ("max-age=99999999999", None, 365 * 86400),  # absurd hints are capped
        (None, None, None),
    ],
)
def test_cache_lifetime(cache_control: str | None, expires: str | None, seconds: float) -> None:
    assert cache_lifetime(cache_control, expires, NOW) == seconds


# -- updates -----------------------------------------------------------------------------


def test_success_records_the_poll_and_schedules_the_next() -> None:
    health = FeedHealth(url=URL, consecutive_failures=3, last_error="timeout", etag='"old"')
    health = health.model_copy(update={"retry_after_seconds": 600.0})
    after = update_after_success(
        health,
        20,
        now=NOW,
        etag='"v2"',
        last_modified="Fri, 13 Mar 2026 11:00:00 GMT",
        cache_control="max-age=1200",
        ttl_seconds=600,
        policy=EXACT,
    )
    assert (after.consecutive_failures, after.etag, after.items_seen_total) == (0, '"v2"', 20)
    assert after.last_modified == "Fri, 13 Mar 2026 11:00:00 GMT"
    assert (after.last_success, after.recent) == (NOW, (Observation(at=NOW, new_items=20),))
    assert (after.ttl_seconds, after.cache_seconds, after.retry_after_seconds) == (600, 1200, None)
    assert after.last_error == "timeout"  # kept, for the record
    # No rate yet (initial 900 s), ttl 600 s, max-age 1200 s: the highest floor wins.
    assert after.next_poll_at == NOW + timedelta(seconds=1200)
    assert health.consecutive_failures == 3  # the input is unchanged


def test_success_without_validators_forgets_the_old_ones() -> None:
    health = FeedHealth(url=URL, etag='"old"', last_modified="yesterday")
    after = update_after_success(health, 0, now=NOW)
    assert (after.etag, after.last_modified) == (None, None)


def test_history_is_bounded() -> None:
    policy = PollPolicy(history_size=5)
    health = FeedHealth(url=URL)
    for minute in range(12):
        health = update_after_success(health, 1, now=NOW + timedelta(minutes=minute), policy=policy)
    assert len(health.recent) == 5
    assert health.recent[-1].at == NOW + timedelta(minutes=11)
    assert health.items_seen_total == 12


def test_not_modified_is_a_quiet_success() -> None:
    health = update_after_success(
        FeedHealth(url=URL), 10, now=NOW, etag='"a"', last_modified="lm", ttl_seconds=900
    )
    health = update_after_failure(health, "HTTP 503", NOW + timedelta(minutes=5))
    later = NOW + timedelta(minutes=30)
    after = update_after_not_modified(health, now=later, cache_control="max-age=60")
    assert (after.etag, after.last_modified, after.ttl_seconds) == ('"a"', "lm", 900)
    assert (after.consecutive_failures, after.items_seen_total) == (0, 10)
    assert after.recent[-1] == Observation(at=later, new_items=0)
    assert after.cache_seconds == 60
    assert update_after_not_modified(health, now=later, etag='"b"').etag == '"b"'


def test_failure_backs_off_and_honours_retry_after() -> None:
    health = polled(timedelta(minutes=10), [1] * 10)
    first = update_after_failure(health, "timeout", NOW, policy=EXACT)
    second = update_after_failure(first, "timeout", NOW, policy=EXACT)
    assert (second.consecutive_failures, second.last_error, second.last_error_at) == (
        2,
        "timeout",
        NOW,
    )
    assert second.recent == health.recent
    assert first.next_poll_at is not None and second.next_poll_at is not None
    assert NOW < first.next_poll_at < second.next_poll_at
    limited = update_after_failure(health, "HTTP 429", NOW, retry_after="5400", policy=EXACT)
    assert limited.next_poll_at == NOW + timedelta(seconds=5400)
    dated = update_after_failure(
        health, "HTTP 503", NOW, retry_after="Fri, 13 Mar 2026 15:00:00 GMT", policy=EXACT
    )
    assert dated.next_poll_at == NOW + timedelta(hours=3)


def test_health_survives_a_restart_as_json() -> None:
    health = update_after_success(FeedHealth(url=URL), 3, now=NOW, etag='"x"', ttl_seconds=60)
    health = update_after_failure(health, "DNS failure", NOW + timedelta(hours=1))
    assert FeedHealth.model_validate_json(health.model_dump_json()) == health


def test_is_due() -> None:
    assert is_due(FeedHealth(url=URL), NOW)
    scheduled = update_after_success(FeedHealth(url=URL), 1, now=NOW)
    assert not is_due(scheduled, NOW)
    assert scheduled.next_poll_at is not None and is_due(scheduled, scheduled.next_poll_at)


def test_policy_bounds_must_be_in_order() -> None:
    with pytest.raises(ValueError, match="min_interval"):
        PollPolicy(min_interval=600, max_interval=60)
    assert DEFAULT_POLICY.min_interval == 60 and DEFAULT_POLICY.max_interval == 6 * 3600


def test_pending_articles_bring_the_next_poll_closer_but_not_under_the_minimum() -> None:
    policy = PollPolicy(jitter=0.0, retry_interval=600.0, min_interval=60.0)
    quiet = update_after_success(polled(timedelta(hours=2), [3, 0, 0]), 0, now=NOW, policy=policy)
    assert quiet.next_poll_at is not None and quiet.next_poll_at > NOW + timedelta(hours=1)
    waiting = (Pending(url="https://news.example/a", last_error="timeout: ReadTimeout"),)

    sooner = with_pending(quiet, waiting, NOW, policy)
    assert sooner.pending == waiting
    assert sooner.next_poll_at == NOW + timedelta(seconds=600)
    # Nothing pending: the schedule is left alone.
    assert with_pending(quiet, (), NOW, policy).next_poll_at == quiet.next_poll_at
    # A poll already due sooner is not pushed back.
    busy = quiet.model_copy(update={"next_poll_at": NOW + timedelta(seconds=90)})
    assert with_pending(busy, waiting, NOW, policy).next_poll_at == busy.next_poll_at
    # The retry interval never undercuts the minimum interval.
    strict = PollPolicy(jitter=0.0, retry_interval=10.0, min_interval=300.0)
    assert with_pending(quiet, waiting, NOW, strict).next_poll_at == NOW + timedelta(seconds=300)
    # Pending articles survive a restart with the rest of the health.
    assert FeedHealth.model_validate_json(sooner.model_dump_json()) == sooner
