"""Sources -> Kafka: feeds, sitemaps, polite fetching, URL canonicalisation, WARC input."""
