"""Running time of the audio/timing detectors as a share of audio duration (no ASR).

Renders (or reuses) the labelled calls of `callqa.callgen`, places each turn's words at its true
position (what ASR would give, without its cost), and times every stage: the line scan (features
and music spans, run before ASR in the pipeline), holds, dead air, pace and emotion. Prints the
share of audio duration per stage and in total; target: <= 2 % together with the text detectors.

    .venv/bin/python bench/detectors_audio_speed.py [--n 10] [--dir /tmp/callqa-bench-calls]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from callqa.callgen import generate_calls
from callqa.models.emotion import LexiconSentiment
from callqa.pipeline.decode import decode
from callqa.pipeline.detectors.emotion import detect_emotion
from callqa.pipeline.detectors.hold import detect_holds
from callqa.pipeline.detectors.pace import detect_pace
from callqa.pipeline.detectors.silence import detect_dead_air
from callqa.pipeline.linescan import scan_line
from callqa.pipeline.types import Utterance, Word
from callqa.synth.truth import CallTruth, truth_path


def utterances_from_truth(truth: CallTruth) -> list[Utterance]:
    out = []
    for k, t in enumerate(sorted(truth.turns, key=lambda t: t.start_s)):
        toks = t.text.split()
        step = (t.end_s - t.start_s) / len(toks)
        words = [Word(t.start_s + i * step, t.start_s + (i + 1) * step, w, 0.9, t.channel) for i, w in enumerate(toks)]
        out.append(Utterance(k, f"ch{t.channel}", t.start_s, t.end_s, t.text, words, t.channel, t.role))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/callqa-bench-calls"))
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    calls = generate_calls(args.dir, n=args.n)
    lexicon = LexiconSentiment()
    lexicon.score("warm up", "en")
    stages = {"scan": 0.0, "hold": 0.0, "dead_air": 0.0, "pace": 0.0, "emotion": 0.0}
    audio_s = 0.0
    for g in calls:
        audio = decode(g.audio)
        truth = CallTruth.load(truth_path(g.audio))
        utts = utterances_from_truth(truth)
        audio_s += audio.duration_s
        t = time.perf_counter()
        scan = scan_line(audio)
        stages["scan"] += time.perf_counter() - t
        t = time.perf_counter()
        _, _, holds = detect_holds(g.labels.stem, scan, utts, [])
        stages["hold"] += time.perf_counter() - t
        t = time.perf_counter()
        detect_dead_air(g.labels.stem, scan, utts, holds)
        stages["dead_air"] += time.perf_counter() - t
        t = time.perf_counter()
        detect_pace(g.labels.stem, utts, scan, "en")
        stages["pace"] += time.perf_counter() - t
        t = time.perf_counter()
        detect_emotion(g.labels.stem, utts, audio, scan, "en", lexicon)
        stages["emotion"] += time.perf_counter() - t
    print(f"{len(calls)} calls, {audio_s:.0f} s of stereo 8 kHz audio")
    for k, v in stages.items():
        print(f"  {k:<9} {v:7.3f} s  {100 * v / audio_s:6.3f} % of audio duration")
    total = sum(stages.values())
    print(f"  {'total':<9} {total:7.3f} s  {100 * total / audio_s:6.3f} % of audio duration")


if __name__ == "__main__":
    main()
