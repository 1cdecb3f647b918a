"""Small, hand-written call results for the QA workspace tests (views, report, export).

Each call is a CallResult as the flow would hand it to the writer, stored with the real
`store.write_call`, so the views and the report read exactly what production writes: a stereo
English call with holds, dead air, overtalk and emotion; a mono call with no events at all; a
Mandarin call; and a flagged call with an auto-fail.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from callqa.pipeline import store
from callqa.pipeline.types import (
    CallResult,
    CallScore,
    CallSource,
    CriterionResult,
    Event,
    RoleDecision,
    Utterance,
    Word,
    new_event_id,
)


def _words(text: str, start: float, end: float, channel: int = 0) -> list[Word]:
    toks = text.split() if " " in text else list(text)
    step = (end - start) / max(1, len(toks))
    return [
        Word(
            round(start + i * step, 3),
            round(start + (i + 0.9) * step, 3),
            (" " if " " in text else "") + t,
            0.9,
            channel,
        )
        for i, t in enumerate(toks)
    ]


def utt(
    seq: int,
    speaker: str,
    role: str,
    start: float,
    end: float,
    text: str,
    channel: int | None = None,
    emotion: str | None = None,
    sentiment: float | None = None,
) -> Utterance:
    return Utterance(
        seq=seq,
        speaker=speaker,
        start=start,
        end=end,
        text=text,
        words=_words(text, start, end, channel or 0),
        channel=channel,
        role=role,
        role_confidence=1.0,
        asr_confidence=0.9,
        emotion=emotion,
        emotion_score=None if emotion is None else 0.8,
        emotion_method="test",
        sentiment=sentiment,
    )


def ev(
    call_id: str, type_: str, start: float, end: float, speaker: str | None, role: str | None, evidence: str, **data
) -> Event:
    return Event(
        type_,
        start,
        end,
        speaker,
        role,
        evidence,
        0.9,
        "test/1",
        data,
        event_id=new_event_id(call_id, type_, start, end, speaker),
    )


def score(
    criteria: list[tuple[str, str, float, bool, tuple[str, ...]]],
    flag_reasons: tuple[str, ...] = (),
    version: int = 1,
    card: str = "inbound_basic",
) -> CallScore:
    crs = tuple(
        CriterionResult("s", cid, res, pts if res == "pass" else 0.0, pts, af, evid, f"{cid}: {res}")
        for cid, res, pts, af, evid in criteria
    )
    applicable = [c for c in crs if c.result != "na"]
    mx = sum(c.max_points for c in applicable)
    sc = sum(c.points for c in applicable)
    auto = any(c.auto_fail and c.result == "fail" for c in crs)
    pct = 0.0 if auto else (100.0 * sc / mx if mx else None)
    grade = (
        "na" if pct is None else "excellent" if pct >= 90 else "good" if pct >= 80 else "fair" if pct >= 60 else "poor"
    )
    return CallScore(card, version, 0.0 if auto else sc, mx, pct, grade, auto, bool(flag_reasons), flag_reasons, crs)


def result(
    name: str,
    *,
    agent: str | None,
    utterances: list[Utterance],
    events: list[Event],
    metrics: dict,
    scores: list[CallScore],
    channels: int = 2,
    language: str = "en",
    duration: float = 60.0,
    started_at: str | None = "2026-11-20T09:00:00",
    source_dir: Path | None = None,
    queue: str = "billing",
) -> CallResult:
    call_id = hashlib.sha256(name.encode()).hexdigest()
    path = str((source_dir or Path("/recordings")) / name)
    meta = {"agent_id": agent, "queue": queue}
    if started_at:
        meta["started_at"] = started_at
    roles = (
        RoleDecision({"ch0": "agent", "ch1": "customer"}, 1.0, "channel_map")
        if channels == 2
        else RoleDecision({}, 0.0, "none")
    )
    return CallResult(
        source=CallSource(path, call_id, 1000, meta),
        duration_s=duration,
        channels=channels,
        sample_rate=8000,
        codec="pcm_s16le",
        language=language,
        language_probability=0.99,
        utterances=utterances,
        events=events,
        metrics=metrics,
        scores=scores,
        models={"asr": "test"},
        roles=roles,
        timings={"transcribe": 1.0},
    )


def stereo_call(source_dir: Path | None = None) -> CallResult:
    cid = hashlib.sha256(b"stereo_hold.wav").hexdigest()
    us = [
        utt(
            0,
            "ch0",
            "agent",
            0.5,
            4.0,
            "Thank you for calling Acme Energy, my name is Sarah, how can I help?",
            0,
            "neutral",
            0.1,
        ),
        utt(
            1,
            "ch1",
            "customer",
            4.6,
            9.0,
            "My bill doubled and nobody called me back, this is ridiculous.",
            1,
            "negative",
            -0.7,
        ),
        utt(2, "ch0", "agent", 9.5, 12.0, "I am sorry to hear that. Please hold while I check.", 0, "neutral", 0.2),
        utt(3, "ch0", "agent", 42.0, 45.0, "Thank you for waiting, I have found the problem.", 0, "positive", 0.5),
        utt(4, "ch1", "customer", 44.5, 48.0, "Oh good, thank you so much.", 1, "positive", 0.6),
        utt(5, "ch0", "agent", 55.0, 58.0, "Is there anything else I can help you with?", 0, "neutral", 0.3),
    ]
    evs = [
        ev(
            cid,
            "greeting",
            0.5,
            4.0,
            "ch0",
            "agent",
            "Thank you for calling Acme Energy, my name is Sarah",
            has_name=True,
            has_company=True,
        ),
        ev(cid, "negative_emotion", 4.6, 9.0, "ch1", "customer", "this is ridiculous"),
        ev(cid, "empathy", 9.5, 12.0, "ch0", "agent", "I am sorry to hear that"),
        ev(cid, "hold_announced", 9.5, 12.0, "ch0", "agent", "Please hold while I check"),
        ev(cid, "hold", 12.5, 41.5, None, None, "hold 29.0 s (music)", announced=True, thanked=True, kind="music"),
        ev(cid, "hold_thanked", 42.0, 45.0, "ch0", "agent", "Thank you for waiting"),
        ev(cid, "overtalk", 44.5, 45.0, "ch1", "customer", "overlap 0.5 s, customer started"),
        ev(cid, "dead_air", 48.2, 54.8, None, None, "6.6 s of silence"),
        ev(cid, "further_help_offered", 55.0, 58.0, "ch0", "agent", "anything else I can help you with"),
    ]
    greet, hold = evs[0].event_id, [evs[3].event_id, evs[5].event_id]
    metrics = {
        "duration_s": 60.0,
        "talk_ratio_agent": 0.55,
        "hold_count": 1,
        "hold_total_s": 29.0,
        "hold_max_s": 29.0,
        "dead_air_count": 1,
        "dead_air_total_s": 6.6,
        "overtalk_total_s": 0.5,
        "customer_emotion_start": -0.7,
        "customer_emotion_end": 0.6,
    }
    sc = score(
        [
            ("greeting", "pass", 10, False, (greet,)),
            ("hold_etiquette", "pass", 10, False, tuple(hold)),
            ("no_forbidden_language", "pass", 0, True, ()),
        ]
    )
    return result(
        "stereo_hold.wav", agent="A1", utterances=us, events=evs, metrics=metrics, scores=[sc], source_dir=source_dir
    )


def mono_no_events(source_dir: Path | None = None) -> CallResult:
    us = [
        utt(0, "spk0", "unknown", 0.4, 3.0, "Account number?"),
        utt(1, "spk0", "unknown", 3.5, 6.0, "Right, it is booked for Monday."),
    ]
    sc = score(
        [("greeting", "fail", 10, False, ()), ("no_forbidden_language", "pass", 0, True, ())],
        flag_reasons=("grade poor (0%) below fair; failed: greeting",),
    )
    return result(
        "mono_plain.wav",
        agent="A2",
        utterances=us,
        events=[],
        metrics={"duration_s": 7.0},
        scores=[sc],
        channels=1,
        duration=7.0,
        started_at="2026-11-21T10:00:00",
        source_dir=source_dir,
    )


def zh_call(source_dir: Path | None = None) -> CallResult:
    cid = hashlib.sha256(b"zh_call.wav").hexdigest()
    us = [
        utt(0, "ch0", "agent", 0.3, 3.0, "您好，这里是星河银行，我是小王，请问有什么可以帮您？", 0, "neutral", 0.1),
        utt(1, "ch1", "customer", 3.5, 7.0, "我的信用卡被扣了两次年费，我要投诉。", 1, "negative", -0.8),
    ]
    evs = [
        ev(cid, "greeting", 0.3, 3.0, "ch0", "agent", "您好，这里是星河银行，我是小王"),
        ev(cid, "escalation_request", 3.5, 7.0, "ch1", "customer", "我要投诉"),
    ]
    sc = score([("greeting", "pass", 10, False, (evs[0].event_id,)), ("no_forbidden_language", "pass", 0, True, ())])
    return result(
        "zh_call.wav",
        agent="A1",
        utterances=us,
        events=evs,
        metrics={"duration_s": 8.0, "customer_emotion_end": -0.8},
        scores=[sc],
        language="zh",
        duration=8.0,
        started_at="2026-11-21T11:00:00",
        source_dir=source_dir,
        queue="cards",
    )


def auto_fail_call(source_dir: Path | None = None) -> CallResult:
    cid = hashlib.sha256(b"rude.wav").hexdigest()
    us = [
        utt(0, "ch0", "agent", 0.3, 2.0, "What do you want, stupid?", 0, "negative", -0.6),
        utt(1, "ch1", "customer", 2.5, 5.0, "I want to speak to a manager.", 1, "negative", -0.5),
    ]
    evs = [
        ev(cid, "forbidden_phrase", 0.3, 2.0, "ch0", "agent", "stupid"),
        ev(cid, "escalation_request", 2.5, 5.0, "ch1", "customer", "speak to a manager"),
    ]
    sc = score(
        [("greeting", "fail", 10, False, ()), ("no_forbidden_language", "fail", 0, True, (evs[0].event_id,))],
        flag_reasons=(
            "auto-fail: no_forbidden_language",
            "grade poor (0%) below fair; failed: greeting, no_forbidden_language",
        ),
    )
    return result(
        "rude.wav",
        agent="A3",
        utterances=us,
        events=evs,
        metrics={"duration_s": 6.0, "hold_total_s": 0.0},
        scores=[sc],
        duration=6.0,
        started_at="2026-11-22T12:00:00",
        source_dir=source_dir,
        queue="sales",
    )


def all_calls(source_dir: Path | None = None) -> list[CallResult]:
    return [stereo_call(source_dir), mono_no_events(source_dir), zh_call(source_dir), auto_fail_call(source_dir)]


def build_db(path: Path, source_dir: Path | None = None) -> list[CallResult]:
    calls = all_calls(source_dir)
    con = store.connect(path)
    try:
        for r in calls:
            assert store.write_call(con, r, None, "test")
    finally:
        con.close()
    return calls


def write_wav(path: Path, seconds: float, channels: int, hz: float = 300, step_hz: float = 0) -> None:
    """A 16-bit 8 kHz tone standing in for a recording; channel c at `hz` + c * `step_hz`."""
    sr = 8000
    t = np.arange(int(seconds * sr)) / sr
    data = np.stack(
        [(0.2 * np.sin(2 * np.pi * (hz + step_hz * c) * t) * 32767).astype(np.int16) for c in range(channels)], axis=1
    )
    wavfile.write(str(path), sr, data if channels > 1 else data[:, 0])


def build_db_with_recordings(
    root: Path, max_s: float = float("inf"), step_hz: float = 0
) -> tuple[Path, list[CallResult]]:
    """`build_db` at root/qa.duckdb, with a tone (at most `max_s` long) at each call's path in root/recordings."""
    audio = root / "recordings"
    audio.mkdir()
    db = root / "qa.duckdb"
    calls = build_db(db, source_dir=audio)
    for c in calls:
        write_wav(Path(c.source.path), min(c.duration_s, max_s), c.channels, step_hz=step_hz)
    return db, calls
