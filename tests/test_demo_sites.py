"""The demo sites: served over real HTTP, realistic enough for trafilatura, and consistent
with EXPECTED, which the end-to-end tests check the pipeline against."""

from __future__ import annotations

import itertools
import re
import shutil
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import lxml.html
import pytest
import trafilatura

import newsflow.demo
from newsflow.demo._content import Edits, apply_edits, load_sites
from newsflow.demo._routes import render_site, routes
from newsflow.demo.sites import (
    EXPECTED,
    SITES,
    DemoServer,
    ExpectedArticle,
    ExpectedBrief,
    Newsroom,
    Publishing,
    article_urls,
    brief_urls,
    listings,
    render,
    site,
    url,
)
from processors.clean import Extracted, extract

ARTICLES = EXPECTED.articles
SITES_DIR = Path(newsflow.demo.__file__).parent / "sites"
ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"


def article_id(article: ExpectedArticle | ExpectedBrief) -> str:
    return f"{article.site}{article.path}"


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with DemoServer() as running:
        yield running


def fetch(address: str, method: str = "GET") -> tuple[int, str, bytes]:
    request = urllib.request.Request(address, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def page_html(article: ExpectedArticle) -> str:
    found = render(article.site, article.path)
    assert found is not None
    return found[2].decode("utf-8")


def words(text: str) -> str:
    return " ".join(text.split())


def shingles(paragraphs: tuple[str, ...], size: int = 3) -> set[tuple[str, ...]]:
    tokens = re.findall(r"\w+", " ".join(paragraphs).lower())
    return {tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    return len(a & b) / len(a | b)


# -- the content -------------------------------------------------------------------------


def test_three_sites_a_few_dozen_articles_two_languages() -> None:
    assert len(SITES) == 3
    assert 30 <= len(ARTICLES) <= 40
    assert all(len(s.articles) >= 10 for s in SITES)
    languages = Counter(a.lang for a in ARTICLES)
    assert set(languages) == {"en", "de"}
    assert 1 <= languages["de"] <= 2


def test_named_entities_are_in_the_text_and_people_come_back_by_surname() -> None:
    later_by_surname = 0
    for article in ARTICLES:
        text = " ".join([article.headline, article.standfirst, *article.paragraphs])
        names = article.entities.persons + article.entities.organisations
        for name in names + article.entities.places:
            assert name in text, f"{article_id(article)}: {name!r} is not in the text"
        surnames = (p.split()[-1] for p in article.entities.persons)
        full = article.entities.persons
        later_by_surname += any(
            text.count(s) > text.count(n) for s, n in zip(surnames, full, strict=True)
        )
    assert later_by_surname >= len(ARTICLES) // 2


def test_translation_points_at_the_same_story_in_another_language() -> None:
    translated = [a for a in ARTICLES if a.translation_of]
    assert translated
    for article in translated:
        assert article.translation_of is not None
        original = EXPECTED.article(*article.translation_of)
        assert original.lang != article.lang


def test_syndicated_copies_differ_only_slightly() -> None:
    groups = EXPECTED.syndicated
    assert groups and max(len(g) for g in groups) == 3
    for group in groups:
        copies = [EXPECTED.article(*page) for page in group]
        assert len({c.site for c in copies}) == len(copies), "one copy per site"
        for a, b in itertools.combinations(copies, 2):
            similarity = jaccard(shingles(a.paragraphs), shingles(b.paragraphs))
            assert 0.5 < similarity < 0.95, f"{article_id(a)} vs {article_id(b)}: {similarity}"
            assert a.headline != b.headline
            assert (a.author, a.note) != (b.author, b.note)


# -- served over HTTP --------------------------------------------------------------------


def test_every_article_is_served_as_html(server: DemoServer) -> None:
    urls = article_urls(server)
    assert len(urls) == len(set(urls)) == len(ARTICLES)
    for address in urls:
        status, content_type, body = fetch(address)
        assert (status, content_type) == (200, "text/html; charset=utf-8"), address
        assert b"<article" in body


def test_every_other_file_is_served_with_its_content_type(server: DemoServer) -> None:
    assert {p.kind for p in EXPECTED.pages} >= {"home", "section", "about", "plain-text"}
    for page in EXPECTED.pages:
        status, content_type, _ = fetch(url(server, page.site, page.path))
        assert (status, content_type) == (200, page.content_type), page


def test_unknown_paths_are_404_and_query_strings_are_ignored(server: DemoServer) -> None:
    status, content_type, _ = fetch(url(server, "courier", "/no/such/page.html"))
    assert (status, content_type) == (404, "text/html; charset=utf-8")
    article = ARTICLES[0]
    plain = fetch(url(server, article.site, article.path))
    tracked = fetch(url(server, article.site, article.path) + "?utm_source=feed")
    assert plain == tracked


def test_head_sends_headers_only(server: DemoServer) -> None:
    address = article_urls(server)[0]
    status, content_type, body = fetch(address, method="HEAD")
    assert (status, content_type, body) == (200, "text/html; charset=utf-8", b"")


def test_a_server_can_serve_some_sites_and_stops_on_close() -> None:
    with DemoServer(sites=["ledger"]) as one:
        assert one.site_keys == ("ledger",)
        address = one.base_url("ledger") + "/robots.txt"
        assert fetch(address)[0] == 200
        assert article_urls(one) == [url(one, "ledger", a.path) for a in site("ledger").articles]
    with pytest.raises(URLError):
        fetch(address)


@pytest.mark.parametrize("article", ARTICLES, ids=article_id)
def test_article_page_metadata(article: ExpectedArticle) -> None:
    origin = site(article.site).config.origin
    tree = lxml.html.fromstring(page_html(article))

    def meta(attribute: str, name: str) -> str:
        return str(tree.xpath(f"string(//meta[@{attribute}='{name}']/@content)"))

    assert tree.get("lang") == article.lang
    assert article.headline in tree.findtext(".//title")
    assert meta("name", "description") == article.standfirst
    assert meta("property", "og:site_name") == site(article.site).name
    assert meta("property", "og:title") == article.headline
    assert tree.xpath("string(//link[@rel='canonical']/@href)") == origin + article.path
    published = datetime.fromisoformat(meta("property", "article:published_time"))
    assert published.tzinfo is not None and published == article.published
    (body,) = tree.xpath("//article")
    assert article.author in body.text_content()
    assert len(body.xpath(".//p")) >= len(article.paragraphs)


def test_pages_load_nothing_from_elsewhere(server: DemoServer) -> None:
    for demo in SITES:
        base = server.base_url(demo.key)
        for article in demo.articles:
            tree = lxml.html.fromstring(fetch(base + article.path)[2])
            for link in tree.xpath("//@href | //@src"):
                assert link.startswith(("/", "#", base)), f"{article.path}: {link}"


def test_links_resolve_and_reach_every_article_within_robots(server: DemoServer) -> None:
    for demo in SITES:
        base = server.base_url(demo.key)
        robots = RobotFileParser(base + "/robots.txt")
        robots.parse(fetch(base + "/robots.txt")[2].decode().splitlines())
        seen, queue = {base + "/"}, [base + "/"]
        while queue:
            address = queue.pop()
            status, content_type, body = fetch(address)
            assert status == 200, address
            if not content_type.startswith("text/html"):
                continue
            for href in lxml.html.fromstring(body).xpath("//a/@href"):
                target = urljoin(address, href).split("#")[0]
                if target.startswith(base) and target not in seen and robots.can_fetch("*", target):
                    seen.add(target)
                    queue.append(target)
        assert {base + a.path for a in demo.articles} <= seen
        assert not any(urlsplit(u).path.startswith("/private/") for u in seen)


# -- feeds, sitemaps, robots.txt ---------------------------------------------------------


def feed_entries(server: DemoServer, site_key: str) -> Iterator[tuple[str, list[str], datetime]]:
    """(feed kind, every linked URL, one date per entry) for each feed of a site."""
    kinds = {p.path: p.kind for p in EXPECTED.pages if p.site == site_key}
    for path, kind in kinds.items():
        if kind not in ("rss", "atom"):
            continue
        root = ET.fromstring(fetch(url(server, site_key, path))[2])
        if kind == "rss":
            for item in root.iter("item"):
                yield (
                    kind,
                    [item.findtext("link", "")],
                    parsedate_to_datetime(item.findtext("pubDate", "")),
                )
        else:
            for entry in root.iter(f"{ATOM}entry"):
                links = [link.get("href", "") for link in entry.iter(f"{ATOM}link")]
                yield kind, links, datetime.fromisoformat(entry.findtext(f"{ATOM}published", ""))


@pytest.mark.parametrize("site_key", [s.key for s in SITES])
def test_feeds_list_every_article_once_with_its_date(server: DemoServer, site_key: str) -> None:
    published = {url(server, a.site, a.path): a.published for a in ARTICLES if a.site == site_key}
    by_kind: dict[str, Counter[str]] = {}
    for kind, links, date in feed_entries(server, site_key):
        (link,) = links
        by_kind.setdefault(kind, Counter())[link] += 1
        assert date == published[link]
    assert by_kind, f"{site_key} has no feed"
    for kind, counts in by_kind.items():
        assert counts == Counter(set(published)), f"{site_key} {kind}"


def test_sitemaps_list_every_article(server: DemoServer) -> None:
    for demo in SITES:
        root = ET.fromstring(fetch(url(server, demo.key, demo.config.sitemap))[2])
        listed = [loc.text for loc in root.iter(f"{SITEMAP}loc")]
        assert len(listed) == len(set(listed))
        assert {url(server, demo.key, a.path) for a in demo.articles} <= set(listed)


def test_one_site_has_a_google_news_sitemap(server: DemoServer) -> None:
    (page,) = [p for p in EXPECTED.pages if p.kind == "news-sitemap"]
    root = ET.fromstring(fetch(url(server, page.site, page.path))[2])
    dates = {
        entry.findtext(f"{SITEMAP}loc"): datetime.fromisoformat(
            entry.findtext(f"{NEWS}news/{NEWS}publication_date", "")
        )
        for entry in root.iter(f"{SITEMAP}url")
    }
    articles = [a for a in ARTICLES if a.site == page.site]
    assert dates == {url(server, a.site, a.path): a.published for a in articles}


def test_robots_txt(server: DemoServer) -> None:
    for demo in SITES:
        base = server.base_url(demo.key)
        robots = RobotFileParser(base + "/robots.txt")
        robots.parse(fetch(base + "/robots.txt")[2].decode().splitlines())
        assert base + demo.config.sitemap in (robots.site_maps() or [])
        assert all(robots.can_fetch("*", base + a.path) for a in demo.articles)
    courier = server.base_url("courier")
    robots = RobotFileParser()
    robots.parse(fetch(courier + "/robots.txt")[2].decode().splitlines())
    assert robots.crawl_delay("*") == 2
    assert not robots.can_fetch("*", courier + "/private/staff-rota.html")


# -- what extraction and dedup will meet -------------------------------------------------


@pytest.mark.parametrize("article", ARTICLES, ids=article_id)
def test_trafilatura_keeps_the_body_and_drops_the_chrome(article: ExpectedArticle) -> None:
    demo = site(article.site)
    extracted = trafilatura.extract(page_html(article), url=demo.config.origin + article.path)
    assert extracted
    for paragraph in article.paragraphs:
        assert paragraph in extracted
    lines = set(extracted.splitlines())
    chrome = demo.chrome(article.lang)
    for line in chrome.footer:
        assert line not in extracted
    assert not lines & {label for label, _ in chrome.nav}
    assert not lines & set(article.related)
    assert demo.config.tagline not in extracted


def test_boilerplate_repeats_across_a_sites_pages() -> None:
    for demo in SITES:
        pages = [
            p
            for p in EXPECTED.pages
            if p.site == demo.key and p.content_type.startswith("text/html")
        ]
        html = [render(demo.key, p.path) for p in pages] + [
            render(demo.key, a.path) for a in demo.articles
        ]
        texts = [words(lxml.html.fromstring(found[2]).text_content()) for found in html if found]
        for block in (b for b in EXPECTED.boilerplate if b.site == demo.key):
            edition = [a for a in demo.articles if a.lang == block.lang]
            count = sum(words(block.text) in text for text in texts)
            assert count >= len(edition), block
            if block.lang == demo.config.lang:
                assert count >= 4, block


def test_repeated_paragraphs_appear_twice_on_their_page() -> None:
    repeating = [a for a in ARTICLES if a.repeated]
    assert len(repeating) >= 4
    for article in repeating:
        tree = lxml.html.fromstring(page_html(article))
        paragraphs = Counter(words(p.text_content()) for p in tree.xpath("//article//p"))
        for paragraph in article.repeated:
            assert paragraphs[words(paragraph)] >= 2, article_id(article)


def test_plain_text_versions_are_flattened_like_a_crawler_would(server: DemoServer) -> None:
    flattened = [a for a in ARTICLES if a.plain_text_path]
    assert 1 <= len(flattened) <= 2
    for article in flattened:
        assert article.plain_text_path is not None
        status, content_type, body = fetch(url(server, article.site, article.plain_text_path))
        assert (status, content_type) == (200, "text/plain; charset=utf-8")
        text = body.decode("utf-8")
        demo = site(article.site)
        assert text.splitlines()[0] == article.headline
        assert article.standfirst in text
        assert text.count(article.paragraphs[0]) == 2
        assert text.count(article.caption) == 2
        assert all(line in text for line in demo.chrome(article.lang).comments)
        assert f"More from {demo.name}" in text
        assert all(headline in text for headline in article.related)


def test_render_is_pure_and_uses_the_given_base_url() -> None:
    article = ARTICLES[0]
    first = render(article.site, article.path, "http://127.0.0.1:9")
    assert first == render(article.site, article.path, "http://127.0.0.1:9")
    assert first is not None and b'href="http://127.0.0.1:9' in first[2]
    assert render(article.site, "/no/such/page") is None


# -- the content files -------------------------------------------------------------------


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """The Courier's folder alone, to break in a test."""
    root = tmp_path / "sites"
    shutil.copytree(SITES_DIR / "courier", root / "courier")
    return root


def test_a_typo_in_an_article_file_is_an_error(site_copy: Path) -> None:
    article = next((site_copy / "courier" / "articles").glob("*.yaml"))
    article.write_text(article.read_text() + "\nbyline: Nobody\n")
    with pytest.raises(ValueError, match="byline"):
        load_sites(site_copy)


def test_a_copy_must_name_an_original_that_exists(site_copy: Path) -> None:
    # The Courier's copy of the port-strike story names Meridian's, which is not there.
    with pytest.raises(ValueError, match="not an original article"):
        load_sites(site_copy)


def test_an_edit_must_apply_to_the_original() -> None:
    with pytest.raises(ValueError, match="not in the original"):
        apply_edits(("One.", "Two."), Edits(replace=(("Three", "3"),)), "test/copy")
    with pytest.raises(ValueError, match="does not have"):
        apply_edits(("One.", "Two."), Edits(drop=(2,)), "test/copy")
    assert apply_edits(
        ("One.", "Two.", "Three."),
        Edits(replace=(("Two", "2"),), drop=(0,), insert_after={1: "New."}),
        "test/copy",
    ) == ("2.", "New.", "Three.")


# -- validators and live publishing --------------------------------------------------------


def get(address: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(address, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_conditional_gets_are_answered_304(server: DemoServer) -> None:
    feed = url(server, "ledger", site("ledger").config.atom or "")
    status, headers, body = get(feed)
    assert status == 200 and body
    etag, modified = headers["ETag"], headers["Last-Modified"]
    newest = max(a.published for a in site("ledger").articles)
    assert parsedate_to_datetime(modified) == newest.replace(microsecond=0)
    assert get(feed, {"If-None-Match": etag})[:3:2] == (304, b"")
    assert get(feed, {"If-None-Match": f'"other", W/{etag}'})[0] == 304
    assert get(feed, {"If-Modified-Since": modified})[0] == 304
    # If-None-Match decides when both are sent (RFC 9110): a stale tag means a full answer.
    assert get(feed, {"If-None-Match": '"stale"', "If-Modified-Since": modified})[0] == 200
    assert get(feed, {"If-Modified-Since": "Mon, 02 Mar 2026 00:00:00 GMT"})[0] == 200
    assert get(feed, {"If-Modified-Since": "not a date"})[0] == 200
    page = article_urls(server)[0]
    page_status, page_headers, _ = get(page)
    assert page_status == 200 and "Last-Modified" not in page_headers
    assert get(page, {"If-None-Match": page_headers["ETag"]})[0] == 304
    conditional = [r for r in server.requests if r.conditional]
    assert {r.status for r in conditional} == {200, 304}


def test_live_sites_publish_one_article_at_a_time() -> None:
    import time

    from ingest.feeds import Feed, parse_feed
    from newsflow.demo.sites import Publishing

    with DemoServer(sites=["ledger"], publishing=Publishing(every=0.4, initial=3)) as live:
        newsroom = live.newsroom
        assert newsroom is not None
        feed_url = url(live, "ledger", site("ledger").config.atom or "")
        schedule = newsroom.schedule()
        assert len(schedule) == len(site("ledger").articles) - 3
        first_path, first_at = schedule[0][1], schedule[0][2]

        def entries() -> list[str]:
            feed = parse_feed(get(feed_url)[2], feed_url, "application/atom+xml")
            assert isinstance(feed, Feed)
            return [e.url for e in feed.entries]

        at_start = entries()
        assert len(at_start) == 3
        # The oldest three: published in the order they were written.
        oldest = sorted(site("ledger").articles, key=lambda a: a.published)[:3]
        assert set(at_start) == {url(live, "ledger", a.path) for a in oldest}
        assert get(url(live, "ledger", first_path))[0] == 404  # not published yet
        time.sleep(max(0.0, (first_at - datetime.now(first_at.tzinfo)).total_seconds()) + 0.3)
        now_listed = entries()
        assert now_listed[0] == url(live, "ledger", first_path)  # newest first
        assert len(now_listed) >= 4
        status, _, body = get(url(live, "ledger", first_path))
        assert status == 200
        # Dated when released, in the page as in the feed.
        assert first_at.isoformat().encode() in body


# -- briefs: short articles served only as flattened text, template and all ----------------

BRIEFS = EXPECTED.briefs
TEXT = "text/plain; charset=utf-8"


def brief_body(brief: ExpectedBrief) -> str:
    found = render(brief.site, brief.path)
    assert found is not None
    return found[2].decode("utf-8")


def extracted_brief(brief: ExpectedBrief) -> Extracted:
    found = extract(brief_body(brief).encode(), site(brief.site).config.origin + brief.path, TEXT)
    assert isinstance(found, Extracted), found
    return found


def own_text(brief: ExpectedBrief) -> tuple[str, ...]:
    return (brief.headline, brief.standfirst, brief.caption, *brief.paragraphs)


def test_each_site_has_six_short_briefs_by_two_or_three_authors() -> None:
    for demo in SITES:
        briefs = [b for b in BRIEFS if b.site == demo.key]
        assert len(briefs) == len(demo.briefs) == 6, demo.key
        authors = Counter(b.author for b in briefs)
        assert 2 <= len(authors) <= 3 and min(authors.values()) >= 2, authors
        edited = [b for b in briefs if not b.exact_repeats]
        assert len(edited) >= 2, f"{demo.key}: fewer than two briefs edit the lead's copy"
        for brief in briefs:
            assert 2 <= len(brief.paragraphs) <= 4, article_id(brief)
            assert 250 <= sum(len(p) for p in brief.paragraphs) <= 600, article_id(brief)
            assert brief.lang == demo.config.lang


def test_no_two_briefs_of_a_site_share_their_own_text() -> None:
    for demo in SITES:
        texts = [t for b in BRIEFS if b.site == demo.key for t in own_text(b)]
        repeated = [t for t, n in Counter(texts).items() if n > 1]
        assert not repeated, f"{demo.key}: {repeated}"
    # Nor with an article of the site: a brief is a story of its own.
    for brief in BRIEFS:
        articles = [a for a in ARTICLES if a.site == brief.site]
        assert not set(own_text(brief)) & {t for a in articles for t in a.paragraphs}


def test_brief_entities_are_in_the_text() -> None:
    for brief in BRIEFS:
        text = " ".join([brief.headline, brief.standfirst, *brief.paragraphs])
        for name in brief.entities.all():
            assert name in text, f"{article_id(brief)}: {name!r} is not in the text"


def test_every_brief_is_served_as_text_plain_and_never_as_html(server: DemoServer) -> None:
    addresses = brief_urls(server)
    assert len(addresses) == len(set(addresses)) == len(BRIEFS) == 18
    for address in addresses:
        status, content_type, body = fetch(address)
        assert (status, content_type) == (200, TEXT), address
        assert not body.lstrip().startswith(b"<"), address
    for demo in SITES:
        html = [
            body(demo.config.origin).decode()
            for content_type, body in routes(demo.key).values()
            if content_type.startswith("text/html")
        ]
        for brief in (b for b in BRIEFS if b.site == demo.key):
            assert not any(brief.paragraphs[0] in page for page in html), article_id(brief)


def test_briefs_have_their_own_feed_and_are_in_the_sitemap(server: DemoServer) -> None:
    from ingest.feeds import Feed, parse_feed

    for demo in SITES:
        briefs = {url(server, b.site, b.path): b for b in BRIEFS if b.site == demo.key}
        (page,) = [p for p in EXPECTED.pages if p.site == demo.key and p.kind == "briefs-feed"]
        address = url(server, demo.key, page.path)
        # Declared where the demo's ingest looks (newsflow demo polls these feeds).
        assert address in listings(server)[demo.key]["feeds"]
        status, headers, body = get(address)
        assert (status, headers["Content-Type"]) == (200, page.content_type)
        newest = max(b.published for b in briefs.values())
        assert parsedate_to_datetime(headers["Last-Modified"]) == newest
        feed = parse_feed(body, address, page.content_type)
        assert isinstance(feed, Feed)
        assert Counter(e.url for e in feed.entries) == Counter(set(briefs))
        for entry in feed.entries:
            brief = briefs[entry.url]
            assert (entry.title, entry.published_at) == (brief.headline, brief.published)
        root = ET.fromstring(fetch(url(server, demo.key, demo.config.sitemap))[2])
        dates = {
            e.findtext(f"{SITEMAP}loc"): e.findtext(f"{SITEMAP}lastmod")
            for e in root.iter(f"{SITEMAP}url")
        }
        for address, brief in briefs.items():
            assert datetime.fromisoformat(dates[address] or "") == brief.published
    # The main feeds list articles only: briefs are not announced twice.
    for _, links, _ in itertools.chain(*(feed_entries(server, s.key) for s in SITES)):
        assert not set(links) & set(brief_urls(server))


@pytest.mark.parametrize("brief", BRIEFS, ids=article_id)
def test_brief_text_is_the_brief_inside_the_sites_template(brief: ExpectedBrief) -> None:
    text = brief_body(brief)
    lines = Counter(text.splitlines())
    assert text.splitlines()[0] == brief.headline
    assert lines[brief.standfirst] == 1
    assert (lines[brief.caption], lines[brief.credited_caption]) == (2, 1)
    assert brief.credited_caption.startswith(brief.caption + " Photo: ")
    assert lines[brief.byline] == 1 and brief.author in brief.byline
    lead, *rest = brief.paragraphs
    if brief.exact_repeats:
        assert lines[lead] == 2
    else:
        (shorter,) = [p for p in brief.near_repeats if p != brief.caption]
        assert (lines[shorter], lines[lead]) == (1, 1)
        # A near repeat: the shorter form's word triples are almost all in the fuller one.
        short, full = shingles((shorter,)), shingles((lead,))
        assert len(shorter) < len(lead) and len(short & full) >= 0.8 * len(short)
    assert all(lines[p] == 1 for p in rest)
    template = site(brief.site).brief_template
    assert lines[template.comments_heading] == 3
    assert all(lines[line] == 1 for line in template.comments)
    assert lines[template.bios[brief.author]] == 1
    # The "more from" block: headline, standfirst and caption of exactly three other briefs.
    others = [b for b in BRIEFS if b.site == brief.site and b != brief]
    teased = [b for b in others if lines[b.headline]]
    assert len(teased) == 3
    assert all(lines[b.standfirst] == lines[b.caption] == 1 for b in teased)
    assert {b.path for b in teased} == set(brief.teased)


@pytest.mark.parametrize("brief", BRIEFS, ids=article_id)
def test_extraction_reads_a_brief_as_one_paragraph_per_line(brief: ExpectedBrief) -> None:
    found = extracted_brief(brief)
    assert found.title == brief.headline
    for paragraph in brief.paragraphs:
        assert paragraph in found.paragraphs, paragraph
    # Every paragraph is accounted for once: own text, byline, or template by its rule.
    accounted = [
        brief.standfirst,
        brief.credited_caption,
        brief.byline,
        *brief.paragraphs,
        *brief.template,
    ]
    assert Counter(found.paragraphs) == Counter(accounted)
    # The widget's heading over each of its lines: never two headings in a row.
    template = site(brief.site).brief_template
    at = [i for i, p in enumerate(found.paragraphs) if p == template.comments_heading]
    assert [found.paragraphs[i + 1] for i in at] == list(template.comments)


@pytest.mark.parametrize("brief", BRIEFS, ids=article_id)
def test_a_briefs_template_is_much_longer_than_its_own_body(brief: ExpectedBrief) -> None:
    paragraphs = list(extracted_brief(brief).paragraphs)
    for own in (brief.standfirst, *brief.paragraphs):
        paragraphs.remove(own)
    body = sum(len(p) for p in brief.paragraphs)
    assert sum(len(p) for p in paragraphs) > 2 * body


def test_brief_template_lines_recur_across_the_sites_briefs() -> None:
    for demo in SITES:
        briefs = [b for b in BRIEFS if b.site == demo.key]
        bios = set(demo.brief_template.bios.values())
        for line in {line for b in briefs for line in b.site_template}:
            holders = sum(line in b.site_template for b in briefs)
            assert holders >= (2 if line in bios else len(briefs)), line
            assert len(line) >= 20, line  # long enough for a site-boilerplate rule
        own = {t for b in briefs for t in own_text(b)}
        for brief in briefs:
            assert set(brief.teasers) <= own - set(own_text(brief))
            assert len(brief.teasers) == 9
            assert set(brief.short_repeats) == {demo.brief_template.comments_heading}


def test_live_sites_publish_briefs_one_at_a_time() -> None:
    start = datetime.now().astimezone()
    newsroom = Newsroom(Publishing(every=10, initial=2), ["courier", "ledger"], start)
    schedule = newsroom.brief_schedule()
    assert len(schedule) == 2 * (6 - 2)
    article_times = {at for _, _, at in newsroom.schedule()}
    assert not article_times & {at for _, _, at in schedule}
    assert newsroom.end >= max(at for _, _, at in schedule)
    key, path, at = next(s for s in schedule if s[0] == "courier")
    before, after = newsroom.site(key, start), newsroom.site(key, at)
    assert len(before.briefs) == 2 and len(after.briefs) == 3
    assert render_site(before, path) is None
    released = render_site(after, path)
    assert released is not None and released[1] == TEXT
    feed = render_site(after, after.brief_template.feed)
    assert feed is not None
    item = ET.fromstring(feed[2]).find("channel/item")  # the newest first
    assert item is not None and item.findtext("link", "").endswith(path)
    assert parsedate_to_datetime(item.findtext("pubDate", "")) == at.replace(microsecond=0)
    assert after.briefs[0].path == path and after.briefs[0].published == at


@pytest.fixture
def sites_copy(tmp_path: Path) -> Path:
    """All three sites' folders, to break in a test."""
    root = tmp_path / "sites"
    shutil.copytree(SITES_DIR, root)
    return root


def test_a_brief_must_name_an_author_with_a_bio(sites_copy: Path) -> None:
    brief = next((sites_copy / "ledger" / "briefs").glob("*.yaml"))
    text = brief.read_text()
    brief.write_text(re.sub(r"(?m)^author: .*$", "author: Nobody Known", text))
    with pytest.raises(ValueError, match="no bio"):
        load_sites(sites_copy)


def test_a_briefs_first_lead_copy_must_be_the_shorter(sites_copy: Path) -> None:
    brief = sites_copy / "courier" / "briefs" / "last-crane-leaves-pier-seven.yaml"
    text = brief.read_text()
    brief.write_text(text.replace("lead_first_copy: >-\n", "lead_first_copy: >-\n  Longer. "))
    load_sites(sites_copy)  # still shorter: fine
    brief.write_text(text.replace("on Thursday afternoon.\n", "on Thursday afternoon. " * 9 + "\n"))
    with pytest.raises(ValueError, match="shorter form"):
        load_sites(sites_copy)
