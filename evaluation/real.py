"""`callqa eval real TRUTH.yaml`: callqa's verdicts against human QA labels of real calls.

The truth file (format of ../shared/data/QA_TRUTH.yaml; paths relative to its folder) lists items:
`id`, `path`, `kind` (audio | transcript), `build` (audio: "as is", or "stereo" and/or "mono mix" of
an agent leg and the other party's leg), `agent` (a channel number, a transcript speaker label,
"first speaker" or "the only speaker"), `events` ({event type: true/false}; unlisted types are not
scored), optional `other` (the other leg; else the path with agent → caller/customer), `language`
and `metadata` (sidecar fields such as `direction`).

Audio items run through the whole pipeline (`process_call`); their ASR results are cached on disk,
keyed by the audio samples Whisper receives and every ASR setting, so iterating on detectors does
not re-transcribe. Transcript items (a word list with speakers, a list of turns, or an Azure
conversation-analysis input) run speakers → roles → text detectors → scoring.

Scored, per recording: per labelled (item, event) pair whether the agent produced at least one
event of that type; the role decision, and word-level role accuracy where the truth says who said
each word (stereo: the channel; mono mixes: the leg that is louder over the word; transcripts: the
speaker label); and for every criterion of the call's scorecards whose rule is one event rule over
a labelled event type, the verdict against the one the label implies (kappa over all such pairs).
An event counts as the agent's when the pipeline gave it the agent role (any speaker when the
roles are undetermined, as the scorecard does) and, where the truth can tell, the agent said it.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from callqa.evaluation.real_inputs import KINDS, CachedASR, Recording, build_recordings, load_transcript, load_truth
from callqa.pipeline.types import (
    SAMPLE_RATE,
    CallFailure,
    CallSource,
    ConfigError,
    CriterionResult,
    Event,
    RoleDecision,
    Utterance,
)

FIRST_SPEAKER, ONLY_SPEAKER = "first speaker", "the only speaker"
_LEG_RATIO = 2.0  # a mono-mix word belongs to the leg at least this much louder (RMS) over it; else overlap


# --------------------------------------------------------------------------- per recording


@dataclass
class RecordingResult:
    label: str
    item_id: str
    variant: str
    error: str | None = None
    roles: dict[str, Any] = field(default_factory=dict)  # mapping, method, confidence
    roles_correct: bool | None = None
    word_role_accuracy: float | None = None
    words_checked: int = 0
    grade: str | None = None
    percent: float | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # event type -> tp | fn | fp | tn
    quotes: dict[str, list[str]] = field(default_factory=dict)  # event type -> the agent's events
    elsewhere: dict[str, list[str]] = field(default_factory=dict)  # event type -> found, but not the agent's
    criteria: list[dict[str, Any]] = field(default_factory=list)  # criterion, expected, actual, rationale


def _rms(x: np.ndarray, start: float, end: float) -> float:
    seg = x[max(0, int(start * SAMPLE_RATE)) : max(int(end * SAMPLE_RATE), int(start * SAMPLE_RATE) + 1)]
    return float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) if seg.size else 0.0


class _Truth:
    """Who really said a stretch of a recording: "agent", "customer" or None (cannot tell)."""

    def __init__(self, rec: Recording, utterances: Sequence[Utterance]):
        self.rec = rec
        self.agent = rec.item.agent
        spoken = sorted((u for u in utterances if u.words), key=lambda u: (u.start, u.seq))
        self.first = spoken[0].speaker if spoken else None

    def role_of(self, speaker: str | None, channel: int | None, start: float, end: float) -> str | None:
        a = self.agent
        if a == ONLY_SPEAKER:
            return "agent"
        if self.rec.legs is not None:
            ra, rc = _rms(self.rec.legs[0], start, end), _rms(self.rec.legs[1], start, end)
            if ra > 0 and ra >= _LEG_RATIO * rc:
                return "agent"
            return "customer" if rc > 0 and rc >= _LEG_RATIO * ra else None
        if self.rec.variant == "transcript":
            return "agent" if speaker == str(a) else "customer"
        if isinstance(a, int) and channel is not None:
            return "agent" if channel == a else "customer"
        return None

    def speaker_role(self, speaker: str) -> str | None:
        """For truths that name a speaker, not the words ("first speaker")."""
        if self.agent == FIRST_SPEAKER and self.first is not None:
            return "agent" if speaker == self.first else "customer"
        return None


def _role_scores(res: RecordingResult, truth: _Truth, utterances: Sequence[Utterance], roles: RoleDecision) -> None:
    checked = right = 0
    votes: dict[str, dict[str, int]] = {}
    for u in utterances:
        for w in u.words:
            ref = truth.role_of(u.speaker, u.channel, w.start, w.end)
            if ref is None:
                continue
            checked += 1
            right += int(u.role == ref or (u.role == "unknown" and not roles.mapping and ref == "agent"))
            votes.setdefault(u.speaker, {}).setdefault(ref, 0)
            votes[u.speaker][ref] += 1
    res.words_checked = checked
    res.word_role_accuracy = round(right / checked, 4) if checked else None
    mapping = dict(roles.mapping)
    if truth.agent == ONLY_SPEAKER:
        # one voice: right when none of its words went to a "customer" (undetermined is right too)
        res.roles_correct = not any(mapping.get(s) == "customer" for s in votes)
    elif votes:
        res.roles_correct = all(mapping.get(s, "unknown") == max(v, key=v.get) for s, v in votes.items())
    elif truth.first is not None and truth.agent == FIRST_SPEAKER:
        res.roles_correct = mapping.get(truth.first) == "agent" and all(
            r == "customer" for s, r in mapping.items() if s != truth.first
        )


def _by_truth_agent(e: Event, truth: _Truth, channel_of: Mapping[str, int | None]) -> bool | None:
    ref = truth.role_of(e.speaker, channel_of.get(e.speaker or ""), e.start, e.end)
    if ref is None and e.speaker:
        ref = truth.speaker_role(e.speaker)
    return None if ref is None else ref == "agent"


def _quote(e: Event) -> str:
    who = e.role if e.role and e.role != "unknown" else (e.speaker or "?")
    return f"{e.start:.1f}s {who}: {e.evidence}"


def score_recording(
    rec: Recording,
    utterances: Sequence[Utterance],
    events: Sequence[Event],
    roles: RoleDecision,
    criteria: Sequence[tuple[Any, CriterionResult]],
    grade: str | None = None,
    percent: float | None = None,
    unattributed: Sequence[Event] = (),
) -> RecordingResult:
    """Compare one processed recording with its item's labels (pure; no models).

    `unattributed`: the text events found with every speaker's turns read against every list (role
    evidence); for a miss, those in other speakers' turns are quoted (a line given to the wrong voice)."""
    res = RecordingResult(
        rec.label,
        rec.item.id,
        rec.variant,
        roles={"mapping": dict(roles.mapping), "method": roles.method, "confidence": roles.confidence},
        grade=grade,
        percent=percent,
    )
    truth = _Truth(rec, utterances)
    _role_scores(res, truth, utterances, roles)
    channel_of = {u.speaker: u.channel for u in utterances}
    undetermined = not roles.mapping
    for typ, present in rec.item.events.items():
        mine, other = [], []
        for e in (e for e in events if e.type == typ):
            by_role = e.role == "agent" or (undetermined and e.role in (None, "unknown"))
            said = _by_truth_agent(e, truth, channel_of)
            (mine if by_role and said is not False else other).append(
                _quote(e) + ("" if said is not False else " [said by the customer]")
            )
        if present and not mine:
            role_of = {u.speaker: u.role for u in utterances}
            other += [
                f"{e.start:.1f}s in a {role_of.get(e.speaker or '', 'unknown')} turn: {e.evidence}"
                for e in unattributed
                if e.type == typ and role_of.get(e.speaker or "") != "agent"
            ]
        res.quotes[typ], res.elsewhere[typ] = mine, other
        res.outcomes[typ] = ("tp" if mine else "fn") if present else ("fp" if mine else "tn")
    for crit, cr in criteria:
        rule = crit.rule
        typ = getattr(rule, "event", None) or getattr(rule, "absent", None)
        if (
            typ not in rec.item.events
            or getattr(rule, "where", None)
            or crit.applies_when is not None
            or crit.na_when is not None
            or getattr(rule, "by", "agent") == "customer"
        ):
            continue
        expected = "pass" if rec.item.events[typ] == (getattr(rule, "event", None) is not None) else "fail"
        res.criteria.append(
            {"criterion": crit.id, "event": typ, "expected": expected, "actual": cr.result, "rationale": cr.rationale}
        )
    return res


