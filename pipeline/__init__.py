"""Pipeline stages: one module per stage, pure functions over the typed records in callqa.pipeline.types."""
