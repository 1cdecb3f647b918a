"""Speaker diarization: the Diarizer protocol, the pyannote.audio adapter, and choosing one.

Every diarizer returns a pyannote.core `Annotation` (labels SPEAKER_00, SPEAKER_01, ... in order
of first speech), so everything downstream is the same whichever ran.

* `PyannoteDiarizer` loads a pyannote speaker-diarization pipeline from a local directory (its
  config.yaml, with the checkpoints it names) or a hub id with a token, and runs it on the
  16 kHz waveform in memory (never a path: pyannote would re-decode and downmix the file).
* `OfflineDiarizer` (offline_diarizer.py) needs no hub: Silero VAD, GE2E speaker embeddings,
  spectral clustering (clustering.py) and Viterbi resegmentation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pyannote.core import Annotation

from callqa.config.settings import ModelSettings
from callqa.pipeline.types import SAMPLE_RATE, ModelUnavailable


class Diarizer(Protocol):
    method: str  # "pyannote" | "offline-ge2e"
    description: str

    def __call__(
        self,
        waveform: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> Annotation: ...

    def diarize(
        self,
        waveform: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> tuple[Annotation, list[tuple[float, float]]]:
        """The annotation and the spans whose speaker the diarizer could not tell (may be empty)."""
        ...


def relabel(annotation: Annotation) -> Annotation:
    """SPEAKER_00, SPEAKER_01, ... in order of each speaker's first speech."""
    first: dict[str, float] = {}
    for seg, _, lab in annotation.itertracks(yield_label=True):
        first[lab] = min(first.get(lab, seg.start), seg.start)
    order = {lab: f"SPEAKER_{i:02d}" for i, lab in enumerate(sorted(first, key=first.__getitem__))}
    out = Annotation(uri=annotation.uri)
    for seg, track, lab in annotation.itertracks(yield_label=True):
        out[seg, track] = order[lab]
    return out


# --------------------------------------------------------------------------- pyannote.audio


def find_pyannote_pipeline(search_dirs: list[Path]) -> Path | None:
    """A local pyannote speaker-diarization pipeline dir (a config.yaml naming SpeakerDiarization)."""
    for root in search_dirs:
        root = Path(root).expanduser()
        if not root.is_dir():
            continue
        for cfg in sorted(root.glob("**/config.yaml")):
            try:
                text = cfg.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if "SpeakerDiarization" in text and "pipeline" in text:
                return cfg.parent
    return None


@dataclass
class PyannoteDiarizer:
    pipeline: Callable[..., Any]  # pyannote.audio.Pipeline (untyped); its result's type is checked below
    description: str
    method: str = "pyannote"

    @classmethod
    def load(cls, name: str, *, token: str | None = None, cache_dir: Path | None = None) -> PyannoteDiarizer:
        """Load from a local directory (config.yaml inside) or a hub id (needs the hub and a token)."""
        try:
            from pyannote.audio import Pipeline
        except Exception as e:  # pragma: no cover - pyannote.audio is a declared dependency
            raise ModelUnavailable(None, f"pyannote.audio cannot be imported: {e}") from e
        path = Path(name).expanduser()
        source = name
        if path.exists():
            if path.is_dir():
                if not (path / "config.yaml").is_file():
                    raise ModelUnavailable(path, "not a pyannote pipeline directory: no config.yaml inside")
                source = str(path / "config.yaml")
            elif path.suffix not in (".yaml", ".yml"):
                raise ModelUnavailable(
                    path, "models.diarization.pipeline must be a pipeline directory, its config.yaml, or a hub id"
                )
        else:
            from callqa.models.getter import resolve_generic

            resolved = resolve_generic("diarization", name, cache_dir, hf_token=token)  # raises when unreachable
            source = resolved.location if resolved.source != "hub" else name
        try:
            kwargs = {"token": token} if token else {}
            if cache_dir is not None and not path.exists():
                kwargs["cache_dir"] = str(cache_dir)
            pipeline = Pipeline.from_pretrained(source, **kwargs)
        except ModelUnavailable:
            raise
        except Exception as e:  # bad yaml, missing checkpoints, gated repo, no network
            raise ModelUnavailable(
                path if path.exists() else None, f"cannot load pyannote pipeline '{name}': {type(e).__name__}: {e}"
            ) from e
        if pipeline is None:  # pyannote returns None (and prints) for gated/unauthorised repos
            raise ModelUnavailable(
                None,
                f"pyannote pipeline '{name}' could not be loaded (gated repo without an "
                "accepted licence or a valid HF token?)",
            )
        try:
            import torch

            if torch.cuda.is_available():
                pipeline.to(torch.device("cuda"))
        except Exception:  # a pipeline that cannot move stays on CPU
            pass
        return cls(pipeline, f"pyannote.audio pipeline {name}")

    def __call__(
        self,
        waveform: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> Annotation:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))[None, :]
        kwargs = {
            k: v
            for k, v in (("num_speakers", num_speakers), ("min_speakers", min_speakers), ("max_speakers", max_speakers))
            if v is not None
        }
        out = self.pipeline({"waveform": x, "sample_rate": SAMPLE_RATE}, **kwargs)
        # pyannote.audio 4 returns DiarizeOutput(speaker_diarization=..., exclusive_...); 3.x an Annotation
        ann = getattr(out, "speaker_diarization", out)
        if not isinstance(ann, Annotation):
            raise ModelUnavailable(None, f"pyannote pipeline returned {type(out).__name__}, not an Annotation")
        return relabel(ann)

    def diarize(
        self,
        waveform: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> tuple[Annotation, list[tuple[float, float]]]:
        # pyannote's pipeline exposes no per-turn confidence: every turn counts as attributed
        ann = self(waveform, num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers)
        return ann, []


# --------------------------------------------------------------------------- choosing one


def load_diarizer(settings: ModelSettings, search_dirs: list[Path] | None = None) -> Diarizer:
    """The configured pyannote pipeline; else a local one found in the search dirs; else offline.

    A configured pipeline that fails to load is an error (the user asked for it); one merely
    found on disk that fails falls back to the offline diarizer, saying why in its description.
    """
    from callqa.models.offline_diarizer import OfflineDiarizer  # it imports relabel from here

    d = settings.diarization
    if d.pipeline:
        return PyannoteDiarizer.load(d.pipeline, token=settings.hf_token, cache_dir=settings.cache_dir)
    dirs = search_dirs if search_dirs is not None else [Path(x) for x in d.search_dirs]
    found = find_pyannote_pipeline(dirs) if d.auto_pyannote else None
    note = ""
    if found is not None:
        try:
            return PyannoteDiarizer.load(str(found), token=settings.hf_token)
        except ModelUnavailable as e:
            note = f" (pyannote pipeline at {found} failed to load: {e})"
    off = OfflineDiarizer.load(d)
    if note:
        off.description += note
    return off