def _score_criteria(cards: Sequence[Any], scores: Sequence[Any]) -> list[tuple[Any, CriterionResult]]:
    out = []
    for card, sc in zip(cards, scores):
        crits = {c.id: c for _s, c in card.criteria}
        out += [(crits[r.criterion_id], r) for r in sc.criteria if r.criterion_id in crits]
    return out


def run_transcript(
    rec: Recording, text_kit: Any, role_kit: Any, scorecards: Sequence[Any], settings: Any
) -> RecordingResult:
    """speakers (the transcript's labels) → roles by evidence → text detectors → scoring."""
    from callqa.pipeline.detectors.text import detect_text_events
    from callqa.pipeline.discover import sha256_file
    from callqa.pipeline.metrics import talk_metrics
    from callqa.pipeline.roles import assign_roles, detect_role_evidence
    from callqa.pipeline.scoring import ScoringContext, cards_for_language, score_call

    utts, lang = load_transcript(rec.path)
    lang = rec.item.language or lang or "en"
    call_id = sha256_file(rec.path)
    evidence = detect_role_evidence(call_id, utts, lang, role_kit)
    utts, roles = assign_roles(utts, 1, settings.channel_map, rec.item.metadata, path=str(rec.path), evidence=evidence)
    events = detect_text_events(call_id, utts, lang, text_kit)
    duration = max((u.end for u in utts), default=0.0)
    ctx = ScoringContext(
        events=events, duration_s=duration, roles_known=bool(roles.mapping), metrics=talk_metrics(utts, duration)
    )
    cards = cards_for_language(list(scorecards), lang)
    scores = [score_call(c, ctx) for c in cards]
    return score_recording(
        rec,
        utts,
        events,
        roles,
        _score_criteria(cards, scores),
        scores[0].grade if scores else None,
        scores[0].percent if scores else None,
        evidence,
    )


