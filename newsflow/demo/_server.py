"""The demo sites over real HTTP on 127.0.0.1: one port per site, one background thread
per port, so ingest fetches them exactly as it fetches the web (robots.txt, feeds,
sitemaps, content types, 404s, validators and 304 answers to conditional GETs).

With ``publishing``, the sites publish their articles one by one while they are served
(see ``_live``); every request is logged in ``DemoServer.requests`` either way, so a test
or a benchmark can count what a crawler asked for and when.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from newsflow.demo._live import Newsroom, Publishing
from newsflow.demo._routes import (
    ATOM,
    HTML,
    RSS,
    SITES,
    XML,
    last_modified,
    render,
    render_site,
    site,
)

log = logging.getLogger(__name__)

LISTINGS = frozenset({RSS, ATOM, XML})  # their Last-Modified: the newest entry's date


@dataclass(frozen=True)
class Request:
    """One request a demo site answered."""

    site: str
    path: str  # with its query string, as sent
    status: int
    at: datetime
    monotonic: float
    conditional: bool  # sent If-None-Match or If-Modified-Since


NOT_FOUND = b"<!DOCTYPE html>\n<html lang=en><title>Not found</title><h1>Not found</h1></html>\n"


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True  # a client that never closes its connection must not block close()

    def __init__(self, owner: DemoServer, site_key: str, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.owner, self.site_key = owner, site_key

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "newsflow-demo/1"

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        server = self.server
        assert isinstance(server, _SiteServer)
        now = datetime.now(UTC)
        newsroom = server.owner.newsroom
        demo = site(server.site_key) if newsroom is None else newsroom.site(server.site_key, now)
        # Query strings (utm_source=... and the like) do not change the page, as on most sites.
        path = urlsplit(self.path).path
        found = (
            render(server.site_key, path, server.base_url)
            if newsroom is None
            else render_site(demo, path, server.base_url)
        )
        status, content_type, body = found or (HTTPStatus.NOT_FOUND, HTML, NOT_FOUND)
        headers = {"Content-Type": content_type}
        if status == HTTPStatus.OK:
            headers["ETag"] = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
            newest = last_modified(demo, path) if content_type in LISTINGS else None
            if newest is not None:
                headers["Last-Modified"] = format_datetime(newest.astimezone(UTC), usegmt=True)
            asked = (self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since"))
            if _not_modified(*asked, headers):
                status, body = HTTPStatus.NOT_MODIFIED, b""
        server.owner.log_request(server.site_key, self, int(status), now)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Not to stderr, as the base class does: the CLI decides where logs go.
        log.debug("%s %s", self.address_string(), format % args)


def _not_modified(
    if_none_match: str | None, since: str | None, response: Mapping[str, str]
) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when sent; If-Modified-Since otherwise."""
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or response["ETag"] in tags
    modified = response.get("Last-Modified")
    if since is None or modified is None:
        return False
    try:
        return parsedate_to_datetime(modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False  # an unreadable date: answer in full, as servers do


class DemoServer:
    """Serves every demo site until ``close()`` (or the end of a ``with`` block).

    ``ports`` maps site keys to ports; sites not named, or mapped to 0, get a free port.
    ``publishing`` makes the sites publish their articles one by one from now on.
    """

    def __init__(
        self,
        ports: Mapping[str, int] | None = None,
        *,
        host: str = "127.0.0.1",
        sites: Iterable[str] | None = None,
        publishing: Publishing | None = None,
    ) -> None:
        ports = ports or {}
        keys = list(sites) if sites is not None else [s.key for s in SITES]
        self.newsroom = (
            None if publishing is None else Newsroom(publishing, keys, datetime.now(UTC))
        )
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._servers: dict[str, _SiteServer] = {}
        self._threads: list[threading.Thread] = []
        try:
            for key in keys:
                self._start(key, host, ports.get(key, 0))
        except BaseException:
            self.close()
            raise

    def _start(self, key: str, host: str, port: int) -> None:
        server = _SiteServer(self, key, host, port)
        thread = threading.Thread(target=server.serve_forever, name=f"demo-site-{key}", daemon=True)
        try:
            thread.start()
        except BaseException:
            server.server_close()
            raise
        # Only a serving server goes in: close() calls shutdown(), which waits for the loop.
        self._servers[key] = server
        self._threads.append(thread)
        log.info("demo site %s at %s", key, server.base_url)

    def log_request(
        self, site_key: str, handler: BaseHTTPRequestHandler, status: int, at: datetime
    ) -> None:
        conditional = any(h in handler.headers for h in ("If-None-Match", "If-Modified-Since"))
        entry = Request(site_key, handler.path, status, at, time.monotonic(), conditional)
        with self._lock:
            self.requests.append(entry)

    def base_url(self, site_key: str) -> str:
        return self._servers[site_key].base_url

    @property
    def site_keys(self) -> tuple[str, ...]:
        return tuple(self._servers)

    def close(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join()
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
