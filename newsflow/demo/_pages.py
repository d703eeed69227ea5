"""HTML and flattened-text pages of the demo sites, from each site's own templates.

Every page goes through the site's ``page.html``, so navigation, footer and feed links are
the same on all of a site's pages, as the boilerplate filters downstream expect of a real
site. Text from the content files is HTML-escaped here, where it meets markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import TypeVar

from newsflow.demo._content import Article, Brief, Chrome, DemoSite, Page

_Item = TypeVar("_Item", Article, Brief)


def _p(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{escape(text)}</p>"


def _links(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(
        f'<li><a href="{escape(href)}">{escape(label)}</a></li>' for label, href in pairs
    )


def human_date(when: datetime, chrome: Chrome) -> str:
    return chrome.date_format.format(
        day=when.day,
        month=chrome.months[when.month - 1],
        year=when.year,
        time=f"{when.hour:02d}:{when.minute:02d}",
    )


def _shell(
    site: DemoSite,
    lang: str,
    *,
    base_url: str,
    path: str,
    title: str,
    description: str,
    main: str,
    og_title: str | None = None,
    head_extra: str = "",
) -> str:
    chrome = site.chrome(lang)
    return site.page_template.substitute(
        lang=lang,
        title=escape(title),
        description=escape(description),
        site_name=escape(site.name),
        og_title=escape(og_title or title),
        og_type="article" if head_extra else "website",  # only articles have article:* tags
        canonical=escape(base_url + path),
        head_extra=head_extra,
        nav=_links(list(chrome.nav)),
        main=main,
        footer="\n".join(_p(line) for line in chrome.footer),
    )


def _article_head(site: DemoSite, article: Article, base_url: str) -> str:
    published = article.published.isoformat()
    section = escape(site.config.sections[article.section])
    tags = [
        f'<meta property="article:published_time" content="{published}">',
        f'<meta property="article:section" content="{section}">',
        f'<meta name="author" content="{escape(article.author)}">',
        f'<meta property="og:description" content="{escape(article.standfirst)}">',
        f'<meta property="og:image" content="{escape(base_url + article.image.src)}">',
    ]
    if site.config.json_ld:
        tags.append(_json_ld(site, article, base_url))
    return "\n".join(tags)


def _json_ld(site: DemoSite, article: Article, base_url: str) -> str:
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.headline,
        "datePublished": article.published.isoformat(),
        "author": {"@type": "Person", "name": article.author},
        "publisher": {"@type": "Organization", "name": site.name},
        "mainEntityOfPage": base_url + article.path,
    }
    # "</" inside a script element would end it early.
    body = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return f'<script type="application/ld+json">{body}</script>'


def _body(site: DemoSite, article: Article) -> str:
    """The article's paragraphs as the site's templates lay them out, repetitions included."""
    chrome = site.chrome(article.lang)
    out: list[str] = []
    for index, paragraph in enumerate(article.paragraphs):
        out.append(_p(paragraph))
        if index == article.repeat_paragraph:
            out.append(_p(paragraph))  # the broken template: the same paragraph again
        if index == 1 and article.pullquote:
            lead = escape(article.paragraphs[0])
            out.append(f'<blockquote class="pull-quote"><p>{lead}</p></blockquote>')
        if index == site.config.newsletter_inline_after:
            out.append(f"<p><strong>{escape(chrome.newsletter)}</strong></p>")
    if article.note:
        out.append(_p(article.note, "article-note"))
    return "\n".join(out)


def related(site: DemoSite, article: Article, count: int = 3) -> tuple[Article, ...]:
    """The next articles of the same edition, wrapping round: the same few headlines
    recur on many pages, as a real "related" block's do."""
    return _following([a for a in site.articles if a.lang == article.lang], article, count)


def _following(items: Sequence[_Item], item: _Item, count: int) -> tuple[_Item, ...]:
    """The ``count`` items after ``item``, wrapping round, never ``item`` itself."""
    start = items.index(item)
    steps = range(1, min(count, len(items) - 1) + 1)
    return tuple(items[(start + step) % len(items)] for step in steps)


