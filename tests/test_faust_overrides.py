"""processors.faust_overrides: the pins, the ledger that decides what is committed, and
Faust's real consumer and stream iterators (compiled and pure Python) with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import faust_overrides
from processors.faust_overrides import OffsetLedger
from tests.conftest import ROOT

tp = TP("pages", 0)


def test_the_versions_read_are_the_versions_pinned_and_installed() -> None:
    faust_overrides.check_versions()  # raises UnsupportedFaust on any other version
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name, pinned in faust_overrides.PINNED.items():
        assert any(d.startswith(name) and d.endswith(f"=={pinned}") for d in deps), name


def test_the_faust_functions_read_are_unchanged() -> None:
    # A mismatch means Faust changed under the reasoning in faust_overrides' docstring:
    # re-read those functions, adapt the module, then update RELIED_ON.
    assert faust_overrides.relied_on_sources() == faust_overrides.RELIED_ON


@pytest.mark.parametrize("iterator", ["compiled", "python"])
def test_a_message_the_stream_skips_is_never_committed_over(iterator: str) -> None:
    env = dict(os.environ)
    env.pop("NO_CYTHON", None)
    if iterator == "python":
        env["NO_CYTHON"] = "1"
    out = subprocess.run(
        [sys.executable, "-m", "tests.faust_guard_scenario"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["iterator"] == iterator
    # Offset 11 came from an older generation: the stream skipped it.
    assert result["newsflow"]["handed"] == result["faust"]["handed"] == [10, 12, 13]
    assert result["newsflow"]["consumer"] == "LedgerConsumer"
    assert result["newsflow"]["committed"] == 11  # stalls at the hole: 11 is read again
    assert result["faust"]["committed"] == 14  # Faust's own bookkeeping commits over it


# -- the ledger ----------------------------------------------------------------------------


def test_the_commit_moves_only_over_an_unbroken_run() -> None:
    ledger = OffsetLedger()
    ledger.reset(tp, 11, 11)
    for offset in (12, 13):
        ledger.done(tp, offset)
    assert ledger.advance(tp) is None  # 11 is missing: Faust would have committed 14
    ledger.done(tp, 11)
    assert ledger.advance(tp) == 14
    ledger.committed_to(tp, 14)
    assert ledger.advance(tp) is None  # nothing new


def test_nothing_is_committed_before_the_first_offset_is_processed() -> None:
    ledger = OffsetLedger()
    ledger.reset(tp, 0, None)  # never committed: sought to the log start
    ledger.done(tp, 3)
    assert ledger.advance(tp) is None
    ledger.done(tp, 0)
    assert ledger.advance(tp) == 1


def test_offsets_before_the_base_and_repeats_change_nothing() -> None:
    ledger = OffsetLedger()
    ledger.reset(tp, 5, 5)
    ledger.done(tp, 3)
    ledger.done(tp, 5)
    ledger.done(tp, 5)
    assert ledger.advance(tp) == 6


def test_partitions_not_sought_since_assignment_are_not_tracked() -> None:
    ledger = OffsetLedger()
    ledger.started(tp, 0)
    ledger.done(tp, 0)
    assert ledger.partitions() == []  # fetched again by whoever owns it
    ledger.reset(tp, 0, None)
    ledger.forget([tp])
    ledger.done(tp, 0)
    assert ledger.advance(tp) is None


def test_a_seek_keeps_what_was_processed_past_the_new_base() -> None:
    ledger = OffsetLedger()
    ledger.reset(tp, 0, None)
    for offset in (2, 3):
        ledger.done(tp, offset)
    ledger.reset(tp, 0, None)  # sought back to the committed offset
    ledger.done(tp, 0)
    ledger.done(tp, 1)
    assert ledger.advance(tp) == 4


def test_a_stuck_head_is_reported_only_after_the_grace_and_while_the_agent_is_idle() -> None:
    ledger = OffsetLedger()
    ledger.reset(tp, 7, 7)
    assert ledger.stuck_head(tp, 7, 0.0, 10) is None  # nothing in the log at 7
    assert ledger.stuck_head(tp, 9, 0.0, 10) is None  # the clock starts
    assert ledger.stuck_head(tp, 9, 5.0, 10) is None
    assert ledger.stuck_head(tp, 9, 10.0, 10) == 7
    other = TP("pages", 1)
    ledger.reset(other, 0, None)
    ledger.started(other, 0)  # the agent is busy with a message of the same topic
    assert ledger.stuck_head(tp, 9, 11.0, 10) is None
    assert ledger.stuck_head(tp, 9, 30.0, 10) is None  # the clock restarts after busy
    ledger.done(other, 0)
    ledger.started(tp, 7)  # the head itself is in flight
    assert ledger.stuck_head(tp, 9, 31.0, 10) is None


def test_each_seek_back_to_the_same_head_is_a_strike_until_it_is_processed() -> None:
    ledger = OffsetLedger()
    ledger.reset(tp, 3, 3)
    for n in range(1, 4):
        ledger.stuck_head(tp, 9, 100.0 * n, 10)
        assert ledger.stuck_head(tp, 9, 100.0 * n + 20, 10) == 3
        assert ledger.strikes(tp) == n
    ledger.done(tp, 3)
    assert ledger.advance(tp) == 4
    assert ledger.strikes(tp) == 0
    ledger.pass_over(tp, 8)
    assert ledger.base(tp) == 8


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 40),
    dropped=st.sets(st.integers(0, 39)),
    order=st.randoms(use_true_random=False),
)
def test_nothing_unprocessed_is_ever_committed(n: int, dropped: set[int], order: object) -> None:
    """Whatever is processed, in whatever order, and whatever is dropped (skipped by the
    stream, cleared from a queue), no commit passes an offset that was not processed;
    once the dropped ones are processed (after a seek back), the commit reaches the end."""
    ledger = OffsetLedger()
    ledger.reset(tp, 0, None)
    offsets = [o for o in range(n) if o not in dropped]
    order.shuffle(offsets)  # type: ignore[attr-defined]
    committed = 0
    for offset in offsets:
        ledger.done(tp, offset)
        new = ledger.advance(tp)
        if new is not None:
            assert all(o not in dropped for o in range(committed, new))
            committed = new
            ledger.committed_to(tp, new)
    first_hole = min((o for o in dropped if o < n), default=n)
    assert committed == first_hole
    for offset in sorted(o for o in dropped if o < n):
        ledger.done(tp, offset)
    assert ledger.advance(tp) in (n, None)
    assert (ledger.base(tp) or 0) == n


def test_a_worker_that_did_not_stop_cleanly_rebuilds_its_tables(tmp_path: Path) -> None:
    datadir = tmp_path / "faust"
    table = datadir / "nf-pipeline-data" / "v1" / "tables" / "boilerplate-0.db"
    table.mkdir(parents=True)
    # First start ever: nothing there to distrust.
    assert faust_overrides.discard_unclean_state(tmp_path / "absent") is False
    faust_overrides.mark_clean_stop(datadir)
    assert faust_overrides.discard_unclean_state(datadir) is False  # stopped cleanly
    assert table.is_dir()
    # The mark is used up by the start: a kill from now on leaves none behind.
    assert faust_overrides.discard_unclean_state(datadir) is True
    assert not (datadir / "nf-pipeline-data").exists()
