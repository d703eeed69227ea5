"""The polite fetcher: HTTP GETs done the way a guest should, one ``Fetcher`` per process.

Per hop (the first URL and every redirect target) the fetcher checks, in this order: the
URL is absolute http(s); its host resolves only to public addresses (so a hostile DNS
answer cannot point us at 127.0.0.1 or the cloud metadata service); robots.txt allows it.
Then it waits for the host's turn: at most ``per_host_concurrency`` requests at once, their
starts spaced by max(min_delay, Crawl-delay), while other hosts go on in parallel.

Errors are values. ``fetch`` returns ``Fetched`` or ``FetchError`` and never raises for a
network, HTTP or content problem. ``FetchError.reason`` is one of these stable codes
(transient ones are worth trying again later; ``retry_after`` says when, if known):

    invalid-url          not an absolute http(s) URL
    private-address      host resolves to a loopback/private/link-local/... address
    dns-failed           host does not resolve                                (transient)
    robots-disallowed    robots.txt forbids the path to our product token
    robots-unavailable   robots.txt unreachable, so everything is disallowed  (transient)
    connect-failed       TCP or TLS connection failed                         (transient)
    network-error        connection broke during the exchange                 (transient)
    timeout              connect, read or total timeout                       (transient)
    http-429             still rate limited after the retries, or Retry-After
                         beyond max_retry_after_seconds                       (transient)
    http-5xx-exhausted   server errors on every attempt                       (transient)
    http-<status>        any other answer but 200/304: http-404, http-410, http-403 ...
    redirect-loop        a redirect back to a URL already in the chain
    too-many-redirects   more than max_redirects in a row
    bad-redirect         a 3xx without a Location
    bad-content-type     a Content-Type the caller did not ask for (body not read)
    too-large            body longer than max_body_bytes (declared, or seen while streaming)
    decoding-error       a Content-Encoding that does not decode
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import httpx

from ingest.robots import MAX_ROBOTS_BYTES, Robots, RobotsAnswer, RobotsCache, product_token

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "newsflow/0.1 (+https://github.com/newsflow)"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain"})
FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml"}
    | {"application/xml", "text/xml"}
)
SITEMAP_TYPES = frozenset(
    {"application/xml", "text/xml", "text/plain", "application/gzip", "application/x-gzip"}
)
# The response headers a RawPage keeps: validators for the next conditional GET, freshness
# hints for scheduling, and the declared language.
KEPT_HEADERS = (
    "content-type",
    "etag",
    "last-modified",
    "cache-control",
    "expires",
    "content-language",
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class FetchPolicy:
    user_agent: str = DEFAULT_USER_AGENT
    per_host_concurrency: int = 2
    min_delay_seconds: float = 1.0  # between request starts on one host; Crawl-delay raises it
    max_crawl_delay_seconds: float = 60.0  # a Crawl-delay of hours would stall the host
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 20.0  # longest silence while waiting for bytes
    total_timeout_seconds: float = 60.0  # one attempt, first byte sent to last byte read
    max_body_bytes: int = 5_000_000
    content_types: frozenset[str] = HTML_TYPES  # fetch(accept=...) overrides it per call
    max_redirects: int = 5
    retries: int = 3  # further attempts after a 429 or 5xx
    backoff_seconds: float = 1.0  # doubled per attempt when there is no Retry-After
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0  # a longer Retry-After ends the fetch instead
    robots_ttl_seconds: float = 86_400.0
    robots_error_ttl_seconds: float = 600.0  # how long an unreachable robots.txt disallows
    allow_private_addresses: bool = False
    max_connections: int = 100

    def __post_init__(self) -> None:
        if self.per_host_concurrency < 1 or self.max_redirects < 0 or self.retries < 0:
            raise ValueError("per_host_concurrency >= 1, max_redirects >= 0, retries >= 0")


@dataclass(frozen=True)
class Fetched:
    url: str  # final URL, after redirects
    status: int  # 200, or 304 for a conditional GET whose validators still match
    headers: dict[str, str]  # only KEPT_HEADERS, lower-case names
    body: bytes  # exactly as served (Content-Encoding undone); empty for 304
    encoding: str | None  # charset from the Content-Type header, if any
    elapsed: float  # seconds for the whole fetch, politeness waits and retries included
    redirects: tuple[str, ...] = ()  # the URLs that redirected, in order

    @property
    def content_type(self) -> str:
        return _media_type(self.headers.get("content-type", ""))


@dataclass(frozen=True)
class FetchError:
    url: str  # the URL passed to fetch(); detail names the redirect target if it failed there
    reason: str  # a stable code, see the module docstring
    detail: str = ""
    retry_after: float | None = None
    transient: bool = False
    status: int | None = None  # the HTTP status, when an answer came


@dataclass
class FetchStats:
    """Counters for monitoring; read them with snapshot()."""

    requests: Counter[str] = field(default_factory=Counter)  # per host:port, retries included
    bytes: Counter[str] = field(default_factory=Counter)  # downloaded, per host:port
    errors: Counter[str] = field(default_factory=Counter)  # failed fetch() calls, per reason
    fetched: int = 0
    not_modified: int = 0
    retries: int = 0
    robots_fetches: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "bytes": dict(self.bytes),
            "errors": dict(self.errors),
            "fetched": self.fetched,
            "not_modified": self.not_modified,
            "retries": self.retries,
            "robots_fetches": self.robots_fetches,
        }


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified IPs."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    # is_global alone lets multicast through (224.0.0.1 counts as global).
    return ip.is_global and not ip.is_multicast


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates come back naive; HTTP dates are always GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def host_key(url: str) -> str:
    """host:port, the unit of politeness (two ports on one machine are two servers)."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    return f"{(parts.hostname or '').lower()}:{port}"


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _url_problem(url: str) -> str | None:
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "white space or control characters in the URL"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number in range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as err:
        return str(err)
    if parts.scheme.lower() not in DEFAULT_PORTS:
        return f"scheme {parts.scheme!r} is not http or https"
    if not parts.hostname:
        return "no host"
    return None


