"""The `rescore` flow: apply a scorecard version to every stored call from its stored events and metrics.

No audio and no ASR (the stored rows are rebuilt as scoring input by callqa.pipeline.rescoring);
unscorable calls (callqa.pipeline.scorability) are skipped, as when they were processed.
The scorecard is validated before the database is opened, and results land in one transaction, so
an invalid scorecard or a crash changes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from callqa.pipeline import store
from callqa.pipeline.rescoring import load_contexts, rescore_contexts
from callqa.pipeline.scoring import load_scorecard, resolve_scorecard_path


@flow(name="rescore", validate_parameters=False)
def rescore(db_path: str, scorecard: str, all_languages: bool = False) -> dict[str, Any]:
    """Re-apply one scorecard version to every stored call; results are kept per version."""
    logger = get_run_logger()
    t0 = time.perf_counter()
    card = load_scorecard(scorecard)  # raises ConfigError before the database is touched
    source = str(resolve_scorecard_path(scorecard))
    con = store.connect(db_path)
    try:
        store.register_scorecard(con, card, source)
        t_load = time.perf_counter()
        contexts = load_contexts(con)
        row = con.execute("SELECT count(*) FROM calls WHERE scorable_status = 'unscorable'").fetchone()
        unscorable = int(row[0]) if row else 0
        t_score = time.perf_counter()
        scored = rescore_contexts(card, contexts, all_languages)
        t_write = time.perf_counter()
        store.replace_scores(con, card.id, card.version, scored)
        t_end = time.perf_counter()
    finally:
        con.close()
    summary = {
        "scorecard_id": card.id,
        "version": card.version,
        "calls_stored": len(contexts) + unscorable,
        "calls_scored": len(scored),
        "unscorable": unscorable,  # not graded, as when they were processed
        "flagged": sum(1 for _, s in scored if s.flagged),
        "grades": {g: sum(1 for _, s in scored if s.grade == g) for g in ("excellent", "good", "fair", "poor", "na")},
        "load_s": round(t_score - t_load, 3),
        "score_s": round(t_write - t_score, 3),
        "write_s": round(t_end - t_write, 3),
        "wall_s": round(t_end - t0, 3),
        "db_path": str(Path(db_path)),
    }
    logger.info("rescored %d calls with %s v%d in %.1f s", len(scored), card.id, card.version, summary["wall_s"])
    return summary
