"""The demo call set of `callqa demo`: eight inbound service calls with known content.

The dialogue is data (`data/demo_calls.yaml`); this module reads it and renders the calls. Six
are English (piper, always available); two are Mandarin, spoken by the optional zh-tts extra
(`callqa.synth.tts_zh`), and are left out -- `unavailable_demo_calls` says why -- when it is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from callqa.synth.errors import SynthError
from callqa.synth.mix import render_call
from callqa.synth.script import CallScript
from callqa.synth.truth import CallTruth, truth_path

DEMO_CALLS_FILE = "data/demo_calls.yaml"


def demo_scripts() -> list[tuple[str, CallScript, dict[str, Any]]]:
    """(stem, script, sidecar metadata) for the eight inbound service calls (six English, two Mandarin).

    Each script's turns carry truth tags (greeting, identity_verification, hold_announce,
    hold_thanks, empathy, closing, ...) so detector tests can check against them; the metadata is
    what a recorder would export and becomes the `<stem>.json` sidecar.
    """
    calls = yaml.safe_load(files("callqa.synth").joinpath(DEMO_CALLS_FILE).read_text(encoding="utf-8"))
    return [
        (
            c["stem"],
            CallScript.from_dict({"items": c["items"], "voices": c["voices"], "language": c.get("language", "en")}),
            dict(c["metadata"]),
        )
        for c in calls
    ]


def unavailable_demo_calls() -> dict[str, str]:
    """Demo calls this machine cannot speak (stem -> why): the Mandarin ones without the zh-tts extra."""
    from callqa.synth.tts import get_voice
    from callqa.synth.tts_zh import INSTALL_HINT, zh_tts_available

    if zh_tts_available():
        return {}
    return {
        stem: f"Mandarin voices need the zh-tts extra: {INSTALL_HINT}"
        for stem, script, _ in demo_scripts()
        if any(get_voice(v).engine == "kokoro" for v in script.voices.values())
    }


# stem -> (suffix, sample rate, codec); most calls as telephone 8 kHz µ-law stereo WAV
DEMO_FORMATS: dict[str, tuple[str, int, str]] = {
    "acme_billing_question": (".wav", 8000, "pcm_mulaw"),
    "brightline_password_reset": (".wav", 8000, "pcm_mulaw"),
    "parcelway_delivery_complaint": (".mp3", 8000, "libmp3lame"),
    "acme_address_change_hold": (".wav", 8000, "pcm_mulaw"),
    "brightline_no_greeting": (".flac", 16000, "flac"),
    "acme_meter_reading_paraphrased": (".wav", 8000, "pcm_alaw"),
    "huaxin_power_bill_zh": (".wav", 8000, "pcm_mulaw"),
    "dongfang_broadband_forbidden_zh": (".mp3", 8000, "libmp3lame"),
}


def write_demo_calls(
    out_dir: str | Path, *, seed: int = 7, with_truth: bool = True, only: Iterable[str] | None = None
) -> list[Path]:
    """Render the demo calls into `out_dir` with a `<stem>.json` metadata sidecar beside each
    and (unless with_truth is False) a `<stem>.truth.json`. `only` picks calls by stem.
    Calls in `unavailable_demo_calls()` are skipped unless named in `only` (then their error
    says what to install). Returns the audio paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scripts = demo_scripts()
    if only is not None:
        wanted = set(only)
        unknown = wanted - {stem for stem, _, _ in scripts}
        if unknown:
            raise SynthError(None, f"unknown demo call(s): {', '.join(sorted(unknown))}")
    skip = unavailable_demo_calls() if only is None else {}
    paths: list[Path] = []
    for k, (stem, script, meta) in enumerate(scripts):
        if (only is not None and stem not in wanted) or stem in skip:
            continue
        suffix, sr, codec = DEMO_FORMATS.get(stem, (".wav", 8000, "pcm_mulaw"))
        audio_path = out_dir / f"{stem}{suffix}"
        render_call(
            script,
            audio_path,
            sample_rate=sr,
            stereo=True,
            agent_channel=0,
            codec=codec,
            telephone=True,
            noise_floor_dbfs=-62.0,
            seed=seed + k,
            write_truth=with_truth,
        )
        sidecar = dict(meta)
        sidecar.setdefault("language", script.language)
        (out_dir / f"{stem}.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        paths.append(audio_path)
    return paths


def main(argv: Iterable[str] | None = None) -> int:
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="python -m callqa.synth", description="Write the demo call set.")
    ap.add_argument("out_dir", nargs="?", default="demo_calls")
    args = ap.parse_args(list(argv) if argv is not None else None)
    t = time.perf_counter()
    paths = write_demo_calls(args.out_dir)
    for p in paths:
        tr = CallTruth.load(truth_path(p))
        print(f"{p}  {tr.duration_s:5.1f} s  {tr.sample_rate} Hz  {tr.codec}")
    print(f"{len(paths)} calls in {time.perf_counter() - t:.1f} s")
    return 0
