"""Log set-up for the command line. Library modules only call ``logging.getLogger``."""

from __future__ import annotations

import logging
import sys

from newsflow import redact


def configure(verbosity: int) -> None:
    """INFO for newsflow by default; -v adds DEBUG; -q leaves only warnings."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redact.LogFilter())  # what a client library's message may quote
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Our own messages at the chosen level; the libraries' chatter (kafka-python logs every
    # reconnect at INFO/ERROR while a broker starts) only at WARNING unless -v.
    root.setLevel(logging.WARNING if verbosity < 1 else logging.DEBUG)
    for name in ("newsflow", "ingest", "processors", "deploy"):
        logging.getLogger(name).setLevel(level)
    if verbosity < 1:
        # Both clients log each failed connection attempt with its traceback; the command
        # says in one line what it could not reach (newsflow.services), -v shows them.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
        logging.getLogger("elastic_transport").setLevel(logging.CRITICAL)
