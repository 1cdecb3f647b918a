"""The roles stage: decide which speaker is the agent and which the customer.

A configured channel map is authoritative (the recorder knows which side is which); the call's
sidecar overrides the global setting because one queue's recorder may be wired differently.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from callqa.pipeline.speakers import speaker_for_channel
from callqa.pipeline.types import ConfigError, RoleDecision, Utterance

_ROLES = {"agent", "customer"}


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


def assign_roles(
    utterances: list[Utterance],
    n_channels: int,
    channel_map: Mapping[int, str],
    metadata: Mapping[str, Any] | None = None,
    path: str | None = None,
) -> tuple[list[Utterance], RoleDecision]:
    metadata = metadata or {}
    if n_channels > 1:
        side = sidecar_channel_map(metadata, path)
        cmap, method = (side, "sidecar") if side else (dict(channel_map), "channel_map")
        mapping = {speaker_for_channel(ch, n_channels): role for ch, role in cmap.items()}
        decision = RoleDecision(mapping=mapping, confidence=1.0, method=method)
    else:
        # One voice track and no diarization: the roles cannot be told apart from the audio alone.
        decision = RoleDecision(mapping={}, confidence=0.0, method="undetermined:mono-single-speaker")
    out = [
        replace(u, role=decision.mapping.get(u.speaker, "unknown"), role_confidence=decision.confidence if u.speaker in decision.mapping else 0.0)
        for u in utterances
    ]
    return out, decision
