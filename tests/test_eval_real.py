"""`callqa eval real`: truth files, transcripts, the ASR cache, the scoring, and the visible real set.

The real recordings and transcripts are non-commercial evaluation data: they are read from the
real-data folder (the `real_data` fixture) and never copied here; every other test uses
hand-written material.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from callqa.config.settings import DetectSettings, load_settings
from callqa.evaluation.real import ONLY_SPEAKER, RealEvalReport, cohen_kappa, evaluate_real, score_recording
from callqa.evaluation.real_inputs import CachedASR, Recording, TruthItem, load_transcript, load_truth
from callqa.evaluation.real_report import render_markdown
from callqa.pipeline.types import SAMPLE_RATE, ConfigError, Event, RoleDecision, Segment, Utterance, Word


@pytest.fixture(scope="module")
def text_only_kit(text_kit):
    """What evaluate_real needs for transcript items, without loading ASR or a diarizer."""
    from callqa.pipeline.detectors.text import build_text_kit
    from callqa.pipeline.scoring import load_scorecard

    det = DetectSettings()
    role_kit = build_text_kit(det.model_copy(update={"text": det.text.model_copy(update={"semantic": False})}))
    settings = load_settings()
    return SimpleNamespace(
        settings=settings,
        text_kit=text_kit,
        role_text_kit=role_kit,
        scorecards=[load_scorecard(s) for s in settings.scorecards],
        models={},
    )


def _words(speaker_lines: list[tuple[str, str]]) -> list[dict]:
    out, t = [], 0.5
    for spk, text in speaker_lines:
        for w in text.split():
            out.append({"speaker": spk, "word": w, "start": round(t, 2), "end": round(t + 0.3, 2)})
            t += 0.32
        t += 1.0
    return out


# A hand-written service call in the SpokenWOZ word-list shape (caller first, informal agent).
CALL = [
    ("caller", "hello"),
    ("desk", "hi there how can i help you today"),
    ("caller", "i would like to change the address on my account"),
    ("desk", "sure may i have your full name please"),
    ("caller", "anna lee"),
    ("desk", "thank you anna i have updated the address and you will get a letter in a few days"),
    ("caller", "great thanks"),
    ("desk", "is there anything else i can help you with"),
    ("caller", "no that is all"),
    ("desk", "you are welcome have a good one bye"),
]


def _truth(tmp_path, items: list[dict]) -> str:
    import yaml

    p = tmp_path / "truth.yaml"
    p.write_text(yaml.safe_dump({"items": items}), encoding="utf-8")
    return str(p)


def test_truth_file_items_paths_and_builds(tmp_path):
    (tmp_path / "calls").mkdir()
    for name in ("Desk_1_agent.wav", "Desk_1_caller.wav", "mono.wav"):
        (tmp_path / "calls" / name).write_bytes(b"RIFF")
    (tmp_path / "t.json").write_text(json.dumps(_words(CALL)), encoding="utf-8")
    path = _truth(
        tmp_path,
        [
            {
                "id": "pair",
                "path": "calls/Desk_1_agent.wav",
                "kind": "audio",
                "agent": 0,
                "build": "stereo (agent left) and a mono mix of the two legs",
                "events": {"greeting": True},
            },
            {
                "id": "mono",
                "path": "calls/mono.wav",
                "kind": "audio",
                "agent": "first speaker",
                "build": "as is (mono, agent and customer mixed)",
                "events": {"closing": False},
            },
            {"id": "text", "path": "t.json", "kind": "transcript", "agent": "desk", "events": {"greeting": True}},
        ],
    )
    pair, mono, text = load_truth(path)
    assert pair.variants == ["stereo", "mono mix"] and pair.other.name == "Desk_1_caller.wav"
    assert mono.variants == ["as is"] and mono.other is None  # "mixed" is no build instruction
    assert text.variants == ["transcript"] and text.path == (tmp_path / "t.json").resolve()

    text_item = {"id": "x", "path": "t.json", "kind": "transcript", "agent": "desk", "events": {"closing": True}}
    bad = [
        ({"events": {"greting": True}}, "unknown"),
        ({"kind": "video"}, "kind"),
        ({"path": "nope.json"}, "no file"),
        ({"agent": None}, "missing agent"),
        ({"path": "calls/mono.wav", "kind": "audio", "agent": 0, "build": "stereo"}, "other leg"),
    ]
    for change, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            load_truth(_truth(tmp_path, [{**text_item, **change}]))
    with pytest.raises(ConfigError, match="twice"):
        load_truth(_truth(tmp_path, [text_item, text_item]))


def test_transcript_formats(tmp_path):
    words = tmp_path / "w.json"
    words.write_text(json.dumps(_words(CALL)), encoding="utf-8")
    utts, lang = load_transcript(words)
    assert [u.speaker for u in utts[:3]] == ["caller", "desk", "caller"] and lang is None
    assert utts[1].text == "hi there how can i help you today" and utts[1].words[0].start > utts[0].end

    turns = tmp_path / "turns.json"
    turns.write_text(json.dumps([{"speaker": s, "text": t} for s, t in CALL]), encoding="utf-8")
    utts, _ = load_transcript(turns)
    assert len(utts) == len(CALL) and all(u.end > u.start for u in utts)
    assert all(a.end < b.start for a, b in zip(utts, utts[1:]))

    azure = tmp_path / "conv.json"
    items = [{"participantId": s.title(), "text": t.capitalize() + "."} for s, t in CALL]
    azure.write_text(
        json.dumps({"analysisInput": {"conversations": [{"language": "en", "conversationItems": items}]}}),
        encoding="utf-8",
    )
    utts, lang = load_transcript(azure)
    assert lang == "en" and utts[1].speaker == "Desk" and utts[1].text.endswith("today.")

    (tmp_path / "odd.json").write_text(json.dumps({"hello": 1}), encoding="utf-8")
    with pytest.raises(ConfigError, match="format"):
        load_transcript(tmp_path / "odd.json")


def test_cohen_kappa():
    assert cohen_kappa([("pass", "pass"), ("fail", "fail")]) == 1.0
    assert cohen_kappa([("pass", "pass"), ("pass", "pass")]) is None  # one class: kappa undefined
    assert cohen_kappa([("pass", "fail"), ("fail", "pass")]) == -1.0
    assert cohen_kappa([]) is None


def test_cached_asr_transcribes_each_audio_once(tmp_path):
    class FakeASR:
        description = "fake whisper"
        calls = 0

        def transcribe_channel(self, samples, channel, language, settings, vocabulary=()):
            FakeASR.calls += 1
            w = Word(0.1, 0.4, "hello", 0.9, channel)
            return [Segment(0.1, 0.4, "hello", (w,), channel, -0.2, 0.01)], "en", 0.97

    asr_settings = load_settings().models.asr
    cached = CachedASR(FakeASR(), tmp_path / "cache")
    x = np.linspace(-0.1, 0.1, SAMPLE_RATE, dtype=np.float32)
    first = cached.transcribe_channel(x, 0, None, asr_settings)
    again = cached.transcribe_channel(x.copy(), 0, None, asr_settings)
    assert FakeASR.calls == 1 and again == first and (cached.hits, cached.misses) == (1, 1)
    cached.transcribe_channel(x, 0, None, asr_settings.model_copy(update={"beam_size": 5}))
    cached.transcribe_channel(x * 0.5, 0, None, asr_settings)
    assert FakeASR.calls == 3  # another setting or other samples: transcribed again
    cached.transcribe_channel(x, 0, None, asr_settings, ["Acme"])  # a vocabulary (hotwords) is part of the key
    cached.transcribe_channel(x, 0, None, asr_settings, ())  # an empty one is the same call as none
    assert FakeASR.calls == 4
    assert cached.description == "fake whisper"


def _utt(seq, speaker, role, start, text, channel=None):
    ws = [Word(start + 0.3 * i, start + 0.3 * (i + 1), w, 0.9, channel or 0) for i, w in enumerate(text.split())]
    return Utterance(seq, speaker, start, ws[-1].end, text, ws, channel=channel, role=role)


def _event(typ, utt, role=None):
    return Event(typ, utt.start, utt.end, utt.speaker, role or utt.role, utt.text, 0.9, "t/1")


def test_scoring_a_mono_mix_by_the_louder_leg():
    """Word-level truth on a mono mix is the leg that is louder over the word; an event the
    pipeline gave the agent but the caller's leg carries is not the agent's."""
    n = 4 * SAMPLE_RATE
    agent_leg, caller_leg = np.zeros(n, np.float32), np.zeros(n, np.float32)
    agent_leg[: 2 * SAMPLE_RATE] = 0.3  # the agent speaks 0-2 s, the caller 2-4 s
    caller_leg[2 * SAMPLE_RATE :] = 0.3
    item = TruthItem("m", None, "audio", 0, {"greeting": True, "closing": True, "empathy": False})
    rec = Recording(item, "mono mix", None, (agent_leg, caller_leg))
    a = _utt(0, "S0", "agent", 0.1, "hello thanks for calling")
    c = _utt(1, "S1", "customer", 2.1, "thanks bye bye now")
    misplaced = _event("closing", c, role="agent")  # the pipeline's mistake: the caller's words as the agent's
    roles = RoleDecision({"S0": "agent", "S1": "customer"}, 0.9, "evidence")
    res = score_recording(rec, [a, c], [_event("greeting", a), misplaced], roles, [])
    assert res.word_role_accuracy == 1.0 and res.words_checked == 8 and res.roles_correct
    assert res.outcomes == {"greeting": "tp", "closing": "fn", "empathy": "tn"}
    assert "said by the customer" in res.elsewhere["closing"][0]


def test_scoring_one_sided_and_transcript_truths():
    only = Recording(TruthItem("o", None, "audio", ONLY_SPEAKER, {"closing": True}), "as is", None)
    u = [_utt(0, "spk0", "unknown", 0.0, "thanks for calling goodbye")]
    res = score_recording(only, u, [_event("closing", u[0])], RoleDecision({}, 0.0, "undetermined"), [])
    assert res.outcomes == {"closing": "tp"} and res.word_role_accuracy == 1.0 and res.roles_correct

    tr = Recording(TruthItem("t", None, "transcript", "B", {"greeting": True}), "transcript", None)
    u = [_utt(0, "A", "agent", 0.0, "hi this is mark"), _utt(1, "B", "customer", 2.0, "hello how can i help")]
    roles = RoleDecision({"A": "agent", "B": "customer"}, 0.6, "e")
    res = score_recording(tr, u, [_event("greeting", u[0])], roles, [])
    assert res.roles_correct is False and res.word_role_accuracy == 0.0 and res.outcomes == {"greeting": "fn"}


def test_a_labelled_transcript_end_to_end(tmp_path, text_only_kit):
    (tmp_path / "call.json").write_text(json.dumps(_words(CALL)), encoding="utf-8")
    truth = _truth(
        tmp_path,
        [
            {
                "id": "desk call",
                "path": "call.json",
                "kind": "transcript",
                "agent": "desk",
                "events": {
                    "greeting": True,
                    "need_discovery": True,
                    "identity_verification": True,
                    "further_help_offered": True,
                    "closing": True,
                    "hold_announced": False,
                    "satisfaction_check": False,
                    "forbidden_phrase": False,
                },
            }
        ],
    )
    rep = evaluate_real(truth, kit=text_only_kit)
    (r,) = rep.recordings
    assert r.error is None and r.roles_correct and r.roles["mapping"] == {"caller": "customer", "desk": "agent"}
    assert all(o in ("tp", "tn") for o in r.outcomes.values()), r.outcomes
    s = rep.summary()
    assert s["precision"] == s["recall"] == s["criterion_agreement"] == 1.0 and s["roles_correct"] == "1/1"
    crit = {c["criterion"]: c for c in r.criteria}
    # criteria that map to one labelled event: expected from the label; polite_language is an `absent` rule
    assert crit["identity_verified"]["expected"] == "pass" and crit["satisfaction_check"]["expected"] == "fail"
    assert crit["polite_language"]["expected"] == "pass" and "name_and_company" not in crit
    md = render_markdown(rep)
    assert "| greeting |" in md and "none" in md
    json.dumps(rep.to_dict(), default=str)  # the --json output is plain JSON
    with pytest.raises(ConfigError, match="other"):
        evaluate_real(truth, kit=text_only_kit, only=["other"])


def _visible_report(real_data, kit, kinds, **kw) -> RealEvalReport:
    truth = real_data / "QA_TRUTH.yaml"
    if not truth.is_file():
        pytest.skip(f"no truth file at {truth}")
    return evaluate_real(truth, kit=kit, kinds=kinds, **kw)


def test_visible_real_transcripts(real_data, text_only_kit):
    """The visible real transcripts (Azure support chat, SpokenWOZ phone dialogues): every labelled
    event type at P, R ≥ 0.9, criterion agreement ≥ 0.9, every role decision right."""
    rep = _visible_report(real_data, text_only_kit, ["transcript"])
    s = rep.summary()
    low = {
        t: (v["precision"], v["recall"])
        for t, v in rep.event_table().items()
        if (v["precision"] is not None and v["precision"] < 0.9) or (v["recall"] is not None and v["recall"] < 0.9)
    }
    assert not low, "\n".join(render_markdown(rep).splitlines()[-20:])
    assert s["criterion_agreement"] >= 0.9 and s["failed"] == 0
    assert all(r.roles_correct for r in rep.recordings), [(r.label, r.roles) for r in rep.recordings]


@pytest.mark.slow
def test_visible_real_recordings(real_data, detector_toolkit, tmp_path):
    """The visible real recordings through the whole pipeline (real ASR and diarization)."""
    rep = _visible_report(real_data, detector_toolkit, ["audio"], cache_dir=tmp_path / "asr")
    s = rep.summary()
    by = {r.label: r for r in rep.recordings}
    assert s["failed"] == 0 and s["precision"] >= 0.95 and s["criterion_agreement"] >= 0.85
    # Measured shortfall, kept visible: on the Auto_Repairs_49 mono mix the agent's short opening
    # line ("... speaking, how can I help you?") is diarized into the caller's voice, so its greeting
    # and need discovery are the caller's (recall 0.94 over the audio items); diarization, not text.
    assert s["recall"] >= 0.9
    for label in ("lca_auto40 (stereo)", "lca_auto49 (stereo)"):
        assert all(o in ("tp", "tn") for o in by[label].outcomes.values()), (label, by[label].outcomes)
    pca = by["pca_auto0"].outcomes
    assert pca["identity_verification"] == pca["need_discovery"] == pca["closing"] == pca["greeting"] == "tp", pca
    assert all(r.roles_correct for r in rep.recordings if r.label != "lca_agent_only")
