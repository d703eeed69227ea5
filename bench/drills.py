"""The fault drills of tests/drills.py, each run many times with both cores loaded.

Each run is a pipeline of its own (topics under a unique prefix) on a stack of the
benchmark's own (ports 29092/29200, state in .stack-bench; started if it is not running
and left running: `NEWSFLOW_STACK_DIR=.stack-bench newsflow stack down` stops it), fed
the demo sites' pages and real fundus pages, disturbed mid-stream, then audited and
compared with an undisturbed run. Both cores are kept busy by other processes the whole
time (``--no-load`` to measure without): a loaded machine is where timing-bound faults
show.

    .venv/bin/python bench/drills.py                  # every drill 20 times
    .venv/bin/python bench/drills.py --runs 3 --drill crash --drill replay
    .venv/bin/python bench/drills.py --table bench-drills.jsonl   # the table of earlier runs

Prints, per drill: runs, pages lost, duplicated documents, articles unlike the
undisturbed run, boilerplate state unlike it, dead letters beyond the poison pages, runs
that could not finish, seeks back to a stuck partition head (the safety net), and the
time from the fault until every page had its outcome (median and worst). Each run's
result is also appended as a JSON line to ``--out`` as it finishes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the drills live with the tests

from elasticsearch import Elasticsearch  # noqa: E402
from kafka import KafkaAdminClient  # noqa: E402

from deploy.stack import Stack  # noqa: E402
from newsflow.settings import Settings  # noqa: E402
from processors.app import prepare  # noqa: E402
from processors.entities import Tagger  # noqa: E402
from tests import drills  # noqa: E402
from tests.conftest import SHARED_DATA, TEST_STACK  # noqa: E402


def bench_stack(instance: int) -> Stack:
    """A stack of the benchmark's own, so the tests can run beside it (the drills restart
    the broker and stop Elasticsearch); ``--instance`` N > 0 runs another one beside."""
    base = 29000 + 1000 * instance
    return Stack(
        TEST_STACK.model_copy(
            update={
                "dir": ROOT / (".stack-bench" + (f"-{instance}" if instance else "")),
                "kafka_port": base + 92,
                "kafka_controller_port": base + 93,
                "es_port": base + 200,
                "es_transport_port": base + 300,
            }
        )
    )


def burn() -> None:
    while True:
        pass


def one_run(name: str, stack: Stack, es: Any, pages: list[Any], expected: Any) -> dict[str, Any]:
    base = Settings(
        kafka_bootstrap=stack.settings.kafka_bootstrap,
        elasticsearch_url=stack.settings.elasticsearch_url,
        topic_partitions=2,
    )
    with TemporaryDirectory(prefix="drill-") as tmp:
        s = base.model_copy(
            update={"topic_prefix": f"bench-{uuid.uuid4().hex[:10]}", "state_dir": Path(tmp)}
        )
        prepare(s)
        rig = drills.Rig(s, stack, es, pages, expected, Path(tmp))
        started = time.monotonic()
        try:
            result = asdict(drills.DRILLS[name](rig))
        except Exception as err:  # the drill could not finish (a worker died, say)
            result = {"name": name, "error": f"{type(err).__name__}: {str(err)[-2000:]}"}
        result["seconds"] = time.monotonic() - started
        _cleanup(s, es)
    return result


def _cleanup(s: Settings, es: Any) -> None:
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    try:
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(s.topic_prefix)])
    finally:
        admin.close()
    concrete = list(es.indices.get(index=f"{s.topic_prefix}-*", allow_no_indices=True))
    if concrete:
        es.indices.delete(index=",".join(concrete))


def _status(r: dict[str, Any]) -> str:
    if "error" in r:
        return "failed: " + r["error"].splitlines()[0][:200]
    bad = r["lost"] or r["conflicting"] or r["duplicated"] or r["differing"]
    bad = bad or r.get("worker_errors")
    return "LOST, DUPLICATED OR DIFFERENT" if bad or r["boilerplate_differs"] else "ok"


def table(results: list[dict[str, Any]], names: list[str]) -> str:
    rows = [
        f"{'drill':<22}{'runs':>5}{'lost':>6}{'dup':>5}{'differ':>7}{'state':>6}"
        f"{'dlq+':>6}{'failed':>7}{'seeks':>6}{'recover s (median/max)':>25}"
    ]
    for name in names:
        mine = [r for r in results if r["name"] == name]
        done = [r for r in mine if "error" not in r]
        rec = [r["recover_seconds"] for r in done]
        poison = len(drills.POISON) * (2 if name == "replay" else 1)
        rows.append(
            f"{name:<22}{len(mine):>5}"
            f"{sum(r['lost'] + r['conflicting'] for r in done):>6}"
            f"{sum(r['duplicated'] for r in done):>5}"
            f"{sum(len(r['differing']) for r in done):>7}"
            f"{sum(r['boilerplate_differs'] for r in done):>6}"
            f"{sum(r['dead_lettered'] - poison for r in done):>6}"
            f"{len(mine) - len(done):>7}"
            f"{sum(r.get('sought_back', 0) for r in done):>6}"
            + (f"{statistics.median(rec):>15.1f} / {max(rec):>6.1f}" if rec else f"{'-':>25}")
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="runs of each drill")
    ap.add_argument("--drill", action="append", choices=list(drills.DRILLS), help="only these")
    ap.add_argument("--no-load", action="store_true", help="leave the cores idle")
    ap.add_argument("--out", type=Path, default=Path("bench-drills.jsonl"), help="JSON lines")
    ap.add_argument(
        "--instance", type=int, default=0, help="N > 0: a stack of its own on ports 29092+1000N"
    )
    ap.add_argument(
        "--table", type=Path, help="only print the table of the runs in this JSON lines file"
    )
    args = ap.parse_args()
    if not (SHARED_DATA / "extraction" / "fundus").is_dir():
        sys.exit(f"real pages not found under {SHARED_DATA} (../shared/data beside the repo)")
    names = args.drill or list(drills.DRILLS)
    if args.table:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line]
        print(table(rows, names))
        return

    stack = bench_stack(args.instance)
    if not all(node.healthy() for node in stack.nodes):
        where = f"{stack.settings.kafka_bootstrap}, {stack.settings.elasticsearch_url}"
        print(f"starting the benchmark's stack ({where})...", file=sys.stderr)
        stack.up()
    pages = drills.drill_pages()
    print(f"{len(pages)} pages; computing the undisturbed run...", file=sys.stderr)
    expected = drills.undisturbed(pages, Tagger())
    burners = (
        []
        if args.no_load
        else [multiprocessing.Process(target=burn, daemon=True) for _ in range(2)]
    )
    for b in burners:
        b.start()
    results: list[dict[str, Any]] = []
    es = Elasticsearch(stack.settings.elasticsearch_url, request_timeout=30)
    try:
        for run in range(1, args.runs + 1):
            for name in names:
                result = one_run(name, stack, es, pages, expected)
                results.append(result)
                with args.out.open("a") as out:
                    out.write(json.dumps({"run": run, **result}) + "\n")
                status = _status(result)
                print(
                    f"run {run:>2} {name:<22} {status} ({result['seconds']:.0f}s)", file=sys.stderr
                )
    finally:
        for b in burners:
            b.terminate()
        es.close()
    load = "idle cores" if args.no_load else "both cores loaded by 2 other processes"
    print(f"\n{len(pages)} pages per run, {load}\n")
    print(table(results, names))


if __name__ == "__main__":
    main()
