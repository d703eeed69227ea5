"""What ingest says about its feeds, as text: pure functions of the saved feed health and
the time, for `newsflow ingest status` and the "not due" lines of `ingest feeds --once`.

Times are shown to the second in UTC with how long ago (or until) they are, which is what
a reader checks first: ``2026-12-01 18:31:05 UTC (3 min ago)``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.schedule import FeedHealth


def span(seconds: float) -> str:
    """A duration, rounded to its largest unit: ``45 s``, ``31 min``, ``2 h 5 min``."""
    s = round(abs(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    if s < 86400:
        hours, minutes = divmod(round(s / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, rest = divmod(s, 86400)
    hours = round(rest / 3600)
    return f"{days} d {hours} h" if hours else f"{days} d"


def relative(moment: datetime, now: datetime) -> str:
    """``3 min ago``, ``in 31 min``, ``now``."""
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    return f"in {span(seconds)}" if seconds > 0 else f"{span(seconds)} ago"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(moment: datetime | None, now: datetime, never: str = "now") -> str:
    """``2026-12-01 18:31:05 UTC (3 min ago)``; ``never`` when there is no time."""
    if moment is None:
        return never
    return f"{stamp(moment)} ({relative(moment, now)})"


def failures(health: FeedHealth) -> str:
    """``2 failures, last: timeout: ...``, or ``ok``."""
    n = health.consecutive_failures
    if not n:
        return "ok"
    return f"{n} failure{'s' if n != 1 else ''}, last: {health.last_error}"


def not_due_line(health: FeedHealth, now: datetime) -> str:
    """``not due: URL: next poll at 18:31:05 UTC (in 31 min; 2 failures, last: ...)``."""
    at = health.next_poll_at
    if at is None:  # due: callers list only what is not
        return f"not due: {health.url}"
    day = "" if at.astimezone(UTC).date() == now.astimezone(UTC).date() else "%Y-%m-%d "
    why = f"; {failures(health)}" if health.consecutive_failures else ""
    pending = f"; {len(health.pending)} article(s) to try again" if health.pending else ""
    moment = at.astimezone(UTC).strftime(f"{day}%H:%M:%S UTC")
    return f"not due: {health.url}: next poll at {moment} ({relative(at, now)}{why}{pending})"


def status_lines(health: FeedHealth, now: datetime) -> list[str]:
    """A feed's entry in `ingest status`."""
    lines = [
        health.url,
        f"    last success {when(health.last_success, now, never='never')}; "
        f"{health.items_seen_total} items",
        f"    next poll {when(health.next_poll_at, now)}; {failures(health)}",
    ]
    lines += [
        f"    pending ({p.attempts} attempt(s)): {p.url}: {p.last_error}" for p in health.pending
    ]
    return lines
