"""Speaker attribution at turn changes on mono calls: a short turn between two of the other
party's, and the last words before a turn change, belong to who said them.

The offline diarizer's 1.6 s windows slide over the speech-only stream, so near a pause they
reach into the next stretch of speech; the diarizer therefore also scores each pause-bounded
stretch by windows that stop at its pauses. Tested with a fake voice encoder (deterministic, the
mechanism alone), on the real AWS PCA mono call (the diarizer alone; the whole pipeline in the slow
test), and on the utterance cut around turns the diarizer could not attribute.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from pyannote.core import Annotation, Segment

from callqa.models.offline_diarizer import FRAME_S, OfflineDiarizer, OfflineParams
from callqa.pipeline.decode import decode
from callqa.pipeline.diarize import speaker_timelines, utterances_from_diarization, word_speakers
from callqa.pipeline.types import SAMPLE_RATE, Transcript, Word
from callqa.pipeline.types import Segment as AsrSegment

PCA = "realcalls/aws-pca/Auto0_GUID_000_AGENT_ChrisL_DT_2025-02-19T06-01-22_Mono.wav"


# --------------------------------------------------------------------------- a fake voice encoder


class _FakeVoices:
    """Voice A is a positive signal, voice B a negative one: a frame's 'mel' says which (plus a
    little fixed texture), and a window's 'embedding' is the mean of its frames, so a window over
    both voices lies between them in proportion, as GE2E's do (roughly)."""

    def __init__(self) -> None:
        self.texture = np.random.default_rng(0).uniform(0.0, 0.05, (4096, 6)).astype(np.float32)

    def mel(self, wav: np.ndarray) -> np.ndarray:
        n = 1 + len(wav) // 160
        padded = np.pad(wav, (80, 80 + n * 160 - len(wav)))
        v = padded[: n * 160].reshape(n, 160).mean(axis=1)
        out = np.zeros((n, 8), np.float32)
        out[:, 0], out[:, 1] = np.maximum(v, 0), np.maximum(-v, 0)
        out[:, 2:] = self.texture[np.arange(n) % len(self.texture)]
        return out

    def embed_frames(self, mel: np.ndarray, starts: np.ndarray, n_frames: int) -> np.ndarray:
        need = int(max(starts)) + n_frames if len(starts) else 0
        if need > mel.shape[0]:
            mel = np.concatenate([mel, np.zeros((need - mel.shape[0], mel.shape[1]), mel.dtype)])
        return np.stack([mel[s : s + n_frames].mean(axis=0) for s in starts]).astype(np.float32)


def _fake_vad(x: np.ndarray) -> np.ndarray:
    return (np.abs(x.reshape(-1, 512)).mean(axis=1) > 0.1).astype(np.float32)


def _fake_diarizer(**params) -> OfflineDiarizer:
    return OfflineDiarizer(_FakeVoices(), _fake_vad, "fake voices", dataclasses.replace(OfflineParams(), **params))


