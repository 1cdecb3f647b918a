"""Diarization speed of the offline default (Silero VAD + GE2E + spectral clustering + Viterbi).

Prints the real-time factor (audio seconds per wall second; the target is >= 10x on a 2-core CPU)
per file, the CPU-time real-time factor (audio seconds per CPU second of this process, which is
what a busy shared machine distorts least), the time per step, and the machine's load average.

    .venv/bin/python bench/diarization_speed.py [AUDIO ...]

Without arguments: the pyannote sample (30 s), the aws-pca mono call from the shared real-call
set when present (278 s, 8 kHz), and a 5-minute two-voice mono call synthesised on the spot.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _default_files(tmp: Path) -> list[Path]:
    import importlib.resources

    from callqa.synth.demo import demo_scripts
    from callqa.synth.mix import render_call
    from callqa.synth.script import CallScript

    files = [Path(str(importlib.resources.files("pyannote.audio").joinpath("sample", "sample.wav")))]
    pca = Path("/work/shared/data/realcalls/aws-pca/Auto0_GUID_000_AGENT_ChrisL_DT_2025-02-19T06-01-22_Mono.wav")
    if pca.is_file():
        files.append(pca)
    items = [it for _, script, _ in demo_scripts()[:5] for it in script.items]
    long = tmp / "synth_5min_mono.wav"
    render_call(
        CallScript(items, voices={"agent": "joe_high", "customer": "joe"}),
        long,
        sample_rate=8000,
        stereo=False,
        telephone=True,
        noise_floor_dbfs=-60.0,
        write_truth=False,
    )
    files.append(long)
    return files


def main(argv: list[str]) -> int:
    import torch

    from callqa.config.settings import load_settings
    from callqa.models.offline_diarizer import OfflineDiarizer
    from callqa.pipeline.decode import decode

    settings = load_settings().models.diarization
    t = time.perf_counter()
    diarizer = OfflineDiarizer.load(settings)
    print(f"diarizer: {diarizer.description}")
    print(
        f"load: {time.perf_counter() - t:.2f} s; torch threads {torch.get_num_threads()}; cpus {os.cpu_count()}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(a) for a in argv] or _default_files(Path(tmp))
        diarizer(np.zeros(16000 * 3, np.float32), num_speakers=2)  # warm-up (onnxruntime, torch kernels)
        tot_audio = tot_wall = tot_cpu = 0.0
        print(f"{'file':52s} {'audio s':>8s} {'wall s':>7s} {'RTF':>7s} {'CPU RTF':>8s}  steps (s)")
        for f in files:
            audio = decode(f)
            wav = audio.mono()
            w0, c0 = time.perf_counter(), time.process_time()
            fa = diarizer.analyse(wav, num_speakers=settings.num_speakers)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            steps = " ".join(f"{k}={v:.2f}" for k, v in fa.timings.items())
            print(
                f"{f.name[:52]:52s} {audio.duration_s:8.1f} {wall:7.2f} {audio.duration_s / wall:6.1f}x "
                f"{audio.duration_s / cpu:7.1f}x  {steps}; windows={fa.n_windows} speakers={fa.k}"
            )
            tot_audio, tot_wall, tot_cpu = tot_audio + audio.duration_s, tot_wall + wall, tot_cpu + cpu
        print(
            f"TOTAL {tot_audio:.1f} s of audio: {tot_audio / tot_wall:.1f}x real time (wall), "
            f"{tot_audio / tot_cpu:.1f}x per CPU second; load average now "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
