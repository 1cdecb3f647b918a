"""Emotion and sentiment models: a transformers classifier when one is configured, lexicons otherwise.

No emotion model ships on PyPI (MODELS.md), so the default is lexicon sentiment, which does ship:
VADER for English (`vadersentiment`) and SnowNLP's bundled naive-Bayes sentiment model for
Mandarin (`snownlp`), each topped up with a short call-centre lexicon (config/emotion_lexicon.yaml)
for what angry callers say that review-trained lexicons miss ("third time", "nobody told me",
"投诉"). `models.emotion` may name a local transformers directory or a hub id of a
text-classification or audio-classification model; its labels come from the model's own config.
Every result says which method produced it, and that goes into the stored utterance row.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from callqa.config.settings import ModelSettings, bundled_path, read_yaml
from callqa.models.getter import ResolvedModel, resolve_generic
from callqa.models.quiet import no_progress_bars
from callqa.pipeline.textmatch import normalize
from callqa.pipeline.types import SAMPLE_RATE, ConfigError, ModelUnavailable

if TYPE_CHECKING:  # torch is imported when a model is loaded, not with this module
    import torch

# Valence of common emotion-model label names (GoEmotions, Ekman, SST/sentiment heads, IEMOCAP
# "ang/hap/neu/sad"), so a classifier's distribution also yields a -1..1 sentiment.
LABEL_VALENCE: dict[str, float] = {
    "anger": -1.0,
    "angry": -1.0,
    "ang": -1.0,
    "annoyance": -0.7,
    "annoyed": -0.7,
    "frustration": -0.8,
    "frustrated": -0.8,
    "disgust": -0.9,
    "disapproval": -0.6,
    "fear": -0.7,
    "fearful": -0.7,
    "nervousness": -0.5,
    "sadness": -0.7,
    "sad": -0.7,
    "grief": -0.8,
    "disappointment": -0.7,
    "remorse": -0.4,
    "embarrassment": -0.4,
    "negative": -1.0,
    "neg": -1.0,
    "very negative": -1.0,
    "neutral": 0.0,
    "neu": 0.0,
    "calm": 0.1,
    "surprise": 0.1,
    "realization": 0.0,
    "confusion": -0.2,
    "curiosity": 0.1,
    "joy": 1.0,
    "happy": 1.0,
    "hap": 1.0,
    "happiness": 1.0,
    "love": 0.9,
    "gratitude": 0.9,
    "admiration": 0.8,
    "amusement": 0.7,
    "approval": 0.6,
    "caring": 0.6,
    "excitement": 0.7,
    "optimism": 0.6,
    "pride": 0.5,
    "relief": 0.6,
    "positive": 1.0,
    "pos": 1.0,
    "very positive": 1.0,
}


_SNOWNLP_WEIGHT = 0.35


@dataclass(frozen=True)
class TextScore:
    sentiment: float  # -1..1
    method: str
    label: str | None = None  # a classifier's top label (lexicons give none)
    label_score: float | None = None


def _zh(language: str | None) -> bool:
    return (language or "").lower().split("-")[0] in ("zh", "yue", "cmn")


# ------------------------------------------------------------------------------ lexicons


_ZH_NEGATIONS = ("不是", "不要", "不想", "没有要", "并不", "没")
_EN_NEGATIONS = {"not", "no", "never", "don't", "dont", "didn't", "isn't", "wasn't"}


class DomainLexicon:
    """Call-centre phrases with a valence, per language, matched on normalised text."""

    def __init__(self, phrases: dict[str, dict[str, float]]):
        self.phrases = {lang: {normalize(p): float(v) for p, v in items.items()} for lang, items in phrases.items()}

    @classmethod
    def load(cls, path: str | Path | None = None) -> DomainLexicon:
        path = path or bundled_path("emotion_lexicon.yaml")
        data = read_yaml(path)
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ConfigError(path, "emotion lexicon must map a language to {phrase: valence}")
        for lang, items in data.items():
            for p, v in items.items():
                if not isinstance(v, (int, float)) or not -4 <= v <= 4:
                    raise ConfigError(path, f"{lang}: valence of {p!r} must be a number in -4..4, got {v!r}")
        return cls(data)

    def hits(self, text: str, language: str | None) -> list[tuple[str, float]]:
        lang = "zh" if _zh(language) else "en"
        norm = normalize(text)
        out = []
        if lang == "zh":
            squeezed = norm.replace(" ", "")
            for p, v in self.phrases.get(lang, {}).items():
                k = squeezed.find(p.replace(" ", ""))
                if k >= 0 and not (v < 0 and any(n in squeezed[max(0, k - 4) : k] for n in _ZH_NEGATIONS)):
                    out.append((p, v))
            return out
        padded = f" {norm} "
        for p, v in self.phrases.get(lang, {}).items():
            k = padded.find(f" {p} ")
            if k >= 0 and not (v < 0 and set(padded[:k].split()[-3:]) & _EN_NEGATIONS):
                out.append((p, v))
        return out


class LexiconSentiment:
    """VADER (English) / SnowNLP (Mandarin) sentiment plus the domain lexicon, -1..1 per text."""

    def __init__(self, domain: DomainLexicon | None = None):
        self.domain = domain or DomainLexicon.load()
        self._lock = threading.Lock()
        self._vader: Any = None
        self._snownlp: Any = None

    def _vader_analyzer(self) -> Any:  # vaderSentiment ships no types
        with self._lock:
            if self._vader is None:
                try:
                    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
                except ImportError as e:
                    raise ModelUnavailable(
                        None, "English sentiment needs vaderSentiment (pip install vadersentiment)"
                    ) from e
                self._vader = SentimentIntensityAnalyzer()
            return self._vader

    def _snow(self) -> Any:  # the snownlp.sentiment module; snownlp ships no types
        # SnowNLP loads its segmenter and Bayes model at import (~6 s): only when a Mandarin call comes.
        with self._lock:
            if self._snownlp is None:
                try:
                    from snownlp import sentiment
                except ImportError as e:
                    raise ModelUnavailable(None, "Mandarin sentiment needs snownlp (pip install snownlp)") from e
                self._snownlp = sentiment
            return self._snownlp

    def base(self, text: str, language: str | None) -> float:
        if _zh(language):
            if not any("\u4e00" <= ch <= "\u9fff" for ch in text):
                return 0.0
            p = float(self._snow().classify(text))
            p = min(max(p, 1e-6), 1 - 1e-6)
            # SnowNLP was trained on shopping reviews: plain service talk ("我想查询一下账单") scores
            # p ~ 0.1, real complaints p < 0.03. Centre the log-odds on that neutral prior, and weigh
            # it down: on service dialogue it is noisy (a fee question can score p < 0.01), so on its
            # own it never crosses the negative threshold; the domain lexicon has to agree.
            return _SNOWNLP_WEIGHT * math.tanh((math.log(p / (1 - p)) + 2.0) / 2.0)
        return float(self._vader_analyzer().polarity_scores(text)["compound"])

    def method(self, language: str | None) -> str:
        return "lexicon:snownlp" if _zh(language) else "lexicon:vader"

    def score(self, text: str, language: str | None) -> TextScore:
        s = self.base(text, language)
        hits = self.domain.hits(text, language)
        if hits:
            # each domain phrase moves the score by its valence / 4 (VADER's -4..4 scale)
            dom = sum(v for _, v in hits) / 4.0
            if _zh(language) and s * dom < 0:
                s = 0.0  # SnowNLP contradicting a service-dialogue cue is its review-domain noise
            s += dom
        return TextScore(float(np.clip(s, -1.0, 1.0)), self.method(language) + ("+domain" if hits else ""))


# ------------------------------------------------------------------------------ transformers


def valence_of(probs: dict[str, float]) -> float | None:
    """Expected valence of a label distribution; None when no label name is known."""
    known = {k: p for k, p in probs.items() if k.lower().strip() in LABEL_VALENCE}
    mass = sum(known.values())
    if mass < 0.5:
        return None
    return float(np.clip(sum(LABEL_VALENCE[k.lower().strip()] * p for k, p in known.items()) / mass, -1.0, 1.0))


class TransformersEmotion:
    """A local (or hub) transformers sequence- or audio-classification model.

    Labels are the model's own (`config.id2label`); multi-label heads get sigmoids, others softmax.
    """

    def __init__(
        self, resolved: ResolvedModel, *, hf_token: str | None = None, device: str = "cpu", batch_size: int = 16
    ):
        try:
            import torch
            from transformers import AutoConfig
        except ImportError as e:  # pragma: no cover - transformers is a dependency
            raise ModelUnavailable(resolved.location, f"transformers is not installed: {e}") from e
        self.resolved = resolved
        self.batch_size = batch_size
        self.device = device
        kw: dict[str, Any] = (
            {"token": hf_token} if resolved.source == "hub" else {"local_files_only": resolved.source != "hub"}
        )
        try:
            with no_progress_bars():
                cfg = AutoConfig.from_pretrained(resolved.location, **kw)
                from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES

                # wav2vec2/HuBERT emotion heads are named *ForSequenceClassification: go by model type
                arch = " ".join(cfg.architectures or [])
                audio = cfg.model_type in MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES or "AudioClassification" in arch
                self.kind: Literal["text", "audio"] = "audio" if audio else "text"
                if self.kind == "audio":
                    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

                    self.processor = AutoFeatureExtractor.from_pretrained(resolved.location, **kw)
                    self.model = AutoModelForAudioClassification.from_pretrained(resolved.location, **kw)
                else:
                    from transformers import AutoModelForSequenceClassification, AutoTokenizer

                    self.processor = AutoTokenizer.from_pretrained(resolved.location, **kw)
                    self.model = AutoModelForSequenceClassification.from_pretrained(resolved.location, **kw)
        except (OSError, ValueError, KeyError) as e:
            raise ModelUnavailable(
                resolved.location, f"models.emotion could not be loaded as a transformers classifier: {e}"
            ) from e
        self.model.eval().to(device)
        self.labels = [str(self.model.config.id2label[i]) for i in range(self.model.config.num_labels)]
        self.multi_label = getattr(self.model.config, "problem_type", None) == "multi_label_classification"
        self._torch = torch

    @property
    def name(self) -> str:
        return Path(self.resolved.name).name if self.resolved.source == "local-dir" else self.resolved.name

    @property
    def method(self) -> str:
        return f"model:{self.kind}:{self.name}"

    def _probs(self, logits: torch.Tensor) -> list[dict[str, float]]:
        t = self._torch
        p = t.sigmoid(logits) if self.multi_label else t.softmax(logits, dim=-1)
        return [dict(zip(self.labels, row)) for row in p.float().cpu().numpy().tolist()]

    def predict_text(self, texts: list[str]) -> list[dict[str, float]]:
        out: list[dict[str, float]] = []
        with self._torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                batch = [t if t.strip() else "." for t in texts[i : i + self.batch_size]]
                enc = self.processor(batch, padding=True, truncation=True, max_length=256, return_tensors="pt").to(
                    self.device
                )
                out.extend(self._probs(self.model(**enc).logits))
        return out

    def predict_audio(self, clips: list[np.ndarray]) -> list[dict[str, float]]:
        sr = int(getattr(self.processor, "sampling_rate", SAMPLE_RATE) or SAMPLE_RATE)
        if sr != SAMPLE_RATE:
            from scipy.signal import resample_poly

            g = math.gcd(sr, SAMPLE_RATE)
            clips = [resample_poly(c, sr // g, SAMPLE_RATE // g).astype(np.float32) for c in clips]
        out: list[dict[str, float]] = []
        with self._torch.no_grad():
            for clip in clips:  # one at a time: utterances differ in length and padding would skew pooling
                clip = clip if clip.size >= sr // 10 else np.pad(clip, (0, sr // 10 - clip.size))
                enc = self.processor(clip, sampling_rate=sr, return_tensors="pt").to(self.device)
                out.extend(self._probs(self.model(**enc).logits))
        return out


def load_emotion_model(models: ModelSettings) -> TransformersEmotion | None:
    """The configured classifier, or None when `models.emotion` is unset (lexicons are the default)."""
    if not models.emotion:
        return None
    resolved = resolve_generic("emotion", models.emotion, models.cache_dir, hf_token=models.hf_token)
    return TransformersEmotion(resolved, hf_token=models.hf_token)
