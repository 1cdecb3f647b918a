"""Inputs of `callqa eval real`: the truth file, transcripts, the recordings to score, the ASR cache.

See callqa.evaluation.real for the truth file's format and what is scored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from callqa.pipeline.types import SAMPLE_RATE, ConfigError, Segment, Utterance, Word

KINDS = ("audio", "transcript")
_TURN_GAP_S = 1.5  # transcript word lists: a pause this long ends a turn
_WORD_S, _TURN_PAUSE_S = 0.35, 0.6  # transcripts without timings: a word's length, the pause between turns


# --------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class TruthItem:
    id: str
    path: Path
    kind: str
    agent: int | str
    events: dict[str, bool]
    build: str = "as is"
    other: Path | None = None
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def variants(self) -> list[str]:
        if self.kind == "transcript":
            return ["transcript"]
        b = self.build.lower().strip()
        if b.startswith("as is"):
            return ["as is"]
        out = [v for v, pat in (("stereo", r"\bstereo\b"), ("mono mix", r"\bmono mix")) if re.search(pat, b)]
        return out or ["as is"]


def _other_leg(path: Path) -> Path | None:
    for word in ("caller", "customer"):
        cand = path.with_name(path.name.replace("agent", word))
        if cand != path and cand.is_file():
            return cand
    return None


def load_truth(path: str | Path) -> list[TruthItem]:
    """Items of a truth file; errors name the file and the item."""
    import yaml

    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw = data.get("items") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(path, "a truth file needs a non-empty list `items`")
    from callqa.pipeline.detectors import EVENT_TYPES

    items, seen = [], set()
    for n, it in enumerate(raw):
        where = f"item {n + 1}" + (f" ({it.get('id')})" if isinstance(it, dict) and it.get("id") else "")
        if not isinstance(it, dict):
            raise ConfigError(path, f"{where}: must be a mapping")
        missing = [k for k in ("id", "path", "kind", "agent", "events") if it.get(k) in (None, "")]
        if missing:
            raise ConfigError(path, f"{where}: missing {', '.join(missing)}")
        if it["kind"] not in KINDS:
            raise ConfigError(path, f"{where}: kind must be one of {KINDS}, got {it['kind']!r}")
        if str(it["id"]) in seen:
            raise ConfigError(path, f"{where}: id used twice")
        seen.add(str(it["id"]))
        events = it["events"]
        if not isinstance(events, dict) or not all(isinstance(v, bool) for v in events.values()):
            raise ConfigError(path, f"{where}: events must map event types to true/false")
        unknown = sorted(set(events) - EVENT_TYPES)
        if unknown:
            raise ConfigError(path, f"{where}: unknown event types {unknown}")
        rec = (path.parent / str(it["path"])).resolve()
        if not rec.is_file():
            raise ConfigError(path, f"{where}: no file {rec}")
        item = TruthItem(
            str(it["id"]),
            rec,
            it["kind"],
            it["agent"],
            dict(events),
            str(it.get("build") or "as is"),
            None,
            it.get("language"),
            dict(it.get("metadata") or {}),
            str(it.get("note") or ""),
        )
        if item.kind == "audio" and set(item.variants) & {"stereo", "mono mix"}:
            other = (path.parent / str(it["other"])).resolve() if it.get("other") else _other_leg(rec)
            if other is None or not other.is_file():
                raise ConfigError(path, f"{where}: build {item.build!r} needs the other leg (`other:`)")
            item = replace(item, other=other)
        items.append(item)
    return items


# --------------------------------------------------------------------------- ASR cache


class CachedASR:
    """A WhisperASR whose per-channel results are kept on disk, keyed by the exact samples it is
    given (after bleed suppression and hold masking) and by the model and every ASR setting."""

    def __init__(self, asr: Any, cache_dir: str | Path):
        self.asr = asr
        self.cache_dir = Path(cache_dir)
        self.hits = self.misses = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.asr, name)

    @property
    def description(self) -> str:
        return self.asr.description

    def _key(self, samples: np.ndarray, channel: int, language: str | None, settings: Any, extra: list) -> str:
        h = hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
        key = {
            "model": self.asr.description,
            "channel": channel,
            "language": language,
            "settings": settings.model_dump(mode="json"),
        }
        if any(extra):  # further arguments (a vocabulary): only when given, so older entries stay valid
            key["extra"] = extra
        h.update(json.dumps(key, sort_keys=True, default=str).encode())
        return h.hexdigest()

    def transcribe_channel(
        self, samples: np.ndarray, channel: int, language: str | None, settings: Any, *args: Any, **kwargs: Any
    ) -> tuple[list[Segment], str, float]:
        extra = [list(a) if isinstance(a, (tuple, list)) else a for a in args] + sorted(kwargs.items())
        f = self.cache_dir / f"{self._key(samples, channel, language, settings, extra)}.json"
        if f.is_file():
            self.hits += 1
            d = json.loads(f.read_text(encoding="utf-8"))
            segs = [Segment(**{**s, "words": tuple(Word(**w) for w in s["words"])}) for s in d["segments"]]
            return segs, d["language"], d["probability"]
        self.misses += 1
        segs, lang, prob = self.asr.transcribe_channel(samples, channel, language, settings, *args, **kwargs)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"segments": [asdict(s) for s in segs], "language": lang, "probability": prob}), encoding="utf-8"
        )
        tmp.replace(f)
        return segs, lang, prob


# --------------------------------------------------------------------------- transcripts


def _turns_from_words(words: list[tuple[str, Word]]) -> list[Utterance]:
    from callqa.pipeline.speakers import join_words

    words = sorted(words, key=lambda sw: (sw[1].start, sw[1].end))
    runs: list[tuple[str, list[Word]]] = []
    for spk, w in words:
        if runs and runs[-1][0] == spk and w.start - runs[-1][1][-1].end <= _TURN_GAP_S:
            runs[-1][1].append(w)
        else:
            runs.append((spk, [w]))
    return [
        Utterance(i, spk, ws[0].start, max(w.end for w in ws), join_words(ws), ws) for i, (spk, ws) in enumerate(runs)
    ]


def _timed_turns(turns: Sequence[tuple[str, str]]) -> list[Utterance]:
    """Turns of text without timings: each word `_WORD_S` long, `_TURN_PAUSE_S` between turns."""
    out, t = [], 0.0
    for spk, text in turns:
        parts = text.split()
        if not parts:
            continue
        ws = [Word(t + k * _WORD_S, t + (k + 1) * _WORD_S, p, 1.0) for k, p in enumerate(parts)]
        out.append(Utterance(len(out), spk, ws[0].start, ws[-1].end, " ".join(parts), ws))
        t = ws[-1].end + _TURN_PAUSE_S
    return out


def load_transcript(path: str | Path) -> tuple[list[Utterance], str | None]:
    """(utterances with the transcript's own speaker labels, language if the file says).

    Formats: a list of words `{speaker, word, start, end}`; a list of turns `{speaker, text[, start,
    end]}`; the Azure Language conversation-analysis input (`analysisInput.conversations`)."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "analysisInput" in data:
        conv = data["analysisInput"]["conversations"][0]
        turns = [
            (str(c.get("participantId") or c.get("role")), str(c.get("text") or c.get("itn") or ""))
            for c in conv.get("conversationItems", [])
        ]
        return _timed_turns(turns), conv.get("language")
    if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        if all("word" in d and "start" in d for d in data):
            words = [
                (str(d.get("speaker")), Word(float(d["start"]), float(d["end"]), str(d["word"]), 1.0)) for d in data
            ]
            return _turns_from_words(words), None
        if all("text" in d and "speaker" in d for d in data):
            if all("start" in d and "end" in d for d in data):
                outs = []
                for d in data:
                    parts = str(d["text"]).split()
                    s, e = float(d["start"]), float(d["end"])
                    step = max(e - s, 0.01) / max(len(parts), 1)
                    outs += [
                        (str(d["speaker"]), Word(s + k * step, s + (k + 1) * step, p, 1.0)) for k, p in enumerate(parts)
                    ]
                return _turns_from_words(outs), None
            return _timed_turns([(str(d["speaker"]), str(d["text"])) for d in data]), None
    raise ConfigError(path, "unknown transcript format (want a word list, a turn list or an Azure conversation)")


# --------------------------------------------------------------------------- recordings


@dataclass
class Recording:
    """One scored rendering of a truth item (an item with build "stereo and mono mix" gives two)."""

    item: TruthItem
    variant: str
    path: Path
    legs: tuple[np.ndarray, np.ndarray] | None = None  # mono mix: (agent leg, other leg) at 16 kHz

    @property
    def label(self) -> str:
        return self.item.id if self.variant in ("as is", "transcript") else f"{self.item.id} ({self.variant})"


def build_recordings(items: Iterable[TruthItem], work_dir: Path) -> list[Recording]:
    """The files to score: audio as is, or stereo / mono mixes of the two legs written to work_dir."""
    from callqa.pipeline.decode import decode
    from callqa.synth.audio import write_audio

    out = []
    for it in items:
        if it.kind == "transcript" or it.variants == ["as is"]:
            out.append(Recording(it, it.variants[0], it.path))
            continue
        a, c = decode(str(it.path)).channels[0], decode(str(it.other)).channels[0]
        n = min(len(a), len(c))
        a, c = a[:n], c[:n]
        agent_ch = it.agent if isinstance(it.agent, int) and it.agent in (0, 1) else 0
        for v in it.variants:
            dest = work_dir / f"{it.id}_{v.replace(' ', '_')}.wav"
            if v == "stereo":
                write_audio(dest, np.stack([a, c] if agent_ch == 0 else [c, a]), SAMPLE_RATE)
                out.append(Recording(replace(it, agent=agent_ch), v, dest))
            else:
                write_audio(dest, (0.5 * (a + c))[None, :], SAMPLE_RATE)
                out.append(Recording(it, v, dest, (a, c)))
    return out
