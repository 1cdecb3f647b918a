"""Synthesised 3-10 minute stereo 8 kHz calls for the throughput benchmarks, plus the real
AWS LCA agent/caller pairs joined into stereo files.

The long calls are built by chaining the demo calls' scripts (greetings, verification, holds with
music, dead air, complaints, closings) until the target length is reached, so the ASR sees real
speech, real hold music and real silences in realistic proportions. Rendering is deterministic
(see callqa.synth), so a cached file is reused when its parameters have not changed.

    .venv/bin/python bench/bench_calls.py OUT_DIR [--minutes 3 5 10] [--codec pcm_mulaw]
"""

from __future__ import annotations

import argparse
import json
import os
import wave
from pathlib import Path

import numpy as np

from callqa.synth.demo import demo_scripts
from callqa.synth.mix import render_call
from callqa.synth.script import CallScript
from callqa.synth.truth import CallTruth, truth_path

REALCALLS = Path(os.environ.get("CALLQA_REALCALLS", "/work/shared/data/realcalls"))
AWS_PAIRS = ("Auto_Repairs_40_UTC", "Auto_Repairs_49_UTC")


def long_script(minutes: float, offset: int = 0) -> CallScript:
    """Chain demo scripts (starting at `offset`) until the estimated length reaches `minutes`."""
    scripts = [s for _, s, _ in demo_scripts()]
    items: list = []
    est = 0.0
    k = offset
    while est < minutes * 60:
        script = scripts[k % len(scripts)]
        for it in script.items:
            items.append(it)
            if hasattr(it, "text"):
                # piper speaks ~12 characters a second (measured on these scripts); gaps add the rest
                est += len(it.text) / 12.0 + it.gap_before_s
            else:
                est += it.duration_s
        k += 1
    return CallScript(items, voices=dict(scripts[offset % len(scripts)].voices))


def synth_calls(out_dir: Path, minutes: list[float], codec: str = "pcm_mulaw") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, m in enumerate(minutes):
        path = out_dir / f"synth_{m:g}min_{i}.wav"
        stamp = path.with_suffix(".params.json")
        params = {"minutes": m, "offset": i, "codec": codec, "v": 2}
        if not (path.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == params):
            render_call(
                long_script(m, offset=i),
                path,
                sample_rate=8000,
                stereo=True,
                codec=codec,
                telephone=True,
                noise_floor_dbfs=-62.0,
                seed=100 + i,
            )
            stamp.write_text(json.dumps(params))
        paths.append(path)
    return paths


def aws_stereo_calls(out_dir: Path) -> list[Path]:
    """Join each AWS LCA agent/caller pair (8 kHz mono, time-aligned) into one stereo wav."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem in AWS_PAIRS:
        src = [REALCALLS / "aws-lca" / f"{stem}_{side}.wav" for side in ("agent", "caller")]
        if not all(p.is_file() for p in src):
            continue
        dest = out_dir / f"{stem}_stereo.wav"
        if not dest.is_file():
            chans = []
            for p in src:
                with wave.open(str(p)) as w:
                    sr = w.getframerate()
                    chans.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))
            n = min(len(c) for c in chans)
            with wave.open(str(dest), "wb") as o:
                o.setnchannels(2)
                o.setsampwidth(2)
                o.setframerate(sr)
                o.writeframes(np.stack([c[:n] for c in chans], axis=1).tobytes())
        paths.append(dest)
    return paths


def reference_text(path: Path) -> str | None:
    """The synthesised call's script text in time order (None for real calls: no transcript)."""
    tp = truth_path(path)
    if not tp.is_file():
        return None
    truth = CallTruth.load(tp)
    return " ".join(t.text for t in sorted(truth.turns, key=lambda t: t.start_s))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--minutes", type=float, nargs="+", default=[3, 5, 10])
    ap.add_argument("--codec", default="pcm_mulaw")
    args = ap.parse_args(argv)
    for p in synth_calls(args.out_dir, args.minutes, args.codec) + aws_stereo_calls(args.out_dir):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
