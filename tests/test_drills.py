"""The fault drills (tests/drills.py), each run once on the real stack: a worker killed
and restarted on an empty state, a second worker joining and killed at once, workers
joining and leaving while pages trickle in, the broker restarted, Elasticsearch down for
a minute, every page sent again. Each ends with the audit and a comparison with an
undisturbed run. ``bench/drills.py`` runs them many times under load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deploy.stack import Stack
from newsflow.records import RawPage
from newsflow.settings import Settings
from processors.entities import Tagger
from tests import drills

pytestmark = pytest.mark.stack


@pytest.fixture(scope="session")
def drill_pages() -> list[RawPage]:
    return drills.drill_pages()


@pytest.fixture(scope="session")
def expected(drill_pages: list[RawPage]) -> drills.Undisturbed:
    result = drills.undisturbed(drill_pages, Tagger())
    assert len(result.texts) >= 50 and len(result.filtered) >= 10
    assert result.boilerplate  # the drills can tell a lost table write
    return result


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", list(drills.DRILLS))
def test_drill(
    name: str,
    pipeline_settings: Settings,
    stack: Stack,
    es: Any,
    drill_pages: list[RawPage],
    expected: drills.Undisturbed,
    tmp_path: Path,
) -> None:
    rig = drills.Rig(pipeline_settings, stack, es, drill_pages, expected, tmp_path)
    result = drills.DRILLS[name](rig)
    assert result.lost == 0 and result.conflicting == 0, result.summary
    assert result.duplicated == 0
    assert result.differing == [], result.details or result.differing
    assert not result.boilerplate_differs
    assert result.worker_errors == []
    assert result.dead_lettered == len(drills.POISON) * (2 if name == "replay" else 1)
