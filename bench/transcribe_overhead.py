"""How much does callqa's decode + transcribe path cost over bare faster-whisper?

Both sides use the same loaded CTranslate2 model (same directory, int8, same CPU threads) and the
same decoding options (beam 5, VAD on with the same min silence, word timestamps,
condition_on_previous_text off, hallucination_silence_threshold), and both consume every segment.
Bare faster-whisper decodes the file itself (PyAV, mono mix); callqa decodes with
callqa.pipeline.decode (PyAV, per channel, a steeper resampler) and builds its typed records.
Runs alternate bare/callqa so that load from other processes hits both alike; the median is kept.

    .venv/bin/python bench/transcribe_overhead.py [extra files...] [--repeat 5] [--threads 2]

Target: overhead ratio callqa_time / bare_time <= 1.10 on mono calls. Stereo files are
transcribed per channel by callqa (two ASR passes by design), so their ratio is not overhead;
they are marked and left out of the verdict.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from importlib.resources import files
from pathlib import Path

from callqa.config.settings import ASRSettings, load_settings
from callqa.models.asr import WhisperASR
from callqa.models.getter import resolve_asr
from callqa.pipeline.decode import decode
from callqa.pipeline.transcribe import transcribe

REALCALLS = Path(os.environ.get("CALLQA_REALCALLS", "/work/shared/data/realcalls"))
DEFAULT_FILES = ["pyannote/sample.wav", "azure-speech-sdk/katiesteve.wav", "aws-lca/agent.wav"]
TARGET = 1.10


def default_files() -> list[Path]:
    out = []
    for rel in DEFAULT_FILES:
        p = REALCALLS / rel
        if not p.is_file() and rel == "pyannote/sample.wav":  # also shipped inside pyannote.audio
            p = Path(str(files("pyannote.audio").joinpath("sample", "sample.wav")))
        if p.is_file():
            out.append(p)
        else:
            print(f"skipping missing default file {p}", file=sys.stderr)
    return out


def run_bare(asr: WhisperASR, path: Path, settings: ASRSettings) -> tuple[float, float, int]:
    c0, t0 = time.process_time(), time.perf_counter()
    segments, _info = asr.model.transcribe(
        str(path),
        beam_size=settings.beam_size,
        word_timestamps=True,
        vad_filter=True,
        vad_parameters={"min_silence_duration_ms": settings.vad_min_silence_ms},
        condition_on_previous_text=settings.condition_on_previous_text,
        hallucination_silence_threshold=settings.hallucination_silence_threshold,
    )
    n_words = sum(len(s.words or ()) for s in segments)
    return time.perf_counter() - t0, time.process_time() - c0, n_words


def run_callqa(asr: WhisperASR, path: Path, settings: ASRSettings) -> tuple[float, float, float, int, float, int]:
    c0, t0 = time.process_time(), time.perf_counter()
    audio = decode(path)
    t1 = time.perf_counter()
    transcript = transcribe(audio, asr, settings)
    t2 = time.perf_counter()
    return t2 - t0, time.process_time() - c0, t1 - t0, len(transcript.words), audio.duration_s, audio.n_channels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="extra recordings (added to the defaults)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per side per file (median kept)")
    ap.add_argument("--threads", type=int, default=2, help="CTranslate2 CPU threads")
    ap.add_argument("--model", default="base", help="models.asr.model (size name, local dir or hub id)")
    ap.add_argument("--only", action="store_true", help="bench only the files given, not the defaults")
    args = ap.parse_args(argv)

    paths = ([] if args.only else default_files()) + list(args.files)
    if not paths:
        ap.error("no files to benchmark")

    models = load_settings().models
    settings = models.asr.model_copy(
        update={
            "model": args.model,
            "device": "cpu",
            "compute_type": "int8",
            "cpu_threads": args.threads,
            "vad_filter": True,
        }
    )
    resolved = resolve_asr(settings, models.cache_dir, hf_token=models.hf_token)
    asr = WhisperASR(resolved, settings)
    print(
        f"model: {asr.description} at {resolved.location}; cpu_threads={asr.cpu_threads}; "
        f"beam={settings.beam_size}; VAD min silence {settings.vad_min_silence_ms} ms; repeat={args.repeat}"
    )

    rows = []
    for path in paths:
        run_bare(asr, path, settings)  # warm-up: page cache, VAD session, allocator
        run_callqa(asr, path, settings)
        bare_t, bare_cpu, cq_t, cq_cpu, dec_t = [], [], [], [], []
        for _ in range(args.repeat):
            t, cpu, bare_words = run_bare(asr, path, settings)
            bare_t.append(t)
            bare_cpu.append(cpu)
            t, cpu, d, cq_words, dur, nch = run_callqa(asr, path, settings)
            cq_t.append(t)
            cq_cpu.append(cpu)
            dec_t.append(d)
        b, c = statistics.median(bare_t), statistics.median(cq_t)
        bc, cc = statistics.median(bare_cpu), statistics.median(cq_cpu)
        rows.append((path, dur, nch, b, c, statistics.median(dec_t), bare_words, cq_words, bc, cc))
        print(f"  done {path.name}: bare {b:.2f}s ({bare_t}), callqa {c:.2f}s ({cq_t})", file=sys.stderr)

    head = (
        f"{'file':<34} {'audio s':>7} {'ch':>2} {'bare s':>7} {'bare RTF':>8} {'callqa s':>8} {'decode s':>8} "
        f"{'callqa RTF':>10} {'ratio':>6} {'cpu ratio':>9} {'words b/c':>9}"
    )
    print()
    print(head)
    print("-" * len(head))
    mono_b = mono_c = mono_bc = mono_cc = 0.0
    for path, dur, nch, b, c, d, bw, cw, bc, cc in rows:
        name = f"{path.parent.name}/{path.name}"[-34:]
        mark = "" if nch == 1 else " *"
        print(
            f"{name:<34} {dur:7.1f} {nch:2d} {b:7.2f} {dur / b:7.2f}x {c:8.2f} {d:8.2f} {dur / c:9.2f}x "
            f"{c / b:6.3f} {cc / bc:9.3f} {bw:4d}/{cw:<4d}{mark}"
        )
        if nch == 1:
            mono_b, mono_c, mono_bc, mono_cc = mono_b + b, mono_c + c, mono_bc + bc, mono_cc + cc
    print("-" * len(head))
    if mono_b:
        ratio = mono_c / mono_b
        verdict = "OK" if ratio <= TARGET else "OVER TARGET"
        print(
            f"overall (mono files): callqa/bare wall = {ratio:.3f} (target <= {TARGET:.2f}: {verdict}); "
            f"CPU-time ratio = {mono_cc / mono_bc:.3f}"
        )
    load = os.getloadavg()
    print(
        f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs "
        "(wall times are only comparable when nothing else runs; the CPU-time ratio is steadier)"
    )
    if any(r[2] > 1 for r in rows):
        print("* stereo: callqa transcribes each channel separately (by design), bare faster-whisper the mix")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
