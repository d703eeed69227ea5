"""newsflow's core, shared by ingest and processors: records, topics, settings, the CLI."""

__version__ = "0.1.0"
