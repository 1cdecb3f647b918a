"""Printing and saving what `callqa eval detectors` measured (tables, hold summary, JSON report)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from callqa.evaluation.detectors import EvalReport


def write_report(out_dir: Path, reports: list[EvalReport], real: list[dict[str, Any]] | None) -> Path:
    path = out_dir / "eval_detectors.json"
    path.write_text(
        json.dumps(
            {"reports": [r.to_dict() for r in reports], "real_calls": real}, indent=2, ensure_ascii=False, default=str
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def summary_rows(report: EvalReport) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for typ, t in sorted(report.tallies.items()):
        p = "" if t.precision is None else f"{t.precision:.2f}"
        r = "" if t.recall is None else f"{t.recall:.2f}"
        rows.append((typ, p, r, str(t.n_pred), str(t.n_label)))
    return rows


def hold_summary(report: EvalReport) -> dict[str, Any]:
    found = [h for h in report.holds if h.get("found")]
    errs = [abs(h["error_s"]) for h in found]
    return {
        "holds": len(report.holds),
        "found": len(found),
        "max_abs_error_s": max(errs) if errs else None,
        "mean_abs_error_s": round(statistics.fmean(errs), 3) if errs else None,
        "within_1s": sum(1 for e in errs if e <= 1.0),
        "kind_ok": sum(1 for h in found if h["kind_ok"]),
        "announced_ok": sum(1 for h in found if h["announced_ok"]),
        "thanked_ok": sum(1 for h in found if h["thanked_ok"]),
    }


def _fmt(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def print_report(report: EvalReport, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    kind = ", synthesised calls with ASR" if report.cer else ""
    t = Table(
        title=f"detectors, {report.language}{kind}: {report.n_calls} calls, {report.audio_s / 60:.1f} min of audio",
        header_style="bold",
    )
    for c in ("detector", "precision", "recall", "detections", "labels"):
        t.add_column(c, justify="left" if c == "detector" else "right")
    for row in summary_rows(report):
        t.add_row(escape(row[0]), *row[1:])  # "negative_emotion[dev]" is not rich markup
    console.print(t)
    if report.holds:
        h = hold_summary(report)
        console.print(
            f"holds: {h['found']}/{h['holds']} found; duration error |max| {_fmt(h['max_abs_error_s'])} s, "
            f"mean {_fmt(h['mean_abs_error_s'], 3)} s, within ±1 s: {h['within_1s']}/{h['found']}; "
            f"kind right {h['kind_ok']}, announced right {h['announced_ok']}, thanked right {h['thanked_ok']}"
        )
    if report.audio_s:
        split = (
            (
                f"; text detectors {100 * (report.detector_s - report.audio_detector_s) / report.audio_s:.2f} %, "
                f"audio/timing detectors {100 * report.audio_detector_s / report.audio_s:.2f} %"
            )
            if report.audio_detector_s
            else ""
        )
        console.print(
            f"detector time: {report.detector_s:.2f} s for {report.audio_s:.0f} s of audio = "
            f"{100 * (report.detector_share or 0):.2f} %{split} (ASR {report.asr_s:.0f} s)"
        )
    for k in (
        "hold_total_s",
        "dead_air_total_s",
        "interruptions_agent",
        "interruptions_customer",
        "negative_emotion_count",
    ):
        errs = report.metric_errors.get(k)
        if errs:
            console.print(
                f"metric {k}: mean |error| {statistics.fmean(abs(e) for e in errs):.2f} over {len(errs)} calls"
            )
    if report.cer:
        print_cer(report.cer, console)
    for f in report.failures:
        console.print(f"[red]failed[/] {escape(f)}")
    for note in report.notes:
        console.print(note)


def print_cer(rows: list[dict[str, Any]], console: Any) -> None:
    """Per-call Mandarin CER (normalised: Simplified, digits, no punctuation) and the means by channel layout."""
    from rich.markup import escape
    from rich.table import Table

    from callqa.evaluation.detectors_zh import cer_summary

    t = Table(title="CER per call (normalised)", header_style="bold")
    for c in ("call", "format", "CER", "errors", "characters"):
        t.add_column(c, justify="left" if c in ("call", "format") else "right")
    for r in rows:
        t.add_row(escape(r["call"]), escape(r["format"]), _fmt(r["cer"], 3), str(r["errors"]), str(r["ref_chars"]))
    console.print(t)
    m = cer_summary(rows)
    console.print(
        f"mean CER {_fmt(m['mean'], 3)}; stereo {_fmt(m['mean_stereo'], 3)}, mono {_fmt(m['mean_mono'], 3)}",
        highlight=False,
    )
