"""The roles stage: decide which speaker is the agent and which the customer.

Order of authority:
1. the call's sidecar (`channel_map` / `agent_channel`): one queue's recorder may be wired
   differently from the global setting;
2. the configured `channel_map` (stereo only: the recorder knows which side is which);
3. evidence from what was said (diarized mono calls, or stereo with an empty channel map):
   who speaks the greeting and closing script and the other agent-typical lines (the text
   detectors' events, found with roles unknown), who makes customer-typical remarks (complaints,
   escalation requests), and who speaks first (on an inbound call the agent answers).

The decision, its confidence and the cues behind it are stored with the call; each utterance
carries its role and the decision's confidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from callqa.pipeline.spans import overlap
from callqa.pipeline.speakers import speaker_for_channel
from callqa.pipeline.types import ConfigError, Event, Role, RoleDecision, Utterance

_ROLES = {"agent", "customer"}

# How much one text event says "this speaker is the agent" (positive) or "the customer"
# (negative). Script lines an agent is trained to say weigh most; generic ones (empathy, an
# explanation) least, because customers say "sorry" and explain things too.
EVIDENCE_WEIGHTS: dict[str, float] = {
    "greeting": 3.0,
    "closing": 1.0,  # "thanks, bye" from the customer can match a closing line too
    "need_discovery": 2.0,
    "identity_verification": 1.5,
    "further_help_offered": 2.0,
    "satisfaction_check": 1.5,
    "hold_announced": 1.5,
    "hold_thanked": 1.5,
    "understanding_confirmed": 0.5,
    "solution_explained": 0.5,
    "empathy": 0.5,
    "complaint": -1.0,
    "escalation_request": -1.5,
}
FIRST_SPEAKER_WEIGHT = {"inbound": 1.0, "outbound": -1.0, None: 0.5}
# A cue said in a turn the diarizer could not attribute keeps this share of its weight (it was
# labelled with the likelier voice, but only just): a misattributed greeting would otherwise
# outweigh the rest of the call.
UNCERTAIN_SHARE = 0.25
# Once the roles are decided, a turn the diarizer could not attribute goes to the agent when its
# words are the agent's script (these cues, the strongest in EVIDENCE_WEIGHTS): where the voice
# cannot tell, the words do. Measured: the aws-lca Auto_Repairs_49 mono mix opens with the agent's
# "... speaking. How can I help you?", which the speaker model puts with the caller's voice.
AGENT_SCRIPT_CUES = frozenset({"greeting", "need_discovery", "further_help_offered"})


def sidecar_channel_map(metadata: Mapping[str, Any], path: str | None = None) -> dict[int, str] | None:
    """`channel_map: {"0": "agent", "1": "customer"}` or `agent_channel: 1` in a call's sidecar."""
    if "channel_map" in metadata and metadata["channel_map"] not in (None, ""):
        raw = metadata["channel_map"]
        if not isinstance(raw, Mapping):
            raise ConfigError(path, f"sidecar channel_map must be a mapping like {{'0': 'agent'}}, got {raw!r}")
        try:
            cmap = {int(k): str(v).lower() for k, v in raw.items()}
        except (TypeError, ValueError) as e:
            raise ConfigError(path, f"sidecar channel_map keys must be channel numbers: {raw!r}") from e
        bad = {v for v in cmap.values() if v not in _ROLES}
        if bad:
            raise ConfigError(path, f"sidecar channel_map roles must be agent/customer, got {sorted(bad)}")
        return cmap
    if metadata.get("agent_channel") not in (None, ""):
        try:
            a = int(metadata["agent_channel"])
        except (TypeError, ValueError) as e:
            raise ConfigError(path, f"sidecar agent_channel must be 0 or 1, got {metadata['agent_channel']!r}") from e
        if a not in (0, 1):
            raise ConfigError(path, f"sidecar agent_channel must be 0 or 1, got {a}")
        return {a: "agent", 1 - a: "customer"}
    return None


