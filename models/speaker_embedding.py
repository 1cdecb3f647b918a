"""GE2E speaker encoder (Resemblyzer's pretrained weights) as a small torch module.

Why our own module instead of `import resemblyzer`: the resemblyzer wheel pulls librosa, numba,
webrtcvad (a C build) and the obsolete `typing` backport, none of which callqa needs. The model
itself is three LSTM layers and a projection, so callqa defines it here and loads the weights.

Where the weights come from, in order:
1. a path the user configures (`models.diarization.embedding`): either resemblyzer's own
   `pretrained.pt` checkpoint or an `.npz` with the same parameter names;
2. callqa's bundled copy, `models/data/ge2e_resemblyzer_0.1.4.npz`: the `model_state` of
   `resemblyzer/pretrained.pt` from the resemblyzer 0.1.4 wheel on PyPI (sha256 39373b86...,
   Apache-2.0, licence in models/data/LICENSE-resemblyzer.txt), stored as float16 (2.6 MB instead
   of 17 MB with the optimiser state). `python -m callqa.models.speaker_embedding convert
   pretrained.pt out.npz` regenerates it from the wheel.

The front end reproduces Resemblyzer's: 16 kHz audio, power (not log) mel spectrogram with
40 slaney-normalised bands, 25 ms Hann window, 10 ms hop, and the waveform raised to -30 dBFS
(never lowered) before the spectrogram, because the network sees absolute power.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from torch import nn

from callqa.pipeline.types import SAMPLE_RATE, ModelUnavailable

N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
HIDDEN = 256
EMBED_DIM = 256
LAYERS = 3
PARTIAL_FRAMES = 160  # GE2E was trained on 1.6 s partial utterances
TARGET_DBFS = -30.0
BUNDLED_WEIGHTS = "ge2e_resemblyzer_0.1.4.npz"
SOURCE_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"


class GE2E(nn.Module):
    """LSTM(40 → 256, 3 layers) → Linear(256) → ReLU → L2 norm, as trained by Resemblyzer."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBED_DIM)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:  # (batch, frames, 40) -> (batch, 256)
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-8)