def run_audio(rec: Recording, kit: Any) -> RecordingResult:
    """The whole pipeline (process_call) on one recording."""
    from callqa.pipeline.call import process_call
    from callqa.pipeline.discover import sha256_file
    from callqa.pipeline.roles import detect_role_evidence
    from callqa.pipeline.scoring import cards_for_language

    res = process_call(
        CallSource(str(rec.path), sha256_file(rec.path), rec.path.stat().st_size, dict(rec.item.metadata)), kit
    )
    if isinstance(res, CallFailure):
        return RecordingResult(rec.label, rec.item.id, rec.variant, error=f"{res.stage}: {res.error}")
    cards = cards_for_language(list(kit.scorecards), res.language)
    by_id = {(c.id, c.version): c for c in cards}
    crits = [
        (c, r)
        for sc in res.scores
        if (sc.scorecard_id, sc.scorecard_version) in by_id
        for c, r in _score_criteria([by_id[(sc.scorecard_id, sc.scorecard_version)]], [sc])
    ]
    first = res.scores[0] if res.scores else None
    unattributed = detect_role_evidence(res.source.call_id, res.utterances, res.language, kit.role_text_kit)
    return score_recording(
        rec,
        res.utterances,
        res.events,
        res.roles or RoleDecision({}, 0.0, "none"),
        crits,
        first.grade if first else None,
        first.percent if first else None,
        unattributed,
    )


