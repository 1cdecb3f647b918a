"""Hold, dead-air and pace detectors on synthesised telephone audio with known truth.

The unit tests here feed the detectors real rendered audio (piper voices, hold music, 8 kHz
µ-law-like band) with words placed from the synthesis truth, so they test the audio analysis and
the rules without ASR cost; tests/test_detectors_audio_asr.py runs the whole pipeline.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from callqa.config.settings import HoldSettings, PaceSettings, SilenceSettings
from callqa.pipeline.decode import decode
from callqa.pipeline.detectors.hold import detect_holds
from callqa.pipeline.detectors.pace import detect_interruptions, detect_monologues, detect_pace, rate_metrics
from callqa.pipeline.detectors.silence import detect_dead_air
from callqa.pipeline.linescan import drop_words_in_spans, mask_spans, muted, quiet_spans, scan_line
from callqa.pipeline.types import Event, Overtalk, Segment, Transcript, Utterance, Word
from callqa.synth.mix import render_call
from callqa.synth.music import hold_music
from callqa.synth.script import CallScript, DeadAir, Hold, Turn
from callqa.synth.truth import CallTruth


def utterances_from_truth(truth: CallTruth, stereo: bool = True) -> list[Utterance]:
    """One utterance per synthesised turn, its words spread evenly over the turn's true span."""
    out = []
    for k, t in enumerate(sorted(truth.turns, key=lambda t: t.start_s)):
        toks = t.text.split()
        step = (t.end_s - t.start_s) / len(toks)
        words = [Word(t.start_s + i * step, t.start_s + (i + 1) * step, w, 0.9, t.channel) for i, w in enumerate(toks)]
        out.append(
            Utterance(
                k,
                f"ch{t.channel}" if stereo else "spk0",
                t.start_s,
                t.end_s,
                t.text,
                words,
                channel=t.channel if stereo else None,
                role=t.role,
            )
        )
    return out


def text_event(type_: str, u: Utterance) -> Event:
    return Event(type_, u.start, u.end, u.speaker, u.role, u.text, 0.9, "test", event_id=f"{type_}-{u.seq}")


def cue_events(truth: CallTruth, utts: list[Utterance]) -> list[Event]:
    """hold_announced / hold_thanked where the script tagged them (what the text detectors would give)."""
    by_start = {round(u.start, 3): u for u in utts}
    out = []
    for t in truth.turns:
        u = by_start[round(t.start_s, 3)]
        for tag, typ in (("hold_announced", "hold_announced"), ("hold_thanked", "hold_thanked")):
            if tag in t.tags:
                out.append(text_event(typ, u))
    return out


def _a(text, *tags, gap=0.6, **kw):
    return Turn("agent", text, gap_before_s=gap, tags=tags, **kw)


def _c(text, *tags, gap=0.6, **kw):
    return Turn("customer", text, gap_before_s=gap, tags=tags, **kw)