def article_page(site: DemoSite, article: Article, base_url: str) -> str:
    chrome = site.chrome(article.lang)
    inline = site.config.newsletter_inline_after is not None
    main = site.article_template.substitute(
        headline=escape(article.headline),
        standfirst=escape(article.standfirst),
        byline=escape(f"{chrome.byline_prefix} {article.author}"),
        author=escape(article.author),
        published_iso=article.published.isoformat(),
        published_human=escape(human_date(article.published, chrome)),
        section_label=escape(site.config.sections[article.section]),
        section_url=escape(section_path(site, article.section)),
        image_src=escape(article.image.src),
        caption=escape(article.image.caption),
        body=_body(site, article),
        newsletter="" if inline else _p(chrome.newsletter),
        related_heading=escape(chrome.related_heading),
        related=_links([(a.headline, a.path) for a in related(site, article)]),
        comments="\n".join(_p(line) for line in chrome.comments),
    )
    return _shell(
        site,
        article.lang,
        base_url=base_url,
        path=article.path,
        title=f"{article.headline} | {site.name}",
        og_title=article.headline,
        description=article.standfirst,
        main=main,
        head_extra=_article_head(site, article, base_url),
    )


def section_path(site: DemoSite, section: str) -> str:
    lang = next((a.lang for a in site.articles if a.section == section), site.config.lang)
    return site.config.section_path.format(section=section, lang=lang)


def listing_page(
    site: DemoSite, articles: tuple[Article, ...], base_url: str, *, heading: str, path: str
) -> str:
    """A home or section page: a heading and headline links, nothing else."""
    lang = articles[0].lang if articles else site.config.lang
    items = _links([(a.headline, a.path) for a in articles])
    main = (
        f'<section class="listing">\n<h1>{escape(heading)}</h1>\n<ul>\n{items}\n</ul>\n</section>'
    )
    title = site.name if path == "/" else f"{heading} | {site.name}"
    description = site.config.description
    return _shell(
        site, lang, base_url=base_url, path=path, title=title, description=description, main=main
    )


def text_page(site: DemoSite, page: Page, base_url: str) -> str:
    paragraphs = "\n".join(_p(text) for text in page.paragraphs)
    main = (
        f'<div class="page page-{page.kind}">\n<h1>{escape(page.title)}</h1>\n{paragraphs}\n</div>'
    )
    return _shell(
        site,
        site.config.lang,
        base_url=base_url,
        path=page.path,
        title=f"{page.title} | {site.name}",
        description=page.description,
        main=main,
    )


def plain_text(site: DemoSite, article: Article) -> str:
    """The article as a crawler that flattens HTML to text would store it: caption and
    lead twice (figure and pull-quote), the comment widget and a "more from" block kept."""
    chrome = site.chrome(article.lang)
    byline = f"{chrome.byline_prefix} {article.author} | {human_date(article.published, chrome)}"
    more = [chrome.more_from.format(site=site.name), *(a.headline for a in related(site, article))]
    blocks = [
        article.headline,
        article.standfirst,
        article.image.caption,
        article.image.caption,
        byline,
        article.paragraphs[0],
        *article.paragraphs,
        *chrome.comments,
        "\n".join(more),
    ]
    return "\n\n".join(blocks) + "\n"


def teased(site: DemoSite, brief: Brief, count: int = 3) -> tuple[Brief, ...]:
    """The briefs in a brief's "more from" block: the next ones, wrapping round."""
    return _following(site.briefs, brief, count)


def brief_byline(site: DemoSite, brief: Brief) -> str:
    chrome = site.chrome(brief.lang)
    return f"{chrome.byline_prefix} {brief.author} | {human_date(brief.published, chrome)}"


def brief_text(site: DemoSite, brief: Brief) -> str:
    """A brief as a crawler that flattens HTML stores it, the whole template kept: the
    caption three times (figure, lightbox, credited), the lead twice (the second copy
    sometimes edited), the comment widget's heading over each of its three lines, the
    author's bio, a "read more" line and teasers of three other briefs.

    Every paragraph is one line; lines of one block never read as wrapped prose.
    """
    template = site.brief_template
    heading = template.comments_heading
    widget = [f"{heading}\n{line}" for line in template.comments]
    more = [template.more_from.format(site=site.name)]
    for other in teased(site, brief):
        more += [other.headline, other.standfirst, other.caption]
    blocks = [
        brief.headline,
        brief.standfirst,
        brief.caption,
        brief.caption,
        brief.credited_caption,
        brief_byline(site, brief),
        brief.lead_first_copy,
        *brief.paragraphs,
        *widget,
        template.bios[brief.author],
        template.read_more.format(section=template.section),
        "\n".join(more),
    ]
    return "\n\n".join(blocks) + "\n"
