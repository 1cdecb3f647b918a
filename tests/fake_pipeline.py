"""The nightly flow with the per-call pipeline replaced by a stand-in: no models, no decoding.

For tests of what the flow does around the calls (discovery, metadata, duplicates, faults, the
runs row): the stand-in returns a small but complete CallResult for each recording (its bytes need
not be audio) and fails a call whose sidecar is bad, as the real runner does, then applies the real
redact stage.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from callqa.pipeline.discover import metadata_error
from callqa.pipeline.redact import apply_redaction
from callqa.pipeline.scoring import ScoringContext, load_scorecard, score_call
from callqa.pipeline.types import CallFailure, CallResult, CallSource, Event, RoleDecision, Utterance, Word


def result_for(source: CallSource, dup_seq: bool = False) -> CallResult:
    """A small but complete two-party result (a greeting, scored); `dup_seq` gives both utterances seq 0,
    which the store must refuse."""
    words = [Word(0.5, 0.9, "Thank", 0.9, 0), Word(0.9, 1.2, "you", 0.95, 0)]
    utts = [
        Utterance(
            0, "ch0", 0.5, 1.2, "Thank you", words, channel=0, role="agent", role_confidence=1.0, asr_confidence=0.92
        ),
        Utterance(
            0 if dup_seq else 1, "ch1", 2.0, 2.5, "Hi", [Word(2.0, 2.5, "Hi", 0.8, 1)], channel=1, role="customer"
        ),
    ]
    ev = Event(
        "greeting",
        0.5,
        1.2,
        "ch0",
        "agent",
        "Thank you",
        0.9,
        "scripts/1",
        {"phrase": "thank you"},
        event_id=source.call_id[:8],
    )
    score = score_call(load_scorecard("inbound_service_en"), ScoringContext([ev], 10.0, True))
    return CallResult(
        source=source,
        duration_s=10.0,
        channels=2,
        sample_rate=8000,
        codec="pcm_mulaw",
        language="en",
        language_probability=0.99,
        utterances=utts,
        events=[ev],
        metrics={"talk_s": 1.2},
        scores=[score],
        models={"asr": "stand-in"},
        roles=RoleDecision({"ch0": "agent", "ch1": "customer"}, 1.0, "channel_map"),
        timings={"decode": 0.0},
    )


def fake_process_call(source: CallSource, kit) -> CallResult | CallFailure:
    bad = metadata_error(source)
    if bad is not None:
        return CallFailure(source.path, source.call_id, "discover", str(bad), permanent=False)
    return apply_redaction(result_for(source), kit.settings.redaction)


def use_fake_pipeline(monkeypatch, on_call=None) -> None:
    """Route the flow's calls through the stand-in; `on_call(source)` runs first for each call."""
    from callqa.flows import nightly

    def process(source, kit):
        if on_call is not None:
            on_call(source)
        return fake_process_call(source, kit)

    monkeypatch.setattr(nightly, "toolkit_for", lambda settings, slots=1: SimpleNamespace(settings=settings))
    monkeypatch.setattr(nightly, "process_call", process)


def write_recordings(folder: Path, names: list[str], same: dict[str, str] | None = None) -> dict[str, Path]:
    """Files whose bytes differ by name; `same` maps a name to another whose bytes it copies."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        out[name] = folder / name
        out[name].write_bytes(b"RIFF-not-really-audio-" + name.encode() * 100)
    for name, original in (same or {}).items():
        out[name] = folder / name
        out[name].parent.mkdir(parents=True, exist_ok=True)
        out[name].write_bytes(out[original].read_bytes())
    return out
