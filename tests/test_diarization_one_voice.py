"""A one-voice recording is not split into two speakers when the voices do not support two."""

from __future__ import annotations

import numpy as np
import pytest

from callqa.models.clustering import two_voices_supported


def _voices(rng, centres, n, spread):
    return np.concatenate([c + spread * rng.standard_normal((n, c.size)) for c in centres])


def test_separation_tells_two_voices_from_one_cut_in_two():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    labels = np.repeat([0, 1], 30)
    two = _voices(rng, [a, b], 30, 0.3)
    assert two_voices_supported(two, labels, 0.2, 3)
    one = _voices(rng, [a], 60, 0.3)  # one voice, split in two halves the way clustering would
    assert not two_voices_supported(one, labels, 0.2, 3)
    # two clearly different voices, but the second has two windows: no second voice
    assert not two_voices_supported(two[:32], labels[:32], 0.2, 3)


@pytest.mark.slow
def test_real_one_voice_recordings_are_one_speaker_and_two_party_calls_two(real_data):
    from callqa.models.offline_diarizer import OfflineDiarizer
    from callqa.pipeline.decode import decode

    calls = real_data / "realcalls"
    diarizer = OfflineDiarizer.load()
    expected = {
        "funasr/asr_example.wav": 1,  # 5.5 s, one Mandarin speaker
        "aws-lca/Auto_Repairs_49_UTC_agent.wav": 1,  # one leg of a two-channel call
        "pyannote/sample.wav": 2,
        "azure-speech-sdk/katiesteve.wav": 2,
    }
    found = {}
    for rel in expected:
        if not (calls / rel).exists():
            pytest.skip(f"{calls / rel} missing")
        ann, _ = diarizer.diarize(decode(str(calls / rel)).channels[0], num_speakers=2)
        found[rel] = len(ann.labels())
    assert found == expected