def _call(parts: list[tuple[str, float]]) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """A 16 kHz 'call' of (voice, seconds) parts, 0.5 s of silence between them."""
    chunks, turns, t = [], [], 0.0
    for voice, dur in parts:
        n = int(dur * SAMPLE_RATE)
        chunks += [np.full(n, 0.5 if voice == "A" else -0.5, np.float32), np.zeros(SAMPLE_RATE // 2, np.float32)]
        turns.append((voice, t, t + dur))
        t += dur + 0.5
    return np.concatenate(chunks), turns


def _label_at(ann: Annotation, t: float) -> str:
    labs = {lab for seg, _, lab in ann.itertracks(yield_label=True) if seg.start <= t <= seg.end}
    assert len(labs) == 1, (t, labs)
    return labs.pop()


def test_a_short_turn_between_two_of_the_other_voice_keeps_its_own_voice():
    wav, turns = _call([("A", 4.0), ("B", 4.0), ("A", 0.5), ("B", 4.0), ("A", 4.0)])
    _, s, e = turns[2]
    mid = (s + e) / 2

    windows_only, _ = _fake_diarizer(own_weight=0.0).diarize(wav, num_speakers=2)
    # the premise: every window over the 0.5 s turn is mostly the other voice's speech
    assert _label_at(windows_only, mid) == _label_at(windows_only, 6.5)

    ann, uncertain = _fake_diarizer().diarize(wav, num_speakers=2)
    assert _label_at(ann, mid) == _label_at(ann, 2.0) != _label_at(ann, 6.5)
    # the turn was given against what its sliding windows say: reported as not attributable by voice
    assert any(a <= mid <= b for a, b in uncertain)


def test_long_turns_are_labelled_as_before():
    wav, turns = _call([("A", 4.0), ("B", 3.0), ("A", 5.0), ("B", 4.0)])
    ann, _ = _fake_diarizer().diarize(wav, num_speakers=2)
    for _, s, e in turns:
        assert _label_at(ann, s + 0.3) == _label_at(ann, e - 0.3) == _label_at(ann, (s + e) / 2)
    assert _label_at(ann, turns[0][1] + 1) == _label_at(ann, turns[2][1] + 1) != _label_at(ann, turns[1][1] + 1)


# --------------------------------------------------------------------------- the utterance cut


def _words(spec: list[tuple[str, float, float]]) -> list[Word]:
    return [Word(start=s, end=e, text=t, probability=0.9, channel=0) for t, s, e in spec]


def _transcript(words: list[Word]) -> Transcript:
    text = " ".join(w.text for w in words)
    seg = AsrSegment(words[0].start, words[-1].end, text, tuple(words), 0, avg_logprob=-0.2, no_speech_prob=0.01)
    return Transcript(language="en", language_probability=1.0, segments=[seg], model="test")


def test_an_unattributed_turn_is_its_own_utterance_at_a_pause_but_never_splits_words_without_one():
    words = _words(
        [
            ("how", 0.1, 0.3),
            ("can", 0.3, 0.45),
            ("I", 0.45, 0.5),
            ("help?", 0.5, 0.9),  # the uncertain opening ends here
            ("yeah", 1.6, 1.9),  # same voice label, 0.7 s later
            ("hi", 1.9, 2.1),
            ("thank", 4.0, 4.3),
            ("you", 4.3, 4.6),  # an uncertain span begins inside "thank you", without a pause
        ]
    )
    ann = Annotation()
    ann[Segment(0.0, 2.2)] = "SPEAKER_00"
    ann[Segment(3.9, 4.7)] = "SPEAKER_00"
    uncertain = [(0.05, 0.95), (4.35, 4.7)]

    merged = utterances_from_diarization(_transcript(words), ann)
    assert [u.text for u in merged] == ["how can I help? yeah hi", "thank you"]

    cut = utterances_from_diarization(_transcript(words), ann, uncertain)
    assert [u.text for u in cut] == ["how can I help?", "yeah hi", "thank you"]
    assert {u.speaker for u in cut} == {"SPEAKER_00"}


# --------------------------------------------------------------------------- the real AWS PCA call

# Whisper base's word times on this call (the agent answers, then the customer):
#   "Thank you for calling Big Jim's Auto." 0.75-2.51, "This is Travis." 2.97-3.61,
#   "How can I help you today?" 4.23-5.01, "Hello, my name is Violet King ..." 6.29-16.91,
#   (the agent's long explanation) "... as soon as you can before they close." 207.74-213.38,
#   "Okay. What is their number?" (the customer) 215.47-217.42
AGENT_OPENING = [(0.75, 2.51), (2.97, 3.61)]
HOW_CAN_I_HELP = [(4.23, 4.33), (4.33, 4.43), (4.43, 4.51), (4.51, 4.63), (4.63, 4.77), (4.77, 5.01)]
CUSTOMER_REPLY = (6.29, 16.91)
BEFORE_THEY_CLOSE = [(212.54, 212.90), (212.90, 213.10), (213.10, 213.38)]  # "before they close."
AGENT_EXPLAINS = (207.74, 211.64)
CUSTOMER_ASKS = (216.38, 217.42)


@pytest.fixture(scope="module")
def pca_diarization(real_data, offline_diarizer):
    path = real_data / PCA
    if not path.is_file():
        pytest.skip(f"{path} not present")
    audio = decode(path)
    return offline_diarizer.diarize(audio.channels[0], num_speakers=2)


def _speakers(ann: Annotation, spans: list[tuple[float, float]]) -> list[str]:
    return word_speakers(_words([("w", s, e) for s, e in spans]), speaker_timelines(ann))


def test_pca_the_end_of_the_agents_greeting_is_the_agents(pca_diarization):
    ann, _ = pca_diarization
    agent = set(_speakers(ann, AGENT_OPENING))
    assert len(agent) == 1
    (customer,) = set(_speakers(ann, [CUSTOMER_REPLY])) - agent
    assert set(_speakers(ann, HOW_CAN_I_HELP)) == agent
    assert customer not in agent


def test_pca_the_last_words_before_the_customer_speaks_stay_with_the_agent(pca_diarization):
    ann, _ = pca_diarization
    agent = set(_speakers(ann, [AGENT_EXPLAINS]))
    assert set(_speakers(ann, BEFORE_THEY_CLOSE)) == agent
    assert set(_speakers(ann, [CUSTOMER_ASKS])) != agent


def test_pca_frame_scores_keep_the_sliding_windows_view_for_uncertainty(real_data, offline_diarizer):
    path = real_data / PCA
    if not path.is_file():
        pytest.skip(f"{path} not present")
    fa = offline_diarizer.analyse(decode(path).channels[0], num_speakers=2)
    assert fa.window_sims is not None and fa.window_sims.shape == fa.frame_sims.shape
    i = int(np.searchsorted(fa.speech_frames, int(round(4.9 / FRAME_S))))
    # at the end of "How can I help you today?" the windows are mostly the customer's reply ...
    assert int(np.argmax(fa.window_sims[i])) != int(fa.path[i])
    # ... and the turn is labelled by its own voice, so it is reported as not attributable by the windows
    assert any(a <= 4.9 <= b for a, b in offline_diarizer.uncertain_spans(fa))


@pytest.mark.slow
def test_pca_through_the_pipeline_the_agent_says_the_greeting_the_identity_check_and_the_closing(
    real_data, detector_toolkit
):
    from callqa.evaluation.diarization import _source
    from callqa.pipeline.call import process_call
    from callqa.pipeline.types import CallResult

    path = real_data / PCA
    if not path.is_file():
        pytest.skip(f"{path} not present")
    result = process_call(_source(Path(path)), detector_toolkit)
    assert isinstance(result, CallResult), result

    def role_of(phrase: str) -> set[str]:
        return {u.role for u in result.utterances if phrase in u.text.lower()}

    assert role_of("how can i help you today") == {"agent"}
    assert role_of("thank you for calling") == {"agent"}
    assert role_of("purchase date") == {"agent"}
    assert role_of("have a good one") == {"agent"}
    assert role_of("my name is violet") == {"customer"}
    assert any(e.type == "need_discovery" and e.role == "agent" and e.start < 6 for e in result.events)
