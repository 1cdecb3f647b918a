"""Prefect flows and tasks only: the nightly batch, rescoring, the cron deployment and the per-process toolkit cache."""
