"""A one-voice recording is not split into two speakers when the voices do not support it."""

from __future__ import annotations

import numpy as np
import pytest

from callqa.models.clustering import label_changes, two_voices_supported, unit


def _voices(rng, centres, n, spread):
    return np.concatenate([c + spread * rng.standard_normal((n, c.size)) for c in centres])


def _separation(emb, labels):
    raw = unit(emb)
    sims = raw @ raw.T
    same = labels[:, None] == labels[None, :]
    within = sims[same & ~np.eye(len(labels), dtype=bool)].mean()
    return (within - sims[~same].mean()) / (1 - within)


def test_separation_tells_two_voices_from_one_cut_in_two():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    labels = np.tile(np.repeat([0, 1], 10), 3)  # turn-taking: six turns of ten windows
    order = np.argsort(labels, kind="stable")
    two = _voices(rng, [a, b], 30, 0.3)[np.argsort(order)]  # voice a's windows where labels say 0
    assert two_voices_supported(two, labels, 0.2, 3)
    one = _voices(rng, [a], 60, 0.3)  # one voice, split in two halves the way clustering would
    assert not two_voices_supported(one, labels, 0.2, 3)
    # two clearly different voices, but the second has two windows: no second voice
    assert not two_voices_supported(two[:12], labels[:12], 0.2, 3)


def test_a_split_without_turn_taking_needs_clearly_different_voices():
    rng = np.random.default_rng(1)
    m = rng.standard_normal(64)
    # two voices that share most of their sound (as voices on one line do): separation ~0.5
    near = [m + 0.2 * rng.standard_normal(64) for _ in range(2)]
    emb = _voices(rng, near, 20, 0.3)
    halves = np.repeat([0, 1], 20)  # each "voice" one stretch of the recording: one change
    assert 0.2 < _separation(emb, halves) < 1.0 and label_changes(halves) == 1
    assert not two_voices_supported(emb, halves, 0.2, 3)  # a voice whose sound drifted between takes
    # the same windows taking turns (four changes) are two parties
    turns = np.repeat([0, 1, 0, 1, 0], [10, 10, 5, 10, 5])
    order = np.concatenate(
        [np.arange(0, 10), np.arange(20, 30), np.arange(10, 15), np.arange(30, 40), np.arange(15, 20)]
    )
    assert label_changes(turns) == 4 and two_voices_supported(emb[order], turns, 0.2, 3)
    # two clearly different voices (a woman and a man: separation ~1.7) need no turn-taking
    far = [m + 0.4 * rng.standard_normal(64) for _ in range(2)]
    emb = _voices(rng, far, 20, 0.3)
    assert _separation(emb, halves) > 1.0 and two_voices_supported(emb, halves, 0.2, 3)


@pytest.mark.slow
def test_real_one_voice_recordings_are_one_speaker_and_two_party_calls_two(real_data):
    from callqa.models.offline_diarizer import OfflineDiarizer
    from callqa.pipeline.decode import decode

    calls = real_data / "realcalls"
    diarizer = OfflineDiarizer.load()
    expected = {
        "funasr/asr_example.wav": 1,  # 5.5 s, one Mandarin speaker
        "aws-lca/Auto_Repairs_49_UTC_agent.wav": 1,  # one leg of a two-channel call
        # the agent's side only (141 s): separation 0.373, but its halves are stretches (2 changes)
        "aws-lca/agent.wav": 1,
        "whisper/jfk.flac": 1,  # one speaker, 11 s: separation 0.691, one change
        "pyannote/sample.wav": 2,  # separation 0.332, 7 changes
        "pyannote/dev00.wav": 2,  # 0.352, 5 changes
        "azure-speech-sdk/katiesteve.wav": 2,
    }
    found = {}
    for rel in expected:
        if not (calls / rel).exists():
            pytest.skip(f"{calls / rel} missing")
        ann, _ = diarizer.diarize(decode(str(calls / rel)).channels[0], num_speakers=2)
        found[rel] = len(ann.labels())
    # the two legs of a real call mixed to mono: two parties (separation 0.266, 28 changes)
    legs = [calls / f"aws-lca/Auto_Repairs_49_UTC_{side}.wav" for side in ("agent", "caller")]
    if all(p.exists() for p in legs):
        a, c = (decode(str(p)).channels[0] for p in legs)
        n = min(len(a), len(c))
        ann, _ = diarizer.diarize(0.5 * (a[:n] + c[:n]), num_speakers=2)
        expected["Auto_Repairs_49 mono mix"] = 2
        found["Auto_Repairs_49 mono mix"] = len(ann.labels())
    assert found == expected
