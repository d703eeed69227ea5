"""The demo sites over real HTTP on 127.0.0.1: one port per site, one background thread
per port, so ingest fetches them exactly as it fetches the web (robots.txt, feeds,
sitemaps, content types, 404s)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from newsflow.demo._routes import HTML, SITES, render

log = logging.getLogger(__name__)

NOT_FOUND = b"<!DOCTYPE html>\n<html lang=en><title>Not found</title><h1>Not found</h1></html>\n"


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True  # a client that never closes its connection must not block close()

    def __init__(self, site_key: str, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.site_key = site_key

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
        # Query strings (utm_source=... and the like) do not change the page, as on most sites.
        found = render(server.site_key, urlsplit(self.path).path, server.base_url)
        status, content_type, body = found or (HTTPStatus.NOT_FOUND, HTML, NOT_FOUND)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Not to stderr, as the base class does: the CLI decides where logs go.
        log.debug("%s %s", self.address_string(), format % args)


class DemoServer:
    """Serves every demo site until ``close()`` (or the end of a ``with`` block).

    ``ports`` maps site keys to ports; sites not named, or mapped to 0, get a free port.
    """

    def __init__(
        self,
        ports: Mapping[str, int] | None = None,
        *,
        host: str = "127.0.0.1",
        sites: Iterable[str] | None = None,
    ) -> None:
        ports = ports or {}
        keys = list(sites) if sites is not None else [s.key for s in SITES]
        self._servers: dict[str, _SiteServer] = {}
        self._threads: list[threading.Thread] = []
        try:
            for key in keys:
                self._start(key, host, ports.get(key, 0))
        except BaseException:
            self.close()
            raise

    def _start(self, key: str, host: str, port: int) -> None:
        server = _SiteServer(key, host, port)
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
