"""`callqa eval detectors --lang zh`: the Mandarin detectors with ASR in the loop, and Mandarin CER.

Labelled Mandarin calls (`callqa.callgen_zh`, spoken by Kokoro-82M from the optional zh-tts extra)
go through the whole pipeline (`process_call`: decode, ASR, speakers, roles, detectors) exactly
like the English set, and are scored with the same matching rules (`evaluation.detectors`). Each
call's transcript is also compared with what was said: CER after `evaluation.cer_zh` normalisation
(Traditional → Simplified, Chinese numerals → digits, no punctuation or spaces), per channel on
stereo calls (each leg against the turns spoken on it, so overlaps cannot reorder the text) and
over the whole call on mono ones.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callqa.evaluation.cer_zh import CerCount, cer_count
from callqa.evaluation.detectors import (
    DETECTOR_TIMINGS,
    EvalReport,
    Tally,
    evaluate_results,
    match_call,
)
from callqa.pipeline.types import CallFailure, CallResult, CallSource
from callqa.synth.labels import CallLabels
from callqa.synth.truth import CallTruth, truth_path

# the detectors issue 18 holds to P, R >= 0.9 with ASR in the loop: script, conduct and hold
TARGET_TYPES_ZH = (
    "greeting",
    "need_discovery",
    "identity_verification",
    "understanding_confirmed",
    "solution_explained",
    "further_help_offered",
    "satisfaction_check",
    "closing",
    "forbidden_phrase",
    "empathy",
    "escalation_request",
    "complaint",
    "hold_announced",
    "hold_thanked",
    "hold",
    "hold_unannounced",
)


def call_cer(res: CallResult, truth: CallTruth) -> dict[str, Any]:
    """One call's normalised CER (errors / reference characters), per channel on stereo."""
    turns = sorted(truth.turns, key=lambda t: t.start_s)
    utts = sorted(res.utterances, key=lambda u: u.start)
    if truth.channels > 1 and res.channels > 1:
        total = CerCount(0, 0)
        for ch in range(truth.channels):
            total = total + cer_count(
                [t.text for t in turns if t.channel == ch], [u.text for u in utts if u.channel == ch]
            )
    else:
        total = cer_count([t.text for t in turns], [u.text for u in utts])
    return {
        "call": Path(truth.audio or res.source.path).stem,
        "format": f"{'stereo' if truth.channels > 1 else 'mono'} {truth.sample_rate} Hz {truth.codec}",
        "stereo": truth.channels > 1,
        "cer": None if total.cer is None else round(total.cer, 4),
        "errors": total.errors,
        "ref_chars": total.ref_chars,
        "language": res.language,
    }


def write_call_dump(folder: Path, res: CallResult, cer_row: dict[str, Any]) -> Path:
    """What the pipeline made of one call (utterances, events, CER), to read a miss or false alarm against."""
    folder.mkdir(parents=True, exist_ok=True)
    dump = {
        "cer": cer_row,
        "utterances": [
            {"start": round(u.start, 2), "end": round(u.end, 2), "channel": u.channel, "role": u.role, "text": u.text}
            for u in res.utterances
        ],
        "events": [
            {"type": e.type, "start": round(e.start, 2), "end": round(e.end, 2), "role": e.role, "evidence": e.evidence}
            for e in res.events
        ],
    }
    path = folder / f"{cer_row['call']}.json"
    path.write_text(json.dumps(dump, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def cer_summary(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean per-call CER overall, on stereo and on mono calls (None where there are none)."""

    def mean(sel: list[dict[str, Any]]) -> float | None:
        vals = [r["cer"] for r in sel if r.get("cer") is not None]
        return round(statistics.fmean(vals), 4) if vals else None

    return {
        "mean": mean(rows),
        "mean_stereo": mean([r for r in rows if r["stereo"]]),
        "mean_mono": mean([r for r in rows if not r["stereo"]]),
    }


def subset_line(name: str, pairs: list[tuple[CallResult, CallLabels]]) -> str | None:
    """Micro P/R over the target types on a subset of calls (stereo or mono), for the notes."""
    if not pairs:
        return None
    total = Tally()
    for res, labels in pairs:
        for t in match_call(res.events, labels, types=TARGET_TYPES_ZH).values():
            total.add(t)
    p = "n/a" if total.precision is None else f"{total.precision:.2f}"
    r = "n/a" if total.recall is None else f"{total.recall:.2f}"
    return f"Mandarin {name} calls ({len(pairs)}): script/conduct/hold detectors together P {p}, R {r}"


def run_mandarin_audio(
    out_dir: Path,
    n: int,
    kit: Any,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[EvalReport, list[tuple[CallResult, CallLabels]]]:
    """Generate (or reuse) `n` labelled Mandarin calls in out_dir and run every one through process_call."""
    from callqa.callgen_zh import generate_calls_zh
    from callqa.evaluation.roles_zh import MonoRoleRow, mono_row, summary_lines
    from callqa.pipeline.call import process_call
    from callqa.pipeline.discover import sha256_file

    say = progress or (lambda _m: None)
    t = time.perf_counter()
    calls = generate_calls_zh(out_dir, n=n, seed=seed)
    synth_s = time.perf_counter() - t
    say(f"{len(calls)} labelled Mandarin calls ready in {out_dir} ({synth_s:.0f} s)")
    pairs: list[tuple[CallResult, CallLabels]] = []
    cer_rows: list[dict[str, Any]] = []
    failures: list[str] = []
    stereo: list[tuple[CallResult, CallLabels]] = []
    mono: list[tuple[CallResult, CallLabels]] = []
    role_rows: list[MonoRoleRow] = []  # mono calls: DER and role accuracy (evaluation.roles_zh)
    t = time.perf_counter()
    for g in calls:
        # the language as a recorder's sidecar would give it: detection is the ASR side's business
        src = CallSource(str(g.audio), sha256_file(g.audio), g.audio.stat().st_size, {"language": "zh"})
        res = process_call(src, kit)
        if isinstance(res, CallFailure):
            failures.append(f"{g.audio.name}: {res.stage}: {res.error}")
            continue
        pairs.append((res, g.labels))
        (stereo if res.channels > 1 else mono).append((res, g.labels))
        row = call_cer(res, CallTruth.load(truth_path(g.audio)))
        cer_rows.append(row)
        if res.channels == 1 and kit.diarizer is not None:
            role_rows.append(mono_row(res, CallTruth.load(truth_path(g.audio)), kit))
        write_call_dump(out_dir / "results", res, row)
        say(
            f"{g.audio.name}: {len(res.events)} events, CER {row['cer']}, "
            f"detectors {sum(res.timings.get(k, 0) for k in DETECTOR_TIMINGS):.2f} s"
        )
    report = evaluate_results(pairs, language="zh")
    report.failures = failures
    report.cer = cer_rows
    voices = ", ".join(sorted({v for g in calls for v in g.spec.voices.values()}))
    report.notes.append(
        f"Mandarin synthesised calls: Kokoro-82M voices {voices}, "
        f"synthesis {synth_s:.0f} s (cached per sentence), pipeline {time.perf_counter() - t:.0f} s"
    )
    report.notes += summary_lines(role_rows)
    for name, sel in (("stereo", stereo), ("mono", mono)):
        line = subset_line(name, sel)
        if line:
            report.notes.append(line)
    return report, pairs
