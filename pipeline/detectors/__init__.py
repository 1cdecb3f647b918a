"""Detectors: one module per family; each returns a list of callqa.pipeline.types.Event.

EVENT_TYPES lists every event type some detector emits, so a scorecard that names an event no
detector produces is rejected when it is loaded instead of silently failing every call.
"""

EVENT_TYPES: frozenset[str] = frozenset({"greeting"})
