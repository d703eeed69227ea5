"""URL canonicalisation and the site key.

The canonical URL is what ``article_id`` hashes, so two spellings of one article's address
must canonicalise alike: scheme and host lower-cased, default ports, fragments and the
usual tracking parameters dropped, query parameters sorted.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import tldextract

TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "piwik_", "hsa_", "__hs", "_hs")
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "igshid",
        "mkt_tok",
        "ocid",
        "cmpid",
        "ref",
        "ref_src",
        "ref_url",
        "smid",
        "sr_share",
        "at_medium",
        "at_campaign",
        "cmp",
    }
)
DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    # The Public Suffix List snapshot bundled with tldextract: never fetched at run time.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def canonicalize(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    query = urlencode(
        sorted(
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
        )
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def site_of(url: str) -> str:
    """The registered domain (bbc.co.uk for www.bbc.co.uk), or host[:port] for addresses
    that have none (127.0.0.1:8101, localhost): the key that keeps a site on one partition."""
    parts = urlsplit(url)
    found = _extractor()(url)
    domain = found.top_domain_under_public_suffix
    if domain:
        return domain.lower()
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def url_problem(text: str) -> str | None:
    """Why ``text`` is not an http(s) URL newsflow can fetch, or None if it is one.

    Pure and total: it never raises, so a caller reading URLs from a file or a feed can
    turn a bad one into a counted skip instead of a crash."""
    candidate = text.strip()
    if not candidate:
        return "empty"
    if any(c.isspace() for c in candidate):
        return "not a URL (it contains white space)"
    try:
        parts = urlsplit(candidate)
        parts.port  # noqa: B018 - urlsplit checks the port only when it is asked for
    except ValueError as err:  # "http://[::1", "http://x:99999/"
        return f"not a URL ({err})"
    if not parts.scheme:
        return "not a URL (no http:// or https:// in front)"
    if parts.scheme.lower() not in DEFAULT_PORTS:
        return f"not an http(s) URL (scheme {parts.scheme!r})"
    if not parts.hostname:
        return "not a URL (no host name)"
    try:
        canonicalize(candidate)
    except ValueError as err:
        return f"not a URL ({err})"
    return None