SCRIPTS = {
    # announced, thanked music hold; then dead air
    "music_hold": CallScript(
        [
            _a("Thank you for calling Acme Energy, my name is Tom, how can I help?", gap=0.4),
            _c("Hi, I need to change the address on my account."),
            _a("Could you please hold for a moment while I check that?", "hold_announced"),
            _c("Sure."),
            Hold(9.0, "music"),
            _a("Thank you for holding.", "hold_thanked"),
            _c("No problem."),
            DeadAir(6.5),
            _a("Okay, that's all updated for you."),
        ]
    ),
    # unannounced silent hold (long), then an announced but unthanked silent hold
    "silent_holds": CallScript(
        [
            _a("Thank you for calling Acme Energy, how can I help?", gap=0.4),
            _c("Hi, I need to change the address on my account."),
            Hold(21.0, "silence"),
            _a("Right."),
            _a("Could you please hold for a moment while I check that?", "hold_announced"),
            Hold(11.0, "silence"),
            _a("Okay, that's all updated for you."),
        ]
    ),
    # the customer interrupts the agent; the agent interrupts the customer
    "interruptions": CallScript(
        [
            _a(
                "What I can do is book an engineer to come out and look at the line, "
                "but the earliest appointment we have is",
                gap=0.4,
            ),
            _c("Hang on, I can't wait that long!", gap=0.0, overlap_s=1.2),
            _a("I understand, I'll put you on the list for an earlier slot."),
            _c(
                "So the thing is, I called last week and the person I spoke to said it would all be sorted by now, "
                "and then"
            ),
            _a("Sorry, let me stop you there, I need to check your account first.", gap=0.0, overlap_s=1.2),
            _c("Okay."),
            _a("Thanks."),
        ]
    ),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("holdcalls")
    out = {}
    for stem, script in SCRIPTS.items():
        path = root / f"{stem}.wav"
        truth = render_call(
            script,
            path,
            sample_rate=8000,
            stereo=True,
            codec="pcm_mulaw",
            telephone=True,
            noise_floor_dbfs=-60.0,
            seed=3,
            write_truth=False,
        )
        audio = decode(path)
        out[stem] = (audio, truth, scan_line(audio))
    return out


def test_music_is_found_where_it_plays_and_nowhere_else(rendered):
    audio, truth, scan = rendered["music_hold"]
    (h,) = truth.holds
    assert len(scan.music_spans) == 1
    s, e = scan.music_spans[0]
    assert abs(s - h.start_s) < 0.5 and abs(e - h.end_s) < 0.5, (scan.music_spans, h)
    assert scan.music_channels == [[0]]  # the hold music was injected on the agent leg
    # speech and line noise are never music
    for stem in ("silent_holds", "interruptions"):
        assert rendered[stem][2].music_spans == []


def test_real_speech_is_not_taken_for_music(real_data):
    for rel in ("pyannote/sample.wav", "aws-lca/agent.wav", "azure-speech-sdk/zhcn_continuous_mode_sample.wav"):
        scan = scan_line(decode(real_data / "realcalls" / rel))
        assert scan.music_spans == [], rel


def test_music_tones_from_a_pure_signal():
    # 12 s: speech-band noise bursts (not music), then 10 s of hold music, on one 16 kHz channel
    rng = np.random.default_rng(0)
    sr = 16000
    noise = (rng.standard_normal(4 * sr) * 0.05).astype(np.float32)
    noise *= np.sin(np.arange(noise.size) / sr * 2 * np.pi * 4) > 0  # syllable-like bursts
    music = hold_music(10.0, sr, seed=1)
    x = np.concatenate([noise, music, np.zeros(sr, np.float32)]) + 1e-4 * rng.standard_normal(15 * sr).astype(
        np.float32
    )
    scan = scan_line([x.astype(np.float32)])
    assert len(scan.music_spans) == 1
    s, e = scan.music_spans[0]
    assert abs(s - 4.0) < 0.3 and abs(e - 14.0) < 0.3


def test_holds_are_timed_from_audio_and_linked_to_the_text_cues(rendered):
    audio, truth, scan = rendered["music_hold"]
    utts = utterances_from_truth(truth)
    events, metrics, holds = detect_holds("c1", scan, utts, cue_events(truth, utts), HoldSettings())
    (h,) = holds
    assert h.kind == "music" and h.announced is not None and h.thanked is not None
    assert abs(h.duration_s - truth.holds[0].duration_s) <= 1.0
    assert [e.type for e in events] == ["hold"]
    ev = events[0]
    assert ev.data["announced"] and ev.data["thanked"] and ev.data["kind"] == "music"
    assert "please hold" in ev.evidence.lower() and "thank you for holding" in ev.evidence.lower()
    assert metrics["hold_count"] == 1 and abs(metrics["hold_total_s"] - 9.0) <= 1.0
    # without the text cues the same music is still a hold, but an unannounced one
    events2, _, _ = detect_holds("c1", scan, utts, [], HoldSettings())
    assert sorted(e.type for e in events2) == ["hold", "hold_unannounced"]


def test_silent_holds_need_length_or_an_announcement(rendered):
    audio, truth, scan = rendered["silent_holds"]
    utts = utterances_from_truth(truth)
    cues = cue_events(truth, utts)
    events, metrics, holds = detect_holds("c2", scan, utts, cues, HoldSettings())
    assert [(h.kind, h.announced is not None, h.thanked is not None) for h in holds] == [
        ("silence", False, False),
        ("silence", True, False),
    ]
    turns = sorted(truth.turns, key=lambda t: t.start_s)
    for h, th in zip(holds, truth.holds):
        # a silent hold lasts from the last word before it to the first word after it
        before = max(t.end_s for t in turns if t.end_s <= th.start_s)
        after = min(t.start_s for t in turns if t.start_s >= th.end_s)
        assert abs(h.duration_s - (after - before)) <= 1.0
    assert [e.type for e in events].count("hold_unannounced") == 1
    # the same 11 s silence without its announcement is too short to be a hold: it is dead air
    _, _, holds2 = detect_holds("c2", scan, utts, [], HoldSettings())
    assert len(holds2) == 1
    dead, dm = detect_dead_air("c2", scan, utts, holds2, SilenceSettings())
    assert (
        len(dead) == 1
        and abs((dead[0].end - dead[0].start) - (truth.holds[1].end_s - truth.holds[1].start_s + 1.2)) <= 1.0
    )


def test_dead_air_outside_holds(rendered):
    audio, truth, scan = rendered["music_hold"]
    utts = utterances_from_truth(truth)
    _, _, holds = detect_holds("c1", scan, utts, cue_events(truth, utts), HoldSettings())
    events, metrics = detect_dead_air("c1", scan, utts, holds, SilenceSettings(dead_air_min_s=5.0))
    (d,) = truth.dead_air
    assert len(events) == 1, [(e.start, e.end) for e in events]
    assert abs(events[0].start - d.start_s) <= 0.5 and abs(events[0].end - d.end_s) <= 0.5
    assert metrics["dead_air_count"] == 1 and abs(metrics["dead_air_total_s"] - 6.5) <= 1.0
    assert "silence" in events[0].evidence and "updated" in events[0].evidence
    # a higher threshold finds none; hold music never counts as silence
    assert detect_dead_air("c1", scan, utts, holds, SilenceSettings(dead_air_min_s=7.0))[0] == []
    assert all(not (e.start < truth.holds[0].end_s and e.end > truth.holds[0].start_s) for e in events)


def test_interruptions_name_who_talked_over_whom(rendered):
    audio, truth, scan = rendered["interruptions"]
    utts = utterances_from_truth(truth)
    events, metrics = detect_interruptions("c3", utts, scan, PaceSettings())
    assert [(e.role, e.data["interrupted_role"]) for e in events] == [("customer", "agent"), ("agent", "customer")]
    for ev, ov in zip(events, truth.overlaps):
        # "both channels active" time: speech has gaps between words, so less than the 1.2 s of overlapping turns
        assert abs(ev.start - ov.start_s) < 0.3 and 0.8 <= ev.data["overlap_s"] <= 1.5
    assert metrics == {"interruptions_agent": 1.0, "interruptions_customer": 1.0}
    # the calls without overlap have none (turn-taking with gaps is not interrupting)
    _, truth2, scan2 = rendered["music_hold"]
    assert detect_interruptions("c1", utterances_from_truth(truth2), scan2, PaceSettings())[0] == []


def test_latching_and_backchannels_are_not_interruptions():
    w = lambda s, e, t, ch: Word(s, e, t, 0.9, ch)  # noqa: E731
    agent = Utterance(
        0,
        "ch0",
        0.0,
        4.0,
        "a b c d",
        [w(0, 1, "a", 0), w(1, 2, "b", 0), w(2, 3, "c", 0), w(3, 4.0, "d", 0)],
        0,
        "agent",
    )
    latch = Utterance(
        1, "ch1", 3.9, 6.0, "x y z", [w(3.9, 5, "x", 1), w(5, 5.5, "y", 1), w(5.5, 6, "z", 1)], 1, "customer"
    )
    backch = Utterance(2, "ch1", 2.0, 2.4, "mm-hmm", [w(2.0, 2.4, "mm-hmm", 1)], 1, "customer")
    events, metrics = detect_interruptions("c", [agent, latch, backch], None, PaceSettings())
    assert events == [] and metrics["interruptions_customer"] == 0


def _utt(seq, role, start, end, n_words, ch):
    step = (end - start) / n_words
    words = [Word(start + i * step, start + (i + 1) * step, f"w{i}", 0.9, ch) for i in range(n_words)]
    return Utterance(seq, f"ch{ch}", start, end, " ".join(x.text for x in words), words, ch, role)


def test_an_interruption_cut_in_two_where_the_other_party_stopped_is_found():
    # zh_call16 through ASR: the customer's "等一下，我等不了那么久" over the agent's last second came out as
    # "一下我" (2 words, 0.9 s) and "等不了那么久", cut where the agent stopped
    agent = _utt(0, "agent", 34.0, 43.7, 20, 0)
    head = _utt(1, "customer", 42.7, 43.6, 2, 1)
    rest = _utt(2, "customer", 43.6, 45.0, 4, 1)
    events, metrics = detect_interruptions("c", [agent, head, rest], None, PaceSettings())
    assert [(e.role, e.start, e.data["interrupted_role"]) for e in events] == [("customer", 42.7, "agent")]
    assert "w0 w1 w0 w1 w2 w3" in events[0].evidence and metrics["interruptions_customer"] == 1
    # the same head with a pause before the customer goes on is a backchannel
    later = _utt(2, "customer", 44.5, 46.0, 4, 1)
    assert detect_interruptions("c", [agent, head, later], None, PaceSettings())[0] == []


def test_monologue_joins_agent_turns_across_short_pauses_and_backchannels():
    utts = [
        _utt(0, "agent", 0.0, 12.0, 36, 0),
        _utt(1, "customer", 12.5, 13.0, 1, 1),  # "mm-hmm": does not take the floor
        _utt(2, "agent", 13.5, 25.0, 34, 0),
        _utt(3, "agent", 27.0, 36.0, 27, 0),  # 2 s pause: still the same monologue
        _utt(4, "customer", 37.0, 40.0, 8, 1),  # a real turn ends it
        _utt(5, "agent", 41.0, 50.0, 27, 0),
    ]
    events, metrics = detect_monologues("c", utts, PaceSettings(long_monologue_s=30.0))
    assert metrics["longest_monologue_agent_s"] == 36.0
    assert len(events) == 1 and events[0].start == 0.0 and events[0].end == 36.0
    assert detect_monologues("c", utts, PaceSettings(long_monologue_s=40.0))[0] == []


def test_speaking_rate_words_and_mandarin_characters():
    utts = [_utt(0, "agent", 0.0, 30.0, 75, 0), _utt(1, "customer", 31.0, 41.0, 30, 1)]
    m = rate_metrics(utts, "en")
    assert m == {"rate_agent": 150.0, "rate_customer": 180.0}
    zh = Utterance(
        0,
        "ch0",
        0.0,
        10.0,
        "您好，请问有什么可以帮您？",
        [Word(0.0, 10.0, "您好，请问有什么可以帮您？", 0.9, 0)],
        0,
        "agent",
    )
    assert rate_metrics([zh], "zh")["rate_agent"] == pytest.approx(11 / (10 / 60), abs=0.1)
    events, metrics = detect_pace("c", utts, None, "en", PaceSettings())
    assert set(metrics) >= {
        "rate_agent",
        "rate_customer",
        "longest_monologue_agent_s",
        "interruptions_agent",
        "interruptions_customer",
    }


def test_music_is_masked_for_asr_and_words_inside_are_dropped(rendered):
    audio, truth, scan = rendered["music_hold"]
    masked = mask_spans(audio, scan.music_spans)
    s, e = scan.music_spans[0]
    a, b = int((s + 0.05) * 16000), int((e - 0.05) * 16000)
    assert np.max(np.abs(masked.channels[0][a:b])) == 0.0
    assert np.max(np.abs(audio.channels[0][a:b])) > 0.1  # the original is untouched
    mid = 0.5 * (s + e)
    seg = Segment(
        mid - 1,
        mid + 20,
        "la la thank you",
        (Word(mid - 1, mid, "la", 0.3, 0), Word(mid, mid + 1, "la", 0.3, 0), Word(e + 2, e + 3, "thanks", 0.9, 0)),
        0,
        -1.0,
        0.5,
    )
    cleaned, dropped = drop_words_in_spans(Transcript("en", 1.0, [seg], "test"), scan.music_spans)
    assert dropped == 2 and [w.text for w in cleaned.words] == ["thanks"]


def test_muted_silences_music_in_place_and_restores_every_sample(rendered):
    audio, truth, scan = rendered["music_hold"]
    before = [c.copy() for c in audio.channels]
    s, e = scan.music_spans[0]
    a, b = int((s + 0.05) * 16000), int((e - 0.05) * 16000)
    with muted(audio, scan.music_spans + [(s + 1.0, e + 0.5)]) as m:  # overlapping spans too
        assert m is audio
        assert np.max(np.abs(audio.channels[0][a:b])) == 0.0
        assert np.array_equal(
            audio.channels[0],
            mask_spans(replace(audio, channels=before), scan.music_spans + [(s + 1.0, e + 0.5)]).channels[0],
        )
    assert all(np.array_equal(x, y) for x, y in zip(audio.channels, before))
    with pytest.raises(RuntimeError):  # restored even when the block fails
        with muted(audio, scan.music_spans):
            raise RuntimeError("ASR failed")
    assert all(np.array_equal(x, y) for x, y in zip(audio.channels, before))


def test_quiet_spans_ignore_ring_in_and_hang_up(rendered):
    audio, truth, scan = rendered["interruptions"]
    utts = utterances_from_truth(truth)
    q = quiet_spans(scan, utts)
    first = min(t.start_s for t in truth.turns)
    last = max(t.end_s for t in truth.turns)
    assert all(first <= s and e <= last + 0.05 for s, e in q)
    assert max((e - s for s, e in q), default=0) < 2.0


def test_a_diarized_overlap_finds_an_interruption_whose_overlapped_words_whisper_dropped():
    # zh_call02 (mono) through ASR: the customer's words under the agent's "不好意思打断一下" were dropped,
    # so no word overlaps the agent's start; the diarizer's turns overlapped 0.6 s, begun by the agent
    customer = _utt(0, "customer", 20.0, 27.7, 12, 0)
    agent = _utt(1, "agent", 27.78, 32.2, 10, 0)
    # utterances of a diarized call name the diarizer's speakers; _utt names them by channel
    customer, agent = replace(customer, speaker="SPEAKER_01"), replace(agent, speaker="SPEAKER_00")
    utts = [customer, agent]
    assert detect_interruptions("c", utts, None, PaceSettings())[0] == []
    began = [Overtalk(27.79, 28.38, "SPEAKER_00", "SPEAKER_01")]
    events, metrics = detect_interruptions("c", utts, None, PaceSettings(), began)
    assert [(e.role, e.start, e.data["interrupted_role"], e.data["overlap_s"]) for e in events] == [
        ("agent", 27.78, "customer", 0.59)
    ]
    assert metrics["interruptions_agent"] == 1
    # Whisper gave the agent's first words to the customer: the agent's own first word is late, inside the overlap
    late = replace(agent, start=28.34, words=[replace(w, start=w.start + 0.56, end=w.end + 0.56) for w in agent.words])
    assert [e.start for e in detect_interruptions("c", [customer, late], None, PaceSettings(), began)[0]] == [28.34]
    # too short an overlap, one begun by the other party, or one far from the turn's start: no interruption
    for o in (
        Overtalk(27.79, 28.0, "SPEAKER_00", "SPEAKER_01"),
        Overtalk(27.79, 28.38, "SPEAKER_01", "SPEAKER_00"),
        Overtalk(25.0, 25.6, "SPEAKER_00", "SPEAKER_01"),
    ):
        assert detect_interruptions("c", utts, None, PaceSettings(), [o])[0] == []
