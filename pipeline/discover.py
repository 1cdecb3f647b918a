"""discover: find the recordings in a folder and give each call its identity and metadata.

A call's id is the SHA-256 of its bytes, so a rerun recognises what is already stored and a
renamed or copied file is not processed twice. Within one scan, byte-identical files are one call:
the first copy (in sorted path order) whose metadata is valid is kept, so a broken sidecar on one
copy never drops the call; the others are reported in `Discovery.duplicates`.

Metadata, all optional, from two places (a sidecar wins over the manifest, field by field):
- a sidecar `<stem>.json` beside the recording (`call.wav` -> `call.json`), a JSON object;
- a `manifest.csv` in the input folder with a `file` column (path relative to the folder, or a
  bare file name, which then applies to every recording of that name) and any of the
  `METADATA_FIELDS` columns; other columns are kept as they are. Empty cells are ignored.

Metadata is untrusted input. The documented fields (`METADATA_FIELDS`) are validated; any other
field is kept as free-form metadata (stored in `calls.metadata`, redacted like transcripts when
redaction is on). Keys that callqa itself writes (`INTERNAL_KEYS`, and any key starting with "_")
are never taken from a sidecar or manifest: such a key is dropped with a warning naming the file,
so that e.g. `{"redacted_audio": "/etc/shadow"}` cannot point the report at a file.

One bad sidecar (or manifest row) must not stop a batch: discover does not raise for it. Instead
that call's metadata is only `{SIDECAR_ERROR: "<file>: <problem>", SIDECAR_PATH: "<file>"}`, and
`metadata_error(source)` turns it into the `ConfigError` the flow records as that call's failure
(the flow decides; it should not process the call with half its metadata). A manifest that
cannot be read at all concerns every call, so that raises `ConfigError` at once, as does a
missing input folder. Files that cannot be read are listed in `Discovery.unreadable`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from callqa.pipeline.filename_meta import compile_pattern, fields_from_name
from callqa.pipeline.types import CallSource, ConfigError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"
METADATA_FIELDS = (
    "agent_id",
    "queue",
    "customer_id",
    "started_at",
    "direction",
    "language",
    "channel_map",
    "agent_channel",
    "team",
    "tier",  # support tier that handled the call: 1 first line, 2 second tier, 3 complaints handling
    "csat",  # post-call satisfaction survey, 1-5
    "nps",  # likelihood to recommend, 0-10
)
SIDECAR_ERROR = "_sidecar_error"  # "<file>: <problem>"
SIDECAR_PATH = "_sidecar_path"  # the file the problem is in (sidecar or manifest)
# Warnings about this call's metadata (e.g. a file name not matching metadata.filename_pattern); the
# pipeline stores them in calls.warnings.
METADATA_WARNINGS = "_metadata_warnings"
# Set by the pipeline (callqa.pipeline.redact) and trusted by the report: never from a sidecar.
INTERNAL_KEYS = frozenset({"redacted_audio", "redaction"})
DIRECTIONS = ("inbound", "outbound", "internal")
ROLES = ("agent", "customer")
_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (recordings can be hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Duplicate:
    path: str
    call_id: str
    same_as: str  # the path that was kept


@dataclass
class Discovery:
    sources: list[CallSource]
    duplicates: list[Duplicate] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[str] = field(default_factory=list)  # "<file>: <what was ignored>", also logged

    def duplicate_groups(self) -> list[dict[str, Any]]:
        """One entry per call found under several names: the file kept and the files with the same audio."""
        groups: dict[str, dict[str, Any]] = {}
        for d in self.duplicates:
            groups.setdefault(d.call_id, {"call_id": d.call_id, "kept": d.same_as, "same_audio": []})
            groups[d.call_id]["same_audio"].append(d.path)
        return list(groups.values())


def discover(input_dir: str | Path, extensions: list[str], recursive: bool = True) -> list[CallSource]:
    """The recordings under `input_dir` as CallSources, sorted by path, duplicates removed."""
    return scan(input_dir, extensions, recursive).sources


def scan(
    input_dir: str | Path, extensions: list[str], recursive: bool = True, filename_pattern: str | None = None
) -> Discovery:
    """Like `discover`, but also reports the byte-identical files that were skipped.

    `filename_pattern` (settings metadata.filename_pattern): metadata read from each file name first,
    the manifest and the sidecar winning field by field (callqa.pipeline.filename_meta)."""
    name_regex = compile_pattern(filename_pattern) if filename_pattern else None
    root = Path(input_dir)
    if not root.exists():
        raise ConfigError(root, "input folder does not exist")
    if not root.is_dir():
        raise ConfigError(root, "input path is not a folder")

    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    manifest = _read_manifest(root / MANIFEST_NAME)
    used_rows: set[str] = set()

    result = Discovery(sources=[])
    copies: dict[str, list[tuple[Path, int]]] = {}  # call_id -> its files, in path order
    for path in _audio_files(root, exts, recursive):
        try:
            size = path.stat().st_size
            call_id = sha256_file(path)
        except OSError as e:
            # Unreadable (permissions, vanished mid-scan): no bytes, so no call id. Reported, not
            # raised, so the flow can record a failure row for it and go on with the batch.
            log.warning("cannot read %s: %s", path, e)
            result.unreadable.append((str(path), f"cannot read: {e.strerror or e}"))
            continue
        copies.setdefault(call_id, []).append((path, size))

    for call_id, files in copies.items():
        found = [
            (p, size, _metadata_for(p, root, manifest, used_rows, result.warnings, name_regex)) for p, size in files
        ]
        kept = next((f for f in found if SIDECAR_ERROR not in f[2]), found[0])
        path, size, metadata = kept
        result.sources.append(CallSource(path=str(path), call_id=call_id, size_bytes=size, metadata=metadata))
        for other, _, meta in found:
            if other == path:
                continue
            log.info("skipping %s: same bytes as %s", other, path)
            result.duplicates.append(Duplicate(str(other), call_id, str(path)))
            if SIDECAR_ERROR in meta and SIDECAR_ERROR not in metadata:
                _warn(result.warnings, f"{meta[SIDECAR_ERROR]} (ignored: the same audio is stored from {path})")
            elif meta != metadata and SIDECAR_ERROR not in meta:
                _warn(result.warnings, f"{other}: same audio as {path}, whose metadata is the one stored")
    result.sources.sort(key=lambda s: Path(s.path).relative_to(root).as_posix())
    result.duplicates.sort(key=lambda d: Path(d.path).relative_to(root).as_posix())

    for key in manifest.rows.keys() - used_rows:
        log.warning("%s: row for %r matches no recording", manifest.path, key)
    return result


def _warn(warnings: list[str], message: str) -> None:
    log.warning("%s", message)
    warnings.append(message)


def metadata_error(source: CallSource) -> ConfigError | None:
    """The sidecar/manifest problem recorded for this call by discover, as a ConfigError."""
    err = source.metadata.get(SIDECAR_ERROR)
    if err is None:
        return None
    path = source.metadata.get(SIDECAR_PATH)
    message = err[len(path) + 2 :] if path and err.startswith(f"{path}: ") else err
    return ConfigError(path, message)


def _audio_files(root: Path, exts: set[str], recursive: bool) -> list[Path]:
    files = root.rglob("*") if recursive else root.iterdir()
    out = []
    for p in files:
        rel = p.relative_to(root)
        # Hidden files and folders: editor swap files, macOS ._ resource forks, .git, partial
        # uploads that tools write as dotfiles.
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() in exts and p.is_file() and p.suffix.lower() not in (".json", ".csv"):
            out.append(p)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


@dataclass
class _Manifest:
    path: Path
    rows: dict[str, dict[str, Any]]  # key: relative posix path or bare name, as written
    line_of: dict[str, int]


def _read_manifest(path: Path) -> _Manifest:
    if not path.is_file():
        return _Manifest(path, {}, {})
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            if "file" not in header:
                raise ConfigError(path, f"manifest has no 'file' column (columns: {', '.join(header) or 'none'})")
            rows: dict[str, dict[str, Any]] = {}
            line_of: dict[str, int] = {}
            for raw in reader:
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                # Manifests exported on Windows use backslashes; keys compare as POSIX paths.
                key = Path(row.pop("file", "").replace("\\", "/")).as_posix()
                if key in ("", "."):
                    continue
                if key in rows:
                    raise ConfigError(path, f"line {reader.line_num}: {key!r} is listed twice")
                rows[key] = {k: v for k, v in row.items() if v != ""}
                line_of[key] = reader.line_num
    except UnicodeDecodeError as e:
        raise ConfigError(path, f"not UTF-8 text: {e}") from e
    except csv.Error as e:
        raise ConfigError(path, f"invalid CSV: {e}") from e
    return _Manifest(path, rows, line_of)


def _metadata_for(
    audio: Path,
    root: Path,
    manifest: _Manifest,
    used_rows: set[str],
    warnings: list[str],
    name_regex: re.Pattern[str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    call_warnings: list[str] = []
    if name_regex is not None:
        # A file name that does not fit is no reason to lose the call: it is processed, warned about.
        try:
            from_name = fields_from_name(audio.name, name_regex)
            if from_name is None:
                call_warnings.append(f"{audio}: file name does not match metadata.filename_pattern")
            else:
                meta.update(_normalise(from_name))
        except ValueError as e:
            call_warnings.append(f"{audio}: file name metadata ignored: {e}")
        for w in call_warnings:
            _warn(warnings, w)
    rel = audio.relative_to(root).as_posix()
    key = rel if rel in manifest.rows else audio.name if audio.name in manifest.rows else None
    if key is not None:
        used_rows.add(key)
        try:
            meta.update(_normalise(_untrusted(manifest.rows[key], f"{manifest.path} ({key})", warnings)))
        except ValueError as e:
            return _err(manifest.path, f"line {manifest.line_of[key]} ({key}): {e}")

    sidecar = audio.with_suffix(".json")
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return _err(sidecar, f"invalid JSON sidecar: {e}")
        except OSError as e:
            return _err(sidecar, f"cannot read sidecar: {e.strerror}")
        if not isinstance(data, dict):
            return _err(sidecar, f"sidecar must be a JSON object, not {type(data).__name__}")
        try:
            meta.update(_normalise(_untrusted(data, str(sidecar), warnings)))
        except ValueError as e:
            return _err(sidecar, str(e))
    if call_warnings:
        meta[METADATA_WARNINGS] = call_warnings
    return meta


def _untrusted(raw: dict[str, Any], where: str, warnings: list[str]) -> dict[str, Any]:
    """The fields a sidecar or manifest may set: keys callqa writes itself are dropped, with a warning."""
    out = {}
    for k, v in raw.items():
        if k in INTERNAL_KEYS or k.startswith("_"):
            _warn(warnings, f"{where}: ignored {k!r}: set by callqa itself, never read from metadata")
            continue
        out[k] = v
    return out


def _err(path: Path, message: str) -> dict[str, str]:
    # Plain strings, so CallSource stays picklable/JSON-able on its way to a worker; the message
    # reads exactly like str(ConfigError(path, message)).
    return {SIDECAR_ERROR: str(ConfigError(path, message)), SIDECAR_PATH: str(path)}


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate the known fields (so a typo fails here, naming the file, not deep in scoring)."""
    out = dict(raw)
    for k in ("agent_id", "queue", "customer_id", "team"):
        if k in out and out[k] is not None:
            if isinstance(out[k], (dict, list, bool)):
                raise ValueError(f"{k} must be a string or number, got {json.dumps(out[k])}")
            out[k] = str(out[k])
    if out.get("started_at") is not None:
        v = out["started_at"]
        try:
            out["started_at"] = datetime.fromisoformat(str(v)).isoformat()
        except ValueError:
            raise ValueError(f"started_at {v!r} is not an ISO 8601 date-time (e.g. 2025-02-19T06:01:22Z)") from None
    if out.get("direction") is not None:
        v = str(out["direction"]).strip().lower()
        if v not in DIRECTIONS:
            raise ValueError(f"direction {out['direction']!r} is not one of {', '.join(DIRECTIONS)}")
        out["direction"] = v
    if out.get("language") is not None:
        v = str(out["language"]).strip()
        if not v or not v.replace("-", "").replace("_", "").isalpha():
            raise ValueError(f"language {out['language']!r} is not a language code such as en or zh")
        out["language"] = v
    if out.get("channel_map") is not None:
        out["channel_map"] = parse_channel_map(out["channel_map"])
    if out.get("tier") not in (None, ""):
        out["tier"] = _tier(out["tier"])
    if out.get("csat") not in (None, ""):
        out["csat"] = _number(out["csat"], "csat", 1, 5, integer=False)
    if out.get("nps") not in (None, ""):
        out["nps"] = int(_number(out["nps"], "nps", 0, 10, integer=True))
    return out


