"""The polite fetcher against real HTTP servers on 127.0.0.1, started by each test.

Timings are measured where they matter: request arrival times at the server. Delays and
timeouts are short (tenths of a second) so the whole file stays quick.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ingest.fetch import (
    FEED_TYPES,
    Fetched,
    Fetcher,
    FetchError,
    FetchPolicy,
    host_key,
    is_public_address,
    parse_retry_after,
)
from ingest.robots import RobotsAnswer, RobotsCache, origin_of, product_token, read_robots
from tests.conftest import shared_data_path

# Spacing may come out a hair short of the delay: the event loop's sleep and the server's
# clock reading are not the same instant.
TOLERANCE = 0.03

POLICY = FetchPolicy(
    min_delay_seconds=0.0,
    connect_timeout_seconds=2.0,
    read_timeout_seconds=2.0,
    total_timeout_seconds=5.0,
    backoff_seconds=0.05,
    max_backoff_seconds=0.5,
    robots_error_ttl_seconds=0.3,
    allow_private_addresses=True,  # every server here is on 127.0.0.1
)

Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        owner.arrived(self)
        route = owner.routes.get(self.path, status_page(404))
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher hung up on purpose (too large, timeout)
        finally:
            owner.left()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    block_on_close = False  # a handler still sleeping must not hold up teardown
    owner: Server


class Server:
    """A real HTTP server in a thread: routes map a request path to a handler."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.arrivals: list[tuple[str, float]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.owner = self
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def arrived(self, handler: Handler) -> None:
        with self._lock:
            self.arrivals.append((handler.path, time.monotonic()))
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def left(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def paths(self) -> list[str]:
        return [path for path, _ in self.arrivals]

    def times(self, path: str | None = None) -> list[float]:
        return [at for p, at in self.arrivals if path is None or p == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, Route]], Server]]:
    servers: list[Server] = []

    def make(routes: dict[str, Route]) -> Server:
        servers.append(Server(routes))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def page(
    body: bytes = b"<html><body>hello</body></html>",
    content_type: str = "text/html; charset=utf-8",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Route:
    def route(h: Handler) -> None:
        h.send_response(status)
        if content_type:
            h.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return route


def status_page(status: int, headers: dict[str, str] | None = None) -> Route:
    return page(b"", "text/plain", status, headers)


def redirect(to: str, status: int = 301) -> Route:
    return status_page(status, {"Location": to})


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def fetch_all(policy: FetchPolicy, urls: list[str], **kwargs: Any) -> tuple[list[Any], Fetcher]:
    async def go() -> tuple[list[Any], Fetcher]:
        async with Fetcher(policy) as fetcher:
            results = await asyncio.gather(*(fetcher.fetch(url, **kwargs) for url in urls))
            return list(results), fetcher

    return asyncio.run(go())


def fetch_one(policy: FetchPolicy, url: str, **kwargs: Any) -> Fetched | FetchError:
    return fetch_all(policy, [url], **kwargs)[0][0]


def error_of(result: Fetched | FetchError) -> FetchError:
    assert isinstance(result, FetchError), result
    return result


def fetched(result: Fetched | FetchError) -> Fetched:
    assert isinstance(result, Fetched), result
    return result


# -- pages, headers and charsets ----------------------------------------------------------


def test_page_body_headers_and_charset_pass_through(serve: Callable[..., Server]) -> None:
    body = "<p>Café, naïve, Straße</p>".encode("iso-8859-1")
    extra = {"ETag": '"v1"', "Content-Language": "de", "X-Powered-By": "thing"}
    server = serve({"/a": page(body, "text/html; charset=ISO-8859-1", headers=extra)})
    result = fetched(fetch_one(POLICY, server.url("/a")))
    assert result.body == body
    assert result.encoding == "iso-8859-1"
    assert result.status == 200 and result.url == server.url("/a") and result.redirects == ()
    assert result.headers["etag"] == '"v1"' and result.headers["content-language"] == "de"
    assert "x-powered-by" not in result.headers
    assert result.content_type == "text/html"
    assert server.headers[-1]["user-agent"] == POLICY.user_agent


def test_no_charset_means_no_encoding(serve: Callable[..., Server]) -> None:
    server = serve({"/t": page(b"plain words", "text/plain")})
    assert fetched(fetch_one(POLICY, server.url("/t"))).encoding is None


def test_conditional_get_answers_304(serve: Callable[..., Server]) -> None:
    stamp = "Wed, 01 May 2024 10:00:00 GMT"

    def route(h: Handler) -> None:
        if h.headers.get("If-None-Match") == '"v7"' or h.headers.get("If-Modified-Since") == stamp:
            status_page(304, {"ETag": '"v7"', "Last-Modified": stamp})(h)
        else:
            page(b"<p>news</p>", headers={"ETag": '"v7"', "Last-Modified": stamp})(h)

    server = serve({"/n": route})
    url = server.url("/n")
    first = fetched(fetch_one(POLICY, url))
    assert first.status == 200 and first.headers["last-modified"] == stamp
    results, fetcher = fetch_all(POLICY, [url], etag=first.headers["etag"])
    by_etag = fetched(results[0])
    assert by_etag.status == 304 and by_etag.body == b"" and by_etag.headers["etag"] == '"v7"'
    assert fetcher.stats.not_modified == 1
    by_date = fetched(fetch_one(POLICY, url, last_modified=stamp))
    assert by_date.status == 304


def test_real_pages_pass_through_unchanged(serve: Callable[..., Server]) -> None:
    files = sorted(shared_data_path("extraction", "fundus").glob("*/*.html.gz"))[::50]
    routes: dict[str, Route] = {}
    for i, path in enumerate(files):
        packed = path.read_bytes()
        # Every other page goes gzip-encoded on the wire, as most news sites serve them.
        headers = {"Content-Encoding": "gzip"} if i % 2 else {}
        routes[f"/{i}"] = page(packed if i % 2 else gzip.decompress(packed), headers=headers)
    server = serve(routes)
    results, _ = fetch_all(POLICY, [server.url(f"/{i}") for i in range(len(files))])
    for path, result in zip(files, results, strict=True):
        got = fetched(result)
        assert got.body == gzip.decompress(path.read_bytes()), path.name
        assert got.encoding == "utf-8"


# -- robots.txt ---------------------------------------------------------------------------


def test_robots_disallow_is_obeyed_and_robots_fetched_once(serve: Callable[..., Server]) -> None:
    robots = b"User-agent: *\nDisallow: /private\n"
    server = serve({"/robots.txt": page(robots, "text/plain"), "/a": page(), "/b": page()})
    urls = [server.url(p) for p in ("/a", "/private/x", "/b", "/a")]
    results, fetcher = fetch_all(POLICY, urls)
    refused = error_of(results[1])
    assert refused.reason == "robots-disallowed" and not refused.transient
    assert all(isinstance(r, Fetched) for r in (results[0], results[2], results[3]))
    assert "/private/x" not in server.paths()
    assert server.paths().count("/robots.txt") == 1
    assert fetcher.stats.robots_fetches == 1
    assert fetcher.stats.errors == {"robots-disallowed": 1}


def test_robots_group_matched_on_product_token(serve: Callable[..., Server]) -> None:
    robots = (
        b"User-agent: github\nDisallow: /\n\n"  # in our UA's URL, but not our token
        b"User-agent: newsflow\nDisallow: /nf-only\n\n"
        b"User-agent: *\nDisallow: /\n"
    )
    server = serve({"/robots.txt": page(robots, "text/plain"), "/page": page()})
    results, _ = fetch_all(POLICY, [server.url("/page"), server.url("/nf-only")])
    assert isinstance(results[0], Fetched)
    assert error_of(results[1]).reason == "robots-disallowed"


def test_robots_4xx_allows_everything(serve: Callable[..., Server]) -> None:
    server = serve({"/robots.txt": status_page(403), "/a": page()})
    assert isinstance(fetch_one(POLICY, server.url("/a")), Fetched)


def test_robots_5xx_disallows_until_error_ttl(serve: Callable[..., Server]) -> None:
    answers = iter([status_page(503), status_page(404)])
    server = serve({"/robots.txt": lambda h: next(answers)(h), "/a": page()})

    async def go() -> tuple[Fetched | FetchError, Fetched | FetchError]:
        async with Fetcher(POLICY) as fetcher:
            first = await fetcher.fetch(server.url("/a"))
            await asyncio.sleep(POLICY.robots_error_ttl_seconds + 0.05)
            return first, await fetcher.fetch(server.url("/a"))

    first, second = asyncio.run(go())
    refused = error_of(first)
    assert refused.reason == "robots-unavailable" and refused.transient
    assert refused.retry_after is not None and 0 < refused.retry_after <= 0.3
    assert isinstance(second, Fetched)
    assert server.paths() == ["/robots.txt", "/robots.txt", "/a"]


def test_crawl_delay_spaces_one_host_but_not_two(serve: Callable[..., Server]) -> None:
    delay = 0.3
    routes = {
        "/robots.txt": page(f"User-agent: *\nCrawl-delay: {delay}\n".encode(), "text/plain"),
        **{f"/{i}": page() for i in range(3)},
    }
    one, two = serve(dict(routes)), serve(dict(routes))
    urls = [server.url(f"/{i}") for i in range(3) for server in (one, two)]
    started = time.monotonic()
    results, fetcher = fetch_all(POLICY, urls)
    took = time.monotonic() - started
    assert all(isinstance(r, Fetched) for r in results)
    for server in (one, two):
        assert len(server.arrivals) == 4  # robots.txt and three pages
        assert min(gaps(server.times())) >= delay - TOLERANCE, gaps(server.times())
    # The hosts ran side by side: their first pages arrived together, and the whole took
    # about one host's share (3 gaps), not both hosts' (7 gaps).
    assert abs(one.times("/0")[0] - two.times("/0")[0]) < delay / 2
    assert took < 6 * delay
    snapshot = fetcher.stats.snapshot()
    assert snapshot["requests"] == {host_key(one.url()): 4, host_key(two.url()): 4}
    assert snapshot["fetched"] == 6 and snapshot["robots_fetches"] == 2
    assert snapshot["errors"] == {}


def test_per_host_concurrency_cap(serve: Callable[..., Server]) -> None:
    def slow(h: Handler) -> None:
        time.sleep(0.2)
        page()(h)

    server = serve({"/slow": slow})
    results, _ = fetch_all(POLICY, [server.url("/slow")] * 5)
    assert all(isinstance(r, Fetched) for r in results)
    assert server.max_in_flight == POLICY.per_host_concurrency


# -- retries ------------------------------------------------------------------------------


def test_429_with_retry_after_then_success(serve: Callable[..., Server]) -> None:
    answers = iter([status_page(429, {"Retry-After": "1"}), page()])
    server = serve({"/r": lambda h: next(answers)(h)})
    results, fetcher = fetch_all(POLICY, [server.url("/r")])
    assert isinstance(results[0], Fetched)
    assert gaps(server.times("/r"))[0] >= 1.0 - TOLERANCE
    assert fetcher.stats.retries == 1


def test_retry_after_beyond_cap_ends_the_fetch(serve: Callable[..., Server]) -> None:
    server = serve({"/r": status_page(429, {"Retry-After": "3600"})})
    refused = error_of(fetch_one(POLICY, server.url("/r")))
    assert refused.reason == "http-429" and refused.transient and refused.retry_after == 3600
    assert server.paths().count("/r") == 1


def test_5xx_retried_with_backoff_then_exhausted(serve: Callable[..., Server]) -> None:
    server = serve({"/down": status_page(503)})
    refused = error_of(fetch_one(replace(POLICY, retries=2), server.url("/down")))
    assert refused.reason == "http-5xx-exhausted" and refused.status == 503 and refused.transient
    spacing = gaps(server.times("/down"))
    assert len(spacing) == 2
    assert spacing[0] >= 0.05 - TOLERANCE and spacing[1] >= 0.1 - TOLERANCE


def test_404_is_permanent(serve: Callable[..., Server]) -> None:
    server = serve({})
    refused = error_of(fetch_one(POLICY, server.url("/gone")))
    assert refused.reason == "http-404" and not refused.transient and refused.status == 404


# -- timeouts -----------------------------------------------------------------------------

QUICK = replace(POLICY, read_timeout_seconds=0.3, total_timeout_seconds=0.8)


def test_no_answer_is_a_read_timeout(serve: Callable[..., Server]) -> None:
    def silent(h: Handler) -> None:
        time.sleep(1.5)

    server = serve({"/s": silent})
    started = time.monotonic()
    refused = error_of(fetch_one(QUICK, server.url("/s")))
    assert refused.reason == "timeout" and refused.transient
    assert "ReadTimeout" in refused.detail
    assert time.monotonic() - started < 0.8


def test_body_that_stalls_is_a_read_timeout(serve: Callable[..., Server]) -> None:
    def stalls(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b"x" * 10)
        time.sleep(1.5)

    server = serve({"/s": stalls})
    assert error_of(fetch_one(QUICK, server.url("/s"))).reason == "timeout"


def test_trickling_body_hits_the_total_timeout(serve: Callable[..., Server]) -> None:
    def trickle(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        for _ in range(200):  # never finishes, but never silent longer than 0.05 s
            h.wfile.write(b"x")
            time.sleep(0.05)

    server = serve({"/t": trickle})
    started = time.monotonic()
    refused = error_of(fetch_one(QUICK, server.url("/t")))
    took = time.monotonic() - started
    assert refused.reason == "timeout" and "0.8s" in refused.detail
    assert 0.8 - TOLERANCE <= took < 1.5


def test_closed_port_is_connect_failed(serve: Callable[..., Server]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The first request to a host is for robots.txt, so that is what fails first ...
    refused = error_of(fetch_one(POLICY, f"http://127.0.0.1:{port}/"))
    assert refused.reason == "robots-unavailable" and refused.transient
    assert "connect-failed" in refused.detail
    # ... and a host that goes away after its robots.txt was read fails to connect.
    server = serve({"/a": page()})

    async def go() -> tuple[Fetched | FetchError, Fetched | FetchError]:
        async with Fetcher(POLICY) as fetcher:
            first = await fetcher.fetch(server.url("/a"))
            server.close()
            return first, await fetcher.fetch(server.url("/a"))

    first, second = asyncio.run(go())
    assert isinstance(first, Fetched)
    assert error_of(second).reason == "connect-failed" and error_of(second).transient


# -- redirects ----------------------------------------------------------------------------


def test_redirect_chain_followed(serve: Callable[..., Server]) -> None:
    server = serve({"/old": redirect("/mid"), "/mid": redirect("/new#frag", 302), "/new": page()})
    result = fetched(fetch_one(POLICY, server.url("/old")))
    assert result.url == server.url("/new")
    assert result.redirects == (server.url("/old"), server.url("/mid"))


def test_redirect_loop(serve: Callable[..., Server]) -> None:
    server = serve({"/a": redirect("/b"), "/b": redirect("/a")})
    refused = error_of(fetch_one(POLICY, server.url("/a")))
    assert refused.reason == "redirect-loop" and refused.url == server.url("/a")
    assert server.paths().count("/a") == 1


def test_too_long_redirect_chain(serve: Callable[..., Server]) -> None:
    server = serve({f"/r{i}": redirect(f"/r{i + 1}") for i in range(10)})
    refused = error_of(fetch_one(replace(POLICY, max_redirects=3), server.url("/r0")))
    assert refused.reason == "too-many-redirects"
    assert [p for p in server.paths() if p != "/robots.txt"] == ["/r0", "/r1", "/r2", "/r3"]


# -- size and type ------------------------------------------------------------------------


def test_oversized_streamed_body_stops_at_cap(serve: Callable[..., Server]) -> None:
    total, chunk, cap = 64 * 1024 * 1024, 64 * 1024, 100_000
    sent = {"bytes": 0}
    done = threading.Event()

    def huge(h: Handler) -> None:  # no Content-Length: only streaming can catch it
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        try:
            while sent["bytes"] < total:
                h.wfile.write(b"x" * chunk)
                sent["bytes"] += chunk
        finally:
            done.set()

    server = serve({"/big": huge})
    results, fetcher = fetch_all(replace(POLICY, max_body_bytes=cap), [server.url("/big")])
    refused = error_of(results[0])
    assert refused.reason == "too-large" and not refused.transient
    assert done.wait(5), "the server should notice the hang-up"
    assert sent["bytes"] < total // 4
    read = fetcher.stats.bytes[host_key(server.url())]
    assert cap < read <= cap + 2 * chunk


def test_declared_oversized_body_not_read(serve: Callable[..., Server]) -> None:
    def liar(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", "10000000")
        h.end_headers()
        h.wfile.write(b"x" * 1000)

    server = serve({"/big": liar})
    refused = error_of(fetch_one(replace(POLICY, max_body_bytes=5000), server.url("/big")))
    assert refused.reason == "too-large" and "Content-Length" in refused.detail


def test_wrong_content_type_refused(serve: Callable[..., Server]) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    feed = b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>'
    server = serve({"/img": page(png, "image/png"), "/feed": page(feed, "application/rss+xml")})
    results, fetcher = fetch_all(POLICY, [server.url("/img"), server.url("/feed")])
    assert all(error_of(r).reason == "bad-content-type" for r in results)
    assert fetcher.stats.errors == {"bad-content-type": 2}
    as_feed = fetched(fetch_one(POLICY, server.url("/feed"), accept=FEED_TYPES))
    assert as_feed.body == feed and as_feed.content_type == "application/rss+xml"


# -- addresses and URLs -------------------------------------------------------------------


def test_private_addresses_refused_by_default(serve: Callable[..., Server]) -> None:
    server = serve({"/a": page()})
    strict = replace(POLICY, allow_private_addresses=False)
    port = server.httpd.server_address[1]
    results, _ = fetch_all(strict, [server.url("/a"), f"http://localhost:{port}/a"])
    for result in results:
        refused = error_of(result)
        assert refused.reason == "private-address" and not refused.transient
    assert server.arrivals == []  # not even robots.txt was asked for


def fake_dns(public_ports: set[int]) -> Callable[[str, int], Any]:
    """A resolver that calls 127.0.0.1 public on some ports: it stands in for a public
    site, so the check on later hops can be tested without leaving this machine."""

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"] if port in public_ports else ["93.184.216.34", host]

    return resolve


def test_redirect_to_private_address_refused(serve: Callable[..., Server]) -> None:
    target = serve({"/a": page()})
    server = serve({"/go": redirect(target.url("/a"))})
    resolve = fake_dns({server.httpd.server_address[1]})

    async def go() -> Fetched | FetchError:
        strict = replace(POLICY, allow_private_addresses=False)
        async with Fetcher(strict, resolve=resolve) as fetcher:
            return await fetcher.fetch(server.url("/go"))

    refused = error_of(asyncio.run(go()))
    # One private address among public ones is enough: the connection could pick it.
    assert refused.reason == "private-address" and "127.0.0.1" in refused.detail
    assert server.paths() == ["/robots.txt", "/go"]
    assert target.arrivals == []


def test_unresolvable_host_is_dns_failed() -> None:
    async def no_such_host(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def go() -> Fetched | FetchError:
        strict = replace(POLICY, allow_private_addresses=False)
        async with Fetcher(strict, resolve=no_such_host) as fetcher:
            return await fetcher.fetch("http://news.invalid/a")

    refused = error_of(asyncio.run(go()))
    assert refused.reason == "dns-failed" and refused.transient


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2a00:1450:4001:80b::200e", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata service
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("ff02::1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "not a url",
        "http://",
        "http://exa mple.com/",
        "http://example.com:99999/",
        "http://[::1/",
        "/relative/path",
    ],
)
def test_invalid_urls(url: str) -> None:
    # No server: the URL is refused before any lookup or connection.
    refused = error_of(fetch_one(replace(POLICY, allow_private_addresses=False), url))
    assert refused.reason == "invalid-url" and not refused.transient and refused.url == url


# -- pure parts ---------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    now = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after(earlier, now=now.timestamp()) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_robots_helpers() -> None:
    assert product_token("newsflow/0.1 (+https://github.com/newsflow)") == "newsflow"
    assert origin_of("HTTP://Example.COM:8080/a?b") == "http://example.com:8080"
    assert origin_of("http://[::1]:81/") == "http://[::1]:81"
    rules = read_robots("o", RobotsAnswer(200, b"\xef\xbb\xbfUser-agent: *\nDisallow: /x\n"),
                        now=0, ttl=10, error_ttl=1)  # fmt: skip
    assert not rules.allows("http://o/x", "newsflow") and rules.expires_at == 10
    assert read_robots("o", RobotsAnswer(None), now=0, ttl=10, error_ttl=1).unavailable
    assert read_robots("o", RobotsAnswer(429), now=0, ttl=10, error_ttl=1).unavailable
    assert read_robots("o", RobotsAnswer(401), now=0, ttl=10, error_ttl=1).allows("/x", "n")


def test_robots_cache_loads_once_for_concurrent_requests() -> None:
    loads: list[str] = []

    async def load(origin: str) -> RobotsAnswer:
        loads.append(origin)
        await asyncio.sleep(0.05)
        return RobotsAnswer(200, b"User-agent: *\nDisallow: /no\n")

    async def go() -> list[bool]:
        cache = RobotsCache(load)
        got = await asyncio.gather(*(cache.get(f"http://h/{i}") for i in range(10)))
        return [rules.allows("http://h/no", "newsflow") for rules in got]

    assert asyncio.run(go()) == [False] * 10
    assert loads == ["http://h"]
