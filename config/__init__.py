"""Settings schema, default settings, scorecards and phrase lists."""
