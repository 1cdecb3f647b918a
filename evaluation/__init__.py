"""Evaluation: callqa measured against labelled calls (synthesised regression sets and real speech)."""
