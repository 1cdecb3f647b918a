"""Per-language phrase lists (config/phrases/<lang>.yaml) used by the script detectors."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from callqa.config.settings import bundled_path, format_validation_error, read_yaml
from callqa.pipeline.types import ConfigError

SUPPORTED_LANGUAGES = ("en", "zh")


class PhraseBook(BaseModel):
    """Phrase lists for one language; each list drives one event type of the same name."""

    model_config = ConfigDict(extra="forbid")
    language: str
    greeting: list[str] = []

    @field_validator("greeting")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not isinstance(p, str) or not p.strip()]
        if bad:
            raise ValueError(f"phrases must be non-empty strings, got {bad!r}")
        return v


def load_phrasebook(language: str, path: str | Path | None = None) -> PhraseBook:
    """The bundled list for `language` ("en", "zh"; regional tags like "zh-CN" map to "zh"), or a user file."""
    if path is None:
        base = language.split("-")[0].lower()
        if base not in SUPPORTED_LANGUAGES:
            raise ConfigError(None, f"no bundled phrase list for language {language!r} (have {SUPPORTED_LANGUAGES})")
        path = bundled_path("phrases", f"{base}.yaml")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, "a phrase list must be a mapping of event type to a list of phrases")
    try:
        return PhraseBook.model_validate(data)
    except ValidationError as e:
        raise ConfigError(path, format_validation_error(e)) from e