# --------------------------------------------------------------------------- the report


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of (expected, actual) verdicts; None when chance agreement is total."""
    n = len(pairs)
    if not n:
        return None
    po = sum(a == b for a, b in pairs) / n
    cats = {x for p in pairs for x in p}
    pe = sum((sum(a == k for a, _ in pairs) / n) * (sum(b == k for _, b in pairs) / n) for k in cats)
    return None if math.isclose(pe, 1.0) else round((po - pe) / (1 - pe), 3)


@dataclass
class RealEvalReport:
    truth: str
    recordings: list[RecordingResult]
    models: dict[str, str] = field(default_factory=dict)
    asr_cache: dict[str, Any] = field(default_factory=dict)

    def event_table(self) -> dict[str, dict[str, Any]]:
        """Per event type: tp/fn/fp/tn counts, precision, recall, and the quotes of misses and false alarms."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.recordings:
            for typ, o in r.outcomes.items():
                t = out.setdefault(typ, {"tp": 0, "fn": 0, "fp": 0, "tn": 0, "misses": [], "false_alarms": []})
                t[o] += 1
                if o == "fn":
                    t["misses"].append({"call": r.label, "found_elsewhere": r.elsewhere.get(typ, [])})
                elif o == "fp":
                    t["false_alarms"].append({"call": r.label, "quotes": r.quotes.get(typ, [])})
        for t in out.values():
            t["precision"] = round(t["tp"] / (t["tp"] + t["fp"]), 3) if t["tp"] + t["fp"] else None
            t["recall"] = round(t["tp"] / (t["tp"] + t["fn"]), 3) if t["tp"] + t["fn"] else None
        return dict(sorted(out.items()))

    def criterion_table(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in self.recordings:
            for c in r.criteria:
                t = out.setdefault(c["criterion"], {"pairs": [], "disagreements": []})
                t["pairs"].append((c["expected"], c["actual"]))
                if c["expected"] != c["actual"]:
                    t["disagreements"].append({"call": r.label, **c})
        for t in out.values():
            pairs = t.pop("pairs")
            t.update(n=len(pairs), agree=sum(a == b for a, b in pairs), kappa=cohen_kappa(pairs))
            t["agreement"] = round(t["agree"] / t["n"], 3)
        return dict(sorted(out.items()))

    @property
    def criterion_pairs(self) -> list[tuple[str, str]]:
        return [(c["expected"], c["actual"]) for r in self.recordings for c in r.criteria]

    def summary(self) -> dict[str, Any]:
        ev = self.event_table()
        tp, fp, fn = (sum(t[k] for t in ev.values()) for k in ("tp", "fp", "fn"))
        pairs = self.criterion_pairs
        roles = [r.roles_correct for r in self.recordings if r.roles_correct is not None]
        words = sum(r.words_checked for r in self.recordings)
        right = sum((r.word_role_accuracy or 0) * r.words_checked for r in self.recordings)
        return {
            "recordings": len(self.recordings),
            "failed": sum(r.error is not None for r in self.recordings),
            "event_pairs": tp + fp + fn + sum(t["tn"] for t in ev.values()),
            "precision": round(tp / (tp + fp), 3) if tp + fp else None,
            "recall": round(tp / (tp + fn), 3) if tp + fn else None,
            "min_precision": min((t["precision"] for t in ev.values() if t["precision"] is not None), default=None),
            "min_recall": min((t["recall"] for t in ev.values() if t["recall"] is not None), default=None),
            "criterion_pairs": len(pairs),
            "criterion_agreement": round(sum(a == b for a, b in pairs) / len(pairs), 3) if pairs else None,
            "criterion_kappa": cohen_kappa(pairs),
            "roles_correct": f"{sum(roles)}/{len(roles)}" if roles else None,
            "word_role_accuracy": round(right / words, 4) if words else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "truth": self.truth,
            "summary": self.summary(),
            "events": self.event_table(),
            "criteria": self.criterion_table(),
            "recordings": [asdict(r) for r in self.recordings],
            "models": self.models,
            "asr_cache": self.asr_cache,
        }


def default_cache_dir(settings: Any) -> Path:
    return Path(settings.models.cache_dir) / "eval-real-asr"


def evaluate_real(
    truth: str | Path,
    settings: Any = None,
    *,
    kit: Any = None,
    cache_dir: str | Path | None = None,
    kinds: Iterable[str] = KINDS,
    only: Iterable[str] | None = None,
    work_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> RealEvalReport:
    """Score callqa against a truth file.

    `settings`: callqa Settings (default: the bundled defaults); `kit`: a loaded Toolkit to reuse
    (else one is loaded when audio items are selected; transcripts need only the text detectors);
    `cache_dir`: where ASR results are kept (default <models.cache_dir>/eval-real-asr; the wrapped
    kit's ASR is used for misses); `kinds`: "audio" and/or "transcript"; `only`: item ids;
    `work_dir`: where stereo/mono builds are written (default a temporary folder, removed after).
    """
    from callqa.config.settings import load_settings

    say = progress or (lambda _m: None)
    settings = settings or (kit.settings if kit is not None else load_settings())
    kinds, wanted = set(kinds), set(only) if only is not None else None
    items = [it for it in load_truth(truth) if it.kind in kinds and (wanted is None or it.id in wanted)]
    if wanted is not None and wanted - {it.id for it in items}:
        raise ConfigError(truth, f"no {'/'.join(sorted(kinds))} items {sorted(wanted - {it.id for it in items})}")
    audio = [it for it in items if it.kind == "audio"]
    cached = None
    if audio:
        from callqa.pipeline.toolkit import load_toolkit

        kit = kit or load_toolkit(settings)
        cached = CachedASR(kit.asr, cache_dir or default_cache_dir(settings))
        kit = replace(kit, asr=cached)
    if kit is not None:
        text_kit, role_kit, cards = kit.text_kit, kit.role_text_kit, kit.scorecards
    else:
        from callqa.pipeline.detectors.text import build_text_kit
        from callqa.pipeline.roles import build_role_text_kit
        from callqa.pipeline.scoring import load_scorecard

        text_kit, role_kit = build_text_kit(settings), build_role_text_kit(settings)
        cards = [load_scorecard(s) for s in settings.scorecards]
    results: list[RecordingResult] = []
    with tempfile.TemporaryDirectory(prefix="callqa-eval-real-") as tmp:
        wd = Path(work_dir) if work_dir else Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        for rec in build_recordings(items, wd):
            say(f"{rec.label}: {'transcript' if rec.variant == 'transcript' else 'pipeline'}")
            try:
                r = (
                    run_transcript(rec, text_kit, role_kit, cards, settings)
                    if rec.variant == "transcript"
                    else run_audio(rec, kit)
                )
            except ConfigError as e:
                r = RecordingResult(rec.label, rec.item.id, rec.variant, error=str(e))
            results.append(r)
    models = dict(kit.models) if kit is not None else {"detectors": text_kit.description}
    cache = {"dir": str(cached.cache_dir), "hits": cached.hits, "misses": cached.misses} if cached else {}
    return RealEvalReport(str(truth), results, models, cache)


def main(
    truth: str | Path,
    *,
    config: str | Path | None = None,
    json_out: str | Path | None = None,
    markdown_out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    kinds: Iterable[str] = KINDS,
    only: Iterable[str] | None = None,
    console: Any = None,
) -> RealEvalReport:
    """What `callqa eval real` runs: evaluate, print the tables, optionally write JSON/markdown."""
    from callqa.config.settings import load_settings
    from callqa.evaluation.real_report import print_report, render_markdown

    if console is None:
        from rich.console import Console

        console = Console()
    settings = load_settings(config)
    report = evaluate_real(
        truth,
        settings,
        cache_dir=cache_dir,
        kinds=kinds,
        only=only,
        progress=lambda m: console.print(m, markup=False, style="dim"),
    )
    print_report(report, console)
    if json_out:
        Path(json_out).write_text(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
    if markdown_out:
        Path(markdown_out).write_text(render_markdown(report), encoding="utf-8")
    return report
