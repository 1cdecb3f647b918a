"""Which file a call page may play: the call's own recording (or its redacted copy), never a path a request names.

The rules are the static report's (callqa.workspace.report.site): the redacted copy when one was made;
nothing when the call was redacted but no copy exists (the original still holds what the text had
removed); and only a file whose real path lies inside its run's recording or redacted-audio folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb

from callqa.workspace.files import inside
from callqa.workspace.report.site import AudioRoots, audio_roots

MEDIA_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
}


def call_audio(con: duckdb.DuckDBPyConnection, summary: dict[str, Any]) -> tuple[Path | None, str]:
    """(real path of the file to play or None, a note saying which file or why none)."""
    cid = summary["call_id"]
    roots = audio_roots(con, [cid]).get(cid, AudioRoots((), ()))
    try:
        meta = json.loads(summary["metadata"]) if summary.get("metadata") else {}
    except (TypeError, ValueError):
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    redacted = meta.get("redacted_audio")
    if redacted is not None and not isinstance(redacted, str):
        return None, "audio not played: the call's redacted-audio entry is not a path"
    use_redacted = bool(redacted) and Path(redacted).is_file()
    if not use_redacted and isinstance(meta.get("redaction"), dict):
        why = "its redacted copy is missing" if redacted else "no redacted audio copy was made (redaction.audio)"
        return None, f"audio not played: this call was redacted and {why}; the original recording is not served"
    src = Path(redacted) if use_redacted else Path(summary["source_path"] or "")
    label = "redacted copy" if use_redacted else "original recording"
    if not src.is_file():
        return None, f"recording not found at {src} (moved or deleted since it was processed)"
    if not inside(src, roots.redacted + roots.recordings if use_redacted else roots.recordings):
        return None, f"audio not played: the {label} resolves outside the recording folders of its run"
    return Path(os.path.realpath(src)), f"{label}: {src.name}"


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
