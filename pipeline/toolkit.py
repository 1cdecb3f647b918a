"""What a worker loads once and shares with every call it processes: the Toolkit.

Scorecards and phrase lists are validated, the models loaded and the text detectors compiled here,
in one place, so that `process_call` never builds anything: a call only reads its worker's kit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callqa.config.phrases import SUPPORTED_LANGUAGES, PhraseBook, load_phrasebook
from callqa.config.settings import Settings
from callqa.models.asr import WhisperASR
from callqa.models.emotion import LexiconSentiment, TransformersEmotion, load_emotion_model
from callqa.pipeline.detectors.text import TextDetectorKit, build_text_kit
from callqa.pipeline.lexicon_fix import LexiconCorrector
from callqa.pipeline.roles import build_role_text_kit
from callqa.pipeline.scoring import Scorecard, load_scorecard
from callqa.pipeline.writing import Simplifier

if TYPE_CHECKING:
    from callqa.models.diarization import Diarizer


@dataclass
class Toolkit:
    """What a worker loads once and reuses for every call."""

    settings: Settings
    asr: WhisperASR
    scorecards: list[Scorecard]
    phrasebooks: dict[str, PhraseBook]
    # scripts, conduct, hold cues: phrase indexes and phrase embeddings built once per worker
    text_kit: TextDetectorKit
    role_text_kit: TextDetectorKit  # fuzzy-only text detectors, for role evidence
    models: dict[str, str] = field(default_factory=dict)
    # emotion: lexicon sentiment always (offline); a transformers classifier when models.emotion is set
    sentiment: LexiconSentiment = field(default_factory=LexiconSentiment)
    emotion: TransformersEmotion | None = None
    # mono calls: pyannote or the offline diarizer (callqa.models.diarization); None: one speaker
    diarizer: Diarizer | None = None
    # Traditional → Simplified for Chinese words right after ASR (OpenCC reads its dictionaries once)
    simplifier: Simplifier = field(default_factory=Simplifier)
    # Mandarin homophones of lexicon terms rewritten after t2s (models.asr.lexicon_correction)
    lexicon: LexiconCorrector = field(default_factory=LexiconCorrector)

    def phrasebook(self, language: str) -> PhraseBook:
        base = (language or "").split("-")[0].lower()
        if base in self.phrasebooks:
            return self.phrasebooks[base]
        # a language without its own list: fall back to English rather than detecting nothing
        return self.phrasebooks["en"]


def load_toolkit(settings: Settings, workers: int = 1) -> Toolkit:
    # Scorecards and phrase lists are validated before any model loads or any call is touched.
    scorecards = [load_scorecard(s) for s in settings.scorecards]
    phrasebooks = {lang: load_phrasebook(lang) for lang in SUPPORTED_LANGUAGES}
    asr = WhisperASR.from_settings(settings.models, workers=workers, num_workers=workers)
    from callqa.models.diarization import load_diarizer

    diarizer = load_diarizer(settings.models)
    bleed = "with bleed suppression" if settings.models.diarization.bleed_suppression else "no bleed suppression"
    models = {
        "asr": asr.description,
        "diarization": f"stereo: by channel, {bleed}; mono: {diarizer.method}: {diarizer.description}",
    }
    text_kit = build_text_kit(settings, phrasebooks=phrasebooks)
    models["detectors"] = text_kit.description + "".join(f"; {n}" for n in text_kit.notes)
    emotion = load_emotion_model(settings.models)
    models["emotion"] = (
        f"{emotion.method} ({emotion.resolved.source}) + acoustic arousal"
        if emotion
        else "lexicon: vader (en) / snownlp (zh) + domain lexicon + acoustic arousal"
    )
    return Toolkit(
        settings,
        asr,
        scorecards,
        phrasebooks,
        text_kit=text_kit,
        role_text_kit=build_role_text_kit(settings),
        models=models,
        emotion=emotion,
        diarizer=diarizer,
    )