class _HostGate:
    """One host's turn-taking: a semaphore caps parallel requests and each start is
    reserved at least ``delay`` after the previous one, so spacing holds whatever the
    concurrency. ``defer`` pushes every later start back (after a 429 or 5xx)."""

    def __init__(self, concurrency: int, delay: float) -> None:
        self.delay = delay
        self._semaphore = asyncio.Semaphore(concurrency)
        self._last_start = float("-inf")
        self._last_sent = float("-inf")
        self._not_before = 0.0
        # asyncio locks wake their waiters in order: requests go in the order they came.
        self._start_order, self._send_order = asyncio.Lock(), asyncio.Lock()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            async with self._start_order:  # first come, first served
                self._last_start = await _turn(
                    lambda: max(self._last_start + self.delay, self._not_before)
                )
            yield

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook. The slot above spaces the starts, but a start is not an
        arrival: a new (TLS) connection can take longer than a reused one, which would
        bring the next request closer than the delay. So the delay is also kept between
        the moments request headers actually go out; this wait is short (the difference
        in connect times), so the fresh connection does not sit idle long."""
        if event.endswith("send_request_headers.started"):
            async with self._send_order:
                self._last_sent = await _turn(lambda: self._last_sent + self.delay)

    def defer(self, seconds: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + seconds)


async def _turn(earliest: Callable[[], float]) -> float:
    """Wait until ``earliest()`` (re-read after every sleep) has passed; return the time.

    Nothing is reserved ahead: when the event loop is held up past several waiters'
    times (a slow callback, a blocked thread), a reservation made before the delay would
    let them all go at once; re-reading the last actual time keeps them apart."""
    while True:
        now = time.monotonic()
        wait = earliest() - now
        if wait <= 0:
            return now
        await asyncio.sleep(wait)


@dataclass(frozen=True)
class _Want:
    """How one fetch is to be done (pages and robots.txt differ)."""

    headers: dict[str, str]
    types: frozenset[str] | None  # None: any content type
    max_bytes: int
    truncate: bool  # keep the first max_bytes instead of failing with too-large
    robots: bool  # check robots.txt first
    retries: int
    max_retry_after: float  # a longer Retry-After ends the fetch (the caller reschedules)


@dataclass(frozen=True)
class _Redirect:
    location: str


@dataclass(frozen=True)
class _Retry:
    status: int
    retry_after: float | None


Outcome = Fetched | FetchError | _Redirect


class Fetcher:
    """``async with Fetcher(policy) as fetcher: await fetcher.fetch(url)``. One per
    process: politeness state and robots.txt rules live in it."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolve: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """resolve(host, port) -> IP addresses is what the private-address check asks;
        the system resolver by default. ``transport`` carries the requests: httpx's
        network transport by default; tests route every host to a loopback server with
        it, so real feeds keep their real links."""
        self.policy = policy or FetchPolicy()
        self._resolve = resolve or system_resolve
        self._transport = transport
        self.stats = FetchStats()
        self._token = product_token(self.policy.user_agent)
        self._gates: dict[str, _HostGate] = {}
        self._robots = RobotsCache(
            self._load_robots,
            ttl=self.policy.robots_ttl_seconds,
            error_ttl=self.policy.robots_error_ttl_seconds,
        )
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        p = self.policy
        self._client = httpx.AsyncClient(
            headers={"User-Agent": p.user_agent},
            timeout=httpx.Timeout(
                connect=p.connect_timeout_seconds,
                read=p.read_timeout_seconds,
                write=p.read_timeout_seconds,
                pool=None,  # waiting for a free connection is bounded by the total timeout
            ),
            limits=httpx.Limits(max_connections=p.max_connections),
            transport=self._transport,
            follow_redirects=False,  # every hop goes through the checks in _hop
            # An environment proxy would resolve hosts itself, past our address check.
            trust_env=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("use the Fetcher as `async with Fetcher(policy) as fetcher`")
        return self._client

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: Collection[str] | None = None,
        max_retry_after: float | None = None,
    ) -> Fetched | FetchError:
        """GET url politely. etag/last_modified (from an earlier Fetched) make it a
        conditional GET that may answer 304; accept lists the media types wanted
        (default: policy.content_types; e.g. FEED_TYPES for a feed); max_retry_after
        lowers policy.max_retry_after_seconds for a caller with its own schedule."""
        types = self.policy.content_types if accept is None else frozenset(accept)
        headers = {"Accept": ", ".join(sorted(types))}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        longest = self.policy.max_retry_after_seconds
        if max_retry_after is not None:
            longest = min(longest, max_retry_after)
        want = _Want(
            headers, types, self.policy.max_body_bytes, False, True, self.policy.retries, longest
        )
        started = time.monotonic()
        result = await self._follow(url, want)
        return self._finish(url, result, time.monotonic() - started)

    def _finish(
        self, url: str, result: Fetched | FetchError, elapsed: float
    ) -> Fetched | FetchError:
        if isinstance(result, Fetched):
            self.stats.fetched += result.status == 200
            self.stats.not_modified += result.status == 304
            return replace(result, elapsed=elapsed)
        self.stats.errors[result.reason] += 1
        if result.url != url:
            result = replace(result, url=url, detail=f"at {result.url}: {result.detail}")
        # DEBUG: the caller logs the failure once, with where the URL came from (a list's
        # line, a feed); a second line here would say the same thing without it.
        logger.debug("fetch failed: %s: %s (%s)", url, result.reason, result.detail)
        return result

    async def _follow(self, url: str, want: _Want) -> Fetched | FetchError:
        chain: list[str] = []
        current = url
        while True:
            outcome = await self._hop(current, want)
            if isinstance(outcome, Fetched):
                return replace(outcome, redirects=tuple(chain))
            if isinstance(outcome, FetchError):
                return outcome
            chain.append(current)
            target = urljoin(current, outcome.location).split("#", 1)[0]
            if target in chain:
                return FetchError(target, "redirect-loop", " -> ".join([*chain, target]))
            if len(chain) > self.policy.max_redirects:
                detail = f"more than {self.policy.max_redirects} redirects: {' -> '.join(chain)}"
                return FetchError(current, "too-many-redirects", detail)
            current = target

    async def _hop(self, url: str, want: _Want) -> Outcome:
        refused = _check_url(url) or await self._check_address(url)
        if refused is None and want.robots:
            refused = await self._check_robots(url)
        if refused is not None:
            return refused
        gate = self._gate(url)
        attempt = 0
        while True:
            outcome = await self._attempt(url, want, gate)
            if not isinstance(outcome, _Retry):
                return outcome
            wait = self._retry_wait(outcome, attempt, want.max_retry_after)
            if wait is None or attempt >= want.retries:
                return _exhausted(url, outcome, attempt + 1)
            self.stats.retries += 1
            gate.defer(wait)  # the whole host waits, not just this request
            attempt += 1

    def _retry_wait(self, retry: _Retry, attempt: int, longest: float) -> float | None:
        """Seconds before the next attempt, or None when Retry-After asks for too long."""
        if retry.retry_after is not None:
            if retry.retry_after > longest:
                return None
            return retry.retry_after
        return min(self.policy.backoff_seconds * 2.0**attempt, self.policy.max_backoff_seconds)

    async def _attempt(self, url: str, want: _Want, gate: _HostGate) -> Outcome | _Retry:
        host = host_key(url)
        async with gate.slot():
            self.stats.requests[host] += 1
            try:
                async with (
                    asyncio.timeout(self.policy.total_timeout_seconds),
                    self._http.stream(
                        "GET", url, headers=want.headers, extensions={"trace": gate.trace}
                    ) as response,
                ):
                    try:
                        return await self._read(url, response, want)
                    finally:
                        self.stats.bytes[host] += response.num_bytes_downloaded
            except TimeoutError:
                detail = f"no complete answer within {self.policy.total_timeout_seconds}s"
                return FetchError(url, "timeout", detail, transient=True)
            except httpx.InvalidURL as err:
                return FetchError(url, "invalid-url", str(err))
            except httpx.HTTPError as err:
                return _transport_error(url, err)

    async def _read(self, url: str, response: httpx.Response, want: _Want) -> Outcome | _Retry:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            location = response.headers.get("location")
            if location:
                return _Redirect(location)
            return FetchError(url, "bad-redirect", f"{status} without Location", status=status)
        if status == 429 or status >= 500:
            return _Retry(status, parse_retry_after(response.headers.get("retry-after")))
        if status == 304:
            return _fetched(url, response, b"")
        if status != 200:
            return FetchError(url, f"http-{status}", response.reason_phrase, status=status)
        refused = _check_type(url, response, want.types) or _check_length(url, response, want)
        if refused is not None:
            return refused
        body = await _read_body(url, response, want)
        return body if isinstance(body, FetchError) else _fetched(url, response, body)

    async def _check_address(self, url: str) -> FetchError | None:
        if self.policy.allow_private_addresses:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addresses = await self._resolve(host, parts.port or DEFAULT_PORTS[parts.scheme.lower()])
        except (OSError, UnicodeError) as err:  # socket.gaierror is an OSError
            return FetchError(url, "dns-failed", f"{host}: {err}", transient=True)
        # Refuse if any answer is private: the connection may pick any of them.
        blocked = sorted({a for a in addresses if not is_public_address(a)})
        if blocked:
            detail = f"{host} resolves to {', '.join(blocked)}"
            return FetchError(url, "private-address", detail)
        return None

    async def _check_robots(self, url: str) -> FetchError | None:
        rules = await self._robots.get(url)
        self._gate(url).delay = self._delay_for(rules)
        if rules.unavailable:
            wait = max(0.0, rules.expires_at - time.monotonic())
            detail = f"robots.txt of {rules.origin} unreachable ({rules.problem}); wait"
            return FetchError(url, "robots-unavailable", detail, retry_after=wait, transient=True)
        if not rules.allows(url, self._token):
            detail = f"robots.txt of {rules.origin} disallows it for {self._token!r}"
            return FetchError(url, "robots-disallowed", detail)
        return None

    def _delay_for(self, rules: Robots) -> float:
        crawl_delay = rules.crawl_delay(self._token)
        if crawl_delay is None:
            return self.policy.min_delay_seconds
        return max(
            self.policy.min_delay_seconds, min(crawl_delay, self.policy.max_crawl_delay_seconds)
        )

    def _gate(self, url: str) -> _HostGate:
        key = host_key(url)
        gate = self._gates.get(key)
        if gate is None:
            gate = _HostGate(self.policy.per_host_concurrency, self.policy.min_delay_seconds)
            self._gates[key] = gate
        return gate

    async def _load_robots(self, origin: str) -> RobotsAnswer:
        """robots.txt through the same hops, address check, spacing and timeouts as pages,
        but without retries: an unreachable file is simply tried again after its error TTL."""
        headers = {"Accept": "text/plain, */*;q=0.1"}
        want = _Want(
            headers,
            None,
            MAX_ROBOTS_BYTES,
            truncate=True,
            robots=False,
            retries=0,
            max_retry_after=0.0,
        )
        self.stats.robots_fetches += 1
        result = await self._follow(f"{origin}/robots.txt", want)
        logger.info("robots.txt of %s: %s", origin, getattr(result, "reason", "fetched"))
        if isinstance(result, Fetched):
            return RobotsAnswer(result.status, result.body)
        if result.reason in ("redirect-loop", "too-many-redirects", "bad-redirect"):
            return RobotsAnswer(404)  # RFC 9309 2.3.1.2: may be treated as unavailable (allow)
        # status None (unreachable) unless an HTTP answer came
        return RobotsAnswer(result.status, problem=f"{result.reason}: {result.detail}")


def _check_url(url: str) -> FetchError | None:
    problem = _url_problem(url)
    return None if problem is None else FetchError(url, "invalid-url", problem)


def _check_type(
    url: str, response: httpx.Response, types: frozenset[str] | None
) -> FetchError | None:
    media_type = _media_type(response.headers.get("content-type", ""))
    # A missing Content-Type is let through: extraction decides what the bytes are.
    if types is None or not media_type or media_type in types:
        return None
    detail = f"{media_type} is not one of {', '.join(sorted(types))}"
    return FetchError(url, "bad-content-type", detail, status=response.status_code)


def _check_length(url: str, response: httpx.Response, want: _Want) -> FetchError | None:
    declared = response.headers.get("content-length", "")
    if want.truncate or not declared.isdigit() or int(declared) <= want.max_bytes:
        return None
    detail = f"Content-Length {declared} > {want.max_bytes}; not read"
    return FetchError(url, "too-large", detail, status=response.status_code)


async def _read_body(url: str, response: httpx.Response, want: _Want) -> bytes | FetchError:
    """Stream the body and stop at the cap, so a huge or endless page costs at most
    max_bytes of memory (plus one chunk) and the connection is dropped early."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > want.max_bytes:
            if want.truncate:
                chunks.append(chunk[: len(chunk) - (size - want.max_bytes)])
                break
            detail = f"body passed {want.max_bytes} bytes; stopped reading"
            return FetchError(url, "too-large", detail, status=response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _fetched(url: str, response: httpx.Response, body: bytes) -> Fetched:
    headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
    return Fetched(
        url=url,
        status=response.status_code,
        headers=headers,
        body=body,
        encoding=response.charset_encoding,
        elapsed=0.0,  # the whole fetch's time is filled in by Fetcher.fetch
    )


def _exhausted(url: str, retry: _Retry, attempts: int) -> FetchError:
    reason = "http-429" if retry.status == 429 else "http-5xx-exhausted"
    detail = f"HTTP {retry.status} after {attempts} attempt(s)"
    if retry.retry_after is not None:
        detail += f"; Retry-After {retry.retry_after:.0f}s"
    return FetchError(url, reason, detail, retry.retry_after, transient=True, status=retry.status)


def _transport_error(url: str, err: httpx.HTTPError) -> FetchError:
    transient = True
    if isinstance(err, httpx.TimeoutException):
        reason = "timeout"
    elif isinstance(err, httpx.ConnectError):
        reason = "connect-failed"
    elif isinstance(err, httpx.DecodingError):
        reason, transient = "decoding-error", False
    elif isinstance(err, httpx.UnsupportedProtocol):
        reason, transient = "invalid-url", False
    else:
        reason = "network-error"
    # Some httpx errors have an empty message (ReadTimeout): the class name says enough.
    return FetchError(url, reason, f"{type(err).__name__}: {err}".rstrip(": "), transient=transient)
