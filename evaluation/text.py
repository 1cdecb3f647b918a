"""Text-detector evaluation for `callqa eval detectors`: labelled transcripts, no ASR.

Mandarin has no offline TTS that Whisper understands, so its script/conduct/hold-cue detectors
are scored on hand-written labelled transcripts with word timings (tests/data/zh_calls/); the
English text set (tests/data/en_calls_text/) scores the same detectors without ASR errors.
"""

from __future__ import annotations

from typing import Any

from callqa.config.settings import Settings, load_settings
from callqa.evaluation.metrics import TextEvalReport, evaluate_text_detectors
from callqa.pipeline.detectors.text import TextDetectorKit, build_text_kit


def evaluate_language(
    language: str, settings: Settings | None = None, kit: TextDetectorKit | None = None
) -> dict[str, Any]:
    """Per-detector counts for one bundled language set, in the shape the eval command tallies."""
    kit = kit or build_text_kit(settings or load_settings())
    rep: TextEvalReport = evaluate_text_detectors(language, kit)
    return {
        "language": language,
        "n_calls": rep.n_calls,
        "audio_s": rep.audio_s,
        "detect_s": rep.detect_s,
        "method": kit.description,
        "detectors": {
            name: {
                "n_pred": s.tp + s.fp,
                "tp_pred": s.tp,
                "n_label": s.tp + s.fn,
                "tp_label": s.tp,
                "precision": s.precision,
                "recall": s.recall,
            }
            for name, s in rep.scores.items()
        },
        "errors": rep.errors,
    }
