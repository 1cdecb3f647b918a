"""Emotion per utterance: lexicon sentiment, acoustic arousal, and transformers models via the resolver.

The transformers tests build tiny, randomly initialised models in the test itself and load them
through `models.emotion`: they prove the loading and labelling path, not any accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from callqa.config.settings import EmotionSettings, load_settings
from callqa.models.emotion import DomainLexicon, LexiconSentiment, load_emotion_model, valence_of
from callqa.pipeline.detectors.emotion import arousal_scores, detect_emotion, utterance_pitch_st
from callqa.pipeline.linescan import scan_line
from callqa.pipeline.types import SAMPLE_RATE, ConfigError, DecodedAudio, ModelUnavailable, Utterance, Word


@pytest.fixture(scope="module")
def lexicon():
    return LexiconSentiment()


def utt(seq, role, text, start=0.0, end=2.0, channel=None, speaker=None):
    toks = text.split() or [text]
    step = (end - start) / len(toks)
    words = [Word(start + i * step, start + (i + 1) * step, t, 0.9, channel or 0) for i, t in enumerate(toks)]
    return Utterance(seq, speaker or ("ch1" if role == "customer" else "ch0"), start, end, text, words, channel, role)


def test_english_lexicon_separates_angry_from_neutral_and_pleased(lexicon):
    angry = [
        "This is the third time I'm calling about this. Nobody has called me back and it's ridiculous.",
        "Nobody told me any of that! This is absolutely useless.",
        "I'm really fed up. I've been waiting for weeks and nothing has been fixed. This is unacceptable.",
    ]
    neutral = [
        "Hi, my internet keeps dropping out every evening and I work from home.",
        "Sure, it's four four seven two nine one.",
        "Okay, Friday works for me.",
    ]
    for t in angry:
        assert lexicon.score(t, "en").sentiment <= -0.4, t
    for t in neutral:
        assert lexicon.score(t, "en").sentiment > -0.4, t
    pleased = lexicon.score("Yes, I am, thank you. That's great.", "en")
    assert pleased.sentiment >= 0.4 and pleased.method == "lexicon:vader"
    assert lexicon.score(angry[1], "en").method == "lexicon:vader+domain"


def test_mandarin_lexicon_uses_snownlp(lexicon):
    angry = lexicon.score("你们这是什么服务，太差了，我要投诉！", "zh")
    neutral = lexicon.score("我想查询一下我的账单。", "zh")
    assert angry.method.startswith("lexicon:snownlp") and angry.sentiment <= -0.4
    assert neutral.sentiment > -0.4
    assert lexicon.score("谢谢你，问题解决了，非常满意。", "zh-CN").sentiment >= 0.4


def test_domain_lexicon_rejects_bad_valence(tmp_path):
    bad = tmp_path / "lex.yaml"
    bad.write_text("en:\n  awful: -9\n")
    with pytest.raises(ConfigError) as e:
        DomainLexicon.load(bad)
    assert "lex.yaml" in str(e.value) and "awful" in str(e.value)


def _voiced(f0: float, seconds: float, level: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    return (level * x / np.max(np.abs(x))).astype(np.float32)


def test_pitch_estimate_and_arousal_against_the_speakers_own_baseline():
    assert utterance_pitch_st(_voiced(150.0, 1.0, 0.3)) == pytest.approx(12 * np.log2(1.5), abs=0.3)
    assert utterance_pitch_st(np.zeros(16000, np.float32)) is None
    # one speaker, five turns: four calm (120 Hz, -20 dB), one raised (165 Hz, 8 dB louder)
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    parts, utts, t = [], [], 0.0
    for k, (f0, lvl) in enumerate([(120, 0.1), (118, 0.1), (165, 0.25), (122, 0.1), (119, 0.11)]):
        x = _voiced(f0, 1.5, lvl)
        parts += [x, gap]
        utts.append(utt(k, "customer", "w w w", t, t + 1.5, channel=0, speaker="spk"))
        t += 2.0
    sig = np.concatenate(parts) + (1e-4 * np.random.default_rng(0).standard_normal(int(t * SAMPLE_RATE))).astype(
        np.float32
    )
    audio = DecodedAudio("x.wav", [sig], SAMPLE_RATE, 8000, 1, "pcm", t)
    ar = arousal_scores(utts, audio, scan_line(audio))
    assert int(np.argmax(ar)) == 2 and ar[2] >= 1.5
    assert all(abs(a) < 1.0 for i, a in enumerate(ar) if i != 2)


def test_detect_emotion_fills_rows_events_and_metrics(lexicon):
    utts = [
        utt(0, "agent", "Thank you for calling, how can I help?", 0, 2),
        utt(
            1, "customer", "This is the third time I'm calling and nobody has called me back. It's ridiculous.", 2.5, 6
        ),
        utt(2, "agent", "I'm sorry to hear that, let me fix it.", 6.5, 8),
        utt(3, "customer", "My parcel was due on Tuesday.", 8.5, 10),
        utt(4, "customer", "Okay, that's great, thank you so much.", 10.5, 12),
    ]
    out, events, metrics = detect_emotion("c", utts, None, None, "en", lexicon, None, EmotionSettings(edge_turns=1))
    assert all(u.emotion in ("negative", "angry", "neutral", "positive") and u.emotion_method for u in out)
    assert all(u.emotion_method.startswith("lexicon:vader") for u in out)
    assert out[1].emotion == "negative" and out[4].emotion == "positive"
    assert [e.type for e in events] == ["negative_emotion"] and events[0].start == 2.5 and events[0].role == "customer"
    assert "ridiculous" in events[0].evidence
    assert metrics["customer_emotion_start"] < -0.4 < 0.4 < metrics["customer_emotion_end"]
    assert metrics["negative_emotion_count"] == 1
    # the input is not modified (the stage returns new rows)
    assert utts[1].emotion is None


def test_valence_of_known_and_unknown_labels():
    assert valence_of({"anger": 0.8, "joy": 0.1, "neutral": 0.1}) == pytest.approx(-0.7)
    assert valence_of({"LABEL_0": 0.9, "LABEL_1": 0.1}) is None


# ------------------------------------------------------------------------------ transformers


@pytest.fixture(scope="module")
def tiny_text_model(tmp_path_factory):
    """A 1-layer BERT sequence classifier with random weights and a word-level vocabulary."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("tiny-emotion-text")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(
        (
            "this is the third time i am calling ridiculous thank you so much great my parcel was due on tuesday . , !"
        ).split()
    )
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(root / "vocab.txt"), do_lower_case=True)
    cfg = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=3,
        id2label={0: "anger", 1: "joy", 2: "neutral"},
        label2id={"anger": 0, "joy": 1, "neutral": 2},
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    model.save_pretrained(root)
    tok.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def tiny_audio_model(tmp_path_factory):
    """A tiny wav2vec2 audio classifier with random weights and its feature extractor."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("tiny-emotion-audio")
    cfg = transformers.Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=8,
        num_labels=4,
        id2label={0: "ang", 1: "hap", 2: "neu", 3: "sad"},
        label2id={"ang": 0, "hap": 1, "neu": 2, "sad": 3},
    )
    torch.manual_seed(0)
    transformers.Wav2Vec2ForSequenceClassification(cfg).save_pretrained(root)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(root)
    return root


def _models(tmp_path, emotion):
    return load_settings().models.model_copy(
        update={"cache_dir": tmp_path, "emotion": str(emotion) if emotion else None}
    )


def test_text_classifier_from_a_local_dir_labels_come_from_its_config(tiny_text_model, tmp_path, lexicon):
    model = load_emotion_model(_models(tmp_path, tiny_text_model))
    assert model is not None and model.kind == "text" and model.labels == ["anger", "joy", "neutral"]
    assert model.resolved.source == "local-dir"
    utts = [
        utt(0, "customer", "This is the third time I am calling, ridiculous!", 0, 3),
        utt(1, "customer", "Thank you so much, great.", 3.5, 5),
    ]
    out, events, metrics = detect_emotion("c", utts, None, None, "en", lexicon, model, EmotionSettings())
    for u in out:
        assert u.emotion in {"anger", "joy", "neutral"}
        assert 0.0 <= u.emotion_score <= 1.0
        assert u.emotion_method == f"model:text:{tiny_text_model.name}"
        assert -1.0 <= u.sentiment <= 1.0  # from the label valences (anger -1, joy +1, neutral 0)
    probs = model.predict_text(["great", "ridiculous"])
    assert all(abs(sum(p.values()) - 1.0) < 1e-4 for p in probs)


def test_audio_classifier_from_a_local_dir(tiny_audio_model, tmp_path, lexicon):
    model = load_emotion_model(_models(tmp_path, tiny_audio_model))
    assert model is not None and model.kind == "audio" and model.labels == ["ang", "hap", "neu", "sad"]
    sig = np.concatenate([_voiced(140, 1.0, 0.2), np.zeros(8000, np.float32), _voiced(200, 0.8, 0.3)])
    audio = DecodedAudio("x.wav", [sig], SAMPLE_RATE, SAMPLE_RATE, 1, "pcm", sig.size / SAMPLE_RATE)
    utts = [utt(0, "customer", "hello there", 0.0, 1.0), utt(1, "customer", "why", 1.5, 2.3)]
    out, _, _ = detect_emotion("c", utts, audio, scan_line(audio), "en", lexicon, model, EmotionSettings())
    assert [u.emotion in {"ang", "hap", "neu", "sad"} for u in out] == [True, True]
    assert all(u.emotion_method.startswith(f"model:audio:{tiny_audio_model.name}") for u in out)


def test_unset_emotion_model_means_lexicon_and_a_bad_path_is_a_clear_error(tmp_path):
    assert load_emotion_model(_models(tmp_path, None)) is None
    with pytest.raises(ModelUnavailable) as e:
        load_emotion_model(_models(tmp_path, tmp_path / "no-such-model"))
    assert "no-such-model" in str(e.value) and "models.emotion" in str(e.value)
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with pytest.raises(ModelUnavailable) as e:
        load_emotion_model(_models(tmp_path, not_a_model))
    assert "empty" in str(e.value)