def bundled_weights_path() -> Path:
    return Path(str(files("callqa.models").joinpath("data", BUNDLED_WEIGHTS)))


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelUnavailable(path, "speaker-embedding weights not found")
    try:
        if path.suffix == ".npz":
            with np.load(path) as z:
                return {k: torch.from_numpy(z[k].astype(np.float32)) for k in z.files}
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt zip, pickle, truncated file
        raise ModelUnavailable(path, f"cannot read speaker-embedding weights: {type(e).__name__}: {e}") from e
    state = ckpt.get("model_state", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ModelUnavailable(path, "not a GE2E checkpoint (expected a state dict or {'model_state': ...})")
    return dict(state)


def load_ge2e(path: str | Path | None = None) -> tuple[GE2E, str]:
    """(model in eval mode, description). `path=None` loads callqa's bundled Resemblyzer weights."""
    p = Path(path).expanduser() if path else bundled_weights_path()
    state = _read_state(p)
    model = GE2E()
    wanted = {k for k in model.state_dict()}
    state = {k: v for k, v in state.items() if k in wanted}  # resemblyzer also stores similarity_*
    missing = wanted - set(state)
    if missing:
        raise ModelUnavailable(p, f"not GE2E weights: missing {sorted(missing)[:4]}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelUnavailable(p, f"GE2E weights have the wrong shapes: {e}") from e
    model.eval()
    src = "bundled Resemblyzer 0.1.4 weights" if path is None else f"weights from {p}"
    return model, f"GE2E speaker encoder ({src})"


class _MelFrontEnd:
    """Resemblyzer's mel spectrogram (librosa defaults: centred, zero-padded, slaney mel)."""

    def __init__(self) -> None:
        import torchaudio.functional as AF

        self.window = torch.hann_window(N_FFT, periodic=True)
        self.fbank = AF.melscale_fbanks(
            N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE, norm="slaney", mel_scale="slaney"
        )  # (201, 40)

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
        spec = torch.stft(x, N_FFT, HOP, window=self.window, center=True, pad_mode="constant", return_complex=True)
        power = spec.real**2 + spec.imag**2  # (201, frames)
        return (power.T @ self.fbank).numpy().astype(np.float32)  # (frames, 40)


def loudness_gain(wav: np.ndarray, speech_mask: np.ndarray | None = None) -> float:
    """Gain that lifts the speech to -30 dBFS RMS (never lowers it), as Resemblyzer's training did."""
    x = wav if speech_mask is None or not speech_mask.any() else wav[speech_mask]
    rms2 = float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0
    if rms2 <= 1e-12:
        return 1.0
    dbfs = 10 * np.log10(rms2)
    return float(10 ** ((TARGET_DBFS - dbfs) / 20)) if dbfs < TARGET_DBFS else 1.0


@dataclass
class SpeakerEncoder:
    """Loaded once per worker; turns 16 kHz audio into 256-d unit speaker embeddings."""

    model: GE2E
    description: str
    batch_size: int = 256
    # The LSTM is 160 sequential steps of small matrix products: a second intra-op thread mostly
    # waits at barriers (measured: 3.3 s CPU with 1 thread vs 8-18 s with 2 for one 278 s call),
    # so embedding runs single-threaded and leaves the other core to ASR or another worker.
    threads: int = 1

    @classmethod
    def load(cls, path: str | Path | None = None) -> SpeakerEncoder:
        model, desc = load_ge2e(path)
        return cls(model, desc)

    def __post_init__(self) -> None:
        self._mel = _MelFrontEnd()

    def mel(self, wav: np.ndarray) -> np.ndarray:
        """(frames, 40) power mel at 10 ms per frame; frame i is centred on sample i * 160."""
        return self._mel(wav)

    def embed_frames(self, mel: np.ndarray, starts: np.ndarray, n_frames: int = PARTIAL_FRAMES) -> np.ndarray:
        """Embeddings of mel[s:s+n_frames] for each s in `starts` (zero-padded past the end)."""
        if len(starts) == 0:
            return np.zeros((0, EMBED_DIM), np.float32)
        need = int(max(starts)) + n_frames
        if need > mel.shape[0]:
            mel = np.concatenate([mel, np.zeros((need - mel.shape[0], mel.shape[1]), mel.dtype)])
        idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(n_frames)[None, :]
        out = []
        prev = torch.get_num_threads()
        change = bool(self.threads) and self.threads != prev
        if change:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                for i in range(0, len(idx), self.batch_size):
                    batch = torch.from_numpy(mel[idx[i : i + self.batch_size]])
                    out.append(self.model(batch).numpy())
        finally:
            if change:
                torch.set_num_threads(prev)
        return np.concatenate(out).astype(np.float32)

    def embed_utterance(self, wav: np.ndarray, step_frames: int = 80) -> np.ndarray:
        """One embedding for a whole stretch of one speaker's audio (mean of 1.6 s partials)."""
        wav = wav * loudness_gain(wav)
        mel = self.mel(wav)
        last = max(0, mel.shape[0] - PARTIAL_FRAMES)
        starts = np.arange(0, last + 1, step_frames)
        e = self.embed_frames(mel, starts).mean(axis=0)
        return (e / max(float(np.linalg.norm(e)), 1e-8)).astype(np.float32)


def convert_checkpoint(src: str | Path, dest: str | Path, float16: bool = True) -> str:
    """Write a resemblyzer `pretrained.pt` as the compact .npz callqa bundles; returns its sha256."""
    src = Path(src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    state = _read_state(src)
    arrays = {
        k: v.numpy().astype(np.float16 if float16 else np.float32)
        for k, v in state.items()
        if k.startswith(("lstm.", "linear."))
    }
    # numeric arrays only, so no pickling; naming allow_pickle also keeps mypy from matching **arrays to it
    np.savez_compressed(dest, allow_pickle=False, **arrays)
    return digest


if __name__ == "__main__":  # pragma: no cover - maintenance tool
    if len(sys.argv) == 4 and sys.argv[1] == "convert":
        sha = convert_checkpoint(sys.argv[2], sys.argv[3])
        print(f"converted {sys.argv[2]} (sha256 {sha}) -> {sys.argv[3]}")
    else:
        print("usage: python -m callqa.models.speaker_embedding convert pretrained.pt out.npz")