def _direction(metadata: Mapping[str, Any]) -> str | None:
    d = str(metadata.get("direction") or "").strip().lower()
    return d if d in ("inbound", "outbound") else None


def _uncertain_share(start: float, end: float, uncertain: Sequence[tuple[float, float]]) -> float:
    """How much of [start, end] lies in uncertain spans (a point: 1.0 when inside one)."""
    if not uncertain:
        return 0.0
    if end <= start:
        return 1.0 if any(s <= start <= e for s, e in uncertain) else 0.0
    return min(1.0, sum(overlap(start, end, s, e) for s, e in uncertain) / (end - start))


def role_evidence(
    utterances: Sequence[Utterance],
    events: Sequence[Event],
    metadata: Mapping[str, Any] | None = None,
    uncertain: Sequence[tuple[float, float]] = (),
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Agent score per speaker and the cues behind it (e.g. "greeting@3.2s").

    `uncertain`: spans whose speaker the diarizer could not tell; a cue there counts
    UNCERTAIN_SHARE of its weight (and is listed with "~")."""
    metadata = metadata or {}
    ordered = sorted((u for u in utterances if u.words), key=lambda u: (u.start, u.seq))
    speakers = []
    for u in ordered:
        if u.speaker not in speakers:
            speakers.append(u.speaker)
    score = {s: 0.0 for s in speakers}
    cues: dict[str, list[str]] = {s: [] for s in speakers}

    def add(speaker: str, weight: float, cue: str, start: float, end: float) -> None:
        share = _uncertain_share(start, end, uncertain)
        score[speaker] += weight * (1.0 - (1.0 - UNCERTAIN_SHARE) * share)
        cues[speaker].append(cue + ("~" if share >= 0.5 else ""))

    for e in events:
        w = EVIDENCE_WEIGHTS.get(e.type)
        if w is None or e.speaker not in score:
            continue
        add(e.speaker, w * max(0.5, min(1.0, e.confidence or 1.0)), f"{e.type}@{e.start:.1f}s", e.start, e.end)
    if len(speakers) > 1:
        first = ordered[0]
        add(
            first.speaker,
            FIRST_SPEAKER_WEIGHT[_direction(metadata)],
            f"spoke_first({_direction(metadata) or 'direction unknown'})",
            first.start,
            first.end,
        )
    return score, cues


def decide_by_evidence(
    utterances: Sequence[Utterance],
    events: Sequence[Event],
    metadata: Mapping[str, Any] | None = None,
    uncertain: Sequence[tuple[float, float]] = (),
) -> RoleDecision:
    """The best-scoring speaker is the agent, every other speaker a customer.

    Confidence is a logistic of the margin between the top two scores: 0.5 when the evidence
    cannot tell them apart, 0.95 at a margin of three (about one greeting).
    """
    score, cues = role_evidence(utterances, events, metadata, uncertain)
    if len(score) < 2:
        only = next(iter(score), None)
        return RoleDecision(
            mapping={}, confidence=0.0, method="undetermined:single-speaker" + (f"({only})" if only else "")
        )
    ranked = sorted(score, key=lambda s: (-score[s], list(score).index(s)))
    agent = ranked[0]
    margin = score[agent] - score[ranked[1]]
    confidence = round(1.0 / (1.0 + math.exp(-margin)), 3)
    mapping: dict[str, Role] = {s: ("agent" if s == agent else "customer") for s in score}
    kinds = sorted({c.split("@")[0].split("(")[0] for c in cues[agent]})
    return RoleDecision(mapping=mapping, confidence=confidence, method="evidence:" + "+".join(kinds or ["none"]))


def assign_roles(
    utterances: list[Utterance],
    n_channels: int,
    channel_map: Mapping[int, str] | None,
    metadata: Mapping[str, Any] | None = None,
    path: str | None = None,
    evidence: Sequence[Event] | None = None,
    uncertain: Sequence[tuple[float, float]] = (),
) -> tuple[list[Utterance], RoleDecision]:
    """Label every utterance agent/customer/unknown and return the decision.

    `evidence`: text-detector events found over these utterances with roles unknown; when given,
    speakers that no channel map covers (diarized mono speakers; stereo with no map) are decided
    from it. `uncertain`: the diarizer's unattributable turns (see role_evidence).
    """
    metadata = metadata or {}
    decision: RoleDecision | None = None
    if n_channels > 1:
        side = sidecar_channel_map(metadata, path)
        cmap, method = (side, "sidecar") if side else (dict(channel_map or {}), "channel_map")
        if cmap:
            mapping = {speaker_for_channel(ch, n_channels): role for ch, role in cmap.items()}
            decision = RoleDecision(mapping=mapping, confidence=1.0, method=method)  # type: ignore[arg-type]
    if decision is None:
        if evidence is not None:
            decision = decide_by_evidence(utterances, evidence, metadata, uncertain)
        elif n_channels > 1:
            decision = RoleDecision(mapping={}, confidence=0.0, method="undetermined:no-channel-map")
        else:
            # One voice track and no diarization: the roles cannot be told apart from the audio alone.
            decision = RoleDecision(mapping={}, confidence=0.0, method="undetermined:mono-single-speaker")
    out = [
        replace(
            u,
            role=decision.mapping.get(u.speaker, "unknown"),
            role_confidence=decision.confidence if u.speaker in decision.mapping else 0.0,
        )
        for u in utterances
    ]
    if evidence is not None and uncertain and decision.mapping:
        out = reattribute_uncertain_script(out, evidence, decision, uncertain)
    return out, decision


def reattribute_uncertain_script(
    utterances: list[Utterance],
    evidence: Sequence[Event],
    decision: RoleDecision,
    uncertain: Sequence[tuple[float, float]],
) -> list[Utterance]:
    """Customer turns that lie mostly in an unattributable span and carry an agent-script cue
    (AGENT_SCRIPT_CUES, found with roles unknown) become the agent's, speaker label included."""
    agents = [s for s, r in decision.mapping.items() if r == "agent"]
    if len(agents) != 1:
        return utterances
    agent = agents[0]
    out = []
    for u in utterances:
        if (
            u.role == "customer"
            and u.words
            and _uncertain_share(u.start, u.end, uncertain) >= 0.5
            and any(
                e.type in AGENT_SCRIPT_CUES and e.speaker == u.speaker and overlap(e.start, e.end, u.start, u.end) > 0
                for e in evidence
            )
        ):
            u = replace(u, speaker=agent, role="agent", role_confidence=decision.confidence)
        out.append(u)
    return out


def detect_role_evidence(
    call_id: str, utterances: Sequence[Utterance], language: str | None, text_kit: Any
) -> list[Event]:
    """The text detectors' events over the utterances with roles unknown (so every speaker's
    lines are checked against every list); `text_kit` is a TextDetectorKit built once per worker."""
    from callqa.pipeline.detectors.text import detect_text_events

    unknown = [replace(u, role="unknown", role_confidence=0.0) for u in utterances]
    return detect_text_events(call_id, unknown, language, text_kit)


def needs_evidence(
    n_channels: int, channel_map: Mapping[int, str] | None, metadata: Mapping[str, Any] | None, path: str | None = None
) -> bool:
    """Whether roles must come from what was said: mono, or stereo with no channel map at all."""
    if n_channels <= 1:
        return True
    return not (sidecar_channel_map(metadata or {}, path) or channel_map)


def build_role_text_kit(settings: Any) -> Any:
    """A fuzzy-only text-detector kit for role evidence: no embedding model to load, and the
    wording of script lines is what marks an agent."""
    from callqa.pipeline.detectors.text import build_text_kit

    det = settings.detect
    return build_text_kit(det.model_copy(update={"text": det.text.model_copy(update={"semantic": False})}))
