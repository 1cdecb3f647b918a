"""Language-conduct and hold-cue detectors over the transcript.

Conduct: forbidden phrases and empathy/apology from the agent; escalation requests ("speak to a
manager", 投诉, 找你们领导) and complaint markers from the customer. Hold cues: the agent
announcing a hold ("please hold", 请稍等) and thanking the customer on return ("thank you for
waiting", 感谢您的耐心等待). These are text events only; the hold detector pairs them with the hold
spans it measures in the audio.
"""

from __future__ import annotations

from callqa.pipeline.detectors.scripts import TextDetector

DETECTOR_VERSION = "conduct/1"

CONDUCT_DETECTORS: tuple[TextDetector, ...] = (
    TextDetector("forbidden_phrase", "agent", version=DETECTOR_VERSION),
    TextDetector("empathy", "agent", version=DETECTOR_VERSION),
    TextDetector("escalation_request", "customer", negatable=True, version=DETECTOR_VERSION),
    TextDetector("complaint", "customer", negatable=True, version=DETECTOR_VERSION),
    TextDetector("transfer", "agent", version=DETECTOR_VERSION),
    TextDetector("repeat_contact_mention", "customer", negatable=True, version=DETECTOR_VERSION),
)

HOLD_CUE_DETECTORS: tuple[TextDetector, ...] = (
    TextDetector("hold_announced", "agent", version="holdcues/2"),
    TextDetector("hold_thanked", "agent", version="holdcues/2"),
)
