"""WER and speed of the cheap ASR options on the real recordings that have a reference text.

Every option is a set of overrides on the default `models.asr` settings, run through callqa's own
decode + transcribe (pipeline/transcribe.py, models/asr.py), one pass per option and file:

  base            the defaults (batched greedy, VAD min silence 500 ms, speech pad 400 ms, threshold 0.5)
  beam5           beam_size 5
  vocab_hotwords  the recording's vocabulary (below) as Whisper hotwords (models.asr.vocabulary)
  vocab_prompt    the same vocabulary as the initial prompt
  vad_sil160 / vad_sil1000 / vad_sil2000   VAD min_silence_duration_ms
  vad_pad200 / vad_pad800                  VAD speech_pad_ms
  vad_thr035      VAD threshold 0.35
  vocab_pad200, beam5_vocab_pad200         the better ones together
  seq             sequential decoding (batch_size 0), greedy
  seq_prev        sequential with condition_on_previous_text (batched decoding never conditions)

Recordings and references (nothing here is tuned on held-out data):
  pyannote/sample.wav   30 s, 16 kHz, a two-person phone conversation; pyannote.audio's sample.stm
  sample_8k_ulaw        the same, as a telephone line carries it (8 kHz µ-law, made on the fly)
  aws-lca/agent.wav     142 s, 8 kHz, agent side of a demo call; the agent lines of
                        agent-assist-demo-script.md (the script he read, not verbatim-checked)
  whisper/jfk.flac      11 s, the well-known sentence
Vocabulary (what a contact centre would configure: company, product and agent names): agent.wav
"ACME Bank", "Babu", "Rewards card"; the pyannote sample the speakers' names "Diane", "Sheila"
(standing in for an agent name from the call's metadata); jfk none (so the prompt options equal base).

WER: jiwer over lower-cased text without punctuation, pooled over the words of all recordings.
Speed: CPU seconds of this process (all threads; what a busy shared machine distorts least) and wall
seconds, with the range of the 1-minute load average over the option's passes; with --repeat N the
options are run N rounds in turn and each keeps its fastest round.

    .venv/bin/python bench/asr_options.py [--options base,beam5,...] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import jiwer
import numpy as np

from callqa.config.settings import load_settings
from callqa.models.asr import WhisperASR
from callqa.pipeline.decode import decode
from callqa.pipeline.transcribe import transcribe
from callqa.pipeline.types import DecodedAudio

REALCALLS = Path(os.environ.get("CALLQA_REALCALLS", Path(__file__).resolve().parents[1] / "../shared/data/realcalls"))
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."

OPTIONS: dict[str, dict] = {
    "base": {},
    "beam5": {"beam_size": 5},
    "vocab_hotwords": {"vocabulary_as": "hotwords"},
    "vocab_prompt": {"vocabulary_as": "initial_prompt"},
    "vad_sil160": {"vad_min_silence_ms": 160},
    "vad_sil1000": {"vad_min_silence_ms": 1000},
    "vad_sil2000": {"vad_min_silence_ms": 2000},
    "vad_pad200": {"vad_speech_pad_ms": 200},
    "vad_pad800": {"vad_speech_pad_ms": 800},
    "vad_thr035": {"vad_threshold": 0.35},
    "vocab_pad200": {"vocabulary_as": "hotwords", "vad_speech_pad_ms": 200},
    "beam5_vocab_pad200": {"beam_size": 5, "vocabulary_as": "hotwords", "vad_speech_pad_ms": 200},
    "seq": {"batch_size": 0},
    "seq_prev": {"batch_size": 0, "condition_on_previous_text": True},
}
USES_VOCABULARY = {"vocab_hotwords", "vocab_prompt", "vocab_pad200", "beam5_vocab_pad200"}

_norm = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.SubstituteRegexes({r"(\d)\s*%": r"\1 percent", r"-": " "}),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


@dataclass
class Item:
    name: str
    audio: DecodedAudio
    reference: str
    vocabulary: list[str]


def _stm_text() -> str:
    stm = Path(str(files("pyannote.audio").joinpath("sample", "sample.stm")))
    return " ".join(line.split(maxsplit=5)[5] for line in stm.read_text(encoding="utf-8").splitlines() if line.strip())


def _agent_script(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\*\*Agent\*\*:\s*(.*)", line.strip())
        if m:
            text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", m.group(1))  # [ACMEBank.com](http://...) -> the text
            lines.append(text.replace("*", "").strip())
    return " ".join(lines)


def _telephone(audio: DecodedAudio, out: Path) -> DecodedAudio:
    """The 16 kHz recording as an 8 kHz µ-law telephone file, decoded back as the pipeline would."""
    from scipy.signal import resample_poly

    from callqa.synth.audio import write_audio

    write_audio(out, resample_poly(audio.channels[0], 1, 2).astype(np.float32), 8000, "pcm_mulaw")
    return decode(out)


def items(tmp: Path) -> list[Item]:
    sample = decode(Path(str(files("pyannote.audio").joinpath("sample", "sample.wav"))))
    stm = _stm_text()
    out = [
        Item("pyannote sample", sample, stm, ["Diane", "Sheila"]),
        Item("sample 8k µ-law", _telephone(sample, tmp / "sample_8k_ulaw.wav"), stm, ["Diane", "Sheila"]),
    ]
    lca = REALCALLS / "aws-lca"
    if (lca / "agent.wav").is_file():
        script = _agent_script(lca / "agent-assist-demo-script.md")
        out.append(Item("aws-lca agent.wav", decode(lca / "agent.wav"), script, ["ACME Bank", "Babu", "Rewards card"]))
    jfk = REALCALLS / "whisper" / "jfk.flac"
    if jfk.is_file():
        # a stereo studio file: one mix, or the sentence would be transcribed once per channel
        both = decode(jfk)
        mono = dataclasses.replace(both, channels=[np.mean(np.stack(both.channels), axis=0).astype(np.float32)])
        out.append(Item("whisper jfk", mono, JFK, []))
    return out


def _load() -> float:
    return os.getloadavg()[0]


def _one_pass(asr: WhisperASR, opt, data: list[Item], with_vocabulary: bool) -> dict:
    load0, cpu0, wall0 = _load(), time.process_time(), time.perf_counter()
    refs, hyps, texts, per = [], [], {}, {}
    for it in data:
        tr = transcribe(it.audio, asr, opt, language="en", vocabulary=it.vocabulary if with_vocabulary else [])
        hyp = " ".join(s.text for s in tr.segments)
        per[it.name] = round(jiwer.wer(it.reference, hyp, reference_transform=_norm, hypothesis_transform=_norm), 4)
        refs.append(it.reference)
        hyps.append(hyp)
        texts[it.name] = hyp
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "wer": per,
        "wer_pooled": round(jiwer.wer(refs, hyps, reference_transform=_norm, hypothesis_transform=_norm), 4),
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "load": [round(load0, 2), round(_load(), 2)],
        "text": texts,
    }


def run(option_names: list[str], repeat: int = 1) -> list[dict]:
    """One pass per option, `repeat` rounds over all options (so that load from other processes
    hits every option alike); the fastest round's CPU and wall time are kept."""
    settings = load_settings()
    asr = WhisperASR.from_settings(settings.models)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = items(Path(tmp))
        transcribe(data[-1].audio, asr, settings.models.asr, language="en")  # warm-up, untimed
        audio_s = round(sum(it.audio.duration_s for it in data), 1)
        for round_ in range(repeat):
            for name in option_names:
                opt = settings.models.asr.model_copy(update=OPTIONS[name])
                r = _one_pass(asr, opt, data, name in USES_VOCABULARY)
                if name not in rows:
                    rows[name] = {"option": name, "overrides": OPTIONS[name], "audio_s": audio_s, **r}
                    rows[name]["cpu_runs"], rows[name]["wall_runs"] = [r["cpu_s"]], [r["wall_s"]]
                else:
                    rows[name]["cpu_runs"].append(r["cpu_s"])
                    rows[name]["wall_runs"].append(r["wall_s"])
                    rows[name]["cpu_s"] = min(rows[name]["cpu_runs"])
                    rows[name]["wall_s"] = min(rows[name]["wall_runs"])
                    rows[name]["load"] += r["load"]
                if round_ == repeat - 1:
                    _print_row(rows[name], rows[option_names[0]])
    return list(rows.values())


def _print_row(r: dict, base: dict) -> None:
    wers = "  ".join(f"{k} {v:.3f}" for k, v in r["wer"].items())
    rel = r["cpu_s"] / base["cpu_s"] if base["cpu_s"] else float("nan")
    print(
        f"{r['option']:15s} WER {r['wer_pooled']:.3f} | {wers} | CPU {r['cpu_s']:.1f} s (x{rel:.2f} base) "
        f"wall {r['wall_s']:.1f} s | load {min(r['load']):.1f}-{max(r['load']):.1f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--options", default=",".join(OPTIONS), help="comma-separated, from: " + ", ".join(OPTIONS))
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--repeat", type=int, default=1, help="rounds over all options; the fastest is kept")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.options.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPTIONS]
    if unknown:
        ap.error(f"unknown options: {unknown}")
    if names[0] != "base":
        names.insert(0, "base")  # every speed is relative to the defaults, measured in the same run
    rows = run(names, max(1, args.repeat))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
