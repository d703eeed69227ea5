"""robots.txt: what an origin lets us fetch and how slowly, fetched once and cached.

The rules follow RFC 9309. A robots.txt that is missing or forbidden (4xx) allows
everything; one that cannot be reached (5xx, network failure, 429) disallows everything
for a while, because the site may be in trouble and we must not add to it. Parsing and
user-agent matching are protego's, which also reads ``Crawl-delay``.

This module does no I/O of its own: the fetcher passes a loader, so robots.txt is fetched
under the same politeness rules (host spacing, private-address refusal, timeouts) as pages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

# RFC 9309 asks crawlers to parse at least 500 KiB; the rest of a longer file is ignored.
MAX_ROBOTS_BYTES = 512 * 1024


def origin_of(url: str) -> str:
    """scheme://host[:port]: the scope one robots.txt governs (RFC 9309, section 2.3)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{parts.port}" if parts.port else "")


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: "newsflow" for
    "newsflow/0.1 (+https://github.com/newsflow)". Matching the whole header instead would
    let a group for, say, "github" apply to us through the URL in the comment."""
    return user_agent.split("/", 1)[0].split()[0].lower() if user_agent.strip() else "*"


@dataclass(frozen=True)
class RobotsAnswer:
    """What fetching robots.txt produced: an HTTP status and body, or ``status=None`` when
    the origin could not be reached at all (or answered 5xx or 429)."""

    status: int | None
    body: bytes = b""
    problem: str = ""  # why it could not be read, for the errors it causes


@dataclass(frozen=True)
class Robots:
    """The rules of one origin as read at one time."""

    origin: str
    expires_at: float
    unavailable: bool = False  # unreachable: everything disallowed until expires_at
    parser: Protego | None = None  # None and available: everything allowed
    problem: str = ""  # why it is unavailable

    def allows(self, url: str, token: str) -> bool:
        if self.unavailable:
            return False
        return self.parser is None or self.parser.can_fetch(url, token)

    def crawl_delay(self, token: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(token)
        return float(delay) if delay is not None else None


def read_robots(
    origin: str, answer: RobotsAnswer, *, now: float, ttl: float, error_ttl: float
) -> Robots:
    """Turn a fetch outcome into rules, per RFC 9309 section 2.3.1."""
    if answer.status is None or answer.status == 429 or answer.status >= 500:
        problem = answer.problem or f"HTTP {answer.status}"
        return Robots(origin, expires_at=now + error_ttl, unavailable=True, problem=problem)
    if not 200 <= answer.status < 300:  # 4xx, or a redirect chain that went nowhere
        return Robots(origin, expires_at=now + ttl)
    text = answer.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff")
    return Robots(origin, expires_at=now + ttl, parser=Protego.parse(text))


Loader = Callable[[str], Awaitable[RobotsAnswer]]


class RobotsCache:
    """robots.txt per origin, fetched at most once per TTL even when many requests for the
    same origin arrive together (they wait on one fetch instead of each starting one)."""

    def __init__(
        self,
        load: Loader,
        *,
        ttl: float = 86_400.0,
        error_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._error_ttl = error_ttl
        self._clock = clock
        self._rules: dict[str, Robots] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    async def get(self, url: str) -> Robots:
        origin = origin_of(url)
        cached = self._rules.get(origin)
        if cached is not None and cached.expires_at > self._clock():
            return cached
        async with self._locks.setdefault(origin, asyncio.Lock()):
            cached = self._rules.get(origin)  # another task may have loaded it meanwhile
            if cached is not None and cached.expires_at > self._clock():
                return cached
            self.fetches += 1
            answer = await self._load(origin)
            rules = read_robots(
                origin, answer, now=self._clock(), ttl=self._ttl, error_ttl=self._error_ttl
            )
            self._rules[origin] = rules
            return rules