def _number(v: Any, name: str, lo: float, hi: float, *, integer: bool) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}, got {json.dumps(v)}")
    try:
        x = float(v)
    except ValueError:
        raise ValueError(f"{name} {v!r} is not a number from {lo:g} to {hi:g}") from None
    if not lo <= x <= hi or (integer and x != int(x)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name} {v!r} is not {kind} from {lo:g} to {hi:g}")
    return x


def _tier(v: Any) -> int:
    """1, 2 or 3; also "tier 2", "L2", "T3" as recorders and ticket systems write it."""
    s = str(v).strip().lower()
    for prefix in ("tier", "l", "t"):
        if s.startswith(prefix) and s[len(prefix) :].strip().isdigit():
            s = s[len(prefix) :].strip()
            break
    if isinstance(v, bool) or s not in ("1", "2", "3"):
        raise ValueError(f"tier {v!r} is not 1 (first line), 2 (second tier) or 3 (complaints handling)")
    return int(s)


def parse_channel_map(value: Any) -> dict[int, str]:
    """Which channel carries whom: {0: "agent", 1: "customer"}.

    Accepts a mapping ({"0": "agent", "1": "customer"}), a list in channel order
    (["agent", "customer"]), or, from a CSV cell, the JSON of either or "0:agent;1:customer" /
    "agent,customer".
    """
    if isinstance(value, str):
        s = value.strip()
        if s.startswith(("{", "[")):
            try:
                value = json.loads(s)
            except json.JSONDecodeError as e:
                raise ValueError(f"channel_map {s!r} is not valid JSON: {e}") from None
        elif ":" in s or "=" in s:
            pairs = [p for p in s.replace(",", ";").split(";") if p.strip()]
            value = {}
            for p in pairs:
                k, _, v = p.replace("=", ":").partition(":")
                value[k.strip()] = v.strip()
        else:
            value = [p.strip() for p in s.replace(";", ",").split(",")]
    if isinstance(value, list):
        value = dict(enumerate(value))
    if not isinstance(value, dict) or not value:
        raise ValueError(f"channel_map must map channel numbers to agent/customer, got {value!r}")
    out: dict[int, str] = {}
    for k, v in value.items():
        try:
            ch = int(k)
        except (TypeError, ValueError):
            raise ValueError(f"channel_map key {k!r} is not a channel number") from None
        role = str(v).strip().lower()
        if ch < 0 or role not in ROLES:
            raise ValueError(f"channel_map entry {k!r}: {v!r} must map a channel number >= 0 to agent or customer")
        out[ch] = role
    return out
