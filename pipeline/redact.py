"""The redact stage: find PII in what a call's transcript says and replace it by its type.

The finders (which PII, how spoken digits and spoken e-mail addresses are read) are in
callqa.pipeline.pii; this module applies them to a call.

Where it is applied: `redact_call` rewrites a CallResult before it leaves the worker, so with
redaction on (the default) the raw text never reaches the writer or DuckDB: utterance text, every
word (each word inside a PII span becomes the type token, its timing kept), event evidence and every
string in event data, and criterion rationales. Optionally it writes a redacted audio copy with the
PII word spans silenced or beeped.

Call metadata (sidecar / manifest) is treated by `redact_sources` in the flow, before a call is sent to
a worker: `customer_id` becomes a keyed pseudonym (HMAC-SHA256 under a secret key kept outside the
database), so that the same customer gets the same value in every run and repeat-contact joins still
work, but the database alone does not give the id back, not even by trying every id of a short
numbering scheme; every free-text field is redacted like a transcript. `agent_id`, `queue` and the
validated fields (dates, direction, language, channel map) are kept as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from callqa.pipeline.discover import INTERNAL_KEYS, METADATA_FIELDS, SIDECAR_ERROR
from callqa.pipeline.pii import PIISpan, RedactionOptions, find_pii, redact_text
from callqa.pipeline.speakers import join_with_offsets
from callqa.pipeline.types import (
    CallQAError,
    CallResult,
    CallScore,
    CallSource,
    ConfigError,
    DecodedAudio,
    Event,
    Utterance,
)

log = logging.getLogger(__name__)

PSEUDONYM_KEY_ENV = "CALLQA_PSEUDONYM_KEY"  # the key itself (a secret store's way), instead of a key file
PSEUDONYM_PREFIX = "cid_"


class RedactionError(CallQAError):
    stage = "redact"


# ------------------------------------------------------------------------------------------------
# call-level


@dataclass(frozen=True)
class RedactedSpan:
    """A PII span in time: what the audio copy silences, and what the call's audit records."""

    start: float
    end: float
    type: str
    speaker: str | None
    channel: int | None


def redact_utterance(
    u: Utterance, opts: RedactionOptions = RedactionOptions()
) -> tuple[Utterance, list[RedactedSpan], list[tuple[str, str]]]:
    """(redacted utterance, PII time spans, (raw string, token) pairs found) — words in a PII span become its token."""
    joined, offs = join_with_offsets(u.words)
    spans = find_pii(joined, opts)
    words = list(u.words)
    timed: list[RedactedSpan] = []
    raws: list[tuple[str, str]] = []
    for s in spans:
        hit = [i for i, o in enumerate(offs) if o is not None and o[0] < s.end and s.start < o[1]]
        raws.append((joined[s.start : s.end], s.token))
        for i in hit:
            w = words[i]
            if any(c.isdigit() for c in w.text):  # a numeral group may be quoted on its own elsewhere
                raws.append((w.text.strip(), s.token))
            words[i] = replace(w, text=(" " if w.text.startswith(" ") else "") + s.token)
        if hit:
            timed.append(
                RedactedSpan(
                    min(words[i].start for i in hit), max(words[i].end for i in hit), s.type, u.speaker, u.channel
                )
            )
    if u.text == joined:
        text = "".join(_splice(joined, spans))
        text_spans = spans
    else:  # text built some other way (e.g. a diarizer's own join): redact it on its own
        text, text_spans = redact_text(u.text, opts, raws)
        raws.extend((u.text[s.start : s.end], s.token) for s in text_spans)
    if not spans and not text_spans:
        return u, [], []
    return replace(u, text=text, words=words), timed, raws


def _splice(text: str, spans: list[PIISpan]) -> list[str]:
    out, pos = [], 0
    for s in spans:
        out += [text[pos : s.start], s.token]
        pos = s.end
    out.append(text[pos:])
    return out


