"""Text detectors: running time as a share of call duration, and precision/recall per detector.

Runs `detect_text_events` over the labelled transcript sets (tests/data/zh_calls, en_calls_text)
with each embedding configuration and prints, per language: kit build time (model loading, once
per worker), detection time (per call work: fuzzy + pinyin + sentence embeddings), its share of
the calls' duration (target <= 2 %), and P/R per detector. Note the load average printed first:
on a shared machine every figure is inflated.

    .venv/bin/python bench/text_detectors.py [--repeat 3] [--embeddings default|use-multilingual-v3|off]
"""

from __future__ import annotations

import argparse
import os
import time

from callqa.config.settings import load_settings
from callqa.evaluation.metrics import evaluate_text_detectors, load_text_dataset
from callqa.pipeline.detectors.text import build_text_kit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="detection passes over each set (best is kept)")
    ap.add_argument("--embeddings", default="default", help="default (MiniLM en, USE zh), a model name/dir, or off")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    over: dict = {}
    if args.embeddings == "off":
        over = {"detect": {"text": {"semantic": False}}}
    elif args.embeddings != "default":
        over = {"models": {"embeddings": args.embeddings}}
    settings = load_settings(overrides=over)
    t0 = time.perf_counter()
    kit = build_text_kit(settings)
    print(f"kit build {time.perf_counter() - t0:.1f} s: {kit.description}")
    for n in kit.notes:
        print("  note:", n)
    for lang in ("zh", "en"):
        calls = load_text_dataset(lang)
        best = None
        for _ in range(args.repeat):
            rep = evaluate_text_detectors(calls, kit)
            best = rep if best is None or rep.detect_s < best.detect_s else best
        assert best is not None
        n_utts = sum(len(c.utterances) for c in calls)
        print(
            f"\n{lang}: {best.n_calls} calls, {n_utts} turns, {best.audio_s:.0f} s of calls; "
            f"detection {best.detect_s:.2f} s = {100 * best.overhead:.2f} % of duration "
            f"({1000 * best.detect_s / best.n_calls:.0f} ms per call)"
        )
        for name, s in sorted(best.scores.items()):
            print(f"  {name:<24} P={s.precision:.2f} R={s.recall:.2f}  (tp {s.tp}, fp {s.fp}, fn {s.fn})")


if __name__ == "__main__":
    main()
