"""The one error type of call synthesis."""

from __future__ import annotations

from callqa.pipeline.types import CallQAError


class SynthError(CallQAError):
    """A call could not be synthesised or written (unknown voice, bad codec, missing engine)."""

    stage = "synth"
