"""How long does `callqa audit-report` take on a large centre's database? (issue 19: <= 60 s at 100k calls)

Builds the synthetic database of bench/db_views.py (DuckDB SQL, no Python loops), gives the calls the
survey and routing fields of migration 0011 (team, tier, csat, nps: csat loosely following the score so
the correlation section has something to find), then writes the audit report for the last 30 days compared
with the 30 before, in English and Mandarin, and prints the wall time of each.

    .venv/bin/python bench/audit_report.py                        # 100,000 calls over 90 days
    .venv/bin/python bench/audit_report.py --calls 20000 --keep --db /tmp/audit-bench.duckdb
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from db_views import generate  # noqa: E402

from callqa.pipeline import store  # noqa: E402
from callqa.workspace.audit import build_audit_report  # noqa: E402

TARGET_S = 60.0


def add_survey_fields(db: Path) -> None:
    con = store.connect(db)
    try:
        con.execute("""
            UPDATE calls SET team = 'team-' || (1 + hash(calls.agent_id) % 8),
                   tier = 1 + CAST(hash(calls.call_id, 't') % 10 = 0 AS INTEGER),
                   csat = CASE WHEN hash(calls.call_id, 's') % 3 = 0
                               THEN least(5, greatest(1, round(s.percent / 20 + (hash(calls.call_id) % 3) - 1))) END,
                   nps = CASE WHEN hash(calls.call_id, 's') % 3 = 0
                              THEN CAST(hash(calls.call_id, 'n') % 11 AS INTEGER) END
            FROM current_scores s WHERE s.call_id = calls.call_id""")
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the database (and reuse it when present)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="callqa-audit-bench-"))
    db = args.db or work / "audit.duckdb"
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if not (args.keep and db.exists()):
        t = time.perf_counter()
        generate(db, args.calls, days=args.days, agents=250)
        add_survey_fields(db)
        print(f"generated {args.calls:,} calls in {time.perf_counter() - t:.1f} s")
    ok = True
    for lang in ("en", "zh"):
        t = time.perf_counter()
        s = build_audit_report(db, work / f"out-{lang}", compare="previous", lang=lang, force=True)
        dt = time.perf_counter() - t
        ok &= dt <= TARGET_S
        print(
            f"audit-report --lang {lang}: {s.span} vs {s.compared}, {s.calls:,} calls: {dt:.1f} s "
            f"(target <= {TARGET_S:.0f} s: {'PASS' if dt <= TARGET_S else 'FAIL'}) -> {s.html}"
        )
    if not args.keep and args.db is None:
        db.unlink(missing_ok=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
