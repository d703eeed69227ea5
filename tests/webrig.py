"""Many web hosts on one real HTTP server on 127.0.0.1.

Real feeds link to real hosts (www.theguardian.com, www.heise.de, ...). To fetch them as
the monitor does in production, with their links untouched, a Fetcher built with
``Web.transport()`` and ``Web.resolve`` sends every request to this server, which answers
by the request's Host header and path. Everything past the socket is real: HTTP/1.1,
robots.txt, validators, status codes, slow bodies.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

# A route answers one request: it may inspect the handler (headers, path) and returns
# (status, headers, body), or None after writing the response itself.
Answer = tuple[int, dict[str, str], bytes]
Route = Callable[["_Handler"], Answer | None]


@dataclass
class Hit:
    host: str
    path: str
    at: float  # time.monotonic() on arrival
    headers: dict[str, str]  # lower-case names
    status: int = 0  # the status answered; 0 while answering, or for a route that wrote its own


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        web = self.server.web
        host = (self.headers.get("Host") or "").split(":", 1)[0].lower()
        route = web.route(host, self.path)
        hit = web.hit(self, host)
        try:
            answer = route(self)
            if answer is None:
                return
            status, headers, body = answer
            hit.status = status
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up on purpose (a timeout)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a hanging route must not hold up teardown
    web: Web


class Web:
    """``web.add("https://www.heise.de/robots.txt", text(...))``, then fetch with
    ``Fetcher(policy, resolve=web.resolve, transport=web.transport())``."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.fallback: Callable[[str, str], Route | None] = lambda host, path: None
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.web = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def add(self, url: str, route: Route) -> None:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self.routes[(parts.hostname or "", path)] = route

    def route(self, host: str, path: str) -> Route:
        found = self.routes.get((host, path)) or self.fallback(host, path)
        return found or status(404)

    def hit(self, handler: _Handler, host: str) -> Hit:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        hit = Hit(host, handler.path, time.monotonic(), headers)
        with self._lock:
            self.hits.append(hit)
        return hit

    def requests(self, host: str | None = None, path: str | None = None) -> list[Hit]:
        with self._lock:
            return [
                h
                for h in self.hits
                if (host is None or h.host == host) and (path is None or h.path == path)
            ]

    async def resolve(self, host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    def transport(self) -> httpx.AsyncBaseTransport:
        return _Loopback(self.port)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Loopback(httpx.AsyncBaseTransport):
    """Sends each request to the rig over plain HTTP; the Host header (set by httpx from
    the original URL) still names the host asked for."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- routes -------------------------------------------------------------------------------


def status(code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Route:
    return lambda handler: (code, dict(headers or {}), body)


def document(body: bytes, content_type: str) -> Route:
    """A file with an ETag, answering 304 to a conditional GET that names it."""
    etag = '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'

    def route(handler: _Handler) -> Answer:
        headers = {"Content-Type": content_type, "ETag": etag}
        if handler.headers.get("If-None-Match") == etag:
            return 304, headers, b""
        return 200, headers, body

    return route


def in_turn(*routes: Route) -> Route:
    """The first request gets the first route's answer, and so on; the last repeats."""
    calls = iter(range(1_000_000))
    return lambda handler: routes[min(next(calls), len(routes) - 1)](handler)


def hang(seconds: float) -> Route:
    """Headers at once, then silence: a server that stalls mid-body."""

    def route(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"<html><body>")
        handler.wfile.flush()
        time.sleep(seconds)

    return route
