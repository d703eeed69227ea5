"""The worker's log: newsflow's one format and levels, plain lines wherever it goes.

Left to itself, Faust's worker (through mode) replaces the logging set-up with a handler
and format of its own, drives a terminal spinner that writes cursor escapes
(``\\x1b[?25l``) into a log file as readily as into a terminal, and logs ASCII tables of
its subscriptions, assignments and offsets at INFO. The worker keeps newsflow's set-up
instead (``newsflow.logs``, configured by the command line): ``--loglevel`` sets newsflow's
own loggers, the worker's start and stop lines and, at ``debug``, everything; Faust's
services and the Kafka client say only warnings unless asked (``-v``).

One message is demoted rather than hidden: aiokafka logs an ERROR when it finds no group
coordinator, which is what a fresh broker answers while it creates its offsets topic for
the first consumer group; the client retries and the group forms a moment later.
"""

from __future__ import annotations

import logging

LEVELS = {
    "crit": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}
OWN = ("newsflow", "ingest", "processors", "deploy")
# Faust's worker service: its "Starting...", "Ready" and "Stopping..." lines (one each, no
# tables), so that a worker run at INFO shows when it is up and when it has stopped.
LIFECYCLE = "faust.worker"

# Where and how aiokafka says it found no coordinator, read off aiokafka 0.14.0
# (GroupCoordinator.ensure_coordinator_known); tests/test_worker_logs.py checks both.
COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
COORDINATOR_LOOKUP_FAILED = "Group Coordinator Request failed: %s"


def configure(loglevel: str, verbosity: int = 0) -> None:
    """Levels for a worker run with ``--loglevel`` under the command line's ``-v``/``-q``
    (``verbosity``, already applied by ``newsflow.logs.configure``): ``-v`` leaves every
    logger at DEBUG; ``-q`` keeps no less than warnings."""
    install_filters()
    if verbosity >= 1:
        logging.getLogger(LIFECYCLE).setLevel(logging.NOTSET)
        return
    level = LEVELS[loglevel]
    if verbosity < 0:
        level = max(level, logging.WARNING)
    for name in (*OWN, LIFECYCLE):
        logging.getLogger(name).setLevel(level)
    logging.getLogger().setLevel(level if level == logging.DEBUG else max(level, logging.WARNING))


class FormingGroup(logging.Filter):
    """aiokafka's "no coordinator" ERROR, said at DEBUG: shown only where DEBUG is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _no_coordinator(record):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


def _no_coordinator(record: logging.LogRecord) -> bool:
    from aiokafka.errors import GroupCoordinatorNotAvailableError  # type: ignore[import-untyped]

    args = record.args if isinstance(record.args, tuple) else ()
    return (
        record.msg == COORDINATOR_LOOKUP_FAILED
        and len(args) == 1
        and isinstance(args[0], GroupCoordinatorNotAvailableError)
    )


def install_filters() -> None:
    """On the one logger concerned, once (a logger filter sees only that logger's own
    records, not its children's)."""
    logger = logging.getLogger(COORDINATOR_LOGGER)
    if not any(isinstance(f, FormingGroup) for f in logger.filters):
        logger.addFilter(FormingGroup())
