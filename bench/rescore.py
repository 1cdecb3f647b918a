"""Rescoring speed: N synthetic stored calls rescored with the default scorecard.

    python bench/rescore.py [--calls 10000] [--db /tmp/rescore_bench.duckdb]

Prints the time to load stored events/metrics, score, and write results, and the Prefect flow's
wall time (target: 10,000 calls in ≤ 30 s on a 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--scorecard", default="inbound_service_en")
    args = ap.parse_args(argv)

    from callqa import rowgen
    from callqa.flows.rescore import rescore
    from callqa.pipeline import store
    from callqa.pipeline.rescoring import load_contexts, rescore_contexts
    from callqa.pipeline.scoring import load_scorecard

    db = args.db or Path(tempfile.mkdtemp()) / "rescore_bench.duckdb"
    if db.exists():
        db.unlink()
    t = time.perf_counter()
    frames = rowgen.generate(args.calls, seed=1)
    con = store.connect(db)
    rowgen.load_into(con, frames)
    gen_s = time.perf_counter() - t
    n_events = len(frames["events"])
    print(
        f"stored {args.calls:,} synthetic calls, {n_events:,} events, {len(frames['call_metrics']):,} metrics "
        f"in {gen_s:.1f} s ({db})"
    )

    card = load_scorecard(args.scorecard)
    t0 = time.perf_counter()
    ctx = load_contexts(con)
    t1 = time.perf_counter()
    scored = rescore_contexts(card, ctx, all_languages=True)
    t2 = time.perf_counter()
    store.replace_scores(con, card.id, card.version, scored)
    t3 = time.perf_counter()
    con.close()
    crit = len(scored) * len(card.criteria)
    print(
        f"functions: load {t1 - t0:.2f} s, score {t2 - t1:.2f} s ({crit:,} criterion decisions), write {t3 - t2:.2f} s,"
        f" total {t3 - t0:.2f} s for {len(scored):,} calls -> {len(scored) / (t3 - t0):,.0f} calls/s"
    )

    t4 = time.perf_counter()
    summary = rescore(db_path=str(db), scorecard=args.scorecard, all_languages=True)
    t5 = time.perf_counter()
    print(
        f"prefect flow `callqa rescore`: in-flow {summary['wall_s']:.2f} s, with flow start-up {t5 - t4:.2f} s"
        f" -> target ≤ 30 s for 10,000 calls: {'OK' if summary['wall_s'] <= 30 * args.calls / 10_000 else 'MISSED'}"
    )
    print(f"load average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
