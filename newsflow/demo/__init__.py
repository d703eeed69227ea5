"""Sample news sites that ``newsflow demo`` serves on 127.0.0.1 and feeds to the pipeline.

The content is newsflow's own, written for the demo: three fictional sites with the
features real news sites have and the pipeline must cope with (boilerplate, repeated
paragraphs, syndicated copies, feeds, sitemaps, robots.txt). See ``newsflow.demo.sites``.
"""

from newsflow.demo.sites import EXPECTED, SITES, DemoServer, DemoSite, article_urls, render

__all__ = ["EXPECTED", "SITES", "DemoServer", "DemoSite", "article_urls", "render"]