def redact_value(v: Any, opts: RedactionOptions, known: Sequence[tuple[str, str]]) -> Any:
    """Redact every string inside a JSON-like value (event data)."""
    if isinstance(v, str):
        return redact_text(v, opts, known)[0]
    if isinstance(v, dict):
        return {k: redact_value(x, opts, known) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(redact_value(x, opts, known) for x in v)
    return v


def redact_events(
    events: Sequence[Event], opts: RedactionOptions, known: Sequence[tuple[str, str]] = ()
) -> list[Event]:
    out = []
    for e in events:
        ev, _ = redact_text(e.evidence, opts, known)
        if not ev.strip():
            ev = f"[{e.type}]"  # evidence must never be empty
        out.append(replace(e, evidence=ev, data=redact_value(e.data, opts, known)))
    return out


def redact_scores(
    scores: Sequence[CallScore], opts: RedactionOptions, known: Sequence[tuple[str, str]] = ()
) -> list[CallScore]:
    return [
        replace(
            s,
            criteria=tuple(replace(c, rationale=redact_text(c.rationale, opts, known)[0]) for c in s.criteria),
            flag_reasons=tuple(redact_text(r, opts, known)[0] for r in s.flag_reasons),
        )
        for s in scores
    ]


def redact_call(
    result: CallResult, opts: RedactionOptions = RedactionOptions()
) -> tuple[CallResult, list[RedactedSpan]]:
    """A copy of the call with no raw PII left in any text it carries, and the PII spans in time."""
    utterances, spans, known = [], [], []
    for u in result.utterances:
        ru, ts, raws = redact_utterance(u, opts)
        utterances.append(ru)
        spans.extend(ts)
        known.extend(raws)
    red = replace(
        result,
        utterances=utterances,
        events=redact_events(result.events, opts, known),
        scores=redact_scores(result.scores, opts, known),
    )
    return red, spans


# ------------------------------------------------------------------------------------------------
# audio


def redact_audio(
    audio: DecodedAudio,
    spans: Sequence[RedactedSpan],
    mode: Literal["silence", "beep"] = "beep",
    pad_s: float = 0.1,
    beep_hz: float = 1000.0,
) -> list[np.ndarray]:
    """Each channel with the PII spans (padded) silenced or replaced by a tone.

    Every channel is treated, not only the speaker's: on a stereo recording the other leg carries
    the speaker's voice as line echo or sidetone.
    """
    sr = audio.sample_rate
    out = [np.array(ch, dtype=np.float32, copy=True) for ch in audio.channels]
    for s in spans:
        a = max(0, int((s.start - pad_s) * sr))
        for ch in out:
            b = min(ch.size, int(np.ceil((s.end + pad_s) * sr)))
            if b <= a:
                continue
            if mode == "silence":
                ch[a:b] = 0.0
            else:
                t = np.arange(b - a) / sr
                tone = 0.25 * np.sin(2 * np.pi * beep_hz * t)
                ramp = min(tone.size // 2, int(0.005 * sr))
                if ramp:
                    tone[:ramp] *= np.linspace(0, 1, ramp)
                    tone[-ramp:] *= np.linspace(1, 0, ramp)
                ch[a:b] = tone.astype(np.float32)
    return out


def write_redacted_audio(
    audio: DecodedAudio,
    spans: Sequence[RedactedSpan],
    out_path: str | Path,
    mode: Literal["silence", "beep"] = "beep",
    pad_s: float = 0.1,
) -> Path:
    """Write a 16-bit PCM WAV copy (16 kHz, the source's channels) with the PII spans treated."""
    from scipy.io import wavfile

    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        chans = redact_audio(audio, spans, mode, pad_s)
        data = np.stack(chans, axis=1) if len(chans) > 1 else chans[0]
        pcm = (np.clip(data, -1.0, 1.0) * 32767).astype(np.int16)
        tmp = out_path.with_name(out_path.name + ".part")
        wavfile.write(str(tmp), audio.sample_rate, pcm)
        tmp.replace(out_path)
    except OSError as e:
        raise RedactionError(out_path, f"cannot write the redacted audio copy: {e}") from e
    return out_path


# ------------------------------------------------------------------------------------------------
# the stage as the flow runs it


def options_from_settings(settings: Any) -> RedactionOptions:
    """RedactionOptions from config.settings.RedactionSettings (duck-typed: no config import here)."""
    return RedactionOptions(types=frozenset(settings.types), min_digits=int(settings.min_digits))


def apply_redaction(result: CallResult, settings: Any, audio: DecodedAudio | None = None) -> CallResult:
    """The redact stage: the call as it may be stored, per `settings` (RedactionSettings).

    With redaction on, no raw PII text survives in the returned result; with `settings.audio` set, a
    redacted copy of the audio is written to `settings.audio_dir` and its path recorded in the call's
    metadata (`redacted_audio`), where the HTML report finds it and plays it instead of the original.
    """
    if not settings.enabled:
        return result
    red, spans = redact_call(result, options_from_settings(settings))
    meta = dict(red.source.metadata)
    counts: dict[str, int] = {}
    for s in spans:
        counts[s.type] = counts.get(s.type, 0) + 1
    meta["redaction"] = {"spans": len(spans), "types": counts}
    if settings.audio != "off" and audio is not None:
        out = Path(settings.audio_dir) / f"{Path(result.source.path).stem}.{result.source.call_id[:12]}.redacted.wav"
        write_redacted_audio(audio, spans, out, mode=settings.audio, pad_s=settings.audio_pad_s)
        meta["redacted_audio"] = str(out.resolve())
    return replace(red, source=replace(red.source, metadata=meta))


# ------------------------------------------------------------------------------------------------
# call metadata


def default_key_file() -> Path:
    """~/.config/callqa/pseudonym.key (or under $XDG_CONFIG_HOME): outside any database folder."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "callqa" / "pseudonym.key"


def load_pseudonym_key(key_file: str | Path | None = None) -> bytes:
    """The customer_id pseudonym key: $CALLQA_PSEUDONYM_KEY, else the key file, created (0600) on first use.

    Losing the key means new runs give the same customer a new pseudonym: back it up with the database."""
    env = os.environ.get(PSEUDONYM_KEY_ENV)
    if env:
        return env.encode("utf-8")
    path = Path(key_file).expanduser() if key_file else default_key_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            # O_EXCL: two runs starting at once must not both create (and one overwrite) the key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            log.warning("created the customer_id pseudonym key %s: back it up with the database", path)
        text = path.read_text(encoding="ascii").strip()
        if path.stat().st_mode & 0o077:
            log.warning("%s: the pseudonym key is readable by other users (chmod 600 it)", path)
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(path, f"cannot use the customer_id pseudonym key: {e}") from e
    if len(key) < 16:
        raise ConfigError(path, "the customer_id pseudonym key is shorter than 16 bytes")
    return key


def pseudonymise(value: str, key: bytes) -> str:
    """A customer id as stored: the same id and key always give the same 80-bit pseudonym."""
    digest = hmac.new(key, str(value).strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:20]


# validated to fixed forms, or identifiers of the contact centre's own staff and queues: not free text
_NOT_FREE_TEXT = frozenset(METADATA_FIELDS) - {"customer_id"}


def redact_metadata(
    meta: dict[str, Any], opts: RedactionOptions, customer_id: str, key: Callable[[], bytes]
) -> dict[str, Any]:
    """Metadata as it may be stored: customer_id per `customer_id` (pseudonymise | drop | keep), free text redacted."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if k == "customer_id" and v not in (None, ""):
            if customer_id == "drop":
                continue
            out[k] = pseudonymise(v, key()) if customer_id == "pseudonymise" else v
        elif k in _NOT_FREE_TEXT or k in INTERNAL_KEYS or k.startswith("_"):
            out[k] = v
        else:
            out[k] = _redact_free(v, opts)
    return out


def _redact_free(v: Any, opts: RedactionOptions) -> Any:
    if isinstance(v, str):
        return redact_text(v, opts)[0]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        # an account or card number given as a JSON number
        red = redact_text(str(v), opts)[0]
        return v if red == str(v) else red
    if isinstance(v, dict):
        return {k: _redact_free(x, opts) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_redact_free(x, opts) for x in v]
    return v


def redact_sources(sources: Sequence[CallSource], settings: Any) -> list[CallSource]:
    """The calls with their metadata as it may be stored, per `settings` (RedactionSettings).

    Run by the flow before any call leaves for a worker, so raw customer ids never reach a worker,
    a staging file or the database. The key is read only when some call has a customer_id."""
    if not settings.enabled:
        return list(sources)
    opts = options_from_settings(settings)
    cached: list[bytes] = []

    def key() -> bytes:
        if not cached:
            cached.append(load_pseudonym_key(settings.pseudonym_key_file))
        return cached[0]

    out = []
    for s in sources:
        if SIDECAR_ERROR in s.metadata:  # only the error: the call fails before anything is stored
            out.append(s)
            continue
        out.append(replace(s, metadata=redact_metadata(s.metadata, opts, settings.customer_id, key)))
    return out
